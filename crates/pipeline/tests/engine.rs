//! Engine semantics against a scripted in-memory connector: counters, abort on every kind of
//! failure, cancellation, panics, back-pressure.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use async_trait::async_trait;
use futures::StreamExt;
use sluice_api_model as model;
use sluice_connector_api::{
    BatchStream, Connector, ConnectorError, ConnectorRegistry, DestinationWriter, EntityContext,
    EntityListing, ReadRequest, WriteRequest, WriteSummary,
};
use sluice_pipeline::{EngineOptions, RunProgress, RunSpec, RunStatus, execute, execute_with};
use tokio_util::sync::CancellationToken;

/// What the scripted connector does.
#[derive(Debug, Clone)]
struct Script {
    batches: usize,
    rows_per_batch: usize,
    /// Bytes the source reports per batch.
    bytes_per_batch: u64,
    /// Yield this error instead of batch `n`.
    source_fails_at: Option<usize>,
    /// Panic instead of yielding batch `n`.
    source_panics_at: Option<usize>,
    /// After `n` batches, never yield again.
    source_hangs_after: Option<usize>,
    /// Fail the write of the `n`th batch the destination receives.
    write_fails_at: Option<usize>,
    /// Sleep in every write (a slow destination).
    write_delay: Option<Duration>,
    commit_fails: bool,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            batches: 3,
            rows_per_batch: 4,
            bytes_per_batch: 100,
            source_fails_at: None,
            source_panics_at: None,
            source_hangs_after: None,
            write_fails_at: None,
            write_delay: None,
            commit_fails: false,
        }
    }
}

/// What happened during the run, as seen by the connector.
#[derive(Debug, Default)]
struct Journal {
    produced: AtomicUsize,
    stream_dropped: AtomicBool,
    written: Mutex<Vec<RecordBatch>>,
    writes: AtomicUsize,
    max_lead: AtomicUsize,
    committed: AtomicBool,
    aborted: AtomicBool,
    read_request: Mutex<Option<ReadRequest>>,
    write_request: Mutex<Option<WriteRequest>>,
}

#[derive(Debug)]
struct Scripted {
    script: Script,
    journal: Arc<Journal>,
}

fn batch(index: usize, rows: usize) -> RecordBatch {
    let ids: Vec<String> = (0..rows).map(|row| format!("{index}-{row}")).collect();
    let names: Vec<Option<&str>> = (0..rows)
        .map(|row| {
            if row % 3 == 0 {
                None
            } else {
                Some("Zoë 🚀")
            }
        })
        .collect();
    RecordBatch::try_from_iter([
        ("id", Arc::new(StringArray::from(ids)) as ArrayRef),
        ("name", Arc::new(StringArray::from(names)) as ArrayRef),
    ])
    .expect("valid batch")
}

#[async_trait]
impl Connector for Scripted {
    fn connector_type(&self) -> model::ConnectorType {
        model::ConnectorType::S3
    }

    fn configuration(&self) -> model::ConnectorConfiguration {
        model::ConnectorConfiguration::default()
    }

    async fn list_entities(&self, _ctx: &EntityContext) -> Result<EntityListing, ConnectorError> {
        Ok(EntityListing::new())
    }

    async fn describe_entity(
        &self,
        _ctx: &EntityContext,
        _entity: &str,
    ) -> Result<Vec<model::ConnectorEntityField>, ConnectorError> {
        Ok(Vec::new())
    }

