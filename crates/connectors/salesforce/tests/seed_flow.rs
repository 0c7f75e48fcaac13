//! The `stackflow-salesforce-accounts-sync` flow (Salesforce Account -> S3,
//! `enableDynamicFieldUpdate`, hourly) run through the pipeline against the fake Salesforce
//! server and local-folder S3 buckets, with a projection of Account fields as its task list,
//! over two consecutive hourly windows.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use sluice_api_model as model;
use sluice_connector_api::{Connector, ConnectorRegistry, IncrementalWindow, Profile};
use sluice_connector_http_util::RetryConfig;
use sluice_connector_s3::S3Connector;
use sluice_connector_salesforce::{SalesforceConnector, SalesforceSettings};
use sluice_fake_salesforce::FakeSalesforce;
use sluice_pipeline::{RunProgress, RunSpec, RunStatus, execute};
use sluice_storage::{Storage, StorageConfig};
use sluice_types::Sensitive;
use tokio_util::sync::CancellationToken;

#[derive(Debug)]
struct TwoConnectors(Vec<Arc<dyn Connector>>);

impl ConnectorRegistry for TwoConnectors {
    fn get(
        &self,
        connector_type: model::ConnectorType,
        _: Option<&str>,
    ) -> Option<Arc<dyn Connector>> {
        self.0
            .iter()
            .find(|c| c.connector_type() == connector_type)
            .cloned()
    }

    fn all(&self) -> Vec<Arc<dyn Connector>> {
        self.0.clone()
    }
}

fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 2, hour, minute, 0).unwrap()
}

/// Every record of the CSV files under `dir` (the S3 default output), as JSON objects. The
/// values written here hold no commas or quotes, so a plain split is exact.
fn written(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(written(&path));
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            let mut lines = text.lines();
            let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
            for line in lines {
                let record: serde_json::Map<String, Value> = header
                    .iter()
                    .zip(line.split(','))
                    .filter(|(_, value)| !value.is_empty())
                    .map(|(name, value)| (name.to_string(), Value::String(value.to_owned())))
                    .collect();
                out.push(Value::Object(record));
            }
        }
    }
    out
}

#[tokio::test]
async fn hourly_account_sync_to_s3() {
    let fake = FakeSalesforce::start(0).await.unwrap();
    fake.register_client("app", "secret");
    fake.set_page_size(3);
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(Storage::new(StorageConfig::local(dir.path())));
    let salesforce = SalesforceConnector::new(SalesforceSettings {
        login_url: fake.url(),
        client_id: Some("app".into()),
        client_secret: Some(Sensitive::new("secret".into())),
        retry: RetryConfig::fast(),
        ..SalesforceSettings::default()
    })
    .unwrap();
    let registry = TwoConnectors(vec![
        Arc::new(S3Connector::new(storage)),
        Arc::new(salesforce),
    ]);
    let profile = Profile {
        name: "stackflow-salesforce".into(),
        connector_type: model::ConnectorType::Salesforce,
        connector_label: None,
        properties: json!({"Salesforce": {"instanceUrl": fake.url()}}),
        credentials: Sensitive::new(json!({"Salesforce": {
            "accessToken": fake.issue_access_token(), "refreshToken": fake.issue_refresh_token()}})),
    };
    let fields = [
        "Id",
        "Name",
        "Industry",
        "NumberOfEmployees",
        "LastModifiedDate",
    ];
    let mut tasks = vec![
        json!({"sourceFields": fields, "connectorOperator": {"Salesforce": "PROJECTION"},
                                "taskType": "Filter", "taskProperties": {}}),
    ];
    for field in fields {
        tasks.push(
            json!({"sourceFields": [field], "connectorOperator": {"Salesforce": "NO_OP"},
                          "taskType": "Map", "destinationField": field, "taskProperties": {}}),
        );
    }
    let spec = |execution: &str, start: DateTime<Utc>, end: DateTime<Utc>| {
        RunSpec {
        flow_name: "stackflow-salesforce-accounts-sync".into(),
        execution_id: execution.into(),
        source: serde_json::from_value(json!({
            "connectorType": "Salesforce",
            "connectorProfileName": "stackflow-salesforce",
            "sourceConnectorProperties": {"Salesforce": {"object": "Account", "enableDynamicFieldUpdate": true}},
            "incrementalPullConfig": {"datetimeTypeFieldName": "LastModifiedDate"},
        }))
        .unwrap(),
        destination: serde_json::from_value(json!({
            "connectorType": "S3",
            "destinationConnectorProperties": {"S3": {"bucketName": "stackflow-appflow-data", "bucketPrefix": "salesforce/accounts/"}},
        }))
        .unwrap(),
        tasks: serde_json::from_value(Value::Array(tasks.clone())).unwrap(),
        source_profile: Some(profile.clone()),
        destination_profile: None,
        schema_version: 1,
        window: Some(IncrementalWindow { field: "LastModifiedDate".into(), start, end }),
        started_at: end,
    }
    };
    let run = |spec: RunSpec| {
        let registry = &registry;
        async move {
            execute(
                registry,
                spec,
                Arc::new(RunProgress::default()),
                CancellationToken::new(),
            )
            .await
        }
    };

    fake.set_now(Some(at(9, 10)));
    let ids = fake.insert(
        "Account",
        (0..7)
            .map(|i| json!({"Name": format!("Acct {i}"), "Industry": "Banking", "NumberOfEmployees": i}))
            .filter_map(|v| v.as_object().cloned())
            .collect(),
    );
    let first = run(spec(
        "00000000-0000-0000-0000-000000000001",
        at(9, 0),
        at(10, 0),
    ))
    .await;
    assert_eq!(first.status, RunStatus::Successful, "{:?}", first.message);
    assert_eq!(first.progress.records_processed, 7);
    let bucket = dir.path().join("stackflow-appflow-data");
    let after_first = written(&bucket);
    assert_eq!(after_first.len(), 7);
    assert!(
        after_first
            .iter()
            .all(|r| r.get("Name").is_some() && r.get("Phone").is_none())
    );

    // The next hour: one change, one new record, and a token that expired meanwhile.
    fake.set_now(Some(at(10, 20)));
    assert!(fake.update(
        "Account",
        &ids[3],
        json!({"Name": "Acct 3 v2"}).as_object().cloned().unwrap()
    ));
    fake.insert(
        "Account",
        vec![json!({"Name": "Acct new"}).as_object().cloned().unwrap()],
    );
    fake.expire_access_tokens();
    let second = run(spec(
        "00000000-0000-0000-0000-000000000002",
        at(10, 0),
        at(11, 0),
    ))
    .await;
    assert_eq!(second.status, RunStatus::Successful, "{:?}", second.message);
    assert_eq!(second.progress.records_processed, 2);
    let mut names: Vec<String> = written(&bucket)
        .iter()
        .filter_map(|r| r.get("Name").and_then(Value::as_str).map(str::to_owned))
        .collect();
    names.sort();
    assert_eq!(names.len(), 9);
    assert!(names.contains(&"Acct 3 v2".to_owned()) && names.contains(&"Acct new".to_owned()));
    assert_eq!(fake.stats().grants.get("refresh_token"), Some(&1));
}
