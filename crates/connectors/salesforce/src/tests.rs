//! Tests against the fake Salesforce server.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMillisecondType};
use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use chrono::{DateTime, TimeZone, Utc};
use futures::TryStreamExt;
use serde_json::{Map, Value, json};
use sluice_api_model as model;
use sluice_connector_api::{
    CollectRejected, Connector, ConnectorErrorKind, EntityContext, IncrementalWindow, Profile,
    PushdownFilter, ReadRequest, ReadStats, WriteRequest,
};
use sluice_connector_http_util::RetryConfig;
use sluice_fake_salesforce::bulk::InterruptedEnd;
use sluice_fake_salesforce::{FakeSalesforce, Fault, FieldDef};
use sluice_types::Sensitive;

use super::*;
use crate::bulk::UNPROCESSED;
use crate::source::{SfField, decode_rest_page, plan_query};

const CLIENT_ID: &str = "sluice-app";
const CLIENT_SECRET: &str = "app-secret-value";

async fn fake() -> FakeSalesforce {
    let fake = FakeSalesforce::start(0).await.unwrap();
    fake.register_client(CLIENT_ID, CLIENT_SECRET);
    fake
}

fn connector(fake: &FakeSalesforce) -> SalesforceConnector {
    SalesforceConnector::new(SalesforceSettings {
        login_url: fake.url(),
        sandbox_login_url: fake.url(),
        client_id: Some(CLIENT_ID.into()),
        client_secret: Some(Sensitive::new(CLIENT_SECRET.into())),
        retry: RetryConfig::fast(),
        ..SalesforceSettings::default()
    })
    .unwrap()
    .with_bulk_settings(BulkSettings::fast())
}

fn profile(fake: &FakeSalesforce, credentials: Value) -> Profile {
    Profile {
        name: "sf".into(),
        connector_type: model::ConnectorType::Salesforce,
        connector_label: None,
        properties: json!({"Salesforce": {"instanceUrl": fake.url(), "isSandboxEnvironment": false}}),
        credentials: Sensitive::new(json!({ "Salesforce": credentials })),
    }
}

fn token_profile(fake: &FakeSalesforce) -> (Profile, String) {
    let refresh = fake.issue_refresh_token();
    let p = profile(
        fake,
        json!({"accessToken": fake.issue_access_token(), "refreshToken": refresh.clone()}),
    );
    (p, refresh)
}

fn obj(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

fn read_request(
    profile: &Profile,
    source: Value,
    projection: Option<&[&str]>,
    window: Option<IncrementalWindow>,
) -> ReadRequest {
    ReadRequest {
        flow_name: "stackflow-salesforce-accounts-sync".into(),
        execution_id: "exec-1".into(),
        source: serde_json::from_value(json!({
            "connectorType": "Salesforce",
            "connectorProfileName": "sf",
            "sourceConnectorProperties": {"Salesforce": source},
        }))
        .unwrap(),
        profile: Some(profile.clone()),
        projection: projection.map(|p| p.iter().map(|s| s.to_string()).collect()),
        filters: Vec::new(),
        window,
        batch_rows: 1000,
        stats: Arc::new(ReadStats::default()),
    }
}

async fn read_all(connector: &SalesforceConnector, request: ReadRequest) -> Vec<RecordBatch> {
    connector
        .read(request)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

fn names(batches: &[RecordBatch]) -> Vec<String> {
    let mut out: Vec<String> = batches
        .iter()
        .flat_map(|b| {
            let column = b.column_by_name("Name").unwrap().as_string::<i32>().clone();
            (0..column.len()).map(move |i| column.value(i).to_owned())
        })
        .collect();
    out.sort();
    out
}

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, hour, 0, 0).unwrap()
}

#[tokio::test]
async fn metadata_from_describe() {
    let fake = fake().await;
    let connector = connector(&fake);
    let (profile, _) = token_profile(&fake);
    connector.validate_profile(&profile).await.unwrap();
    let ctx = EntityContext {
        profile: Some(profile),
        entities_path: None,
    };
    let listing = connector.list_entities(&ctx).await.unwrap();
    assert_eq!(listing[OBJECTS_GROUP][0].name, "Account");
    let fields = connector.describe_entity(&ctx, "Account").await.unwrap();
    let field = |name: &str| fields.iter().find(|f| f.identifier == name).unwrap();
    let incremental = |name: &str| {
        field(name)
            .source_properties
            .as_ref()
            .unwrap()
            .is_timestamp_field_for_incremental_queries
    };
    assert_eq!(incremental("LastModifiedDate"), Some(true));
    assert_eq!(incremental("SystemModstamp"), Some(true));
    assert_eq!(incremental("Name"), Some(false));
    assert_eq!(field("Id").is_primary_key, Some(true));
    let industry = &field("Industry")
        .supported_field_type_details
        .as_ref()
        .unwrap()
        .v1;
    assert_eq!(industry.field_type, "picklist");
    assert!(
        industry
            .supported_values
            .as_ref()
            .unwrap()
            .contains(&"Banking".to_owned())
    );
    let err = connector
        .describe_entity(&ctx, "Nope__c")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::NotFound, "{err}");
}

