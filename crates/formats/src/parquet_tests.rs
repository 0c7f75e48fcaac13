use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use ::parquet::basic::Compression as ParquetCompression;
use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, StringArray,
    TimestampMillisecondArray,
};
use arrow_schema::{DataType, TimeUnit};

use super::*;

fn sample(rows: usize, offset: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("price", DataType::Float64, true),
        Field::new("ok", DataType::Boolean, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("at", DataType::Timestamp(TimeUnit::Millisecond, None), true),
    ]));
    let ids: Vec<i64> = (0..rows as i64).map(|i| i + offset).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.clone())),
        Arc::new(Float64Array::from_iter(
            ids.iter().map(|i| (i % 3 != 0).then_some(*i as f64 / 2.0)),
        )),
        Arc::new(BooleanArray::from_iter(
            ids.iter().map(|i| Some(i % 2 == 0)),
        )),
        Arc::new(StringArray::from_iter(
            ids.iter()
                .map(|i| (i % 5 != 0).then(|| format!("näme-{i}"))),
        )),
        Arc::new(TimestampMillisecondArray::from(vec![
            1_709_649_000_000;
            rows
        ])),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

/// Writes `batches`, draining after each one like an uploader would; returns the file.
fn write_all(writer: &mut ParquetWriter, batches: &[RecordBatch]) -> (Vec<u8>, usize) {
    let mut file = Vec::new();
    let mut drained_before_finish = 0;
    for batch in batches {
        writer.write(batch).unwrap();
        let chunk = writer.take_flushed();
        drained_before_finish += chunk.len();
        file.extend_from_slice(&chunk);
    }
    (file, drained_before_finish)
}

fn read(
    file: Vec<u8>,
) -> (
    Vec<RecordBatch>,
    usize,
    ::parquet::file::metadata::ParquetMetaData,
) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(file)).unwrap();
    let metadata = builder.metadata().as_ref().clone();
    let groups = metadata.num_row_groups();
    let batches = builder
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (batches, groups, metadata)
}

#[test]
fn preserved_types_round_trip_with_snappy() {
    let options = WriterOptions {
        preserve_source_data_typing: true,
        ..WriterOptions::default()
    };
    let mut writer = ParquetWriter::new(&options);
    let (mut file, _) = write_all(&mut writer, &[sample(10, 0), sample(10, 10)]);
    assert_eq!(writer.rows_written(), 20);
    file.extend_from_slice(&Box::new(writer).finish().unwrap());

    let (batches, _, metadata) = read(file);
    let batch = &batches[0];
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 20);
    assert_eq!(batch.schema().field(0).data_type(), &DataType::Int64);
    assert_eq!(batch.schema().field(2).data_type(), &DataType::Boolean);
    assert_eq!(batch.column(0).as_primitive::<Int64Type>().value(3), 3);
    assert!(batch.column(1).is_null(0));
    assert_eq!(batch.column(3).as_string::<i32>().value(1), "näme-1");
    let column = metadata.row_group(0).column(0);
    assert_eq!(column.compression(), ParquetCompression::SNAPPY);
}

#[test]
fn without_preserved_types_every_column_is_text() {
    let mut writer = ParquetWriter::new(&WriterOptions::default());
    let (mut file, _) = write_all(&mut writer, &[sample(4, 0)]);
    file.extend_from_slice(&Box::new(writer).finish().unwrap());
    let (batches, _, _) = read(file);
    let batch = &batches[0];
    assert!(
        batch
            .schema()
            .fields()
            .iter()
            .all(|f| f.data_type() == &DataType::Utf8)
    );
    assert_eq!(batch.column(0).as_string::<i32>().value(3), "3");
    assert_eq!(batch.column(1).as_string::<i32>().value(1), "0.5");
    assert!(batch.column(1).is_null(0), "nulls stay null");
    assert_eq!(batch.column(2).as_string::<i32>().value(0), "true");
    assert_eq!(
        batch.column(4).as_string::<i32>().value(0),
        "2024-03-05T14:30:00"
    );
}

