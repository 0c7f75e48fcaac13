//! The incremental window of a read, applied to the decoded batches.
//!
//! Objects carry no index on the `datetimeTypeFieldName` column, so the window cannot be
//! pushed into the listing: every object is decoded and the rows outside
//! `[start, end)` are dropped here. Values are read the way task filters read instants
//! (`sluice_transforms::parse_datetime_ms`: ISO-8601 with any offset and fraction, or epoch
//! milliseconds), truncated to the millisecond. Window edges are whole milliseconds, so the
//! truncation never moves a row across an edge: a row at exactly `end` belongs to the next
//! window, and one a nanosecond before `end` to this one.
//!
//! Like a SQL `BETWEEN`, a null or blank timestamp matches no window. A value that is not an
//! instant fails the read with an error naming the field and the value: silently skipping it
//! would lose the row for good.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int64Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow_array::{Array, BooleanArray, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use futures::StreamExt;
use sluice_connector_api::{BatchStream, ConnectorError, IncrementalWindow};

/// Keeps the rows of `stream` whose `window.field` falls in the window. `drop_field` removes
/// the column afterwards (it was read only for the window, outside the projection).
pub(crate) fn apply(
    stream: BatchStream,
    window: IncrementalWindow,
    drop_field: bool,
    source: String,
) -> BatchStream {
    let window = Arc::new(window);
    stream
        .map(move |batch| {
            let batch = batch?;
            filter_batch(&batch, &window, drop_field, &source)
        })
        .boxed()
}

/// The rows of `batch` inside the window.
pub(crate) fn filter_batch(
    batch: &RecordBatch,
    window: &IncrementalWindow,
    drop_field: bool,
    source: &str,
) -> Result<RecordBatch, ConnectorError> {
    let field = &window.field;
    let index = batch.schema().index_of(field).map_err(|_| {
        ConnectorError::bad_data(format!(
            "incremental pull: the datetimeTypeFieldName field {field} is not a column of the \
             data under {source}"
        ))
    })?;
    let (start, end) = (
        window.start.timestamp_millis(),
        window.end.timestamp_millis(),
    );
    let column = batch.column(index);
    let millis = instants_ms(column.as_ref(), field)?;
    let keep: BooleanArray = millis
        .iter()
        .map(|value| Some(value.is_some_and(|ms| start <= ms && ms < end)))
        .collect();
    let mut filtered = arrow_select::filter::filter_record_batch(batch, &keep)
        .map_err(|error| ConnectorError::internal(format!("incremental window filter: {error}")))?;
    if drop_field {
        filtered.remove_column(index);
    }
    Ok(filtered)
}

