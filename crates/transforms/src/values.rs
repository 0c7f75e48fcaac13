//! Lenient value parsing, and the typed "forms" of an arbitrary column that tasks compute on.
//!
//! Sources disagree on types: a CSV file yields only `Utf8` columns, a JSON file yields `Int64`,
//! `Float64`, `Boolean` and `Utf8`, Parquet may add timestamps, decimals and dictionaries. Every
//! task therefore asks for the form it needs ([`string_form`], [`float_form`], [`millis_form`],
//! [`bool_form`]) and gets an array of exactly that type in which values that do not fit are null.
//! Vectorised Arrow casts are used where their semantics match; text is parsed here instead,
//! because `arrow-cast` accepts `inf`/`NaN` as numbers and has no notion of epoch-millisecond or
//! offset-carrying ISO-8601 text.
//!
//! Datetimes are carried as epoch milliseconds (AppFlow's unit for filter operands); finer
//! precision is truncated towards the past. Arrow timestamps without a time zone, like ISO-8601
//! text without an offset, are read as UTC.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Float64Type, Int64Type, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, builder::StringBuilder,
    new_null_array,
};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{ArrowError, DataType, TimeUnit};
use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, SecondsFormat, Timelike, Utc};

const MILLIS_PER_DAY: i64 = 86_400_000;
/// Longest value text quoted in an error message.
const MAX_VALUE_CHARS: usize = 64;

/// Parses a decimal or scientific number; surrounding whitespace is ignored.
///
/// Text Rust would also read as a float but that is not a number to a person (`inf`, `NaN`,
/// `infinity`) is rejected, as is anything that does not fit a finite `f64`.
pub(crate) fn parse_f64(text: &str) -> Option<f64> {
    let text = text.trim();
    let plausible = text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
    if !plausible {
        return None;
    }
    // `+ 0.0` turns -0 into 0: Arrow orders floats by IEEE total order, where -0 < 0.
    text.parse::<f64>()
        .ok()
        .filter(|value| value.is_finite())
        .map(|value| value + 0.0)
}

/// Parses a whole number exactly; `"12"`, `"12.00"` and `"1e3"` are accepted, `"1.5"` and values
/// outside the `i64` range are not. The error is a reason for messages.
pub(crate) fn parse_i64(text: &str) -> Result<i64, &'static str> {
    let text = text.trim();
    if let Ok(value) = text.parse::<i64>() {
        return Ok(value);
    }
    // "12.000" is whole: parse the integer part exactly instead of going through f64.
    if let Some((whole, fraction)) = text.split_once('.')
        && fraction.bytes().all(|b| b == b'0')
        && let Ok(value) = whole.parse::<i64>()
    {
        return Ok(value);
    }
    match parse_f64(text) {
        Some(value) => f64_to_i64(value),
        None => Err("not a number"),
    }
}

/// Converts a float to an integer only when that loses nothing.
pub(crate) fn f64_to_i64(value: f64) -> Result<i64, &'static str> {
    // 2^63 is exactly representable; i64::MAX is not, so compare against the power of two.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if !value.is_finite() {
        return Err("not a finite number");
    }
    if value.fract() != 0.0 {
        return Err("not a whole number");
    }
    if !(-LIMIT..LIMIT).contains(&value) {
        return Err("outside the 64-bit integer range");
    }
    // The checks above make the cast exact.
    Ok(value as i64)
}

/// Parses `true`/`false` (any case) and `1`/`0`; surrounding whitespace is ignored.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("true") || text == "1" {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") || text == "0" {
        Some(false)
    } else {
        None
    }
}

/// Whether a text value is empty once trimmed. Typed conversions read such values as null
/// (CSV files write a missing number as an empty cell).
pub(crate) fn is_blank(text: &str) -> bool {
    text.trim().is_empty()
}

/// Parses an instant into epoch milliseconds.
///
/// Accepted: epoch milliseconds (`1704164645123`, optionally signed), and ISO-8601
/// `YYYY-MM-DD[(T|t| )hh:mm[:ss[(.|,)fraction]]][Z|z|±hh|±hh:mm|±hhmm]`. A value without a zone is
/// UTC; a date alone is midnight UTC; digits after the millisecond are truncated (so an
/// instant compares with a whole-millisecond bound exactly as its untruncated value would).
pub fn parse_datetime_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().ok();
    }
    parse_iso8601_ms(text.as_bytes())
}

