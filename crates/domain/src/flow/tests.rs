use serde_json::{Value, json};
use sluice_api_model::{ConnectorType, CreateFlowRequest, DescribeFlowResponse, UpdateFlowRequest};

use super::*;
use crate::connectors::{ConnectorCapability, Support};

/// The CreateFlow request boto3 sends (spec §A.8).
fn boto3_flow() -> Value {
    json!({
        "flowName": "my-flow",
        "triggerConfig": {"triggerType": "OnDemand"},
        "sourceFlowConfig": {"connectorType": "S3", "sourceConnectorProperties": {"S3": {
            "bucketName": "src-bkt", "bucketPrefix": "in", "s3InputFormatConfig": {"s3InputFileType": "CSV"}}}},
        "destinationFlowConfigList": [{"connectorType": "S3", "destinationConnectorProperties": {"S3": {
            "bucketName": "dst-bkt", "bucketPrefix": "out",
            "s3OutputFormatConfig": {"fileType": "JSON", "aggregationConfig": {"aggregationType": "None"}}}}}],
        "tasks": [
            {"sourceFields": ["id", "name"], "connectorOperator": {"S3": "PROJECTION"}, "taskType": "Filter", "taskProperties": {}},
            {"sourceFields": ["id"], "connectorOperator": {"S3": "NO_OP"}, "destinationField": "id", "taskType": "Map",
             "taskProperties": {"SOURCE_DATA_TYPE": "string", "DESTINATION_DATA_TYPE": "string"}}
        ],
        "tags": {"team": "data"},
        "clientToken": "c42ac4fa-bc51-43a0-8a5e-6f1a2c053239"
    })
}

fn request(body: &Value) -> CreateFlowRequest {
    serde_json::from_value(body.clone()).unwrap()
}

fn check_with(body: &Value, caps: &Capabilities) -> Result<ValidatedFlow, DomainError> {
    validate_flow(&request(body), caps)
}

fn check(body: &Value) -> Result<ValidatedFlow, DomainError> {
    check_with(body, &Capabilities::default())
}

fn error_with(body: &Value, caps: &Capabilities) -> DomainError {
    match check_with(body, caps) {
        Ok(flow) => panic!("expected an error, got {flow:?}"),
        Err(error) => error,
    }
}

fn error(body: &Value) -> DomainError {
    error_with(body, &Capabilities::default())
}

/// The default capabilities plus these connectors, enabled at both ends.
fn caps_with(connectors: &[ConnectorType]) -> Capabilities {
    connectors
        .iter()
        .fold(Capabilities::default(), |caps, connector| {
            caps.with(ConnectorCapability {
                connector_type: *connector,
                label: None,
                as_source: Some(Support::Enabled),
                as_destination: Some(Support::Enabled),
            })
        })
}

/// A flow whose single task is `task` next to a projection of `a`, `b`, `c`.
fn with_task(task: Value) -> Value {
    let mut body = boto3_flow();
    body["tasks"] = json!([
        {"sourceFields": ["a", "b", "c"], "connectorOperator": {"S3": "PROJECTION"}, "taskType": "Filter"},
        task
    ]);
    body
}

/// Asserts that `task` is rejected at `field` with a message containing `text`.
fn task_rejected(task: Value, field: &str, text: &str) {
    let error = error(&with_task(task.clone()));
    assert_eq!(error.field(), field, "{task}: {error}");
    assert!(
        error.to_string().contains(text),
        "{task}: '{error}' lacks '{text}'"
    );
}

fn task_accepted(task: Value) {
    check(&with_task(task.clone())).unwrap_or_else(|e| panic!("{task}: {e}"));
}

fn scheduled(properties: Value) -> Value {
    let mut body = boto3_flow();
    body["triggerConfig"] =
        json!({"triggerType": "Scheduled", "triggerProperties": {"Scheduled": properties}});
    body
}

// ---------------------------------------------------------------------------------------------
// Whole flows

#[test]
fn the_boto3_example_is_valid_and_active() {
    let flow = check(&boto3_flow()).unwrap();
    assert_eq!(flow.initial_status, FlowStatus::Active);
    assert_eq!(flow.trigger_type, TriggerType::OnDemand);
    assert_eq!(flow.schedule, None);
    assert_eq!(flow.schedule_expression, None);
    assert_eq!(
        flow.source,
        FlowEndpoint {
            connector_type: ConnectorType::S3,
            connector_label: None,
            connector_profile_name: None
        }
    );
    assert_eq!(flow.destination.connector_type, ConnectorType::S3);
}

#[test]
fn scheduled_and_event_flows_start_as_drafts() {
    let flow = check(&scheduled(json!({"scheduleExpression": "rate(1 hour)"}))).unwrap();
    assert_eq!(flow.initial_status, FlowStatus::Draft);
    assert_eq!(flow.schedule_expression.as_deref(), Some("rate(1hours)"));
    assert_eq!(flow.schedule.unwrap().min_interval(), TimeDelta::hours(1));

    let mut body = boto3_flow();
    body["triggerConfig"] = json!({"triggerType": "Event", "triggerProperties": {}});
    let flow = check(&body).unwrap();
    assert_eq!(flow.initial_status, FlowStatus::Draft);
    assert_eq!(flow.trigger_type, TriggerType::Event);
}

