use serde_json::{Value, json};

use super::*;
use crate::codegen::shapes::*;

/// The CreateFlow request boto3 sends (captured on the wire).
const CREATE_FLOW: &str = r#"{"flowName": "my-flow", "triggerConfig": {"triggerType": "OnDemand"}, "sourceFlowConfig": {"connectorType": "S3", "sourceConnectorProperties": {"S3": {"bucketName": "src-bkt", "bucketPrefix": "in", "s3InputFormatConfig": {"s3InputFileType": "CSV"}}}}, "destinationFlowConfigList": [{"connectorType": "S3", "destinationConnectorProperties": {"S3": {"bucketName": "dst-bkt", "bucketPrefix": "out", "s3OutputFormatConfig": {"fileType": "JSON", "aggregationConfig": {"aggregationType": "None"}}}}}], "tasks": [{"sourceFields": ["id", "name"], "connectorOperator": {"S3": "PROJECTION"}, "taskType": "Filter", "taskProperties": {}}, {"sourceFields": ["id"], "connectorOperator": {"S3": "NO_OP"}, "destinationField": "id", "taskType": "Map", "taskProperties": {"SOURCE_DATA_TYPE": "string", "DESTINATION_DATA_TYPE": "string"}}], "tags": {"team": "data"}, "clientToken": "c42ac4fa-bc51-43a0-8a5e-6f1a2c053239"}"#;

fn create_flow() -> Value {
    serde_json::from_str(CREATE_FLOW).unwrap()
}

/// Sets `value` at a `/`-separated JSON pointer, creating nothing: the parent must exist.
fn set(body: &mut Value, pointer: &str, value: Value) {
    *body.pointer_mut(pointer).unwrap() = value;
}

fn remove(body: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    body.pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove(key)
        .unwrap();
}

fn errors(shape: &str, body: &Value) -> Vec<ValidationError> {
    validate(shape, body)
        .expect_err("expected validation errors")
        .0
}

fn message(shape: &str, body: &Value) -> String {
    validate(shape, body)
        .expect_err("expected validation errors")
        .to_string()
}

#[test]
fn every_model_pattern_compiles() {
    let model = model().unwrap();
    let mut count = 0;
    for (name, shape) in &model.shapes {
        if let Kind::String(StringRules {
            pattern: Some(pattern),
            ..
        }) = &shape.kind
        {
            assert!(
                pattern.regex().is_some(),
                "pattern of {name} does not compile: {}",
                pattern.translated
            );
            count += 1;
        }
    }
    assert!(count > 90, "only {count} patterns found");
}

#[test]
fn boto3_create_flow_is_valid_and_typed() {
    let request: CreateFlowRequest =
        parse_request("CreateFlowRequest", CREATE_FLOW.as_bytes()).unwrap();
    assert_eq!(request.flow_name, "my-flow");
    assert_eq!(request.trigger_config.trigger_type, TriggerType::OnDemand);
    assert_eq!(request.tasks.len(), 2);
    assert_eq!(request.tasks[1].destination_field.as_deref(), Some("id"));
    assert_eq!(
        request.tags.unwrap().get("team").map(String::as_str),
        Some("data")
    );
}

#[test]
fn scheduled_flow_with_every_trigger_member_is_valid() {
    let mut body = create_flow();
    set(
        &mut body,
        "/triggerConfig",
        json!({
            "triggerType": "Scheduled",
            "triggerProperties": {"Scheduled": {
                "scheduleExpression": "rate(5minutes)",
                "dataPullMode": "Incremental",
                "scheduleStartTime": 1893456000,
                "scheduleEndTime": "2031-01-01T00:00:00Z",
                "firstExecutionFrom": 1700000000.123,
                "timezone": "America/New_York",
                "scheduleOffset": 36000,
                "flowErrorDeactivationThreshold": 100
            }}
        }),
    );
    let request: CreateFlowRequest =
        parse_request("CreateFlowRequest", body.to_string().as_bytes()).unwrap();
    let scheduled = request
        .trigger_config
        .trigger_properties
        .unwrap()
        .scheduled
        .unwrap();
    assert_eq!(scheduled.schedule_offset, Some(36000));
    assert_eq!(
        scheduled.first_execution_from.unwrap().millis(),
        1_700_000_000_123
    );
    assert_eq!(
        scheduled.schedule_end_time.unwrap().millis(),
        1_924_992_000_000
    );
}

