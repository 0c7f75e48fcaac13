//! Rejected records reach the `errorHandlingConfig` location whatever the run's outcome, and
//! the source fields of a run are reported.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use async_trait::async_trait;
use sluice_api_model as model;
use sluice_connector_api::{
    BatchStream, Connector, ConnectorError, ConnectorRegistry, DestinationWriter, EntityContext,
    EntityListing, ErrorLocation, ReadRequest, RejectedRecord, RejectedRecordSink, WriteRequest,
    WriteSummary,
};
use sluice_pipeline::{RunProgress, RunSpec, RunStatus, execute};
use tokio_util::sync::CancellationToken;

/// Two batches; the second one has an extra column (a field added while reading).
#[derive(Debug)]
struct Source;

#[async_trait]
impl Connector for Source {
    fn connector_type(&self) -> model::ConnectorType {
        model::ConnectorType::S3
    }
    fn configuration(&self) -> model::ConnectorConfiguration {
        model::ConnectorConfiguration::default()
    }
    async fn list_entities(&self, _: &EntityContext) -> Result<EntityListing, ConnectorError> {
        Ok(EntityListing::new())
    }
    async fn describe_entity(
        &self,
        _: &EntityContext,
        _: &str,
    ) -> Result<Vec<model::ConnectorEntityField>, ConnectorError> {
        Ok(Vec::new())
    }
    async fn read(&self, _: ReadRequest) -> Result<BatchStream, ConnectorError> {
        let first = RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
            (
                "email",
                Arc::new(StringArray::from(vec![
                    Some("a@x.io"),
                    None,
                    Some("c@x.io"),
                ])) as ArrayRef,
            ),
        ])
        .expect("batch");
        let second = RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from(vec![4])) as ArrayRef),
            (
                "email",
                Arc::new(StringArray::from(vec![None::<&str>])) as ArrayRef,
            ),
            (
                "Région__c",
                Arc::new(StringArray::from(vec!["Île"])) as ArrayRef,
            ),
        ])
        .expect("batch");
        Ok(Box::pin(futures::stream::iter([Ok(first), Ok(second)])))
    }
}

/// A destination that rejects rows without an email, per its `errorHandlingConfig`.
#[derive(Debug)]
struct Destination;

struct Writer {
    request: WriteRequest,
    fail_on_first: bool,
    failures: u64,
}

#[async_trait]
impl Connector for Destination {
    fn connector_type(&self) -> model::ConnectorType {
        model::ConnectorType::Zendesk
    }
    fn configuration(&self) -> model::ConnectorConfiguration {
        model::ConnectorConfiguration::default()
    }
    async fn list_entities(&self, _: &EntityContext) -> Result<EntityListing, ConnectorError> {
        Ok(EntityListing::new())
    }
    async fn describe_entity(
        &self,
        _: &EntityContext,
        _: &str,
    ) -> Result<Vec<model::ConnectorEntityField>, ConnectorError> {
        Ok(Vec::new())
    }
    async fn open_writer(
        &self,
        request: WriteRequest,
    ) -> Result<Box<dyn DestinationWriter>, ConnectorError> {
        let properties =
            serde_json::to_value(&request.destination.destination_connector_properties)
                .expect("json");
        let fail_on_first =
            properties["Zendesk"]["errorHandlingConfig"]["failOnFirstDestinationError"]
                .as_bool()
                .unwrap_or(false);
        Ok(Box::new(Writer {
            request,
            fail_on_first,
            failures: 0,
        }))
    }
}

#[async_trait]
impl DestinationWriter for Writer {
    async fn write(&mut self, batch: RecordBatch) -> Result<(), ConnectorError> {
        let ids = batch
            .column_by_name("id")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .expect("id column");
        let emails = batch.column_by_name("email").expect("email column");
        for row in 0..batch.num_rows() {
            if emails.is_valid(row) {
                continue;
            }
            let mut record = serde_json::Map::new();
            record.insert("id".to_owned(), ids.value(row).into());
            self.request
                .rejected
                .put(vec![RejectedRecord {
                    record,
                    code: Some("REQUIRED_FIELD_MISSING".to_owned()),
                    message: "Required fields are missing: [email]".to_owned(),
                }])
                .await?;
            self.failures += 1;
            if self.fail_on_first {
                return Err(ConnectorError::bad_data(format!(
                    "record {} rejected: Required fields are missing: [email]",
                    ids.value(row)
                )));
            }
        }
        Ok(())
    }
    async fn commit(self: Box<Self>) -> Result<WriteSummary, ConnectorError> {
        Ok(WriteSummary {
            put_failures: self.failures,
            ..WriteSummary::default()
        })
    }
    async fn abort(self: Box<Self>) {}
}

/// Keeps what it is given; `finish` returns one location per `put` batch, or fails.
#[derive(Debug, Default)]
struct Sink {
    records: Mutex<Vec<RejectedRecord>>,
    finished: AtomicUsize,
    fail_finish: bool,
}

#[async_trait]
impl RejectedRecordSink for Sink {
    async fn put(&self, records: Vec<RejectedRecord>) -> Result<(), ConnectorError> {
        self.records.lock().expect("lock").extend(records);
        Ok(())
    }
    async fn finish(&self) -> Result<Vec<String>, ConnectorError> {
        self.finished.fetch_add(1, Ordering::SeqCst);
        if self.fail_finish {
            return Err(ConnectorError::unavailable("connection refused"));
        }
        Ok(vec![
            "s3://errors/out/flow/exec-1/error-records-00001.jsonl".to_owned(),
        ])
    }
}

