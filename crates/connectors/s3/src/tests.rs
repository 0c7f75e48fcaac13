//! Connector tests. Every scenario runs against local folders, and again against a real
//! S3-compatible server when `SLUICE_TEST_S3_ENDPOINT` is set (e.g. `moto_server -p 5077`).

use std::future::Future;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use chrono::{TimeZone, Utc};
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload};
use serde_json::json;
use sluice_connector_api::{ConnectorErrorKind, ReadStats, WriteSummary};
use sluice_storage::StorageConfig;
use sluice_storage::testing::{create_s3_bucket, s3_storage, test_endpoint, unique_bucket_name};

use super::*;
use crate::config::Rolling;

/// Run start used by every write: 2024-03-05T14:30:59Z.
fn started() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 5, 14, 30, 59).unwrap()
}
const STARTED_MS: i64 = 1_709_649_059_000;

struct Harness {
    storage: Arc<Storage>,
    connector: S3Connector,
    endpoint: Option<String>,
    _root: Option<tempfile::TempDir>,
}

impl Harness {
    fn local() -> Self {
        let root = tempfile::tempdir().unwrap();
        let storage = Arc::new(Storage::new(StorageConfig::local(root.path())));
        Self {
            connector: S3Connector::new(Arc::clone(&storage)),
            storage,
            endpoint: None,
            _root: Some(root),
        }
    }

    fn s3(endpoint: String) -> Self {
        let storage = Arc::new(s3_storage(&endpoint));
        Self {
            connector: S3Connector::new(Arc::clone(&storage)),
            storage,
            endpoint: Some(endpoint),
            _root: None,
        }
    }

    async fn bucket(&self) -> String {
        let name = unique_bucket_name("s3c");
        match &self.endpoint {
            None => self.storage.create_bucket(&name).unwrap(),
            Some(endpoint) => create_s3_bucket(endpoint, &name).await,
        }
        name
    }

    async fn put(&self, bucket: &str, key: &str, body: impl Into<Bytes>) {
        let store = self.storage.bucket(bucket).unwrap();
        let payload = PutPayload::from(body.into());
        store
            .put(&Path::parse(key).unwrap(), payload)
            .await
            .unwrap();
    }

    async fn keys(&self, bucket: &str) -> Vec<String> {
        let store = self.storage.bucket(bucket).unwrap();
        let mut keys: Vec<String> = store
            .list(None)
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        keys.sort();
        keys
    }

    async fn get(&self, bucket: &str, key: &str) -> Bytes {
        let store = self.storage.bucket(bucket).unwrap();
        store
            .get(&Path::parse(key).unwrap())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
    }

    async fn read(&self, source: serde_json::Value) -> Result<Vec<RecordBatch>, ConnectorError> {
        self.read_with(source, None)
            .await
            .map(|(batches, _)| batches)
    }

    async fn read_with(
        &self,
        source: serde_json::Value,
        projection: Option<Vec<String>>,
    ) -> Result<(Vec<RecordBatch>, u64), ConnectorError> {
        let stats = Arc::new(ReadStats::default());
        let request = ReadRequest {
            flow_name: "flow".to_owned(),
            execution_id: "exec".to_owned(),
            source: serde_json::from_value(json!({
                "connectorType": "S3",
                "sourceConnectorProperties": {"S3": source}
            }))
            .unwrap(),
            profile: None,
            projection,
            filters: Vec::new(),
            window: None,
            batch_rows: 1000,
            stats: Arc::clone(&stats),
        };
        let stream = self.connector.read(request).await?;
        let batches = stream.try_collect().await?;
        Ok((batches, stats.bytes_read()))
    }

    async fn writer(
        &self,
        destination: serde_json::Value,
        partition_keys: &[&str],
    ) -> Result<Box<dyn DestinationWriter>, ConnectorError> {
        let request = WriteRequest {
            flow_name: "my-flow".to_owned(),
            execution_id: "exec-1".to_owned(),
            destination: serde_json::from_value(json!({
                "connectorType": "S3",
                "destinationConnectorProperties": {"S3": destination}
            }))
            .unwrap(),
            profile: None,
            schema_version: 2,
            run_started_at: started(),
            partition_keys: partition_keys.iter().map(|k| (*k).to_owned()).collect(),
            rejected: std::sync::Arc::new(sluice_connector_api::NoErrorLocation),
        };
        self.connector.open_writer(request).await
    }
}

/// Runs `scenario` on local folders, then on the S3 test endpoint when one is configured.
async fn both<F, Fut>(scenario: F)
where
    F: Fn(Harness) -> Fut,
    Fut: Future<Output = ()>,
{
    scenario(Harness::local()).await;
    match test_endpoint() {
        Some(endpoint) => scenario(Harness::s3(endpoint)).await,
        None => eprintln!("S3 variant skipped: set SLUICE_TEST_S3_ENDPOINT"),
    }
}

fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let column = batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"));
    column
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_owned))
        .collect()
}

fn all_strings(batches: &[RecordBatch], name: &str) -> Vec<Option<String>> {
    batches.iter().flat_map(|b| strings(b, name)).collect()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

/// `rows` rows of `id` (Int64), `name` (Utf8) and `country` (cycling FR, DE, null, "a/b").
fn people(rows: usize, offset: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("country", DataType::Utf8, true),
    ]));
    let ids: Vec<i64> = (0..rows as i64).map(|i| i + offset).collect();
    let countries = [Some("FR"), Some("DE"), None, Some("a/b")];
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.clone())),
        // About 100 bytes per row, so a few thousand rows make files of several MiB.
        Arc::new(StringArray::from_iter(ids.iter().map(|i| {
            Some(format!("person-{i} ünï \"q\" {}", "x".repeat(72)))
        }))),
        Arc::new(StringArray::from_iter(
            ids.iter().map(|i| countries[(*i % 4) as usize]),
        )),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

fn csv_rows(text: &str) -> usize {
    // Only the fixtures' own rows: no quoted newlines in `people`.
    text.lines().count().saturating_sub(1)
}

#[tokio::test]
async fn csv_source_reads_every_object_under_the_prefix_in_key_order() {
    both(|h| async move {
        let bucket = h.bucket().await;
        h.put(&bucket, "in/b.csv", "id,text\n3,\"multi\nline\"\n")
            .await;
        h.put(
            &bucket,
            "in/a.csv",
            "\u{feff}id,text\r\n1,\"hello, \"\"world\"\"\"\r\n2,日本語 🚀\r\n"
                .as_bytes()
                .to_vec(),
        )
        .await;
        h.put(&bucket, "in/sub/c.csv", "id,text\n4,\n").await;
        h.put(&bucket, "in/zero.csv", Bytes::new()).await;
        h.put(&bucket, "input.csv", "id,text\n99,outside the folder\n")
            .await;

        let (batches, bytes) = h
            .read_with(json!({"bucketName": bucket, "bucketPrefix": "in"}), None)
            .await
            .unwrap();
        assert_eq!(
            all_strings(&batches, "id"),
            vec![s("1"), s("2"), s("3"), s("4")]
        );
        assert_eq!(
            all_strings(&batches, "text"),
            vec![
                s("hello, \"world\""),
                s("日本語 🚀"),
                s("multi\nline"),
                None
            ]
        );
        assert!(
            batches
                .iter()
                .all(|b| b.schema().field(0).data_type() == &DataType::Utf8)
        );
        assert!(bytes > 60, "read stats count bytes: {bytes}");

        // A prefix naming one object reads just that object.
        let one = h
            .read(json!({"bucketName": bucket, "bucketPrefix": "in/sub/c.csv"}))
            .await
            .unwrap();
        assert_eq!(all_strings(&one, "id"), vec![s("4")]);
    })
    .await;
}

#[tokio::test]
async fn csv_projection_reads_only_named_columns() {
    both(|h| async move {
        let bucket = h.bucket().await;
        h.put(&bucket, "p/x.csv", "a,b,c\n1,2,3\n").await;
        let (batches, _) = h
            .read_with(
                json!({"bucketName": bucket, "bucketPrefix": "p"}),
                Some(vec!["c".into()]),
            )
            .await
            .unwrap();
        assert_eq!(batches[0].num_columns(), 1);
        assert_eq!(strings(&batches[0], "c"), vec![s("3")]);
    })
    .await;
}

#[tokio::test]
async fn jsonl_source_keeps_json_types() {
    both(|h| async move {
        let bucket = h.bucket().await;
        h.put(
            &bucket,
            "events/1.jsonl",
            "{\"id\": 1, \"price\": 9.5, \"ok\": true, \"tags\": [\"x\"], \"name\": \"é\"}\n\
             {\"id\": 2, \"price\": 10, \"ok\": false, \"tags\": [], \"name\": null}\n",
        )
        .await;
        let batches = h
            .read(json!({
                "bucketName": bucket, "bucketPrefix": "events",
                "s3InputFormatConfig": {"s3InputFileType": "JSON"}
            }))
            .await
            .unwrap();
        let batch = &batches[0];
        assert_eq!(
            batch
                .column_by_name("id")
                .unwrap()
                .as_primitive::<Int64Type>()
                .values(),
            &[1, 2]
        );
        let price = batch
            .column_by_name("price")
            .unwrap()
            .as_primitive::<Float64Type>();
        assert_eq!(price.values(), &[9.5, 10.0]);
        assert_eq!(
            batch.column_by_name("ok").unwrap().data_type(),
            &DataType::Boolean
        );
        assert_eq!(strings(batch, "tags"), vec![s("[\"x\"]"), s("[]")]);
        assert_eq!(strings(batch, "name"), vec![s("é"), None]);
    })
    .await;
}