    async fn read(&self, request: ReadRequest) -> Result<BatchStream, ConnectorError> {
        let script = self.script.clone();
        let journal = Arc::clone(&self.journal);
        let stats = Arc::clone(&request.stats);
        *self.journal.read_request.lock().expect("lock") = Some(request);
        let limit = script
            .source_hangs_after
            .unwrap_or(script.batches)
            .min(script.batches);
        let batches = futures::stream::iter(0..limit).then(move |index| {
            let script = script.clone();
            let journal = Arc::clone(&journal);
            let stats = Arc::clone(&stats);
            async move {
                tokio::task::yield_now().await;
                if script.source_panics_at == Some(index) {
                    panic!("scripted source panic at batch {index}");
                }
                if script.source_fails_at == Some(index) {
                    return Err(ConnectorError::bad_data(
                        "in/data.csv line 17: expected 5 fields, found 4",
                    ));
                }
                stats.add_bytes(script.bytes_per_batch);
                journal.produced.fetch_add(1, Ordering::SeqCst);
                Ok(batch(index, script.rows_per_batch))
            }
        });
        if self.script.source_hangs_after.is_some() {
            // The endless tail owns the flag, so it is set exactly when the stream is dropped.
            let flag = DropFlag(Arc::clone(&self.journal));
            let tail = futures::stream::pending().map(move |item| {
                let _owned = &flag;
                item
            });
            Ok(batches.chain(tail).boxed())
        } else {
            Ok(batches.boxed())
        }
    }

    async fn open_writer(
        &self,
        request: WriteRequest,
    ) -> Result<Box<dyn DestinationWriter>, ConnectorError> {
        *self.journal.write_request.lock().expect("lock") = Some(request);
        Ok(Box::new(ScriptedWriter {
            script: self.script.clone(),
            journal: Arc::clone(&self.journal),
        }))
    }
}

/// Records that the source stream was dropped (it lives inside the stream's closure).
#[derive(Debug)]
struct DropFlag(Arc<Journal>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.stream_dropped.store(true, Ordering::SeqCst);
    }
}

struct ScriptedWriter {
    script: Script,
    journal: Arc<Journal>,
}

#[async_trait]
impl DestinationWriter for ScriptedWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<(), ConnectorError> {
        let index = self.journal.writes.fetch_add(1, Ordering::SeqCst);
        let lead = self
            .journal
            .produced
            .load(Ordering::SeqCst)
            .saturating_sub(index);
        self.journal.max_lead.fetch_max(lead, Ordering::SeqCst);
        if let Some(delay) = self.script.write_delay {
            tokio::time::sleep(delay).await;
        }
        if self.script.write_fails_at == Some(index) {
            return Err(ConnectorError::unavailable("out/x.csv: disk full"));
        }
        self.journal.written.lock().expect("lock").push(batch);
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<WriteSummary, ConnectorError> {
        if self.script.commit_fails {
            return Err(ConnectorError::unavailable(
                "bucket dst: connection refused",
            ));
        }
        self.journal.committed.store(true, Ordering::SeqCst);
        let written = self.journal.written.lock().expect("lock");
        let records: usize = written.iter().map(RecordBatch::num_rows).sum();
        Ok(WriteSummary {
            records_written: records as u64,
            bytes_written: 1_234,
            put_failures: 0,
            locations: vec!["dst/flow/exec/flow-0-0.csv".to_owned()],
        })
    }

    async fn abort(self: Box<Self>) {
        self.journal.aborted.store(true, Ordering::SeqCst);
    }
}

#[derive(Debug)]
struct OneConnector(Option<Arc<dyn Connector>>);

impl ConnectorRegistry for OneConnector {
    fn get(
        &self,
        connector_type: model::ConnectorType,
        _label: Option<&str>,
    ) -> Option<Arc<dyn Connector>> {
        self.0
            .clone()
            .filter(|connector| connector.connector_type() == connector_type)
    }

    fn all(&self) -> Vec<Arc<dyn Connector>> {
        self.0.iter().cloned().collect()
    }
}

fn registry(script: Script) -> (OneConnector, Arc<Journal>) {
    let journal = Arc::new(Journal::default());
    let connector = Scripted {
        script,
        journal: Arc::clone(&journal),
    };
    (OneConnector(Some(Arc::new(connector))), journal)
}

fn tasks(json: serde_json::Value) -> Vec<model::Task> {
    serde_json::from_value(json).expect("valid tasks")
}

fn map_all() -> Vec<model::Task> {
    tasks(serde_json::json!([
        {"sourceFields": [], "connectorOperator": {"S3": "NO_OP"}, "taskType": "Map_all",
         "taskProperties": {}}
    ]))
}