#[tokio::test]
async fn hourly_incremental_runs_see_new_changed_and_deleted_records() {
    let fake = fake().await;
    fake.set_page_size(2);
    let connector = connector(&fake);
    let (profile, _) = token_profile(&fake);
    let source = json!({"object": "Account", "includeDeletedRecords": true});
    let projection = [
        "Id",
        "Name",
        "NumberOfEmployees",
        "LastModifiedDate",
        "IsDeleted",
    ];
    let window = |start: u32, end: u32| IncrementalWindow {
        field: "LastModifiedDate".into(),
        start: at(start),
        end: at(end),
    };

    fake.set_now(Some(at(9) + chrono::Duration::minutes(5)));
    let ids = fake.insert(
        "Account",
        (0..5)
            .map(|i| obj(json!({"Name": format!("Acme {i}"), "NumberOfEmployees": i})))
            .collect(),
    );
    let first = read_all(
        &connector,
        read_request(
            &profile,
            source.clone(),
            Some(&projection),
            Some(window(9, 10)),
        ),
    )
    .await;
    // Five records over pages of two: three batches, nothing lost.
    assert_eq!(first.len(), 3);
    assert_eq!(
        names(&first),
        ["Acme 0", "Acme 1", "Acme 2", "Acme 3", "Acme 4"]
    );
    let employees = first[0].column_by_name("NumberOfEmployees").unwrap();
    assert_eq!(employees.data_type(), &DataType::Int64);
    let modified = first[0].column_by_name("LastModifiedDate").unwrap();
    assert_eq!(
        modified.as_primitive::<TimestampMillisecondType>().value(0),
        (at(9) + chrono::Duration::minutes(5)).timestamp_millis()
    );

    // Next hour: one new, one changed, one deleted.
    fake.set_now(Some(at(10) + chrono::Duration::minutes(30)));
    fake.insert("Account", vec![obj(json!({"Name": "Newco"}))]);
    assert!(fake.update("Account", &ids[1], obj(json!({"Name": "Acme 1 renamed"}))));
    assert!(fake.delete("Account", &ids[2]));
    let second = read_all(
        &connector,
        read_request(
            &profile,
            source.clone(),
            Some(&projection),
            Some(window(10, 11)),
        ),
    )
    .await;
    assert_eq!(names(&second), ["Acme 1 renamed", "Acme 2", "Newco"]);
    let deleted: Vec<Option<bool>> = second
        .iter()
        .flat_map(|b| {
            b.column_by_name("IsDeleted")
                .unwrap()
                .as_boolean()
                .iter()
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(deleted.iter().filter(|d| **d == Some(true)).count(), 1);

    // Without includeDeletedRecords the deleted record is not read.
    let live = read_all(
        &connector,
        read_request(
            &profile,
            json!({"object": "Account"}),
            Some(&projection),
            Some(window(10, 11)),
        ),
    )
    .await;
    assert_eq!(names(&live), ["Acme 1 renamed", "Newco"]);
    // An empty window yields no rows and no error.
    let empty = read_all(
        &connector,
        read_request(&profile, source, Some(&projection), Some(window(11, 12))),
    )
    .await;
    assert_eq!(empty.iter().map(RecordBatch::num_rows).sum::<usize>(), 0);
}

#[tokio::test]
async fn token_expiry_and_throttling_in_the_middle_of_a_run() {
    let fake = fake().await;
    fake.set_page_size(10);
    fake.insert(
        "Account",
        (0..95)
            .map(|i| obj(json!({"Name": format!("A{i:03}")})))
            .collect(),
    );
    let connector = connector(&fake);
    let (profile, _) = token_profile(&fake);
    let mut stream = connector
        .read(read_request(
            &profile,
            json!({"object": "Account"}),
            Some(&["Id", "Name"]),
            None,
        ))
        .await
        .unwrap();
    let mut rows = 0;
    let mut pages = 0;
    while let Some(batch) = stream.try_next().await.unwrap() {
        rows += batch.num_rows();
        pages += 1;
        if pages == 3 {
            fake.expire_access_tokens();
        }
        if pages == 5 {
            fake.inject([
                Fault::Unavailable {
                    retry_after: Some(0),
                },
                Fault::RequestLimitExceeded,
            ]);
        }
    }
    assert_eq!(rows, 95);
    assert_eq!(pages, 10);
    let stats = fake.stats();
    assert_eq!(stats.grants.get("refresh_token"), Some(&1));
    assert_eq!(stats.unauthorized, 1);
    assert_eq!(stats.faults_served, 2);
}

#[tokio::test]
async fn revoked_refresh_token_fails_the_run_asking_to_reauthorise() {
    let fake = fake().await;
    fake.insert("Account", vec![obj(json!({"Name": "x"}))]);
    let connector = connector(&fake);
    let (profile, refresh) = token_profile(&fake);
    fake.revoke_refresh_token(&refresh);
    fake.expire_access_tokens();
    let error = match connector
        .read(read_request(
            &profile,
            json!({"object": "Account"}),
            Some(&["Id"]),
            None,
        ))
        .await
    {
        Ok(stream) => stream.try_collect::<Vec<_>>().await.unwrap_err(),
        Err(error) => error,
    };
    assert_eq!(error.kind, ConnectorErrorKind::Authentication);
    assert!(error.message.contains("re-authorise"), "{error}");
    assert!(!error.message.contains(&refresh), "{error}");
    assert!(!error.message.contains(CLIENT_SECRET), "{error}");
}

#[tokio::test]
async fn profiles_with_auth_code_jwt_and_client_credentials() {
    let fake = fake().await;
    let connector = connector(&fake);
    let verifier = "a".repeat(64);
    let code = fake.issue_auth_code(CLIENT_ID, "https://app/cb", Some(&verifier));
    let by_code = profile(
        &fake,
        json!({"oAuthRequest": {"authCode": code, "redirectUri": "https://app/cb", "codeVerifier": verifier}}),
    );
    connector.validate_profile(&by_code).await.unwrap();
    let jwt = profile(
        &fake,
        json!({"oAuth2GrantType": "JWT_BEARER", "jwtToken": "h.p.s"}),
    );
    connector.validate_profile(&jwt).await.unwrap();
    let client = profile(&fake, json!({"oAuth2GrantType": "CLIENT_CREDENTIALS"}));
    connector.validate_profile(&client).await.unwrap();
    let grants = fake.stats().grants;
    assert_eq!(grants.get("authorization_code"), Some(&1));
    assert_eq!(grants.get("client_credentials"), Some(&1));

    // A bad code is the provider's error text, reported as an authentication failure.
    let bad = profile(
        &fake,
        json!({"oAuthRequest": {"authCode": "stale-code", "redirectUri": "https://app/cb"}}),
    );
    let error = connector.validate_profile(&bad).await.unwrap_err();
    assert_eq!(error.kind, ConnectorErrorKind::Authentication);
    assert!(
        error.message.contains("invalid authorization code"),
        "{error}"
    );
    assert!(!error.message.contains("stale-code"), "{error}");
    let empty = profile(&fake, json!({}));
    assert_eq!(
        connector.validate_profile(&empty).await.unwrap_err().kind,
        ConnectorErrorKind::InvalidConfig
    );
    let wrong_token = profile(&fake, json!({"accessToken": "forged"}));
    let error = connector.validate_profile(&wrong_token).await.unwrap_err();
    assert_eq!(error.kind, ConnectorErrorKind::Authentication, "{error}");
}

#[tokio::test]
async fn new_fields_appear_with_map_all_and_bad_projections_are_named() {
    let fake = fake().await;
    fake.insert("Account", vec![obj(json!({"Name": "Ünïcode 'quoted'"}))]);
    let connector = connector(&fake);
    let (profile, _) = token_profile(&fake);
    let source = json!({"object": "Account", "enableDynamicFieldUpdate": true});
    let before = read_all(
        &connector,
        read_request(&profile, source.clone(), None, None),
    )
    .await;
    assert!(before[0].column_by_name("Tier__c").is_none());
    fake.add_field("Account", FieldDef::new("Tier__c", "string"));
    let after = read_all(
        &connector,
        read_request(&profile, source.clone(), None, None),
    )
    .await;
    assert!(after[0].column_by_name("Tier__c").is_some());
    assert_eq!(names(&after), ["Ünïcode 'quoted'"]);

    let error = connector
        .read(read_request(
            &profile,
            source,
            Some(&["Id", "Missing__c"]),
            None,
        ))
        .await
        .err()
        .unwrap();
    assert_eq!(error.kind, ConnectorErrorKind::InvalidConfig);
    assert!(error.message.contains("Missing__c"), "{error}");
    // Bulk API 2.0 picks the new field up the same way.
    let bulk = read_all(
        &connector,
        read_request(
            &profile,
            json!({"object": "Account", "dataTransferApi": "BULKV2"}),
            None,
            None,
        ),
    )
    .await;
    assert!(bulk[0].column_by_name("Tier__c").is_some());
    assert_eq!(names(&bulk), ["Ünïcode 'quoted'"]);
}

fn described() -> Vec<SfField> {
    let field = |name: &str, kind: &str| SfField {
        name: name.into(),
        label: name.into(),
        kind: kind.into(),
        nillable: true,
        createable: true,
        updateable: true,
        filterable: true,
        external_id: false,
        defaulted_on_create: false,
        picklist: Vec::new(),
    };
    vec![
        field("Id", "id"),
        field("Name", "string"),
        field("NumberOfEmployees", "int"),
        field("LastModifiedDate", "datetime"),
    ]
}

#[test]
fn soql_from_projection_filters_and_window() {
    let filter = |field: &str, operator, values: &[&str]| PushdownFilter {
        field: field.into(),
        operator,
        values: values.iter().map(|v| v.to_string()).collect(),
        data_type: None,
    };
    let plan = plan_query(
        "Account",
        &described(),
        Some(&["Id".into(), "Name".into()]),
        &[
            filter("Name", model::Operator::EqualTo, &["O'Brien \\ Ünï"]),
            filter("NumberOfEmployees", model::Operator::Between, &["1", "10"]),
            filter("Name", model::Operator::Contains, &["50%_"]),
            // Not a number: left to the pipeline rather than sent as broken SOQL.
            filter("NumberOfEmployees", model::Operator::GreaterThan, &["lots"]),
            filter(
                "LastModifiedDate",
                model::Operator::LessThan,
                &["1740787200000"],
            ),
        ],
        Some(&IncrementalWindow {
            field: "LastModifiedDate".into(),
            start: at(9),
            end: at(10),
        }),
        false,
    )
    .unwrap();
    assert_eq!(
        plan.soql,
        "SELECT Id, Name FROM Account WHERE LastModifiedDate >= 2025-03-01T09:00:00Z AND \
         LastModifiedDate < 2025-03-01T10:00:00Z AND Name = 'O\\'Brien \\\\ Ünï' AND \
         (NumberOfEmployees >= 1 AND NumberOfEmployees <= 10) AND Name LIKE '%50\\\\%\\\\_%' \
         AND LastModifiedDate < 2025-03-01T00:00:00Z"
    );
    let parsed = sluice_fake_salesforce::soql::parse(&plan.soql).unwrap();
    assert_eq!(parsed.fields, ["Id", "Name"]);
}

/// One REST query page holding `records`.
fn rest_page(records: Value) -> Vec<u8> {
    json!({"totalSize": 99, "done": false, "nextRecordsUrl": "/services/data/v58.0/query/c-2",
           "records": records})
    .to_string()
    .into_bytes()
}

#[test]
fn malformed_records_name_the_field_and_record() {
    let fields = described();
    let schema = crate::source::schema_of(&fields);
    let decode =
        |records: Value| decode_rest_page("Account", &fields, &schema, &rest_page(records));
    let ok = decode(json!([
        {"attributes": {"type": "Account"}, "Id": "001A", "Name": null, "NumberOfEmployees": 3,
         "LastModifiedDate": "2025-03-01T09:00:00.000+0000", "Unselected__c": {"nested": [1]}},
        {"Id": "001B"},
        // Salesforce sends whole doubles in int fields now and then.
        {"NumberOfEmployees": 4.0, "Name": "Ünïcode \"q\"", "Id": "001C"},
    ]))
    .unwrap();
    assert_eq!((ok.total_size, ok.done), (Some(99), false));
    assert_eq!(ok.next.as_deref(), Some("/services/data/v58.0/query/c-2"));
    let batch = ok.batch;
    assert_eq!(batch.num_rows(), 3);
    assert!(batch.column(1).is_null(0));
    assert_eq!(batch.column(2).as_primitive::<Int64Type>().value(0), 3);
    assert!(batch.column(2).is_null(1));
    assert_eq!(batch.column(2).as_primitive::<Int64Type>().value(2), 4);
    assert_eq!(batch.column(1).as_string::<i32>().value(2), "Ünïcode \"q\"");
    assert_eq!(
        batch
            .column(3)
            .as_primitive::<TimestampMillisecondType>()
            .value(0),
        at(9).timestamp_millis()
    );
    let error = decode(json!([{"NumberOfEmployees": "many", "Id": "001C"}])).unwrap_err();
    assert!(
        error.message.contains("001C") && error.message.contains("NumberOfEmployees"),
        "{error}"
    );
    let error = decode(json!([{"Id": "001D", "LastModifiedDate": "yesterday"}])).unwrap_err();
    assert!(error.message.contains("LastModifiedDate"), "{error}");
    let error = decode(json!([{}, {"NumberOfEmployees": 1e300}])).unwrap_err();
    assert!(
        error.message.contains("record number 2 of the page"),
        "{error}"
    );
    let error = decode(json!([{"Name": {"nested": true}, "NumberOfEmployees": true}])).unwrap_err();
    assert!(error.message.contains("NumberOfEmployees (int)"), "{error}");
    assert!(decode_rest_page("Account", &fields, &schema, b"{\"records\": [").is_err());
    assert!(decode_rest_page("Account", &fields, &schema, b"[]").is_err());
}

fn write_request(profile: &Profile, destination: Value) -> WriteRequest {
    write_request_to(
        profile,
        destination,
        Arc::new(sluice_connector_api::NoErrorLocation),
    )
}

/// A write request whose rejected records go to `rejected`.
fn write_request_to(
    profile: &Profile,
    destination: Value,
    rejected: Arc<dyn sluice_connector_api::RejectedRecordSink>,
) -> WriteRequest {
    WriteRequest {
        flow_name: "write-back".into(),
        execution_id: "exec-2".into(),
        destination: serde_json::from_value(json!({
            "connectorType": "Salesforce",
            "connectorProfileName": "sf",
            "destinationConnectorProperties": {"Salesforce": destination},
        }))
        .unwrap(),
        profile: Some(profile.clone()),
        schema_version: 1,
        run_started_at: Utc::now(),
        partition_keys: Vec::new(),
        rejected,
    }
}

fn account_batch(rows: &[(Option<&str>, &str, Option<i64>)]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("Name", DataType::Utf8, true),
        Field::new("External_Id__c", DataType::Utf8, true),
        Field::new("NumberOfEmployees", DataType::Int64, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| Some(r.1)).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

#[tokio::test]
async fn upsert_write_back_counts_rejected_records() {
    let fake = fake().await;
    fake.insert(
        "Account",
        vec![obj(json!({"Name": "Old", "External_Id__c": "ext-1"}))],
    );
    let connector = connector(&fake);
    let (profile, _) = token_profile(&fake);
    let destination = json!({
        "object": "Account",
        "writeOperationType": "UPSERT",
        "idFieldNames": ["External_Id__c"],
        "errorHandlingConfig": {"failOnFirstDestinationError": false},
    });
    let rejected = Arc::new(CollectRejected::default());
    let mut writer = connector
        .open_writer(write_request_to(
            &profile,
            destination.clone(),
            rejected.clone(),
        ))
        .await
        .unwrap();
    // 450 records, below the Bulk threshold: three collection calls; one update, new inserts,
    // and two rejected rows (a missing Name on insert, a name longer than 255 characters).
    let long = "x".repeat(300);
    let mut rows: Vec<(Option<String>, String, Option<i64>)> =
        vec![(Some("Renamed".into()), "ext-1".into(), Some(7))];
    for i in 0..447 {
        rows.push((Some(format!("New {i}")), format!("ext-new-{i}"), Some(i)));
    }
    rows.push((None, "ext-no-name".into(), None));
    rows.push((Some(long), "ext-long".into(), None));
    let borrowed: Vec<(Option<&str>, &str, Option<i64>)> = rows
        .iter()
        .map(|(n, e, c)| (n.as_deref(), e.as_str(), *c))
        .collect();
    for chunk in borrowed.chunks(150) {
        writer.write(account_batch(chunk)).await.unwrap();
    }
    let summary = writer.commit().await.unwrap();
    assert_eq!(summary.records_written, 448);
    assert_eq!(summary.put_failures, 2);
    let stats = fake.stats();
    assert_eq!((stats.collection_calls, stats.bulk_ingest_jobs), (3, 0));
    // Both rejected records reach the error location with Salesforce's code and message.
    let mut handed = rejected.records();
    handed.sort_by(|a, b| a.code.cmp(&b.code));
    assert_eq!(handed.len(), 2);
    assert_eq!(handed[0].code.as_deref(), Some("REQUIRED_FIELD_MISSING"));
    assert_eq!(handed[0].record["External_Id__c"], "ext-no-name");
    assert_eq!(
        handed[0].record.get("Name"),
        Some(&Value::Null),
        "an upsert sends a null, which clears the field"
    );
    assert!(handed[0].message.contains("[Name]"), "{:?}", handed[0]);
    assert_eq!(handed[1].code.as_deref(), Some("STRING_TOO_LONG"));
    assert_eq!(handed[1].record["Name"], "x".repeat(300));
    let records = fake.records("Account");
    assert_eq!(records.len(), 448);
    let renamed = records
        .iter()
        .find(|r| r["External_Id__c"] == "ext-1")
        .unwrap();
    assert_eq!(renamed["Name"], "Renamed");
    assert_eq!(renamed["NumberOfEmployees"], 7);

    // Stopping at the first error.
    let mut strict = destination.clone();
    strict["errorHandlingConfig"]["failOnFirstDestinationError"] = json!(true);
    let rejected = Arc::new(CollectRejected::default());
    let mut writer = connector
        .open_writer(write_request_to(&profile, strict, rejected.clone()))
        .await
        .unwrap();
    writer
        .write(account_batch(&[
            (None, "ext-bad", None),
            (None, "ext-bad-too", None),
        ]))
        .await
        .unwrap();
    let error = writer.commit().await.unwrap_err();
    assert!(error.message.contains("REQUIRED_FIELD_MISSING"), "{error}");
    // The failing record is handed over before the run stops, and only that one.
    let handed = rejected.records();
    assert_eq!(handed.len(), 1);
    assert_eq!(handed[0].record["External_Id__c"], "ext-bad");

    // UPSERT without an external id field is a configuration error.
    let error = connector
        .open_writer(write_request(
            &profile,
            json!({"object": "Account", "writeOperationType": "UPSERT"}),
        ))
        .await
        .err()
        .unwrap();
    assert_eq!(error.kind, ConnectorErrorKind::InvalidConfig);
}

#[tokio::test]
async fn insert_update_and_delete() {
    let fake = fake().await;
    let connector = connector(&fake);
    let (profile, _) = token_profile(&fake);
    let mut writer = connector
        .open_writer(write_request(&profile, json!({"object": "Account"})))
        .await
        .unwrap();
    writer
        .write(account_batch(&[
            (Some("A"), "e1", None),
            (Some("B"), "e2", Some(2)),
        ]))
        .await
        .unwrap();
    assert_eq!(writer.commit().await.unwrap().records_written, 2);
    let ids: Vec<String> = fake
        .records("Account")
        .iter()
        .map(|r| r["Id"].as_str().unwrap().to_owned())
        .collect();

    let schema = Arc::new(Schema::new(vec![
        Field::new("Id", DataType::Utf8, true),
        Field::new("Phone", DataType::Utf8, true),
    ]));
    let updates = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec![
                ids[0].as_str(),
                "001999999999999AAA",
            ])),
            Arc::new(StringArray::from(vec!["555", "000"])),
        ],
    )
    .unwrap();
    let mut writer = connector
        .open_writer(write_request(
            &profile,
            json!({"object": "Account", "writeOperationType": "UPDATE"}),
        ))
        .await
        .unwrap();
    writer.write(updates).await.unwrap();
    let summary = writer.commit().await.unwrap();
    assert_eq!((summary.records_written, summary.put_failures), (1, 1));

    let deletes = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("Id", DataType::Utf8, true)])),
        vec![Arc::new(StringArray::from(vec![ids[1].as_str()]))],
    )
    .unwrap();
    let mut writer = connector
        .open_writer(write_request(
            &profile,
            json!({"object": "Account", "writeOperationType": "DELETE"}),
        ))
        .await
        .unwrap();
    writer.write(deletes).await.unwrap();
    assert_eq!(writer.commit().await.unwrap().records_written, 1);
    let left = fake.records("Account");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["Phone"], "555");

    // A record without the id an UPDATE needs is refused before anything is sent.
    let mut writer = connector
        .open_writer(write_request(
            &profile,
            json!({"object": "Account", "writeOperationType": "UPDATE"}),
        ))
        .await
        .unwrap();
    let missing = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![None::<&str>])),
            Arc::new(StringArray::from(vec!["1"])),
        ],
    )
    .unwrap();
    let error = writer.write(missing).await.unwrap_err();
    assert!(error.message.contains("no Id value"), "{error}");
}

