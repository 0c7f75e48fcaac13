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
    Connector, ConnectorErrorKind, EntityContext, IncrementalWindow, Profile, PushdownFilter,
    ReadRequest, ReadStats, WriteRequest,
};
use sluice_connector_http_util::RetryConfig;
use sluice_fake_salesforce::{FakeSalesforce, Fault, FieldDef};
use sluice_types::Sensitive;

use super::*;
use crate::source::{SfField, plan_query, records_to_batch};

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
    let bulk = connector
        .read(read_request(
            &profile,
            json!({"object": "Account", "dataTransferApi": "BULKV2"}),
            None,
            None,
        ))
        .await
        .err()
        .unwrap();
    assert_eq!(bulk.kind, ConnectorErrorKind::Unsupported);
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

#[test]
fn malformed_records_name_the_field_and_record() {
    let fields = described();
    let ok = records_to_batch(
        "Account",
        &fields,
        &[
            json!({"Id": "001A", "Name": null, "NumberOfEmployees": 3, "LastModifiedDate": "2025-03-01T09:00:00.000+0000"}),
            json!({"Id": "001B"}),
        ],
    )
    .unwrap();
    assert_eq!(ok.num_rows(), 2);
    assert!(ok.column(1).is_null(0));
    assert_eq!(ok.column(2).as_primitive::<Int64Type>().value(0), 3);
    let error = records_to_batch(
        "Account",
        &fields,
        &[json!({"Id": "001C", "NumberOfEmployees": "many"})],
    )
    .unwrap_err();
    assert!(
        error.message.contains("001C") && error.message.contains("NumberOfEmployees"),
        "{error}"
    );
    let error = records_to_batch(
        "Account",
        &fields,
        &[json!({"Id": "001D", "LastModifiedDate": "yesterday"})],
    )
    .unwrap_err();
    assert!(error.message.contains("LastModifiedDate"), "{error}");
    let overflow = records_to_batch(
        "Account",
        &fields,
        &[json!({"Id": "001E", "NumberOfEmployees": 1e300})],
    );
    assert!(overflow.is_err());
}

fn write_request(profile: &Profile, destination: Value) -> WriteRequest {
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
    let mut writer = connector
        .open_writer(write_request(&profile, destination.clone()))
        .await
        .unwrap();
    // 450 records: three collection calls; one update, new inserts, and two rejected rows
    // (a missing Name on insert, a name longer than 255 characters).
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
    let mut writer = connector
        .open_writer(write_request(&profile, strict))
        .await
        .unwrap();
    writer
        .write(account_batch(&[(None, "ext-bad", None)]))
        .await
        .unwrap();
    let error = writer.commit().await.unwrap_err();
    assert!(error.message.contains("REQUIRED_FIELD_MISSING"), "{error}");

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