/// One minimal valid body per operation; every operation of the model must be listed.
#[test]
fn a_valid_request_for_every_operation() {
    let profile_config = json!({
        "connectorProfileProperties": {"Snowflake": {"warehouse": "wh", "stage": "st", "bucketName": "bkt"}},
        "connectorProfileCredentials": {"Snowflake": {"username": "u", "password": "p"}}
    });
    let cases: Vec<(&str, Value)> = vec![
        (
            "CancelFlowExecutions",
            json!({"flowName": "f1", "executionIds": ["9aa00099-9943-449a"]}),
        ),
        (
            "CreateConnectorProfile",
            json!({"connectorProfileName": "prof", "connectorType": "Snowflake", "connectionMode": "Public",
                   "connectorProfileConfig": profile_config}),
        ),
        ("CreateFlow", create_flow()),
        (
            "DeleteConnectorProfile",
            json!({"connectorProfileName": "prof", "forceDelete": true}),
        ),
        (
            "DeleteFlow",
            json!({"flowName": "f1", "forceDelete": false}),
        ),
        (
            "DescribeConnector",
            json!({"connectorType": "CustomConnector", "connectorLabel": "Postgres"}),
        ),
        (
            "DescribeConnectorEntity",
            json!({"connectorEntityName": "Account", "connectorType": "Salesforce"}),
        ),
        (
            "DescribeConnectorProfiles",
            json!({"connectorProfileNames": ["a", "b"], "maxResults": 100}),
        ),
        (
            "DescribeConnectors",
            json!({"connectorTypes": ["S3"], "nextToken": "abc"}),
        ),
        ("DescribeFlow", json!({"flowName": "f1"})),
        (
            "DescribeFlowExecutionRecords",
            json!({"flowName": "f1", "maxResults": 1}),
        ),
        (
            "ListConnectorEntities",
            json!({"connectorType": "S3", "maxResults": 10000}),
        ),
        ("ListConnectors", json!({})),
        ("ListFlows", json!({"maxResults": 10})),
        ("ListTagsForResource", json!({})),
        (
            "RegisterConnector",
            json!({"connectorLabel": "Postgres", "connectorProvisioningType": "LAMBDA",
                   "connectorProvisioningConfig": {"lambda": {"lambdaArn": "arn:aws:lambda:us-east-1:123456789012:function:x"}}}),
        ),
        (
            "ResetConnectorMetadataCache",
            json!({"connectorType": "S3", "entitiesPath": "a/b"}),
        ),
        ("StartFlow", json!({"flowName": "f1", "clientToken": "tok"})),
        ("StopFlow", json!({"flowName": "f1"})),
        (
            "TagResource",
            json!({"tags": {"team": "data", "cost:center": "42"}}),
        ),
        ("UnregisterConnector", json!({"connectorLabel": "Postgres"})),
        ("UntagResource", json!({})),
        (
            "UpdateConnectorProfile",
            json!({"connectorProfileName": "prof", "connectionMode": "Private", "connectorProfileConfig": profile_config}),
        ),
        (
            "UpdateConnectorRegistration",
            json!({"connectorLabel": "Postgres", "description": "v2"}),
        ),
        ("UpdateFlow", {
            let mut body = create_flow();
            body.as_object_mut().unwrap().remove("tags");
            body
        }),
    ];
    assert_eq!(cases.len(), OPERATIONS.len());
    for op in OPERATIONS {
        assert!(
            cases.iter().any(|(name, _)| *name == op.name),
            "no case for {}",
            op.name
        );
    }
    macro_rules! typed {
        ($name:expr, $body:expr, $($op:literal => $ty:ty),* $(,)?) => {
            match $name {
                $($op => { parse_request::<$ty>(&format!("{}Request", $op), $body).map(|_| ()) })*
                other => panic!("unmapped operation {other}"),
            }
        };
    }
    for (name, body) in &cases {
        let shape = input_shape(name).unwrap();
        validate(shape, body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let bytes = body.to_string().into_bytes();
        let result = typed!(*name, &bytes,
            "CancelFlowExecutions" => CancelFlowExecutionsRequest,
            "CreateConnectorProfile" => CreateConnectorProfileRequest,
            "CreateFlow" => CreateFlowRequest,
            "DeleteConnectorProfile" => DeleteConnectorProfileRequest,
            "DeleteFlow" => DeleteFlowRequest,
            "DescribeConnector" => DescribeConnectorRequest,
            "DescribeConnectorEntity" => DescribeConnectorEntityRequest,
            "DescribeConnectorProfiles" => DescribeConnectorProfilesRequest,
            "DescribeConnectors" => DescribeConnectorsRequest,
            "DescribeFlow" => DescribeFlowRequest,
            "DescribeFlowExecutionRecords" => DescribeFlowExecutionRecordsRequest,
            "ListConnectorEntities" => ListConnectorEntitiesRequest,
            "ListConnectors" => ListConnectorsRequest,
            "ListFlows" => ListFlowsRequest,
            "ListTagsForResource" => ListTagsForResourceRequest,
            "RegisterConnector" => RegisterConnectorRequest,
            "ResetConnectorMetadataCache" => ResetConnectorMetadataCacheRequest,
            "StartFlow" => StartFlowRequest,
            "StopFlow" => StopFlowRequest,
            "TagResource" => TagResourceRequest,
            "UnregisterConnector" => UnregisterConnectorRequest,
            "UntagResource" => UntagResourceRequest,
            "UpdateConnectorProfile" => UpdateConnectorProfileRequest,
            "UpdateConnectorRegistration" => UpdateConnectorRegistrationRequest,
            "UpdateFlow" => UpdateFlowRequest,
        );
        result.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn every_operation_rejects_an_empty_body_iff_it_has_required_body_members() {
    let model = model().unwrap();
    for op in OPERATIONS {
        let Kind::Structure { members, required } = &model.shapes[op.input].kind else {
            panic!("{} is not a structure", op.input);
        };
        let required_in_body: Vec<&str> = members
            .iter()
            .filter(|m| !m.bound_outside_body && required.contains(&m.name))
            .map(|m| m.name.as_str())
            .collect();
        match validate(op.input, &json!({})) {
            Ok(()) => assert!(required_in_body.is_empty(), "{}", op.name),
            Err(errors) => {
                let paths: Vec<&str> = errors.0.iter().map(|e| e.path.as_str()).collect();
                assert_eq!(paths, required_in_body, "{}", op.name);
                assert!(
                    errors
                        .0
                        .iter()
                        .all(|e| e.message == "Member must not be null")
                );
            }
        }
    }
}

#[test]
fn pattern_violation_reads_like_aws() {
    let mut body = create_flow();
    set(&mut body, "/flowName", json!("my flow"));
    assert_eq!(
        message("CreateFlowRequest", &body),
        r"1 validation error detected: Value 'my flow' at 'flowName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9][\w!@#.-]+"
    );
}

#[test]
fn missing_required_members_are_null() {
    let mut body = create_flow();
    remove(&mut body, "/triggerConfig");
    set(&mut body, "/flowName", Value::Null);
    assert_eq!(
        message("CreateFlowRequest", &body),
        "2 validation errors detected: Value null at 'flowName' failed to satisfy constraint: Member must not be null; \
         Value null at 'triggerConfig' failed to satisfy constraint: Member must not be null"
    );
}

#[test]
fn string_lengths_are_checked_and_long_values_shortened() {
    let mut body = create_flow();
    let long = "a".repeat(257);
    set(&mut body, "/flowName", json!(long));
    let errs = errors("CreateFlowRequest", &body);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].path, "flowName");
    assert_eq!(
        errs[0].message,
        "Member must have length less than or equal to 256"
    );
    assert_eq!(
        errs[0].value.as_deref(),
        Some(format!("'{}...'", "a".repeat(MAX_ECHOED_CHARS)).as_str())
    );

    // Exactly at the limit is fine.
    set(&mut body, "/flowName", json!("a".repeat(256)));
    validate("CreateFlowRequest", &body).unwrap();
}

#[test]
fn an_empty_client_token_breaks_two_constraints() {
    let mut body = create_flow();
    set(&mut body, "/clientToken", json!(""));
    assert_eq!(
        message("CreateFlowRequest", &body),
        "2 validation errors detected: \
         Value '' at 'clientToken' failed to satisfy constraint: Member must have length greater than or equal to 1; \
         Value '' at 'clientToken' failed to satisfy constraint: Member must satisfy regular expression pattern: [ -~]+"
    );
}

#[test]
fn numeric_ranges() {
    let cases = [
        (
            json!(0),
            "Member must have value greater than or equal to 1",
        ),
        (
            json!(101),
            "Member must have value less than or equal to 100",
        ),
        (
            json!(-5),
            "Member must have value greater than or equal to 1",
        ),
        (
            json!(3_000_000_000_i64),
            "Member must have value less than or equal to 100",
        ),
        (
            json!(u64::MAX),
            "Member must have value less than or equal to 100",
        ),
    ];
    for (value, expected) in cases {
        let errs = errors("ListFlowsRequest", &json!({ "maxResults": value }));
        assert_eq!(errs.len(), 1, "{value}");
        assert_eq!(errs[0].message, expected, "{value}");
        assert_eq!(errs[0].value, Some(format!("'{value}'")));
    }
    validate("ListFlowsRequest", &json!({"maxResults": 1})).unwrap();
    validate("ListFlowsRequest", &json!({"maxResults": 100})).unwrap();
}

#[test]
fn integer_types_reject_fractions_and_overflow() {
    let errs = errors("ListFlowsRequest", &json!({"maxResults": 5.5}));
    assert_eq!(
        errs[0].message,
        "Member must be of type integer but was a decimal number"
    );
    let errs = errors("ListFlowsRequest", &json!({"maxResults": 5.0}));
    assert_eq!(
        errs[0].message,
        "Member must be of type integer but was a decimal number"
    );
    // `long` without a model maximum still stops at i64::MAX.
    let mut body = create_flow();
    set(
        &mut body,
        "/destinationFlowConfigList/0/destinationConnectorProperties/S3/s3OutputFormatConfig/aggregationConfig",
        json!({"aggregationType": "SingleFile", "targetFileSize": u64::MAX}),
    );
    let errs = errors("CreateFlowRequest", &body);
    assert_eq!(
        errs[0].path,
        "destinationFlowConfigList.1.member.destinationConnectorProperties.S3.s3OutputFormatConfig.aggregationConfig.targetFileSize"
    );
    assert_eq!(
        errs[0].message,
        format!("Member must have value less than or equal to {}", i64::MAX)
    );
    // ...and the same request parses once the value fits.
    set(
        &mut body,
        "/destinationFlowConfigList/0/destinationConnectorProperties/S3/s3OutputFormatConfig/aggregationConfig/targetFileSize",
        json!(i64::MAX),
    );
    parse_request::<CreateFlowRequest>("CreateFlowRequest", body.to_string().as_bytes()).unwrap();
}

#[test]
fn enum_values_are_listed_in_model_order() {
    let mut body = create_flow();
    set(&mut body, "/triggerConfig/triggerType", json!("Weekly"));
    assert_eq!(
        message("CreateFlowRequest", &body),
        "1 validation error detected: Value 'Weekly' at 'triggerConfig.triggerType' failed to satisfy constraint: \
         Member must satisfy enum value set: [Scheduled, Event, OnDemand]"
    );
    // Enum matching is exact, like the SDKs' serializers.
    set(&mut body, "/triggerConfig/triggerType", json!("ondemand"));
    assert_eq!(errors("CreateFlowRequest", &body).len(), 1);
}

#[test]
fn wrong_json_types_name_the_expected_type() {
    let cases = [
        (
            "/sourceFlowConfig",
            json!("S3"),
            "sourceFlowConfig",
            "Member must be of type object but was string",
        ),
        (
            "/flowName",
            json!(5),
            "flowName",
            "Member must be of type string but was number",
        ),
        (
            "/tasks",
            json!({"a": 1}),
            "tasks",
            "Member must be of type array but was object",
        ),
        (
            "/tags",
            json!(["team"]),
            "tags",
            "Member must be of type object but was array",
        ),
        (
            "/tasks/0/sourceFields",
            json!("id"),
            "tasks.1.member.sourceFields",
            "Member must be of type array but was string",
        ),
        (
            "/flowName",
            json!(true),
            "flowName",
            "Member must be of type string but was boolean",
        ),
    ];
    for (pointer, value, path, expected) in cases {
        let mut body = create_flow();
        set(&mut body, pointer, value);
        let errs = errors("CreateFlowRequest", &body);
        assert_eq!(errs.len(), 1, "{pointer}");
        assert_eq!(errs[0].path, path);
        assert_eq!(errs[0].message, expected);
    }
    let errs = errors(
        "DeleteFlowRequest",
        &json!({"flowName": "f1", "forceDelete": "yes"}),
    );
    assert_eq!(
        errs[0].to_string(),
        "Value 'yes' at 'forceDelete' failed to satisfy constraint: Member must be of type boolean but was string"
    );
}

#[test]
fn deep_paths_use_the_aws_convention() {
    let mut body = create_flow();
    set(
        &mut body,
        "/sourceFlowConfig/sourceConnectorProperties/S3/bucketName",
        json!("ab"),
    );
    set(&mut body, "/tasks/1/sourceFields", json!(["id", null]));
    remove(&mut body, "/destinationFlowConfigList/0/connectorType");
    let paths: Vec<String> = errors("CreateFlowRequest", &body)
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(
        paths,
        [
            "destinationFlowConfigList.1.member.connectorType",
            "sourceFlowConfig.sourceConnectorProperties.S3.bucketName",
            "tasks.2.member.sourceFields.2.member",
        ]
    );
}

#[test]
fn task_properties_keys_must_be_operator_property_keys() {
    let mut body = create_flow();
    set(
        &mut body,
        "/tasks/1/taskProperties",
        json!({"FOO": "x", "VALUE": ""}),
    );
    let errs = errors("CreateFlowRequest", &body);
    assert_eq!(errs.len(), 2);
    assert_eq!(errs[0].path, "tasks.2.member.taskProperties");
    assert_eq!(errs[0].value.as_deref(), Some("'FOO'"));
    assert!(
        errs[0].message.starts_with(
            "Map keys must satisfy constraint: [Member must satisfy enum value set: [VALUE, VALUES, DATA_TYPE,"
        ),
        "{}",
        errs[0].message
    );
    assert!(errs[0].message.ends_with("ORDERED_PARTITION_KEYS_LIST]]"));
    assert_eq!(errs[1].path, "tasks.2.member.taskProperties.VALUE");
    assert_eq!(
        errs[1].message,
        "Member must satisfy regular expression pattern: .+"
    );
}

#[test]
fn tag_keys_cannot_start_with_aws() {
    let body = json!({"tags": {"aws:owner": "me", "team": "data"}});
    assert_eq!(
        message("TagResourceRequest", &body),
        "1 validation error detected: Value 'aws:owner' at 'tags' failed to satisfy constraint: \
         Map keys must satisfy constraint: [Member must satisfy regular expression pattern: ^(?!aws:)[a-zA-Z+-=._:/]+$]"
    );
    // `aws` elsewhere in the key, or a different case, is allowed (the look-ahead is case-sensitive).
    validate(
        "TagResourceRequest",
        &json!({"tags": {"my:aws:key": "v", "AWS:x": "v"}}),
    )
    .unwrap();
    // Characters outside the class are still rejected.
    let errs = errors("TagResourceRequest", &json!({"tags": {"bad key": "v"}}));
    assert_eq!(errs.len(), 1);
    let errs = errors("TagResourceRequest", &json!({"tags": {"": "v"}}));
    assert!(
        errs[0]
            .message
            .contains("length greater than or equal to 1")
    );
    // Values: too long and a null value.
    let errs = errors(
        "TagResourceRequest",
        &json!({"tags": {"team": "x".repeat(257), "owner": null}}),
    );
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["tags.owner", "tags.team"]);
}

