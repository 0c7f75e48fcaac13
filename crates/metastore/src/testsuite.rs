//! The backend-independent contract of [`MetadataStore`], as plain async functions.
//!
//! Every backend runs each function against a fresh, empty store (the functions assert on
//! whole listings, so they do not share a store). They panic on the first violated rule, like
//! any test. Enabled by the `testsuite` feature so that other backends, living elsewhere, can
//! run the exact same checks.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use crate::{
    ApiKeyRecord, AuditEntry, ConnectorRecord, FlowRecord, IdempotencyRecord, MetadataStore,
    ProfileRecord, RunRecord, ScheduleUpdate, StoreError,
};

/// A fixed instant with sub-second digits, `offset_secs` after 2023-11-14T22:13:20.123456Z.
pub fn at(offset_secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + offset_secs, 123_456_000)
        .expect("test instants are in range")
}

/// A flow record as the server would store it.
pub fn flow(name: &str, status: &str) -> FlowRecord {
    let arn = format!("arn:aws:appflow:us-east-1:123456789012:flow/{name}");
    FlowRecord {
        name: name.to_owned(),
        arn: arn.clone(),
        status: status.to_owned(),
        trigger_type: "OnDemand".to_owned(),
        document: json!({
            "flowArn": arn,
            "flowName": name,
            "flowStatus": status,
            "triggerConfig": {"triggerType": "OnDemand"},
            "tags": {"team": "data", "empty": ""},
        }),
        created_at: at(0),
        updated_at: at(0),
    }
}

/// A connector profile record with sealed-looking credentials.
pub fn profile(name: &str) -> ProfileRecord {
    ProfileRecord {
        name: name.to_owned(),
        arn: format!("arn:aws:appflow:us-east-1:123456789012:connectorprofile/{name}"),
        connector_type: "Salesforce".to_owned(),
        connector_label: None,
        document: json!({"connectorProfileName": name, "connectionMode": "Public"}),
        sealed_credentials: vec![1, 0, 255, 42],
        created_at: at(0),
        updated_at: at(0),
    }
}

/// A run record started `started` seconds after [`at`]`(0)`.
pub fn run(flow_name: &str, execution_id: &str, started: i64, status: &str) -> RunRecord {
    RunRecord {
        flow_name: flow_name.to_owned(),
        execution_id: execution_id.to_owned(),
        status: status.to_owned(),
        started_at: at(started),
        updated_at: at(started),
        document: json!({"executionId": execution_id, "executionStatus": status}),
    }
}

/// A registered connector record.
pub fn connector(label: &str) -> ConnectorRecord {
    ConnectorRecord {
        label: label.to_owned(),
        arn: format!("arn:aws:appflow:us-east-1:123456789012:connector/{label}"),
        document: json!({"connectorLabel": label, "connectorProvisioningType": "LAMBDA"}),
        created_at: at(0),
    }
}

/// An audit entry for `operation`, with every optional field set.
pub fn audit(request_id: &str, operation: &str, status: u16) -> AuditEntry {
    AuditEntry {
        time: at(0),
        request_id: request_id.to_owned(),
        operation: operation.to_owned(),
        access_key_id: Some("AKIDEXAMPLE".to_owned()),
        source_ip: Some("127.0.0.1".to_owned()),
        user_agent: Some("Boto3/1.44.5".to_owned()),
        status,
        error_code: (status >= 400).then(|| "ValidationException".to_owned()),
        resource: Some("arn:aws:appflow:us-east-1:123456789012:flow/f".to_owned()),
        request_parameters: json!({"flowName": "f", "clientToken": "**REDACTED**"}),
    }
}

fn names(flows: &[FlowRecord]) -> Vec<&str> {
    flows.iter().map(|f| f.name.as_str()).collect()
}

fn assert_already_exists(result: Result<(), StoreError>, entity: &str, name: &str) {
    match result {
        Err(StoreError::AlreadyExists { entity: e, name: n }) if e == entity && n == name => {}
        other => panic!("expected AlreadyExists {{ {entity}, {name} }}, got {other:?}"),
    }
}

