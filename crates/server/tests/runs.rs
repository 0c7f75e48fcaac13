//! The run manager through the API, with a scripted in-memory connector so a test decides
//! when a run makes progress: progress persistence, cancellation, forceDelete, the pending-run
//! quota, shutdown, and recovery of interrupted runs. Also connector-backed metadata calls and
//! profile validation.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::{RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use async_trait::async_trait;
use common::{TestServer, s3_flow};
use serde_json::json;
use sluice_api_model as model;
use sluice_connector_api::{
    BatchStream, Connector, ConnectorError, ConnectorErrorKind, ConnectorRegistry,
    DestinationWriter, EntityContext, EntityListing, Profile, ReadRequest, WriteRequest,
    WriteSummary,
};

const ROWS_PER_BATCH: usize = 3;

/// An S3 stand-in: the source yields one batch per permit of `gate`, `batches` in total; the
/// destination keeps committed rows in memory.
#[derive(Debug)]
struct Scripted {
    gate: Arc<tokio::sync::Semaphore>,
    batches: usize,
    committed_rows: Arc<AtomicUsize>,
    aborted: Arc<AtomicUsize>,
}

fn batch(offset: usize) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("name", DataType::Utf8, true),
    ]));
    let ids: Vec<String> = (offset..offset + ROWS_PER_BATCH)
        .map(|i| i.to_string())
        .collect();
    let names: Vec<String> = ids.iter().map(|i| format!("name-{i}")).collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(StringArray::from(names)),
        ],
    )
    .unwrap()
}

#[async_trait]
impl Connector for Scripted {
    fn connector_type(&self) -> model::ConnectorType {
        model::ConnectorType::S3
    }

    fn configuration(&self) -> model::ConnectorConfiguration {
        model::ConnectorConfiguration {
            can_use_as_source: Some(true),
            can_use_as_destination: Some(true),
            connector_type: Some(model::ConnectorType::S3),
            connector_name: Some("Scripted S3".into()),
            ..Default::default()
        }
    }

    async fn list_entities(&self, ctx: &EntityContext) -> Result<EntityListing, ConnectorError> {
        let entities = (0..5)
            .map(|i| model::ConnectorEntity {
                name: format!("{}/e{i}", ctx.entities_path.clone().unwrap_or_default()),
                label: None,
                has_nested_entities: Some(false),
            })
            .collect();
        Ok(BTreeMap::from([("Objects".to_string(), entities)]))
    }

    async fn describe_entity(
        &self,
        _ctx: &EntityContext,
        entity: &str,
    ) -> Result<Vec<model::ConnectorEntityField>, ConnectorError> {
        if entity == "missing" {
            return Err(ConnectorError::not_found("entity missing does not exist"));
        }
        Ok(vec![model::ConnectorEntityField {
            identifier: "id".into(),
            ..Default::default()
        }])
    }

    async fn read(&self, _request: ReadRequest) -> Result<BatchStream, ConnectorError> {
        let gate = self.gate.clone();
        let total = self.batches;
        let stream = futures::stream::unfold(0usize, move |sent| {
            let gate = gate.clone();
            async move {
                if sent == total {
                    return None;
                }
                gate.acquire().await.ok()?.forget();
                Some((Ok(batch(sent * ROWS_PER_BATCH)), sent + 1))
            }
        });
        Ok(Box::pin(stream))
    }

    async fn open_writer(
        &self,
        _request: WriteRequest,
    ) -> Result<Box<dyn DestinationWriter>, ConnectorError> {
        Ok(Box::new(MemoryWriter {
            rows: 0,
            committed_rows: self.committed_rows.clone(),
            aborted: self.aborted.clone(),
        }))
    }
}

struct MemoryWriter {
    rows: usize,
    committed_rows: Arc<AtomicUsize>,
    aborted: Arc<AtomicUsize>,
}

#[async_trait]
impl DestinationWriter for MemoryWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<(), ConnectorError> {
        self.rows += batch.num_rows();
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<WriteSummary, ConnectorError> {
        self.committed_rows.fetch_add(self.rows, Ordering::SeqCst);
        Ok(WriteSummary {
            records_written: self.rows as u64,
            bytes_written: (self.rows * 10) as u64,
            put_failures: 0,
            locations: vec!["memory".into()],
        })
    }