#[test]
fn tags_map_size_is_limited() {
    // `+-=` in the key class is a range that includes the digits.
    let tags: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("key{i}"), json!("v"))).collect();
    let errs = errors("TagResourceRequest", &json!({ "tags": tags }));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].path, "tags");
    assert_eq!(
        errs[0].message,
        "Member must have length less than or equal to 50"
    );
}

#[test]
fn unicode_follows_java_semantics() {
    // Java's \w is ASCII-only, so AWS rejects non-ASCII flow names and descriptions.
    let mut body = create_flow();
    set(&mut body, "/flowName", json!("flöw"));
    body["description"] = json!("café");
    let paths: Vec<String> = errors("CreateFlowRequest", &body)
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(paths, ["description", "flowName"]);

    // `.*` accepts any Unicode, and lengths count characters, not bytes.
    let mut body = create_flow();
    set(
        &mut body,
        "/tasks/1/destinationField",
        json!("é".repeat(256)),
    );
    validate("CreateFlowRequest", &body).unwrap();
    set(
        &mut body,
        "/tasks/1/destinationField",
        json!("🦀".repeat(257)),
    );
    let errs = errors("CreateFlowRequest", &body);
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs[0].message,
        "Member must have length less than or equal to 256"
    );

    // Java's `.` does not match line terminators.
    set(&mut body, "/tasks/1/destinationField", json!("a\u{2028}b"));
    assert_eq!(errors("CreateFlowRequest", &body).len(), 1);

    // Surrogate-pair ranges in the model become supplementary code points.
    let glue = |prefix: &str| {
        let mut body = create_flow();
        body["metadataCatalogConfig"] = json!({"glueDataCatalog": {
            "roleArn": "arn:aws:iam::123456789012:role/glue", "databaseName": "db", "tablePrefix": prefix}});
        validate("CreateFlowRequest", &body)
    };
    glue("préfixe_🦀\t").unwrap();
    let errs = glue("bad\u{1}").unwrap_err().0;
    assert_eq!(
        errs[0].path,
        "metadataCatalogConfig.glueDataCatalog.tablePrefix"
    );
}