#[test]
fn update_requests_and_stored_flows_are_accepted_too() {
    let mut body = boto3_flow();
    body.as_object_mut().unwrap().remove("tags");
    let update: UpdateFlowRequest = serde_json::from_value(body.clone()).unwrap();
    let caps = Capabilities::default();
    validate_flow(&update, &caps).unwrap();
    let view = FlowDefinitionRef::from(&update);
    assert_eq!(view.operation, FlowOperation::Update);
    validate_flow(view, &caps).unwrap();
    validate_flow(FlowDefinitionRef::from(&view), &caps).unwrap();

    let stored: DescribeFlowResponse = serde_json::from_value(body).unwrap();
    let view = FlowDefinitionRef::from_describe(&stored).unwrap();
    validate_flow(view, &caps).unwrap();
    assert!(FlowDefinitionRef::from_describe(&DescribeFlowResponse::default()).is_none());
}

#[test]
fn exactly_one_destination() {
    let mut body = boto3_flow();
    body["destinationFlowConfigList"] = json!([]);
    assert_eq!(
        error(&body).to_string(),
        "destinationFlowConfigList must contain exactly one destination, but has 0"
    );
    let mut body = boto3_flow();
    let destination = body["destinationFlowConfigList"][0].clone();
    body["destinationFlowConfigList"] = json!([destination.clone(), destination]);
    assert_eq!(error(&body).field(), "destinationFlowConfigList");
}

// ---------------------------------------------------------------------------------------------
// Connectors

#[test]
fn source_properties_union_has_one_matching_member() {
    let mut body = boto3_flow();
    body["sourceFlowConfig"]["sourceConnectorProperties"] = json!({});
    assert_eq!(
        error(&body).to_string(),
        "sourceFlowConfig.sourceConnectorProperties must set exactly one connector, but none is set (expected S3)"
    );
    body["sourceFlowConfig"]["sourceConnectorProperties"] =
        json!({"S3": {"bucketName": "b"}, "Salesforce": {"object": "Account"}});
    assert!(
        error(&body)
            .to_string()
            .contains("but 2 are set: S3, Salesforce")
    );
    body["sourceFlowConfig"]["sourceConnectorProperties"] =
        json!({"Salesforce": {"object": "Account"}});
    assert_eq!(
        error(&body).to_string(),
        "sourceFlowConfig.sourceConnectorProperties sets Salesforce, which does not match sourceFlowConfig.connectorType S3 (expected S3)"
    );
}

#[test]
fn destination_properties_union_has_one_matching_member() {
    let mut body = boto3_flow();
    body["destinationFlowConfigList"][0]["destinationConnectorProperties"] =
        json!({"EventBridge": {"object": "bus"}});
    let error = error(&body);
    assert_eq!(
        error.field(),
        "destinationFlowConfigList.1.member.destinationConnectorProperties"
    );
    assert!(error.to_string().contains("sets EventBridge"));
}

#[test]
fn the_three_odd_union_spellings() {
    let caps = caps_with(&[
        ConnectorType::Servicenow,
        ConnectorType::Googleanalytics,
        ConnectorType::Infornexus,
    ]);
    for (connector, key) in [
        ("Servicenow", "ServiceNow"),
        ("Googleanalytics", "GoogleAnalytics"),
        ("Infornexus", "InforNexus"),
    ] {
        let mut body = boto3_flow();
        body["sourceFlowConfig"] = json!({"connectorType": connector, "connectorProfileName": "p",
            "sourceConnectorProperties": {key: {"object": "o"}}});
        body["tasks"] = json!([{"taskType": "Filter", "sourceFields": ["a"], "connectorOperator": {key: "PROJECTION"}}]);
        check_with(&body, &caps).unwrap_or_else(|e| panic!("{connector}: {e}"));

        // The enum spelling is not a union key: the member is unknown and ignored.
        body["sourceFlowConfig"]["sourceConnectorProperties"] = json!({connector: {"object": "o"}});
        let error = error_with(&body, &caps);
        assert!(
            error
                .to_string()
                .contains(&format!("none is set (expected {key})")),
            "{error}"
        );
    }
}

#[test]
fn connectors_appflow_does_not_allow_at_that_end() {
    let mut body = boto3_flow();
    body["sourceFlowConfig"] = json!({"connectorType": "Redshift", "connectorProfileName": "p",
        "sourceConnectorProperties": {}});
    assert_eq!(
        error(&body).to_string(),
        "sourceFlowConfig.connectorType Redshift cannot be used as a source"
    );
    let mut body = boto3_flow();
    body["destinationFlowConfigList"][0] = json!({"connectorType": "Amplitude", "connectorProfileName": "p",
        "destinationConnectorProperties": {}});
    assert_eq!(
        error(&body).to_string(),
        "destinationFlowConfigList.1.member.connectorType Amplitude cannot be used as a destination"
    );
}

#[test]
fn connectors_sluice_does_not_run_yet() {
    let mut body = boto3_flow();
    body["sourceFlowConfig"] = json!({"connectorType": "Salesforce", "connectorProfileName": "sf",
        "sourceConnectorProperties": {"Salesforce": {"object": "Account"}}});
    body["tasks"][0]["connectorOperator"] = json!({"Salesforce": "PROJECTION"});
    body["tasks"][1]["connectorOperator"] = json!({"Salesforce": "NO_OP"});
    assert_eq!(
        error(&body).to_string(),
        "Sluice does not support connector Salesforce as a source yet (sourceFlowConfig.connectorType)"
    );
    check_with(&body, &caps_with(&[ConnectorType::Salesforce])).unwrap();

    let mut body = boto3_flow();
    body["destinationFlowConfigList"][0] = json!({"connectorType": "Snowflake", "connectorProfileName": "snow",
        "destinationConnectorProperties": {"Snowflake": {"object": "t", "intermediateBucketName": "b"}}});
    assert!(matches!(
        error(&body),
        DomainError::UnsupportedConnector {
            role: ConnectorRole::Destination,
            ..
        }
    ));
}

