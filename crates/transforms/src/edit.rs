//! `Mask` and `Truncate`: in-place edits of a source field, so a later `Map` of that field sees the
//! edited value.
//!
//! Both count characters (Unicode scalar values), never bytes, so a multi-byte character is
//! masked or kept whole. A user-perceived character made of several scalar values (an emoji with
//! a skin-tone modifier, a letter with a combining accent) counts as several. Nulls stay null; a
//! non-text column is edited in its text form and becomes a text column.

use std::fmt::Write as _;

use arrow_array::builder::StringBuilder;
use arrow_array::{Array, ArrayRef, StringArray};
use arrow_string::substring::substring_by_char;

use crate::error::TransformError;
use crate::values::{arc, string_form};

/// Which characters `Mask` replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MaskKind {
    All,
    FirstN(usize),
    LastN(usize),
}

/// A compiled `Mask` or `Truncate` task.
#[derive(Debug, Clone)]
pub(crate) enum EditStep {
    Mask {
        field: String,
        kind: MaskKind,
        mask: char,
    },
    Truncate {
        field: String,
        length: usize,
    },
}

impl EditStep {
    /// The source field edited in place.
    pub(crate) fn field(&self) -> &str {
        match self {
            Self::Mask { field, .. } | Self::Truncate { field, .. } => field,
        }
    }

    /// The edited column.
    pub(crate) fn apply(&self, column: &dyn Array) -> Result<ArrayRef, TransformError> {
        let text = string_form(column)
            .map_err(|error| TransformError::arrow(self.field(), "reading text form", error))?;
        match self {
            Self::Mask { kind, mask, .. } => Ok(arc(mask_values(&text, *kind, *mask))),
            Self::Truncate { field, length } => {
                let length = u64::try_from(*length).unwrap_or(u64::MAX);
                let truncated = substring_by_char(&text, 0, Some(length))
                    .map_err(|error| TransformError::arrow(field, "truncating", error))?;
                Ok(arc(truncated))
            }
        }
    }
}

fn mask_values(values: &StringArray, kind: MaskKind, mask: char) -> StringArray {
    let mut builder = StringBuilder::with_capacity(values.len(), values.value_data().len());
    for value in values.iter() {
        let Some(value) = value else {
            builder.append_null();
            continue;
        };
        let chars = value.chars().count();
        let masked = match kind {
            MaskKind::All => chars,
            MaskKind::FirstN(n) | MaskKind::LastN(n) => n.min(chars),
        };
        // Split point (in bytes) between the part kept and the part masked.
        let split_at_char = match kind {
            MaskKind::All | MaskKind::FirstN(_) => masked,
            MaskKind::LastN(_) => chars - masked,
        };
        let split = value
            .char_indices()
            .nth(split_at_char)
            .map_or(value.len(), |(at, _)| at);
        // Writing into a StringBuilder cannot fail.
        match kind {
            MaskKind::All | MaskKind::FirstN(_) => {
                push_mask(&mut builder, mask, masked);
                let _ = builder.write_str(&value[split..]);
            }
            MaskKind::LastN(_) => {
                let _ = builder.write_str(&value[..split]);
                push_mask(&mut builder, mask, masked);
            }
        }
        builder.append_value("");
    }
    builder.finish()
}

