//! Comparison `Filter` tasks: `LESS_THAN` ... `BETWEEN`, `CONTAINS`.
//!
//! Each filter turns its field into the form its `DATA_TYPE` asks for (text, numbers, booleans or
//! epoch milliseconds, see [`crate::values`]) and compares the whole column against scalar
//! operands with the `arrow-ord` / `arrow-string` kernels, so no per-row work happens beyond
//! parsing text columns. A value that is null, missing or does not parse never passes.
//!
//! Operand rules:
//! - `VALUE` and the comma-separated `VALUES` are combined; any operand that matches keeps the
//!   row (logical OR). `NOT_EQUAL_TO` keeps rows equal to none of them (SQL `NOT IN`), the only
//!   reading under which a list is useful: "differs from a OR differs from b" keeps every row.
//! - `BETWEEN` uses `LOWER_BOUND` and `UPPER_BOUND`, both inclusive.
//! - Without a known `DATA_TYPE` the comparison follows the column: numeric columns compare as
//!   numbers, boolean columns as booleans, timestamp/date columns as instants, provided every
//!   operand parses that way; otherwise the text forms are compared.

use arrow_arith::boolean::{and, is_not_null, not, or};
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{
    Array, ArrayRef, BooleanArray, Datum, Float64Array, Int64Array, Scalar, StringArray,
};
use arrow_buffer::BooleanBuffer;
use arrow_ord::cmp;
use arrow_schema::{ArrowError, DataType};
use arrow_select::filter::prep_null_mask_filter;
use sluice_connector_api::PushdownFilter;

use crate::error::TransformError;
use crate::types::TypeClass;
use crate::values::{
    bool_form, float_form, is_datetime_type, is_integer_type, is_numeric_type, millis_form,
    parse_bool, parse_datetime_ms, parse_f64, parse_i64, string_form,
};

/// A comparison operator of a `Filter` task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CompareOp {
    Lt,
    Gt,
    LtEq,
    GtEq,
    Eq,
    NotEq,
    Contains,
    Between,
}

/// How field and operands are compared, from `DATA_TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CompareAs {
    Text,
    Number,
    Boolean,
    DateTime,
    /// No or an unknown `DATA_TYPE`: decided per batch from the column's Arrow type.
    Inferred,
}

impl CompareAs {
    pub(crate) fn from_class(class: Option<TypeClass>) -> Self {
        match class {
            Some(TypeClass::Text) => Self::Text,
            Some(TypeClass::Integer | TypeClass::Float) => Self::Number,
            Some(TypeClass::Boolean) => Self::Boolean,
            Some(TypeClass::DateTime) => Self::DateTime,
            None => Self::Inferred,
        }
    }
}

/// One operand, parsed once at compile time in every form it may be compared in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Operand {
    pub(crate) text: String,
    pub(crate) number: Option<f64>,
    pub(crate) integer: Option<i64>,
    pub(crate) boolean: Option<bool>,
    pub(crate) millis: Option<i64>,
}

impl Operand {
    pub(crate) fn parse(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            number: parse_f64(text),
            integer: parse_i64(text).ok(),
            boolean: parse_bool(text),
            millis: parse_datetime_ms(text),
        }
    }

    /// Why the operand cannot be compared as `compare_as`, if it cannot.
    pub(crate) fn unusable_as(&self, compare_as: CompareAs) -> Option<&'static str> {
        match compare_as {
            CompareAs::Number if self.number.is_none() => Some("not a number"),
            CompareAs::Boolean if self.boolean.is_none() => Some("not true or false"),
            CompareAs::DateTime if self.millis.is_none() => {
                Some("not epoch milliseconds or an ISO-8601 datetime")
            }
            _ => None,
        }
    }
}

/// A compiled comparison filter.
#[derive(Debug, Clone)]
pub(crate) struct FilterStep {
    pub(crate) field: String,
    pub(crate) op: CompareOp,
    pub(crate) compare_as: CompareAs,
    /// The operands; `[lower, upper]` for `BETWEEN`.
    pub(crate) operands: Vec<Operand>,
    pub(crate) pushdown: PushdownFilter,
}