#[test]
fn custom_connectors_are_matched_by_label() {
    let mut body = boto3_flow();
    body["sourceFlowConfig"] = json!({"connectorType": "CustomConnector", "connectorProfileName": "pg",
        "sourceConnectorProperties": {"CustomConnector": {"entityName": "public.users"}}});
    body["tasks"] = json!([{"taskType": "Map_all", "sourceFields": [], "connectorOperator": {"CustomConnector": "NO_OP"}}]);
    let request = request(&body);
    let caps = Capabilities::default().with(ConnectorCapability {
        connector_type: ConnectorType::CustomConnector,
        label: Some("Postgres".into()),
        as_source: Some(Support::Planned),
        as_destination: Some(Support::Planned),
    });

    // Postgres is planned, not enabled.
    let planned = FlowDefinitionRef::from(&request).with_labels(Some("Postgres"), None);
    assert_eq!(
        validate_flow(planned, &caps).unwrap_err().to_string(),
        "Sluice does not support connector CustomConnector (Postgres) as a source yet (sourceFlowConfig.connectorType)"
    );
    // Without the label the connector cannot be identified.
    assert_eq!(
        validate_flow(&request, &caps).unwrap_err().to_string(),
        "Sluice does not support connector CustomConnector as a source yet (sourceFlowConfig.connectorType)"
    );
    // Once enabled, the label is carried into the result.
    let enabled = caps.with(ConnectorCapability {
        connector_type: ConnectorType::CustomConnector,
        label: Some("Postgres".into()),
        as_source: Some(Support::Enabled),
        as_destination: Some(Support::Planned),
    });
    let flow = validate_flow(planned, &enabled).unwrap();
    assert_eq!(flow.source.connector_label.as_deref(), Some("Postgres"));
    assert_eq!(flow.source.connector_profile_name.as_deref(), Some("pg"));
}

#[test]
fn profile_names_are_required_where_connectors_need_credentials() {
    let caps = caps_with(&[ConnectorType::Salesforce, ConnectorType::EventBridge]);
    let mut body = boto3_flow();
    body["sourceFlowConfig"] = json!({"connectorType": "Salesforce",
        "sourceConnectorProperties": {"Salesforce": {"object": "Account"}}});
    body["tasks"] = json!([{"taskType": "Map_all", "sourceFields": []}]);
    assert_eq!(
        error_with(&body, &caps).to_string(),
        "sourceFlowConfig.connectorProfileName is required for connector Salesforce"
    );
    body["sourceFlowConfig"]["connectorProfileName"] = json!("  ");
    assert_eq!(
        error_with(&body, &caps).field(),
        "sourceFlowConfig.connectorProfileName"
    );
    body["sourceFlowConfig"]["connectorProfileName"] = json!("sf");
    body["destinationFlowConfigList"][0] = json!({"connectorType": "EventBridge",
        "destinationConnectorProperties": {"EventBridge": {"object": "aws.partner/appflow/x"}}});
    let flow = check_with(&body, &caps).unwrap();
    assert_eq!(flow.source.connector_profile_name.as_deref(), Some("sf"));
    assert_eq!(flow.destination.connector_profile_name, None);
}

// ---------------------------------------------------------------------------------------------
// Tasks

#[test]
fn a_projection_or_map_all_is_required_with_aws_wording() {
    let mut body = boto3_flow();
    body["tasks"] = json!([body["tasks"][1].clone()]);
    assert_eq!(
        error(&body).to_string(),
        "Create Flow request failed: [Task Validation Error: You must specify a projection task or a MAP_ALL task]"
    );
    let mut update = body.clone();
    update.as_object_mut().unwrap().remove("tags");
    let update: UpdateFlowRequest = serde_json::from_value(update).unwrap();
    assert_eq!(
        validate_flow(&update, &Capabilities::default())
            .unwrap_err()
            .to_string(),
        "Update Flow request failed: [Task Validation Error: You must specify a projection task or a MAP_ALL task]"
    );
    body["tasks"] = json!([]);
    assert_eq!(error(&body).field(), "tasks");
    // A value filter is not a projection.
    body["tasks"] = json!([{"taskType": "Filter", "sourceFields": ["a"], "connectorOperator": {"S3": "EQUAL_TO"},
        "taskProperties": {"VALUE": "1"}}]);
    assert!(matches!(
        error(&body),
        DomainError::MissingProjection { .. }
    ));
    // Map_all on its own is enough, with or without an operator.
    body["tasks"] = json!([{"taskType": "Map_all", "sourceFields": [""]}]);
    check(&body).unwrap();
}

#[test]
fn operators_are_keyed_by_the_source() {
    task_rejected(
        json!({"taskType": "Map", "sourceFields": ["a"], "destinationField": "a", "connectorOperator": {"Salesforce": "NO_OP"}}),
        "tasks.2.member.connectorOperator",
        "is keyed by Salesforce, but operators must be keyed by the source connector S3 (expected S3)",
    );
    task_rejected(
        json!({"taskType": "Map", "sourceFields": ["a"], "destinationField": "a",
               "connectorOperator": {"S3": "NO_OP", "Salesforce": "NO_OP"}}),
        "tasks.2.member.connectorOperator",
        "but 2 are set: S3, Salesforce",
    );
    task_rejected(
        json!({"taskType": "Map", "sourceFields": ["a"], "destinationField": "a", "connectorOperator": {}}),
        "tasks.2.member.connectorOperator",
        "none is set (expected S3)",
    );
}