// ---- Bulk API 2.0 ----

fn bulk_connector(fake: &FakeSalesforce, bulk: BulkSettings) -> SalesforceConnector {
    connector(fake).with_bulk_settings(bulk)
}

/// Accounts with awkward values: separators, quotes, line breaks, unicode, large doubles,
/// booleans, dates and nulls.
fn seed_accounts(fake: &FakeSalesforce, count: usize) -> Vec<String> {
    fake.insert(
        "Account",
        (0..count)
            .map(|i| {
                let mut record = json!({
                    "Name": format!("Acme {i:03}, \"Ünïcode\"\nline two"),
                    "NumberOfEmployees": i,
                    "AnnualRevenue": (i as f64) * 1.5e6 + 0.25,
                    "IsActive__c": i % 2 == 0,
                    "SLAExpirationDate__c": format!("2024-02-{:02}", i % 28 + 1),
                    "Industry": "Banking",
                });
                if i % 3 == 0 {
                    record["Phone"] = json!("+1 555 0100");
                }
                obj(record)
            })
            .collect(),
    )
}

fn source_with(api: &str, extra: Value) -> Value {
    let mut source = json!({"object": "Account", "dataTransferApi": api});
    if let (Some(source), Some(extra)) = (source.as_object_mut(), extra.as_object()) {
        source.extend(extra.clone());
    }
    source
}

