use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, Int64Array, StringArray, TimestampMillisecondArray};

use serde_json::Value;

use super::*;

fn decode_chunked(
    input: &[u8],
    chunk: usize,
    options: &ReaderOptions,
) -> Result<Vec<RecordBatch>, FormatError> {
    let mut decoder = JsonLinesDecoder::new("in/events.jsonl", options);
    let mut batches = Vec::new();
    for part in input.chunks(chunk.max(1)) {
        batches.extend(decoder.push(part)?);
    }
    batches.extend(decoder.finish()?);
    Ok(batches)
}

fn decode(input: &str) -> Result<Vec<RecordBatch>, FormatError> {
    decode_chunked(input.as_bytes(), usize::MAX, &ReaderOptions::default())
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> &'a ArrayRef {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

fn texts(array: &ArrayRef) -> Vec<Option<String>> {
    array
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_owned))
        .collect()
}

#[test]
fn infers_json_types() {
    let batches = decode(
        "{\"id\": 1, \"price\": 2.5, \"ok\": true, \"name\": \"a\", \"gone\": null}\n\
         {\"id\": 2, \"price\": 3.0, \"ok\": false, \"name\": null, \"gone\": null}\n",
    )
    .unwrap();
    assert_eq!(batches.len(), 1);
    let batch = &batches[0];
    let types: Vec<(String, DataType)> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();
    assert_eq!(
        types,
        vec![
            ("id".into(), DataType::Int64),
            ("price".into(), DataType::Float64),
            ("ok".into(), DataType::Boolean),
            ("name".into(), DataType::Utf8),
            ("gone".into(), DataType::Utf8),
        ]
    );
    assert_eq!(
        column(batch, "id").as_primitive::<Int64Type>().values(),
        &[1, 2]
    );
    assert_eq!(
        column(batch, "price")
            .as_primitive::<Float64Type>()
            .values(),
        &[2.5, 3.0]
    );
    assert_eq!(
        texts(column(batch, "name")),
        vec![Some("a".to_owned()), None]
    );
    assert_eq!(column(batch, "gone").null_count(), 2);
}

#[test]
fn mixed_types_widen() {
    let batch = &decode(
        "{\"n\": 1, \"s\": 1, \"b\": true}\n\
         {\"n\": 2.5, \"s\": \"x\", \"b\": 0}\n",
    )
    .unwrap()[0];
    assert_eq!(column(batch, "n").data_type(), &DataType::Float64);
    assert_eq!(
        column(batch, "n").as_primitive::<Float64Type>().values(),
        &[1.0, 2.5]
    );
    assert_eq!(
        texts(column(batch, "s")),
        vec![Some("1".to_owned()), Some("x".to_owned())]
    );
    assert_eq!(
        texts(column(batch, "b")),
        vec![Some("true".to_owned()), Some("0".to_owned())]
    );
}