    async fn abort(self: Box<Self>) {
        self.aborted.fetch_add(1, Ordering::SeqCst);
    }
}

/// A profile-based connector whose credential check accepts only `apiKey == "good"`.
#[derive(Debug)]
struct Checker {
    seen_credentials: Arc<Mutex<Vec<serde_json::Value>>>,
}

#[async_trait]
impl Connector for Checker {
    fn connector_type(&self) -> model::ConnectorType {
        model::ConnectorType::Datadog
    }

    fn configuration(&self) -> model::ConnectorConfiguration {
        model::ConnectorConfiguration {
            can_use_as_source: Some(true),
            connector_type: Some(model::ConnectorType::Datadog),
            ..Default::default()
        }
    }

    async fn validate_profile(&self, profile: &Profile) -> Result<(), ConnectorError> {
        self.seen_credentials
            .lock()
            .unwrap()
            .push(profile.credentials.expose().clone());
        if profile.credentials.expose()["Datadog"]["apiKey"] == "good" {
            Ok(())
        } else {
            Err(ConnectorError::new(
                ConnectorErrorKind::Authentication,
                "the API key was refused",
            ))
        }
    }

    async fn list_entities(&self, ctx: &EntityContext) -> Result<EntityListing, ConnectorError> {
        let profile = ctx.profile.as_ref().expect("profile resolved");
        assert_eq!(profile.credentials.expose()["Datadog"]["apiKey"], "good");
        Ok(BTreeMap::from([(
            "Metrics".to_string(),
            vec![model::ConnectorEntity {
                name: "cpu".into(),
                label: None,
                has_nested_entities: None,
            }],
        )]))
    }

    async fn describe_entity(
        &self,
        _ctx: &EntityContext,
        _entity: &str,
    ) -> Result<Vec<model::ConnectorEntityField>, ConnectorError> {
        Ok(Vec::new())
    }
}

#[derive(Debug)]
struct Fakes {
    connectors: Vec<Arc<dyn Connector>>,
}

impl ConnectorRegistry for Fakes {
    fn get(
        &self,
        connector_type: model::ConnectorType,
        label: Option<&str>,
    ) -> Option<Arc<dyn Connector>> {
        self.connectors
            .iter()
            .find(|c| c.connector_type() == connector_type && c.connector_label() == label)
            .cloned()
    }

    fn all(&self) -> Vec<Arc<dyn Connector>> {
        self.connectors.clone()
    }
}

struct Harness {
    gate: Arc<tokio::sync::Semaphore>,
    committed_rows: Arc<AtomicUsize>,
    aborted: Arc<AtomicUsize>,
    seen_credentials: Arc<Mutex<Vec<serde_json::Value>>>,
    registry: Arc<dyn ConnectorRegistry>,
}

fn harness(batches: usize) -> Harness {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let committed_rows = Arc::new(AtomicUsize::new(0));
    let aborted = Arc::new(AtomicUsize::new(0));
    let seen_credentials = Arc::new(Mutex::new(Vec::new()));
    let registry: Arc<dyn ConnectorRegistry> = Arc::new(Fakes {
        connectors: vec![
            Arc::new(Scripted {
                gate: gate.clone(),
                batches,
                committed_rows: committed_rows.clone(),
                aborted: aborted.clone(),
            }),
            Arc::new(Checker {
                seen_credentials: seen_credentials.clone(),
            }),
        ],
    });
    Harness {
        gate,
        committed_rows,
        aborted,
        seen_credentials,
        registry,
    }
}

async fn start_run(server: &TestServer, flow: &str) -> String {
    let started = server.ok("/start-flow", json!({"flowName": flow})).await;
    assert_eq!(started["flowStatus"], "Active");
    started["executionId"]
        .as_str()
        .expect("executionId")
        .to_string()
}