/// Every row of `batches` as text, keyed by `Id`, to compare reads of different APIs.
fn rows_by_id(batches: &[RecordBatch]) -> std::collections::BTreeMap<String, Vec<String>> {
    let options = arrow_cast::display::FormatOptions::new().with_null("<null>");
    let mut out = std::collections::BTreeMap::new();
    for batch in batches {
        // Time zone names need chrono-tz to display; compare the instants instead.
        let columns: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| match c.data_type() {
                DataType::Timestamp(..) => Err(c.as_primitive::<TimestampMillisecondType>()),
                _ => {
                    Ok(arrow_cast::display::ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
                }
            })
            .collect();
        let ids = batch.column_by_name("Id").unwrap().as_string::<i32>();
        for row in 0..batch.num_rows() {
            let values = columns
                .iter()
                .map(|c| match c {
                    Ok(formatter) => formatter.value(row).to_string(),
                    Err(instants) if instants.is_null(row) => "<null>".to_owned(),
                    Err(instants) => instants.value(row).to_string(),
                })
                .collect();
            assert!(
                out.insert(ids.value(row).to_owned(), values).is_none(),
                "row {} read twice",
                ids.value(row)
            );
        }
    }
    out
}

#[tokio::test]
async fn bulk_query_reads_every_page_with_the_types_rest_gives() {
    let fake = fake().await;
    fake.set_bulk_processing_polls(3);
    seed_accounts(&fake, 23);
    let connector = bulk_connector(
        &fake,
        BulkSettings {
            page_records: 5,
            ..BulkSettings::fast()
        },
    );
    let (profile, _) = token_profile(&fake);
    let mut request = read_request(&profile, source_with("BULKV2", json!({})), None, None);
    request.batch_rows = 3;
    let stats = request.stats.clone();
    let bulk = read_all(&connector, request).await;
    // 23 records in pages of 5 (5, 5, 5, 5, 3), each cut into batches of at most 3 rows.
    assert_eq!(
        bulk.iter().map(RecordBatch::num_rows).collect::<Vec<_>>(),
        [3, 2, 3, 2, 3, 2, 3, 2, 3]
    );
    assert!(stats.bytes_read() > 0);
    let after_bulk = fake.stats();
    assert_eq!(after_bulk.bulk_query_jobs, 1);
    assert_eq!(after_bulk.rest_queries, 0, "BULKV2 does not count first");
    assert!(fake.bulk_jobs().is_empty(), "the finished job is deleted");

    let rest = read_all(
        &connector,
        read_request(&profile, source_with("REST_SYNC", json!({})), None, None),
    )
    .await;
    assert_eq!(bulk[0].schema(), rest[0].schema());
    let (bulk_rows, rest_rows) = (rows_by_id(&bulk), rows_by_id(&rest));
    assert_eq!(bulk_rows.len(), 23);
    assert_eq!(bulk_rows, rest_rows);
    let any = bulk_rows.values().next().unwrap();
    assert!(
        any.iter().any(|v| v.contains("\"Ünïcode\"\nline two")),
        "{any:?}"
    );
}