#[test]
fn nested_values_become_json_text() {
    let batch = &decode(
        "{\"obj\": {\"a\": [1, {\"b\": \"q\\\"uote\\n\"}], \"c\": null}, \"list\": [true, 1.5]}\n",
    )
    .unwrap()[0];
    let obj = texts(column(batch, "obj"))[0].clone().unwrap();
    assert_eq!(obj, r#"{"a":[1,{"b":"q\"uote\n"}],"c":null}"#);
    let parsed: Value = serde_json::from_str(&obj).unwrap();
    assert_eq!(parsed["a"][1]["b"], "q\"uote\n");
    assert_eq!(
        texts(column(batch, "list")),
        vec![Some("[true,1.5]".to_owned())]
    );
}

#[test]
fn fields_first_seen_after_the_inference_window_are_kept() {
    let mut input = String::new();
    for i in 0..(INFER_LINES + 200) {
        if i == INFER_LINES + 100 {
            input.push_str(&format!(
                "{{\"id\": {i}, \"late\": \"here\", \"v\": \"text\"}}\n"
            ));
        } else {
            input.push_str(&format!("{{\"id\": {i}, \"v\": {i}}}\n"));
        }
    }
    // One batch: the late field and the type change are both learned on the retry.
    let batches = decode(&input).unwrap();
    assert_eq!(batches.len(), 1);
    let batch = &batches[0];
    assert_eq!(batch.num_rows(), INFER_LINES + 200);
    let late = texts(column(batch, "late"));
    assert_eq!(late[INFER_LINES + 100].as_deref(), Some("here"));
    assert_eq!(late.iter().filter(|v| v.is_some()).count(), 1);
    let v = texts(column(batch, "v"));
    assert_eq!(v[5].as_deref(), Some("5"));
    assert_eq!(v[INFER_LINES + 100].as_deref(), Some("text"));

    // Small batches: the schema widens from one batch to the next and never narrows.
    let options = ReaderOptions {
        batch_rows: 500,
        ..ReaderOptions::default()
    };
    let batches = decode_chunked(input.as_bytes(), 4096, &options).unwrap();
    assert_eq!(batches.len(), 3);
    assert!(batches[0].column_by_name("late").is_none());
    assert_eq!(
        batches[0]
            .schema()
            .field_with_name("v")
            .unwrap()
            .data_type(),
        &DataType::Int64
    );
    assert!(batches[2].column_by_name("late").is_some());
    assert_eq!(
        batches[2]
            .schema()
            .field_with_name("v")
            .unwrap()
            .data_type(),
        &DataType::Utf8
    );
    assert_eq!(
        batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
        INFER_LINES + 200
    );
}

#[test]
fn null_only_columns_stay_text_once_emitted() {
    let options = ReaderOptions {
        batch_rows: 1,
        ..ReaderOptions::default()
    };
    let batches = decode_chunked(b"{\"x\": null}\n{\"x\": 5}\n", usize::MAX, &options).unwrap();
    assert_eq!(batches[0].schema().field(0).data_type(), &DataType::Utf8);
    assert_eq!(batches[1].schema().field(0).data_type(), &DataType::Utf8);
    assert_eq!(texts(batches[1].column(0)), vec![Some("5".to_owned())]);
}

#[test]
fn integer_overflow_widens_to_float() {
    let batch =
        &decode("{\"big\": 9223372036854775807}\n{\"big\": 18446744073709551616}\n").unwrap()[0];
    assert_eq!(column(batch, "big").data_type(), &DataType::Float64);
    let values = column(batch, "big").as_primitive::<Float64Type>();
    assert_eq!(values.value(1), 18_446_744_073_709_551_616.0);
}

#[test]
fn malformed_lines_name_file_and_line() {
    let error = decode("{\"a\": 1}\n\n{\"a\": }\n").unwrap_err();
    let text = error.to_string();
    assert!(text.starts_with("in/events.jsonl line 3: "), "{text}");

    let error = decode("{\"a\": 1}\n{\"a\": 2\n{\"a\": 3}\n").unwrap_err();
    assert_eq!(
        error.to_string(),
        "in/events.jsonl line 2: invalid JSON: EOF while parsing an object (column 7)"
    );

    let error = decode("{\"a\": 1}\n[1, 2]\n").unwrap_err();
    assert_eq!(
        error.to_string(),
        "in/events.jsonl line 2: expected a JSON object, found an array"
    );

    let error = decode("{\"a\": 1} {\"a\": 2}\n").unwrap_err();
    assert!(
        error.to_string().starts_with("in/events.jsonl line 1: "),
        "{error}"
    );

    // Beyond the inference window, in a later batch.
    let mut input = "{\"a\": 1}\n".repeat(2000);
    input.push_str("not json\n");
    let options = ReaderOptions {
        batch_rows: 700,
        ..ReaderOptions::default()
    };
    let error = decode_chunked(input.as_bytes(), 333, &options).unwrap_err();
    assert!(
        error.to_string().starts_with("in/events.jsonl line 2001: "),
        "{error}"
    );
}

#[test]
fn bom_crlf_blank_lines_unicode_and_chunking() {
    let input = "\u{feff}{\"name\": \"caf\\u00e9\"}\r\n\r\n   \n{\"name\": \"日本 🚀\"}";
    for chunk in [1, 2, 5, 1000] {
        let batches = decode_chunked(input.as_bytes(), chunk, &ReaderOptions::default()).unwrap();
        assert_eq!(batches.len(), 1, "chunk {chunk}");
        assert_eq!(
            texts(column(&batches[0], "name")),
            vec![Some("café".to_owned()), Some("日本 🚀".to_owned())]
        );
    }
}

#[test]
fn empty_inputs_have_no_rows() {
    for input in ["", "\n", "  \n\r\n"] {
        assert!(decode(input).unwrap().is_empty(), "{input:?}");
    }
}

#[test]
fn projection_drops_other_columns() {
    let options = ReaderOptions {
        projection: Some(vec!["b".to_owned()]),
        ..ReaderOptions::default()
    };
    let batches = decode_chunked(b"{\"a\": 1, \"b\": 2}\n", usize::MAX, &options).unwrap();
    assert_eq!(batches[0].num_columns(), 1);
    assert_eq!(batches[0].schema().field(0).name(), "b");
}

#[test]
fn an_endless_line_is_an_error() {
    let mut decoder = JsonLinesDecoder::new("big.jsonl", &ReaderOptions::default());
    let chunk = vec![b' '; 1024 * 1024];
    let mut error = None;
    for _ in 0..(MAX_LINE_BYTES / chunk.len() + 2) {
        if let Err(e) = decoder.push(&chunk) {
            error = Some(e);
            break;
        }
    }
    let error = error.expect("line length is bounded");
    assert!(
        error
            .to_string()
            .starts_with("big.jsonl line 1: line is longer than"),
        "{error}"
    );
}

#[test]
fn writer_keeps_types_writes_explicit_nulls_and_iso_timestamps() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new(
            "at",
            DataType::Timestamp(arrow_schema::TimeUnit::Millisecond, None),
            true,
        ),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![Some(1), None])),
            Arc::new(StringArray::from(vec![Some("é \"q\""), None])),
            Arc::new(TimestampMillisecondArray::from(vec![
                Some(1_709_649_000_000),
                None,
            ])),
        ],
    )
    .unwrap();
    let mut writer: Box<dyn BatchWriter> = Box::new(JsonLinesWriter::new());
    writer.write(&batch).unwrap();
    assert_eq!(writer.rows_written(), 2);
    let mut out = writer.take_flushed().to_vec();
    out.extend_from_slice(&writer.finish().unwrap());
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["id"], 1);
    assert_eq!(lines[0]["name"], "é \"q\"");
    assert_eq!(lines[0]["at"], "2024-03-05T14:30:00");
    assert_eq!(
        lines[1],
        serde_json::json!({"id": null, "name": null, "at": null})
    );

    // And it reads back with the same types.
    let back = decode(&text).unwrap();
    assert_eq!(back[0].schema().field(0).data_type(), &DataType::Int64);
}