#[test]
fn filter_tasks() {
    let filter = |op: &str, fields: Value, properties: Value| json!({"taskType": "Filter", "sourceFields": fields, "connectorOperator": {"S3": op}, "taskProperties": properties});
    task_accepted(filter(
        "EQUAL_TO",
        json!(["a"]),
        json!({"VALUE": "1", "DATA_TYPE": "integer"}),
    ));
    task_accepted(filter(
        "NOT_EQUAL_TO",
        json!(["a"]),
        json!({"VALUES": "1,2,3"}),
    ));
    task_accepted(filter(
        "BETWEEN",
        json!(["ts"]),
        json!({"LOWER_BOUND": "1612148400000", "UPPER_BOUND": "1612148400000"}),
    ));
    task_accepted(filter(
        "BETWEEN",
        json!(["name"]),
        json!({"LOWER_BOUND": "b", "UPPER_BOUND": "a"}),
    ));
    task_rejected(
        filter("EQUAL_TO", json!(["a", "b"]), json!({"VALUE": "1"})),
        "tasks.2.member.sourceFields",
        "must list exactly one field for a Filter task, got 2",
    );
    task_rejected(
        filter("LESS_THAN", json!(["a"]), json!({"DATA_TYPE": "integer"})),
        "tasks.2.member.taskProperties",
        "must set VALUE or VALUES for the LESS_THAN operator",
    );
    task_rejected(
        filter("BETWEEN", json!(["a"]), json!({"UPPER_BOUND": "5"})),
        "tasks.2.member.taskProperties.LOWER_BOUND",
        "is required for the BETWEEN operator",
    );
    task_rejected(
        filter("BETWEEN", json!(["a"]), json!({"LOWER_BOUND": "5"})),
        "tasks.2.member.taskProperties.UPPER_BOUND",
        "is required for the BETWEEN operator",
    );
    task_rejected(
        filter(
            "BETWEEN",
            json!(["a"]),
            json!({"LOWER_BOUND": "10", "UPPER_BOUND": "-2.5"}),
        ),
        "tasks.2.member.taskProperties.LOWER_BOUND",
        "'10' must not be greater than UPPER_BOUND '-2.5'",
    );
    task_rejected(
        filter("NO_OP", json!(["a"]), json!({})),
        "tasks.2.member.connectorOperator",
        "NO_OP is not valid for a Filter task",
    );
    task_rejected(
        filter("MASK_ALL", json!(["a"]), json!({})),
        "tasks.2.member.connectorOperator",
        "MASK_ALL is not valid for a Filter task",
    );
    task_rejected(
        json!({"taskType": "Filter", "sourceFields": ["a"]}),
        "tasks.2.member.connectorOperator",
        "is required for a Filter task",
    );
    task_rejected(
        filter("PROJECTION", json!([]), json!({})),
        "tasks.2.member.sourceFields",
        "must list at least one field for a Filter task, got 0",
    );
    task_rejected(
        filter("PROJECTION", json!(["a", ""]), json!({})),
        "tasks.2.member.sourceFields",
        "must not contain empty field names",
    );
}

#[test]
fn contains_is_only_for_sources_that_support_it() {
    let caps = caps_with(&[ConnectorType::Salesforce]);
    let mut body = boto3_flow();
    body["sourceFlowConfig"] = json!({"connectorType": "Salesforce", "connectorProfileName": "sf",
        "sourceConnectorProperties": {"Salesforce": {"object": "Account"}}});
    body["tasks"] = json!([
        {"taskType": "Filter", "sourceFields": ["Name"], "connectorOperator": {"Salesforce": "PROJECTION"}},
        {"taskType": "Filter", "sourceFields": ["Name"], "connectorOperator": {"Salesforce": "CONTAINS"},
         "taskProperties": {"VALUE": "Acme"}}
    ]);
    check_with(&body, &caps).unwrap();
    // S3's operator enum has no CONTAINS, so such a request never deserializes.
    let s3: Result<CreateFlowRequest, _> = serde_json::from_value(with_task(
        json!({"taskType": "Filter", "sourceFields": ["a"], "connectorOperator": {"S3": "CONTAINS"}}),
    ));
    assert!(s3.is_err());
}

#[test]
fn map_tasks() {
    task_accepted(json!({"taskType": "Map", "sourceFields": ["a"], "destinationField": "A"}));
    task_accepted(
        json!({"taskType": "Map", "sourceFields": ["a"], "destinationField": "A",
        "connectorOperator": {"S3": "NO_OP"}, "taskProperties": {"SOURCE_DATA_TYPE": "string"}}),
    );
    task_rejected(
        json!({"taskType": "Map", "sourceFields": ["a"]}),
        "tasks.2.member.destinationField",
        "is required for a Map task",
    );
    task_rejected(
        json!({"taskType": "Map", "sourceFields": ["a"], "destinationField": " "}),
        "tasks.2.member.destinationField",
        "is required for a Map task",
    );
    task_rejected(
        json!({"taskType": "Map", "sourceFields": ["a", "b"], "destinationField": "A"}),
        "tasks.2.member.sourceFields",
        "must list exactly one field for a Map task, got 2",
    );
    task_rejected(
        json!({"taskType": "Map", "sourceFields": [""], "destinationField": "A"}),
        "tasks.2.member.sourceFields",
        "must not contain empty field names",
    );
    task_rejected(
        json!({"taskType": "Map", "sourceFields": ["a"], "destinationField": "A", "connectorOperator": {"S3": "PROJECTION"}}),
        "tasks.2.member.connectorOperator",
        "PROJECTION is not valid for a Map task (use NO_OP or omit it)",
    );
}

