//! `Validate` tasks: per-record checks with a `VALIDATION_ACTION`.
//!
//! A record is bad when its field is:
//! - `VALIDATE_NON_NULL`: null, or the field is missing from the batch;
//! - `VALIDATE_NON_ZERO`: a number equal to zero (`0`, `0.0`, `-0`);
//! - `VALIDATE_NON_NEGATIVE`: a number below zero;
//! - `VALIDATE_NUMERIC`: not a finite number (null, missing, unparseable text, booleans).
//!
//! Null and non-numeric values pass the zero and negativity checks: each check tests one
//! property, and combining checks (e.g. with `VALIDATE_NUMERIC`) expresses the rest.
//!
//! `DropRecord` removes bad records (they count as filtered). `DropDataset` and `TerminateFlow`
//! fail the run on the first bad record still present after every `DropRecord` check ran.

use arrow_arith::boolean::is_null;
use arrow_array::types::Float64Type;
use arrow_array::{ArrayRef, BooleanArray, Float64Array};
use arrow_buffer::BooleanBuffer;
use arrow_ord::cmp;
use sluice_api_model::Operator;

use crate::error::TransformError;
use crate::filter::definite;
use crate::values::float_form;

/// The property checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    NonNull,
    NonZero,
    NonNegative,
    Numeric,
}

impl Check {
    pub(crate) fn operator(self) -> Operator {
        match self {
            Self::NonNull => Operator::ValidateNonNull,
            Self::NonZero => Operator::ValidateNonZero,
            Self::NonNegative => Operator::ValidateNonNegative,
            Self::Numeric => Operator::ValidateNumeric,
        }
    }
}

/// What happens to a bad record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    DropRecord,
    /// Fail the run; holds the `VALIDATION_ACTION` as given, for messages.
    Terminate(String),
}

/// A compiled `Validate` task.
#[derive(Debug, Clone)]
pub(crate) struct ValidateStep {
    pub(crate) task: usize,
    pub(crate) field: String,
    pub(crate) check: Check,
    pub(crate) action: Action,
}

impl ValidateStep {
    /// The bad records, as a mask without nulls (`true` = bad).
    pub(crate) fn failures(
        &self,
        column: Option<&ArrayRef>,
        rows: usize,
    ) -> Result<BooleanArray, TransformError> {
        let Some(column) = column else {
            let missing_fails = matches!(self.check, Check::NonNull | Check::Numeric);
            let buffer = if missing_fails {
                BooleanBuffer::new_set(rows)
            } else {
                BooleanBuffer::new_unset(rows)
            };
            return Ok(BooleanArray::new(buffer, None));
        };
        let fail = |error| TransformError::arrow(&self.field, "validating", error);
        let column = column.as_ref();
        let bad = match self.check {
            Check::NonNull => is_null(column).map_err(fail)?,
            Check::NonZero => {
                let numbers = float_form(column).map_err(fail)?;
                definite(cmp::eq(&numbers, &Float64Array::new_scalar(0.0)).map_err(fail)?)
            }
            Check::NonNegative => {
                let numbers = float_form(column).map_err(fail)?;
                definite(cmp::lt(&numbers, &Float64Array::new_scalar(0.0)).map_err(fail)?)
            }
            Check::Numeric => {
                let numbers = float_form(column).map_err(fail)?;
                let finite =
                    numbers.unary_opt::<_, Float64Type>(|value| value.is_finite().then_some(value));
                is_null(&finite).map_err(fail)?
            }
        };
        Ok(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::arc;
    use arrow_array::{Array, BooleanArray, Int64Array, StringArray};

    fn failures(check: Check, column: Option<ArrayRef>, rows: usize) -> Vec<bool> {
        let step = ValidateStep {
            task: 0,
            field: "f".into(),
            check,
            action: Action::DropRecord,
        };
        let mask = step.failures(column.as_ref(), rows).unwrap();
        assert_eq!(mask.null_count(), 0);
        mask.iter().map(Option::unwrap).collect()
    }

    fn texts(values: &[Option<&str>]) -> Option<ArrayRef> {
        Some(arc(StringArray::from(values.to_vec())))
    }

    #[test]
    fn non_null_rejects_nulls_and_missing_fields_only() {
        let column = texts(&[Some("a"), None, Some(""), Some(" ")]);
        assert_eq!(
            failures(Check::NonNull, column, 4),
            [false, true, false, false]
        );
        assert_eq!(failures(Check::NonNull, None, 2), [true, true]);
        let nulls = Some(arrow_array::new_null_array(
            &arrow_schema::DataType::Null,
            2,
        ));
        assert_eq!(failures(Check::NonNull, nulls, 2), [true, true]);
    }

    #[test]
    fn non_zero_rejects_zero_in_any_spelling() {
        let column = texts(&[
            Some("0"),
            Some("0.0"),
            Some("-0"),
            Some("1"),
            Some("abc"),
            None,
            Some("0e5"),
        ]);
        assert_eq!(
            failures(Check::NonZero, column, 7),
            [true, true, true, false, false, false, true]
        );
        let ints = Some(arc(Int64Array::from(vec![0, 5])));
        assert_eq!(failures(Check::NonZero, ints, 2), [true, false]);
        assert_eq!(failures(Check::NonZero, None, 1), [false]);
    }

    #[test]
    fn non_negative_rejects_values_below_zero() {
        let column = texts(&[
            Some("-1"),
            Some("-0.0001"),
            Some("0"),
            Some("-0"),
            Some("5"),
            Some("-x"),
            None,
        ]);
        assert_eq!(
            failures(Check::NonNegative, column, 7),
            [true, true, false, false, false, false, false]
        );
        let ints = Some(arc(Int64Array::from(vec![i64::MIN, i64::MAX])));
        assert_eq!(failures(Check::NonNegative, ints, 2), [true, false]);
    }

    #[test]
    fn numeric_rejects_everything_that_is_not_a_finite_number() {
        let column = texts(&[
            Some("12"),
            Some("1e3"),
            Some("abc"),
            Some(""),
            None,
            Some("NaN"),
            Some("١٢"),
        ]);
        assert_eq!(
            failures(Check::Numeric, column, 7),
            [false, false, true, true, true, true, true]
        );
        let bools = Some(arc(BooleanArray::from(vec![true])));
        assert_eq!(failures(Check::Numeric, bools, 1), [true]);
        let floats = Some(arc(arrow_array::Float64Array::from(vec![
            1.0,
            f64::INFINITY,
        ])));
        assert_eq!(failures(Check::Numeric, floats, 2), [false, true]);
        assert_eq!(failures(Check::Numeric, None, 1), [true]);
    }
}
