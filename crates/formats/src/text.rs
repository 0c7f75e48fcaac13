//! Rendering columns as text.
//!
//! Used for CSV output, for Parquet with `preserveSourceDataTyping: false` and for partition
//! values. Arrow's cast kernel does the work (no per-value allocation); its default formats
//! already produce ISO-8601: `2024-03-05` for dates, `2024-03-05T14:30:00` for timestamps
//! without a zone and `2024-03-05T14:30:00Z` / `+02:00` for zoned ones. Nulls stay null.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_cast::CastOptions;
use arrow_cast::display::FormatOptions;
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};

/// Spellings of UTC that are rendered as the `+00:00` offset.
const UTC_NAMES: &[&str] = &["UTC", "utc", "Etc/UTC", "Z", "GMT", "Etc/GMT", "Zulu"];
const UTC_OFFSET: &str = "+00:00";

/// Casts `array` to `Utf8`. Timestamps with a named zone other than UTC cannot be rendered
/// (Arrow is built without the time-zone database) and are an error naming the zone.
///
/// # Errors
/// When the type has no text form (Arrow cannot cast it), or a binary value is not UTF-8.
pub fn column_to_text(array: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    if array.data_type() == &DataType::Utf8 {
        return Ok(Arc::clone(array));
    }
    if let Some(relabelled) = utc_as_offset(array)? {
        return column_to_text(&relabelled);
    }
    let options = CastOptions {
        safe: false,
        format_options: FormatOptions::default(),
    };
    arrow_cast::cast_with_options(array, &DataType::Utf8, &options)
}

/// `array` relabelled with the `+00:00` zone when it is a timestamp in UTC under a name.
///
/// Named zones need Arrow's chrono-tz feature (a large dependency) to be rendered; UTC under
/// any of its names is the zero offset, which needs nothing. Relabelling keeps the values.
fn utc_as_offset(array: &ArrayRef) -> Result<Option<ArrayRef>, ArrowError> {
    let DataType::Timestamp(unit, Some(zone)) = array.data_type() else {
        return Ok(None);
    };
    if !UTC_NAMES.contains(&zone.as_ref()) {
        return Ok(None);
    }
    let data = array
        .to_data()
        .into_builder()
        .data_type(DataType::Timestamp(*unit, Some(UTC_OFFSET.into())))
        .build()?;
    Ok(Some(arrow_array::make_array(data)))
}

/// `batch` with every UTC-named timestamp column relabelled `+00:00`, so writers that render
/// timestamps as text (JSON Lines) accept it. Other columns are shared, not copied.
///
/// # Errors
/// Never in practice: relabelling keeps the column's buffers.
pub fn with_utc_offsets(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let mut changed = false;
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        match utc_as_offset(column)? {
            Some(relabelled) => {
                changed = true;
                fields.push(Arc::new(
                    field
                        .as_ref()
                        .clone()
                        .with_data_type(relabelled.data_type().clone()),
                ));
                columns.push(relabelled);
            }
            None => {
                fields.push(Arc::clone(field));
                columns.push(Arc::clone(column));
            }
        }
    }
    if !changed {
        return Ok(batch.clone());
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

/// The schema of [`batch_to_text`]'s output: same names, every field a nullable `Utf8`.
pub fn text_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| Field::new(f.name(), DataType::Utf8, true))
        .collect();
    Arc::new(Schema::new(fields))
}

/// Casts every column of `batch` to `Utf8`.
///
/// # Errors
/// Names the column that cannot be rendered as text.
pub fn batch_to_text(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let schema = text_schema(batch.schema_ref());
    let columns = batch
        .columns()
        .iter()
        .zip(batch.schema_ref().fields())
        .map(|(column, field)| {
            column_to_text(column).map_err(|error| {
                ArrowError::CastError(format!(
                    "column {:?} of type {} cannot be written as text: {error}",
                    field.name(),
                    field.data_type()
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema, columns)
}

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use arrow_array::{
        BooleanArray, Date32Array, Float64Array, Int64Array, StringArray,
        TimestampMillisecondArray, TimestampNanosecondArray,
    };

    use super::*;

    fn text_of(array: ArrayRef) -> Vec<Option<String>> {
        let text = column_to_text(&array).unwrap();
        text.as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_owned))
            .collect()
    }

    #[test]
    fn dates_and_timestamps_render_as_iso_8601() {
        // 2024-03-05 = 19787 days after the epoch.
        let dates = Arc::new(Date32Array::from(vec![Some(19787), None])) as ArrayRef;
        assert_eq!(text_of(dates), vec![Some("2024-03-05".to_owned()), None]);

        let ms = 1_709_649_000_123_i64; // 2024-03-05T14:30:00.123Z
        let naive = Arc::new(TimestampMillisecondArray::from(vec![ms])) as ArrayRef;
        assert_eq!(
            text_of(naive),
            vec![Some("2024-03-05T14:30:00.123".to_owned())]
        );

        for zone in ["UTC", "+00:00", "Etc/UTC"] {
            let zoned = TimestampNanosecondArray::from(vec![ms * 1_000_000]).with_timezone(zone);
            let rendered = text_of(Arc::new(zoned))[0].clone().unwrap();
            assert_eq!(rendered, "2024-03-05T14:30:00.123Z", "{zone}");
        }
        let offset = TimestampMillisecondArray::from(vec![ms]).with_timezone("+02:00");
        assert_eq!(
            text_of(Arc::new(offset))[0].as_deref(),
            Some("2024-03-05T16:30:00.123+02:00")
        );

        let named =
            Arc::new(TimestampMillisecondArray::from(vec![ms]).with_timezone("Europe/Paris"))
                as ArrayRef;
        let error = column_to_text(&named).unwrap_err().to_string();
        assert!(error.contains("Europe/Paris"), "{error}");
    }

    #[test]
    fn numbers_booleans_and_nulls() {
        let ints = Arc::new(Int64Array::from(vec![Some(i64::MIN), None, Some(0)])) as ArrayRef;
        assert_eq!(
            text_of(ints),
            vec![
                Some("-9223372036854775808".to_owned()),
                None,
                Some("0".to_owned())
            ]
        );
        let floats = Arc::new(Float64Array::from(vec![1.5, -0.25])) as ArrayRef;
        assert_eq!(
            text_of(floats),
            vec![Some("1.5".to_owned()), Some("-0.25".to_owned())]
        );
        let bools = Arc::new(BooleanArray::from(vec![Some(true), None])) as ArrayRef;
        assert_eq!(text_of(bools), vec![Some("true".to_owned()), None]);
    }

    #[test]
    fn batch_to_text_keeps_names_and_utf8_columns() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![7])),
                Arc::new(StringArray::from(vec![Some("é")])),
            ],
        )
        .unwrap();
        let text = batch_to_text(&batch).unwrap();
        assert_eq!(text.schema().field(0).data_type(), &DataType::Utf8);
        assert!(text.schema().field(0).is_nullable());
        assert_eq!(text.column(0).as_string::<i32>().value(0), "7");
        assert_eq!(text.column(1).as_string::<i32>().value(0), "é");
    }
}