#[tokio::test]
async fn bad_csv_row_names_bucket_key_and_line() {
    both(|h| async move {
        let bucket = h.bucket().await;
        h.put(&bucket, "in/bad.csv", "a,b\n1,2\n3\n").await;
        let error = h
            .read(json!({"bucketName": bucket, "bucketPrefix": "in"}))
            .await
            .unwrap_err();
        assert_eq!(error.kind, ConnectorErrorKind::BadData);
        assert_eq!(
            error.message,
            format!("s3://{bucket}/in/bad.csv line 3: expected 2 fields, found 1")
        );
    })
    .await;
}

#[tokio::test]
async fn missing_bucket_is_not_found_for_reads_and_writes() {
    both(|h| async move {
        let missing = unique_bucket_name("missing");
        let error = h
            .read(json!({"bucketName": missing, "bucketPrefix": "in"}))
            .await
            .unwrap_err();
        assert_eq!(error.kind, ConnectorErrorKind::NotFound, "{error}");
        assert!(error.message.contains(&missing), "{error}");

        // Local-folder mode creates a missing destination bucket (it is only a folder); an S3
        // endpoint keeps AppFlow's rule that the bucket must exist.
        let opened = h.writer(json!({"bucketName": missing}), &[]).await;
        if h.endpoint.is_some() {
            let error = opened.err().unwrap();
            assert_eq!(error.kind, ConnectorErrorKind::NotFound, "{error}");
            assert!(error.message.contains(&missing), "{error}");
        } else {
            assert!(opened.is_ok(), "local mode creates the destination bucket");
            assert!(h.storage.bucket(&missing).is_ok());
        }

        let error = h.read(json!({"bucketName": "Bad_Name"})).await.unwrap_err();
        assert_eq!(error.kind, ConnectorErrorKind::InvalidConfig, "{error}");
    })
    .await;
}

#[tokio::test]
async fn empty_prefix_yields_zero_rows() {
    both(|h| async move {
        let bucket = h.bucket().await;
        h.put(&bucket, "other/x.csv", "a\n1\n").await;
        let batches = h
            .read(json!({"bucketName": bucket, "bucketPrefix": "nothing-here"}))
            .await
            .unwrap();
        assert!(batches.is_empty());
        let batches = h
            .read(json!({"bucketName": h.bucket().await}))
            .await
            .unwrap();
        assert!(batches.is_empty(), "an empty bucket has no rows");
    })
    .await;
}

async fn write_and_commit(
    h: &Harness,
    bucket: &str,
    output: serde_json::Value,
    partition_keys: &[&str],
    batches: &[RecordBatch],
) -> WriteSummary {
    let mut writer = h
        .writer(
            json!({"bucketName": bucket, "bucketPrefix": "out", "s3OutputFormatConfig": output}),
            partition_keys,
        )
        .await
        .unwrap();
    for batch in batches {
        writer.write(batch.clone()).await.unwrap();
    }
    writer.commit().await.unwrap()
}

#[tokio::test]
async fn every_prefix_config_variant_lays_out_keys() {
    both(|h| async move {
        let cases = [
            (json!(null), format!("out/my-flow/exec-1/my-flow-{STARTED_MS}-00000.csv")),
            (
                json!({"prefixType": "PATH", "prefixFormat": "DAY"}),
                format!("out/my-flow/2024/03/05/exec-1/my-flow-{STARTED_MS}-00000.csv"),
            ),
            (
                json!({"prefixType": "FILENAME", "prefixFormat": "MINUTE"}),
                format!("out/my-flow/exec-1/2024-03-05-14-30-my-flow-{STARTED_MS}-00000.csv"),
            ),
            (
                json!({"prefixType": "PATH_AND_FILENAME", "prefixFormat": "HOUR",
                       "pathPrefixHierarchy": ["SCHEMA_VERSION", "EXECUTION_ID"]}),
                format!(
                    "out/my-flow/schemaVersion_2/2024/03/05/14/exec-1/2024-03-05-14-my-flow-{STARTED_MS}-00000.csv"
                ),
            ),
            (
                json!({"prefixType": "PATH", "prefixFormat": "YEAR", "pathPrefixHierarchy": ["SCHEMA_VERSION"]}),
                format!("out/my-flow/schemaVersion_2/2024/my-flow-{STARTED_MS}-00000.csv"),
            ),
            (
                json!({"prefixType": "PATH", "prefixFormat": "MONTH", "pathPrefixHierarchy": []}),
                format!("out/my-flow/2024/03/my-flow-{STARTED_MS}-00000.csv"),
            ),
        ];
        for (prefix_config, expected) in cases {
            let bucket = h.bucket().await;
            let mut output = json!({"fileType": "CSV"});
            if !prefix_config.is_null() {
                output["prefixConfig"] = prefix_config.clone();
            }
            let summary = write_and_commit(&h, &bucket, output, &[], &[people(3, 0)]).await;
            assert_eq!(summary.locations, vec![expected.clone()], "{prefix_config}");
            assert_eq!(h.keys(&bucket).await, vec![expected], "{prefix_config}");
        }
    })
    .await;
}

