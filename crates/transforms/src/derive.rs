//! `Merge` and `Arithmetic`: intermediate fields computed from source fields, named by the task's
//! `destinationField` (by convention the comma-joined source names, e.g. `"a,b"`), which a `Map`
//! task then maps to a real destination field.
//!
//! - `Merge` concatenates the text forms of its fields. `CONCAT_FORMAT` is either a template with
//!   positional placeholders (`"{1}, {0}"`) or, without placeholders, the separator between the
//!   values (default: none). Null and missing values read as empty strings, so the result is never
//!   null.
//! - `Arithmetic` computes `left op right` in `Float64` (so integer overflow cannot happen) with
//!   the `arrow-arith` kernels. Operands that are null, missing or not numbers, division by zero,
//!   and any other non-finite result (`1e308 * 10`) give null rather than failing the flow: a
//!   single bad record should not stop a run, and a later `Validate` task can reject the nulls.

use std::fmt::Write as _;

use arrow_array::builder::StringBuilder;
use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, ArrayRef, StringArray};

use crate::error::TransformError;
use crate::values::{arc, float_form, string_form};

/// How `Merge` joins its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConcatFormat {
    /// Values joined by this text.
    Separator(String),
    /// Literal text and positional placeholders.
    Template(Vec<Piece>),
}

/// A piece of a `CONCAT_FORMAT` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(String),
    Field(usize),
}

impl ConcatFormat {
    /// Parses `CONCAT_FORMAT` for a task with `fields` source fields. `{n}` is a placeholder
    /// when `n` is a decimal number; every other brace is literal text.
    pub(crate) fn parse(format: &str, fields: usize) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut placeholders = false;
        let mut rest = format;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let index = after
                .find('}')
                .map(|close| &after[..close])
                .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
            let Some(digits) = index else {
                literal.push_str(&rest[..=open]);
                rest = after;
                continue;
            };
            let position = digits
                .parse::<usize>()
                .ok()
                .filter(|&position| position < fields)
                .ok_or_else(|| {
                    format!(
                        "placeholder {{{digits}}} does not name one of the {fields} source fields"
                    )
                })?;
            literal.push_str(&rest[..open]);
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Field(position));
            placeholders = true;
            rest = &after[digits.len() + 1..];
        }
        if !placeholders {
            return Ok(Self::Separator(format.to_owned()));
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Self::Template(pieces))
    }
}

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// A compiled `Merge` or `Arithmetic` task.
#[derive(Debug, Clone)]
pub(crate) enum Derivation {
    Merge {
        fields: Vec<String>,
        format: ConcatFormat,
        destination: String,
    },
    Arithmetic {
        op: ArithOp,
        left: String,
        right: String,
        destination: String,
    },
}

impl Derivation {
    /// The intermediate field written.
    pub(crate) fn destination(&self) -> &str {
        match self {
            Self::Merge { destination, .. } | Self::Arithmetic { destination, .. } => destination,
        }
    }

    /// The fields read.
    pub(crate) fn inputs(&self) -> Vec<&str> {
        match self {
            Self::Merge { fields, .. } => fields.iter().map(String::as_str).collect(),
            Self::Arithmetic { left, right, .. } => vec![left, right],
        }
    }

    /// Computes the intermediate column from the input columns (`None` = missing from the
    /// batch), in the order of [`Self::inputs`].
    pub(crate) fn compute(
        &self,
        inputs: &[Option<&ArrayRef>],
        rows: usize,
    ) -> Result<ArrayRef, TransformError> {
        match self {
            Self::Merge {
                format,
                destination,
                ..
            } => merge(inputs, format, rows, destination),
            Self::Arithmetic {
                op, destination, ..
            } => arithmetic(*op, inputs, rows, destination),
        }
    }
}

fn merge(
    inputs: &[Option<&ArrayRef>],
    format: &ConcatFormat,
    rows: usize,
    destination: &str,
) -> Result<ArrayRef, TransformError> {
    let texts = inputs
        .iter()
        .map(|column| {
            column
                .map(|column| string_form(column.as_ref()))
                .transpose()
        })
        .collect::<Result<Vec<Option<StringArray>>, _>>()
        .map_err(|error| TransformError::arrow(destination, "reading merge inputs", error))?;
    let value = |field: usize, row: usize| -> &str {
        match texts.get(field) {
            Some(Some(text)) if !text.is_null(row) => text.value(row),
            _ => "",
        }
    };
    let bytes: usize = texts
        .iter()
        .flatten()
        .map(|text| text.value_data().len())
        .sum();
    let mut builder = StringBuilder::with_capacity(rows, bytes + rows * 4);
    for row in 0..rows {
        // Writing into a StringBuilder cannot fail.
        match format {
            ConcatFormat::Separator(separator) => {
                for field in 0..texts.len() {
                    if field > 0 {
                        let _ = builder.write_str(separator);
                    }
                    let _ = builder.write_str(value(field, row));
                }
            }
            ConcatFormat::Template(pieces) => {
                for piece in pieces {
                    let _ = match piece {
                        Piece::Text(text) => builder.write_str(text),
                        Piece::Field(field) => builder.write_str(value(*field, row)),
                    };
                }
            }
        }
        builder.append_value("");
    }
    Ok(arc(builder.finish()))
}