#[test]
fn merge_and_arithmetic_tasks() {
    task_accepted(
        json!({"taskType": "Merge", "sourceFields": ["first", "last"], "destinationField": "first,last",
        "taskProperties": {"CONCAT_FORMAT": "{first} {last}"}}),
    );
    task_rejected(
        json!({"taskType": "Merge", "sourceFields": ["first"], "destinationField": "x"}),
        "tasks.2.member.sourceFields",
        "must list at least 2 fields for a Merge task, got 1",
    );
    task_rejected(
        json!({"taskType": "Merge", "sourceFields": ["a", "b"]}),
        "tasks.2.member.destinationField",
        "is required for a Merge task",
    );

    let arithmetic = |op: &str, fields: Value, order: Option<&str>| {
        let mut task = json!({"taskType": "Arithmetic", "sourceFields": fields, "connectorOperator": {"S3": op},
            "destinationField": "a,b"});
        if let Some(order) = order {
            task["taskProperties"] = json!({"MATH_OPERATION_FIELDS_ORDER": order});
        }
        task
    };
    task_accepted(arithmetic("SUBTRACTION", json!(["a", "b"]), Some("b, a")));
    task_accepted(arithmetic("DIVISION", json!(["a", "b"]), None));
    task_rejected(
        arithmetic("NO_OP", json!(["a", "b"]), None),
        "tasks.2.member.connectorOperator",
        "NO_OP is not valid for a Arithmetic task (use ADDITION, SUBTRACTION, MULTIPLICATION or DIVISION)",
    );
    task_rejected(
        json!({"taskType": "Arithmetic", "sourceFields": ["a", "b"]}),
        "tasks.2.member.connectorOperator",
        "is required for a Arithmetic task",
    );
    task_rejected(
        arithmetic("ADDITION", json!(["a", "b", "c"]), None),
        "tasks.2.member.sourceFields",
        "must list exactly 2 fields for a Arithmetic task, got 3",
    );
    task_rejected(
        arithmetic("ADDITION", json!(["a", "b"]), Some("a,c")),
        "tasks.2.member.taskProperties.MATH_OPERATION_FIELDS_ORDER",
        "got 'a,c'",
    );
    task_rejected(
        arithmetic("ADDITION", json!(["a", "b"]), Some("a")),
        "tasks.2.member.taskProperties.MATH_OPERATION_FIELDS_ORDER",
        "must list the task's two sourceFields",
    );
}

#[test]
fn mask_tasks() {
    let mask = |op: &str, properties: Value| json!({"taskType": "Mask", "sourceFields": ["ssn"], "connectorOperator": {"S3": op}, "taskProperties": properties});
    task_accepted(mask("MASK_ALL", json!({"MASK_VALUE": "*"})));
    // The console sends MASK_LENGTH with MASK_ALL too; it is ignored.
    task_accepted(mask("MASK_ALL", json!({"MASK_LENGTH": "whatever"})));
    task_accepted(mask(
        "MASK_FIRST_N",
        json!({"MASK_LENGTH": "0", "MASK_VALUE": "é"}),
    ));
    task_accepted(mask(
        "MASK_LAST_N",
        json!({"MASK_LENGTH": "4", "MASK_VALUE": "🦀"}),
    ));
    for length in ["-1", "abc", "1.5", "", " 3", "99999999999"] {
        task_rejected(
            mask("MASK_LAST_N", json!({"MASK_LENGTH": length})),
            "tasks.2.member.taskProperties.MASK_LENGTH",
            &format!("must be a non-negative integer, got '{length}'"),
        );
    }
    task_rejected(
        mask("MASK_FIRST_N", json!({})),
        "tasks.2.member.taskProperties.MASK_LENGTH",
        "is required for the MASK_FIRST_N operator",
    );
    for value in ["**", "", "e\u{301}"] {
        task_rejected(
            mask("MASK_ALL", json!({"MASK_VALUE": value})),
            "tasks.2.member.taskProperties.MASK_VALUE",
            "must be exactly one character",
        );
    }
    task_rejected(
        mask("VALIDATE_NON_NULL", json!({})),
        "tasks.2.member.connectorOperator",
        "VALIDATE_NON_NULL is not valid for a Mask task",
    );
    task_rejected(
        json!({"taskType": "Mask", "sourceFields": ["a", "b"], "connectorOperator": {"S3": "MASK_ALL"}}),
        "tasks.2.member.sourceFields",
        "must list exactly one field for a Mask task, got 2",
    );
}

#[test]
fn truncate_tasks() {
    let truncate = |properties: Value| json!({"taskType": "Truncate", "sourceFields": ["text"], "connectorOperator": {"S3": "NO_OP"}, "taskProperties": properties});
    task_accepted(truncate(json!({"TRUNCATE_LENGTH": "10"})));
    task_accepted(truncate(json!({"TRUNCATE_LENGTH": "4294967295"})));
    for length in ["0", "-3", "ten", "4294967296"] {
        task_rejected(
            truncate(json!({"TRUNCATE_LENGTH": length})),
            "tasks.2.member.taskProperties.TRUNCATE_LENGTH",
            &format!("must be a positive integer, got '{length}'"),
        );
    }
    task_rejected(
        truncate(json!({})),
        "tasks.2.member.taskProperties.TRUNCATE_LENGTH",
        "is required for a Truncate task",
    );
}

