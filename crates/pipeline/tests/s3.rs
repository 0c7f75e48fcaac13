//! End to end through the real S3 connector in local-folder mode: CSV in, JSON Lines / CSV /
//! Parquet out, with tasks, failures, cancellation and counters checked against the files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sluice_connectors::Registry;
use sluice_pipeline::{EngineOptions, RunOutcome, RunProgress, RunSpec, RunStatus, execute_with};
use sluice_storage::{Storage, StorageConfig};
use tokio_util::sync::CancellationToken;

/// A data directory with local-folder buckets.
struct Buckets {
    _dir: tempfile::TempDir,
    root: PathBuf,
    registry: Registry,
}

impl Buckets {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("buckets");
        std::fs::create_dir_all(root.join("src")).expect("source bucket");
        let registry = Registry::new(Arc::new(Storage::new(StorageConfig::local(&root))));
        Self {
            _dir: dir,
            root,
            registry,
        }
    }

    fn put(&self, key: &str, content: &str) -> u64 {
        let path = self.root.join("src").join(key);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("folders");
        std::fs::write(&path, content).expect("write object");
        content.len() as u64
    }

    /// Every file in bucket `dst`, by key.
    fn outputs(&self) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        collect(&self.root.join("dst"), &self.root.join("dst"), &mut files);
        files
    }

    async fn run(&self, spec: RunSpec) -> RunOutcome {
        self.run_with(spec, EngineOptions::default(), CancellationToken::new())
            .await
    }

    async fn run_with(
        &self,
        spec: RunSpec,
        options: EngineOptions,
        cancel: CancellationToken,
    ) -> RunOutcome {
        execute_with(
            &self.registry,
            spec,
            Arc::new(RunProgress::default()),
            cancel,
            options,
        )
        .await
    }
}

fn collect(base: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            collect(base, &path, files);
        } else {
            let key = path
                .strip_prefix(base)
                .expect("inside")
                .to_string_lossy()
                .into_owned();
            files.insert(key, std::fs::read(&path).expect("read output"));
        }
    }
}

fn spec(output: serde_json::Value, tasks: serde_json::Value) -> RunSpec {
    let source = serde_json::from_value(serde_json::json!({
        "connectorType": "S3",
        "sourceConnectorProperties": {"S3": {"bucketName": "src", "bucketPrefix": "in",
            "s3InputFormatConfig": {"s3InputFileType": "CSV"}}}
    }))
    .expect("valid source");
    let destination = serde_json::from_value(serde_json::json!({
        "connectorType": "S3",
        "destinationConnectorProperties": {"S3": {"bucketName": "dst", "bucketPrefix": "out",
            "s3OutputFormatConfig": output}}
    }))
    .expect("valid destination");
    RunSpec {
        flow_name: "orders".to_owned(),
        execution_id: "11111111-2222-3333-4444-555555555555".to_owned(),
        source,
        destination,
        tasks: serde_json::from_value(tasks).expect("valid tasks"),
        source_profile: None,
        destination_profile: None,
        schema_version: 1,
        window: None,
        started_at: chrono::Utc::now(),
    }
}

fn map_all() -> serde_json::Value {
    serde_json::json!([{"sourceFields": [], "connectorOperator": {"S3": "NO_OP"},
                        "taskType": "Map_all", "taskProperties": {}}])
}

fn assert_successful(outcome: &RunOutcome) {
    assert_eq!(
        outcome.status,
        RunStatus::Successful,
        "{:?}",
        outcome.message
    );
    assert_eq!(outcome.message, None);
}

/// Output bytes equal `bytesWritten` and every file is listed in the outcome.
fn assert_outputs_match(outcome: &RunOutcome, outputs: &BTreeMap<String, Vec<u8>>) {
    let total: usize = outputs.values().map(Vec::len).sum();
    assert_eq!(outcome.progress.bytes_written, total as u64);
    let mut listed = outcome.locations.clone();
    listed.sort();
    let keys: Vec<String> = outputs.keys().cloned().collect();
    assert_eq!(listed.len(), keys.len(), "{listed:?} vs {keys:?}");
    for (location, key) in listed.iter().zip(&keys) {
        assert!(
            location.ends_with(key.as_str()),
            "{location} does not name {key}"
        );
    }
}

