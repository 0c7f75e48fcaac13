//! Encoding Arrow arrays as `COPY … FROM STDIN (FORMAT binary)` input.
//!
//! Every Arrow column is sent as the Postgres type closest to it ([`StageType`]); the merge
//! step casts to the target column's type when the two differ. Arrow types without a close
//! Postgres type are sent as their text form (as `arrow-cast` prints them).

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, Time32MillisecondType, Time32SecondType, Time64MicrosecondType,
    Time64NanosecondType, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, TimeUnit};

use crate::decode::{COPY_SIGNATURE, PG_EPOCH_DAYS, PG_EPOCH_MICROS};

/// The Postgres type an Arrow column is sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageType {
    /// `boolean`.
    Bool,
    /// `smallint`.
    Int2,
    /// `integer`.
    Int4,
    /// `bigint`.
    Int8,
    /// `real`.
    Float4,
    /// `double precision`.
    Float8,
    /// `numeric`.
    Numeric,
    /// `text`.
    Text,
    /// `bytea`.
    Bytea,
    /// `date`.
    Date,
    /// `timestamp`.
    Timestamp,
    /// `timestamptz`.
    Timestamptz,
    /// `time`.
    Time,
}

impl StageType {
    /// Whether a column of type `oid` reads this stage type's binary form as its own, with the
    /// same checks as an assignment cast (type modifiers included), so a COPY can load it
    /// without a cast: the stage type itself, and `varchar` or `json` for text.
    pub fn loads_into(self, oid: u32) -> bool {
        let own = match self {
            Self::Bool => 16,
            Self::Int2 => 21,
            Self::Int4 => 23,
            Self::Int8 => 20,
            Self::Float4 => 700,
            Self::Float8 => 701,
            Self::Numeric => 1700,
            Self::Text => 25,
            Self::Bytea => 17,
            Self::Date => 1082,
            Self::Timestamp => 1114,
            Self::Timestamptz => 1184,
            Self::Time => 1083,
        };
        // varchar (1043) and json (114) receive text's bytes and check them as a cast would.
        oid == own || (self == Self::Text && matches!(oid, 1043 | 114))
    }
}

/// How one Arrow column is sent: its stage type and SQL type (for `CREATE TABLE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageColumn {
    /// Wire encoding.
    pub stage: StageType,
    /// SQL type of a column created for this Arrow type.
    pub sql_type: String,
    /// Whether the array must be cast to `Utf8` before encoding.
    pub via_text: bool,
}

/// Chooses the stage type of an Arrow type.
pub fn stage_column(data_type: &DataType) -> StageColumn {
    let (stage, sql_type) = match data_type {
        DataType::Boolean => (StageType::Bool, "boolean".to_owned()),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => {
            (StageType::Int2, "smallint".to_owned())
        }
        DataType::Int32 | DataType::UInt16 => (StageType::Int4, "integer".to_owned()),
        DataType::Int64 | DataType::UInt32 => (StageType::Int8, "bigint".to_owned()),
        DataType::UInt64 => (StageType::Numeric, "numeric(20,0)".to_owned()),
        DataType::Float32 => (StageType::Float4, "real".to_owned()),
        DataType::Float64 => (StageType::Float8, "double precision".to_owned()),
        DataType::Decimal128(p, s) if *s >= 0 => (StageType::Numeric, format!("numeric({p},{s})")),
        DataType::Decimal128(..) => (StageType::Numeric, "numeric".to_owned()),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            (StageType::Text, "text".to_owned())
        }
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => (StageType::Bytea, "bytea".to_owned()),
        DataType::Date32 | DataType::Date64 => (StageType::Date, "date".to_owned()),
        DataType::Timestamp(_, None) => (StageType::Timestamp, "timestamp".to_owned()),
        DataType::Timestamp(_, Some(_)) => (StageType::Timestamptz, "timestamptz".to_owned()),
        DataType::Time32(_) | DataType::Time64(_) => (StageType::Time, "time".to_owned()),
        _ => {
            return StageColumn {
                stage: StageType::Text,
                sql_type: "text".to_owned(),
                via_text: true,
            };
        }
    };
    let via_text = matches!(
        data_type,
        DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_)
    );
    StageColumn {
        stage,
        sql_type,
        via_text,
    }
}