impl FilterStep {
    /// The rows that pass, as a mask without nulls. `column` is `None` when the field is absent
    /// from the batch, in which case no row passes.
    pub(crate) fn evaluate(
        &self,
        column: Option<&ArrayRef>,
        rows: usize,
    ) -> Result<BooleanArray, TransformError> {
        let Some(column) = column else {
            return Ok(BooleanArray::new(BooleanBuffer::new_unset(rows), None));
        };
        self.evaluate_column(column.as_ref())
            .map_err(|error| TransformError::arrow(&self.field, "filter comparison failed", error))
    }

    fn evaluate_column(&self, column: &dyn Array) -> Result<BooleanArray, ArrowError> {
        if self.op == CompareOp::Contains {
            let text = string_form(column)?;
            return self.any(&text, |operand| {
                arrow_string::like::contains(&text, &StringArray::new_scalar(&operand.text))
            });
        }
        match self.resolve(column.data_type()) {
            CompareAs::Number => {
                // Integer columns compared against integer operands stay exact beyond 2^53.
                let exact = is_integer_type(column.data_type())
                    && column.data_type() != &DataType::UInt64
                    && self
                        .operands
                        .iter()
                        .all(|operand| operand.integer.is_some());
                if exact {
                    let left = arrow_cast::cast(column, &DataType::Int64)?;
                    let left = left.as_primitive::<Int64Type>();
                    self.compare(left, |operand| {
                        Int64Array::new_scalar(operand.integer.unwrap_or_default())
                    })
                } else {
                    let left = float_form(column)?;
                    self.compare(&left, |operand| {
                        Float64Array::new_scalar(operand.number.unwrap_or(f64::NAN))
                    })
                }
            }
            CompareAs::Boolean => {
                let left = bool_form(column)?;
                self.compare(&left, |operand| {
                    BooleanArray::new_scalar(operand.boolean.unwrap_or_default())
                })
            }
            CompareAs::DateTime => {
                let left = millis_form(column)?;
                self.compare(&left, |operand| {
                    Int64Array::new_scalar(operand.millis.unwrap_or_default())
                })
            }
            CompareAs::Text | CompareAs::Inferred => {
                let left = string_form(column)?;
                self.compare(&left, |operand| StringArray::new_scalar(&operand.text))
            }
        }
    }

    /// The comparison mode for a column of `data_type`. Explicit modes were checked against
    /// the operands at compile time.
    fn resolve(&self, data_type: &DataType) -> CompareAs {
        if self.compare_as != CompareAs::Inferred {
            return self.compare_as;
        }
        let all = |test: fn(&Operand) -> bool| self.operands.iter().all(test);
        let data_type = match data_type {
            DataType::Dictionary(_, value_type) => value_type.as_ref(),
            other => other,
        };
        if is_numeric_type(data_type) && all(|operand| operand.number.is_some()) {
            CompareAs::Number
        } else if data_type == &DataType::Boolean && all(|operand| operand.boolean.is_some()) {
            CompareAs::Boolean
        } else if is_datetime_type(data_type) && all(|operand| operand.millis.is_some()) {
            CompareAs::DateTime
        } else {
            CompareAs::Text
        }
    }