async fn record(server: &TestServer, flow: &str, id: &str) -> serde_json::Value {
    let records = server
        .ok(
            "/describe-flow-execution-records",
            json!({"flowName": flow}),
        )
        .await;
    records["flowExecutions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["executionId"] == id)
        .cloned()
        .expect("run listed")
}

#[tokio::test]
async fn progress_is_persisted_while_running_and_final_counters_at_the_end() {
    let h = harness(3);
    let server = TestServer::start_with_registry(h.registry.clone()).await;
    server.ok("/create-flow", s3_flow("ff", "src", "dst")).await;
    let id = start_run(&server, "ff").await;

    let first = record(&server, "ff", &id).await;
    assert_eq!(first["executionStatus"], "InProgress");
    assert!(first["startedAt"].is_number());
    let flow = server.ok("/describe-flow", json!({"flowName": "ff"})).await;
    assert_eq!(
        flow["lastRunExecutionDetails"]["mostRecentExecutionStatus"],
        "InProgress"
    );

    h.gate.add_permits(1);
    let mut seen = 0;
    for _ in 0..100 {
        let r = record(&server, "ff", &id).await;
        seen = r["executionResult"]["recordsProcessed"]
            .as_i64()
            .unwrap_or(0);
        if seen >= ROWS_PER_BATCH as i64 {
            assert_eq!(r["executionStatus"], "InProgress");
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(
        seen, ROWS_PER_BATCH as i64,
        "progress of the first batch was persisted"
    );

    h.gate.add_permits(2);
    let done = server.wait_for_run("ff", &id).await;
    assert_eq!(done["executionStatus"], "Successful", "{done}");
    assert_eq!(
        done["executionResult"]["recordsProcessed"],
        3 * ROWS_PER_BATCH
    );
    assert_eq!(
        done["executionResult"]["bytesWritten"],
        3 * ROWS_PER_BATCH * 10
    );
    assert_eq!(done["executionResult"]["errorInfo"]["putFailuresCount"], 0);
    assert!(done["lastUpdatedAt"].as_f64().unwrap() >= done["startedAt"].as_f64().unwrap());
    assert_eq!(h.committed_rows.load(Ordering::SeqCst), 3 * ROWS_PER_BATCH);

    let flow = server.ok("/describe-flow", json!({"flowName": "ff"})).await;
    assert_eq!(
        flow["lastRunExecutionDetails"]["mostRecentExecutionStatus"],
        "Successful"
    );
}

#[tokio::test]
async fn cancel_flow_executions_cancels_and_reports_invalid_ids() {
    let h = harness(2);
    let server = TestServer::start_with_registry(h.registry.clone()).await;
    server.ok("/create-flow", s3_flow("ff", "src", "dst")).await;
    let id = start_run(&server, "ff").await;

    let missing_flow = server
        .call("/cancel-flow-executions", json!({"flowName": "nope"}))
        .await;
    missing_flow.assert_error(404, "ResourceNotFoundException");

    let canceled = server
        .ok(
            "/cancel-flow-executions",
            json!({"flowName": "ff", "executionIds": [id, "not-a-run"]}),
        )
        .await;
    assert_eq!(canceled["invalidExecutions"], json!(["not-a-run"]));
    let done = server.wait_for_run("ff", &id).await;
    assert_eq!(done["executionStatus"], "Canceled", "{done}");
    assert_eq!(
        h.committed_rows.load(Ordering::SeqCst),
        0,
        "nothing was committed"
    );
    assert_eq!(
        h.aborted.load(Ordering::SeqCst),
        1,
        "the writer was aborted"
    );

    // A finished run cannot be canceled again.
    let again = server
        .ok(
            "/cancel-flow-executions",
            json!({"flowName": "ff", "executionIds": [id]}),
        )
        .await;
    assert_eq!(again["invalidExecutions"], json!([id]));
    let flow = server.ok("/describe-flow", json!({"flowName": "ff"})).await;
    assert_eq!(
        flow["lastRunExecutionDetails"]["mostRecentExecutionStatus"],
        "Canceled"
    );
}

#[tokio::test]
async fn cancel_without_ids_cancels_every_active_run() {
    let h = harness(1);
    let server = TestServer::start_with_registry(h.registry.clone()).await;
    server.ok("/create-flow", s3_flow("ff", "src", "dst")).await;
    let a = start_run(&server, "ff").await;
    let b = start_run(&server, "ff").await;
    let canceled = server
        .ok("/cancel-flow-executions", json!({"flowName": "ff"}))
        .await;
    assert_eq!(canceled["invalidExecutions"], json!([]));
    for id in [a, b] {
        assert_eq!(
            server.wait_for_run("ff", &id).await["executionStatus"],
            "Canceled"
        );
    }
}

#[tokio::test]
async fn delete_flow_with_a_run_in_progress_needs_force_delete() {
    let h = harness(1);
    let server = TestServer::start_with_registry(h.registry.clone()).await;
    server.ok("/create-flow", s3_flow("ff", "src", "dst")).await;
    let id = start_run(&server, "ff").await;

    let refused = server.call("/delete-flow", json!({"flowName": "ff"})).await;
    let message = refused.assert_error(409, "ConflictException");
    assert!(message.contains(&id), "{message}");
    let still_there = server.ok("/describe-flow", json!({"flowName": "ff"})).await;
    assert_eq!(still_there["flowName"], "ff");

    server
        .ok(
            "/delete-flow",
            json!({"flowName": "ff", "forceDelete": true}),
        )
        .await;
    server
        .call("/describe-flow", json!({"flowName": "ff"}))
        .await
        .assert_error(404, "ResourceNotFoundException");
    for _ in 0..100 {
        if h.aborted.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        h.aborted.load(Ordering::SeqCst),
        1,
        "the forced run was canceled"
    );
    // The name is free again, and the new flow has no runs.
    server.ok("/create-flow", s3_flow("ff", "src", "dst")).await;
    let records = server
        .ok(
            "/describe-flow-execution-records",
            json!({"flowName": "ff"}),
        )
        .await;
    assert_eq!(records["flowExecutions"], json!([]));
}

#[tokio::test]
async fn too_many_pending_runs_is_a_quota_error() {
    let h = harness(1);
    let registry = h.registry.clone();
    let server = TestServer::start_with(
        None,
        Box::new(move |c| {
            c.connectors = Some(registry);
            c.max_concurrent_runs = 1;
            c.max_pending_runs = 2;
        }),
    )
    .await;
    server.ok("/create-flow", s3_flow("ff", "src", "dst")).await;
    let first = start_run(&server, "ff").await;
    let second = start_run(&server, "ff").await;
    server
        .call("/start-flow", json!({"flowName": "ff"}))
        .await
        .assert_error(402, "ServiceQuotaExceededException");

    // The second run waits for the single slot; it is still InProgress.
    assert_eq!(
        record(&server, "ff", &second).await["executionStatus"],
        "InProgress"
    );
    h.gate.add_permits(2);
    assert_eq!(
        server.wait_for_run("ff", &first).await["executionStatus"],
        "Successful"
    );
    assert_eq!(
        server.wait_for_run("ff", &second).await["executionStatus"],
        "Successful"
    );
    start_run(&server, "ff").await;
}

#[tokio::test]
async fn shutdown_cancels_runs_and_restart_recovers_interrupted_ones() {
    let h = harness(1);
    let server = TestServer::start_with_registry(h.registry.clone()).await;
    server.ok("/create-flow", s3_flow("ff", "src", "dst")).await;
    let id = start_run(&server, "ff").await;
    let data_dir = server.data_dir.clone();
    let temp = server.stop().await;

    // A run left InProgress by a crash, written behind the server's back.
    {
        use sluice_metastore::MetadataStore as _;
        let store = sluice_metastore::SqliteStore::open(&data_dir.join("metadata.sqlite")).unwrap();
        let canceled = store.get_run("ff", &id).await.unwrap().unwrap();
        assert_eq!(canceled.status, "Canceled");
        assert_eq!(
            canceled.document["executionResult"]["errorInfo"]["executionMessage"],
            "the run was canceled because the server shut down"
        );
        let started = chrono::Utc::now();
        store
            .insert_run(&sluice_metastore::RunRecord {
                flow_name: "ff".into(),
                execution_id: "crashed-run".into(),
                status: "InProgress".into(),
                started_at: started,
                updated_at: started,
                document: json!({"executionId": "crashed-run", "executionStatus": "InProgress",
                    "startedAt": started.timestamp()}),
            })
            .await
            .unwrap();
    }

    let h2 = harness(1);
    let registry = h2.registry.clone();
    let server = TestServer::start_with(
        Some(data_dir),
        Box::new(move |c| c.connectors = Some(registry)),
    )
    .await;
    let crashed = record(&server, "ff", "crashed-run").await;
    assert_eq!(crashed["executionStatus"], "Error");
    assert_eq!(
        crashed["executionResult"]["errorInfo"]["executionMessage"],
        "the run was interrupted: the server stopped while it was in progress"
    );
    assert_eq!(
        record(&server, "ff", &id).await["executionStatus"],
        "Canceled"
    );
    server.stop().await;
    drop(temp);
}

#[tokio::test]
async fn profile_credentials_are_checked_by_the_connector_and_never_returned() {
    let h = harness(1);
    let server = TestServer::start_with_registry(h.registry.clone()).await;
    let profile = |key: &str| {
        json!({
            "connectorProfileName": "dd",
            "connectorType": "Datadog",
            "connectionMode": "Public",
            "connectorProfileConfig": {
                "connectorProfileProperties": {"Datadog": {"instanceUrl": "https://api.datadoghq.com"}},
                "connectorProfileCredentials": {"Datadog": {"apiKey": key, "applicationKey": "app-key-secret"}}
            }
        })
    };
    let refused = server
        .call("/create-connector-profile", profile("bad"))
        .await;
    let message = refused.assert_error(401, "ConnectorAuthenticationException");
    assert!(message.contains("refused"), "{message}");
    assert!(!message.contains("bad"), "{message}");

    let created = server
        .ok("/create-connector-profile", profile("good"))
        .await;
    assert_eq!(
        created["connectorProfileArn"],
        format!(
            "arn:aws:appflow:{}:{}:connectorprofile/dd",
            common::REGION,
            common::ACCOUNT
        )
    );
    let described = server
        .ok(
            "/describe-connector-profiles",
            json!({"connectorProfileNames": ["dd"]}),
        )
        .await;
    let text = described.to_string();
    assert!(
        !text.contains("app-key-secret") && !text.contains("\"good\""),
        "{text}"
    );
    let detail = &described["connectorProfileDetails"][0];
    assert_eq!(
        detail["credentialsArn"],
        format!(
            "arn:aws:secretsmanager:{}:{}:secret:appflow!dd",
            common::REGION,
            common::ACCOUNT
        )
    );
    assert_eq!(
        detail["connectorProfileProperties"]["Datadog"]["instanceUrl"],
        "https://api.datadoghq.com"
    );

    // The credentials at rest are sealed: the database file never holds them in clear.
    let db = std::fs::read(server.data_dir.join("metadata.sqlite")).unwrap();
    let wal = std::fs::read(server.data_dir.join("metadata.sqlite-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(
            !bytes.windows(14).any(|w| w == b"app-key-secret"),
            "credential stored in clear"
        );
    }

    // The metadata calls decrypt the profile and hand it to the connector.
    let entities = server
        .ok(
            "/list-connector-entities",
            json!({"connectorProfileName": "dd"}),
        )
        .await;
    assert_eq!(entities["connectorEntityMap"]["Metrics"][0]["name"], "cpu");

    // Update without credentials keeps the stored ones (the check sees the old key).
    server
        .ok(
            "/update-connector-profile",
            json!({"connectorProfileName": "dd", "connectionMode": "Public",
                   "connectorProfileConfig": {"connectorProfileProperties": {"Datadog": {"instanceUrl": "https://eu.datadoghq.com"}}}}),
        )
        .await;
    assert_eq!(
        h.seen_credentials.lock().unwrap().last().unwrap()["Datadog"]["apiKey"],
        "good"
    );
    let bad_update = server
        .call(
            "/update-connector-profile",
            json!({"connectorProfileName": "dd", "connectionMode": "Public",
                   "connectorProfileConfig": {
                       "connectorProfileProperties": {"Datadog": {"instanceUrl": "https://eu.datadoghq.com"}},
                       "connectorProfileCredentials": {"Datadog": {"apiKey": "bad", "applicationKey": "x"}}}}),
        )
        .await;
    bad_update.assert_error(401, "ConnectorAuthenticationException");
    let entities = server
        .ok(
            "/list-connector-entities",
            json!({"connectorProfileName": "dd"}),
        )
        .await;
    assert_eq!(
        entities["connectorEntityMap"]["Metrics"][0]["name"], "cpu",
        "a refused update changed nothing"
    );
}

#[tokio::test]
async fn connector_entities_are_paginated_and_errors_mapped() {
    let h = harness(1);
    let server = TestServer::start_with_registry(h.registry.clone()).await;
    let first = server
        .ok(
            "/list-connector-entities",
            json!({"connectorType": "S3", "entitiesPath": "bkt", "maxResults": 2}),
        )
        .await;
    assert_eq!(
        first["connectorEntityMap"]["Objects"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(first["connectorEntityMap"]["Objects"][0]["name"], "bkt/e0");
    let mut names = Vec::new();
    let mut token = first["nextToken"].as_str().map(str::to_string);
    names.extend(
        first["connectorEntityMap"]["Objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].clone()),
    );
    while let Some(next) = token {
        let page = server
            .ok("/list-connector-entities", json!({"connectorType": "S3", "entitiesPath": "bkt", "maxResults": 2, "nextToken": next}))
            .await;
        names.extend(
            page["connectorEntityMap"]["Objects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["name"].clone()),
        );
        token = page["nextToken"].as_str().map(str::to_string);
    }
    assert_eq!(names.len(), 5);
    assert_eq!(names[4], "bkt/e4");

    let fields = server
        .ok(
            "/describe-connector-entity",
            json!({"connectorType": "S3", "connectorEntityName": "x"}),
        )
        .await;
    assert_eq!(fields["connectorEntityFields"][0]["identifier"], "id");
    server
        .call(
            "/describe-connector-entity",
            json!({"connectorType": "S3", "connectorEntityName": "missing"}),
        )
        .await
        .assert_error(404, "ResourceNotFoundException");
    server
        .call(
            "/describe-connector-entity",
            json!({"connectorEntityName": "x"}),
        )
        .await
        .assert_error(400, "ValidationException");
    server
        .call(
            "/list-connector-entities",
            json!({"connectorType": "Salesforce"}),
        )
        .await
        .assert_error(404, "ResourceNotFoundException");
    server
        .call(
            "/list-connector-entities",
            json!({"connectorProfileName": "ghost"}),
        )
        .await
        .assert_error(404, "ResourceNotFoundException");
    server
        .ok(
            "/reset-connector-metadata-cache",
            json!({"connectorType": "S3"}),
        )
        .await;
    server
        .call("/reset-connector-metadata-cache", json!({}))
        .await
        .assert_error(400, "ValidationException");
}

#[tokio::test]
async fn update_flow_cannot_change_the_source_connector() {
    let h = harness(1);
    let server = TestServer::start_with_registry(h.registry.clone()).await;
    server.ok("/create-flow", s3_flow("ff", "src", "dst")).await;
    server
        .ok(
            "/create-connector-profile",
            json!({"connectorProfileName": "dd", "connectorType": "Datadog", "connectionMode": "Public",
                "connectorProfileConfig": {
                    "connectorProfileProperties": {"Datadog": {"instanceUrl": "https://api.datadoghq.com"}},
                    "connectorProfileCredentials": {"Datadog": {"apiKey": "good", "applicationKey": "a"}}}}),
        )
        .await;
    let mut update = s3_flow("ff", "src", "dst");
    update["sourceFlowConfig"] = json!({"connectorType": "Datadog", "connectorProfileName": "dd",
        "sourceConnectorProperties": {"Datadog": {"object": "metrics"}}});
    for task in update["tasks"].as_array_mut().unwrap() {
        let operator = task["connectorOperator"]["S3"].take();
        task["connectorOperator"] = json!({"Datadog": operator});
    }
    // The same definition is a valid new flow...
    let mut create = update.clone();
    create["flowName"] = json!("from-datadog");
    server.ok("/create-flow", create).await;
    // ...but an existing flow keeps its source connector.
    let message = server
        .call("/update-flow", update)
        .await
        .assert_error(400, "ValidationException")
        .to_string();
    assert!(
        message.contains("source connector of flow ff cannot change"),
        "{message}"
    );
    let listed = server.ok("/list-flows", json!({})).await;
    let sources: Vec<&serde_json::Value> = listed["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["sourceConnectorType"])
        .collect();
    assert_eq!(sources, vec![&json!("S3"), &json!("Datadog")]);

    // The profile is in use now.
    server
        .call(
            "/delete-connector-profile",
            json!({"connectorProfileName": "dd"}),
        )
        .await
        .assert_error(409, "ConflictException");
    server
        .ok(
            "/delete-connector-profile",
            json!({"connectorProfileName": "dd", "forceDelete": true}),
        )
        .await;
}