const PEOPLE: &str = "id,first,last,email,amount,note\n\
                      1,Zoë,Ångström,zoe@example.com,12.5,\"hello, world\"\n\
                      2,Bob,Smith,bob@example.com,3,\"multi\nline\"\n\
                      3,李,王,li@example.cn,100,🚀 rocket\n\
                      4,,Null,,7.25,\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_to_json_lines_with_filter_mask_merge_truncate_and_map() {
    let buckets = Buckets::new();
    let input_bytes = buckets.put("in/people.csv", PEOPLE);
    let tasks = serde_json::json!([
        {"sourceFields": ["id", "first", "last", "email", "amount", "note"],
         "connectorOperator": {"S3": "PROJECTION"}, "taskType": "Filter", "taskProperties": {}},
        {"sourceFields": ["amount"], "connectorOperator": {"S3": "GREATER_THAN"},
         "taskType": "Filter", "taskProperties": {"DATA_TYPE": "double", "VALUE": "5"}},
        {"sourceFields": ["email"], "connectorOperator": {"S3": "MASK_FIRST_N"},
         "taskType": "Mask", "taskProperties": {"MASK_LENGTH": "3", "MASK_VALUE": "#"}},
        {"sourceFields": ["note"], "connectorOperator": {"S3": "NO_OP"},
         "taskType": "Truncate", "taskProperties": {"TRUNCATE_LENGTH": "5"}},
        {"sourceFields": ["first", "last"], "connectorOperator": {"S3": "NO_OP"},
         "taskType": "Merge", "destinationField": "first,last",
         "taskProperties": {"CONCAT_FORMAT": " "}},
        {"sourceFields": ["id"], "connectorOperator": {"S3": "NO_OP"}, "taskType": "Map",
         "destinationField": "id",
         "taskProperties": {"SOURCE_DATA_TYPE": "string", "DESTINATION_DATA_TYPE": "integer"}},
        {"sourceFields": ["first,last"], "connectorOperator": {"S3": "NO_OP"}, "taskType": "Map",
         "destinationField": "full_name", "taskProperties": {}},
        {"sourceFields": ["amount"], "connectorOperator": {"S3": "NO_OP"}, "taskType": "Map",
         "destinationField": "amount", "taskProperties": {"DESTINATION_DATA_TYPE": "double"}},
        {"sourceFields": ["email"], "connectorOperator": {"S3": "NO_OP"}, "taskType": "Map",
         "destinationField": "email", "taskProperties": {}},
        {"sourceFields": ["note"], "connectorOperator": {"S3": "NO_OP"}, "taskType": "Map",
         "destinationField": "note", "taskProperties": {}}
    ]);
    let outcome = buckets
        .run(spec(serde_json::json!({"fileType": "JSON"}), tasks))
        .await;
    assert_successful(&outcome);
    assert_eq!(outcome.progress.records_processed, 4);
    assert_eq!(
        outcome.progress.records_filtered, 1,
        "amount 3 is not greater than 5"
    );
    assert_eq!(outcome.progress.bytes_processed, input_bytes);

    let outputs = buckets.outputs();
    assert_outputs_match(&outcome, &outputs);
    assert_eq!(outputs.len(), 1, "{:?}", outputs.keys());
    let (key, content) = outputs.iter().next().expect("one file");
    assert!(
        key.starts_with("out/orders/11111111-2222-3333-4444-555555555555/"),
        "{key}"
    );
    assert!(key.ends_with(".jsonl"), "{key}");

    let rows: Vec<serde_json::Value> = std::str::from_utf8(content)
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    let field = |row: usize, name: &str| rows[row].get(name).cloned().unwrap_or_default();
    assert_eq!(rows.len(), 3);
    assert_eq!(field(0, "id"), serde_json::json!(1));
    assert_eq!(field(0, "full_name"), serde_json::json!("Zoë Ångström"));
    assert_eq!(field(0, "amount"), serde_json::json!(12.5));
    assert_eq!(field(0, "email"), serde_json::json!("###@example.com"));
    assert_eq!(field(0, "note"), serde_json::json!("hello"));
    assert_eq!(field(1, "id"), serde_json::json!(3));
    assert_eq!(field(1, "full_name"), serde_json::json!("李 王"));
    assert_eq!(field(1, "email"), serde_json::json!("###example.cn"));
    assert_eq!(
        field(1, "note"),
        serde_json::json!("🚀 roc"),
        "truncation counts characters"
    );
    assert_eq!(
        field(2, "full_name"),
        serde_json::json!(" Null"),
        "a null merges as empty"
    );
    assert_eq!(
        field(2, "email"),
        serde_json::Value::Null,
        "a null stays null when masked"
    );
    assert_eq!(field(2, "note"), serde_json::Value::Null);
    let names: Vec<&String> = rows[0].as_object().expect("object").keys().collect();
    assert_eq!(
        names.len(),
        5,
        "only mapped fields reach the destination: {names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_to_partitioned_csv_drops_invalid_records() {
    let buckets = Buckets::new();
    buckets.put(
        "in/2024/orders.csv",
        "id,country,email\n1,FR,a@x.fr\n2,DE,\n3,FR,c@x.fr\n4,,d@x.io\n5,DE,e@x.de\n",
    );
    let tasks = serde_json::json!([
        {"sourceFields": [], "connectorOperator": {"S3": "NO_OP"}, "taskType": "Map_all",
         "taskProperties": {}},
        {"sourceFields": ["email"], "connectorOperator": {"S3": "VALIDATE_NON_NULL"},
         "taskType": "Validate", "taskProperties": {"VALIDATION_ACTION": "DropRecord"}},
        {"sourceFields": ["country"], "connectorOperator": {"S3": "NO_OP"},
         "taskType": "Partition", "taskProperties": {}}
    ]);
    let output = serde_json::json!({"fileType": "CSV",
                                    "aggregationConfig": {"aggregationType": "SingleFile"}});
    let outcome = buckets.run(spec(output, tasks)).await;
    assert_successful(&outcome);
    assert_eq!(outcome.progress.records_processed, 5);
    assert_eq!(outcome.progress.records_filtered, 1);

    let outputs = buckets.outputs();
    assert_outputs_match(&outcome, &outputs);
    let by_partition: BTreeMap<String, String> = outputs
        .iter()
        .map(|(key, content)| {
            let partition = key
                .split('/')
                .find(|part| part.starts_with("country="))
                .unwrap_or("");
            (
                partition.to_owned(),
                String::from_utf8(content.clone()).expect("utf-8"),
            )
        })
        .collect();
    assert_eq!(
        by_partition.keys().collect::<Vec<_>>(),
        vec!["country=DE", "country=FR", "country=null"]
    );
    assert_eq!(
        by_partition["country=FR"],
        "id,country,email\n1,FR,a@x.fr\n3,FR,c@x.fr\n"
    );
    assert_eq!(
        by_partition["country=DE"],
        "id,country,email\n5,DE,e@x.de\n"
    );
    assert_eq!(
        by_partition["country=null"],
        "id,country,email\n4,,d@x.io\n"
    );
}