    /// Applies the ordering/equality operator between `left` and each operand's scalar.
    fn compare<L, S>(
        &self,
        left: &L,
        scalar: impl Fn(&Operand) -> Scalar<S>,
    ) -> Result<BooleanArray, ArrowError>
    where
        L: Array + Datum,
        S: Array,
    {
        let kernel: fn(&dyn Datum, &dyn Datum) -> Result<BooleanArray, ArrowError> = match self.op {
            CompareOp::Lt => cmp::lt,
            CompareOp::Gt => cmp::gt,
            CompareOp::LtEq => cmp::lt_eq,
            CompareOp::GtEq => cmp::gt_eq,
            CompareOp::Eq | CompareOp::NotEq => cmp::eq,
            CompareOp::Between => {
                let (Some(lower), Some(upper)) = (self.operands.first(), self.operands.get(1))
                else {
                    return Err(ArrowError::InvalidArgumentError(
                        "BETWEEN needs two bounds".into(),
                    ));
                };
                let above = definite(cmp::gt_eq(left, &scalar(lower))?);
                let below = definite(cmp::lt_eq(left, &scalar(upper))?);
                return and(&above, &below);
            }
            CompareOp::Contains => {
                return Err(ArrowError::InvalidArgumentError(
                    "CONTAINS is evaluated on text before dispatch".into(),
                ));
            }
        };
        let matched = self.any(left, |operand| kernel(left, &scalar(operand)))?;
        if self.op == CompareOp::NotEq {
            // Null values never pass, not even "not equal".
            return and(&not(&matched)?, &is_not_null(left)?);
        }
        Ok(matched)
    }

    /// OR of `test` over every operand, with nulls read as "no match".
    fn any<L: Array>(
        &self,
        left: &L,
        test: impl Fn(&Operand) -> Result<BooleanArray, ArrowError>,
    ) -> Result<BooleanArray, ArrowError> {
        let mut result: Option<BooleanArray> = None;
        for operand in &self.operands {
            let matched = definite(test(operand)?);
            result = Some(match result {
                Some(previous) => or(&previous, &matched)?,
                None => matched,
            });
        }
        Ok(result.unwrap_or_else(|| BooleanArray::new(BooleanBuffer::new_unset(left.len()), None)))
    }
}