fn parse_iso8601_ms(text: &[u8]) -> Option<i64> {
    let mut cursor = Cursor { text, pos: 0 };
    let year = cursor.number(4)?;
    cursor.expect(b'-')?;
    let month = cursor.number(2)?;
    cursor.expect(b'-')?;
    let day = cursor.number(2)?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    if cursor.at_end() {
        return Some(date.and_time(NaiveTime::MIN).and_utc().timestamp_millis());
    }
    if !matches!(cursor.next()?, b'T' | b't' | b' ') {
        return None;
    }
    let hour = cursor.number(2)?;
    cursor.expect(b':')?;
    let minute = cursor.number(2)?;
    let second = if cursor.eat(b':') {
        cursor.number(2)?
    } else {
        0
    };
    let mut nanos = 0u32;
    if cursor.eat(b'.') || cursor.eat(b',') {
        let mut scale = 100_000_000u32;
        let start = cursor.pos;
        while let Some(digit) = cursor.peek().filter(u8::is_ascii_digit) {
            nanos += u32::from(digit - b'0') * scale;
            scale /= 10;
            cursor.pos += 1;
        }
        if cursor.pos == start {
            return None;
        }
    }
    let offset_seconds: i64 = match cursor.next() {
        None => 0,
        Some(b'Z' | b'z') => 0,
        Some(sign @ (b'+' | b'-')) => {
            let hours = cursor.number(2)?;
            let minutes = if cursor.at_end() {
                0
            } else {
                cursor.eat(b':');
                cursor.number(2)?
            };
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = i64::from(hours * 3600 + minutes * 60);
            if sign == b'-' { -seconds } else { seconds }
        }
        Some(_) => return None,
    };
    if !cursor.at_end() {
        return None;
    }
    // from_hms_nano_opt rejects hour 24, minute 60 and second 60 (nanos stay below 1e9).
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    let local = date.and_time(time).and_utc().timestamp_millis();
    local.checked_sub(offset_seconds * 1000)
}

struct Cursor<'a> {
    text: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    fn at_end(&self) -> bool {
        self.pos == self.text.len()
    }

    fn eat(&mut self, expected: u8) -> bool {
        let found = self.peek() == Some(expected);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect(&mut self, expected: u8) -> Option<()> {
        self.eat(expected).then_some(())
    }

    /// Exactly `width` ASCII digits.
    fn number(&mut self, width: usize) -> Option<u32> {
        let digits = self.text.get(self.pos..self.pos + width)?;
        let mut value = 0u32;
        for &digit in digits {
            if !digit.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u32::from(digit - b'0');
        }
        self.pos += width;
        Some(value)
    }
}

/// Writes epoch milliseconds as `2024-01-02T03:04:05.123Z`. Fails for instants chrono cannot
/// represent (beyond ±262,000 years).
pub(crate) fn write_iso_millis(out: &mut impl std::fmt::Write, millis: i64) -> Result<(), ()> {
    let instant = DateTime::<Utc>::from_timestamp_millis(millis).ok_or(())?;
    let naive = instant.naive_utc();
    let (date, time) = (naive.date(), naive.time());
    if (0..=9999).contains(&date.year()) {
        // The common case, written directly rather than through a strftime interpreter.
        write!(
            out,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            date.year(),
            date.month(),
            date.day(),
            time.hour(),
            time.minute(),
            time.second(),
            time.nanosecond() / 1_000_000
        )
        .map_err(|_| ())
    } else {
        out.write_str(&instant.to_rfc3339_opts(SecondsFormat::Millis, true))
            .map_err(|_| ())
    }
}

/// Epoch milliseconds as ISO-8601 UTC text, or `None` outside chrono's range.
#[cfg(test)]
pub(crate) fn iso_millis(millis: i64) -> Option<String> {
    let mut text = String::with_capacity(24);
    write_iso_millis(&mut text, millis).ok()?;
    Some(text)
}

fn is_string_type(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

fn is_temporal_instant(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
    )
}

/// Whether the column holds numbers (integers, floats or decimals).
pub(crate) fn is_numeric_type(data_type: &DataType) -> bool {
    data_type.is_numeric()
}

/// Whether the column holds integers.
pub(crate) fn is_integer_type(data_type: &DataType) -> bool {
    data_type.is_integer()
}

/// Whether the column holds instants (timestamps or dates).
pub(crate) fn is_datetime_type(data_type: &DataType) -> bool {
    is_temporal_instant(data_type)
}