#[tokio::test]
async fn partitions_split_rows_into_key_value_folders_including_null() {
    both(|h| async move {
        let bucket = h.bucket().await;
        let summary = write_and_commit(
            &h,
            &bucket,
            json!({"fileType": "CSV"}),
            &["country"],
            &[people(8, 0), people(4, 8)],
        )
        .await;
        let base = "out/my-flow/exec-1";
        let file = format!("my-flow-{STARTED_MS}-00000.csv");
        let mut expected: Vec<String> =
            ["country=DE", "country=FR", "country=a%2Fb", "country=null"]
                .iter()
                .map(|p| format!("{base}/{p}/{file}"))
                .collect();
        expected.sort();
        assert_eq!(summary.locations, expected);
        assert_eq!(h.keys(&bucket).await, expected);
        assert_eq!(summary.records_written, 12);

        let fr = String::from_utf8(
            h.get(&bucket, &format!("{base}/country=FR/{file}"))
                .await
                .to_vec(),
        )
        .unwrap();
        assert!(fr.starts_with("id,name,country\n0,"), "{fr}");
        assert_eq!(csv_rows(&fr), 3, "ids 0, 4, 8: {fr}");
        assert!(fr.lines().skip(1).all(|l| l.ends_with(",FR")), "{fr}");
        let null = String::from_utf8(
            h.get(&bucket, &format!("{base}/country=null/{file}"))
                .await
                .to_vec(),
        )
        .unwrap();
        assert!(
            null.lines().skip(1).all(|l| l.ends_with(',')),
            "null is an empty field: {null}"
        );
        let slash = String::from_utf8(
            h.get(&bucket, &format!("{base}/country=a%2Fb/{file}"))
                .await
                .to_vec(),
        )
        .unwrap();
        assert!(
            slash.lines().skip(1).all(|l| l.ends_with(",a/b")),
            "{slash}"
        );

        let error = h
            .writer(json!({"bucketName": bucket}), &["nope"])
            .await
            .unwrap()
            .write(people(1, 0))
            .await
            .unwrap_err();
        assert_eq!(error.kind, ConnectorErrorKind::InvalidConfig);
        assert!(error.message.contains("\"nope\""), "{error}");
    })
    .await;
}

#[tokio::test]
async fn single_file_keeps_one_file_per_partition_and_target_size_rolls() {
    both(|h| async move {
        // About 10 MiB: more than one 8 MiB upload part for the single file.
        let batches: Vec<RecordBatch> = (0..100).map(|i| people(1000, i * 1000)).collect();

        let bucket = h.bucket().await;
        let single = write_and_commit(
            &h,
            &bucket,
            json!({"fileType": "CSV", "aggregationConfig": {"aggregationType": "SingleFile"}}),
            &[],
            &batches,
        )
        .await;
        assert_eq!(single.locations.len(), 1);
        assert_eq!(single.records_written, 100_000);
        let text = h.get(&bucket, &single.locations[0]).await;
        assert_eq!(text.len() as u64, single.bytes_written);
        assert!(text.len() > 9 * 1024 * 1024, "{} bytes", text.len());
        assert_eq!(csv_rows(std::str::from_utf8(&text).unwrap()), 100_000);

        let bucket = h.bucket().await;
        let rolled = write_and_commit(
            &h,
            &bucket,
            json!({"fileType": "CSV", "aggregationConfig": {"aggregationType": "None", "targetFileSize": 1}}),
            &[],
            &batches,
        )
        .await;
        assert!(rolled.locations.len() >= 2, "rolled into {:?}", rolled.locations);
        let mut rows = 0;
        let mut total = 0;
        for (seq, key) in rolled.locations.iter().enumerate() {
            assert!(key.ends_with(&format!("-{seq:05}.csv")), "{key}");
            assert!(rolled.locations.len() >= 8, "about 10 MiB in 1 MiB files");
            let text = h.get(&bucket, key).await;
            total += text.len() as u64;
            if seq + 1 < rolled.locations.len() {
                assert!(text.len() >= 1024 * 1024, "only the last file is short: {}", text.len());
                assert!(text.len() < 1024 * 1024 + 200 * 1024, "files stop near the target: {}", text.len());
            }
            let text = std::str::from_utf8(&text).unwrap();
            assert!(text.starts_with("id,name,country\n"), "every file has a header");
            rows += csv_rows(text);
        }
        assert_eq!(rows, 100_000);
        assert_eq!(total, rolled.bytes_written);
    })
    .await;
}