fn assert_not_found(result: Result<(), StoreError>, entity: &str, name: &str) {
    match result {
        Err(StoreError::NotFound { entity: e, name: n }) if e == entity && n == name => {}
        other => panic!("expected NotFound {{ {entity}, {name} }}, got {other:?}"),
    }
}

/// Insert, read, update and delete flows, with the duplicate and missing cases.
pub async fn flows_crud(store: &dyn MetadataStore) {
    let original = flow("my-flow", "Active");
    assert_eq!(store.get_flow("my-flow").await.unwrap(), None);
    store.insert_flow(&original).await.unwrap();
    assert_eq!(
        store.get_flow("my-flow").await.unwrap(),
        Some(original.clone())
    );

    assert_already_exists(store.insert_flow(&original).await, "flow", "my-flow");
    let mut same_arn = flow("other-flow", "Active");
    same_arn.arn.clone_from(&original.arn);
    assert!(
        matches!(
            store.insert_flow(&same_arn).await,
            Err(StoreError::Conflict(_))
        ),
        "an ARN must not be shared by two flows"
    );
    assert_eq!(store.get_flow("other-flow").await.unwrap(), None);

    let mut updated = original.clone();
    updated.status = "Suspended".to_owned();
    updated.trigger_type = "Scheduled".to_owned();
    updated.document["flowStatus"] = json!("Suspended");
    updated.document["tags"] = json!({"team": "platform"});
    updated.updated_at = at(60);
    updated.created_at = at(-1000); // ignored: creation time is immutable
    store.update_flow(&updated).await.unwrap();
    let stored = store.get_flow("my-flow").await.unwrap().unwrap();
    assert_eq!(stored.status, "Suspended");
    assert_eq!(stored.trigger_type, "Scheduled");
    assert_eq!(stored.document, updated.document);
    assert_eq!(stored.updated_at, at(60));
    assert_eq!(stored.created_at, original.created_at);

    assert_not_found(
        store.update_flow(&flow("missing", "Active")).await,
        "flow",
        "missing",
    );
    assert_eq!(store.get_flow("missing").await.unwrap(), None);

    assert!(store.delete_flow("my-flow").await.unwrap());
    assert!(!store.delete_flow("my-flow").await.unwrap());
    assert_eq!(store.get_flow("my-flow").await.unwrap(), None);
    // The name and ARN are free again.
    store.insert_flow(&original).await.unwrap();
}