/// A dictionary-encoded column decoded to its value type; other columns unchanged.
fn decoded(array: &dyn Array) -> Result<Option<ArrayRef>, ArrowError> {
    match array.data_type() {
        DataType::Dictionary(_, value_type) => {
            Ok(Some(arrow_cast::cast(array, value_type.as_ref())?))
        }
        _ => Ok(None),
    }
}

/// The column as text. Instants use the ISO-8601 UTC form of [`write_iso_millis`]; numbers and
/// booleans use Arrow's formatting (`3.0`, `true`); nested values use Arrow's display form.
pub(crate) fn string_form(array: &dyn Array) -> Result<StringArray, ArrowError> {
    if let Some(plain) = decoded(array)? {
        return string_form(plain.as_ref());
    }
    let data_type = array.data_type();
    match data_type {
        DataType::Utf8 => Ok(array.as_string::<i32>().clone()),
        DataType::Null => Ok(StringArray::new_null(array.len())),
        _ if is_temporal_instant(data_type) => {
            let millis = millis_form(array)?;
            let mut builder = StringBuilder::with_capacity(array.len(), array.len() * 24);
            for value in millis.iter() {
                match value {
                    Some(millis) if write_iso_millis(&mut builder, millis).is_ok() => {
                        builder.append_value("");
                    }
                    _ => builder.append_null(),
                }
            }
            Ok(builder.finish())
        }
        _ if arrow_cast::can_cast_types(data_type, &DataType::Utf8) => {
            Ok(arrow_cast::cast(array, &DataType::Utf8)?
                .as_string::<i32>()
                .clone())
        }
        _ => {
            let formatter = ArrayFormatter::try_new(array, &FormatOptions::default())?;
            let mut builder = StringBuilder::with_capacity(array.len(), array.len() * 16);
            for row in 0..array.len() {
                if array.is_null(row) {
                    builder.append_null();
                } else {
                    formatter.value(row).write(&mut builder)?;
                    builder.append_value("");
                }
            }
            Ok(builder.finish())
        }
    }
}

/// The column as numbers. Text is parsed with [`parse_f64`]; integers, floats and decimals are
/// cast. Booleans, instants, NaN and unparseable text are null: they are not numbers. Negative
/// zero becomes zero, because Arrow compares floats by IEEE total order, where -0 < 0.
pub(crate) fn float_form(array: &dyn Array) -> Result<Float64Array, ArrowError> {
    if let Some(plain) = decoded(array)? {
        return float_form(plain.as_ref());
    }
    let data_type = array.data_type();
    match data_type {
        DataType::Utf8 => Ok(array
            .as_string::<i32>()
            .iter()
            .map(|v| v.and_then(parse_f64))
            .collect()),
        _ if is_string_type(data_type) => float_form(&string_form(array)?),
        _ if data_type.is_floating() => {
            let floats = arrow_cast::cast(array, &DataType::Float64)?;
            Ok(floats
                .as_primitive::<Float64Type>()
                .unary_opt::<_, Float64Type>(|value| (!value.is_nan()).then_some(value + 0.0)))
        }
        _ if is_numeric_type(data_type) => Ok(arrow_cast::cast(array, &DataType::Float64)?
            .as_primitive::<Float64Type>()
            .clone()),
        DataType::Boolean | DataType::Null => Ok(Float64Array::new_null(array.len())),
        _ if is_temporal_instant(data_type) => Ok(Float64Array::new_null(array.len())),
        _ => float_form(&string_form(array)?),
    }
}