#[derive(Debug)]
struct Registry {
    sink: Arc<Sink>,
    asked: Mutex<Vec<ErrorLocation>>,
}

impl ConnectorRegistry for Registry {
    fn get(
        &self,
        connector_type: model::ConnectorType,
        _: Option<&str>,
    ) -> Option<Arc<dyn Connector>> {
        match connector_type {
            model::ConnectorType::S3 => Some(Arc::new(Source)),
            model::ConnectorType::Zendesk => Some(Arc::new(Destination)),
            _ => None,
        }
    }
    fn all(&self) -> Vec<Arc<dyn Connector>> {
        vec![Arc::new(Source), Arc::new(Destination)]
    }
    fn error_location(
        &self,
        location: &ErrorLocation,
    ) -> Result<Arc<dyn RejectedRecordSink>, ConnectorError> {
        self.asked.lock().expect("lock").push(location.clone());
        Ok(Arc::clone(&self.sink) as Arc<dyn RejectedRecordSink>)
    }
}

fn spec(error_handling: serde_json::Value) -> RunSpec {
    let source = serde_json::from_value(serde_json::json!({
        "connectorType": "S3",
        "sourceConnectorProperties": {"S3": {"bucketName": "src"}}
    }))
    .expect("source");
    let destination = serde_json::from_value(serde_json::json!({
        "connectorType": "Zendesk",
        "destinationConnectorProperties": {"Zendesk": {
            "object": "users", "errorHandlingConfig": error_handling}}
    }))
    .expect("destination");
    let tasks = serde_json::from_value(serde_json::json!([
        {"sourceFields": [], "connectorOperator": {"S3": "NO_OP"}, "taskType": "Map_all",
         "taskProperties": {}}
    ]))
    .expect("tasks");
    RunSpec {
        flow_name: "flow".to_owned(),
        execution_id: "exec-1".to_owned(),
        source,
        destination,
        tasks,
        source_profile: None,
        destination_profile: None,
        schema_version: 1,
        window: None,
        started_at: chrono::Utc::now(),
    }
}

async fn run(
    sink: Sink,
    error_handling: serde_json::Value,
) -> (sluice_pipeline::RunOutcome, Registry) {
    let registry = Registry {
        sink: Arc::new(sink),
        asked: Mutex::new(Vec::new()),
    };
    let outcome = execute(
        &registry,
        spec(error_handling),
        Arc::new(RunProgress::default()),
        CancellationToken::new(),
    )
    .await;
    (outcome, registry)
}

fn rejected_ids(registry: &Registry) -> Vec<i64> {
    let records = registry.sink.records.lock().expect("lock");
    records
        .iter()
        .map(|r| r.record["id"].as_i64().expect("id"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_records_go_to_the_error_location_and_the_run_succeeds() {
    let (outcome, registry) = run(
        Sink::default(),
        serde_json::json!({"failOnFirstDestinationError": false, "bucketName": "errors",
                           "bucketPrefix": "out"}),
    )
    .await;
    assert_eq!(
        outcome.status,
        RunStatus::Successful,
        "{:?}",
        outcome.message
    );
    assert_eq!(outcome.progress.put_failures, 2);
    assert_eq!(rejected_ids(&registry), vec![2, 4]);
    assert_eq!(registry.sink.finished.load(Ordering::SeqCst), 1);
    assert_eq!(
        outcome.error_locations,
        vec!["s3://errors/out/flow/exec-1/error-records-00001.jsonl".to_owned()]
    );
    let asked = registry.asked.lock().expect("lock");
    assert_eq!(
        *asked,
        vec![ErrorLocation {
            bucket: "errors".to_owned(),
            prefix: "out".to_owned(),
            flow_name: "flow".to_owned(),
            execution_id: "exec-1".to_owned(),
        }]
    );
    assert_eq!(outcome.source_fields, vec!["id", "email", "Région__c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_by_its_first_rejection_still_stores_that_record() {
    let (outcome, registry) = run(
        Sink::default(),
        serde_json::json!({"failOnFirstDestinationError": true, "bucketName": "errors"}),
    )
    .await;
    assert_eq!(outcome.status, RunStatus::Error);
    let message = outcome.message.unwrap_or_default();
    assert!(message.contains("record 2 rejected"), "{message}");
    assert_eq!(rejected_ids(&registry), vec![2]);
    assert_eq!(registry.sink.finished.load(Ordering::SeqCst), 1);
    assert_eq!(outcome.error_locations.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_that_cannot_be_stored_fail_the_run() {
    let sink = Sink {
        fail_finish: true,
        ..Sink::default()
    };
    let (outcome, _registry) = run(
        sink,
        serde_json::json!({"failOnFirstDestinationError": false, "bucketName": "errors"}),
    )
    .await;
    assert_eq!(outcome.status, RunStatus::Error);
    let message = outcome.message.unwrap_or_default();
    assert!(
        message.contains("error location s3://errors") && message.contains("connection refused"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_bucket_rejections_are_only_counted() {
    let (outcome, registry) = run(
        Sink::default(),
        serde_json::json!({"failOnFirstDestinationError": false}),
    )
    .await;
    assert_eq!(
        outcome.status,
        RunStatus::Successful,
        "{:?}",
        outcome.message
    );
    assert_eq!(outcome.progress.put_failures, 2);
    assert!(registry.asked.lock().expect("lock").is_empty());
    assert_eq!(registry.sink.finished.load(Ordering::SeqCst), 0);
    assert!(outcome.error_locations.is_empty());
}