fn read_parquet(content: &[u8]) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(Bytes::copy_from_slice(content))
        .expect("a Parquet file")
        .build()
        .expect("reader")
        .collect::<Result<Vec<_>, _>>()
        .expect("batches")
}

fn strings(batches: &[RecordBatch], column: &str) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|batch| {
            let array = batch
                .column_by_name(column)
                .expect("column")
                .as_string::<i32>()
                .clone();
            (0..array.len())
                .map(|row| array.is_valid(row).then(|| array.value(row).to_owned()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_to_parquet_writes_strings_across_files_and_batches() {
    let buckets = Buckets::new();
    let mut first = String::from("id,name,amount\n");
    let mut second = String::from("id,name,amount\n");
    for id in 0..2_500 {
        let target = if id < 1_200 { &mut first } else { &mut second };
        target.push_str(&format!("{id},\"name, {id} ✓\",{}.5\n", id * 2));
    }
    second.push_str("2500,\"two\nlines\",\n");
    let input = buckets.put("in/part-1.csv", &first) + buckets.put("in/part-2.csv", &second);

    let output = serde_json::json!({"fileType": "PARQUET", "preserveSourceDataTyping": false,
                                    "aggregationConfig": {"aggregationType": "SingleFile"}});
    // Small batches so the run crosses many batch and file boundaries.
    let options = EngineOptions {
        batch_rows: 100,
        ..EngineOptions::default()
    };
    let outcome = buckets
        .run_with(spec(output, map_all()), options, CancellationToken::new())
        .await;
    assert_successful(&outcome);
    assert_eq!(outcome.progress.records_processed, 2_501);
    assert_eq!(outcome.progress.bytes_processed, input);

    let outputs = buckets.outputs();
    assert_outputs_match(&outcome, &outputs);
    assert_eq!(outputs.len(), 1, "SingleFile: {:?}", outputs.keys());
    let (key, content) = outputs.iter().next().expect("one file");
    assert!(key.ends_with(".parquet"), "{key}");
    let batches = read_parquet(content);
    let schema = batches[0].schema();
    assert!(
        schema
            .fields()
            .iter()
            .all(|field| field.data_type() == &DataType::Utf8)
    );
    let ids = strings(&batches, "id");
    assert_eq!(ids.len(), 2_501);
    let expected: Vec<Option<String>> = (0..=2_500).map(|id| Some(id.to_string())).collect();
    assert_eq!(ids, expected, "every row once, in file order");
    let names = strings(&batches, "name");
    assert_eq!(names[7].as_deref(), Some("name, 7 ✓"));
    assert_eq!(names[2_500].as_deref(), Some("two\nlines"));
    let amounts = strings(&batches, "amount");
    assert_eq!(amounts[1_999].as_deref(), Some("3998.5"));
    assert_eq!(amounts[2_500], None, "an empty CSV field is null");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_keeps_mapped_types_when_asked() {
    let buckets = Buckets::new();
    buckets.put(
        "in/data.csv",
        "id,price,label\n1,2.5,a\n-9223372036854775808,,b\n",
    );
    let tasks = serde_json::json!([
        {"sourceFields": ["id", "price", "label"], "connectorOperator": {"S3": "PROJECTION"},
         "taskType": "Filter", "taskProperties": {}},
        {"sourceFields": ["id"], "connectorOperator": {"S3": "NO_OP"}, "taskType": "Map",
         "destinationField": "id", "taskProperties": {"DESTINATION_DATA_TYPE": "long"}},
        {"sourceFields": ["price"], "connectorOperator": {"S3": "NO_OP"}, "taskType": "Map",
         "destinationField": "price", "taskProperties": {"DESTINATION_DATA_TYPE": "double"}}
    ]);
    let output = serde_json::json!({"fileType": "PARQUET", "preserveSourceDataTyping": true});
    let outcome = buckets.run(spec(output, tasks)).await;
    assert_successful(&outcome);

    let outputs = buckets.outputs();
    let batches = read_parquet(outputs.values().next().expect("one file"));
    let batch = &batches[0];
    assert_eq!(batch.num_columns(), 2, "label is read but not mapped");
    let ids = batch
        .column_by_name("id")
        .expect("id")
        .as_primitive::<Int64Type>();
    assert_eq!(ids.values().to_vec(), vec![1, i64::MIN]);
    let prices = batch
        .column_by_name("price")
        .expect("price")
        .as_primitive::<Float64Type>();
    assert_eq!(prices.value(0), 2.5);
    assert!(prices.is_null(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_row_in_a_later_file_fails_the_run_and_leaves_no_output() {
    let buckets = Buckets::new();
    let mut good = String::from("a,b,c\n");
    for row in 0..3_000 {
        good.push_str(&format!("{row},x,y\n"));
    }
    buckets.put("in/1-good.csv", &good);
    buckets.put("in/2-bad.csv", "a,b,c\n1,2,3\n4,5\n6,7,8\n");
    let output = serde_json::json!({"fileType": "CSV"});
    let options = EngineOptions {
        batch_rows: 256,
        ..EngineOptions::default()
    };
    let outcome = buckets
        .run_with(spec(output, map_all()), options, CancellationToken::new())
        .await;

    assert_eq!(outcome.status, RunStatus::Error);
    assert_eq!(
        outcome.message.as_deref(),
        Some("S3 source: s3://src/in/2-bad.csv line 3: expected 3 fields, found 2")
    );
    assert!(
        outcome.progress.records_processed >= 3_000,
        "the first file was read"
    );
    assert!(outcome.locations.is_empty());
    assert_eq!(
        buckets.outputs(),
        BTreeMap::new(),
        "nothing visible, no staging left over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversion_error_fails_the_run_and_leaves_no_output() {
    let buckets = Buckets::new();
    let mut rows = String::from("n\n");
    for n in 0..1_000 {
        rows.push_str(&format!("{n}\n"));
    }
    rows.push_str("12abc\n");
    buckets.put("in/numbers.csv", &rows);
    let tasks = serde_json::json!([
        {"sourceFields": ["n"], "connectorOperator": {"S3": "PROJECTION"}, "taskType": "Filter",
         "taskProperties": {}},
        {"sourceFields": ["n"], "connectorOperator": {"S3": "NO_OP"}, "taskType": "Map",
         "destinationField": "n", "taskProperties": {"DESTINATION_DATA_TYPE": "integer"}}
    ]);
    let options = EngineOptions {
        batch_rows: 100,
        ..EngineOptions::default()
    };
    let outcome = buckets
        .run_with(
            spec(serde_json::json!({"fileType": "JSON"}), tasks),
            options,
            CancellationToken::new(),
        )
        .await;
    assert_eq!(outcome.status, RunStatus::Error);
    let message = outcome.message.unwrap_or_default();
    assert!(message.starts_with("task failed: "), "{message}");
    assert!(
        message.contains("12abc"),
        "the message shows the value: {message}"
    );
    assert_eq!(buckets.outputs(), BTreeMap::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_mid_run_leaves_no_output() {
    let buckets = Buckets::new();
    let mut rows = String::from("id,text\n");
    for id in 0..300_000 {
        rows.push_str(&format!("{id},some text for row {id}\n"));
    }
    buckets.put("in/big.csv", &rows);
    let progress = Arc::new(RunProgress::default());
    let cancel = CancellationToken::new();
    let options = EngineOptions {
        batch_rows: 500,
        ..EngineOptions::default()
    };
    let run = execute_with(
        &buckets.registry,
        spec(serde_json::json!({"fileType": "PARQUET"}), map_all()),
        Arc::clone(&progress),
        cancel.clone(),
        options,
    );
    let canceller = async {
        while progress.snapshot().records_processed == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        cancel.cancel();
    };
    let (outcome, ()) = tokio::join!(run, canceller);

    assert_eq!(outcome.status, RunStatus::Canceled, "{:?}", outcome.message);
    assert!(
        outcome.progress.records_processed < 300_000,
        "stopped early"
    );
    assert!(outcome.locations.is_empty());
    assert_eq!(buckets.outputs(), BTreeMap::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_only_input_succeeds_without_output() {
    let buckets = Buckets::new();
    buckets.put("in/empty.csv", "id,name\n");
    let outcome = buckets
        .run(spec(serde_json::json!({"fileType": "CSV"}), map_all()))
        .await;
    assert_successful(&outcome);
    assert_eq!(outcome.progress.records_processed, 0);
    assert_eq!(outcome.progress.bytes_written, 0);
    assert_eq!(buckets.outputs(), BTreeMap::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_source_bucket_is_a_clear_error() {
    let buckets = Buckets::new();
    let mut flow = spec(serde_json::json!({"fileType": "CSV"}), map_all());
    flow.source = serde_json::from_value(serde_json::json!({
        "connectorType": "S3",
        "sourceConnectorProperties": {"S3": {"bucketName": "no-such-bucket"}}
    }))
    .expect("valid source");
    let outcome = buckets.run(flow).await;
    assert_eq!(outcome.status, RunStatus::Error);
    let message = outcome.message.unwrap_or_default();
    assert!(message.starts_with("S3 source: "), "{message}");
    assert!(message.contains("no-such-bucket"), "{message}");
    assert_eq!(buckets.outputs(), BTreeMap::new());
}