#[tokio::test]
async fn abort_leaves_nothing_visible() {
    both(|h| async move {
        let bucket = h.bucket().await;
        h.put(&bucket, "keep.txt", "existing").await;
        let mut writer = h
            .writer(json!({"bucketName": bucket, "bucketPrefix": "out",
                           "s3OutputFormatConfig": {"fileType": "JSON", "aggregationConfig": {"targetFileSize": 2}}}),
                    &["country"])
            .await
            .unwrap();
        // Enough data to upload several parts and roll files before aborting.
        for i in 0..60 {
            writer.write(people(2000, i * 2000)).await.unwrap();
        }
        assert_eq!(h.keys(&bucket).await, vec!["keep.txt"], "nothing visible while writing");
        writer.abort().await;
        assert_eq!(h.keys(&bucket).await, vec!["keep.txt"], "nothing visible after abort");
        let ctx = EntityContext { profile: None, entities_path: Some(bucket.clone()) };
        let listing = h.connector.list_entities(&ctx).await.unwrap();
        let names: Vec<&str> = listing[&bucket].iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec![format!("{bucket}/keep.txt")], "no folders left behind");
    })
    .await;
}

#[tokio::test]
async fn commit_makes_everything_visible_at_once() {
    both(|h| async move {
        let bucket = h.bucket().await;
        let mut writer = h
            .writer(json!({"bucketName": bucket, "bucketPrefix": "out",
                           "s3OutputFormatConfig": {"fileType": "JSON", "aggregationConfig": {"targetFileSize": 2}}}),
                    &["country"])
            .await
            .unwrap();
        for i in 0..60 {
            writer.write(people(2000, i * 2000)).await.unwrap();
        }
        assert!(h.keys(&bucket).await.is_empty());
        let summary = writer.commit().await.unwrap();
        assert_eq!(summary.records_written, 120_000);
        assert_eq!(h.keys(&bucket).await, summary.locations);
        assert!(summary.locations.len() > 4, "{:?}", summary.locations);
        let mut bytes = 0;
        let mut lines = 0;
        for key in &summary.locations {
            assert!(key.ends_with(".jsonl"), "{key}");
            let body = h.get(&bucket, key).await;
            bytes += body.len() as u64;
            for line in std::str::from_utf8(&body).unwrap().lines() {
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                assert!(value["id"].is_i64(), "JSON keeps integer types: {line}");
                lines += 1;
            }
        }
        assert_eq!(bytes, summary.bytes_written);
        assert_eq!(lines, 120_000);
    })
    .await;
}