#[test]
fn validate_tasks() {
    let validate = |op: &str, properties: Value| json!({"taskType": "Validate", "sourceFields": ["n"], "connectorOperator": {"S3": op}, "taskProperties": properties});
    for action in VALIDATION_ACTIONS_FOR_TEST {
        task_accepted(validate(
            "VALIDATE_NON_NEGATIVE",
            json!({"VALIDATION_ACTION": action}),
        ));
    }
    task_rejected(
        validate("VALIDATE_NUMERIC", json!({"VALIDATION_ACTION": "Skip"})),
        "tasks.2.member.taskProperties.VALIDATION_ACTION",
        "must be one of DropRecord, DropDataset, TerminateFlow, got 'Skip'",
    );
    task_rejected(
        validate(
            "VALIDATE_NUMERIC",
            json!({"VALIDATION_ACTION": "droprecord"}),
        ),
        "tasks.2.member.taskProperties.VALIDATION_ACTION",
        "got 'droprecord'",
    );
    task_rejected(
        validate("VALIDATE_NON_ZERO", json!({})),
        "tasks.2.member.taskProperties.VALIDATION_ACTION",
        "is required for a Validate task",
    );
    task_rejected(
        validate("NO_OP", json!({"VALIDATION_ACTION": "DropRecord"})),
        "tasks.2.member.connectorOperator",
        "NO_OP is not valid for a Validate task (use a VALIDATE_* operator)",
    );
}

const VALIDATION_ACTIONS_FOR_TEST: [&str; 3] = ["DropRecord", "DropDataset", "TerminateFlow"];

#[test]
fn map_all_tasks() {
    let map_all = |properties: Value| json!({"taskType": "Map_all", "sourceFields": [], "taskProperties": properties});
    task_accepted(map_all(
        json!({"EXCLUDE_SOURCE_FIELDS_LIST": "[\"Phone\",\"Fax\"]"}),
    ));
    task_accepted(map_all(
        json!({"EXCLUDE_SOURCE_FIELDS_LIST": "[]", "INCLUDE_NEW_FIELDS": "TRUE"}),
    ));
    task_accepted(map_all(
        json!({"EXCLUDE_SOURCE_FIELDS_LIST": "[\"Téléphone\"]"}),
    ));
    for list in ["Phone,Fax", "[1, 2]", "[\"a\"", "{\"a\": 1}", "null"] {
        task_rejected(
            map_all(json!({"EXCLUDE_SOURCE_FIELDS_LIST": list})),
            "tasks.2.member.taskProperties.EXCLUDE_SOURCE_FIELDS_LIST",
            "must be a JSON array of field names",
        );
    }
    task_rejected(
        map_all(json!({"INCLUDE_NEW_FIELDS": "yes"})),
        "tasks.2.member.taskProperties.INCLUDE_NEW_FIELDS",
        "must be true or false, got 'yes'",
    );
    task_rejected(
        json!({"taskType": "Map_all", "sourceFields": [], "connectorOperator": {"S3": "PROJECTION"}}),
        "tasks.2.member.connectorOperator",
        "PROJECTION is not valid for a Map_all task",
    );
}

#[test]
fn partition_tasks() {
    let keys = |n: usize| -> Vec<String> { (0..n).map(|i| format!("k{i}")).collect() };
    task_accepted(
        json!({"taskType": "Partition", "sourceFields": keys(10), "connectorOperator": {"S3": "NO_OP"}}),
    );
    task_accepted(json!({"taskType": "Partition", "sourceFields": [],
        "taskProperties": {"ORDERED_PARTITION_KEYS_LIST": "[\"region\",\"day\"]"}}));
    task_rejected(
        json!({"taskType": "Partition", "sourceFields": keys(11)}),
        "tasks.2.member.sourceFields",
        "must name between 1 and 10 partition keys, got 11",
    );
    task_rejected(
        json!({"taskType": "Partition", "sourceFields": []}),
        "tasks.2.member.sourceFields",
        "got 0",
    );
    task_rejected(
        json!({"taskType": "Partition", "sourceFields": ["a"],
            "taskProperties": {"ORDERED_PARTITION_KEYS_LIST": serde_json::to_string(&keys(11)).unwrap()}}),
        "tasks.2.member.taskProperties.ORDERED_PARTITION_KEYS_LIST",
        "got 11",
    );
    task_rejected(
        json!({"taskType": "Partition", "sourceFields": ["a"],
            "taskProperties": {"ORDERED_PARTITION_KEYS_LIST": "region"}}),
        "tasks.2.member.taskProperties.ORDERED_PARTITION_KEYS_LIST",
        "must be a JSON array of field names",
    );
    task_rejected(
        json!({"taskType": "Partition", "sourceFields": ["a"],
            "taskProperties": {"ORDERED_PARTITION_KEYS_LIST": "[\" \"]"}}),
        "tasks.2.member.taskProperties.ORDERED_PARTITION_KEYS_LIST",
        "must not contain empty field names",
    );

    // Partitions are folders in S3; other destinations have none.
    let caps = caps_with(&[ConnectorType::EventBridge]);
    let mut body = with_task(json!({"taskType": "Partition", "sourceFields": ["a"]}));
    body["destinationFlowConfigList"][0] = json!({"connectorType": "EventBridge",
        "destinationConnectorProperties": {"EventBridge": {"object": "bus"}}});
    let error = error_with(&body, &caps);
    assert_eq!(error.field(), "tasks.2.member.taskType");
    assert!(
        error
            .to_string()
            .contains("only supported with an S3 destination, not EventBridge")
    );
}