#[tokio::test]
async fn bulk_query_all_includes_deleted_records() {
    let fake = fake().await;
    let ids = seed_accounts(&fake, 6);
    assert!(fake.delete("Account", &ids[1]));
    assert!(fake.delete("Account", &ids[4]));
    let connector = connector(&fake);
    let (profile, _) = token_profile(&fake);
    let projection = ["Id", "Name", "IsDeleted"];
    let everything = read_all(
        &connector,
        read_request(
            &profile,
            source_with("BULKV2", json!({"includeDeletedRecords": true})),
            Some(&projection),
            None,
        ),
    )
    .await;
    let deleted: Vec<bool> = everything
        .iter()
        .flat_map(|b| {
            b.column_by_name("IsDeleted")
                .unwrap()
                .as_boolean()
                .iter()
                .map(|v| v.unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(deleted.len(), 6);
    assert_eq!(deleted.iter().filter(|d| **d).count(), 2);
    let live = read_all(
        &connector,
        read_request(
            &profile,
            source_with("BULKV2", json!({})),
            Some(&projection),
            None,
        ),
    )
    .await;
    assert_eq!(live.iter().map(RecordBatch::num_rows).sum::<usize>(), 4);
}

#[tokio::test]
async fn automatic_counts_with_the_same_where_and_switches_at_the_threshold() {
    let fake = fake().await;
    let connector = bulk_connector(
        &fake,
        BulkSettings {
            source_threshold: 10,
            ..BulkSettings::fast()
        },
    );
    let (profile, _) = token_profile(&fake);
    fake.set_now(Some(at(8)));
    seed_accounts(&fake, 5);
    fake.set_now(Some(at(9) + chrono::Duration::minutes(1)));
    seed_accounts(&fake, 9);
    let window = || IncrementalWindow {
        field: "LastModifiedDate".into(),
        start: at(9),
        end: at(10),
    };
    let projection = ["Id", "Name"];
    let read = |source: Value, window: Option<IncrementalWindow>| {
        read_all(
            &connector,
            read_request(&profile, source, Some(&projection), window),
        )
    };

    // Nine records in the window: below the threshold, REST (a count, then the query).
    let rows = read(json!({"object": "Account"}), Some(window())).await;
    assert_eq!(rows.iter().map(RecordBatch::num_rows).sum::<usize>(), 9);
    let stats = fake.stats();
    assert_eq!((stats.rest_queries, stats.bulk_query_jobs), (2, 0));

    // The tenth record in the window reaches the threshold: Bulk API 2.0.
    seed_accounts(&fake, 1);
    let rows = read(source_with("AUTOMATIC", json!({})), Some(window())).await;
    assert_eq!(rows.iter().map(RecordBatch::num_rows).sum::<usize>(), 10);
    let stats = fake.stats();
    assert_eq!((stats.rest_queries, stats.bulk_query_jobs), (3, 1));

    // REST_SYNC forces REST at any size, without counting.
    let rows = read(source_with("REST_SYNC", json!({})), None).await;
    assert_eq!(rows.iter().map(RecordBatch::num_rows).sum::<usize>(), 15);
    let stats = fake.stats();
    assert_eq!((stats.rest_queries, stats.bulk_query_jobs), (4, 1));
}

#[tokio::test]
async fn bulk_download_resumes_after_throttling_mid_download() {
    let fake = fake().await;
    seed_accounts(&fake, 40);
    let connector = bulk_connector(
        &fake,
        BulkSettings {
            page_records: 4,
            ..BulkSettings::fast()
        },
    );
    let (profile, _) = token_profile(&fake);
    let mut stream = connector
        .read(read_request(
            &profile,
            source_with("BULKV2", json!({})),
            Some(&["Id"]),
            None,
        ))
        .await
        .unwrap();
    let mut batches = vec![stream.try_next().await.unwrap().unwrap()];
    // The next page requests meet a 503 and REQUEST_LIMIT_EXCEEDED; each is retried where it
    // stopped.
    fake.inject([
        Fault::Unavailable {
            retry_after: Some(0),
        },
        Fault::RequestLimitExceeded,
        Fault::Unavailable { retry_after: None },
    ]);
    while let Some(batch) = stream.try_next().await.unwrap() {
        batches.push(batch);
    }
    let ids = rows_by_id(&batches);
    assert_eq!(
        ids.len(),
        40,
        "every record once (rows_by_id refuses duplicates)"
    );
    assert_eq!(fake.stats().faults_served, 3);
}

#[tokio::test]
async fn expired_token_during_a_bulk_download_is_renewed() {
    let fake = fake().await;
    seed_accounts(&fake, 30);
    let connector = bulk_connector(
        &fake,
        BulkSettings {
            page_records: 4,
            ..BulkSettings::fast()
        },
    );
    let (profile, _) = token_profile(&fake);
    let mut stream = connector
        .read(read_request(
            &profile,
            source_with("BULKV2", json!({})),
            Some(&["Id"]),
            None,
        ))
        .await
        .unwrap();
    let mut batches = vec![stream.try_next().await.unwrap().unwrap()];
    fake.expire_access_tokens();
    while let Some(batch) = stream.try_next().await.unwrap() {
        batches.push(batch);
    }
    assert_eq!(rows_by_id(&batches).len(), 30);
    let stats = fake.stats();
    assert_eq!(stats.grants.get("refresh_token"), Some(&1));
    assert_eq!(stats.unauthorized, 1);
}

#[tokio::test]
async fn failed_bulk_query_job_is_a_clear_error() {
    let fake = fake().await;
    seed_accounts(&fake, 3);
    fake.set_bulk_processing_polls(2);
    fake.fail_next_bulk_job("QueryTimeout : the query took longer than 2 minutes");
    let connector = connector(&fake);
    let (profile, _) = token_profile(&fake);
    let stream = connector
        .read(read_request(
            &profile,
            source_with("BULKV2", json!({})),
            Some(&["Id"]),
            None,
        ))
        .await
        .unwrap();
    let error = stream.try_collect::<Vec<_>>().await.unwrap_err();
    assert_eq!(error.kind, ConnectorErrorKind::Unavailable);
    assert!(
        error.message.contains("query job 750")
            && error.message.contains("ended Failed")
            && error
                .message
                .contains("QueryTimeout : the query took longer than 2 minutes"),
        "{error}"
    );

    // A compound field cannot be read in bulk on its own; next to others it is null.
    fake.add_field("Account", FieldDef::new("BillingAddress", "address"));
    let error = connector
        .read(read_request(
            &profile,
            source_with("BULKV2", json!({})),
            Some(&["BillingAddress"]),
            None,
        ))
        .await
        .err()
        .unwrap();
    assert_eq!(error.kind, ConnectorErrorKind::InvalidConfig);
    assert!(error.message.contains("BillingAddress"), "{error}");
    let rows = read_all(
        &connector,
        read_request(
            &profile,
            source_with("BULKV2", json!({})),
            Some(&["Id", "BillingAddress"]),
            None,
        ),
    )
    .await;
    assert_eq!(rows[0].column(1).null_count(), 3);
}

fn upsert_destination(api: &str, fail_on_first: bool) -> Value {
    json!({
        "object": "Account",
        "writeOperationType": "UPSERT",
        "idFieldNames": ["External_Id__c"],
        "dataTransferApi": api,
        "errorHandlingConfig": {"failOnFirstDestinationError": fail_on_first},
    })
}

#[tokio::test]
async fn bulk_ingest_hands_rejected_records_over_and_splits_large_uploads() {
    let fake = fake().await;
    fake.insert(
        "Account",
        vec![obj(json!({"Name": "Old", "External_Id__c": "ext-0"}))],
    );
    fake.set_bulk_processing_polls(1);
    let connector = bulk_connector(
        &fake,
        BulkSettings {
            destination_threshold: 20,
            ..BulkSettings::fast()
        },
    );
    let (profile, _) = token_profile(&fake);
    let rejected = Arc::new(CollectRejected::default());
    let mut writer = connector
        .open_writer(write_request_to(
            &profile,
            upsert_destination("AUTOMATIC", false),
            rejected.clone(),
        ))
        .await
        .unwrap();
    let mut rows: Vec<(Option<String>, String, Option<i64>)> = (0..36)
        .map(|i| {
            (
                Some(format!("Name, \"{i}\" Ü")),
                format!("ext-{i}"),
                Some(i),
            )
        })
        .collect();
    // Rejected: no Name on insert, and one external id twice.
    rows.push((None, "ext-no-name".into(), None));
    rows.push((Some("Twin A".into()), "ext-twin".into(), None));
    rows.push((Some("Twin B".into()), "ext-twin".into(), None));
    let borrowed: Vec<(Option<&str>, &str, Option<i64>)> = rows
        .iter()
        .map(|(n, e, c)| (n.as_deref(), e.as_str(), *c))
        .collect();
    // The twins travel in the same job: batches of 13 decide after the second (26 >= 20).
    for chunk in borrowed[..26].chunks(13) {
        writer.write(account_batch(chunk)).await.unwrap();
    }
    writer.write(account_batch(&borrowed[26..])).await.unwrap();
    let summary = writer.commit().await.unwrap();
    assert_eq!(summary.records_written, 36);
    assert_eq!(summary.put_failures, 3);
    let stats = fake.stats();
    assert_eq!((stats.collection_calls, stats.bulk_ingest_jobs), (0, 1));
    let records = fake.records("Account");
    assert_eq!(records.len(), 36, "ext-0 updated in place, 35 new");
    let first = records
        .iter()
        .find(|r| r["External_Id__c"] == "ext-0")
        .unwrap();
    assert_eq!(first["Name"], "Name, \"0\" Ü");
    assert_eq!(first["NumberOfEmployees"], 0);
    let mut handed = rejected.records();
    handed.sort_by(|a, b| {
        a.record["External_Id__c"]
            .as_str()
            .cmp(&b.record["External_Id__c"].as_str())
    });
    let summary: Vec<(Option<&str>, &str)> = handed
        .iter()
        .map(|r| {
            (
                r.code.as_deref(),
                r.record["External_Id__c"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (Some("REQUIRED_FIELD_MISSING"), "ext-no-name"),
            (Some("DUPLICATE_EXTERNAL_ID"), "ext-twin"),
            (Some("DUPLICATE_EXTERNAL_ID"), "ext-twin"),
        ]
    );
    assert!(
        handed[0].message.starts_with("Required fields are missing"),
        "{:?}",
        handed[0]
    );
    assert!(handed[1].record.contains_key("Name"));
}

#[tokio::test]
async fn bulk_fail_on_first_error_hands_that_record_over_and_stops() {
    let fake = fake().await;
    let connector = connector(&fake);
    let (profile, _) = token_profile(&fake);
    let rejected = Arc::new(CollectRejected::default());
    let mut writer = connector
        .open_writer(write_request_to(
            &profile,
            upsert_destination("BULKV2", true),
            rejected.clone(),
        ))
        .await
        .unwrap();
    writer
        .write(account_batch(&[
            (Some("Good"), "ok-1", None),
            (None, "bad-1", None),
            (None, "bad-2", None),
        ]))
        .await
        .unwrap();
    let error = writer.commit().await.unwrap_err();
    assert!(
        error.message.contains("REQUIRED_FIELD_MISSING") || error.message.contains("Required"),
        "{error}"
    );
    let handed = rejected.records();
    assert_eq!(handed.len(), 1);
    assert_eq!(handed[0].code.as_deref(), Some("REQUIRED_FIELD_MISSING"));
    assert_eq!(fake.stats().bulk_ingest_jobs, 1);
    assert_eq!(
        fake.records("Account").len(),
        1,
        "the job wrote the good record"
    );
}

#[tokio::test]
async fn bulk_insert_update_delete_and_refused_jobs() {
    let fake = fake().await;
    let connector = connector(&fake);
    let (profile, _) = token_profile(&fake);
    let bulk_write = |destination: Value, batch: RecordBatch| {
        let connector = &connector;
        let profile = &profile;
        async move {
            let rejected = Arc::new(CollectRejected::default());
            let mut writer = connector
                .open_writer(write_request_to(profile, destination, rejected.clone()))
                .await?;
            writer.write(batch).await?;
            writer
                .commit()
                .await
                .map(|summary| (summary, rejected.records()))
        }
    };
    let rows: Vec<(Option<&str>, &str, Option<i64>)> =
        vec![(Some("A"), "e1", Some(1)), (Some("B"), "e2", None)];
    let (summary, _) = bulk_write(
        json!({"object": "Account", "dataTransferApi": "BULKV2"}),
        account_batch(&rows),
    )
    .await
    .unwrap();
    assert_eq!((summary.records_written, summary.put_failures), (2, 0));
    let mut ids: Vec<String> = fake
        .records("Account")
        .iter()
        .map(|r| r["Id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();

    let updates = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("Id", DataType::Utf8, true),
            Field::new("Phone", DataType::Utf8, true),
        ])),
        vec![
            Arc::new(StringArray::from(vec![
                ids[0].as_str(),
                "001999999999999AAA",
            ])),
            Arc::new(StringArray::from(vec!["555", "000"])),
        ],
    )
    .unwrap();
    let (summary, handed) = bulk_write(
        json!({"object": "Account", "writeOperationType": "UPDATE", "dataTransferApi": "BULKV2"}),
        updates,
    )
    .await
    .unwrap();
    assert_eq!((summary.records_written, summary.put_failures), (1, 1));
    assert_eq!(
        handed[0].code.as_deref(),
        Some("INVALID_CROSS_REFERENCE_KEY")
    );
    assert_eq!(handed[0].record["Id"], "001999999999999AAA");

    // DELETE sends the id column only, whatever else the records hold.
    let deletes = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("Name", DataType::Utf8, true),
            Field::new("Id", DataType::Utf8, true),
        ])),
        vec![
            Arc::new(StringArray::from(vec!["ignored"])),
            Arc::new(StringArray::from(vec![ids[1].as_str()])),
        ],
    )
    .unwrap();
    let (summary, _) = bulk_write(
        json!({"object": "Account", "writeOperationType": "DELETE", "dataTransferApi": "BULKV2"}),
        deletes,
    )
    .await
    .unwrap();
    assert_eq!(summary.records_written, 1);
    let left = fake.records("Account");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["Phone"], "555");

    // A column Salesforce does not know fails the job as a whole, with its reason.
    let unknown = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "Nope__c",
            DataType::Utf8,
            true,
        )])),
        vec![Arc::new(StringArray::from(vec!["x"]))],
    )
    .unwrap();
    let error = bulk_write(
        json!({"object": "Account", "dataTransferApi": "BULKV2"}),
        unknown,
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind, ConnectorErrorKind::InvalidConfig);
    assert!(
        error.message.contains("Field name not found : Nope__c")
            && error.message.contains("ingest job 750"),
        "{error}"
    );
}