fn spec(tasks: Vec<model::Task>) -> RunSpec {
    let source: model::SourceFlowConfig = serde_json::from_value(serde_json::json!({
        "connectorType": "S3",
        "sourceConnectorProperties": {"S3": {"bucketName": "src", "bucketPrefix": "in"}}
    }))
    .expect("valid source");
    let destination: model::DestinationFlowConfig = serde_json::from_value(serde_json::json!({
        "connectorType": "S3",
        "destinationConnectorProperties": {"S3": {"bucketName": "dst"}}
    }))
    .expect("valid destination");
    RunSpec {
        flow_name: "flow".to_owned(),
        execution_id: "exec-1".to_owned(),
        source,
        destination,
        tasks,
        source_profile: None,
        destination_profile: None,
        schema_version: 3,
        window: None,
        started_at: chrono::Utc::now(),
    }
}

async fn run(script: Script) -> (sluice_pipeline::RunOutcome, Arc<Journal>) {
    let (registry, journal) = registry(script);
    let outcome = execute(
        &registry,
        spec(map_all()),
        Arc::new(RunProgress::default()),
        CancellationToken::new(),
    )
    .await;
    (outcome, journal)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successful_run_moves_every_batch_and_counts() {
    let script = Script {
        batches: 5,
        rows_per_batch: 7,
        bytes_per_batch: 1_000,
        ..Script::default()
    };
    let (outcome, journal) = run(script).await;

    assert_eq!(
        outcome.status,
        RunStatus::Successful,
        "{:?}",
        outcome.message
    );
    assert_eq!(outcome.message, None);
    assert_eq!(outcome.progress.records_processed, 35);
    assert_eq!(outcome.progress.bytes_processed, 5_000);
    assert_eq!(outcome.progress.bytes_written, 1_234);
    assert_eq!(outcome.progress.records_filtered, 0);
    assert_eq!(
        outcome.locations,
        vec!["dst/flow/exec/flow-0-0.csv".to_owned()]
    );
    assert!(journal.committed.load(Ordering::SeqCst));
    assert!(!journal.aborted.load(Ordering::SeqCst));

    let written = journal.written.lock().expect("lock");
    let ids: Vec<String> = written
        .iter()
        .flat_map(|batch| {
            let ids = batch
                .column_by_name("id")
                .and_then(|column| column.as_any().downcast_ref::<StringArray>().cloned())
                .expect("id column");
            ids.iter()
                .map(|id| id.unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(ids.len(), 35);
    assert_eq!(
        ids.first().map(String::as_str),
        Some("0-0"),
        "order is preserved"
    );
    assert_eq!(
        ids.last().map(String::as_str),
        Some("4-6"),
        "order is preserved"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_carry_the_spec_to_both_connectors() {
    let (_outcome, journal) = run(Script::default()).await;
    let read = journal
        .read_request
        .lock()
        .expect("lock")
        .clone()
        .expect("read called");
    assert_eq!(read.flow_name, "flow");
    assert_eq!(read.execution_id, "exec-1");
    assert!(read.batch_rows > 0);
    assert_eq!(read.projection, None, "Map_all alone reads every field");
    let write = journal
        .write_request
        .lock()
        .expect("lock")
        .clone()
        .expect("writer opened");
    assert_eq!(write.schema_version, 3);
    assert_eq!(write.execution_id, "exec-1");
    assert!(write.partition_keys.is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn works_on_a_current_thread_runtime() {
    let (outcome, journal) = run(Script {
        batches: 4,
        ..Script::default()
    })
    .await;
    assert_eq!(
        outcome.status,
        RunStatus::Successful,
        "{:?}",
        outcome.message
    );
    assert_eq!(outcome.progress.records_processed, 16);
    assert!(journal.committed.load(Ordering::SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_source_succeeds_with_zero_records() {
    let (outcome, journal) = run(Script {
        batches: 0,
        ..Script::default()
    })
    .await;
    assert_eq!(outcome.status, RunStatus::Successful);
    assert_eq!(outcome.progress.records_processed, 0);
    assert_eq!(journal.writes.load(Ordering::SeqCst), 0, "nothing to write");
    assert!(journal.committed.load(Ordering::SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_row_batches_are_counted_but_not_written() {
    let (outcome, journal) = run(Script {
        batches: 3,
        rows_per_batch: 0,
        ..Script::default()
    })
    .await;
    assert_eq!(outcome.status, RunStatus::Successful);
    assert_eq!(outcome.progress.bytes_processed, 300);
    assert_eq!(journal.writes.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_failure_mid_run_aborts_and_says_where() {
    let (outcome, journal) = run(Script {
        batches: 6,
        source_fails_at: Some(3),
        ..Script::default()
    })
    .await;
    assert_eq!(outcome.status, RunStatus::Error);
    assert_eq!(
        outcome.message.as_deref(),
        Some("S3 source: in/data.csv line 17: expected 5 fields, found 4")
    );
    assert_eq!(
        outcome.progress.records_processed, 12,
        "three batches were read before"
    );
    assert!(outcome.locations.is_empty());
    assert!(journal.aborted.load(Ordering::SeqCst));
    assert!(!journal.committed.load(Ordering::SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destination_failure_aborts_and_stops_the_source() {
    let script = Script {
        batches: 1_000,
        write_fails_at: Some(1),
        ..Script::default()
    };
    let (outcome, journal) = run(script).await;
    assert_eq!(outcome.status, RunStatus::Error);
    assert_eq!(
        outcome.message.as_deref(),
        Some("S3 destination: out/x.csv: disk full")
    );
    assert!(journal.aborted.load(Ordering::SeqCst));
    assert!(!journal.committed.load(Ordering::SeqCst));
    assert!(
        journal.produced.load(Ordering::SeqCst) < 50,
        "the source stops soon after the destination fails"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_failure_is_an_error() {
    let (outcome, journal) = run(Script {
        commit_fails: true,
        ..Script::default()
    })
    .await;
    assert_eq!(outcome.status, RunStatus::Error);
    assert_eq!(
        outcome.message.as_deref(),
        Some("S3 destination: cannot commit output: bucket dst: connection refused")
    );
    assert!(!journal.committed.load(Ordering::SeqCst));
    assert_eq!(outcome.progress.bytes_written, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_source_is_an_internal_error_and_the_writer_is_aborted() {
    let (outcome, journal) = run(Script {
        batches: 4,
        source_panics_at: Some(2),
        ..Script::default()
    })
    .await;
    assert_eq!(outcome.status, RunStatus::Error);
    let message = outcome.message.unwrap_or_default();
    assert!(
        message.starts_with("internal error: S3 source panicked"),
        "{message}"
    );
    assert!(
        message.contains("scripted source panic at batch 2"),
        "{message}"
    );
    assert!(journal.aborted.load(Ordering::SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_tasks_fail_before_touching_connectors() {
    let (registry, journal) = registry(Script::default());
    let outcome = execute(
        &registry,
        spec(Vec::new()),
        Arc::new(RunProgress::default()),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(outcome.status, RunStatus::Error);
    let message = outcome.message.unwrap_or_default();
    assert!(message.starts_with("invalid tasks: "), "{message}");
    assert!(journal.read_request.lock().expect("lock").is_none());
    assert!(journal.write_request.lock().expect("lock").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_connector_is_reported() {
    let outcome = execute(
        &OneConnector(None),
        spec(map_all()),
        Arc::new(RunProgress::default()),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(outcome.status, RunStatus::Error);
    assert_eq!(
        outcome.message.as_deref(),
        Some("S3 cannot be used as a source: no such connector in this build")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_of_a_stalled_run_aborts_promptly_and_progress_is_live() {
    let script = Script {
        batches: 10,
        source_hangs_after: Some(2),
        ..Script::default()
    };
    let (registry, journal) = registry(script);
    let progress = Arc::new(RunProgress::default());
    let cancel = CancellationToken::new();

    let run = execute(
        &registry,
        spec(map_all()),
        Arc::clone(&progress),
        cancel.clone(),
    );
    let observer = async {
        // The run is stuck after two batches; the counters must already show them.
        for _ in 0..500 {
            if journal.writes.load(Ordering::SeqCst) == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(progress.snapshot().records_processed, 8);
        assert_eq!(progress.snapshot().bytes_processed, 200);
        cancel.cancel();
    };
    let (outcome, ()) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(run, observer)
    })
    .await
    .expect("cancellation ends the run promptly");

    assert_eq!(outcome.status, RunStatus::Canceled);
    assert_eq!(outcome.progress.records_processed, 8);
    assert!(journal.aborted.load(Ordering::SeqCst));
    assert!(!journal.committed.load(Ordering::SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_before_start_never_opens_the_source() {
    let (registry, journal) = registry(Script::default());
    let cancel = CancellationToken::new();
    cancel.cancel();
    let outcome = execute(
        &registry,
        spec(map_all()),
        Arc::new(RunProgress::default()),
        cancel,
    )
    .await;
    assert_eq!(outcome.status, RunStatus::Canceled);
    assert!(journal.read_request.lock().expect("lock").is_none());
    assert!(!journal.committed.load(Ordering::SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_destination_back_pressures_the_source() {
    let script = Script {
        batches: 40,
        write_delay: Some(Duration::from_millis(3)),
        ..Script::default()
    };
    let (registry, journal) = registry(script);
    let options = EngineOptions {
        channel_batches: 2,
        ..EngineOptions::default()
    };
    let outcome = execute_with(
        &registry,
        spec(map_all()),
        Arc::new(RunProgress::default()),
        CancellationToken::new(),
        options,
    )
    .await;
    assert_eq!(
        outcome.status,
        RunStatus::Successful,
        "{:?}",
        outcome.message
    );
    // In flight at most: the batch being written, the channel, the batch waiting to be sent,
    // and the one just produced.
    let lead = journal.max_lead.load(Ordering::SeqCst);
    assert!(
        lead <= options.channel_batches + 3,
        "source ran {lead} batches ahead"
    );
    assert_eq!(journal.writes.load(Ordering::SeqCst), 40);
}

#[test]
fn outcome_maps_to_an_appflow_execution_result() {
    let outcome = sluice_pipeline::RunOutcome {
        status: RunStatus::Error,
        progress: sluice_pipeline::ProgressSnapshot {
            records_processed: 10,
            records_filtered: 1,
            bytes_processed: u64::MAX,
            bytes_written: 5,
            put_failures: 2,
        },
        message: Some("S3 source: boom".to_owned()),
        locations: Vec::new(),
        error_locations: Vec::new(),
        source_fields: Vec::new(),
    };
    assert_eq!(
        outcome.status.execution_status(),
        model::ExecutionStatus::Error
    );
    let result = outcome.execution_result();
    assert_eq!(result.records_processed, Some(10));
    assert_eq!(
        result.bytes_processed,
        Some(i64::MAX),
        "saturates instead of wrapping"
    );
    assert_eq!(result.bytes_written, Some(5));
    let error_info = result.error_info.expect("error info");
    assert_eq!(error_info.put_failures_count, Some(2));
    assert_eq!(
        error_info.execution_message.as_deref(),
        Some("S3 source: boom")
    );
    assert_eq!(
        RunStatus::Canceled.execution_status(),
        model::ExecutionStatus::Canceled
    );
    assert_eq!(
        RunStatus::Successful.execution_status(),
        model::ExecutionStatus::Successful
    );
}

fn validate_name(action: &str) -> Vec<model::Task> {
    tasks(serde_json::json!([
        {"sourceFields": [], "connectorOperator": {"S3": "NO_OP"}, "taskType": "Map_all",
         "taskProperties": {}},
        {"sourceFields": ["name"], "connectorOperator": {"S3": "VALIDATE_NON_NULL"},
         "taskType": "Validate", "taskProperties": {"VALIDATION_ACTION": action}}
    ]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_records_are_counted_as_filtered_and_not_written() {
    // Rows 0 and 3 of every 4-row batch have a null name.
    let (registry, journal) = registry(Script {
        batches: 5,
        ..Script::default()
    });
    let outcome = execute(
        &registry,
        spec(validate_name("DropRecord")),
        Arc::new(RunProgress::default()),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(
        outcome.status,
        RunStatus::Successful,
        "{:?}",
        outcome.message
    );
    assert_eq!(
        outcome.progress.records_processed, 20,
        "counted as read, before tasks"
    );
    assert_eq!(outcome.progress.records_filtered, 10);
    let written: usize = journal
        .written
        .lock()
        .expect("lock")
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    assert_eq!(written, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminating_validation_fails_the_run_and_aborts() {
    let (registry, journal) = registry(Script {
        batches: 5,
        ..Script::default()
    });
    let outcome = execute(
        &registry,
        spec(validate_name("TerminateFlow")),
        Arc::new(RunProgress::default()),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(outcome.status, RunStatus::Error);
    let message = outcome.message.unwrap_or_default();
    assert!(message.starts_with("task failed: "), "{message}");
    assert!(
        message.contains("name"),
        "the message names the field: {message}"
    );
    assert!(journal.aborted.load(Ordering::SeqCst));
    assert!(!journal.committed.load(Ordering::SeqCst));
    assert_eq!(
        journal.writes.load(Ordering::SeqCst),
        0,
        "the first batch already fails"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_shapes_the_read_and_write_requests() {
    let (registry, journal) = registry(Script::default());
    let plan = tasks(serde_json::json!([
        {"sourceFields": ["id", "name"], "connectorOperator": {"S3": "PROJECTION"},
         "taskType": "Filter", "taskProperties": {}},
        {"sourceFields": ["id"], "connectorOperator": {"S3": "NO_OP"}, "taskType": "Map",
         "destinationField": "id", "taskProperties": {}},
        {"sourceFields": ["name"], "connectorOperator": {"S3": "NO_OP"}, "taskType": "Map",
         "destinationField": "who", "taskProperties": {}},
        {"sourceFields": ["id"], "connectorOperator": {"S3": "GREATER_THAN"}, "taskType": "Filter",
         "taskProperties": {"DATA_TYPE": "string", "VALUE": "1"}},
        {"sourceFields": ["who"], "connectorOperator": {"S3": "NO_OP"}, "taskType": "Partition",
         "taskProperties": {}}
    ]));
    let outcome = execute(
        &registry,
        spec(plan),
        Arc::new(RunProgress::default()),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(
        outcome.status,
        RunStatus::Successful,
        "{:?}",
        outcome.message
    );
    // As strings, the ids "0-*" of the first batch sort before "1"; "1-*" and "2-*" after it.
    assert_eq!(outcome.progress.records_filtered, 4);

    let read = journal
        .read_request
        .lock()
        .expect("lock")
        .clone()
        .expect("read called");
    assert_eq!(
        read.projection,
        Some(vec!["id".to_owned(), "name".to_owned()])
    );
    assert_eq!(read.filters.len(), 1);
    assert_eq!(read.filters[0].field, "id");
    assert_eq!(read.filters[0].values, vec!["1".to_owned()]);
    let write = journal
        .write_request
        .lock()
        .expect("lock")
        .clone()
        .expect("writer opened");
    assert_eq!(write.partition_keys, vec!["who".to_owned()]);
}

#[test]
fn dropping_the_run_future_stops_its_threads() {
    // A hand-built runtime, shut down with a timeout: if the threads kept running, a
    // `#[tokio::test]` runtime would wait for them forever instead of failing.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let script = Script {
        batches: 10,
        source_hangs_after: Some(1),
        ..Script::default()
    };
    let (registry, journal) = registry(script);
    let finished = runtime.block_on(async {
        let run = execute(
            &registry,
            spec(map_all()),
            Arc::new(RunProgress::default()),
            CancellationToken::new(),
        );
        let finished = tokio::time::timeout(Duration::from_millis(200), run)
            .await
            .is_ok();
        for _ in 0..500 {
            if journal.stream_dropped.load(Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        finished
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    assert!(!finished, "the stalled run cannot finish on its own");
    assert!(
        journal.stream_dropped.load(Ordering::SeqCst),
        "the source thread let go"
    );
    assert!(!journal.committed.load(Ordering::SeqCst));
}