#[test]
fn passthrough_tasks() {
    task_accepted(
        json!({"taskType": "Passthrough", "sourceFields": ["a"], "destinationField": "a"}),
    );
    task_rejected(
        json!({"taskType": "Passthrough", "sourceFields": ["a"], "connectorOperator": {"S3": "MASK_ALL"}}),
        "tasks.2.member.connectorOperator",
        "MASK_ALL is not valid for a Passthrough task",
    );
}

#[test]
fn the_first_bad_task_is_reported_by_position() {
    let mut body = boto3_flow();
    body["tasks"] = json!([
        {"taskType": "Map_all", "sourceFields": []},
        {"taskType": "Map", "sourceFields": ["a"], "destinationField": "a"},
        {"taskType": "Truncate", "sourceFields": ["a"]},
        {"taskType": "Map", "sourceFields": ["b"]}
    ]);
    assert_eq!(
        error(&body).field(),
        "tasks.3.member.taskProperties.TRUNCATE_LENGTH"
    );
}

// ---------------------------------------------------------------------------------------------
// Triggers

#[test]
fn scheduled_properties_iff_scheduled() {
    let mut body = boto3_flow();
    body["triggerConfig"] = json!({"triggerType": "Scheduled"});
    assert_eq!(
        error(&body).to_string(),
        "triggerConfig.triggerProperties.Scheduled is required when triggerType is Scheduled"
    );
    body["triggerConfig"] = json!({"triggerType": "Scheduled", "triggerProperties": {}});
    assert_eq!(
        error(&body).field(),
        "triggerConfig.triggerProperties.Scheduled"
    );
    body["triggerConfig"] = json!({"triggerType": "OnDemand",
        "triggerProperties": {"Scheduled": {"scheduleExpression": "rate(1hours)"}}});
    assert_eq!(
        error(&body).to_string(),
        "triggerConfig.triggerProperties.Scheduled is only allowed when triggerType is Scheduled, not OnDemand"
    );
}

#[test]
fn schedule_expressions_are_parsed_and_canonical() {
    for (expression, canonical) in [
        ("rate(5minutes)", "rate(5minutes)"),
        ("rate(5 minutes)", "rate(5minutes)"),
        ("rate(1 day)", "rate(1days)"),
        ("cron(0 6 ? * mon-fri *)", "cron(0 6 ? * MON-FRI *)"),
    ] {
        let flow = check(&scheduled(json!({"scheduleExpression": expression}))).unwrap();
        assert_eq!(flow.schedule_expression.as_deref(), Some(canonical));
    }
    let rejected = error(&scheduled(json!({"scheduleExpression": "rate(0minutes)"})));
    assert_eq!(
        rejected.to_string(),
        "triggerConfig.triggerProperties.Scheduled.scheduleExpression 'rate(0minutes)' is not a valid schedule expression: rate must be at least 1 minute"
    );
    let error = error(&scheduled(
        json!({"scheduleExpression": "cron(0 6 * * MON *)"}),
    ));
    assert!(matches!(error, DomainError::InvalidSchedule { .. }));
}

#[test]
fn sources_limit_how_often_a_flow_runs() {
    let caps = caps_with(&[ConnectorType::Marketo, ConnectorType::Amplitude]);
    let marketo = |expression: &str| {
        let mut body = scheduled(json!({"scheduleExpression": expression}));
        body["sourceFlowConfig"] = json!({"connectorType": "Marketo", "connectorProfileName": "m",
            "sourceConnectorProperties": {"Marketo": {"object": "leads"}}});
        body["tasks"] = json!([{"taskType": "Filter", "sourceFields": ["id"], "connectorOperator": {"Marketo": "PROJECTION"}}]);
        body
    };
    assert_eq!(
        error_with(&marketo("rate(5minutes)"), &caps).to_string(),
        "triggerConfig.triggerProperties.Scheduled.scheduleExpression runs every 5 minutes, but connector Marketo allows at most one run per 1 hour"
    );
    assert!(
        error_with(&marketo("cron(0/30 * * * ? *)"), &caps)
            .to_string()
            .contains("runs every 30 minutes")
    );
    check_with(&marketo("rate(1hours)"), &caps).unwrap();
    check_with(&marketo("cron(0 * * * ? *)"), &caps).unwrap();

    let mut amplitude = scheduled(json!({"scheduleExpression": "rate(2hours)"}));
    amplitude["sourceFlowConfig"] = json!({"connectorType": "Amplitude", "connectorProfileName": "a",
        "sourceConnectorProperties": {"Amplitude": {"object": "events"}}});
    amplitude["tasks"] = json!([{"taskType": "Map_all", "sourceFields": []}]);
    assert!(
        error_with(&amplitude, &caps).to_string().contains(
            "runs every 2 hours, but connector Amplitude allows at most one run per 1 day"
        )
    );
    amplitude["triggerConfig"]["triggerProperties"]["Scheduled"]["scheduleExpression"] =
        json!("rate(1days)");
    check_with(&amplitude, &caps).unwrap();
    // S3 allows once a minute.
    check(&scheduled(
        json!({"scheduleExpression": "cron(* * * * ? *)"}),
    ))
    .unwrap();
}

