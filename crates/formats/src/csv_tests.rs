use arrow_array::cast::AsArray;
use arrow_array::{Array, Int64Array};

use super::*;

fn options(batch_rows: usize) -> ReaderOptions {
    ReaderOptions {
        batch_rows,
        ..ReaderOptions::default()
    }
}

/// Decodes `input` fed in chunks of `chunk` bytes.
fn decode_chunked(
    input: &[u8],
    chunk: usize,
    options: &ReaderOptions,
) -> Result<Vec<RecordBatch>, FormatError> {
    let mut decoder = CsvDecoder::new("in/data.csv", options);
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

/// All rows as optional strings, column by column per row.
fn rows(batches: &[RecordBatch]) -> Vec<Vec<Option<String>>> {
    let mut out = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            out.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| {
                        let c = c.as_string::<i32>();
                        c.is_valid(row).then(|| c.value(row).to_owned())
                    })
                    .collect(),
            );
        }
    }
    out
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

#[test]
fn reads_header_and_rows_as_utf8() {
    let batches = decode("id,name\n1,alice\n2,bob\n").unwrap();
    assert_eq!(batches.len(), 1);
    let schema = batches[0].schema();
    assert_eq!(schema.field(0).name(), "id");
    assert_eq!(schema.field(1).data_type(), &DataType::Utf8);
    assert_eq!(
        rows(&batches),
        vec![vec![s("1"), s("alice")], vec![s("2"), s("bob")]]
    );
}

#[test]
fn quotes_separators_newlines_and_unicode_survive_every_chunking() {
    let input = "id,text,note\r\n\
                 1,\"hello, world\",\"she said \"\"hi\"\"\"\r\n\
                 2,\"line one\nline two\",ünïcødé 🚀\r\n\
                 3,\"\",\r\n\
                 4,日本語,\"a\r\nb\"";
    let expected = vec![
        vec![s("1"), s("hello, world"), s("she said \"hi\"")],
        vec![s("2"), s("line one\nline two"), s("ünïcødé 🚀")],
        vec![s("3"), None, None],
        vec![s("4"), s("日本語"), s("a\r\nb")],
    ];
    for chunk in [1, 2, 3, 5, 7, 64, usize::MAX] {
        let batches = decode_chunked(input.as_bytes(), chunk, &options(2)).unwrap();
        assert_eq!(rows(&batches), expected, "chunk size {chunk}");
        assert!(
            batches.iter().all(|b| b.num_rows() <= 2),
            "batch_rows is respected"
        );
    }
}

#[test]
fn strips_a_bom_even_when_split_across_chunks() {
    let input = b"\xEF\xBB\xBFid,name\n1,x\n";
    for chunk in [1, 2, 3, 100] {
        let batches = decode_chunked(input, chunk, &options(10)).unwrap();
        assert_eq!(batches[0].schema().field(0).name(), "id", "chunk {chunk}");
        assert_eq!(rows(&batches), vec![vec![s("1"), s("x")]]);
    }
    // A BOM-only file and a file that merely starts like a BOM.
    assert!(
        decode_chunked(b"\xEF\xBB\xBF", 1, &options(10))
            .unwrap()
            .is_empty()
    );
    let error = decode_chunked(b"\xEF\xBBx,y\n", 1, &options(10)).unwrap_err();
    assert!(error.to_string().contains("not valid UTF-8"), "{error}");
}

#[test]
fn empty_and_header_only_files_have_no_rows() {
    for input in ["", "\n\n", "id,name", "id,name\n", "id,name\r\n\r\n"] {
        let mut decoder = CsvDecoder::new("f.csv", &ReaderOptions::default());
        let mut batches = decoder.push(input.as_bytes()).unwrap();
        batches.extend(decoder.finish().unwrap());
        assert!(batches.is_empty(), "{input:?}");
        assert_eq!(decoder.rows(), 0);
    }
    let mut decoder = CsvDecoder::new("f.csv", &ReaderOptions::default());
    decoder.push(b"id,name\n").unwrap();
    let schema = decoder.schema().expect("schema known after the header");
    assert_eq!(schema.fields().len(), 2);
}

#[test]
fn wrong_field_count_names_file_and_physical_line() {
    let input = "a,b,c,d,e\n1,2,3,4,5\n\"multi\nline\",2,3,4,5\n1,2,3,4\n";
    let error = decode(input).unwrap_err();
    assert_eq!(
        error.to_string(),
        "in/data.csv line 5: expected 5 fields, found 4"
    );

    let error = decode("a,b\n1,2\n1,2,3\n").unwrap_err();
    assert_eq!(
        error.to_string(),
        "in/data.csv line 3: expected 2 fields, found 3"
    );
    let wide = format!("a,b\n{}\n", vec!["x"; 500].join(","));
    let error = decode(&wide).unwrap_err();
    assert_eq!(
        error.to_string(),
        "in/data.csv line 2: expected 2 fields, found 500"
    );

    // The last record without a newline, after blank lines.
    let error = decode("a,b\n\n\n1\n").unwrap_err();
    assert_eq!(
        error.to_string(),
        "in/data.csv line 4: expected 2 fields, found 1"
    );
    let error = decode("a,b\r\n1,2\r\n3").unwrap_err();
    assert_eq!(
        error.to_string(),
        "in/data.csv line 3: expected 2 fields, found 1"
    );
}

