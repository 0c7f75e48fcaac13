//! `Map` / `Passthrough` outputs and the type conversion of `DESTINATION_DATA_TYPE`.
//!
//! | destination type family | output | accepted input |
//! |---|---|---|
//! | string, text, id, picklist, ... | `Utf8` | anything, in its text form (instants as ISO-8601 UTC) |
//! | integer, int, long | `Int64` | whole numbers in text (`12`, `12.0`, `1e3`), integers, integral floats and decimals, booleans (1/0), instants (epoch ms) |
//! | double, float, decimal, currency, percent | `Float64` | numbers in text, any number, booleans (1/0), instants (epoch ms) |
//! | boolean | `Boolean` | `true`/`false`/`1`/`0` in text (any case), booleans, numbers 0 and 1 |
//! | date, datetime, timestamp | `Utf8` `2024-01-02T03:04:05.123Z` | ISO-8601 text with or without zone, epoch milliseconds (text or number), timestamps, dates |
//!
//! Empty or blank text converts to null for the typed families (CSV writes a missing number as an
//! empty cell). Anything else that does not convert (`"abc"` to integer, a value beyond the
//! `i64` range, `1.5` to integer) fails the batch with a [`TransformError::Conversion`] naming the
//! field, the row and the value: silently writing null would lose data. Unknown type names, and
//! `Passthrough`, keep the column as it is.

use arrow_array::builder::StringBuilder;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array, Int64Array, new_null_array};
use arrow_schema::{ArrowError, DataType};

use crate::error::TransformError;
use crate::types::TypeClass;
use crate::values::{
    arc, display_value, f64_to_i64, float_form, is_blank, is_datetime_type, is_integer_type,
    is_numeric_type, millis_form, parse_bool, parse_datetime_ms, parse_f64, parse_i64, string_form,
    write_iso_millis,
};

/// The conversion a `Map` applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conversion {
    /// Unknown destination type, or `Passthrough`.
    Keep,
    To(TypeClass),
}

/// A compiled `Map` or `Passthrough` output column.
#[derive(Debug, Clone)]
pub(crate) struct OutputStep {
    pub(crate) task: usize,
    pub(crate) source: String,
    pub(crate) destination: String,
    pub(crate) conversion: Conversion,
}

impl OutputStep {
    /// Converts the source column. Row numbers in errors are positions in `column`.
    pub(crate) fn convert(&self, column: &ArrayRef) -> Result<ArrayRef, TransformError> {
        let class = match self.conversion {
            Conversion::Keep => return Ok(column.clone()),
            Conversion::To(class) => class,
        };
        let converter = Converter {
            step: self,
            original: column.as_ref(),
            class,
        };
        let plain = match column.data_type() {
            DataType::Dictionary(_, value_type) => arrow_cast::cast(column, value_type)
                .map_err(|error| converter.arrow("decoding dictionary", error))?,
            _ => column.clone(),
        };
        match class {
            TypeClass::Text => converter.to_text(plain),
            TypeClass::Integer => converter.to_integer(plain.as_ref()),
            TypeClass::Float => converter.to_float(plain.as_ref()),
            TypeClass::Boolean => converter.to_boolean(plain.as_ref()),
            TypeClass::DateTime => converter.to_datetime(plain.as_ref()),
        }
    }
}

struct Converter<'a> {
    step: &'a OutputStep,
    /// The column as given, for quoting values in errors.
    original: &'a dyn Array,
    class: TypeClass,
}