#[tokio::test]
async fn a_run_without_rows_writes_no_files() {
    both(|h| async move {
        let bucket = h.bucket().await;
        let summary = write_and_commit(
            &h,
            &bucket,
            json!({"fileType": "PARQUET"}),
            &[],
            &[people(0, 0)],
        )
        .await;
        assert_eq!(summary, WriteSummary::default());
        assert!(h.keys(&bucket).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn the_memory_budget_closes_or_flushes_the_largest_files() {
    both(|h| async move {
        let bucket = h.bucket().await;
        let store = h.storage.bucket(&bucket).unwrap();
        let settings = |rolling: Rolling, prefix: &str| SinkSettings {
            bucket: bucket.clone(),
            layout: KeyLayout::new(&LayoutInput {
                bucket_prefix: prefix,
                flow_name: "budget",
                execution_id: "exec",
                schema_version: 1,
                run_started_at: started(),
                prefix_config: None,
                extension: "parquet",
            }),
            format: sluice_formats::OutputFormat::Parquet,
            writer_options: WriterOptions {
                preserve_source_data_typing: true,
                ..WriterOptions::default()
            },
            rolling,
            partition_keys: vec!["country".to_owned()],
            part_size: PART_SIZE,
            memory_budget: 256 * 1024,
            local_bucket_dir: None,
        };

        // No file reaches the target size: only the budget cuts files.
        let mut writer = S3Writer::new(
            Arc::clone(&store),
            settings(Rolling::AtBytes(u64::MAX), "rolled"),
        );
        for i in 0..20 {
            writer.write(people(2000, i * 2000)).await.unwrap();
        }
        let rolled = Box::new(writer).commit().await.unwrap();
        assert!(rolled.locations.len() > 8, "{:?}", rolled.locations);
        assert_eq!(rolled.records_written, 40_000);

        // One file per partition stays one file: row groups are flushed early instead.
        let mut writer = S3Writer::new(Arc::clone(&store), settings(Rolling::SingleFile, "single"));
        for i in 0..20 {
            writer.write(people(2000, i * 2000)).await.unwrap();
        }
        let single = Box::new(writer).commit().await.unwrap();
        assert_eq!(single.locations.len(), 4, "{:?}", single.locations);
        let mut rows = 0;
        for key in &single.locations {
            rows += read_parquet(h.get(&bucket, key).await)
                .iter()
                .map(RecordBatch::num_rows)
                .sum::<usize>();
        }
        assert_eq!(rows, 40_000);
    })
    .await;
}

fn read_parquet(body: Bytes) -> Vec<RecordBatch> {
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(body)
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

#[tokio::test]
async fn parquet_output_as_strings_or_typed() {
    both(|h| async move {
        let bucket = h.bucket().await;
        let text = write_and_commit(
            &h,
            &bucket,
            json!({"fileType": "PARQUET"}),
            &[],
            &[people(5, 0)],
        )
        .await;
        assert!(text.locations[0].ends_with(".parquet"));
        let batches = read_parquet(h.get(&bucket, &text.locations[0]).await);
        assert_eq!(batches[0].schema().field(0).data_type(), &DataType::Utf8);
        assert_eq!(strings(&batches[0], "id")[4], s("4"));

        let bucket = h.bucket().await;
        let typed = write_and_commit(
            &h,
            &bucket,
            json!({"fileType": "PARQUET", "preserveSourceDataTyping": true}),
            &[],
            &[people(5, 0), people(5, 5)],
        )
        .await;
        let batches = read_parquet(h.get(&bucket, &typed.locations[0]).await);
        let ids: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        assert_eq!(ids, (0..10).collect::<Vec<_>>());
        assert_eq!(strings(&batches[0], "country")[2], None);
    })
    .await;
}

#[tokio::test]
async fn a_schema_change_mid_run_starts_a_new_file() {
    both(|h| async move {
        let bucket = h.bucket().await;
        let narrow = people(3, 0).project(&[0, 1]).unwrap();
        let summary = write_and_commit(
            &h,
            &bucket,
            json!({"fileType": "CSV", "aggregationConfig": {"aggregationType": "SingleFile"}}),
            &[],
            &[narrow, people(3, 3)],
        )
        .await;
        assert_eq!(summary.locations.len(), 2);
        let second = h.get(&bucket, &summary.locations[1]).await;
        assert!(second.starts_with(b"id,name,country\n"));
    })
    .await;
}

#[tokio::test]
async fn list_entities_shows_folders_and_files() {
    both(|h| async move {
        let bucket = h.bucket().await;
        h.put(&bucket, "in/a.csv", "a\n1\n").await;
        h.put(&bucket, "in/2024/b.csv", "a\n1\n").await;
        h.put(&bucket, "top.csv", "a\n1\n").await;

        let ctx = EntityContext {
            profile: None,
            entities_path: Some(bucket.clone()),
        };
        let listing = h.connector.list_entities(&ctx).await.unwrap();
        let entities = &listing[&bucket];
        let names: Vec<(&str, bool)> = entities
            .iter()
            .map(|e| (e.name.as_str(), e.has_nested_entities.unwrap_or(false)))
            .collect();
        let folder = format!("{bucket}/in");
        let file = format!("{bucket}/top.csv");
        assert_eq!(names, vec![(folder.as_str(), true), (file.as_str(), false)]);

        let ctx = EntityContext {
            profile: None,
            entities_path: Some(format!("{bucket}/in")),
        };
        let listing = h.connector.list_entities(&ctx).await.unwrap();
        let names: Vec<&str> = listing[&format!("{bucket}/in")]
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(
            names,
            vec![format!("{bucket}/in/2024"), format!("{bucket}/in/a.csv")]
        );

        let top = h.connector.list_entities(&EntityContext::default()).await;
        if h.storage.is_local() {
            let buckets = top.unwrap();
            assert!(buckets[BUCKETS_GROUP].iter().any(|e| e.name == bucket));
        } else {
            let error = top.unwrap_err();
            assert_eq!(error.kind, ConnectorErrorKind::InvalidConfig);
            assert!(error.message.contains("entitiesPath"), "{error}");
        }
    })
    .await;
}

#[tokio::test]
async fn describe_entity_infers_fields_from_the_first_file() {
    both(|h| async move {
        let bucket = h.bucket().await;
        h.put(&bucket, "in/1.csv", "\u{feff}id,name,\"a,b\"\n1,x,y\n")
            .await;
        h.put(&bucket, "in/2.csv", "other\n1\n").await;
        h.put(
            &bucket,
            "ev/x.jsonl",
            "{\"n\": 1, \"f\": 1.5, \"b\": true, \"s\": \"x\"}\n",
        )
        .await;

        let fields = h
            .connector
            .describe_entity(&EntityContext::default(), &format!("{bucket}/in"))
            .await
            .unwrap();
        let described: Vec<(&str, &str)> = fields
            .iter()
            .map(|f| {
                let v1 = &f.supported_field_type_details.as_ref().unwrap().v1;
                (f.identifier.as_str(), v1.field_type.as_str())
            })
            .collect();
        assert_eq!(
            described,
            vec![("id", "string"), ("name", "string"), ("a,b", "string")]
        );
        let operators = &fields[0]
            .supported_field_type_details
            .as_ref()
            .unwrap()
            .v1
            .filter_operators;
        assert!(operators.contains(&model::Operator::Between));
        assert!(operators.contains(&model::Operator::Projection));
        assert!(
            !operators.contains(&model::Operator::Contains),
            "S3 has no CONTAINS"
        );

        let fields = h
            .connector
            .describe_entity(&EntityContext::default(), &format!("{bucket}/ev"))
            .await
            .unwrap();
        let types: Vec<&str> = fields
            .iter()
            .map(|f| {
                f.supported_field_type_details
                    .as_ref()
                    .unwrap()
                    .v1
                    .field_type
                    .as_str()
            })
            .collect();
        assert_eq!(types, vec!["integer", "double", "boolean", "string"]);

        let error = h
            .connector
            .describe_entity(&EntityContext::default(), &format!("{bucket}/nothing"))
            .await
            .unwrap_err();
        assert_eq!(error.kind, ConnectorErrorKind::NotFound);
    })
    .await;
}

#[test]
fn configuration_is_honest() {
    let h = Harness::local();
    let config = h.connector.configuration();
    assert_eq!(config.connector_type, Some(model::ConnectorType::S3));
    assert_eq!(config.connector_name.as_deref(), Some("Amazon S3"));
    assert_eq!(config.can_use_as_source, Some(true));
    assert_eq!(config.can_use_as_destination, Some(true));
    assert_eq!(
        config.supported_destination_connectors,
        Some(vec![model::ConnectorType::S3])
    );
    let triggers = config.supported_trigger_types.unwrap();
    assert!(triggers.contains(&model::TriggerType::OnDemand));
    assert!(triggers.contains(&model::TriggerType::Scheduled));
    let operators = config.supported_operators.unwrap();
    assert_eq!(operators.len(), model::S3ConnectorOperator::ALL.len());
    assert!(!operators.contains(&model::Operators::Contains));
    assert!(config.connector_metadata.unwrap().s3.is_some());
    assert_eq!(h.connector.connector_type(), model::ConnectorType::S3);
    // The JSON form uses AppFlow's member names.
    let wire = serde_json::to_value(h.connector.configuration()).unwrap();
    assert_eq!(wire["connectorMetadata"], json!({"S3": {}}));
}

/// Peak resident memory of this process, from `/proc/self/status` (Linux only).
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// Throughput check for the headline path: a 1M-row, ~350 MB CSV read from a local bucket and
/// written as Parquet, reader and writer on separate threads as the pipeline runs them.
/// Run with `cargo test --release -p sluice-connector-s3 -- --ignored --nocapture throughput`.
#[test]
#[ignore = "benchmark; run explicitly in release mode"]
fn throughput_csv_to_parquet() {
    use std::io::Write;

    let h = Harness::local();
    let bucket = "bench";
    h.storage.create_bucket(bucket).unwrap();
    let dir = h._root.as_ref().unwrap().path().join(bucket).join("in");
    std::fs::create_dir_all(&dir).unwrap();
    let rows: usize = 1_000_000;
    {
        let file = std::fs::File::create(dir.join("data.csv")).unwrap();
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        writeln!(
            out,
            "id,first_name,last_name,email,city,country,amount,created_at,status,notes"
        )
        .unwrap();
        for i in 0..rows {
            writeln!(
                out,
                "{i},First{n},Last{m},user{i}@example.com,City {c},Country{k},{a}.{b:02},\
                 2024-03-{d:02}T12:{mm:02}:00Z,{s},\"Note {i}: lorem ipsum dolor sit amet, \
                 consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et \
                 dolore magna aliqua \"\"quoted\"\" text {pad}\"",
                n = i % 5000,
                m = i % 7919,
                c = i % 1000,
                k = i % 50,
                a = i % 100_000,
                b = i % 100,
                d = i % 28 + 1,
                mm = i % 60,
                s = ["active", "closed", "pending"][i % 3],
                pad = "x".repeat(60 + i % 40),
            )
            .unwrap();
        }
        out.flush().unwrap();
    }
    let size = std::fs::metadata(dir.join("data.csv")).unwrap().len();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started_at = std::time::Instant::now();
    let summary = runtime.block_on(async {
        let stats = Arc::new(ReadStats::default());
        let request = ReadRequest {
            flow_name: "bench".to_owned(),
            execution_id: "exec".to_owned(),
            source: serde_json::from_value(json!({
                "connectorType": "S3",
                "sourceConnectorProperties": {"S3": {"bucketName": bucket, "bucketPrefix": "in"}}
            }))
            .unwrap(),
            profile: None,
            projection: None,
            filters: Vec::new(),
            window: None,
            batch_rows: 32 * 1024,
            stats,
        };
        let mut stream = h.connector.read(request).await.unwrap();
        let mut writer = h
            .writer(
                json!({"bucketName": bucket, "bucketPrefix": "out",
                           "s3OutputFormatConfig": {"fileType": "PARQUET"}}),
                &[],
            )
            .await
            .unwrap();
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<RecordBatch>(2);
        let reader = tokio::spawn(async move {
            while let Some(batch) = stream.try_next().await.unwrap() {
                if sender.send(batch).await.is_err() {
                    break;
                }
            }
        });
        while let Some(batch) = receiver.recv().await {
            writer.write(batch).await.unwrap();
        }
        reader.await.unwrap();
        writer.commit().await.unwrap()
    });
    let elapsed = started_at.elapsed().as_secs_f64();
    assert_eq!(summary.records_written, rows as u64);
    println!(
        "{rows} rows, {} MB CSV -> {} MB Parquet in {elapsed:.2}s: {:.0} rows/s, {:.0} MB/s; peak RSS {:?} MiB",
        size / 1_000_000,
        summary.bytes_written / 1_000_000,
        rows as f64 / elapsed,
        size as f64 / 1e6 / elapsed,
        peak_rss_mib()
    );
}

fn rejected(id: i64) -> sluice_connector_api::RejectedRecord {
    let mut record = serde_json::Map::new();
    record.insert("Id".to_owned(), json!(id));
    record.insert("Name".to_owned(), json!(format!("Zoë \"{id}\"\n🚀")));
    sluice_connector_api::RejectedRecord {
        record,
        code: (id % 2 == 0).then(|| "DUPLICATE_VALUE".to_owned()),
        message: format!("duplicate value found: ExtId__c {id}"),
    }
}

#[tokio::test]
async fn error_location_writes_json_lines_parts_under_flow_and_execution() {
    both(|h| async move {
        let bucket = h.bucket().await;
        let location = ErrorLocation {
            bucket: bucket.clone(),
            prefix: "/errors//sf/".to_owned(),
            flow_name: "accounts".to_owned(),
            execution_id: "exec/1".to_owned(),
        };
        let writer = errors::ErrorRecordWriter::new(h.storage.bucket(&bucket).unwrap(), &location)
            .with_part_bytes(400);
        // Nothing rejected yet: finishing writes nothing.
        assert!(h.keys(&bucket).await.is_empty());
        for chunk in (0..10).collect::<Vec<i64>>().chunks(3) {
            writer
                .put(chunk.iter().map(|id| rejected(*id)).collect())
                .await
                .unwrap();
        }
        let locations = writer.finish().await.unwrap();
        let keys = h.keys(&bucket).await;
        assert!(keys.len() > 1, "small parts: {keys:?}");
        assert_eq!(
            locations,
            keys.iter()
                .map(|k| format!("s3://{bucket}/{k}"))
                .collect::<Vec<_>>()
        );
        let mut lines = Vec::new();
        for key in &keys {
            assert!(
                key.starts_with("errors/sf/accounts/exec%2F1/error-records-")
                    && key.ends_with(".jsonl"),
                "{key}"
            );
            let body = h.get(&bucket, key).await;
            for line in std::str::from_utf8(&body).unwrap().lines() {
                lines.push(serde_json::from_str::<serde_json::Value>(line).unwrap());
            }
        }
        assert_eq!(lines.len(), 10, "every record stored once");
        for (id, line) in lines.iter().enumerate() {
            let expected = rejected(id as i64);
            assert_eq!(line["record"], serde_json::Value::Object(expected.record));
            assert_eq!(line["errorMessage"], json!(expected.message));
            assert_eq!(line["errorCode"], json!(expected.code));
        }
        // A second finish writes nothing new.
        assert_eq!(writer.finish().await.unwrap(), locations);
    })
    .await;
}

#[tokio::test]
async fn error_location_in_a_missing_bucket_fails_with_the_key() {
    let h = Harness::local();
    let location = ErrorLocation {
        bucket: "no-such-bucket".to_owned(),
        prefix: String::new(),
        flow_name: "f".to_owned(),
        execution_id: "e".to_owned(),
    };
    let result = h.connector.error_location(&location);
    let error = match result {
        Err(error) => error,
        Ok(sink) => {
            sink.put(vec![rejected(1)]).await.unwrap();
            sink.finish().await.unwrap_err()
        }
    };
    assert!(error.message.contains("no-such-bucket"), "{error}");
}