#[tokio::test]
async fn bulk_uploads_are_split_by_size_and_by_columns() {
    let fake = fake().await;
    let connector = bulk_connector(
        &fake,
        BulkSettings {
            upload_max_bytes: 300,
            ..BulkSettings::fast()
        },
    );
    let (profile, _) = token_profile(&fake);
    let mut writer = connector
        .open_writer(write_request(
            &profile,
            json!({"object": "Account", "dataTransferApi": "BULKV2"}),
        ))
        .await
        .unwrap();
    let names: Vec<String> = (0..40).map(|i| format!("Account number {i:02}")).collect();
    let externals: Vec<String> = (0..40).map(|i| format!("split-{i}")).collect();
    let rows: Vec<(Option<&str>, &str, Option<i64>)> = names
        .iter()
        .zip(&externals)
        .map(|(n, e)| (Some(n.as_str()), e.as_str(), None))
        .collect();
    writer.write(account_batch(&rows)).await.unwrap();
    // Other columns: the CSV header changes, so the next record starts a job of its own.
    let names_only = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("Name", DataType::Utf8, true)])),
        vec![Arc::new(StringArray::from(vec!["Only a name"]))],
    )
    .unwrap();
    writer.write(names_only).await.unwrap();
    let summary = writer.commit().await.unwrap();
    assert_eq!((summary.records_written, summary.put_failures), (41, 0));
    // A 38-byte header and 27- or 28-byte records: nine records per 300-byte upload, so five
    // jobs, then the one-column job.
    assert_eq!(fake.stats().bulk_ingest_jobs, 6);
    let mut written: Vec<String> = fake
        .records("Account")
        .iter()
        .map(|r| r["Name"].as_str().unwrap().to_owned())
        .collect();
    written.sort();
    assert_eq!(written.len(), 41);
    assert_eq!(written[0], "Account number 00");
    assert_eq!(written[40], "Only a name");

    // A record larger than one upload is refused with its size.
    let mut writer = connector
        .open_writer(write_request(
            &profile,
            json!({"object": "Account", "dataTransferApi": "BULKV2"}),
        ))
        .await
        .unwrap();
    let long = "y".repeat(400);
    let error = writer
        .write(account_batch(&[(Some(long.as_str()), "big", None)]))
        .await
        .unwrap_err();
    assert!(error.message.contains("more than the 300 bytes"), "{error}");
}

#[tokio::test]
async fn a_result_shorter_than_the_job_announced_fails_the_run() {
    let fake = fake().await;
    let ids = seed_accounts(&fake, 10);
    let connector = bulk_connector(
        &fake,
        BulkSettings {
            page_records: 2,
            ..BulkSettings::fast()
        },
    );
    let (profile, _) = token_profile(&fake);
    let mut stream = connector
        .read(read_request(
            &profile,
            source_with("BULKV2", json!({})),
            Some(&["Id"]),
            None,
        ))
        .await
        .unwrap();
    let first = stream.try_next().await.unwrap().unwrap();
    assert_eq!(first.num_rows(), 2);
    // Meanwhile someone hard-deletes three records with a Bulk API 2.0 job of their own: the
    // later pages shrink below the count the completed job announced.
    let http = reqwest::Client::new();
    let token = fake.issue_access_token();
    let jobs = format!("{}/services/data/v58.0/jobs/ingest", fake.url());
    let job: Value = http
        .post(&jobs)
        .bearer_auth(&token)
        .json(&json!({"object": "Account", "operation": "hardDelete"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = job["id"].as_str().unwrap();
    let upload = http
        .put(format!("{jobs}/{id}/batches"))
        .bearer_auth(&token)
        .header("content-type", "text/csv")
        .body(format!("Id\n{}\n{}\n{}\n", ids[7], ids[8], ids[9]))
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201);
    let closed = http
        .patch(format!("{jobs}/{id}"))
        .bearer_auth(&token)
        .json(&json!({"state": "UploadComplete"}))
        .send()
        .await
        .unwrap();
    assert_eq!(closed.status(), 200);
    let error = loop {
        match stream.try_next().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the stream ended without noticing the missing records"),
            Err(error) => break error,
        }
    };
    assert_eq!(error.kind, ConnectorErrorKind::Unavailable);
    assert!(
        error
            .message
            .contains("processed 10 records but its results held 7"),
        "{error}"
    );
}

/// `(Name, External_Id__c)` as `{prefix} 07`, `{prefix}-07`: rows of one width.
fn numbered(prefix: &str, count: usize) -> Vec<(String, String)> {
    (0..count)
        .map(|i| (format!("{prefix} {i:02}"), format!("{prefix}-{i:02}")))
        .collect()
}

/// Account records of `rows`, with `NumberOfEmployees` 10 + the row number (two digits).
fn numbered_batch(rows: &[(String, String)]) -> RecordBatch {
    let borrowed: Vec<(Option<&str>, &str, Option<i64>)> = rows
        .iter()
        .enumerate()
        .map(|(i, (n, e))| (Some(n.as_str()), e.as_str(), i64::try_from(i + 10).ok()))
        .collect();
    account_batch(&borrowed)
}

#[tokio::test]
async fn records_a_bulk_job_did_not_process_are_put_failures() {
    let fake = fake().await;
    let connector = bulk_connector(
        &fake,
        BulkSettings {
            // A 38-byte header and ten 19-byte records per job.
            upload_max_bytes: 240,
            ..BulkSettings::fast()
        },
    );
    let (profile, _) = token_profile(&fake);
    // The first job completes after 3 of its records, the second fails after 1 (whose record
    // Salesforce also rejected), the third is aborted before any; the fourth is whole.
    fake.interrupt_next_ingest_job(3, InterruptedEnd::Complete);
    fake.interrupt_next_ingest_job(
        1,
        InterruptedEnd::Failed("ServerUnavailable : the job was stopped".into()),
    );
    fake.interrupt_next_ingest_job(0, InterruptedEnd::Aborted);
    let rejected = Arc::new(CollectRejected::default());
    let mut writer = connector
        .open_writer(write_request_to(
            &profile,
            upsert_destination("BULKV2", false),
            rejected.clone(),
        ))
        .await
        .unwrap();
    let mut rows = numbered("Acct", 40);
    // The first record of the second job has no name: rejected, not unprocessed.
    rows[10].0 = String::new();
    writer.write(numbered_batch(&rows)).await.unwrap();
    let summary = writer.commit().await.unwrap();
    let jobs = fake.bulk_jobs();
    assert_eq!(jobs.len(), 4, "{jobs:#?}");
    let states: Vec<(&str, u64)> = jobs
        .iter()
        .map(|j| {
            (
                j["state"].as_str().unwrap(),
                j["numberRecordsProcessed"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("JobComplete", 3),
            ("Failed", 1),
            ("Aborted", 0),
            ("JobComplete", 10)
        ]
    );
    // Written: 3 + 0 + 0 + 10; failed: 7 unprocessed, 1 rejected and 9 unprocessed, 10.
    assert_eq!(summary.records_written, 13);
    assert_eq!(summary.put_failures, 27);
    assert_eq!(fake.records("Account").len(), 13);
    let handed = rejected.records();
    assert_eq!(handed.len(), 27);
    let of = |id: &str| {
        handed
            .iter()
            .find(|r| r.record["External_Id__c"] == id)
            .unwrap_or_else(|| panic!("{id} was not handed over: {handed:#?}"))
    };
    let first = of("Acct-03");
    assert_eq!(first.code.as_deref(), Some(UNPROCESSED));
    assert!(
        first
            .message
            .contains("completed without processing the record"),
        "{first:?}"
    );
    // The record as sent, every field.
    assert_eq!(first.record["Name"], "Acct 03");
    assert_eq!(first.record["NumberOfEmployees"], "13");
    let no_name = of("Acct-10");
    assert_eq!(no_name.code.as_deref(), Some("REQUIRED_FIELD_MISSING"));
    let failed = of("Acct-11");
    assert_eq!(failed.code.as_deref(), Some(UNPROCESSED));
    assert!(
        failed
            .message
            .contains("ended Failed before processing the record")
            && failed
                .message
                .contains("ServerUnavailable : the job was stopped"),
        "{failed:?}"
    );
    let aborted = of("Acct-20");
    assert!(
        aborted.message.contains("ended Aborted") && aborted.message.contains("no errorMessage"),
        "{aborted:?}"
    );
    assert!(
        handed
            .iter()
            .all(|r| !["Acct-00", "Acct-02", "Acct-30", "Acct-39"]
                .contains(&r.record["External_Id__c"].as_str().unwrap())),
        "processed records are not handed over"
    );
    let mut unprocessed: Vec<&str> = handed
        .iter()
        .filter(|r| r.code.as_deref() == Some(UNPROCESSED))
        .map(|r| r.record["External_Id__c"].as_str().unwrap())
        .collect();
    unprocessed.sort_unstable();
    unprocessed.dedup();
    assert_eq!(unprocessed.len(), 26, "each unprocessed record once");
}

#[tokio::test]
async fn an_unprocessed_record_stops_the_run_when_failing_on_the_first_error() {
    let fake = fake().await;
    let connector = connector(&fake);
    let (profile, _) = token_profile(&fake);
    fake.interrupt_next_ingest_job(2, InterruptedEnd::Complete);
    let rejected = Arc::new(CollectRejected::default());
    let mut writer = connector
        .open_writer(write_request_to(
            &profile,
            upsert_destination("BULKV2", true),
            rejected.clone(),
        ))
        .await
        .unwrap();
    writer
        .write(numbered_batch(&numbered("Stop", 5)))
        .await
        .unwrap();
    let error = writer.commit().await.unwrap_err();
    assert!(
        error
            .message
            .contains("completed without processing the record")
            && error
                .message
                .contains("stops at the first destination error"),
        "{error}"
    );
    let handed = rejected.records();
    assert_eq!(handed.len(), 1);
    assert_eq!(handed[0].code.as_deref(), Some(UNPROCESSED));
    assert_eq!(handed[0].record["External_Id__c"], "Stop-02");
    assert_eq!(fake.records("Account").len(), 2);
}

#[tokio::test]
async fn nulls_clear_fields_on_update_and_upsert_and_are_skipped_on_insert() {
    let fake = fake().await;
    let (profile, _) = token_profile(&fake);
    let phone_batch = |rows: &[(&str, Option<&str>, Option<&str>)]| {
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("External_Id__c", DataType::Utf8, false),
                Field::new("Name", DataType::Utf8, true),
                Field::new("Phone", DataType::Utf8, true),
            ])),
            vec![
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r.1).collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r.2).collect::<Vec<_>>(),
                )),
            ],
        )
        .unwrap()
    };
    for api in ["BULKV2", "REST_SYNC"] {
        let tag = |id: &str| format!("{api}-{id}");
        let (a, b, c) = (tag("a"), tag("b"), tag("c"));
        fake.insert(
            "Account",
            vec![
                obj(json!({"Name": "A", "External_Id__c": a, "Phone": "111"})),
                obj(json!({"Name": "B", "External_Id__c": b, "Phone": "222"})),
            ],
        );
        let write = |destination: Value, batch: RecordBatch| {
            let connector = connector(&fake);
            let profile = profile.clone();
            async move {
                let mut writer = connector
                    .open_writer(write_request(&profile, destination))
                    .await
                    .unwrap();
                writer.write(batch).await.unwrap();
                writer.commit().await.unwrap()
            }
        };
        // Upsert: a null or an empty Phone clears it; `c` is new.
        let summary = write(
            upsert_destination(api, true),
            phone_batch(&[
                (&a, Some("A"), None),
                (&b, Some("B2"), Some("")),
                (&c, Some("C"), None),
            ]),
        )
        .await;
        assert_eq!(
            (summary.records_written, summary.put_failures),
            (3, 0),
            "{api}"
        );
        let records = fake.records("Account");
        let get = |id: &str| {
            records
                .iter()
                .find(|r| r["External_Id__c"] == id)
                .cloned()
                .unwrap()
        };
        assert!(get(&a)["Phone"].is_null(), "{api}: {:?}", get(&a));
        assert_eq!(get(&b)["Name"], "B2", "{api}");
        assert!(
            get(&b)["Phone"].is_null() || get(&b)["Phone"] == "",
            "{api}: {:?}",
            get(&b)
        );
        assert!(get(&c)["Phone"].is_null(), "{api}");
        // Insert: a null is not sent; Salesforce leaves the field empty.
        let summary = write(
            json!({"object": "Account", "dataTransferApi": api}),
            phone_batch(&[(&tag("d"), Some("D"), None)]),
        )
        .await;
        assert_eq!(summary.records_written, 1, "{api}");
    }
    // A null Name on upsert reaches Salesforce as a null, which it refuses for a required
    // field, on either API.
    let upsert_null_name = |api: &'static str| {
        let connector = connector(&fake);
        let profile = profile.clone();
        async move {
            let rejected = Arc::new(CollectRejected::default());
            let mut writer = connector
                .open_writer(write_request_to(
                    &profile,
                    upsert_destination(api, false),
                    rejected.clone(),
                ))
                .await
                .unwrap();
            writer
                .write(
                    RecordBatch::try_new(
                        Arc::new(Schema::new(vec![
                            Field::new("External_Id__c", DataType::Utf8, false),
                            Field::new("Name", DataType::Utf8, true),
                        ])),
                        vec![
                            Arc::new(StringArray::from(vec![format!("{api}-a")])),
                            Arc::new(StringArray::from(vec![None::<&str>])),
                        ],
                    )
                    .unwrap(),
                )
                .await
                .unwrap();
            let summary = writer.commit().await.unwrap();
            (summary.put_failures, rejected.records())
        }
    };
    for api in ["BULKV2", "REST_SYNC"] {
        let (failures, handed) = upsert_null_name(api).await;
        assert_eq!(failures, 1, "{api}");
        assert_eq!(
            handed[0].code.as_deref(),
            Some("REQUIRED_FIELD_MISSING"),
            "{api}"
        );
        assert_eq!(handed[0].record["Name"], Value::Null, "{api}");
    }
}