#[test]
fn row_groups_are_bounded_and_drained_while_writing() {
    let options = WriterOptions {
        row_group_rows: 1000,
        ..WriterOptions::default()
    };
    let mut writer = ParquetWriter::new(&options);
    let batches: Vec<RecordBatch> = (0..10).map(|i| sample(700, i * 700)).collect();
    let (mut file, drained) = write_all(&mut writer, &batches);
    assert!(drained > 0, "closed row groups are available before finish");
    assert!(
        writer.buffered_bytes() < 1_000_000,
        "memory holds at most one row group"
    );
    file.extend_from_slice(&Box::new(writer).finish().unwrap());

    let (read_back, groups, _) = read(file);
    assert_eq!(groups, 7, "7000 rows in row groups of at most 1000");
    let ids: Vec<i64> = read_back
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_string::<i32>()
                .iter()
                .map(|v| v.unwrap().parse::<i64>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        ids,
        (0..7000).collect::<Vec<_>>(),
        "rows keep their order across drains"
    );
}

#[test]
fn row_groups_are_also_bounded_by_bytes() {
    let options = WriterOptions {
        preserve_source_data_typing: true,
        row_group_rows: 1_000_000,
        row_group_bytes: 64 * 1024,
    };
    let mut writer = ParquetWriter::new(&options);
    let batches: Vec<RecordBatch> = (0..20).map(|i| sample(1000, i * 1000)).collect();
    let (mut file, _) = write_all(&mut writer, &batches);
    file.extend_from_slice(&Box::new(writer).finish().unwrap());
    let (_, groups, _) = read(file);
    assert!(groups > 2, "byte bound closed {groups} row groups");
}

#[test]
fn schema_changes_need_a_new_file() {
    let options = WriterOptions {
        preserve_source_data_typing: true,
        ..WriterOptions::default()
    };
    let mut writer = ParquetWriter::new(&options);
    let first = sample(2, 0);
    writer.write(&first).unwrap();
    let narrower = first.project(&[0, 1]).unwrap();
    assert!(writer.accepts(first.schema_ref()));
    assert!(!writer.accepts(narrower.schema_ref()));
    assert!(matches!(
        writer.write(&narrower),
        Err(FormatError::Encode { .. })
    ));

    // As text, only names matter: an Int64 and a Float64 column of the same name both fit.
    let mut text_writer = ParquetWriter::new(&WriterOptions::default());
    text_writer.write(&first).unwrap();
    let retyped = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Float64, true),
            Field::new("price", DataType::Utf8, true),
            Field::new("ok", DataType::Utf8, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("at", DataType::Utf8, true),
        ])),
        vec![
            Arc::new(Float64Array::from(vec![1.5])),
            Arc::new(StringArray::from(vec!["x"])),
            Arc::new(StringArray::from(vec!["y"])),
            Arc::new(StringArray::from(vec!["z"])),
            Arc::new(StringArray::from(vec!["w"])),
        ],
    )
    .unwrap();
    assert!(text_writer.accepts(retyped.schema_ref()));
    text_writer.write(&retyped).unwrap();
}

#[test]
fn finishing_an_unused_writer_yields_nothing() {
    let writer = ParquetWriter::new(&WriterOptions::default());
    assert!(Box::new(writer).finish().unwrap().is_empty());
}

