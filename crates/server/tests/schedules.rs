//! Scheduled flows end to end, in process, on a manual clock: ticks fire runs of the real S3
//! connector, incremental windows deliver every record exactly once (edges, sub-millisecond
//! and offset timestamps, a failed run followed by a success), a tick is skipped while the
//! previous run is still going, repeated failures suspend the flow, a restarted server
//! catches up once with a window covering the downtime, and a run cut short by a crash is
//! recorded as failed without moving the watermark.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use common::{TestServer, Tweak, files_under};
use serde_json::{Value, json};
use sluice_api_model as model;
use sluice_connector_api::{
    BatchStream, Connector, ConnectorError, ConnectorRegistry, DestinationWriter, EntityContext,
    EntityListing, ReadRequest, WriteRequest,
};
use sluice_scheduler::ManualClock;

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// Activation time of every test: the first tick of a rate fires right then.
fn t0() -> DateTime<Utc> {
    at("2030-01-01T00:00:00Z")
}

fn with_clock(clock: &ManualClock) -> Tweak {
    let clock = clock.clone();
    Box::new(move |config| {
        config.clock = Arc::new(clock);
        config.scheduler_poll = Some(Duration::from_millis(20));
    })
}

/// A scheduled, incremental S3 -> S3 flow over `src/in` keyed on the `updated` column.
fn scheduled_flow(name: &str, extra: Value) -> Value {
    let mut scheduled = json!({
        "scheduleExpression": "rate(1minutes)",
        "dataPullMode": "Incremental",
        "firstExecutionFrom": at("2029-12-31T23:00:00Z").timestamp(),
    });
    for (key, value) in extra.as_object().unwrap() {
        scheduled[key] = value.clone();
    }
    json!({
        "flowName": name,
        "triggerConfig": {
            "triggerType": "Scheduled",
            "triggerProperties": {"Scheduled": scheduled}
        },
        "sourceFlowConfig": {
            "connectorType": "S3",
            "sourceConnectorProperties": {"S3": {
                "bucketName": "src",
                "bucketPrefix": "in",
                "s3InputFormatConfig": {"s3InputFileType": "CSV"}
            }},
            "incrementalPullConfig": {"datetimeTypeFieldName": "updated"}
        },
        "destinationFlowConfigList": [{
            "connectorType": "S3",
            "destinationConnectorProperties": {"S3": {
                "bucketName": "dst",
                "bucketPrefix": "out",
                "s3OutputFormatConfig": {"fileType": "JSON", "aggregationConfig": {"aggregationType": "None"}}
            }}
        }],
        "tasks": [
            {"sourceFields": ["id"], "connectorOperator": {"S3": "PROJECTION"}, "taskType": "Filter"},
            {"sourceFields": ["id"], "connectorOperator": {"S3": "NO_OP"}, "destinationField": "id",
             "taskType": "Map", "taskProperties": {"SOURCE_DATA_TYPE": "string", "DESTINATION_DATA_TYPE": "string"}}
        ]
    })
}

/// Writes `src/in/<file>` with `(id, updated)` rows.
fn write_source(buckets: &Path, file: &str, rows: &[(&str, &str)]) {
    let dir = buckets.join("src/in");
    std::fs::create_dir_all(&dir).unwrap();
    let mut text = String::from("id,updated\n");
    for (id, updated) in rows {
        text.push_str(&format!("{id},{updated}\n"));
    }
    std::fs::write(dir.join(file), text).unwrap();
}

/// The ids a run wrote (JSON Lines under `dst/out/<flow>/<execution id>`).
fn delivered(buckets: &Path, flow: &str, execution_id: &str) -> Vec<String> {
    let dir: PathBuf = buckets.join("dst/out").join(flow).join(execution_id);
    let mut ids = Vec::new();
    for file in files_under(&dir) {
        let text = std::fs::read_to_string(dir.join(&file)).unwrap();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let row: Value = serde_json::from_str(line).unwrap();
            ids.push(row["id"].as_str().unwrap().to_string());
        }
    }
    ids.sort();
    ids
}