#[tokio::test]
async fn non_finite_numbers_fail_before_anything_is_sent() {
    let fake = fake().await;
    let connector = connector(&fake);
    let (profile, _) = token_profile(&fake);
    let mut writer = connector
        .open_writer(write_request(
            &profile,
            json!({"object": "Account", "dataTransferApi": "BULKV2"}),
        ))
        .await
        .unwrap();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("Name", DataType::Utf8, false),
            Field::new("AnnualRevenue", DataType::Float64, true),
        ])),
        vec![
            Arc::new(StringArray::from(vec!["ok", "bad"])),
            Arc::new(arrow_array::Float64Array::from(vec![1.5, f64::NAN])),
        ],
    )
    .unwrap();
    let error = writer.write(batch).await.unwrap_err();
    assert_eq!(error.kind, ConnectorErrorKind::BadData);
    assert!(
        error.message.contains("field AnnualRevenue of record 1"),
        "{error}"
    );
    assert_eq!(fake.stats().bulk_ingest_jobs, 0);
}

/// A rejected-record sink that keeps the chunks as they were handed over.
#[derive(Debug, Default)]
struct ChunkedRejected(std::sync::Mutex<Vec<Vec<sluice_connector_api::RejectedRecord>>>);

#[async_trait::async_trait]
impl sluice_connector_api::RejectedRecordSink for ChunkedRejected {
    async fn put(
        &self,
        records: Vec<sluice_connector_api::RejectedRecord>,
    ) -> Result<(), sluice_connector_api::ConnectorError> {
        self.0.lock().unwrap().push(records);
        Ok(())
    }

    async fn finish(&self) -> Result<Vec<String>, sluice_connector_api::ConnectorError> {
        Ok(Vec::new())
    }
}