impl Converter<'_> {
    fn fail(&self, row: usize, reason: &'static str) -> TransformError {
        TransformError::Conversion {
            task: self.step.task,
            field: self.step.source.clone(),
            row,
            value: display_value(self.original, row),
            target: self.class.name(),
            reason,
        }
    }

    fn arrow(&self, context: &'static str, error: ArrowError) -> TransformError {
        TransformError::arrow(&self.step.source, context, error)
    }

    fn text_of(&self, column: &dyn Array) -> Result<arrow_array::StringArray, TransformError> {
        string_form(column).map_err(|error| self.arrow("reading text form", error))
    }

    /// Rows where `converted` is null but `input` was not: values the conversion rejected.
    fn check_lossless(
        &self,
        input: &dyn Array,
        converted: &dyn Array,
        reason: &'static str,
    ) -> Result<(), TransformError> {
        if converted.null_count() == input.null_count() {
            return Ok(());
        }
        match (0..input.len()).find(|&row| converted.is_null(row) && !input.is_null(row)) {
            Some(row) => Err(self.fail(row, reason)),
            None => Ok(()),
        }
    }

    fn to_text(&self, column: ArrayRef) -> Result<ArrayRef, TransformError> {
        if column.data_type() == &DataType::Utf8 {
            return Ok(column);
        }
        Ok(arc(self.text_of(column.as_ref())?))
    }

    fn to_integer(&self, column: &dyn Array) -> Result<ArrayRef, TransformError> {
        let data_type = column.data_type();
        let converted: Int64Array = match data_type {
            DataType::Int64 => column.as_primitive::<Int64Type>().clone(),
            DataType::Utf8 => {
                let mut values = Vec::with_capacity(column.len());
                for (row, value) in column.as_string::<i32>().iter().enumerate() {
                    values.push(match value {
                        Some(text) if !is_blank(text) => {
                            Some(parse_i64(text).map_err(|reason| self.fail(row, reason))?)
                        }
                        _ => None,
                    });
                }
                Int64Array::from(values)
            }
            DataType::Null => Int64Array::new_null(column.len()),
            DataType::Boolean => self.cast(column, &DataType::Int64)?.as_primitive().clone(),
            _ if is_integer_type(data_type) => {
                let cast = self.cast(column, &DataType::Int64)?;
                self.check_lossless(column, cast.as_ref(), "outside the 64-bit integer range")?;
                cast.as_primitive().clone()
            }
            DataType::Float16 | DataType::Float32 | DataType::Float64 => {
                let numbers =
                    float_form(column).map_err(|error| self.arrow("reading numbers", error))?;
                let mut values = Vec::with_capacity(column.len());
                for (row, value) in numbers.iter().enumerate() {
                    values.push(
                        value
                            .map(f64_to_i64)
                            .transpose()
                            .map_err(|reason| self.fail(row, reason))?,
                    );
                }
                Int64Array::from(values)
            }
            // Decimals go through their exact text form so large values keep every digit.
            _ if is_numeric_type(data_type) => {
                return self.to_integer(&self.text_of(column)?);
            }
            _ if is_datetime_type(data_type) => {
                millis_form(column).map_err(|error| self.arrow("reading instants", error))?
            }
            _ => return self.to_integer(&self.text_of(column)?),
        };
        Ok(arc(converted))
    }

    fn to_float(&self, column: &dyn Array) -> Result<ArrayRef, TransformError> {
        let data_type = column.data_type();
        let converted: Float64Array = match data_type {
            DataType::Utf8 => {
                let mut values = Vec::with_capacity(column.len());
                for (row, value) in column.as_string::<i32>().iter().enumerate() {
                    values.push(match value {
                        Some(text) if !is_blank(text) => {
                            Some(parse_f64(text).ok_or_else(|| self.fail(row, "not a number"))?)
                        }
                        _ => None,
                    });
                }
                Float64Array::from(values)
            }
            DataType::Null => Float64Array::new_null(column.len()),
            DataType::Boolean => self
                .cast(column, &DataType::Float64)?
                .as_primitive()
                .clone(),
            _ if is_numeric_type(data_type) => {
                float_form(column).map_err(|error| self.arrow("reading numbers", error))?
            }
            _ if is_datetime_type(data_type) => {
                let millis =
                    millis_form(column).map_err(|error| self.arrow("reading instants", error))?;
                millis.unary(|millis| millis as f64)
            }
            _ => return self.to_float(&self.text_of(column)?),
        };
        Ok(arc(converted))
    }

    fn to_boolean(&self, column: &dyn Array) -> Result<ArrayRef, TransformError> {
        let data_type = column.data_type();
        let converted: BooleanArray = match data_type {
            DataType::Boolean => column.as_boolean().clone(),
            DataType::Utf8 => {
                let mut values = Vec::with_capacity(column.len());
                for (row, value) in column.as_string::<i32>().iter().enumerate() {
                    values.push(match value {
                        Some(text) if !is_blank(text) => Some(
                            parse_bool(text)
                                .ok_or_else(|| self.fail(row, "not true, false, 1 or 0"))?,
                        ),
                        _ => None,
                    });
                }
                BooleanArray::from(values)
            }
            DataType::Null => BooleanArray::new_null(column.len()),
            _ if is_numeric_type(data_type) => {
                let numbers =
                    float_form(column).map_err(|error| self.arrow("reading numbers", error))?;
                let mut values = Vec::with_capacity(column.len());
                for (row, value) in numbers.iter().enumerate() {
                    values.push(match value {
                        None => None,
                        Some(0.0) => Some(false),
                        Some(1.0) => Some(true),
                        Some(_) => return Err(self.fail(row, "only 0 and 1 are booleans")),
                    });
                }
                BooleanArray::from(values)
            }
            _ if is_datetime_type(data_type) => {
                return match (0..column.len()).find(|&row| column.is_valid(row)) {
                    Some(row) => Err(self.fail(row, "an instant is not a boolean")),
                    None => Ok(new_null_array(&DataType::Boolean, column.len())),
                };
            }
            _ => return self.to_boolean(&self.text_of(column)?),
        };
        Ok(arc(converted))
    }

    fn to_datetime(&self, column: &dyn Array) -> Result<ArrayRef, TransformError> {
        let data_type = column.data_type();
        let millis: Int64Array = match data_type {
            DataType::Utf8 => {
                let mut values = Vec::with_capacity(column.len());
                for (row, value) in column.as_string::<i32>().iter().enumerate() {
                    values.push(match value {
                        Some(text) if !is_blank(text) => {
                            Some(parse_datetime_ms(text).ok_or_else(|| {
                                self.fail(row, "not an ISO-8601 datetime or epoch milliseconds")
                            })?)
                        }
                        _ => None,
                    });
                }
                Int64Array::from(values)
            }
            DataType::Null => Int64Array::new_null(column.len()),
            DataType::Boolean => {
                return match (0..column.len()).find(|&row| column.is_valid(row)) {
                    Some(row) => Err(self.fail(row, "a boolean is not an instant")),
                    None => Ok(new_null_array(&DataType::Utf8, column.len())),
                };
            }
            _ if is_numeric_type(data_type) || is_datetime_type(data_type) => {
                let millis =
                    millis_form(column).map_err(|error| self.arrow("reading instants", error))?;
                self.check_lossless(column, &millis, "not a valid epoch-millisecond value")?;
                millis
            }
            _ => return self.to_datetime(&self.text_of(column)?),
        };
        let mut builder = StringBuilder::with_capacity(millis.len(), millis.len() * 24);
        for (row, value) in millis.iter().enumerate() {
            match value {
                Some(millis) => {
                    write_iso_millis(&mut builder, millis)
                        .map_err(|()| self.fail(row, "outside the representable date range"))?;
                    builder.append_value("");
                }
                None => builder.append_null(),
            }
        }
        Ok(arc(builder.finish()))
    }

    fn cast(&self, column: &dyn Array, to: &DataType) -> Result<ArrayRef, TransformError> {
        arrow_cast::cast(column, to).map_err(|error| self.arrow("casting", error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::types::Float64Type;
    use arrow_array::{
        Date32Array, Decimal128Array, DictionaryArray, Float32Array, Int32Array, StringArray,
        TimestampMicrosecondArray, TimestampSecondArray, UInt64Array, types::Int16Type,
    };

    fn step(class: Option<TypeClass>) -> OutputStep {
        OutputStep {
            task: 3,
            source: "amount".into(),
            destination: "out".into(),
            conversion: class.map_or(Conversion::Keep, Conversion::To),
        }
    }

    fn convert(class: TypeClass, column: ArrayRef) -> Result<ArrayRef, TransformError> {
        step(Some(class)).convert(&column)
    }

    fn texts(values: &[Option<&str>]) -> ArrayRef {
        arc(StringArray::from(values.to_vec()))
    }

    fn ints(out: &ArrayRef) -> Vec<Option<i64>> {
        out.as_primitive::<Int64Type>().iter().collect()
    }

    fn floats(out: &ArrayRef) -> Vec<Option<f64>> {
        out.as_primitive::<Float64Type>().iter().collect()
    }

    fn strings(out: &ArrayRef) -> Vec<Option<String>> {
        out.as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_owned))
            .collect()
    }

    fn conversion_error(result: Result<ArrayRef, TransformError>) -> (usize, String, &'static str) {
        match result {
            Err(TransformError::Conversion {
                row,
                value,
                reason,
                field,
                task,
                ..
            }) => {
                assert_eq!((field.as_str(), task), ("amount", 3));
                (row, value, reason)
            }
            other => panic!("expected a conversion error, got {other:?}"),
        }
    }

    #[test]
    fn keep_returns_the_column_untouched() {
        let column = arc(Int32Array::from(vec![1, 2]));
        let out = step(None).convert(&column).unwrap();
        assert_eq!(out.data_type(), &DataType::Int32);
    }

    #[test]
    fn text_to_integer_parses_and_blank_is_null() {
        let out = convert(
            TypeClass::Integer,
            texts(&[Some("12"), Some(" -3 "), Some(""), None, Some("4.0")]),
        )
        .unwrap();
        assert_eq!(ints(&out), [Some(12), Some(-3), None, None, Some(4)]);
    }

    #[test]
    fn text_to_integer_reports_field_row_and_value() {
        let result = convert(TypeClass::Integer, texts(&[Some("1"), Some("abc")]));
        let (row, value, reason) = conversion_error(result);
        assert_eq!(
            (row, value.as_str(), reason),
            (1, "\"abc\"", "not a number")
        );
        let message = convert(TypeClass::Integer, texts(&[Some("abc")]))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("amount") && message.contains("row 0") && message.contains("\"abc\""),
            "{message}"
        );
    }

    #[test]
    fn integer_overflow_is_an_error() {
        let (row, _, reason) = conversion_error(convert(
            TypeClass::Integer,
            texts(&[Some("99999999999999999999")]),
        ));
        assert_eq!((row, reason), (0, "outside the 64-bit integer range"));
        let unsigned = arc(UInt64Array::from(vec![1, u64::MAX]));
        let (row, value, _) = conversion_error(convert(TypeClass::Integer, unsigned));
        assert_eq!((row, value.as_str()), (1, "18446744073709551615"));
        let floats = arc(arrow_array::Float64Array::from(vec![1e19]));
        conversion_error(convert(TypeClass::Integer, floats));
    }

    #[test]
    fn fractional_values_do_not_become_integers() {
        let (_, _, reason) = conversion_error(convert(TypeClass::Integer, texts(&[Some("1.5")])));
        assert_eq!(reason, "not a whole number");
        let floats = arc(Float32Array::from(vec![2.0, 2.5]));
        let (row, _, _) = conversion_error(convert(TypeClass::Integer, floats));
        assert_eq!(row, 1);
    }

    #[test]
    fn typed_numbers_to_integer() {
        let out = convert(
            TypeClass::Integer,
            arc(Int32Array::from(vec![Some(7), None])),
        )
        .unwrap();
        assert_eq!(ints(&out), [Some(7), None]);
        let decimals = Decimal128Array::from(vec![12300, 12345])
            .with_precision_and_scale(10, 2)
            .unwrap();
        let (row, value, _) = conversion_error(convert(TypeClass::Integer, arc(decimals)));
        assert_eq!((row, value.as_str()), (1, "123.45"));
        let whole = Decimal128Array::from(vec![12300])
            .with_precision_and_scale(10, 2)
            .unwrap();
        assert_eq!(
            ints(&convert(TypeClass::Integer, arc(whole)).unwrap()),
            [Some(123)]
        );
        let bools = arc(BooleanArray::from(vec![true, false]));
        assert_eq!(
            ints(&convert(TypeClass::Integer, bools).unwrap()),
            [Some(1), Some(0)]
        );
    }

    #[test]
    fn text_to_double() {
        let out = convert(
            TypeClass::Float,
            texts(&[Some("1.25"), Some("-3"), Some("1e-3"), Some(" "), None]),
        )
        .unwrap();
        assert_eq!(
            floats(&out),
            [Some(1.25), Some(-3.0), Some(0.001), None, None]
        );
        let (row, value, _) =
            conversion_error(convert(TypeClass::Float, texts(&[Some("1"), Some("NaN")])));
        assert_eq!((row, value.as_str()), (1, "\"NaN\""));
        conversion_error(convert(TypeClass::Float, texts(&[Some("€5")])));
    }

    #[test]
    fn typed_values_to_double() {
        let out = convert(TypeClass::Float, arc(Int64Array::from(vec![i64::MAX]))).unwrap();
        assert_eq!(floats(&out), [Some(i64::MAX as f64)]);
        let instants = arc(TimestampSecondArray::from(vec![2]));
        assert_eq!(
            floats(&convert(TypeClass::Float, instants).unwrap()),
            [Some(2000.0)]
        );
    }

    #[test]
    fn text_to_boolean() {
        let out = convert(
            TypeClass::Boolean,
            texts(&[Some("true"), Some("False"), Some("1"), Some(""), None]),
        )
        .unwrap();
        let values: Vec<Option<bool>> = out.as_boolean().iter().collect();
        assert_eq!(values, [Some(true), Some(false), Some(true), None, None]);
        let (_, value, _) = conversion_error(convert(TypeClass::Boolean, texts(&[Some("oui")])));
        assert_eq!(value, "\"oui\"");
        let (row, _, _) = conversion_error(convert(
            TypeClass::Boolean,
            arc(Int64Array::from(vec![0, 2])),
        ));
        assert_eq!(row, 1);
    }

    #[test]
    fn datetimes_normalise_to_utc_iso_with_milliseconds() {
        let out = convert(
            TypeClass::DateTime,
            texts(&[
                Some("2024-01-02T04:04:05.123+01:00"),
                Some("2024-01-02T03:04:05Z"),
                Some("2024-01-02 03:04:05.1234"),
                Some("2024-01-02"),
                Some("1704164645123"),
                Some(""),
                None,
            ]),
        )
        .unwrap();
        assert_eq!(
            strings(&out),
            [
                Some("2024-01-02T03:04:05.123Z".to_owned()),
                Some("2024-01-02T03:04:05.000Z".to_owned()),
                Some("2024-01-02T03:04:05.123Z".to_owned()),
                Some("2024-01-02T00:00:00.000Z".to_owned()),
                Some("2024-01-02T03:04:05.123Z".to_owned()),
                None,
                None,
            ]
        );
    }

    #[test]
    fn typed_instants_and_epoch_numbers_to_datetime() {
        let micros =
            arc(TimestampMicrosecondArray::from(vec![1_704_164_645_123_456])
                .with_timezone("-05:00"));
        assert_eq!(
            strings(&convert(TypeClass::DateTime, micros).unwrap()),
            [Some("2024-01-02T03:04:05.123Z".to_owned())]
        );
        let dates = arc(Date32Array::from(vec![19_724]));
        assert_eq!(
            strings(&convert(TypeClass::DateTime, dates).unwrap()),
            [Some("2024-01-02T00:00:00.000Z".to_owned())]
        );
        let epoch = arc(Int64Array::from(vec![Some(0), None]));
        assert_eq!(
            strings(&convert(TypeClass::DateTime, epoch).unwrap()),
            [Some("1970-01-01T00:00:00.000Z".to_owned()), None]
        );
    }

    #[test]
    fn bad_datetimes_are_errors() {
        let (row, value, _) = conversion_error(convert(
            TypeClass::DateTime,
            texts(&[Some("2024-01-02"), Some("2024-02-30")]),
        ));
        assert_eq!((row, value.as_str()), (1, "\"2024-02-30\""));
        let (_, _, reason) = conversion_error(convert(
            TypeClass::DateTime,
            arc(Int64Array::from(vec![i64::MAX])),
        ));
        assert_eq!(reason, "outside the representable date range");
        conversion_error(convert(
            TypeClass::DateTime,
            arc(BooleanArray::from(vec![true])),
        ));
    }

    #[test]
    fn anything_to_text() {
        let out = convert(TypeClass::Text, arc(Int64Array::from(vec![Some(5), None]))).unwrap();
        assert_eq!(strings(&out), [Some("5".to_owned()), None]);
        let instants = arc(TimestampSecondArray::from(vec![0]).with_timezone("+02:00"));
        assert_eq!(
            strings(&convert(TypeClass::Text, instants).unwrap()),
            [Some("1970-01-01T00:00:00.000Z".to_owned())]
        );
        let json = texts(&[Some("{\"a\":[1,2]}")]);
        assert_eq!(
            strings(&convert(TypeClass::Text, json).unwrap()),
            [Some("{\"a\":[1,2]}".to_owned())]
        );
    }

    #[test]
    fn dictionary_columns_are_decoded() {
        let dict: DictionaryArray<Int16Type> = vec!["1", "2", "1"].into_iter().collect();
        let out = convert(TypeClass::Integer, arc(dict)).unwrap();
        assert_eq!(ints(&out), [Some(1), Some(2), Some(1)]);
    }

    #[test]
    fn all_null_columns_convert_to_typed_nulls() {
        let nulls = new_null_array(&DataType::Null, 2);
        assert_eq!(
            convert(TypeClass::Integer, nulls.clone())
                .unwrap()
                .data_type(),
            &DataType::Int64
        );
        assert_eq!(
            convert(TypeClass::Float, nulls.clone())
                .unwrap()
                .data_type(),
            &DataType::Float64
        );
        assert_eq!(
            convert(TypeClass::Boolean, nulls.clone())
                .unwrap()
                .data_type(),
            &DataType::Boolean
        );
        let text = convert(TypeClass::DateTime, nulls).unwrap();
        assert_eq!((text.data_type(), text.null_count()), (&DataType::Utf8, 2));
    }
}