/// The column as epoch milliseconds. Text is parsed with [`parse_datetime_ms`]; integers are
/// taken as epoch milliseconds, floats are floored; timestamps and dates are converted.
pub(crate) fn millis_form(array: &dyn Array) -> Result<Int64Array, ArrowError> {
    if let Some(plain) = decoded(array)? {
        return millis_form(plain.as_ref());
    }
    let data_type = array.data_type();
    let millis =
        match data_type {
            DataType::Utf8 => array
                .as_string::<i32>()
                .iter()
                .map(|v| v.and_then(parse_datetime_ms))
                .collect(),
            _ if is_string_type(data_type) => millis_form(&string_form(array)?)?,
            DataType::Timestamp(TimeUnit::Second, _) => array
                .as_primitive::<TimestampSecondType>()
                .unary_opt::<_, Int64Type>(|seconds| seconds.checked_mul(1000)),
            DataType::Timestamp(TimeUnit::Millisecond, _) => array
                .as_primitive::<TimestampMillisecondType>()
                .reinterpret_cast::<Int64Type>(),
            DataType::Timestamp(TimeUnit::Microsecond, _) => array
                .as_primitive::<TimestampMicrosecondType>()
                .unary::<_, Int64Type>(|micros| micros.div_euclid(1000)),
            DataType::Timestamp(TimeUnit::Nanosecond, _) => array
                .as_primitive::<TimestampNanosecondType>()
                .unary::<_, Int64Type>(|nanos| nanos.div_euclid(1_000_000)),
            DataType::Date32 => array
                .as_primitive::<Date32Type>()
                .unary::<_, Int64Type>(|days| i64::from(days) * MILLIS_PER_DAY),
            DataType::Date64 => array
                .as_primitive::<Date64Type>()
                .reinterpret_cast::<Int64Type>(),
            _ if is_integer_type(data_type) => arrow_cast::cast(array, &DataType::Int64)?
                .as_primitive::<Int64Type>()
                .clone(),
            _ if is_numeric_type(data_type) => {
                float_form(array)?.unary_opt::<_, Int64Type>(|value| f64_to_i64(value.floor()).ok())
            }
            DataType::Boolean | DataType::Null => Int64Array::new_null(array.len()),
            _ => millis_form(&string_form(array)?)?,
        };
    Ok(millis)
}

/// The column as booleans. Text is parsed with [`parse_bool`]; numbers 0 and 1 are false and
/// true; anything else is null.
pub(crate) fn bool_form(array: &dyn Array) -> Result<BooleanArray, ArrowError> {
    if let Some(plain) = decoded(array)? {
        return bool_form(plain.as_ref());
    }
    let data_type = array.data_type();
    match data_type {
        DataType::Boolean => Ok(array.as_boolean().clone()),
        DataType::Utf8 => Ok(array
            .as_string::<i32>()
            .iter()
            .map(|v| v.and_then(parse_bool))
            .collect()),
        _ if is_string_type(data_type) => bool_form(&string_form(array)?),
        _ if is_numeric_type(data_type) => Ok(float_form(array)?
            .iter()
            .map(|v| match v {
                Some(0.0) => Some(false),
                Some(1.0) => Some(true),
                _ => None,
            })
            .collect()),
        DataType::Null => Ok(BooleanArray::new_null(array.len())),
        _ if is_temporal_instant(data_type) => Ok(BooleanArray::new_null(array.len())),
        _ => bool_form(&string_form(array)?),
    }
}

/// An all-null column of `rows` rows, the stand-in for a field missing from a batch.
pub(crate) fn missing_column(rows: usize) -> ArrayRef {
    new_null_array(&DataType::Utf8, rows)
}

/// One value as message text: strings quoted, long values shortened, `null` for nulls.
pub(crate) fn display_value(array: &dyn Array, row: usize) -> String {
    if row >= array.len() || array.is_null(row) {
        return "null".to_owned();
    }
    let text = match ArrayFormatter::try_new(array, &FormatOptions::default()) {
        Ok(formatter) => formatter.value(row).to_string(),
        Err(_) => return format!("<{}>", array.data_type()),
    };
    let shortened: String = if text.chars().count() > MAX_VALUE_CHARS {
        let mut cut: String = text.chars().take(MAX_VALUE_CHARS).collect();
        cut.push('…');
        cut
    } else {
        text
    };
    let underlying = match array.data_type() {
        DataType::Dictionary(_, value_type) => value_type.as_ref().clone(),
        other => other.clone(),
    };
    if is_string_type(&underlying) {
        format!("{shortened:?}")
    } else {
        shortened
    }
}