#[tokio::test]
async fn a_job_whose_every_record_failed_is_handed_over_in_chunks_as_it_downloads() {
    let fake = fake().await;
    let connector = connector(&fake);
    let (profile, _) = token_profile(&fake);
    let rejected = Arc::new(ChunkedRejected::default());
    let mut writer = connector
        .open_writer(write_request_to(
            &profile,
            upsert_destination("BULKV2", false),
            rejected.clone(),
        ))
        .await
        .unwrap();
    // No Name: every upsert creates a record, and every one is refused.
    let externals: Vec<String> = (0..2_500).map(|i| format!("ext-{i:05}")).collect();
    let rows: Vec<(Option<&str>, &str, Option<i64>)> =
        externals.iter().map(|e| (None, e.as_str(), None)).collect();
    for chunk in rows.chunks(700) {
        writer.write(account_batch(chunk)).await.unwrap();
    }
    // The failedResults download breaks off after about 1,100 of its records; it is requested
    // again and read on past the records already handed over.
    fake.break_next_body("failedResults", 100_000);
    let summary = writer.commit().await.unwrap();
    assert_eq!((summary.records_written, summary.put_failures), (0, 2_500));
    assert_eq!(fake.stats().bodies_broken, 1);
    let chunks = rejected.0.lock().unwrap();
    assert_eq!(
        chunks.iter().map(Vec::len).collect::<Vec<_>>(),
        [1_000, 1_000, 500]
    );
    let mut seen: Vec<&str> = chunks
        .iter()
        .flatten()
        .map(|r| {
            assert_eq!(r.code.as_deref(), Some("REQUIRED_FIELD_MISSING"), "{r:?}");
            r.record["External_Id__c"].as_str().unwrap()
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, externals, "every record exactly once");
    assert!(fake.records("Account").is_empty());
}

#[tokio::test]
async fn a_query_page_that_breaks_off_is_read_on_where_it_stopped() {
    let fake = fake().await;
    seed_accounts(&fake, 300);
    let connector = bulk_connector(
        &fake,
        BulkSettings {
            page_records: 250,
            ..BulkSettings::fast()
        },
    );
    let (profile, _) = token_profile(&fake);
    fake.break_next_body("/results", 6_000);
    let mut request = read_request(&profile, source_with("BULKV2", json!({})), None, None);
    request.batch_rows = 40;
    let batches = read_all(&connector, request).await;
    assert_eq!(fake.stats().bodies_broken, 1);
    // Batches fill up within a page; each page's last one holds the rest.
    assert_eq!(
        batches
            .iter()
            .map(RecordBatch::num_rows)
            .collect::<Vec<_>>(),
        [40, 40, 40, 40, 40, 40, 10, 40, 10]
    );
    let rows = rows_by_id(&batches);
    assert_eq!(
        rows.len(),
        300,
        "every record once (rows_by_id refuses duplicates)"
    );
    // The same values as a REST read.
    let rest = read_all(
        &connector,
        read_request(&profile, source_with("REST_SYNC", json!({})), None, None),
    )
    .await;
    assert_eq!(rows, rows_by_id(&rest));
}

/// A multi-select picklist `Regions__c` on Account.
fn add_regions(fake: &FakeSalesforce) {
    let mut regions = FieldDef::new("Regions__c", "multipicklist");
    regions.picklist = ["North", "South", "Ost-Süd"].map(String::from).to_vec();
    fake.add_field("Account", regions);
}

/// `External_Id__c`, `Name` and `Regions__c` as a list column.
fn regions_batch(rows: &[(&str, Option<Vec<Option<&str>>>)]) -> RecordBatch {
    use arrow_array::builder::{ListBuilder, StringBuilder};
    let mut regions = ListBuilder::new(StringBuilder::new());
    for (_, values) in rows {
        match values {
            Some(values) => {
                for value in values {
                    regions.values().append_option(*value);
                }
                regions.append(true);
            }
            None => regions.append(false),
        }
    }
    let externals: Vec<&str> = rows.iter().map(|r| r.0).collect();
    RecordBatch::try_from_iter([
        (
            "External_Id__c",
            Arc::new(StringArray::from(externals.clone())) as arrow_array::ArrayRef,
        ),
        ("Name", Arc::new(StringArray::from(externals)) as _),
        ("Regions__c", Arc::new(regions.finish()) as _),
    ])
    .unwrap()
}

#[tokio::test]
async fn list_columns_are_written_to_multi_select_picklists_as_salesforce_takes_them() {
    let fake = fake().await;
    add_regions(&fake);
    let connector = connector(&fake);
    let (profile, _) = token_profile(&fake);
    for api in ["REST_SYNC", "BULKV2"] {
        let id = |n: &str| format!("{api}-{n}");
        let (two, one, empty, none, bad, nulls) = (
            id("two"),
            id("one"),
            id("empty"),
            id("none"),
            id("bad"),
            id("nulls"),
        );
        let rejected = Arc::new(CollectRejected::default());
        let mut writer = connector
            .open_writer(write_request_to(
                &profile,
                upsert_destination(api, false),
                rejected.clone(),
            ))
            .await
            .unwrap();
        writer
            .write(regions_batch(&[
                (&two, Some(vec![Some("North"), Some("South")])),
                (&one, Some(vec![Some("Ost-Süd")])),
                (&empty, Some(vec![])),
                (&none, None),
                (&bad, Some(vec![Some("North"), Some("West")])),
                (&nulls, Some(vec![None, Some("South"), Some(""), None])),
            ]))
            .await
            .unwrap();
        let summary = writer.commit().await.unwrap();
        assert_eq!(
            (summary.records_written, summary.put_failures),
            (5, 1),
            "{api}"
        );
        let stored: std::collections::HashMap<String, Value> = fake
            .records("Account")
            .into_iter()
            .map(|r| {
                (
                    r["External_Id__c"].as_str().unwrap().to_owned(),
                    r.get("Regions__c").cloned().unwrap_or(Value::Null),
                )
            })
            .collect();
        assert_eq!(stored[&two], "North;South", "{api}");
        assert_eq!(stored[&one], "Ost-Süd", "{api}");
        assert_eq!(stored[&empty], Value::Null, "{api}");
        assert_eq!(stored[&none], Value::Null, "{api}");
        assert_eq!(stored[&nulls], "South", "{api}");
        assert!(!stored.contains_key(&bad), "{api}");
        let handed = rejected.records();
        assert_eq!(handed.len(), 1, "{api}");
        assert_eq!(
            handed[0].code.as_deref(),
            Some("INVALID_TYPE_ON_FIELD_IN_RECORD"),
            "{api}: {:?}",
            handed[0]
        );
        assert_eq!(handed[0].record["Regions__c"], "North;West", "{api}");
    }
    // One describe per writer, only because a batch had a list column.
    let described = fake.stats().api_requests;
    let mut writer = connector
        .open_writer(write_request(
            &profile,
            upsert_destination("REST_SYNC", false),
        ))
        .await
        .unwrap();
    writer
        .write(account_batch(&[(Some("Plain"), "plain", None)]))
        .await
        .unwrap();
    writer.commit().await.unwrap();
    assert_eq!(fake.stats().api_requests - described, 1, "no describe");
}

#[tokio::test]
async fn lists_for_other_fields_and_values_holding_separators_are_refused() {
    let fake = fake().await;
    add_regions(&fake);
    let connector = connector(&fake);
    let (profile, _) = token_profile(&fake);
    let write = |batch: RecordBatch| {
        let connector = &connector;
        let profile = &profile;
        async move {
            let mut writer = connector
                .open_writer(write_request(
                    profile,
                    upsert_destination("REST_SYNC", false),
                ))
                .await
                .unwrap();
            writer.write(batch).await
        }
    };
    let error = write(regions_batch(&[("e1", Some(vec![Some("North;South")]))]))
        .await
        .unwrap_err();
    assert_eq!(error.kind, ConnectorErrorKind::BadData);
    assert!(
        error
            .message
            .contains("field Regions__c of record 0 holds the value 'North;South'"),
        "{error}"
    );
    let renamed = |name: &str| {
        let batch = regions_batch(&[("e1", Some(vec![Some("North")]))]);
        let mut fields: Vec<Field> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields[2] = fields[2].clone().with_name(name);
        RecordBatch::try_new(Arc::new(Schema::new(fields)), batch.columns().to_vec()).unwrap()
    };
    let error = write(renamed("Phone")).await.unwrap_err();
    assert!(
        error
            .message
            .contains("Salesforce Account.Phone is a phone field"),
        "{error}"
    );
    let error = write(renamed("Nowhere__c")).await.unwrap_err();
    assert!(
        error
            .message
            .contains("Salesforce Account has no field Nowhere__c"),
        "{error}"
    );
    assert!(fake.records("Account").is_empty());
}

#[tokio::test]
async fn multi_select_picklists_read_and_write_back_unchanged() {
    let fake = fake().await;
    add_regions(&fake);
    fake.insert(
        "Account",
        vec![
            obj(json!({"Name": "A", "Regions__c": "South;North"})),
            obj(json!({"Name": "B", "Regions__c": "Ost-Süd"})),
            obj(json!({"Name": "C"})),
        ],
    );
    let before = fake.records("Account");
    let connector = connector(&fake);
    let (profile, _) = token_profile(&fake);
    let projection = ["Id", "Name", "Regions__c"];
    let mut reads = Vec::new();
    for api in ["REST_SYNC", "BULKV2"] {
        let batches = read_all(
            &connector,
            read_request(
                &profile,
                source_with(api, json!({})),
                Some(&projection),
                None,
            ),
        )
        .await;
        assert_eq!(
            batches[0].schema().field(2).data_type(),
            &DataType::Utf8,
            "{api}"
        );
        let rows = rows_by_id(&batches);
        let mut regions: Vec<&str> = rows.values().map(|r| r[2].as_str()).collect();
        regions.sort_unstable();
        assert_eq!(regions, ["<null>", "Ost-Süd", "South;North"], "{api}");
        reads.push((api, batches));
    }
    for (api, batches) in reads {
        let destination = json!({
            "object": "Account",
            "writeOperationType": "UPDATE",
            "idFieldNames": ["Id"],
            "dataTransferApi": api,
        });
        let mut writer = connector
            .open_writer(write_request(&profile, destination))
            .await
            .unwrap();
        for batch in batches {
            writer.write(batch).await.unwrap();
        }
        let summary = writer.commit().await.unwrap();
        assert_eq!(
            (summary.records_written, summary.put_failures),
            (3, 0),
            "{api}"
        );
        let values = |records: &[Map<String, Value>]| -> Vec<(Value, Value)> {
            records
                .iter()
                .map(|r| {
                    (
                        r["Name"].clone(),
                        r.get("Regions__c").cloned().unwrap_or(Value::Null),
                    )
                })
                .collect()
        };
        assert_eq!(values(&fake.records("Account")), values(&before), "{api}");
    }
}