#[test]
fn bad_record_line_is_right_across_chunk_boundaries() {
    let mut input = String::from("a,b\n");
    for i in 0..100 {
        input.push_str(&format!("{i},\"x\ny\"\n"));
    }
    input.push_str("oops\n");
    // 1 header line + 100 records of 2 lines each: the bad record is on line 202.
    for chunk in [1, 3, 17, 4096] {
        let error = decode_chunked(input.as_bytes(), chunk, &options(7)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "in/data.csv line 202: expected 2 fields, found 1"
        );
    }
}

#[test]
fn header_problems_are_clear_errors() {
    let error = decode("id,,name\n").unwrap_err();
    assert_eq!(
        error.to_string(),
        "in/data.csv line 1: header column 2 has an empty name"
    );
    let error = decode("id, \n").unwrap_err();
    assert!(
        error
            .to_string()
            .contains("header column 2 has an empty name"),
        "{error}"
    );
    let error = decode("id,name,id\n1,2,3\n").unwrap_err();
    assert_eq!(
        error.to_string(),
        "in/data.csv line 1: duplicate header name \"id\" (columns 1 and 3)"
    );
}

#[test]
fn invalid_utf8_names_the_line_and_column() {
    let input = b"id,name\n1,ok\n2,\xff\xfe\n";
    let error = decode_chunked(input, usize::MAX, &options(10)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "in/data.csv line 3: column \"name\" is not valid UTF-8"
    );
}

#[test]
fn projection_keeps_only_named_columns_in_file_order() {
    let options = ReaderOptions {
        projection: Some(vec!["c".into(), "a".into(), "missing".into()]),
        ..ReaderOptions::default()
    };
    let batches = decode_chunked(b"a,b,c\n1,2,3\n", usize::MAX, &options).unwrap();
    let schema = batches[0].schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, vec!["a", "c"]);
    assert_eq!(rows(&batches), vec![vec![s("1"), s("3")]]);
}

#[test]
fn batches_are_cut_by_rows_and_by_bytes() {
    let mut input = String::from("k,v\n");
    for i in 0..1000 {
        input.push_str(&format!("{i},{}\n", "x".repeat(100)));
    }
    let by_rows = decode_chunked(input.as_bytes(), 1000, &options(300)).unwrap();
    let sizes: Vec<usize> = by_rows.iter().map(RecordBatch::num_rows).collect();
    assert_eq!(sizes, vec![300, 300, 300, 100]);

    let by_bytes = ReaderOptions {
        batch_rows: 10_000,
        batch_bytes: 10_000,
        projection: None,
    };
    let batches = decode_chunked(input.as_bytes(), 4096, &by_bytes).unwrap();
    assert!(
        batches.len() >= 10,
        "cut by bytes into {} batches",
        batches.len()
    );
    assert_eq!(
        batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
        1000
    );
    assert_eq!(rows(&batches)[999], vec![s("999"), Some("x".repeat(100))]);
}

#[test]
fn an_unterminated_quote_cannot_exhaust_memory() {
    let mut decoder = CsvDecoder::new("big.csv", &ReaderOptions::default());
    decoder.push(b"a,b\n1,\"never closed\n").unwrap();
    let chunk = vec![b'x'; 1024 * 1024];
    let mut result = Ok(Vec::new());
    for _ in 0..(MAX_RECORD_BYTES / chunk.len() + 2) {
        result = decoder.push(&chunk);
        if result.is_err() {
            break;
        }
    }
    let error = result.unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("big.csv line 2: record is larger than"),
        "{error}"
    );
}

#[test]
fn writer_emits_header_and_rfc4180_quoting() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("text", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
            Arc::new(StringArray::from(vec![
                Some("a,b"),
                Some("say \"hi\"\nbye"),
                None,
            ])),
        ],
    )
    .unwrap();
    let mut writer: Box<dyn BatchWriter> = Box::new(CsvWriter::new());
    writer.write(&batch).unwrap();
    let first = writer.take_flushed();
    writer.write(&batch.slice(0, 1)).unwrap();
    assert_eq!(writer.rows_written(), 4);
    let rest = writer.finish().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8(first.to_vec()).unwrap(),
        String::from_utf8(rest.to_vec()).unwrap()
    );
    assert_eq!(
        text,
        "id,text\n1,\"a,b\"\n,\"say \"\"hi\"\"\nbye\"\n3,\n1,\"a,b\"\n"
    );

    // What we write, we read back.
    let back = decode(&text).unwrap();
    assert_eq!(rows(&back)[1], vec![None, s("say \"hi\"\nbye")]);
}

#[test]
fn writer_rejects_batches_with_other_columns() {
    let a = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("a", DataType::Utf8, true)])),
        vec![Arc::new(StringArray::from(vec!["1"]))],
    )
    .unwrap();
    let b = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("b", DataType::Utf8, true)])),
        vec![Arc::new(StringArray::from(vec!["1"]))],
    )
    .unwrap();
    let mut writer = CsvWriter::new();
    assert!(writer.accepts(b.schema_ref()));
    writer.write(&a).unwrap();
    assert!(!writer.accepts(b.schema_ref()));
    assert!(matches!(writer.write(&b), Err(FormatError::Encode { .. })));
}