fn arithmetic(
    op: ArithOp,
    inputs: &[Option<&ArrayRef>],
    rows: usize,
    destination: &str,
) -> Result<ArrayRef, TransformError> {
    let operand = |index: usize| match inputs.get(index).copied().flatten() {
        Some(column) => float_form(column.as_ref()),
        None => Ok(arrow_array::Float64Array::new_null(rows)),
    };
    let fail = |error| TransformError::arrow(destination, "computing arithmetic", error);
    let (left, right) = (operand(0).map_err(fail)?, operand(1).map_err(fail)?);
    let kernel = match op {
        ArithOp::Add => arrow_arith::numeric::add,
        ArithOp::Sub => arrow_arith::numeric::sub,
        ArithOp::Mul => arrow_arith::numeric::mul,
        ArithOp::Div => arrow_arith::numeric::div,
    };
    // Float64 kernels follow IEEE 754 (x/0 is ±inf or NaN) instead of erroring.
    let result = kernel(&left, &right).map_err(fail)?;
    let finite = result
        .as_primitive::<Float64Type>()
        .unary_opt::<_, Float64Type>(|value| value.is_finite().then_some(value));
    Ok(arc(finite))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{BooleanArray, Float64Array, Int64Array};

    fn merge_of(format: ConcatFormat, columns: &[Option<ArrayRef>], rows: usize) -> Vec<String> {
        let fields = (0..columns.len()).map(|i| format!("f{i}")).collect();
        let step = Derivation::Merge {
            fields,
            format,
            destination: "m".into(),
        };
        let inputs: Vec<Option<&ArrayRef>> = columns.iter().map(Option::as_ref).collect();
        let out = step.compute(&inputs, rows).unwrap();
        assert_eq!(out.null_count(), 0);
        out.as_string::<i32>()
            .iter()
            .map(|v| v.unwrap().to_owned())
            .collect()
    }

    fn texts(values: &[Option<&str>]) -> Option<ArrayRef> {
        Some(arc(StringArray::from(values.to_vec())))
    }

    #[test]
    fn concat_format_without_placeholders_is_a_separator() {
        assert_eq!(
            ConcatFormat::parse(" ", 2),
            Ok(ConcatFormat::Separator(" ".into()))
        );
        assert_eq!(
            ConcatFormat::parse("{x}", 2),
            Ok(ConcatFormat::Separator("{x}".into()))
        );
        assert_eq!(
            ConcatFormat::parse("{}", 2),
            Ok(ConcatFormat::Separator("{}".into()))
        );
    }

    #[test]
    fn concat_format_with_placeholders_is_a_template() {
        assert_eq!(
            ConcatFormat::parse("{1}, {0}!", 2),
            Ok(ConcatFormat::Template(vec![
                Piece::Field(1),
                Piece::Text(", ".into()),
                Piece::Field(0),
                Piece::Text("!".into()),
            ]))
        );
        assert_eq!(
            ConcatFormat::parse("{ {0}}", 1),
            Ok(ConcatFormat::Template(vec![
                Piece::Text("{ ".into()),
                Piece::Field(0),
                Piece::Text("}".into()),
            ]))
        );
    }

    #[test]
    fn concat_format_rejects_placeholders_beyond_the_fields() {
        let error = ConcatFormat::parse("{0} {2}", 2).unwrap_err();
        assert!(error.contains("{2}"), "{error}");
        assert!(ConcatFormat::parse("{99999999999999999999999}", 2).is_err());
    }

    #[test]
    fn merge_joins_with_separator_and_reads_nulls_as_empty() {
        let first = texts(&[Some("Ada"), None, Some("José"), Some("")]);
        let last = texts(&[Some("Lovelace"), Some("Curie"), None, Some("")]);
        assert_eq!(
            merge_of(ConcatFormat::Separator(" ".into()), &[first, last], 4),
            ["Ada Lovelace", " Curie", "José ", " "]
        );
    }

    #[test]
    fn merge_without_separator_concatenates() {
        let a = texts(&[Some("日本"), Some("🦀")]);
        let b = texts(&[Some("語"), None]);
        assert_eq!(
            merge_of(ConcatFormat::Separator(String::new()), &[a, b], 2),
            ["日本語", "🦀"]
        );
    }

    #[test]
    fn merge_template_substitutes_positions_and_repeats() {
        let format = ConcatFormat::parse("{1}, {0} ({1})", 2).unwrap();
        let a = texts(&[Some("Ada")]);
        let b = texts(&[Some("Lovelace")]);
        assert_eq!(merge_of(format, &[a, b], 1), ["Lovelace, Ada (Lovelace)"]);
    }

    #[test]
    fn merge_reads_typed_and_missing_columns() {
        let ints: Option<ArrayRef> = Some(arc(Int64Array::from(vec![Some(7), None])));
        let bools: Option<ArrayRef> = Some(arc(BooleanArray::from(vec![true, false])));
        assert_eq!(
            merge_of(ConcatFormat::Separator("-".into()), &[ints, None, bools], 2),
            ["7--true", "--false"]
        );
    }

    fn arith(
        op: ArithOp,
        left: Option<ArrayRef>,
        right: Option<ArrayRef>,
        rows: usize,
    ) -> Vec<Option<f64>> {
        let step = Derivation::Arithmetic {
            op,
            left: "a".into(),
            right: "b".into(),
            destination: "a,b".into(),
        };
        let out = step
            .compute(&[left.as_ref(), right.as_ref()], rows)
            .unwrap();
        out.as_primitive::<Float64Type>().iter().collect()
    }

    fn floats(values: &[Option<&str>]) -> Option<ArrayRef> {
        texts(values)
    }

    #[test]
    fn arithmetic_respects_operand_order() {
        let a = floats(&[Some("10"), Some("1.5")]);
        let b = floats(&[Some("4"), Some("0.5")]);
        assert_eq!(
            arith(ArithOp::Sub, a.clone(), b.clone(), 2),
            [Some(6.0), Some(1.0)]
        );
        assert_eq!(
            arith(ArithOp::Div, a.clone(), b.clone(), 2),
            [Some(2.5), Some(3.0)]
        );
        assert_eq!(
            arith(ArithOp::Sub, b.clone(), a.clone(), 2),
            [Some(-6.0), Some(-1.0)]
        );
        assert_eq!(
            arith(ArithOp::Add, a.clone(), b.clone(), 2),
            [Some(14.0), Some(2.0)]
        );
        assert_eq!(arith(ArithOp::Mul, a, b, 2), [Some(40.0), Some(0.75)]);
    }

    #[test]
    fn division_by_zero_gives_null() {
        let a = floats(&[Some("1"), Some("0"), Some("-1")]);
        let b = floats(&[Some("0"), Some("0"), Some("-0")]);
        assert_eq!(arith(ArithOp::Div, a, b, 3), [None, None, None]);
    }

    #[test]
    fn unparseable_null_and_missing_operands_give_null() {
        let a = floats(&[Some("abc"), None, Some(""), Some("2")]);
        let b = floats(&[Some("1"), Some("1"), Some("1"), Some("x")]);
        assert_eq!(arith(ArithOp::Add, a, b, 4), [None, None, None, None]);
        let a = floats(&[Some("1")]);
        assert_eq!(arith(ArithOp::Add, a, None, 1), [None]);
    }

    #[test]
    fn integer_overflow_is_avoided_by_computing_in_f64() {
        let a: Option<ArrayRef> = Some(arc(Int64Array::from(vec![i64::MAX, i64::MIN])));
        let b: Option<ArrayRef> = Some(arc(Int64Array::from(vec![i64::MAX, -1])));
        let sums = arith(ArithOp::Add, a.clone(), b.clone(), 2);
        assert_eq!(
            sums,
            [Some(2.0 * i64::MAX as f64), Some(i64::MIN as f64 - 1.0)]
        );
        let products = arith(ArithOp::Mul, a, b, 2);
        assert_eq!(products[0], Some((i64::MAX as f64).powi(2)));
    }

    #[test]
    fn non_finite_results_become_null() {
        let a: Option<ArrayRef> = Some(arc(Float64Array::from(vec![1e308, f64::NAN])));
        let b: Option<ArrayRef> = Some(arc(Float64Array::from(vec![10.0, 1.0])));
        assert_eq!(arith(ArithOp::Mul, a, b, 2), [None, None]);
    }
}