fn push_mask(builder: &mut StringBuilder, mask: char, count: usize) {
    for _ in 0..count {
        let _ = builder.write_char(mask);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::{Float64Array, Int64Array};

    fn apply(step: &EditStep, column: &dyn Array) -> Vec<Option<String>> {
        let out = step.apply(column).unwrap();
        out.as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_owned))
            .collect()
    }

    fn mask(kind: MaskKind, ch: char) -> EditStep {
        EditStep::Mask {
            field: "f".into(),
            kind,
            mask: ch,
        }
    }

    fn strings(values: &[Option<&str>]) -> Vec<Option<String>> {
        values.iter().map(|v| v.map(str::to_owned)).collect()
    }

    #[test]
    fn mask_all_replaces_every_character() {
        let column = StringArray::from(vec![Some("secret"), Some(""), None, Some("é日🦀")]);
        assert_eq!(
            apply(&mask(MaskKind::All, '*'), &column),
            strings(&[Some("******"), Some(""), None, Some("***")])
        );
    }

    #[test]
    fn mask_first_and_last_n_count_characters_not_bytes() {
        let column =
            StringArray::from(vec![Some("ééééé"), Some("日本語テキスト"), Some("a🦀b🦀c")]);
        assert_eq!(
            apply(&mask(MaskKind::FirstN(2), '#'), &column),
            strings(&[Some("##ééé"), Some("##語テキスト"), Some("##b🦀c")])
        );
        assert_eq!(
            apply(&mask(MaskKind::LastN(2), '#'), &column),
            strings(&[Some("ééé##"), Some("日本語テキ##"), Some("a🦀b##")])
        );
    }

    #[test]
    fn mask_longer_than_the_value_masks_everything() {
        let column = StringArray::from(vec![Some("abc"), Some("")]);
        assert_eq!(
            apply(&mask(MaskKind::FirstN(10), '*'), &column),
            strings(&[Some("***"), Some("")])
        );
        assert_eq!(
            apply(&mask(MaskKind::LastN(usize::MAX), '*'), &column),
            strings(&[Some("***"), Some("")])
        );
    }

    #[test]
    fn mask_of_zero_characters_keeps_the_value() {
        let column = StringArray::from(vec!["abc"]);
        assert_eq!(
            apply(&mask(MaskKind::FirstN(0), '*'), &column),
            strings(&[Some("abc")])
        );
        assert_eq!(
            apply(&mask(MaskKind::LastN(0), '*'), &column),
            strings(&[Some("abc")])
        );
    }

    #[test]
    fn mask_with_a_multibyte_mask_character() {
        let column = StringArray::from(vec!["card 1234"]);
        assert_eq!(
            apply(&mask(MaskKind::FirstN(5), '█'), &column),
            strings(&[Some("█████1234")])
        );
    }

    #[test]
    fn non_text_columns_are_masked_in_text_form() {
        let ints = Int64Array::from(vec![Some(4_111_111_111_111_111), None, Some(-12)]);
        assert_eq!(
            apply(&mask(MaskKind::LastN(4), 'X'), &ints),
            strings(&[Some("411111111111XXXX"), None, Some("XXX")])
        );
        let floats = Float64Array::from(vec![1.5]);
        assert_eq!(
            apply(&mask(MaskKind::All, '*'), &floats),
            strings(&[Some("***")])
        );
    }

    #[test]
    fn truncate_keeps_the_first_characters() {
        let step = EditStep::Truncate {
            field: "f".into(),
            length: 3,
        };
        let column = StringArray::from(vec![
            Some("abcdef"),
            Some("ab"),
            Some(""),
            None,
            Some("日本語テキスト"),
            Some("🦀🦀🦀🦀"),
        ]);
        assert_eq!(
            apply(&step, &column),
            strings(&[
                Some("abc"),
                Some("ab"),
                Some(""),
                None,
                Some("日本語"),
                Some("🦀🦀🦀")
            ])
        );
    }

    #[test]
    fn truncate_to_zero_and_to_huge_lengths() {
        let column = StringArray::from(vec![Some("héllo"), None]);
        let zero = EditStep::Truncate {
            field: "f".into(),
            length: 0,
        };
        assert_eq!(apply(&zero, &column), strings(&[Some(""), None]));
        let huge = EditStep::Truncate {
            field: "f".into(),
            length: usize::MAX,
        };
        assert_eq!(apply(&huge, &column), strings(&[Some("héllo"), None]));
    }

    #[test]
    fn truncate_numbers_in_text_form() {
        let step = EditStep::Truncate {
            field: "f".into(),
            length: 2,
        };
        let ints = Int64Array::from(vec![12345]);
        assert_eq!(apply(&step, &ints), strings(&[Some("12")]));
    }
}