#[test]
fn schedule_window_must_end_after_it_starts() {
    let window = |start: Value, end: Value| {
        scheduled(
            json!({"scheduleExpression": "rate(1hours)", "scheduleStartTime": start, "scheduleEndTime": end}),
        )
    };
    check(&window(json!(1893456000), json!(1893456001))).unwrap();
    for (start, end) in [
        (json!(1893456000), json!(1893456000)),
        (json!(1893456000), json!(1700000000)),
        (json!("2030-01-01T00:00:00Z"), json!("2029-12-31T23:59:59Z")),
    ] {
        assert_eq!(
            error(&window(start, end)).to_string(),
            "triggerConfig.triggerProperties.Scheduled.scheduleEndTime must be after scheduleStartTime"
        );
    }
    // Either end alone is fine.
    check(&scheduled(
        json!({"scheduleExpression": "rate(1hours)", "scheduleEndTime": 1700000000}),
    ))
    .unwrap();
}

#[test]
fn incremental_pulls_need_a_timestamp_field() {
    let mut body =
        scheduled(json!({"scheduleExpression": "rate(1hours)", "dataPullMode": "Incremental"}));
    assert_eq!(
        error(&body).to_string(),
        "sourceFlowConfig.incrementalPullConfig.datetimeTypeFieldName is required when dataPullMode is Incremental"
    );
    body["sourceFlowConfig"]["incrementalPullConfig"] = json!({});
    assert!(check(&body).is_err());
    body["sourceFlowConfig"]["incrementalPullConfig"] = json!({"datetimeTypeFieldName": " "});
    assert!(check(&body).is_err());
    body["sourceFlowConfig"]["incrementalPullConfig"] =
        json!({"datetimeTypeFieldName": "updated_at"});
    check(&body).unwrap();
    // Complete pulls need nothing.
    check(&scheduled(
        json!({"scheduleExpression": "rate(1hours)", "dataPullMode": "Complete"}),
    ))
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Metadata catalog

#[test]
fn metadata_catalog_is_s3_only_and_glue_is_not_supported() {
    let mut body = boto3_flow();
    body["metadataCatalogConfig"] = json!({"glueDataCatalog": {
        "roleArn": "arn:aws:iam::123456789012:role/glue", "databaseName": "db", "tablePrefix": "t"}});
    assert_eq!(
        error(&body).to_string(),
        "metadataCatalogConfig.glueDataCatalog is not supported: Sluice does not register tables in the AWS Glue Data Catalog"
    );
    body["metadataCatalogConfig"] = json!({});
    check(&body).unwrap();

    let caps = caps_with(&[ConnectorType::EventBridge]);
    body["destinationFlowConfigList"][0] = json!({"connectorType": "EventBridge",
        "destinationConnectorProperties": {"EventBridge": {"object": "bus"}}});
    assert_eq!(
        error_with(&body, &caps).to_string(),
        "metadataCatalogConfig is only supported with an S3 destination, not EventBridge"
    );
}

// ---------------------------------------------------------------------------------------------
// Schema versions

fn schema_changed(edit: impl FnOnce(&mut Value)) -> bool {
    let old = request(&boto3_flow());
    let mut body = boto3_flow();
    edit(&mut body);
    let new = request(&body);
    schema_version_changed(&old, &new)
}

#[test]
fn schema_version_follows_mappings_types_and_partitions() {
    assert!(!schema_changed(|_| {}));
    // Task order is not significant.
    assert!(!schema_changed(|body| {
        let tasks = body["tasks"].as_array_mut().unwrap();
        tasks.reverse();
    }));
    // Filters, masks and descriptions do not change the output schema.
    assert!(!schema_changed(|body| {
        body["description"] = json!("now with a filter");
        body["tasks"].as_array_mut().unwrap().extend([
            json!({"taskType": "Filter", "sourceFields": ["id"], "connectorOperator": {"S3": "GREATER_THAN"}, "taskProperties": {"VALUE": "3"}}),
            json!({"taskType": "Mask", "sourceFields": ["name"], "connectorOperator": {"S3": "MASK_ALL"}}),
        ]);
    }));
    assert!(!schema_changed(
        |body| body["tasks"][0]["sourceFields"] = json!(["name", "id"])
    ));
    // The trigger does not either.
    assert!(!schema_changed(
        |body| body["triggerConfig"] = json!({"triggerType": "Event"})
    ));

    assert!(schema_changed(
        |body| body["tasks"][1]["destinationField"] = json!("ID")
    ));
    assert!(schema_changed(|body| body["tasks"][1]["taskProperties"]
        ["DESTINATION_DATA_TYPE"] =
        json!("integer")));
    assert!(schema_changed(
        |body| body["tasks"][0]["sourceFields"] = json!(["id", "name", "email"])
    ));
    assert!(schema_changed(|body| {
        body["tasks"]
            .as_array_mut()
            .unwrap()
            .push(json!({"taskType": "Partition", "sourceFields": ["name"]}));
    }));
    assert!(schema_changed(|body| {
        body["destinationFlowConfigList"][0]["destinationConnectorProperties"]["S3"]["s3OutputFormatConfig"]
            ["preserveSourceDataTyping"] = json!(true);
    }));
    // `false` is the default, so spelling it out changes nothing.
    assert!(!schema_changed(|body| {
        body["destinationFlowConfigList"][0]["destinationConnectorProperties"]["S3"]["s3OutputFormatConfig"]
            ["preserveSourceDataTyping"] = json!(false);
    }));
}

#[test]
fn partition_key_order_is_significant() {
    let with_keys = |keys: Value| {
        let mut body = boto3_flow();
        body["tasks"]
            .as_array_mut()
            .unwrap()
            .push(json!({"taskType": "Partition", "sourceFields": keys}));
        request(&body)
    };
    let a = with_keys(json!(["region", "day"]));
    let b = with_keys(json!(["day", "region"]));
    assert!(schema_version_changed(&a, &b));
    assert!(!schema_version_changed(&a, &a));
}