#[test]
fn dictionaries_are_kept_only_for_repetitive_columns() {
    let rows = 2_000;
    let schema = Arc::new(Schema::new(vec![
        Field::new("email", DataType::Utf8, true),
        Field::new("country", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
        Field::new("status", DataType::Int32, true),
    ]));
    let emails: Vec<String> = (0..rows).map(|i| format!("user{i}@exämple.com")).collect();
    let countries: Vec<Option<&str>> = (0..rows)
        .map(|i| (i % 7 != 0).then_some(["FR", "日本", "US"][i % 3]))
        .collect();
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(emails)) as ArrayRef,
            Arc::new(StringArray::from(countries)),
            Arc::new(Int64Array::from_iter_values(0..rows as i64)),
            Arc::new(Int32Array::from_iter(
                (0..rows as i32).map(|i| (i % 11 != 0).then_some(i % 4)),
            )),
        ],
    )
    .unwrap();
    let options = WriterOptions {
        preserve_source_data_typing: true,
        ..WriterOptions::default()
    };
    let mut writer = ParquetWriter::new(&options);
    let (mut file, _) = write_all(&mut writer, std::slice::from_ref(&batch));
    file.extend_from_slice(&Box::new(writer).finish().unwrap());

    let (read, _, metadata) = read(file);
    let row_group = metadata.row_group(0);
    let has_dictionary =
        |column: usize| row_group.column(column).dictionary_page_offset().is_some();
    assert!(!has_dictionary(0), "distinct e-mails are written plain");
    assert!(
        has_dictionary(1),
        "a repetitive column keeps its dictionary"
    );
    assert!(!has_dictionary(2), "distinct numbers are written plain");
    assert!(
        has_dictionary(3),
        "repetitive numbers keep their dictionary"
    );
    let column = |index: usize| -> Vec<Option<String>> {
        read.iter()
            .flat_map(|batch| batch.column(index).as_string::<i32>().iter())
            .map(|value| value.map(str::to_owned))
            .collect()
    };
    let (emails, countries) = (column(0), column(1));
    assert_eq!(emails.len(), rows);
    assert_eq!(emails[1_999].as_deref(), Some("user1999@exämple.com"));
    assert_eq!(countries[1].as_deref(), Some("日本"));
    assert_eq!(countries[2].as_deref(), Some("US"));
    assert_eq!(countries[7], None);
    let n = read
        .iter()
        .flat_map(|batch| {
            batch
                .column(2)
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect::<Vec<_>>();
    assert_eq!(n, (0..rows as i64).collect::<Vec<_>>());
    let status = read
        .iter()
        .flat_map(|batch| batch.column(3).as_primitive::<Int32Type>().iter())
        .collect::<Vec<_>>();
    assert_eq!(&status[..4], &[None, Some(1), Some(2), Some(3)]);
}

#[test]
fn small_or_sparse_samples_keep_the_default_encoding() {
    let few = StringArray::from_iter_values((0..10).map(|i| format!("v{i}")));
    assert!(!mostly_distinct(&few), "too few values to judge");
    let sparse = StringArray::from_iter((0..1_000).map(|i| (i % 50 == 0).then(|| format!("{i}"))));
    assert!(
        !mostly_distinct(&sparse),
        "20 non-null values are too few to judge"
    );
    let distinct = StringArray::from_iter_values((0..100).map(|i| format!("é{i}")));
    assert!(mostly_distinct(&distinct));
    let half = StringArray::from_iter_values((0..100).map(|i| format!("{}", i % 50)));
    assert!(
        !mostly_distinct(&half),
        "exactly half distinct keeps the dictionary"
    );
    // Fixed-width columns are judged by their values, nulls skipped, from the array's offset.
    assert!(mostly_distinct(&Int64Array::from_iter_values(0..100)));
    assert!(!mostly_distinct(&Int64Array::from_iter_values(
        (0..100).map(|i| i % 50)
    )));
    let mostly_null = Int32Array::from_iter((0..1_000).map(|i| (i % 50 == 0).then_some(i)));
    assert!(!mostly_distinct(&mostly_null), "20 values are too few");
    let repeated_then_distinct = Int64Array::from_iter_values((0..200).map(|i| i.max(100)));
    assert!(!mostly_distinct(&repeated_then_distinct));
    assert!(mostly_distinct(&repeated_then_distinct.slice(100, 100)));
    let amounts = arrow_array::Decimal128Array::from_iter_values((0..100).map(|i| i * 7919))
        .with_precision_and_scale(12, 2)
        .unwrap();
    assert!(mostly_distinct(&amounts));
    let floats = Float64Array::from_iter_values((0..100).map(|i| f64::from(i) / 3.0));
    assert!(mostly_distinct(&floats));
    assert!(!mostly_distinct(&BooleanArray::from_iter(
        (0..100).map(|i| Some(i % 2 == 0))
    )));
}