/// Every value of `column` as epoch milliseconds (`None` for nulls and blanks).
fn instants_ms(column: &dyn Array, field: &str) -> Result<Vec<Option<i64>>, ConnectorError> {
    let not_an_instant = |value: &str| {
        ConnectorError::bad_data(format!(
            "incremental pull: field {field} holds '{value}', which is not a timestamp \
             (ISO-8601 or epoch milliseconds)"
        ))
    };
    let text = |value: Option<&str>| match value {
        Some(text) if !text.trim().is_empty() => sluice_transforms::parse_datetime_ms(text)
            .map(Some)
            .ok_or_else(|| not_an_instant(text)),
        _ => Ok(None),
    };
    match column.data_type() {
        DataType::Utf8 => column.as_string::<i32>().iter().map(text).collect(),
        DataType::LargeUtf8 => column.as_string::<i64>().iter().map(text).collect(),
        DataType::Utf8View => column.as_string_view().iter().map(text).collect(),
        DataType::Int64 => Ok(column.as_primitive::<Int64Type>().iter().collect()),
        DataType::Timestamp(unit, _) => Ok(match unit {
            TimeUnit::Second => column
                .as_primitive::<TimestampSecondType>()
                .iter()
                .map(|v| v.and_then(|s| s.checked_mul(1000)))
                .collect(),
            TimeUnit::Millisecond => column
                .as_primitive::<TimestampMillisecondType>()
                .iter()
                .collect(),
            TimeUnit::Microsecond => column
                .as_primitive::<TimestampMicrosecondType>()
                .iter()
                .map(|v| v.map(|us| us.div_euclid(1000)))
                .collect(),
            TimeUnit::Nanosecond => column
                .as_primitive::<TimestampNanosecondType>()
                .iter()
                .map(|v| v.map(|ns| ns.div_euclid(1_000_000)))
                .collect(),
        }),
        other => Err(ConnectorError::bad_data(format!(
            "incremental pull: field {field} is of type {other}, not a timestamp, a string or \
             epoch milliseconds"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::{Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow_schema::{Field, Schema};
    use chrono::{DateTime, Utc};

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn window() -> IncrementalWindow {
        IncrementalWindow {
            field: "updated".into(),
            start: at("2024-03-01T10:00:00Z"),
            end: at("2024-03-01T11:00:00Z"),
        }
    }

    fn batch(values: Vec<Option<&str>>) -> RecordBatch {
        let ids: Vec<String> = (0..values.len()).map(|i| format!("r{i}")).collect();
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("id", DataType::Utf8, false),
                Field::new("updated", DataType::Utf8, true),
            ])),
            vec![
                Arc::new(StringArray::from(ids)),
                Arc::new(StringArray::from(values)),
            ],
        )
        .unwrap()
    }

    fn ids(batch: &RecordBatch) -> Vec<String> {
        batch
            .column(0)
            .as_string::<i32>()
            .iter()
            .map(|v| v.unwrap().to_string())
            .collect()
    }

    #[test]
    fn edges_are_start_inclusive_and_end_exclusive() {
        let input = batch(vec![
            Some("2024-03-01T09:59:59.999Z"),       // r0 before
            Some("2024-03-01T10:00:00Z"),           // r1 exactly at start: in
            Some("2024-03-01T10:30:00.5+00:00"),    // r2 in
            Some("2024-03-01T10:59:59.999999999Z"), // r3 a nanosecond before end: in
            Some("2024-03-01T11:00:00Z"),           // r4 exactly at end: next window
            Some("2024-03-01T11:00:00.0001Z"),      // r5 after end
            Some("2024-03-01T12:00:00+01:00"),      // r6 = 11:00Z: next window
            Some("2024-03-01T05:30:00-04:30"),      // r7 = 10:00Z: in
            Some("1709290800000"),                  // r8 epoch ms of 11:00Z: out
            Some("1709290799999"),                  // r9 epoch ms just before end: in
            None,                                   // r10 null: no window
            Some("  "),                             // r11 blank: no window
        ]);
        let out = filter_batch(&input, &window(), false, "s3://b/in").unwrap();
        assert_eq!(ids(&out), ["r1", "r2", "r3", "r7", "r9"]);
        assert_eq!(out.num_columns(), 2);
    }

    #[test]
    fn consecutive_windows_deliver_every_row_exactly_once() {
        let values = [
            "2024-03-01T09:00:00Z",
            "2024-03-01T10:00:00Z",
            "2024-03-01T10:00:00.000001Z",
            "2024-03-01T10:59:59.9999Z",
            "2024-03-01T11:00:00Z",
            "2024-03-01T11:59:59Z",
            "2024-03-01T13:00:00+01:00",
        ];
        let input = batch(values.iter().map(|v| Some(*v)).collect());
        let edges = [
            at("2024-03-01T09:00:00Z"),
            at("2024-03-01T10:00:00Z"),
            at("2024-03-01T11:00:00Z"),
            at("2024-03-01T12:00:00.001Z"),
        ];
        let mut seen = Vec::new();
        for pair in edges.windows(2) {
            let window = IncrementalWindow {
                field: "updated".into(),
                start: pair[0],
                end: pair[1],
            };
            seen.extend(ids(&filter_batch(&input, &window, false, "s").unwrap()));
        }
        seen.sort();
        let expected: Vec<String> = (0..values.len()).map(|i| format!("r{i}")).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn unicode_and_garbage_values_are_named_in_the_error() {
        let input = batch(vec![Some("2024-03-01T10:00:00Z"), Some("hier à 10h")]);
        let error = filter_batch(&input, &window(), false, "s3://b/in").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("updated"), "{message}");
        assert!(message.contains("hier à 10h"), "{message}");
    }

    #[test]
    fn a_missing_column_names_the_field_and_source() {
        let mut window = window();
        window.field = "modifiedAt".into();
        let error = filter_batch(&batch(vec![None]), &window, false, "s3://b/in").unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("modifiedAt") && message.contains("s3://b/in"),
            "{message}"
        );
    }

    #[test]
    fn the_field_read_only_for_the_window_is_dropped() {
        let input = batch(vec![
            Some("2024-03-01T10:00:00Z"),
            Some("2024-03-02T00:00:00Z"),
        ]);
        let out = filter_batch(&input, &window(), true, "s").unwrap();
        assert_eq!(out.num_columns(), 1);
        assert_eq!(out.schema().field(0).name(), "id");
        assert_eq!(ids(&out), ["r0"]);
    }

    #[test]
    fn typed_columns_are_filtered_too() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("updated", DataType::Int64, true),
        ]));
        let end = window().end.timestamp_millis();
        let input = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["a", "b", "c", "d"])),
                Arc::new(Int64Array::from(vec![
                    Some(end - 1),
                    Some(end),
                    None,
                    Some(i64::MIN),
                ])),
            ],
        )
        .unwrap();
        assert_eq!(
            ids(&filter_batch(&input, &window(), false, "s").unwrap()),
            ["a"]
        );

        let micros = window().start.timestamp_micros();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new(
                "updated",
                DataType::Timestamp(TimeUnit::Microsecond, Some("+02:00".into())),
                true,
            ),
        ]));
        let input = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["a", "b"])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![micros - 1, micros])
                        .with_timezone("+02:00"),
                ),
            ],
        )
        .unwrap();
        assert_eq!(
            ids(&filter_batch(&input, &window(), false, "s").unwrap()),
            ["b"]
        );
    }

    #[test]
    fn other_types_are_refused() {
        let input = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                "updated",
                DataType::Boolean,
                true,
            )])),
            vec![Arc::new(BooleanArray::from(vec![true]))],
        )
        .unwrap();
        let error = filter_batch(&input, &window(), false, "s").unwrap_err();
        assert!(error.to_string().contains("Boolean"), "{error}");
    }
}