#[test]
fn unknown_members_and_null_optionals_are_ignored() {
    let mut body = create_flow();
    body["somethingNew"] = json!({"nested": [1, 2]});
    body["sourceFlowConfig"]["extra"] = json!(true);
    body["description"] = Value::Null;
    body["tasks"][0]["taskProperties"] = Value::Null;
    let request: CreateFlowRequest =
        parse_request("CreateFlowRequest", body.to_string().as_bytes()).unwrap();
    assert!(request.description.is_none());
    assert!(request.tasks[0].task_properties.is_none());
}

#[test]
fn malformed_json_is_a_validation_error() {
    for body in [
        &b"{\"flowName\": "[..],
        b"not json",
        b"{\"a\":1}}",
        b"\xff\xfe",
    ] {
        let error = parse_request::<CreateFlowRequest>("CreateFlowRequest", body).unwrap_err();
        assert_eq!(error.0.len(), 1);
        assert!(error.0[0].path.is_empty());
        let text = error.to_string();
        assert!(
            text.starts_with("1 validation error detected: Request body is not valid JSON: "),
            "{text}"
        );
        assert!(text.contains("line 1 column"), "{text}");
    }
}

#[test]
fn the_body_must_be_an_object() {
    for body in ["[]", "\"x\"", "5", "null"] {
        let error =
            parse_request::<ListFlowsRequest>("ListFlowsRequest", body.as_bytes()).unwrap_err();
        assert!(
            error.0[0]
                .message
                .starts_with("Request body must be a JSON object but was "),
            "{body}: {error}"
        );
    }
}