/// Brings an array into the form the encoder reads: large/view strings become `Utf8`,
/// large/view/fixed binaries become `Binary`, other unusual types become their text.
pub fn normalize(array: &ArrayRef, column: &StageColumn) -> Result<ArrayRef, String> {
    if !column.via_text {
        return Ok(array.clone());
    }
    let target = if column.stage == StageType::Bytea {
        DataType::Binary
    } else {
        DataType::Utf8
    };
    arrow_cast::cast(array, &target).map_err(|e| {
        format!(
            "Arrow type {} cannot be written to Postgres ({e})",
            array.data_type()
        )
    })
}

/// Appends the binary COPY header.
pub fn write_header(out: &mut Vec<u8>) {
    out.extend_from_slice(COPY_SIGNATURE);
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
}

/// Appends the binary COPY trailer.
pub fn write_trailer(out: &mut Vec<u8>) {
    out.extend_from_slice(&(-1i16).to_be_bytes());
}

/// Appends row `row` of `arrays` (already normalized) as one COPY tuple.
pub fn write_row(
    out: &mut Vec<u8>,
    arrays: &[ArrayRef],
    stages: &[StageType],
    row: usize,
) -> Result<(), (usize, String)> {
    let count = i16::try_from(arrays.len()).map_err(|_| (0, "too many columns".to_owned()))?;
    out.extend_from_slice(&count.to_be_bytes());
    for (i, (array, stage)) in arrays.iter().zip(stages).enumerate() {
        if array.is_null(row) {
            out.extend_from_slice(&(-1i32).to_be_bytes());
            continue;
        }
        let len_at = out.len();
        out.extend_from_slice(&0i32.to_be_bytes());
        encode_value(out, array, *stage, row).map_err(|e| (i, e))?;
        let len = i32::try_from(out.len() - len_at - 4)
            .map_err(|_| (i, "value is larger than 2 GiB".to_owned()))?;
        out[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

fn encode_value(
    out: &mut Vec<u8>,
    array: &ArrayRef,
    stage: StageType,
    row: usize,
) -> Result<(), String> {
    match (stage, array.data_type()) {
        (StageType::Bool, _) => out.push(u8::from(array.as_boolean().value(row))),
        (StageType::Int2, DataType::Int8) => out.extend_from_slice(
            &i16::from(array.as_primitive::<Int8Type>().value(row)).to_be_bytes(),
        ),
        (StageType::Int2, DataType::UInt8) => out.extend_from_slice(
            &i16::from(array.as_primitive::<UInt8Type>().value(row)).to_be_bytes(),
        ),
        (StageType::Int2, _) => {
            out.extend_from_slice(&array.as_primitive::<Int16Type>().value(row).to_be_bytes())
        }
        (StageType::Int4, DataType::UInt16) => out.extend_from_slice(
            &i32::from(array.as_primitive::<UInt16Type>().value(row)).to_be_bytes(),
        ),
        (StageType::Int4, _) => {
            out.extend_from_slice(&array.as_primitive::<Int32Type>().value(row).to_be_bytes())
        }
        (StageType::Int8, DataType::UInt32) => out.extend_from_slice(
            &i64::from(array.as_primitive::<UInt32Type>().value(row)).to_be_bytes(),
        ),
        (StageType::Int8, _) => {
            out.extend_from_slice(&array.as_primitive::<Int64Type>().value(row).to_be_bytes())
        }
        (StageType::Float4, _) => {
            out.extend_from_slice(&array.as_primitive::<Float32Type>().value(row).to_be_bytes())
        }
        (StageType::Float8, _) => {
            out.extend_from_slice(&array.as_primitive::<Float64Type>().value(row).to_be_bytes())
        }
        (StageType::Numeric, DataType::UInt64) => encode_numeric(
            out,
            i128::from(array.as_primitive::<UInt64Type>().value(row)),
            0,
        ),
        (StageType::Numeric, DataType::Decimal128(_, scale)) => encode_numeric(
            out,
            array.as_primitive::<Decimal128Type>().value(row),
            *scale,
        ),
        (StageType::Text, _) => {
            out.extend_from_slice(array.as_string::<i32>().value(row).as_bytes())
        }
        (StageType::Bytea, _) => out.extend_from_slice(array.as_binary::<i32>().value(row)),
        (StageType::Date, DataType::Date64) => {
            let millis = array.as_primitive::<Date64Type>().value(row);
            let days = i32::try_from(millis.div_euclid(86_400_000))
                .ok()
                .and_then(|d| d.checked_sub(PG_EPOCH_DAYS))
                .ok_or_else(|| format!("date {millis} ms is out of range"))?;
            out.extend_from_slice(&days.to_be_bytes())
        }
        (StageType::Date, _) => {
            let days = array
                .as_primitive::<Date32Type>()
                .value(row)
                .checked_sub(PG_EPOCH_DAYS)
                .ok_or_else(|| "date is out of range".to_owned())?;
            out.extend_from_slice(&days.to_be_bytes())
        }
        (StageType::Timestamp | StageType::Timestamptz, DataType::Timestamp(unit, _)) => {
            let micros = match unit {
                TimeUnit::Second => array
                    .as_primitive::<TimestampSecondType>()
                    .value(row)
                    .checked_mul(1_000_000),
                TimeUnit::Millisecond => array
                    .as_primitive::<TimestampMillisecondType>()
                    .value(row)
                    .checked_mul(1_000),
                TimeUnit::Microsecond => {
                    Some(array.as_primitive::<TimestampMicrosecondType>().value(row))
                }
                TimeUnit::Nanosecond => Some(
                    array
                        .as_primitive::<TimestampNanosecondType>()
                        .value(row)
                        .div_euclid(1_000),
                ),
            }
            .and_then(|m| m.checked_sub(PG_EPOCH_MICROS))
            .ok_or_else(|| "timestamp is out of range".to_owned())?;
            out.extend_from_slice(&micros.to_be_bytes())
        }
        (StageType::Time, data_type) => {
            let micros: i64 = match data_type {
                DataType::Time32(TimeUnit::Second) => {
                    i64::from(array.as_primitive::<Time32SecondType>().value(row)) * 1_000_000
                }
                DataType::Time32(_) => {
                    i64::from(array.as_primitive::<Time32MillisecondType>().value(row)) * 1_000
                }
                DataType::Time64(TimeUnit::Microsecond) => {
                    array.as_primitive::<Time64MicrosecondType>().value(row)
                }
                _ => array.as_primitive::<Time64NanosecondType>().value(row) / 1_000,
            };
            out.extend_from_slice(&micros.to_be_bytes())
        }
        (stage, data_type) => {
            return Err(format!(
                "Arrow type {data_type} cannot be sent as {stage:?}"
            ));
        }
    }
    Ok(())
}

/// Appends `value * 10^-scale` in `numeric`'s binary form (base-10000 digits).
pub fn encode_numeric(out: &mut Vec<u8>, value: i128, scale: i8) {
    // Scaled so the decimal point falls on a base-10000 digit boundary, the value is cut into
    // digits by integer division; values too large for that take the decimal text path.
    let frac_groups = (i32::from(scale.max(0)) + 3) / 4;
    let shift = u32::try_from(frac_groups * 4 - i32::from(scale)).unwrap_or(u32::MAX);
    let Some(mut scaled) = 10u128
        .checked_pow(shift)
        .and_then(|m| value.unsigned_abs().checked_mul(m))
    else {
        return encode_numeric_text(out, value, scale);
    };
    // At most 39 decimal digits: 10 base-10000 digits, least significant first.
    let mut digits = [0i16; 10];
    let mut count = 0;
    while scaled != 0 {
        // Below 10000, so the cast is exact.
        digits[count] = (scaled % 10_000) as i16;
        scaled /= 10_000;
        count += 1;
    }
    // Trailing zero digits are implied.
    let skip = digits[..count].iter().take_while(|d| **d == 0).count();
    let ndigits = (count - skip) as i16;
    let (weight, sign) = match (ndigits, value < 0) {
        (0, _) => (0i16, 0x0000u16),
        (_, true) => (count as i16 - frac_groups as i16 - 1, 0x4000),
        (_, false) => (count as i16 - frac_groups as i16 - 1, 0x0000),
    };
    out.extend_from_slice(&ndigits.to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&i16::from(scale.max(0)).to_be_bytes());
    for digit in digits[skip..count].iter().rev() {
        out.extend_from_slice(&digit.to_be_bytes());
    }
}

/// [`encode_numeric`] through the decimal text, for values beyond `u128` once scaled.
pub(crate) fn encode_numeric_text(out: &mut Vec<u8>, value: i128, scale: i8) {
    let negative = value < 0;
    let digits = value.unsigned_abs().to_string();
    let (int_part, frac_part) = if scale <= 0 {
        (
            format!("{digits}{}", "0".repeat(usize::from(scale.unsigned_abs()))),
            String::new(),
        )
    } else {
        let scale = usize::from(scale.unsigned_abs());
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let split = padded.len() - scale;
        (padded[..split].to_owned(), padded[split..].to_owned())
    };
    // Align both parts on base-10000 digit boundaries.
    let int_len = int_part.len().div_ceil(4) * 4;
    let int_part = format!("{int_part:0>int_len$}");
    let frac_len = frac_part.len().div_ceil(4) * 4;
    let frac_part = format!("{frac_part:0<frac_len$}");
    let group = |s: &str| s.parse::<i16>().unwrap_or(0);
    let int_groups: Vec<i16> = (0..int_part.len())
        .step_by(4)
        .map(|i| group(&int_part[i..i + 4]))
        .collect();
    let frac_groups: Vec<i16> = (0..frac_part.len())
        .step_by(4)
        .map(|i| group(&frac_part[i..i + 4]))
        .collect();
    let mut weight = i16::try_from(int_groups.len()).unwrap_or(i16::MAX) - 1;
    let mut groups: Vec<i16> = int_groups.into_iter().chain(frac_groups).collect();
    // Leading zero groups lower the weight; trailing ones are implied.
    let leading = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..leading);
    weight -= i16::try_from(leading).unwrap_or(0);
    while groups.last() == Some(&0) {
        groups.pop();
    }
    let dscale = i16::from(scale.max(0));
    let (sign, weight) = match (groups.is_empty(), negative) {
        (true, _) => (0x0000u16, 0i16),
        (false, true) => (0x4000, weight),
        (false, false) => (0x0000, weight),
    };
    let ndigits = i16::try_from(groups.len()).unwrap_or(0);
    out.extend_from_slice(&ndigits.to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
}

/// The Arrow arrays of a batch, normalized for encoding, with their stage types.
pub fn prepare(
    arrays: &[ArrayRef],
    columns: &[StageColumn],
    names: &[String],
) -> Result<(Vec<ArrayRef>, Vec<StageType>), String> {
    let mut out = Vec::with_capacity(arrays.len());
    for ((array, column), name) in arrays.iter().zip(columns).zip(names) {
        out.push(normalize(array, column).map_err(|e| format!("field {name}: {e}"))?);
    }
    Ok((out, columns.iter().map(|c| c.stage).collect()))
}

/// Rewrites a JSON array, the form the source reads Postgres arrays in (`[1,[2,null]]`), as a
/// Postgres array literal (`{"1",{"2",NULL}}`), so an array column can be written back.
/// `json_elements` is for `json[]`/`jsonb[]` columns, whose elements are JSON text themselves
/// (a nested JSON array is then one element, not a dimension). Numbers keep their exact text.
/// `None` when `text` is not a JSON array; the value is then sent as it is.
pub fn pg_array_literal(text: &str, json_elements: bool) -> Option<String> {
    let mut scanner = JsonScanner {
        text: text.as_bytes(),
        pos: 0,
    };
    let mut out = String::with_capacity(text.len() + 8);
    scanner.skip_ws();
    scanner.array(&mut out, json_elements)?;
    scanner.skip_ws();
    (scanner.pos == text.len()).then_some(out)
}

/// A minimal JSON reader over one value, keeping the text of scalars as written.
struct JsonScanner<'a> {
    text: &'a [u8],
    pos: usize,
}

impl JsonScanner<'_> {
    fn skip_ws(&mut self) {
        while matches!(self.text.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    /// Reads an array at the current position into `out` as `{…}`.
    fn array(&mut self, out: &mut String, json_elements: bool) -> Option<()> {
        if self.peek()? != b'[' {
            return None;
        }
        self.pos += 1;
        out.push('{');
        self.skip_ws();
        if self.peek()? == b']' {
            self.pos += 1;
            out.push('}');
            return Some(());
        }
        loop {
            self.skip_ws();
            match self.peek()? {
                b'[' if !json_elements => self.array(out, false)?,
                b'"' if !json_elements => {
                    let raw = self.raw_value()?;
                    let value: String = serde_json::from_str(raw).ok()?;
                    quote_element(out, &value);
                }
                _ => {
                    let raw = self.raw_value()?;
                    if raw == "null" {
                        out.push_str("NULL");
                    } else {
                        // Numbers, booleans, and whole JSON values of json[] elements.
                        serde_json::from_str::<serde_json::Value>(raw).ok()?;
                        quote_element(out, raw);
                    }
                }
            }
            self.skip_ws();
            match self.peek()? {
                b',' => {
                    self.pos += 1;
                    out.push(',');
                }
                b']' => {
                    self.pos += 1;
                    out.push('}');
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// The text of the JSON value at the current position, up to the `,` or `]` after it.
    /// Only its extent is found here; callers parse it.
    fn raw_value(&mut self) -> Option<&str> {
        let start = self.pos;
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        while let Some(byte) = self.peek() {
            if in_string {
                if escaped {
                    escaped = false;
                } else if byte == b'\\' {
                    escaped = true;
                } else if byte == b'"' {
                    in_string = false;
                    if depth == 0 {
                        self.pos += 1;
                        break;
                    }
                }
            } else {
                match byte {
                    b'"' => in_string = true,
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' if depth == 0 => break,
                    b']' | b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            self.pos += 1;
                            break;
                        }
                    }
                    b',' if depth == 0 => break,
                    _ => {}
                }
            }
            self.pos += 1;
        }
        if in_string || depth != 0 {
            return None;
        }
        // Delimiters are ASCII, so the slice ends on a character boundary.
        std::str::from_utf8(&self.text[start..self.pos])
            .ok()
            .map(str::trim_end)
    }
}

/// Appends `value` as a double-quoted array element.
fn quote_element(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Replaces, in a `Utf8` array, every JSON array by its Postgres array literal.
pub fn json_arrays_to_literals(array: &ArrayRef, json_elements: bool) -> ArrayRef {
    let Some(strings) = array.as_string_opt::<i32>() else {
        return array.clone();
    };
    let converted: arrow_array::StringArray = strings
        .iter()
        .map(|value| {
            value.map(|text| {
                pg_array_literal(text, json_elements).unwrap_or_else(|| text.to_owned())
            })
        })
        .collect();
    std::sync::Arc::new(converted)
}

/// Row `row` of `batch` as JSON, field name to value as sent: numbers and booleans as JSON,
/// decimals, dates, times and timestamps (ISO 8601) as their text, binary as base64.
pub fn row_json(batch: &RecordBatch, row: usize) -> serde_json::Map<String, serde_json::Value> {
    batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, array)| (field.name().clone(), json_value(array.as_ref(), row)))
        .collect()
}

fn json_value(array: &dyn Array, row: usize) -> serde_json::Value {
    use serde_json::Value;
    if row >= array.len() || array.is_null(row) {
        return Value::Null;
    }
    let float = |value: f64, text: String| {
        if value.is_nan() {
            Value::String("NaN".to_owned())
        } else if value.is_infinite() {
            Value::String(if value > 0.0 { "Infinity" } else { "-Infinity" }.to_owned())
        } else {
            // Through the shortest text, so a `real` 1.1 stays 1.1 rather than 1.100000023….
            text.parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or(Value::Null, Value::Number)
        }
    };
    match array.data_type() {
        DataType::Boolean => Value::Bool(array.as_boolean().value(row)),
        DataType::Int8 => array.as_primitive::<Int8Type>().value(row).into(),
        DataType::Int16 => array.as_primitive::<Int16Type>().value(row).into(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row).into(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).into(),
        DataType::UInt8 => array.as_primitive::<UInt8Type>().value(row).into(),
        DataType::UInt16 => array.as_primitive::<UInt16Type>().value(row).into(),
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(row).into(),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(row).into(),
        DataType::Float32 => {
            let value = array.as_primitive::<Float32Type>().value(row);
            float(f64::from(value), value.to_string())
        }
        DataType::Float64 => {
            let value = array.as_primitive::<Float64Type>().value(row);
            float(value, value.to_string())
        }
        DataType::Utf8 => Value::String(array.as_string::<i32>().value(row).to_owned()),
        DataType::LargeUtf8 => Value::String(array.as_string::<i64>().value(row).to_owned()),
        DataType::Utf8View => Value::String(array.as_string_view().value(row).to_owned()),
        DataType::Binary => base64_value(array.as_binary::<i32>().value(row)),
        DataType::LargeBinary => base64_value(array.as_binary::<i64>().value(row)),
        DataType::BinaryView => base64_value(array.as_binary_view().value(row)),
        DataType::FixedSizeBinary(_) => base64_value(array.as_fixed_size_binary().value(row)),
        // Decimals, dates, times, timestamps (ISO 8601 with `T`) and anything else: the text
        // arrow-cast prints, which is also what non-native types are sent as.
        _ => {
            let options = arrow_cast::display::FormatOptions::default();
            match arrow_cast::display::ArrayFormatter::try_new(array, &options) {
                Ok(formatter) => Value::String(formatter.value(row).to_string()),
                Err(error) => Value::String(format!("<{}: {error}>", array.data_type())),
            }
        }
    }
}

fn base64_value(bytes: &[u8]) -> serde_json::Value {
    use base64::Engine as _;
    serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
}