#[test]
fn writer_renders_utc_named_timestamps_as_iso_instants() {
    for zone in ["UTC", "Etc/UTC", "+00:00"] {
        let values = TimestampMillisecondArray::from(vec![Some(1_709_649_059_123), None])
            .with_timezone(zone);
        let schema = Arc::new(Schema::new(vec![Field::new(
            "LastModifiedDate",
            values.data_type().clone(),
            true,
        )]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(values)]).unwrap();
        let mut writer: Box<dyn BatchWriter> = Box::new(JsonLinesWriter::new());
        writer.write(&batch).unwrap();
        let text = String::from_utf8(writer.finish().unwrap().to_vec()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines[0]["LastModifiedDate"], "2024-03-05T14:30:59.123Z",
            "zone {zone}"
        );
        assert_eq!(lines[1]["LastModifiedDate"], Value::Null);
    }
    // A named zone other than UTC stays an error naming the zone, not a wrong instant.
    let values = TimestampMillisecondArray::from(vec![Some(0)]).with_timezone("Europe/Paris");
    let schema = Arc::new(Schema::new(vec![Field::new(
        "at",
        values.data_type().clone(),
        true,
    )]));
    let batch = RecordBatch::try_new(schema, vec![Arc::new(values)]).unwrap();
    let mut writer = JsonLinesWriter::new();
    let error = writer.write(&batch).unwrap_err();
    assert!(error.to_string().contains("Europe/Paris"), "{error}");
}