/// Reads null comparison results as `false`.
pub(crate) fn definite(mask: BooleanArray) -> BooleanArray {
    if mask.null_count() == 0 {
        mask
    } else {
        prep_null_mask_filter(&mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::arc;
    use arrow_array::{
        BooleanArray, Date32Array, Float64Array, Int64Array, TimestampMillisecondArray,
        TimestampNanosecondArray,
    };
    use sluice_api_model::Operator;

    fn step(op: CompareOp, compare_as: CompareAs, operands: &[&str]) -> FilterStep {
        FilterStep {
            field: "f".into(),
            op,
            compare_as,
            operands: operands.iter().map(|text| Operand::parse(text)).collect(),
            pushdown: PushdownFilter {
                field: "f".into(),
                operator: Operator::EqualTo,
                values: vec![],
                data_type: None,
            },
        }
    }

    fn run(step: &FilterStep, column: ArrayRef) -> Vec<bool> {
        let mask = step.evaluate(Some(&column), column.len()).unwrap();
        assert_eq!(mask.null_count(), 0);
        mask.iter().map(|v| v.unwrap()).collect()
    }

    fn texts(values: &[Option<&str>]) -> ArrayRef {
        arc(StringArray::from(values.to_vec()))
    }

    #[test]
    fn text_comparisons_are_lexicographic() {
        let column = texts(&[
            Some("apple"),
            Some("banana"),
            Some("cherry"),
            None,
            Some(""),
        ]);
        let lt = step(CompareOp::Lt, CompareAs::Text, &["banana"]);
        assert_eq!(run(&lt, column.clone()), [true, false, false, false, true]);
        let gte = step(CompareOp::GtEq, CompareAs::Text, &["banana"]);
        assert_eq!(run(&gte, column.clone()), [false, true, true, false, false]);
        // "10" < "9" as text: DATA_TYPE string really compares characters.
        let numbers_as_text = texts(&[Some("10"), Some("9")]);
        let gt = step(CompareOp::Gt, CompareAs::Text, &["5"]);
        assert_eq!(run(&gt, numbers_as_text), [false, true]);
    }

    #[test]
    fn equality_handles_unicode_and_empty_strings() {
        let column = texts(&[
            Some("é"),
            Some("e"),
            Some("日本"),
            Some(""),
            Some("🦀"),
            None,
        ]);
        let eq = step(CompareOp::Eq, CompareAs::Text, &["é"]);
        assert_eq!(
            run(&eq, column.clone()),
            [true, false, false, false, false, false]
        );
        let eq_empty = step(CompareOp::Eq, CompareAs::Text, &[""]);
        assert_eq!(
            run(&eq_empty, column.clone()),
            [false, false, false, true, false, false]
        );
        let eq_list = step(CompareOp::Eq, CompareAs::Text, &["日本", "🦀"]);
        assert_eq!(
            run(&eq_list, column),
            [false, false, true, false, true, false]
        );
    }

    #[test]
    fn not_equal_with_a_list_means_none_of_them_and_rejects_nulls() {
        let column = texts(&[Some("a"), Some("b"), Some("c"), None]);
        let neq = step(CompareOp::NotEq, CompareAs::Text, &["a", "b"]);
        assert_eq!(run(&neq, column.clone()), [false, false, true, false]);
        let neq_one = step(CompareOp::NotEq, CompareAs::Text, &["a"]);
        assert_eq!(run(&neq_one, column), [false, true, true, false]);
    }

    #[test]
    fn contains_is_a_case_sensitive_substring_test() {
        let column = texts(&[
            Some("Hello wörld"),
            Some("hello"),
            Some("日本語"),
            None,
            Some(""),
        ]);
        let contains = step(CompareOp::Contains, CompareAs::Text, &["wö"]);
        assert_eq!(
            run(&contains, column.clone()),
            [true, false, false, false, false]
        );
        let any = step(CompareOp::Contains, CompareAs::Text, &["本", "Hello"]);
        assert_eq!(run(&any, column), [true, false, true, false, false]);
        // Non-text columns are searched in their text form.
        let numbers = arc(Int64Array::from(vec![1234, 567]));
        let digits = step(CompareOp::Contains, CompareAs::Number, &["23"]);
        assert_eq!(run(&digits, numbers), [true, false]);
    }

    #[test]
    fn numeric_comparisons_parse_text_and_drop_unparseable_values() {
        let column = texts(&[
            Some("10"),
            Some("9"),
            Some("abc"),
            None,
            Some(" 12.5 "),
            Some(""),
        ]);
        let gt = step(CompareOp::Gt, CompareAs::Number, &["9.5"]);
        assert_eq!(
            run(&gt, column.clone()),
            [true, false, false, false, true, false]
        );
        let lte = step(CompareOp::LtEq, CompareAs::Number, &["10"]);
        assert_eq!(run(&lte, column), [true, true, false, false, false, false]);
    }

    #[test]
    fn numeric_comparisons_on_typed_columns() {
        let ints = arc(Int64Array::from(vec![Some(-5), Some(0), Some(7), None]));
        let gte = step(CompareOp::GtEq, CompareAs::Number, &["0"]);
        assert_eq!(run(&gte, ints.clone()), [false, true, true, false]);
        let fractional = step(CompareOp::Lt, CompareAs::Number, &["0.5"]);
        assert_eq!(run(&fractional, ints), [true, true, false, false]);
        let floats = arc(Float64Array::from(vec![1.5, f64::NAN, -0.0]));
        let eq = step(CompareOp::Eq, CompareAs::Number, &["0"]);
        assert_eq!(run(&eq, floats), [false, false, true]);
    }

    #[test]
    fn integer_equality_is_exact_beyond_f64_precision() {
        let ids = arc(Int64Array::from(vec![
            9_007_199_254_740_992,
            9_007_199_254_740_993,
        ]));
        let eq = step(CompareOp::Eq, CompareAs::Number, &["9007199254740993"]);
        assert_eq!(run(&eq, ids), [false, true]);
    }

    #[test]
    fn between_is_inclusive_on_both_bounds() {
        let column = arc(Int64Array::from(vec![
            Some(0),
            Some(1),
            Some(5),
            Some(10),
            Some(11),
            None,
        ]));
        let between = step(CompareOp::Between, CompareAs::Number, &["1", "10"]);
        assert_eq!(
            run(&between, column.clone()),
            [false, true, true, true, false, false]
        );
        let inverted = step(CompareOp::Between, CompareAs::Number, &["10", "1"]);
        assert_eq!(run(&inverted, column), [false; 6]);
    }

    #[test]
    fn datetime_comparisons_accept_iso_text_with_offsets_and_epoch_millis() {
        // 1704164645000 = 2024-01-02T03:04:05Z
        let column = texts(&[
            Some("2024-01-02T03:04:05Z"),
            Some("2024-01-02T04:04:05.001+01:00"),
            Some("2024-01-02T03:04:04.999"),
            Some("1704164645000"),
            Some("not a date"),
            None,
        ]);
        let gte = step(CompareOp::GtEq, CompareAs::DateTime, &["1704164645000"]);
        assert_eq!(
            run(&gte, column.clone()),
            [true, true, false, true, false, false]
        );
        let eq = step(CompareOp::Eq, CompareAs::DateTime, &["1704164645000"]);
        assert_eq!(
            run(&eq, column.clone()),
            [true, false, false, true, false, false]
        );
        let between = step(
            CompareOp::Between,
            CompareAs::DateTime,
            &["1704164644999", "1704164645000"],
        );
        assert_eq!(
            run(&between, column),
            [true, false, true, true, false, false]
        );
    }

    #[test]
    fn datetime_comparisons_on_arrow_temporal_columns() {
        let millis = arc(TimestampMillisecondArray::from(vec![1_000, 2_000]).with_timezone("UTC"));
        let gt = step(CompareOp::Gt, CompareAs::DateTime, &["1500"]);
        assert_eq!(run(&gt, millis), [false, true]);
        let nanos = arc(TimestampNanosecondArray::from(vec![1_500_000_000, 999_999]));
        let lt = step(
            CompareOp::Lt,
            CompareAs::DateTime,
            &["1970-01-01T00:00:01Z"],
        );
        assert_eq!(run(&lt, nanos), [false, true]);
        let dates = arc(Date32Array::from(vec![0, 1]));
        let eq = step(CompareOp::Eq, CompareAs::DateTime, &["86400000"]);
        assert_eq!(run(&eq, dates), [false, true]);
    }

    #[test]
    fn boolean_comparisons_read_text_and_typed_columns() {
        let text = texts(&[Some("true"), Some("FALSE"), Some("1"), Some("maybe"), None]);
        let eq = step(CompareOp::Eq, CompareAs::Boolean, &["true"]);
        assert_eq!(run(&eq, text), [true, false, true, false, false]);
        let typed = arc(BooleanArray::from(vec![Some(true), Some(false), None]));
        let neq = step(CompareOp::NotEq, CompareAs::Boolean, &["true"]);
        assert_eq!(run(&neq, typed), [false, true, false]);
    }

    #[test]
    fn inferred_mode_follows_the_column_type() {
        let ints = arc(Int64Array::from(vec![9, 10]));
        let gt = step(CompareOp::Gt, CompareAs::Inferred, &["9"]);
        assert_eq!(run(&gt, ints), [false, true]);
        // Text columns compare as text without a DATA_TYPE.
        let text = texts(&[Some("9"), Some("10")]);
        assert_eq!(run(&gt, text), [false, false]);
        // A non-numeric operand against a numeric column falls back to text.
        let ints = arc(Int64Array::from(vec![1]));
        let eq = step(CompareOp::Eq, CompareAs::Inferred, &["one"]);
        assert_eq!(run(&eq, ints), [false]);
    }

    #[test]
    fn missing_column_passes_no_row() {
        let eq = step(CompareOp::NotEq, CompareAs::Text, &["x"]);
        let mask = eq.evaluate(None, 3).unwrap();
        assert_eq!(mask, BooleanArray::from(vec![false, false, false]));
    }

    #[test]
    fn all_null_column_passes_no_row() {
        let column = arrow_array::new_null_array(&DataType::Utf8, 2);
        for op in [
            CompareOp::Eq,
            CompareOp::NotEq,
            CompareOp::Lt,
            CompareOp::Contains,
        ] {
            let filter = step(op, CompareAs::Text, &["x"]);
            assert_eq!(run(&filter, column.clone()), [false, false], "{op:?}");
        }
    }
}