/// The flow's execution records, oldest first.
async fn runs(server: &TestServer, flow: &str) -> Vec<Value> {
    let body = server
        .ok(
            "/describe-flow-execution-records",
            json!({"flowName": flow}),
        )
        .await;
    let mut runs = body["flowExecutions"].as_array().unwrap().clone();
    runs.sort_by(|a, b| {
        a["startedAt"]
            .as_f64()
            .partial_cmp(&b["startedAt"].as_f64())
            .unwrap()
    });
    runs
}

/// Waits until the flow has `count` runs and none is in progress; returns them oldest first.
async fn settled_runs(server: &TestServer, flow: &str, count: usize) -> Vec<Value> {
    for _ in 0..400 {
        let runs = runs(server, flow).await;
        let finished = runs.iter().all(|run| {
            !matches!(
                run["executionStatus"].as_str(),
                Some("InProgress" | "CancelStarted")
            )
        });
        if runs.len() == count && finished {
            return runs;
        }
        assert!(runs.len() <= count, "more runs than expected: {runs:#?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("flow {flow} did not reach {count} finished runs");
}

/// Gives the scheduler time to act on a clock change (it polls every 20 ms).
async fn let_scheduler_look() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

fn pull_window(run: &Value) -> (DateTime<Utc>, DateTime<Utc>) {
    let time = |value: &Value| {
        DateTime::from_timestamp_millis((value.as_f64().unwrap() * 1000.0).round() as i64).unwrap()
    };
    (
        time(&run["dataPullStartTime"]),
        time(&run["dataPullEndTime"]),
    )
}

async fn create_and_start(server: &TestServer, flow: Value) {
    let name = flow["flowName"].as_str().unwrap().to_string();
    let created = server.ok("/create-flow", flow).await;
    assert_eq!(created["flowStatus"], "Draft");
    let started = server.ok("/start-flow", json!({"flowName": name})).await;
    assert_eq!(started["flowStatus"], "Active");
}

#[tokio::test]
async fn incremental_windows_deliver_every_record_exactly_once() {
    let clock = ManualClock::new(t0());
    let server = TestServer::start_with(None, with_clock(&clock)).await;
    let buckets = server.buckets();
    write_source(
        &buckets,
        "a.csv",
        &[
            ("before-first-window", "2029-12-31T22:59:59.999Z"),
            ("first-window", "2029-12-31T23:30:00Z"),
            ("at-edge-1", "2030-01-01T00:00:00Z"),
            ("sub-ms-before-edge-2", "2030-01-01T00:00:59.9999999Z"),
            ("offset-at-edge-2", "2030-01-01T01:01:00+01:00"),
            ("epoch-in-3", "1893456090000"),
            ("in-the-future", "2030-01-01T00:03:00Z"),
        ],
    );
    create_and_start(&server, scheduled_flow("inc", json!({}))).await;

    // The rate fires at the activation: window [firstExecutionFrom, t0).
    let first = settled_runs(&server, "inc", 1).await;
    assert_eq!(first[0]["executionStatus"], "Successful", "{first:#?}");
    assert_eq!(pull_window(&first[0]), (at("2029-12-31T23:00:00Z"), t0()));
    let id1 = first[0]["executionId"].as_str().unwrap().to_string();
    assert_eq!(delivered(&buckets, "inc", &id1), ["first-window"]);

    clock.set(t0() + TimeDelta::minutes(1));
    let second = settled_runs(&server, "inc", 2).await;
    assert_eq!(
        pull_window(&second[1]),
        (t0(), t0() + TimeDelta::minutes(1))
    );
    let id2 = second[1]["executionId"].as_str().unwrap().to_string();
    assert_eq!(
        delivered(&buckets, "inc", &id2),
        ["at-edge-1", "sub-ms-before-edge-2"]
    );

    // A record modified while the previous window was read is picked up by the next one.
    write_source(
        &buckets,
        "b.csv",
        &[("late-write", "2030-01-01T00:01:30.000001+00:00")],
    );
    clock.set(t0() + TimeDelta::minutes(2));
    let third = settled_runs(&server, "inc", 3).await;
    let id3 = third[2]["executionId"].as_str().unwrap().to_string();
    assert_eq!(
        delivered(&buckets, "inc", &id3),
        ["epoch-in-3", "late-write", "offset-at-edge-2"]
    );
    let described = server
        .ok("/describe-flow", json!({"flowName": "inc"}))
        .await;
    assert_eq!(described["flowStatus"], "Active");
    assert_eq!(
        described["lastRunExecutionDetails"]["mostRecentExecutionStatus"],
        "Successful"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_failed_run_does_not_move_the_watermark() {
    let clock = ManualClock::new(t0());
    let server = TestServer::start_with(None, with_clock(&clock)).await;
    let buckets = server.buckets();
    // No source bucket yet: the first run fails.
    create_and_start(&server, scheduled_flow("retry", json!({}))).await;
    let first = settled_runs(&server, "retry", 1).await;
    assert_eq!(first[0]["executionStatus"], "Error", "{first:#?}");
    assert_eq!(pull_window(&first[0]), (at("2029-12-31T23:00:00Z"), t0()));

    write_source(
        &buckets,
        "a.csv",
        &[
            ("missed-by-the-failure", "2029-12-31T23:59:59.999999Z"),
            ("second-window", "2030-01-01T00:00:30+00:00"),
        ],
    );
    clock.set(t0() + TimeDelta::minutes(1));
    let second = settled_runs(&server, "retry", 2).await;
    assert_eq!(second[1]["executionStatus"], "Successful", "{second:#?}");
    // The window reaches back to where the last success (none yet) left off.
    assert_eq!(
        pull_window(&second[1]),
        (at("2029-12-31T23:00:00Z"), t0() + TimeDelta::minutes(1))
    );
    let id = second[1]["executionId"].as_str().unwrap().to_string();
    assert_eq!(
        delivered(&buckets, "retry", &id),
        ["missed-by-the-failure", "second-window"]
    );
    server.stop().await;
}

#[tokio::test]
async fn consecutive_failures_suspend_the_flow() {
    let clock = ManualClock::new(t0());
    let server = TestServer::start_with(None, with_clock(&clock)).await;
    create_and_start(
        &server,
        scheduled_flow("fragile", json!({"flowErrorDeactivationThreshold": 2})),
    )
    .await;
    let first = settled_runs(&server, "fragile", 1).await;
    assert_eq!(first[0]["executionStatus"], "Error");
    let described = server
        .ok("/describe-flow", json!({"flowName": "fragile"}))
        .await;
    assert_eq!(
        described["flowStatus"], "Active",
        "one failure is not enough"
    );

    clock.set(t0() + TimeDelta::minutes(1));
    settled_runs(&server, "fragile", 2).await;
    let mut described = Value::Null;
    for _ in 0..100 {
        described = server
            .ok("/describe-flow", json!({"flowName": "fragile"}))
            .await;
        if described["flowStatus"] == "Suspended" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(described["flowStatus"], "Suspended", "{described:#?}");
    let message = described["flowStatusMessage"].as_str().unwrap();
    assert!(message.contains("2 consecutive failed runs"), "{message}");

    // Suspended: later ticks run nothing.
    clock.set(t0() + TimeDelta::minutes(5));
    let_scheduler_look().await;
    assert_eq!(runs(&server, "fragile").await.len(), 2);

    // StartFlow reactivates it and forgives the failures.
    write_source(&server.buckets(), "a.csv", &[("x", "2030-01-01T00:04:00Z")]);
    let started = server
        .ok("/start-flow", json!({"flowName": "fragile"}))
        .await;
    assert_eq!(started["flowStatus"], "Active");
    let third = settled_runs(&server, "fragile", 3).await;
    assert_eq!(third[2]["executionStatus"], "Successful", "{third:#?}");
    server.stop().await;
}

#[tokio::test]
async fn stop_flow_stops_the_ticks_and_end_time_must_be_ahead() {
    let clock = ManualClock::new(t0());
    let server = TestServer::start_with(None, with_clock(&clock)).await;
    write_source(&server.buckets(), "a.csv", &[("a", "2030-01-01T00:00:10Z")]);
    create_and_start(&server, scheduled_flow("stoppable", json!({}))).await;
    settled_runs(&server, "stoppable", 1).await;
    let stopped = server
        .ok("/stop-flow", json!({"flowName": "stoppable"}))
        .await;
    assert_eq!(stopped["flowStatus"], "Suspended");
    clock.set(t0() + TimeDelta::minutes(2));
    let_scheduler_look().await;
    assert_eq!(runs(&server, "stoppable").await.len(), 1);

    // An end time that the (manual) clock has passed is refused at creation...
    let past_end = scheduled_flow(
        "ended",
        json!({
            "scheduleStartTime": at("2029-06-01T00:00:00Z").timestamp(),
            "scheduleEndTime": at("2030-01-01T00:02:00Z").timestamp(),
        }),
    );
    let refused = server.call("/create-flow", past_end.clone()).await;
    let message = refused.assert_error(400, "ValidationException");
    assert!(message.contains("scheduleEndTime"), "{message}");
    // ...and at activation, when it passed since.
    clock.set(t0() + TimeDelta::minutes(1));
    server.ok("/create-flow", past_end).await;
    clock.set(t0() + TimeDelta::minutes(3));
    let refused = server
        .call("/start-flow", json!({"flowName": "ended"}))
        .await;
    let message = refused.assert_error(400, "ValidationException");
    assert!(message.contains("scheduleEndTime"), "{message}");
    assert_eq!(
        server
            .ok("/describe-flow", json!({"flowName": "ended"}))
            .await["flowStatus"],
        "Draft"
    );

    // Deleting an active scheduled flow stops its schedule too.
    server
        .ok("/start-flow", json!({"flowName": "stoppable"}))
        .await;
    settled_runs(&server, "stoppable", 2).await;
    server
        .ok("/delete-flow", json!({"flowName": "stoppable"}))
        .await;
    clock.set(t0() + TimeDelta::minutes(10));
    let_scheduler_look().await;
    let missing = server
        .call(
            "/describe-flow-execution-records",
            json!({"flowName": "stoppable"}),
        )
        .await;
    missing.assert_error(404, "ResourceNotFoundException");
    server.stop().await;
}

#[tokio::test]
async fn a_restarted_server_catches_up_once_with_a_window_over_the_downtime() {
    let clock = ManualClock::new(t0());
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(Some(dir.path().to_path_buf()), with_clock(&clock)).await;
    let buckets = server.buckets();
    write_source(
        &buckets,
        "a.csv",
        &[
            ("before", "2029-12-31T23:59:00Z"),
            ("during-downtime", "2030-01-01T00:02:30.25-00:00"),
            ("at-catch-up-tick", "2030-01-01T00:05:00Z"),
        ],
    );
    create_and_start(&server, scheduled_flow("durable", json!({}))).await;
    let first = settled_runs(&server, "durable", 1).await;
    let id1 = first[0]["executionId"].as_str().unwrap().to_string();
    assert_eq!(delivered(&buckets, "durable", &id1), ["before"]);
    server.stop().await;

    // Five ticks pass while the server is down.
    clock.set(t0() + TimeDelta::minutes(5) + TimeDelta::seconds(20));
    let server = TestServer::start_with(Some(dir.path().to_path_buf()), with_clock(&clock)).await;
    let after = settled_runs(&server, "durable", 2).await;
    let_scheduler_look().await;
    assert_eq!(
        runs(&server, "durable").await.len(),
        2,
        "one catch-up run only"
    );
    assert_eq!(pull_window(&after[1]), (t0(), t0() + TimeDelta::minutes(5)));
    let id2 = after[1]["executionId"].as_str().unwrap().to_string();
    assert_eq!(delivered(&buckets, "durable", &id2), ["during-downtime"]);

    clock.set(t0() + TimeDelta::minutes(6));
    let later = settled_runs(&server, "durable", 3).await;
    let id3 = later[2]["executionId"].as_str().unwrap().to_string();
    assert_eq!(delivered(&buckets, "durable", &id3), ["at-catch-up-tick"]);
    server.stop().await;
}

/// The real S3 connector, whose reads wait for a permit of `gate`.
#[derive(Debug)]
struct Gated {
    inner: Arc<dyn Connector>,
    gate: Arc<tokio::sync::Semaphore>,
}

#[async_trait]
impl Connector for Gated {
    fn connector_type(&self) -> model::ConnectorType {
        self.inner.connector_type()
    }

    fn configuration(&self) -> model::ConnectorConfiguration {
        self.inner.configuration()
    }

    async fn list_entities(&self, ctx: &EntityContext) -> Result<EntityListing, ConnectorError> {
        self.inner.list_entities(ctx).await
    }

    async fn describe_entity(
        &self,
        ctx: &EntityContext,
        entity: &str,
    ) -> Result<Vec<model::ConnectorEntityField>, ConnectorError> {
        self.inner.describe_entity(ctx, entity).await
    }

    async fn read(&self, request: ReadRequest) -> Result<BatchStream, ConnectorError> {
        self.gate
            .acquire()
            .await
            .map_err(|_| ConnectorError::internal("gate closed"))?
            .forget();
        self.inner.read(request).await
    }

    async fn open_writer(
        &self,
        request: WriteRequest,
    ) -> Result<Box<dyn DestinationWriter>, ConnectorError> {
        self.inner.open_writer(request).await
    }
}

#[derive(Debug)]
struct GatedRegistry(Arc<dyn Connector>);

impl ConnectorRegistry for GatedRegistry {
    fn get(
        &self,
        connector_type: model::ConnectorType,
        label: Option<&str>,
    ) -> Option<Arc<dyn Connector>> {
        (connector_type == model::ConnectorType::S3 && label.is_none()).then(|| self.0.clone())
    }

    fn all(&self) -> Vec<Arc<dyn Connector>> {
        vec![self.0.clone()]
    }
}

#[tokio::test]
async fn a_tick_is_skipped_while_the_previous_run_is_in_progress() {
    let clock = ManualClock::new(t0());
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let registry = gated_registry(&dir.path().join("buckets"), gate.clone());
    let tweak_clock = with_clock(&clock);
    let server = TestServer::start_with(
        Some(dir.path().to_path_buf()),
        Box::new(move |config| {
            tweak_clock(config);
            config.connectors = Some(registry);
        }),
    )
    .await;
    let buckets = server.buckets();
    write_source(
        &buckets,
        "a.csv",
        &[
            ("w1", "2029-12-31T23:59:59Z"),
            ("w2", "2030-01-01T00:01:00Z"),
        ],
    );
    create_and_start(&server, scheduled_flow("slow", json!({}))).await;
    // The first run hangs in its read; the next tick comes and goes.
    let mut first = Vec::new();
    for _ in 0..100 {
        first = runs(&server, "slow").await;
        if !first.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["executionStatus"], "InProgress");
    clock.set(t0() + TimeDelta::minutes(1));
    let_scheduler_look().await;
    let during = runs(&server, "slow").await;
    assert_eq!(during.len(), 1, "the tick was skipped: {during:#?}");

    gate.add_permits(1);
    let done = settled_runs(&server, "slow", 1).await;
    assert_eq!(done[0]["executionStatus"], "Successful");
    let id1 = done[0]["executionId"].as_str().unwrap().to_string();
    assert_eq!(delivered(&buckets, "slow", &id1), ["w1"]);

    // The skipped tick's records are read by the next run: its window starts at the watermark.
    gate.add_permits(1);
    clock.set(t0() + TimeDelta::minutes(2));
    let next = settled_runs(&server, "slow", 2).await;
    assert_eq!(pull_window(&next[1]), (t0(), t0() + TimeDelta::minutes(2)));
    let id2 = next[1]["executionId"].as_str().unwrap().to_string();
    assert_eq!(delivered(&buckets, "slow", &id2), ["w2"]);
    server.stop().await;
}

#[tokio::test]
async fn update_flow_replans_an_active_schedule() {
    let clock = ManualClock::new(t0());
    let server = TestServer::start_with(None, with_clock(&clock)).await;
    write_source(&server.buckets(), "a.csv", &[("a", "2030-01-01T00:00:10Z")]);
    create_and_start(&server, scheduled_flow("replanned", json!({}))).await;
    settled_runs(&server, "replanned", 1).await;
    // Terraform's lowercase dataPullMode is accepted and echoed canonical.
    let update = scheduled_flow(
        "replanned",
        json!({"scheduleExpression": "rate(1hours)", "dataPullMode": "incremental"}),
    );
    let updated = server.ok("/update-flow", update).await;
    assert_eq!(updated["flowStatus"], "Active");
    let described = server
        .ok("/describe-flow", json!({"flowName": "replanned"}))
        .await;
    let scheduled = &described["triggerConfig"]["triggerProperties"]["Scheduled"];
    assert_eq!(scheduled["dataPullMode"], "Incremental");
    assert_eq!(scheduled["scheduleExpression"], "rate(1hours)");
    // Hourly now: a minute later nothing runs.
    clock.set(t0() + TimeDelta::minutes(1));
    let_scheduler_look().await;
    assert_eq!(runs(&server, "replanned").await.len(), 1);
    clock.set(t0() + TimeDelta::hours(1));
    let second = settled_runs(&server, "replanned", 2).await;
    assert_eq!(pull_window(&second[1]), (t0(), t0() + TimeDelta::hours(1)));
    server.stop().await;
}

fn gated_registry(buckets: &Path, gate: Arc<tokio::sync::Semaphore>) -> Arc<dyn ConnectorRegistry> {
    let storage = Arc::new(sluice_storage::Storage::new(
        sluice_storage::StorageConfig::local(buckets),
    ));
    let s3 = sluice_connectors::Registry::new(storage)
        .get(model::ConnectorType::S3, None)
        .unwrap();
    Arc::new(GatedRegistry(Arc::new(Gated { inner: s3, gate })))
}

/// Starts flow `crashy` (scheduled, `trigger` added to its trigger properties) on a server
/// over `dir`, lets its first run succeed and kills the server during the second one, which
/// hangs in its read. Returns the second run's execution id.
fn crash_during_second_run(
    dir: &std::path::Path,
    buckets: &std::path::Path,
    trigger: serde_json::Value,
) -> serde_json::Value {
    // The first server lets one read through: the first run succeeds, the second hangs. It
    // lives in a runtime of its own, shut down mid-run the way a killed process stops: none of
    // its tasks gets to write anything more.
    let data_dir = dir.to_path_buf();
    let first_buckets = buckets.to_path_buf();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let interrupted = runtime.block_on(async move {
            let clock = ManualClock::new(t0());
            let registry = gated_registry(&first_buckets, Arc::new(tokio::sync::Semaphore::new(1)));
            let tweak_clock = with_clock(&clock);
            let server = TestServer::start_with(
                Some(data_dir),
                Box::new(move |config| {
                    tweak_clock(config);
                    config.connectors = Some(registry);
                }),
            )
            .await;
            create_and_start(&server, scheduled_flow("crashy", trigger)).await;
            let first = settled_runs(&server, "crashy", 1).await;
            assert_eq!(first[0]["executionStatus"], "Successful");
            clock.set(t0() + TimeDelta::minutes(1));
            let mut hanging = Vec::new();
            for _ in 0..100 {
                hanging = runs(&server, "crashy").await;
                if hanging.len() == 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(hanging[1]["executionStatus"], "InProgress", "{hanging:#?}");
            server.crash();
            hanging[1]["executionId"].clone()
        });
        runtime.shutdown_background();
        interrupted
    })
    .join()
    .unwrap()
}

#[tokio::test]
async fn a_run_interrupted_by_a_crash_fails_and_leaves_the_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let buckets = dir.path().join("buckets");
    write_source(
        &buckets,
        "a.csv",
        &[
            ("w1", "2029-12-31T23:59:59Z"),
            ("w2", "2030-01-01T00:00:30Z"),
            ("w3", "2030-01-01T00:01:30Z"),
        ],
    );
    let interrupted = crash_during_second_run(dir.path(), &buckets, json!({}));

    // The next process finds the run unfinished.
    let clock = ManualClock::new(t0() + TimeDelta::minutes(1) + TimeDelta::seconds(10));
    let server = TestServer::start_with(Some(dir.path().to_path_buf()), with_clock(&clock)).await;
    let after = runs(&server, "crashy").await;
    assert_eq!(after.len(), 2);
    assert_eq!(after[1]["executionId"], interrupted);
    assert_eq!(after[1]["executionStatus"], "Error");
    let message = after[1]["executionResult"]["errorInfo"]["executionMessage"]
        .as_str()
        .unwrap();
    assert!(message.contains("interrupted"), "{message}");
    let_scheduler_look().await;
    assert_eq!(
        runs(&server, "crashy").await.len(),
        2,
        "the crashed tick is not rerun"
    );

    // The watermark did not move: the next window starts where the last success ended.
    clock.set(t0() + TimeDelta::minutes(2));
    let next = settled_runs(&server, "crashy", 3).await;
    assert_eq!(next[2]["executionStatus"], "Successful", "{next:#?}");
    assert_eq!(pull_window(&next[2]), (t0(), t0() + TimeDelta::minutes(2)));
    let id = next[2]["executionId"].as_str().unwrap().to_string();
    assert_eq!(delivered(&buckets, "crashy", &id), ["w2", "w3"]);
    server.stop().await;
}

#[tokio::test]
async fn runs_interrupted_by_crashes_count_towards_the_deactivation_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let buckets = dir.path().join("buckets");
    write_source(&buckets, "a.csv", &[("w1", "2029-12-31T23:59:59Z")]);
    let interrupted = crash_during_second_run(
        dir.path(),
        &buckets,
        json!({"flowErrorDeactivationThreshold": 1}),
    );

    // Starting again, the crashed run is the flow's first failure in a row: it is suspended
    // instead of firing again.
    let clock = ManualClock::new(t0() + TimeDelta::minutes(1) + TimeDelta::seconds(10));
    let server = TestServer::start_with(Some(dir.path().to_path_buf()), with_clock(&clock)).await;
    let described = server
        .ok("/describe-flow", json!({"flowName": "crashy"}))
        .await;
    assert_eq!(described["flowStatus"], "Suspended", "{described:#?}");
    let message = described["flowStatusMessage"].as_str().unwrap();
    assert!(message.contains("1 consecutive failed runs"), "{message}");
    let after = runs(&server, "crashy").await;
    assert_eq!(after[1]["executionId"], interrupted);
    assert_eq!(after[1]["executionStatus"], "Error");
    clock.set(t0() + TimeDelta::minutes(3));
    let_scheduler_look().await;
    assert_eq!(
        runs(&server, "crashy").await.len(),
        2,
        "a suspended flow does not fire"
    );
    server.stop().await;
}

#[tokio::test]
async fn schedule_start_time_is_honoured() {
    let clock = ManualClock::new(t0());
    let server = TestServer::start_with(None, with_clock(&clock)).await;
    write_source(&server.buckets(), "a.csv", &[("a", "2030-01-01T00:05:00Z")]);
    let start = t0() + TimeDelta::minutes(10);
    create_and_start(
        &server,
        scheduled_flow(
            "later",
            json!({"scheduleStartTime": start.timestamp(), "scheduleExpression": "rate(5minutes)"}),
        ),
    )
    .await;
    let_scheduler_look().await;
    clock.set(start - TimeDelta::seconds(1));
    let_scheduler_look().await;
    assert!(
        runs(&server, "later").await.is_empty(),
        "nothing before the start time"
    );
    clock.set(start);
    let first = settled_runs(&server, "later", 1).await;
    assert_eq!(pull_window(&first[0]), (at("2029-12-31T23:00:00Z"), start));
    // Periods count from the start time.
    clock.set(start + TimeDelta::minutes(4));
    let_scheduler_look().await;
    assert_eq!(runs(&server, "later").await.len(), 1);
    clock.set(start + TimeDelta::minutes(5));
    let second = settled_runs(&server, "later", 2).await;
    assert_eq!(
        pull_window(&second[1]),
        (start, start + TimeDelta::minutes(5))
    );
    server.stop().await;
}