#[test]
fn an_empty_body_counts_as_an_empty_object() {
    let request: ListFlowsRequest = parse_request("ListFlowsRequest", b"").unwrap();
    assert!(request.max_results.is_none());
    parse_request::<ListTagsForResourceRequest>("ListTagsForResourceRequest", b" \n").unwrap();
    let error = parse_request::<DescribeFlowRequest>("DescribeFlowRequest", b"").unwrap_err();
    assert_eq!(
        error.to_string(),
        "1 validation error detected: Value null at 'flowName' failed to satisfy constraint: Member must not be null"
    );
}

#[test]
fn timestamps_accept_epoch_seconds_and_iso_strings_only() {
    let scheduled = |start: Value| {
        json!({
            "flowName": "f1",
            "triggerConfig": {"triggerType": "Scheduled", "triggerProperties": {"Scheduled": {
                "scheduleExpression": "rate(1hours)", "scheduleStartTime": start}}},
            "sourceFlowConfig": {"connectorType": "S3", "sourceConnectorProperties": {"S3": {"bucketName": "src"}}},
            "destinationFlowConfigList": [],
            "tasks": []
        })
    };
    for ok in [
        json!(1893456000),
        json!(1893456000.5),
        json!("2030-01-01T00:00:00+02:00"),
        json!("1893456000"),
    ] {
        validate("UpdateFlowRequest", &scheduled(ok.clone()))
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in [json!("tomorrow"), json!(true), json!([1]), json!(1e300)] {
        let errs = errors("UpdateFlowRequest", &scheduled(bad.clone()));
        assert_eq!(errs.len(), 1, "{bad}");
        assert_eq!(
            errs[0].path,
            "triggerConfig.triggerProperties.Scheduled.scheduleStartTime"
        );
        assert!(
            errs[0]
                .message
                .starts_with("Member must be of type timestamp"),
            "{bad}"
        );
    }
}

#[test]
fn secrets_are_never_echoed() {
    let body = json!({
        "connectorProfileName": "prof", "connectorType": "Amplitude", "connectionMode": "Public",
        "connectorProfileConfig": {
            "connectorProfileProperties": {"Amplitude": {}},
            "connectorProfileCredentials": {"Amplitude": {"apiKey": "top secret", "secretKey": ["hunter2"]}}
        }
    });
    let error = validate("CreateConnectorProfileRequest", &body).unwrap_err();
    let text = error.to_string();
    assert!(!text.contains("top secret"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert_eq!(
        error.0[0].to_string(),
        "Value at 'connectorProfileConfig.connectorProfileCredentials.Amplitude.apiKey' failed to satisfy constraint: \
         Member must satisfy regular expression pattern: \\S+"
    );
    assert_eq!(error.0[1].value, None);

    // A whole credentials structure of the wrong type is not echoed either.
    let body = json!({
        "connectorProfileName": "prof", "connectorType": "Amplitude", "connectionMode": "Public",
        "connectorProfileConfig": {
            "connectorProfileProperties": {"Amplitude": {}},
            "connectorProfileCredentials": ["apiKey=top secret"]
        }
    });
    let text = validate("CreateConnectorProfileRequest", &body)
        .unwrap_err()
        .to_string();
    assert!(!text.contains("top secret"), "{text}");
    assert!(text.contains("Member must be of type object but was array"));

    // Sensitive map keys (custom credential maps) are hidden too.
    let body = json!({
        "connectorProfileName": "prof", "connectorType": "CustomConnector", "connectionMode": "Public",
        "connectorLabel": "Postgres",
        "connectorProfileConfig": {
            "connectorProfileProperties": {"CustomConnector": {}},
            "connectorProfileCredentials": {"CustomConnector": {"authenticationType": "CUSTOM",
                "custom": {"customAuthenticationType": "pg", "credentialsMap": {"pass word": "s3cr3t"}}}}
        }
    });
    let text = validate("CreateConnectorProfileRequest", &body)
        .unwrap_err()
        .to_string();
    assert!(
        !text.contains("pass word") && !text.contains("s3cr3t"),
        "{text}"
    );
    assert!(text.contains("Map keys must satisfy constraint"), "{text}");
}

#[test]
fn at_most_max_reported_errors() {
    let mut body = create_flow();
    set(
        &mut body,
        "/tasks/0/sourceFields",
        Value::Array(vec![Value::Null; 150]),
    );
    let errs = errors("CreateFlowRequest", &body);
    assert_eq!(errs.len(), MAX_REPORTED_ERRORS);
    assert!(
        validate("CreateFlowRequest", &body)
            .unwrap_err()
            .to_string()
            .starts_with("100 validation errors detected: ")
    );
}

#[test]
fn uri_and_query_members_are_checked_separately() {
    // Not required in the body...
    validate("UntagResourceRequest", &json!({})).unwrap();
    // ...but validated on their own.
    validate_member("UntagResourceRequest", "tagKeys", &json!(["team", "owner"])).unwrap();
    let errs = validate_member("UntagResourceRequest", "tagKeys", &json!(["aws:x"]))
        .unwrap_err()
        .0;
    assert_eq!(errs[0].path, "tagKeys.1.member");
    validate_member(
        "ListTagsForResourceRequest",
        "resourceArn",
        &json!("arn:aws:appflow:us-east-1:123456789012:flow/my-flow"),
    )
    .unwrap();
    let errs = validate_member("TagResourceRequest", "resourceArn", &json!("flow/my-flow"))
        .unwrap_err()
        .0;
    assert_eq!(errs[0].path, "resourceArn");
    let errs = validate_member("TagResourceRequest", "resourceArn", &Value::Null)
        .unwrap_err()
        .0;
    assert_eq!(errs[0].message, "Member must not be null");
    assert!(validate_member("TagResourceRequest", "nope", &json!(1)).is_err());
}

#[test]
fn unknown_shapes_are_reported_not_panicked() {
    let error = validate("NoSuchRequest", &json!({})).unwrap_err();
    assert_eq!(
        error.to_string(),
        "1 validation error detected: Unknown input shape 'NoSuchRequest'"
    );
    assert!(validate("FlowName", &json!({})).is_err());
    assert_eq!(input_shape("CreateFlow"), Some("CreateFlowRequest"));
    assert_eq!(input_shape("Nope"), None);
}

#[test]
fn java_patterns_translate_to_ascii_classes() {
    assert_eq!(java_to_rust_regex(r"\S+"), "[[:^space:]]+");
    assert_eq!(java_to_rust_regex(r"[\w/!@#+=.-]+"), "[[:word:]/!@#+=.-]+");
    assert_eq!(
        java_to_rust_regex(r"[\u0020-\uD7FF\uD800\uDC00-\uDBFF\uDFFF\t]*"),
        r"[\x{20}-\x{D7FF}\x{10000}-\x{10FFFF}\t]*"
    );
    assert_eq!(
        java_to_rust_regex(r"\.a.b"),
        r"\.a[^\n\r\x{85}\x{2028}\x{2029}]b"
    );
    assert_eq!(
        split_negative_lookahead("^(?!aws:)[a-z]+$"),
        (Some("aws:".to_string()), "[a-z]+$")
    );
    assert_eq!(split_negative_lookahead("[a-z]+"), (None, "[a-z]+"));
}