/// Flows list in byte order of their names, page by page, and by status.
pub async fn flow_pagination(store: &dyn MetadataStore) {
    let inserted = [
        "z",
        "a",
        "B",
        "flow-10",
        "é-accent",
        "flow-9",
        "日本語",
        "a-b",
        "Z",
    ];
    for (index, name) in inserted.iter().enumerate() {
        let status = if index % 2 == 0 { "Active" } else { "Draft" };
        store.insert_flow(&flow(name, status)).await.unwrap();
    }
    let mut expected: Vec<&str> = inserted.to_vec();
    expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(
        expected[..3],
        ["B", "Z", "a"],
        "byte order puts upper case first"
    );

    let everything = store.list_flows(None, 100).await.unwrap();
    assert_eq!(names(&everything), expected);
    assert!(store.list_flows(None, 0).await.unwrap().is_empty());
    assert_eq!(
        names(&store.list_flows(None, usize::MAX).await.unwrap()),
        expected
    );

    for page_size in [1, 2, 4, 9, 10] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = store
                .list_flows(cursor.as_deref(), page_size)
                .await
                .unwrap();
            assert!(page.len() <= page_size);
            let Some(last) = page.last() else { break };
            cursor = Some(last.name.clone());
            seen.extend(page.into_iter().map(|f| f.name));
        }
        assert_eq!(seen, expected, "page size {page_size}");
    }

    // A cursor needs not be an existing name.
    assert_eq!(
        names(&store.list_flows(Some("b"), 2).await.unwrap()),
        ["flow-10", "flow-9"]
    );
    assert!(
        store
            .list_flows(Some("\u{10FFFF}"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(names(&store.list_flows(Some(""), 1).await.unwrap()), ["B"]);

    let active = store.list_flows_by_status("Active").await.unwrap();
    assert_eq!(names(&active), ["B", "Z", "z", "é-accent", "日本語"]);
    assert!(active.iter().all(|f| f.status == "Active"));
    assert_eq!(store.list_flows_by_status("Draft").await.unwrap().len(), 4);
    assert!(
        store
            .list_flows_by_status("Errored")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_flows_by_status("active")
            .await
            .unwrap()
            .is_empty(),
        "case-sensitive"
    );
}

/// Insert, read, update, delete and list connector profiles.
pub async fn profiles_crud(store: &dyn MetadataStore) {
    let mut with_label = profile("custom/one");
    with_label.connector_type = "CustomConnector".to_owned();
    with_label.connector_label = Some("MyConnector".to_owned());
    let mut no_credentials = profile("s3-like");
    no_credentials.sealed_credentials = Vec::new();

    for record in [&with_label, &no_credentials, &profile("b"), &profile("A")] {
        store.insert_profile(record).await.unwrap();
    }
    assert_eq!(
        store.get_profile("custom/one").await.unwrap(),
        Some(with_label.clone())
    );
    assert_eq!(
        store.get_profile("s3-like").await.unwrap(),
        Some(no_credentials.clone())
    );
    assert_eq!(store.get_profile("nope").await.unwrap(), None);
    assert_already_exists(
        store.insert_profile(&profile("b")).await,
        "connector profile",
        "b",
    );
    let mut same_arn = profile("c");
    same_arn.arn.clone_from(&with_label.arn);
    assert!(matches!(
        store.insert_profile(&same_arn).await,
        Err(StoreError::Conflict(_))
    ));

    let listed: Vec<String> = store
        .list_profiles(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(listed, ["A", "b", "custom/one", "s3-like"]);
    let page: Vec<String> = store
        .list_profiles(Some("b"), 1)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(page, ["custom/one"]);
    assert!(
        store
            .list_profiles(Some("s3-like"), 10)
            .await
            .unwrap()
            .is_empty()
    );

    let mut updated = with_label.clone();
    updated.connector_label = None;
    updated.sealed_credentials = vec![9; 64];
    updated.document = json!({"connectorProfileName": "custom/one", "connectionMode": "Private"});
    updated.updated_at = at(5);
    store.update_profile(&updated).await.unwrap();
    assert_eq!(
        store.get_profile("custom/one").await.unwrap(),
        Some(updated)
    );
    assert_not_found(
        store.update_profile(&profile("ghost")).await,
        "connector profile",
        "ghost",
    );

    assert!(store.delete_profile("b").await.unwrap());
    assert!(!store.delete_profile("b").await.unwrap());
    assert_eq!(store.list_profiles(None, 10).await.unwrap().len(), 3);
}

/// Runs: newest first with a (started_at, execution_id) cursor, per flow; recovery listing;
/// runs deleted with their flow.
pub async fn runs(store: &dyn MetadataStore) {
    store.insert_flow(&flow("f", "Active")).await.unwrap();
    store.insert_flow(&flow("g", "Active")).await.unwrap();
    assert_not_found(
        store.insert_run(&run("ghost", "e1", 0, "InProgress")).await,
        "flow",
        "ghost",
    );

    // Inserted out of order; "b" and "c" (and "x", "y") share a start time.
    let specs = [
        ("a", 10, "Successful"),
        ("c", 30, "Error"),
        ("b", 30, "Successful"),
        ("d", 5, "InProgress"),
        ("y", 20, "Successful"),
        ("x", 20, "CancelStarted"),
    ];
    for (id, started, status) in specs {
        store
            .insert_run(&run("f", id, started, status))
            .await
            .unwrap();
    }
    store
        .insert_run(&run("g", "a", 100, "InProgress"))
        .await
        .unwrap();
    assert_already_exists(
        store.insert_run(&run("f", "a", 99, "Error")).await,
        "run",
        "f/a",
    );

    let expected = ["c", "b", "y", "x", "a", "d"];
    let all: Vec<String> = store
        .list_runs("f", None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.execution_id)
        .collect();
    assert_eq!(all, expected);
    for page_size in [1, 2, 3, 5, 6, 7] {
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store
                .list_runs("f", cursor.clone(), page_size)
                .await
                .unwrap();
            assert!(page.len() <= page_size);
            assert!(page.iter().all(|r| r.flow_name == "f"));
            let Some(last) = page.last() else { break };
            cursor = Some((last.started_at, last.execution_id.clone()));
            seen.extend(page.into_iter().map(|r| r.execution_id));
        }
        assert_eq!(seen, expected, "page size {page_size}");
    }
    // A cursor in the middle of a tie continues within the tie.
    let after_c: Vec<String> = store
        .list_runs("f", Some((at(30), "c".to_owned())), 2)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.execution_id)
        .collect();
    assert_eq!(after_c, ["b", "y"]);
    assert!(store.list_runs("f", None, 0).await.unwrap().is_empty());
    assert!(
        store
            .list_runs("unknown-flow", None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let mut finished = store.get_run("f", "d").await.unwrap().unwrap();
    assert_eq!(finished, run("f", "d", 5, "InProgress"));
    finished.status = "Successful".to_owned();
    finished.updated_at = at(50);
    finished.started_at = at(999); // ignored: the listing order must not change
    finished.document["executionResult"] = json!({"recordsProcessed": 12});
    store.update_run(&finished).await.unwrap();
    let stored = store.get_run("f", "d").await.unwrap().unwrap();
    assert_eq!(stored.status, "Successful");
    assert_eq!(stored.updated_at, at(50));
    assert_eq!(stored.started_at, at(5));
    assert_eq!(stored.document, finished.document);
    assert_not_found(
        store.update_run(&run("f", "zz", 0, "Error")).await,
        "run",
        "f/zz",
    );
    assert_not_found(
        store.update_run(&run("h", "a", 0, "Error")).await,
        "run",
        "h/a",
    );
    assert_eq!(store.get_run("f", "zz").await.unwrap(), None);

    let recovering = store.list_runs_with_status("InProgress").await.unwrap();
    let keys: Vec<(&str, &str)> = recovering
        .iter()
        .map(|r| (r.flow_name.as_str(), r.execution_id.as_str()))
        .collect();
    assert_eq!(keys, [("g", "a")]);
    store
        .insert_run(&run("f", "e", 1, "InProgress"))
        .await
        .unwrap();
    let keys: Vec<String> = store
        .list_runs_with_status("InProgress")
        .await
        .unwrap()
        .into_iter()
        .map(|r| format!("{}/{}", r.flow_name, r.execution_id))
        .collect();
    assert_eq!(keys, ["f/e", "g/a"], "oldest first");

    assert!(store.delete_flow("f").await.unwrap());
    assert_eq!(store.get_run("f", "a").await.unwrap(), None);
    assert!(store.list_runs("f", None, 10).await.unwrap().is_empty());
    assert_eq!(
        store.list_runs("g", None, 10).await.unwrap().len(),
        1,
        "other flows keep theirs"
    );
    store.insert_flow(&flow("f", "Active")).await.unwrap();
    assert!(
        store.list_runs("f", None, 10).await.unwrap().is_empty(),
        "no runs resurrected"
    );
}

/// Timestamps keep microseconds, drop finer digits, and survive extreme values.
pub async fn timestamps(store: &dyn MetadataStore) {
    let precise = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
    let truncated = DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap();
    let mut record = flow("precise", "Active");
    record.created_at = precise;
    record.updated_at = precise;
    store.insert_flow(&record).await.unwrap();
    let stored = store.get_flow("precise").await.unwrap().unwrap();
    assert_eq!(stored.created_at, truncated);
    assert_eq!(stored.updated_at, truncated);

    let extremes = [
        DateTime::from_timestamp(-62_135_596_800, 0).unwrap(), // 0001-01-01
        DateTime::from_timestamp(-1, 999_999_000).unwrap(),
        DateTime::UNIX_EPOCH,
        DateTime::from_timestamp(253_402_300_799, 999_999_000).unwrap(), // 9999-12-31
    ];
    for (index, time) in extremes.into_iter().enumerate() {
        let mut record = flow(&format!("t{index}"), "Active");
        record.created_at = time;
        record.updated_at = time + TimeDelta::microseconds(1);
        store.insert_flow(&record).await.unwrap();
        assert_eq!(store.get_flow(&record.name).await.unwrap(), Some(record));
    }

    // A run cursor with nanoseconds behaves like its truncated value.
    store
        .insert_run(&run("precise", "r1", 0, "Successful"))
        .await
        .unwrap();
    let mut same_micros = run("precise", "r2", 0, "Successful");
    same_micros.started_at = precise;
    store.insert_run(&same_micros).await.unwrap();
    store
        .insert_run(&run("precise", "r3", 0, "Successful"))
        .await
        .unwrap();
    let page = store
        .list_runs("precise", Some((precise, "r2".to_owned())), 10)
        .await
        .unwrap();
    let ids: Vec<&str> = page.iter().map(|r| r.execution_id.as_str()).collect();
    assert_eq!(
        ids,
        ["r1"],
        "r2 and r3 start in the same microsecond, after the cursor"
    );
}

/// Documents come back exactly as stored, whatever JSON they hold.
pub async fn documents_round_trip(store: &dyn MetadataStore) {
    let documents = [
        json!({}),
        json!(null),
        json!([]),
        json!(""),
        json!({"tags": {"": "", "ключ": "значение", "emoji": "🚀", "quote": "\"'\\"}}),
        json!({"big": u64::MAX, "small": i64::MIN, "float": 1.5e300, "tiny": -0.000_001}),
        json!({"nested": {"a": [1, {"b": [null, true, false]}], "nul": "a\u{0}b"}}),
        json!({"long": "x".repeat(1 << 20)}),
    ];
    for (index, document) in documents.iter().enumerate() {
        let mut record = flow(&format!("doc-{index}"), "Active");
        record.document = document.clone();
        store.insert_flow(&record).await.unwrap();
        let stored = store.get_flow(&record.name).await.unwrap().unwrap();
        assert_eq!(&stored.document, document, "document {index}");
    }
    let unicode = flow("ünïcödé-名前-🚀", "Active");
    store.insert_flow(&unicode).await.unwrap();
    assert_eq!(
        store.get_flow("ünïcödé-名前-🚀").await.unwrap(),
        Some(unicode)
    );
    // Lookups are exact: no case folding, no normalisation, no trimming.
    assert_eq!(store.get_flow("ÜNÏCÖDÉ-名前-🚀").await.unwrap(), None);
    assert_eq!(store.get_flow("doc-0 ").await.unwrap(), None);
    let empty = flow("", "Active");
    store.insert_flow(&empty).await.unwrap();
    assert_eq!(store.get_flow("").await.unwrap(), Some(empty));
}

/// Idempotency tokens: first writer wins, scoped by operation, purged by age.
pub async fn idempotency(store: &dyn MetadataStore) {
    let record = IdempotencyRecord {
        operation: "CreateFlow".to_owned(),
        token: "c42ac4fa-bc51-43a0-8a5e-6f1a2c053239".to_owned(),
        request_hash: "hash-1".to_owned(),
        response: json!({"flowArn": "arn:aws:appflow:us-east-1:1:flow/f", "flowStatus": "Active"}),
        created_at: at(0),
    };
    assert_eq!(
        store
            .get_idempotency("CreateFlow", &record.token)
            .await
            .unwrap(),
        None
    );
    store.put_idempotency(&record).await.unwrap();
    assert_eq!(
        store
            .get_idempotency("CreateFlow", &record.token)
            .await
            .unwrap(),
        Some(record.clone())
    );

    let mut second = record.clone();
    second.request_hash = "hash-2".to_owned();
    second.response = json!({"other": true});
    assert_already_exists(
        store.put_idempotency(&second).await,
        "idempotency token",
        "CreateFlow/c42ac4fa-bc51-43a0-8a5e-6f1a2c053239",
    );
    let kept = store
        .get_idempotency("CreateFlow", &record.token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.request_hash, "hash-1", "the first writer wins");

    let mut other_operation = record.clone();
    other_operation.operation = "StartFlow".to_owned();
    other_operation.created_at = at(100);
    store.put_idempotency(&other_operation).await.unwrap();
    assert_eq!(
        store
            .get_idempotency("UpdateFlow", &record.token)
            .await
            .unwrap(),
        None
    );

    assert_eq!(
        store.purge_idempotency(at(0)).await.unwrap(),
        0,
        "cutoff is exclusive"
    );
    assert_eq!(store.purge_idempotency(at(50)).await.unwrap(), 1);
    assert_eq!(
        store
            .get_idempotency("CreateFlow", &record.token)
            .await
            .unwrap(),
        None
    );
    assert!(
        store
            .get_idempotency("StartFlow", &record.token)
            .await
            .unwrap()
            .is_some()
    );
    // A purged token can be used again.
    store.put_idempotency(&second).await.unwrap();
}

/// Registered connectors: CRUD and pagination by label.
pub async fn connectors(store: &dyn MetadataStore) {
    for label in ["zeta", "Alpha", "beta"] {
        store.insert_connector(&connector(label)).await.unwrap();
    }
    assert_eq!(
        store.get_connector("beta").await.unwrap(),
        Some(connector("beta"))
    );
    assert_eq!(store.get_connector("gamma").await.unwrap(), None);
    assert_already_exists(
        store.insert_connector(&connector("beta")).await,
        "connector",
        "beta",
    );
    let mut same_arn = connector("gamma");
    same_arn.arn = connector("beta").arn;
    assert!(matches!(
        store.insert_connector(&same_arn).await,
        Err(StoreError::Conflict(_))
    ));

    let labels = |records: Vec<ConnectorRecord>| -> Vec<String> {
        records.into_iter().map(|c| c.label).collect()
    };
    assert_eq!(
        labels(store.list_connectors(None, 10).await.unwrap()),
        ["Alpha", "beta", "zeta"]
    );
    assert_eq!(
        labels(store.list_connectors(None, 2).await.unwrap()),
        ["Alpha", "beta"]
    );
    assert_eq!(
        labels(store.list_connectors(Some("beta"), 2).await.unwrap()),
        ["zeta"]
    );
    assert!(store.list_connectors(None, 0).await.unwrap().is_empty());

    let mut updated = connector("beta");
    updated.document = json!({"connectorLabel": "beta", "description": "v2"});
    updated.created_at = at(77); // ignored
    store.update_connector(&updated).await.unwrap();
    let stored = store.get_connector("beta").await.unwrap().unwrap();
    assert_eq!(stored.document, updated.document);
    assert_eq!(stored.created_at, at(0));
    assert_not_found(
        store.update_connector(&connector("gamma")).await,
        "connector",
        "gamma",
    );

    assert!(store.delete_connector("beta").await.unwrap());
    assert!(!store.delete_connector("beta").await.unwrap());
    assert_eq!(
        labels(store.list_connectors(None, 10).await.unwrap()),
        ["Alpha", "zeta"]
    );
}

/// API keys are upserted whole.
pub async fn api_keys(store: &dyn MetadataStore) {
    let key = ApiKeyRecord {
        access_key_id: "AKIDEXAMPLE".to_owned(),
        sealed_secret: vec![1, 2, 3],
        description: "ci runner — ünïcode".to_owned(),
        created_at: at(0),
        disabled: false,
    };
    assert_eq!(store.get_api_key("AKIDEXAMPLE").await.unwrap(), None);
    store.put_api_key(&key).await.unwrap();
    assert_eq!(
        store.get_api_key("AKIDEXAMPLE").await.unwrap(),
        Some(key.clone())
    );
    assert_eq!(
        store.get_api_key("akidexample").await.unwrap(),
        None,
        "ids are case-sensitive"
    );

    let replaced = ApiKeyRecord {
        sealed_secret: Vec::new(),
        description: String::new(),
        created_at: at(10),
        disabled: true,
        ..key.clone()
    };
    store.put_api_key(&replaced).await.unwrap();
    assert_eq!(
        store.get_api_key("AKIDEXAMPLE").await.unwrap(),
        Some(replaced)
    );

    let other = ApiKeyRecord {
        access_key_id: "AKIDOTHER".to_owned(),
        ..key
    };
    store.put_api_key(&other).await.unwrap();
    assert_eq!(store.get_api_key("AKIDOTHER").await.unwrap(), Some(other));
    assert!(
        store
            .get_api_key("AKIDEXAMPLE")
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
}

/// Schedules: partial writes keep the other columns, need an existing flow, and go with it.
pub async fn schedules(store: &dyn MetadataStore) {
    assert_eq!(store.get_schedule("nightly").await.unwrap(), None);
    let missing = store
        .update_schedule("nightly", &ScheduleUpdate::default(), at(0))
        .await
        .unwrap_err();
    assert!(
        matches!(missing, StoreError::NotFound { entity: "flow", ref name } if name == "nightly"),
        "{missing}"
    );
    store.insert_flow(&flow("nightly", "Active")).await.unwrap();
    store.insert_flow(&flow("ünï", "Active")).await.unwrap();

    let state = json!({"lastFire": "2024-01-01T00:00:00Z", "consecutiveFailures": 2});
    store
        .update_schedule(
            "nightly",
            &ScheduleUpdate {
                activated_at: Some(at(1)),
                state: Some(state.clone()),
                event_mark: None,
            },
            at(2),
        )
        .await
        .unwrap();
    let record = store.get_schedule("nightly").await.unwrap().unwrap();
    assert_eq!(record.flow_name, "nightly");
    assert_eq!(record.activated_at, Some(at(1)));
    assert_eq!(record.state, Some(state.clone()));
    assert_eq!(record.event_mark, None);
    assert_eq!(record.updated_at, at(2));

    // Writing one column leaves the others alone.
    let mark = json!({"key": "in/ü.csv", "lastModified": "2024-01-01T00:00:00.5Z"});
    store
        .update_schedule(
            "nightly",
            &ScheduleUpdate {
                event_mark: Some(mark.clone()),
                ..ScheduleUpdate::default()
            },
            at(3),
        )
        .await
        .unwrap();
    let record = store.get_schedule("nightly").await.unwrap().unwrap();
    assert_eq!(record.activated_at, Some(at(1)));
    assert_eq!(record.state, Some(state));
    assert_eq!(record.event_mark, Some(mark.clone()));
    assert_eq!(record.updated_at, at(3));

    let newer = json!({"consecutiveFailures": 0});
    store
        .update_schedule(
            "nightly",
            &ScheduleUpdate {
                activated_at: Some(at(4)),
                state: Some(newer.clone()),
                event_mark: None,
            },
            at(4),
        )
        .await
        .unwrap();
    let record = store.get_schedule("nightly").await.unwrap().unwrap();
    assert_eq!(record.activated_at, Some(at(4)));
    assert_eq!(record.state, Some(newer));
    assert_eq!(record.event_mark, Some(mark));
    assert_eq!(store.get_schedule("ünï").await.unwrap(), None, "per flow");

    // Deleting the schedule keeps the flow; deleting the flow takes the schedule with it.
    assert!(store.delete_schedule("nightly").await.unwrap());
    assert!(!store.delete_schedule("nightly").await.unwrap());
    assert_eq!(store.get_schedule("nightly").await.unwrap(), None);
    assert!(store.get_flow("nightly").await.unwrap().is_some());
    store
        .update_schedule(
            "ünï",
            &ScheduleUpdate {
                activated_at: Some(at(5)),
                ..ScheduleUpdate::default()
            },
            at(5),
        )
        .await
        .unwrap();
    assert!(store.delete_flow("ünï").await.unwrap());
    store.insert_flow(&flow("ünï", "Draft")).await.unwrap();
    assert_eq!(
        store.get_schedule("ünï").await.unwrap(),
        None,
        "a re-created flow starts without the old schedule"
    );
}

/// The audit log keeps insertion order with increasing ids and pages by id.
pub async fn audit_log(store: &dyn MetadataStore) {
    assert!(store.list_audit(None, 10).await.unwrap().is_empty());
    let sparse = AuditEntry {
        access_key_id: None,
        source_ip: None,
        user_agent: None,
        error_code: None,
        resource: None,
        request_parameters: json!({}),
        ..audit("req-0", "ListFlows", 200)
    };
    let mut entries = vec![sparse];
    entries.push(audit("req-1", "CreateFlow", 400));
    entries.push(AuditEntry {
        status: u16::MAX,
        ..audit("req-2", "DéscribeFlow", 500)
    });
    entries.push(AuditEntry {
        status: 0,
        time: at(-5),
        ..audit("", "", 0)
    });
    for entry in &entries {
        store.append_audit(entry).await.unwrap();
    }
    // Identical entries are kept: the log records calls, not states.
    store.append_audit(&entries[1]).await.unwrap();
    entries.push(entries[1].clone());

    let listed = store.list_audit(None, 100).await.unwrap();
    let listed_entries: Vec<AuditEntry> = listed.iter().map(|(_, e)| e.clone()).collect();
    assert_eq!(listed_entries, entries, "insertion order, not time order");
    let ids: Vec<i64> = listed.iter().map(|(id, _)| *id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");

    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.list_audit(cursor, 2).await.unwrap();
        let Some((last, _)) = page.last() else { break };
        cursor = Some(*last);
        paged.extend(page);
    }
    assert_eq!(paged, listed);
    assert!(store.list_audit(None, 0).await.unwrap().is_empty());
    assert!(
        store
            .list_audit(Some(ids[ids.len() - 1]), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.list_audit(Some(ids[2]), 10).await.unwrap(),
        listed[3..]
    );
}

/// Many tasks using one store at once: nothing is lost, duplicated or deadlocked.
pub async fn concurrent_use(store: Arc<dyn MetadataStore>) {
    const TASKS: usize = 8;
    const FLOWS_PER_TASK: usize = 10;
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let store = Arc::clone(&store);
        handles.push(tokio::spawn(async move {
            for index in 0..FLOWS_PER_TASK {
                let name = format!("task{task}-flow{index:02}");
                store.insert_flow(&flow(&name, "Active")).await.unwrap();
                store
                    .insert_run(&run(&name, "e1", index as i64, "InProgress"))
                    .await
                    .unwrap();
                let mut done = run(&name, "e1", index as i64, "Successful");
                done.updated_at = at(1000);
                store.update_run(&done).await.unwrap();
                store
                    .append_audit(&audit(&name, "StartFlow", 200))
                    .await
                    .unwrap();
                assert_eq!(store.list_runs(&name, None, 10).await.unwrap(), [done]);
            }
        }));
    }
    // Every task races to claim the same client token; exactly one may win.
    let mut racers = Vec::new();
    for task in 0..TASKS {
        let store = Arc::clone(&store);
        racers.push(tokio::spawn(async move {
            let record = IdempotencyRecord {
                operation: "StartFlow".to_owned(),
                token: "shared-token".to_owned(),
                request_hash: format!("hash-{task}"),
                response: json!({"winner": task}),
                created_at: at(0),
            };
            store.put_idempotency(&record).await
        }));
    }
    for handle in handles {
        handle.await.expect("a task panicked");
    }
    let mut winners = 0;
    for racer in racers {
        match racer.await.expect("a racer panicked") {
            Ok(()) => winners += 1,
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(winners, 1);

    let flows = store.list_flows(None, 1000).await.unwrap();
    assert_eq!(flows.len(), TASKS * FLOWS_PER_TASK);
    assert!(
        store
            .list_runs_with_status("InProgress")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .list_runs_with_status("Successful")
            .await
            .unwrap()
            .len(),
        flows.len()
    );
    let audit = store.list_audit(None, 1000).await.unwrap();
    assert_eq!(audit.len(), flows.len());
    let ids: HashSet<i64> = audit.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), audit.len(), "audit ids are unique");
    let request_ids: HashSet<&str> = audit.iter().map(|(_, e)| e.request_id.as_str()).collect();
    assert_eq!(request_ids.len(), audit.len());
}