/// Wraps an array as an [`ArrayRef`].
pub(crate) fn arc<A: Array + 'static>(array: A) -> ArrayRef {
    Arc::new(array)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{
        Date32Array, DictionaryArray, Int32Array, LargeStringArray, TimestampMicrosecondArray,
        TimestampNanosecondArray, TimestampSecondArray, UInt64Array, types::Int8Type,
    };

    #[test]
    fn parse_f64_accepts_plain_and_scientific_numbers() {
        assert_eq!(parse_f64("12"), Some(12.0));
        assert_eq!(parse_f64(" -1.5 "), Some(-1.5));
        assert_eq!(parse_f64("+5"), Some(5.0));
        assert_eq!(parse_f64("1e3"), Some(1000.0));
        assert_eq!(parse_f64(".5"), Some(0.5));
    }

    #[test]
    fn parse_f64_rejects_words_and_non_finite_values() {
        for text in [
            "",
            "  ",
            "abc",
            "NaN",
            "inf",
            "-infinity",
            "1,5",
            "0x10",
            "1e400",
            "e",
            "-",
        ] {
            assert_eq!(parse_f64(text), None, "{text:?}");
        }
    }

    #[test]
    fn parse_i64_is_exact_and_checks_range() {
        assert_eq!(parse_i64("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_i64("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(parse_i64("12.000"), Ok(12));
        assert_eq!(parse_i64("9007199254740993.0"), Ok(9_007_199_254_740_993));
        assert_eq!(parse_i64("1e3"), Ok(1000));
        assert_eq!(parse_i64(" 7 "), Ok(7));
        assert_eq!(
            parse_i64("9223372036854775808"),
            Err("outside the 64-bit integer range")
        );
        assert_eq!(parse_i64("1.5"), Err("not a whole number"));
        assert_eq!(parse_i64("abc"), Err("not a number"));
        assert_eq!(parse_i64("١٢"), Err("not a number"));
    }

    #[test]
    fn parse_bool_accepts_words_and_digits() {
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool(" false "), Some(false));
        assert_eq!(parse_bool("1"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes"), None);
        assert_eq!(parse_bool(""), None);
    }

    #[test]
    fn datetime_parsing_handles_zones_offsets_and_fractions() {
        let base = 1_704_164_645_000; // 2024-01-02T03:04:05Z
        assert_eq!(parse_datetime_ms("2024-01-02T03:04:05Z"), Some(base));
        assert_eq!(parse_datetime_ms("2024-01-02T03:04:05"), Some(base));
        assert_eq!(parse_datetime_ms("2024-01-02 03:04:05"), Some(base));
        assert_eq!(
            parse_datetime_ms("2024-01-02T03:04:05.123Z"),
            Some(base + 123)
        );
        assert_eq!(
            parse_datetime_ms("2024-01-02T03:04:05.1Z"),
            Some(base + 100)
        );
        assert_eq!(
            parse_datetime_ms("2024-01-02T03:04:05.123456789Z"),
            Some(base + 123)
        );
        assert_eq!(
            parse_datetime_ms("2024-01-02T03:04:05,5Z"),
            Some(base + 500)
        );
        assert_eq!(parse_datetime_ms("2024-01-02T04:04:05+01:00"), Some(base));
        assert_eq!(parse_datetime_ms("2024-01-02T04:04:05+0100"), Some(base));
        assert_eq!(parse_datetime_ms("2024-01-02T04:04:05+01"), Some(base));
        assert_eq!(
            parse_datetime_ms("2024-01-01T21:34:05.000-05:30"),
            Some(base)
        );
        assert_eq!(parse_datetime_ms("2024-01-02T03:04Z"), Some(base - 5000));
        assert_eq!(parse_datetime_ms("2024-01-02"), Some(1_704_153_600_000));
        assert_eq!(parse_datetime_ms("1704164645123"), Some(base + 123));
        assert_eq!(parse_datetime_ms("-1000"), Some(-1000));
        assert_eq!(parse_datetime_ms("1969-12-31T23:59:59.999Z"), Some(-1));
    }

    #[test]
    fn datetime_parsing_rejects_malformed_text() {
        for text in [
            "",
            "2024-1-01",
            "2024-13-01",
            "2024-02-30",
            "2024-01-02T24:00:00Z",
            "2024-01-02T03:04:60Z",
            "2024-01-02T03:04:05.Z",
            "2024-01-02T03:04:05+25:00",
            "2024-01-02T03:04:05 UTC",
            "2024-01-02X03:04:05",
            "02/01/2024",
            "yesterday",
            "2024-01-02T03:04:05Z trailing",
            "２０２４-01-02",
        ] {
            assert_eq!(parse_datetime_ms(text), None, "{text:?}");
        }
    }

    #[test]
    fn iso_formatting_is_utc_with_milliseconds() {
        assert_eq!(
            iso_millis(1_704_164_645_123).as_deref(),
            Some("2024-01-02T03:04:05.123Z")
        );
        assert_eq!(iso_millis(0).as_deref(), Some("1970-01-01T00:00:00.000Z"));
        assert_eq!(iso_millis(-1).as_deref(), Some("1969-12-31T23:59:59.999Z"));
        assert_eq!(
            iso_millis(253_402_300_800_000).as_deref(),
            Some("+10000-01-01T00:00:00.000Z")
        );
        assert_eq!(iso_millis(i64::MAX), None);
    }

    #[test]
    fn float_form_parses_text_and_casts_numbers() {
        let text = StringArray::from(vec![Some("1.5"), Some("x"), None, Some(" 2 ")]);
        assert_eq!(
            float_form(&text).unwrap(),
            Float64Array::from(vec![Some(1.5), None, None, Some(2.0)])
        );
        let ints = Int32Array::from(vec![Some(3), None]);
        assert_eq!(
            float_form(&ints).unwrap(),
            Float64Array::from(vec![Some(3.0), None])
        );
        let bools = BooleanArray::from(vec![true]);
        assert_eq!(float_form(&bools).unwrap().null_count(), 1);
        let large = LargeStringArray::from(vec!["4"]);
        assert_eq!(float_form(&large).unwrap(), Float64Array::from(vec![4.0]));
        let dict: DictionaryArray<Int8Type> = vec!["5", "x", "5"].into_iter().collect();
        assert_eq!(
            float_form(&dict).unwrap(),
            Float64Array::from(vec![Some(5.0), None, Some(5.0)])
        );
    }

    #[test]
    fn millis_form_converts_every_instant_representation() {
        let ms = 1_704_164_645_123i64;
        let seconds = TimestampSecondArray::from(vec![ms / 1000]);
        assert_eq!(millis_form(&seconds).unwrap().value(0), ms - 123);
        let micros = TimestampMicrosecondArray::from(vec![ms * 1000 + 999]).with_timezone("+05:00");
        assert_eq!(millis_form(&micros).unwrap().value(0), ms);
        let nanos = TimestampNanosecondArray::from(vec![-1]);
        assert_eq!(millis_form(&nanos).unwrap().value(0), -1);
        let dates = Date32Array::from(vec![1]);
        assert_eq!(millis_form(&dates).unwrap().value(0), MILLIS_PER_DAY);
        let text = StringArray::from(vec![Some("2024-01-02T03:04:05.123Z"), Some("soon"), None]);
        assert_eq!(
            millis_form(&text).unwrap(),
            Int64Array::from(vec![Some(ms), None, None])
        );
        let floats = Float64Array::from(vec![1.9, -1.5, f64::NAN]);
        assert_eq!(
            millis_form(&floats).unwrap(),
            Int64Array::from(vec![Some(1), Some(-2), None])
        );
        let unsigned = UInt64Array::from(vec![u64::MAX, 5]);
        assert_eq!(
            millis_form(&unsigned).unwrap(),
            Int64Array::from(vec![None, Some(5)])
        );
    }

    #[test]
    fn string_form_normalises_instants_and_formats_numbers() {
        let ts = arrow_array::TimestampMillisecondArray::from(vec![Some(1_704_164_645_123), None])
            .with_timezone("+01:00");
        let text = string_form(&ts).unwrap();
        assert_eq!(text.value(0), "2024-01-02T03:04:05.123Z");
        assert!(text.is_null(1));
        let floats = Float64Array::from(vec![3.0, 1.5]);
        let text = string_form(&floats).unwrap();
        assert_eq!((text.value(0), text.value(1)), ("3.0", "1.5"));
    }

    #[test]
    fn bool_form_reads_words_digits_and_numbers() {
        let text = StringArray::from(vec![Some("true"), Some("0"), Some("maybe"), None]);
        assert_eq!(
            bool_form(&text).unwrap(),
            BooleanArray::from(vec![Some(true), Some(false), None, None])
        );
        let ints = Int32Array::from(vec![1, 0, 2]);
        assert_eq!(
            bool_form(&ints).unwrap(),
            BooleanArray::from(vec![Some(true), Some(false), None])
        );
    }

    #[test]
    fn display_value_quotes_and_shortens() {
        let text = StringArray::from(vec![Some("héllo"), None, Some(&*"x".repeat(100))]);
        assert_eq!(display_value(&text, 0), "\"héllo\"");
        assert_eq!(display_value(&text, 1), "null");
        assert_eq!(display_value(&text, 2), format!("\"{}…\"", "x".repeat(64)));
        let ints = Int64Array::from(vec![42]);
        assert_eq!(display_value(&ints, 0), "42");
    }
}
