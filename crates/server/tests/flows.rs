//! Flow operations end to end with the built-in connectors: CRUD, lifecycle, tags (with the
//! double-encoded path), idempotency, pagination, connector registration, and a real S3 -> S3
//! run in local-folder mode.

mod common;

use common::{ACCOUNT, REGION, Signing, TestServer, files_under, s3_flow, tags_path};
use serde_json::{Value, json};

fn scheduled(mut flow: Value) -> Value {
    flow["triggerConfig"] = json!({
        "triggerType": "Scheduled",
        "triggerProperties": {"Scheduled": {"scheduleExpression": "rate(1 hours)"}}
    });
    flow
}

#[tokio::test]
async fn create_describe_list_delete() {
    let server = TestServer::start().await;
    let mut definition = s3_flow("orders", "src", "dst");
    definition["description"] = json!("nightly orders export");
    definition["tags"] = json!({"team": "data"});
    let created = server.ok("/create-flow", definition.clone()).await;
    let arn = format!("arn:aws:appflow:{REGION}:{ACCOUNT}:flow/orders");
    assert_eq!(created, json!({"flowArn": arn, "flowStatus": "Active"}));

    let described = server
        .ok("/describe-flow", json!({"flowName": "orders"}))
        .await;
    assert_eq!(described["flowArn"], arn);
    assert_eq!(described["flowName"], "orders");
    assert_eq!(described["flowStatus"], "Active");
    assert_eq!(described["description"], "nightly orders export");
    assert_eq!(described["schemaVersion"], 1);
    assert_eq!(described["tags"], json!({"team": "data"}));
    assert_eq!(
        described["createdBy"],
        format!("arn:aws:iam::{ACCOUNT}:root")
    );
    assert_eq!(
        described["lastUpdatedBy"],
        format!("arn:aws:iam::{ACCOUNT}:root")
    );
    assert!(
        described["createdAt"].is_number(),
        "epoch seconds: {}",
        described["createdAt"]
    );
    assert_eq!(
        described["sourceFlowConfig"],
        definition["sourceFlowConfig"]
    );
    assert_eq!(described["tasks"], definition["tasks"]);
    assert!(described.get("sluiceInternal").is_none());
    assert!(
        described.get("lastRunExecutionDetails").is_none(),
        "null members are omitted"
    );
    assert!(described.get("kmsArn").is_none());

    let duplicate = server.call("/create-flow", definition.clone()).await;
    assert_eq!(
        duplicate.assert_error(409, "ConflictException"),
        "Flow orders already exists"
    );

    let listed = server.ok("/list-flows", json!({})).await;
    let flows = listed["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0]["flowName"], "orders");
    assert_eq!(flows[0]["sourceConnectorType"], "S3");
    assert_eq!(flows[0]["destinationConnectorType"], "S3");
    assert_eq!(flows[0]["triggerType"], "OnDemand");
    assert_eq!(flows[0]["tags"], json!({"team": "data"}));
    assert!(listed.get("nextToken").is_none());

    assert_eq!(
        server
            .ok("/delete-flow", json!({"flowName": "orders"}))
            .await,
        json!({})
    );
    let gone = server
        .call("/describe-flow", json!({"flowName": "orders"}))
        .await;
    assert_eq!(
        gone.assert_error(404, "ResourceNotFoundException"),
        "Flow orders does not exist"
    );
    server
        .call("/delete-flow", json!({"flowName": "orders"}))
        .await
        .assert_error(404, "ResourceNotFoundException");
}

#[tokio::test]
async fn domain_rules_are_validation_errors() {
    let server = TestServer::start().await;
    let mut no_projection = s3_flow("f1", "src", "dst");
    no_projection["tasks"] = json!([{"sourceFields": ["id"], "connectorOperator": {"S3": "NO_OP"},
        "destinationField": "id", "taskType": "Map"}]);
    let message = server
        .call("/create-flow", no_projection)
        .await
        .assert_error(400, "ValidationException")
        .to_string();
    assert!(
        message.contains("You must specify a projection task or a MAP_ALL task"),
        "{message}"
    );

    // Zendesk is a connector Sluice does not implement: its profiles are stored unchecked,
    // and flows reading from it are refused.
    let mut zendesk = s3_flow("f2", "src", "dst");
    zendesk["sourceFlowConfig"] = json!({"connectorType": "Zendesk", "connectorProfileName": "zd",
        "sourceConnectorProperties": {"Zendesk": {"object": "tickets"}}});
    for task in zendesk["tasks"].as_array_mut().unwrap() {
        let operator = task["connectorOperator"]["S3"].take();
        task["connectorOperator"] = json!({"Zendesk": operator});
    }
    let message = server
        .call("/create-flow", zendesk.clone())
        .await
        .assert_error(404, "ResourceNotFoundException")
        .to_string();
    assert!(message.contains("Connector profile zd"), "{message}");
    server
        .ok("/create-connector-profile", json!({"connectorProfileName": "zd", "connectorType": "Zendesk",
            "connectionMode": "Public", "connectorProfileConfig": {
                "connectorProfileProperties": {"Zendesk": {"instanceUrl": "https://x.zendesk.com"}},
                "connectorProfileCredentials": {"Zendesk": {"clientId": "c", "clientSecret": "s"}}}}))
        .await;
    let message = server
        .call("/create-flow", zendesk)
        .await
        .assert_error(400, "ValidationException")
        .to_string();
    assert!(
        message.contains("Zendesk") && message.contains("source"),
        "{message}"
    );

    let mut unprojected = s3_flow("f4", "src", "dst");
    unprojected["tasks"] = json!([
        {"sourceFields": ["id"], "connectorOperator": {"S3": "PROJECTION"}, "taskType": "Filter"},
        {"sourceFields": ["email"], "connectorOperator": {"S3": "NO_OP"},
         "destinationField": "email", "taskType": "Map"}]);
    let message = server
        .call("/create-flow", unprojected)
        .await
        .assert_error(400, "ValidationException")
        .to_string();
    assert!(
        message.contains("email") && message.contains("projection"),
        "{message}"
    );

    let mut aws_tag = s3_flow("f3", "src", "dst");
    aws_tag["tags"] = json!({"aws:owner": "x"});
    server
        .call("/create-flow", aws_tag)
        .await
        .assert_error(400, "ValidationException");
    assert_eq!(
        server.ok("/list-flows", json!({})).await["flows"],
        json!([]),
        "nothing was stored"
    );
}

#[tokio::test]
async fn scheduled_flow_lifecycle() {
    let server = TestServer::start().await;
    let created = server
        .ok("/create-flow", scheduled(s3_flow("sched", "src", "dst")))
        .await;
    assert_eq!(created["flowStatus"], "Draft");
    let described = server
        .ok("/describe-flow", json!({"flowName": "sched"}))
        .await;
    assert_eq!(
        described["triggerConfig"]["triggerProperties"]["Scheduled"]["scheduleExpression"],
        "rate(1hours)",
        "the schedule expression is stored in canonical form"
    );

    server
        .call("/stop-flow", json!({"flowName": "sched"}))
        .await
        .assert_error(409, "ConflictException");
    let started = server.ok("/start-flow", json!({"flowName": "sched"})).await;
    assert_eq!(started["flowStatus"], "Active");
    assert!(
        started.get("executionId").is_none(),
        "activating a scheduled flow runs nothing now"
    );
    assert_eq!(
        started["flowArn"],
        format!("arn:aws:appflow:{REGION}:{ACCOUNT}:flow/sched")
    );
    let again = server.ok("/start-flow", json!({"flowName": "sched"})).await;
    assert_eq!(again["flowStatus"], "Active");

    let stopped = server.ok("/stop-flow", json!({"flowName": "sched"})).await;
    assert_eq!(stopped["flowStatus"], "Suspended");
    assert_eq!(
        server
            .ok("/describe-flow", json!({"flowName": "sched"}))
            .await["flowStatus"],
        "Suspended"
    );
    assert_eq!(
        server.ok("/start-flow", json!({"flowName": "sched"})).await["flowStatus"],
        "Active"
    );
    server
        .call("/start-flow", json!({"flowName": "ghost"}))
        .await
        .assert_error(404, "ResourceNotFoundException");
    server
        .call("/stop-flow", json!({"flowName": "ghost"}))
        .await
        .assert_error(404, "ResourceNotFoundException");
}

#[tokio::test]
async fn stop_flow_on_an_on_demand_flow_is_unsupported() {
    let server = TestServer::start().await;
    server.ok("/create-flow", s3_flow("od", "src", "dst")).await;
    let message = server
        .call("/stop-flow", json!({"flowName": "od"}))
        .await
        .assert_error(400, "UnsupportedOperationException")
        .to_string();
    assert!(message.contains("on-demand"), "{message}");
}

#[tokio::test]
async fn update_flow_replaces_the_definition_and_bumps_the_schema_version() {
    let server = TestServer::start().await;
    let mut definition = s3_flow("upd", "src", "dst");
    definition["tags"] = json!({"keep": "me"});
    server.ok("/create-flow", definition.clone()).await;

    let mut update = s3_flow("upd", "src", "dst2");
    update.as_object_mut().unwrap().remove("tags");
    update["description"] = json!("moved");
    let updated = server.ok("/update-flow", update.clone()).await;
    assert_eq!(updated, json!({"flowStatus": "Active"}));
    let described = server
        .ok("/describe-flow", json!({"flowName": "upd"}))
        .await;
    assert_eq!(described["description"], "moved");
    assert_eq!(
        described["destinationFlowConfigList"][0]["destinationConnectorProperties"]["S3"]["bucketName"],
        "dst2"
    );
    assert_eq!(
        described["schemaVersion"], 1,
        "same mappings: same schema version"
    );
    assert_eq!(
        described["tags"],
        json!({"keep": "me"}),
        "tags survive an update"
    );

    update["tasks"][2]["destinationField"] = json!("full_name");
    server.ok("/update-flow", update.clone()).await;
    let described = server
        .ok("/describe-flow", json!({"flowName": "upd"}))
        .await;
    assert_eq!(
        described["schemaVersion"], 2,
        "a changed mapping bumps the schema version"
    );

    let to_scheduled = server.ok("/update-flow", scheduled(update.clone())).await;
    assert_eq!(
        to_scheduled["flowStatus"], "Draft",
        "a new trigger type restarts the lifecycle"
    );

    let mut missing = update.clone();
    missing["flowName"] = json!("nope");
    server
        .call("/update-flow", missing)
        .await
        .assert_error(404, "ResourceNotFoundException");
}

#[tokio::test]
async fn tags_use_the_double_encoded_arn_path() {
    let server = TestServer::start().await;
    let mut definition = s3_flow("tagged", "src", "dst");
    definition["tags"] = json!({"a": "1", "b": "2"});
    server.ok("/create-flow", definition).await;
    let path = tags_path("tagged");
    assert!(path.contains("%3A") && path.contains("%2F"), "{path}");

    let listed = server.get(&path).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body, json!({"tags": {"a": "1", "b": "2"}}));

    let tagged = server
        .send(
            "POST",
            &path,
            br#"{"tags": {"c": "3", "a": "one"}}"#,
            Signing::Root,
        )
        .await;
    assert_eq!(tagged.status, 200, "{}", tagged.body);
    assert_eq!(tagged.body, json!({}));
    assert_eq!(
        server.get(&path).await.body,
        json!({"tags": {"a": "one", "b": "2", "c": "3"}})
    );

    let untagged = server
        .delete(&format!("{path}?tagKeys=a&tagKeys=b&tagKeys=not-there"))
        .await;
    assert_eq!(untagged.status, 200, "{}", untagged.body);
    assert_eq!(server.get(&path).await.body, json!({"tags": {"c": "3"}}));
    assert_eq!(
        server
            .ok("/describe-flow", json!({"flowName": "tagged"}))
            .await["tags"],
        json!({"c": "3"})
    );

    server
        .delete(&path)
        .await
        .assert_error(400, "ValidationException");
    server
        .get(&tags_path("no-such-flow"))
        .await
        .assert_error(404, "ResourceNotFoundException");
    let other_account = path.replace(ACCOUNT, "999999999999");
    server
        .get(&other_account)
        .await
        .assert_error(404, "ResourceNotFoundException");
    server
        .get("/tags/not-an-arn")
        .await
        .assert_error(400, "ValidationException");

    let reserved = server
        .send("POST", &path, br#"{"tags": {"aws:x": "y"}}"#, Signing::Root)
        .await;
    reserved.assert_error(400, "ValidationException");
    let many: serde_json::Map<String, Value> =
        (0..50).map(|i| (format!("k{i}"), json!("v"))).collect();
    let too_many = server
        .send(
            "POST",
            &path,
            &serde_json::to_vec(&json!({"tags": many})).unwrap(),
            Signing::Root,
        )
        .await;
    let message = too_many
        .assert_error(400, "ValidationException")
        .to_string();
    assert!(message.contains("50"), "{message}");
    assert_eq!(
        server.get(&path).await.body,
        json!({"tags": {"c": "3"}}),
        "a refused change changed nothing"
    );
}

#[tokio::test]
async fn client_tokens_replay_or_conflict() {
    let server = TestServer::start().await;
    let mut definition = s3_flow("idem", "src", "dst");
    definition["clientToken"] = json!("c42ac4fa-bc51-43a0-8a5e-6f1a2c053239");
    let first = server.ok("/create-flow", definition.clone()).await;
    let replay = server.ok("/create-flow", definition.clone()).await;
    assert_eq!(
        first, replay,
        "same token and parameters replay the response"
    );

    let mut changed = definition.clone();
    changed["description"] = json!("different");
    let conflict = server.call("/create-flow", changed).await;
    let message = conflict.assert_error(409, "ConflictException").to_string();
    assert!(message.contains("clientToken"), "{message}");

    // Without a token (or with a new one) the duplicate name is a conflict.
    definition["clientToken"] = json!("another-token");
    let duplicate = server.call("/create-flow", definition).await;
    assert_eq!(
        duplicate.assert_error(409, "ConflictException"),
        "Flow idem already exists"
    );

    // StartFlow with the same token starts one run only.
    let start = json!({"flowName": "idem", "clientToken": "start-1"});
    let a = server.ok("/start-flow", start.clone()).await;
    let b = server.ok("/start-flow", start).await;
    assert_eq!(a["executionId"], b["executionId"]);
    let records = server
        .ok(
            "/describe-flow-execution-records",
            json!({"flowName": "idem"}),
        )
        .await;
    assert_eq!(records["flowExecutions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn list_flows_pagination() {
    let server = TestServer::start().await;
    for i in 0..25 {
        server
            .ok(
                "/create-flow",
                s3_flow(&format!("flow-{i:02}"), "src", "dst"),
            )
            .await;
    }
    let first = server.ok("/list-flows", json!({})).await;
    assert_eq!(
        first["flows"].as_array().unwrap().len(),
        20,
        "default page size is 20"
    );
    let token = first["nextToken"].as_str().expect("more pages").to_string();
    let second = server.ok("/list-flows", json!({"nextToken": token})).await;
    let rest: Vec<&str> = second["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["flowName"].as_str().unwrap())
        .collect();
    assert_eq!(
        rest,
        vec!["flow-20", "flow-21", "flow-22", "flow-23", "flow-24"]
    );
    assert!(second.get("nextToken").is_none());

    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"maxResults": 7});
        if let Some(t) = &token {
            body["nextToken"] = json!(t);
        }
        let page = server.ok("/list-flows", body).await;
        let flows = page["flows"].as_array().unwrap();
        assert!(flows.len() <= 7);
        names.extend(
            flows
                .iter()
                .map(|f| f["flowName"].as_str().unwrap().to_string()),
        );
        token = page["nextToken"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let expected: Vec<String> = (0..25).map(|i| format!("flow-{i:02}")).collect();
    assert_eq!(names, expected);

    for bad in [
        json!({"nextToken": "garbage"}),
        json!({"maxResults": 101}),
        json!({"maxResults": 0}),
    ] {
        server
            .call("/list-flows", bad)
            .await
            .assert_error(400, "ValidationException");
    }
    let foreign = server
        .ok("/describe-connectors", json!({"maxResults": 1}))
        .await;
    if let Some(token) = foreign["nextToken"].as_str() {
        server
            .call("/list-flows", json!({"nextToken": token}))
            .await
            .assert_error(400, "ValidationException");
    }
}

#[tokio::test]
async fn connectors_are_advertised_and_registrations_stored() {
    let server = TestServer::start().await;
    let described = server.ok("/describe-connectors", json!({})).await;
    let s3 = &described["connectorConfigurations"]["S3"];
    assert_eq!(s3["canUseAsSource"], true, "{described}");
    assert_eq!(s3["canUseAsDestination"], true);
    let salesforce = &described["connectorConfigurations"]["Salesforce"];
    assert_eq!(salesforce["canUseAsSource"], true, "{described}");
    assert_eq!(salesforce["canUseAsDestination"], true);
    assert_eq!(
        salesforce["connectorMetadata"]["Salesforce"]["oauth2GrantTypesSupported"],
        json!(["AUTHORIZATION_CODE", "JWT_BEARER", "CLIENT_CREDENTIALS"])
    );
    assert!(
        described["connectorConfigurations"]
            .get("Zendesk")
            .is_none(),
        "only what exists"
    );
    let one = server
        .ok("/describe-connector", json!({"connectorType": "S3"}))
        .await;
    assert_eq!(one["connectorConfiguration"]["canUseAsSource"], true);
    let one = server
        .ok(
            "/describe-connector",
            json!({"connectorType": "Salesforce"}),
        )
        .await;
    assert_eq!(one["connectorConfiguration"]["connectorType"], "Salesforce");
    server
        .call("/describe-connector", json!({"connectorType": "Zendesk"}))
        .await
        .assert_error(404, "ResourceNotFoundException");

    let lambda = "arn:aws:lambda:us-east-1:123456789012:function:my-connector";
    let registered = server
        .ok("/register-connector", json!({"connectorLabel": "MyConnector", "description": "mine",
            "connectorProvisioningType": "LAMBDA", "connectorProvisioningConfig": {"lambda": {"lambdaArn": lambda}}}))
        .await;
    assert_eq!(
        registered["connectorArn"],
        format!("arn:aws:appflow:{REGION}:{ACCOUNT}:connector/MyConnector")
    );
    server
        .call("/register-connector", json!({"connectorLabel": "MyConnector",
            "connectorProvisioningType": "LAMBDA", "connectorProvisioningConfig": {"lambda": {"lambdaArn": lambda}}}))
        .await
        .assert_error(409, "ConflictException");
    server
        .call("/register-connector", json!({"connectorLabel": "NoLambda"}))
        .await
        .assert_error(400, "ValidationException");

    let listed = server.ok("/list-connectors", json!({})).await;
    let labels: Vec<&Value> = listed["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["connectorLabel"])
        .collect();
    assert!(labels.contains(&&json!("MyConnector")), "{listed}");
    let config = server
        .ok(
            "/describe-connector",
            json!({"connectorType": "CustomConnector", "connectorLabel": "MyConnector"}),
        )
        .await;
    assert_eq!(
        config["connectorConfiguration"]["connectorProvisioningConfig"]["lambda"]["lambdaArn"],
        lambda
    );
    assert_eq!(config["connectorConfiguration"]["canUseAsSource"], false);
    assert_eq!(
        config["connectorConfiguration"]["registeredBy"],
        format!("arn:aws:iam::{ACCOUNT}:root")
    );

    server
        .ok(
            "/update-connector-registration",
            json!({"connectorLabel": "MyConnector", "description": "new"}),
        )
        .await;
    let config = server
        .ok(
            "/describe-connector",
            json!({"connectorType": "CustomConnector", "connectorLabel": "MyConnector"}),
        )
        .await;
    assert_eq!(
        config["connectorConfiguration"]["connectorDescription"],
        "new"
    );

    // A profile for it is stored, but metadata calls and flows through it are refused.
    server
        .ok("/create-connector-profile", json!({"connectorProfileName": "mine", "connectorType": "CustomConnector",
            "connectorLabel": "MyConnector", "connectionMode": "Public",
            "connectorProfileConfig": {"connectorProfileProperties": {"CustomConnector": {}},
                "connectorProfileCredentials": {"CustomConnector": {"authenticationType": "APIKEY", "apiKey": {"apiKey": "k"}}}}}))
        .await;
    let refused = server
        .call(
            "/list-connector-entities",
            json!({"connectorProfileName": "mine"}),
        )
        .await;
    let message = refused
        .assert_error(400, "UnsupportedOperationException")
        .to_string();
    assert!(message.contains("Lambda"), "{message}");
    let mut flow = s3_flow("lambda-flow", "src", "dst");
    flow["sourceFlowConfig"] = json!({"connectorType": "CustomConnector", "connectorProfileName": "mine",
        "sourceConnectorProperties": {"CustomConnector": {"entityName": "things"}}});
    flow["tasks"][0]["connectorOperator"] = json!({"CustomConnector": "PROJECTION"});
    flow["tasks"][1]["connectorOperator"] = json!({"CustomConnector": "NO_OP"});
    flow["tasks"][2]["connectorOperator"] = json!({"CustomConnector": "NO_OP"});
    let message = server
        .call("/create-flow", flow)
        .await
        .assert_error(400, "ValidationException")
        .to_string();
    assert!(message.contains("Lambda"), "{message}");

    let in_use = server
        .call(
            "/unregister-connector",
            json!({"connectorLabel": "MyConnector"}),
        )
        .await;
    in_use.assert_error(409, "ConflictException");
    server
        .ok(
            "/unregister-connector",
            json!({"connectorLabel": "MyConnector", "forceDelete": true}),
        )
        .await;
    server
        .call(
            "/unregister-connector",
            json!({"connectorLabel": "MyConnector"}),
        )
        .await
        .assert_error(404, "ResourceNotFoundException");
}

#[tokio::test]
async fn connector_profiles_crud_and_filters() {
    let server = TestServer::start().await;
    let profile = |name: &str, ty: &str, key: &str| {
        json!({"connectorProfileName": name, "connectorType": ty, "connectionMode": "Public",
            "connectorProfileConfig": {
                "connectorProfileProperties": {key: {"instanceUrl": "https://example.com"}},
                "connectorProfileCredentials": {key: {"username": "u", "password": "p4ssw0rd!"}}}})
    };
    server
        .ok(
            "/create-connector-profile",
            profile("sn-1", "Servicenow", "ServiceNow"),
        )
        .await;
    server
        .ok(
            "/create-connector-profile",
            profile("sn-2", "Servicenow", "ServiceNow"),
        )
        .await;
    server
        .ok("/create-connector-profile", json!({"connectorProfileName": "veeva", "connectorType": "Veeva",
            "connectionMode": "Public", "connectorProfileConfig": {
                "connectorProfileProperties": {"Veeva": {"instanceUrl": "https://v.example.com"}},
                "connectorProfileCredentials": {"Veeva": {"username": "u", "password": "p4ssw0rd!"}}}}))
        .await;
    let duplicate = server
        .call(
            "/create-connector-profile",
            profile("sn-1", "Servicenow", "ServiceNow"),
        )
        .await;
    assert_eq!(
        duplicate.assert_error(409, "ConflictException"),
        "Connector profile sn-1 already exists"
    );
    let mismatched = server
        .call(
            "/create-connector-profile",
            profile("bad", "Servicenow", "Veeva"),
        )
        .await;
    mismatched.assert_error(400, "ValidationException");

    let all = server.ok("/describe-connector-profiles", json!({})).await;
    assert_eq!(all["connectorProfileDetails"].as_array().unwrap().len(), 3);
    assert!(!all.to_string().contains("p4ssw0rd!"));
    let by_type = server
        .ok(
            "/describe-connector-profiles",
            json!({"connectorType": "Servicenow", "maxResults": 1}),
        )
        .await;
    assert_eq!(
        by_type["connectorProfileDetails"][0]["connectorProfileName"],
        "sn-1"
    );
    let next = by_type["nextToken"]
        .as_str()
        .expect("second page")
        .to_string();
    let page2 = server
        .ok(
            "/describe-connector-profiles",
            json!({"connectorType": "Servicenow", "maxResults": 1, "nextToken": next}),
        )
        .await;
    assert_eq!(
        page2["connectorProfileDetails"][0]["connectorProfileName"],
        "sn-2"
    );
    assert!(page2.get("nextToken").is_none());
    let by_name = server
        .ok(
            "/describe-connector-profiles",
            json!({"connectorProfileNames": ["veeva", "ghost"]}),
        )
        .await;
    assert_eq!(
        by_name["connectorProfileDetails"].as_array().unwrap().len(),
        1
    );
    let none = server
        .ok(
            "/describe-connector-profiles",
            json!({"connectorLabel": "nothing"}),
        )
        .await;
    assert_eq!(none["connectorProfileDetails"], json!([]));

    server
        .ok(
            "/delete-connector-profile",
            json!({"connectorProfileName": "sn-2"}),
        )
        .await;
    server
        .call(
            "/delete-connector-profile",
            json!({"connectorProfileName": "sn-2"}),
        )
        .await
        .assert_error(404, "ResourceNotFoundException");
    server
        .call("/update-connector-profile", json!({"connectorProfileName": "ghost", "connectionMode": "Public",
            "connectorProfileConfig": {"connectorProfileProperties": {"Veeva": {"instanceUrl": "https://x"}}}}))
        .await
        .assert_error(404, "ResourceNotFoundException");
}

#[tokio::test]
async fn on_demand_s3_to_s3_run_in_local_folder_mode() {
    let server = TestServer::start().await;
    let input = server.buckets().join("src-bkt").join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(
        input.join("people.csv"),
        "id,name,secret\n1,Ada,x\n2,\"Grace, H\",y\n3,Zoë,z\n",
    )
    .unwrap();
    std::fs::create_dir_all(server.buckets().join("dst-bkt")).unwrap();

    server
        .ok("/create-flow", s3_flow("people", "src-bkt", "dst-bkt"))
        .await;
    let started = server
        .ok("/start-flow", json!({"flowName": "people"}))
        .await;
    let id = started["executionId"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "a UUID");
    let record = server.wait_for_run("people", &id).await;
    assert_eq!(record["executionStatus"], "Successful", "{record}");
    assert_eq!(record["executionResult"]["recordsProcessed"], 3);
    assert!(
        record["executionResult"]["bytesProcessed"]
            .as_i64()
            .unwrap()
            > 0
    );
    assert!(record["executionResult"]["bytesWritten"].as_i64().unwrap() > 0);

    let written = files_under(&server.buckets().join("dst-bkt"));
    assert_eq!(written.len(), 1, "{written:?}");
    let path = written[0].to_string_lossy().to_string();
    assert!(path.starts_with(&format!("out/people/{id}/")), "{path}");
    let output =
        std::fs::read_to_string(server.buckets().join("dst-bkt").join(&written[0])).unwrap();
    let rows: Vec<Value> = output
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        rows,
        vec![
            json!({"id": "1", "name": "Ada"}),
            json!({"id": "2", "name": "Grace, H"}),
            json!({"id": "3", "name": "Zoë"}),
        ]
    );

    let flow = server
        .ok("/describe-flow", json!({"flowName": "people"}))
        .await;
    assert_eq!(
        flow["lastRunExecutionDetails"]["mostRecentExecutionStatus"],
        "Successful"
    );

    // A run against a missing bucket fails with a message that says where.
    server
        .ok(
            "/create-flow",
            s3_flow("broken", "no-such-bucket", "dst-bkt"),
        )
        .await;
    let id = server
        .ok("/start-flow", json!({"flowName": "broken"}))
        .await["executionId"]
        .as_str()
        .unwrap()
        .to_string();
    let record = server.wait_for_run("broken", &id).await;
    assert_eq!(record["executionStatus"], "Error", "{record}");
    let message = record["executionResult"]["errorInfo"]["executionMessage"]
        .as_str()
        .unwrap();
    assert!(message.contains("no-such-bucket"), "{message}");
    let flow = server
        .ok("/describe-flow", json!({"flowName": "broken"}))
        .await;
    assert_eq!(
        flow["lastRunExecutionDetails"]["mostRecentExecutionStatus"],
        "Error"
    );
    assert_eq!(
        flow["lastRunExecutionDetails"]["mostRecentExecutionMessage"],
        message
    );
}

#[tokio::test]
async fn execution_records_are_newest_first_and_paginated() {
    let server = TestServer::start().await;
    let input = server.buckets().join("src").join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("a.csv"), "id,name\n1,a\n").unwrap();
    std::fs::create_dir_all(server.buckets().join("dst")).unwrap();
    server
        .ok("/create-flow", s3_flow("runs", "src", "dst"))
        .await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let id = server.ok("/start-flow", json!({"flowName": "runs"})).await["executionId"]
            .as_str()
            .unwrap()
            .to_string();
        server.wait_for_run("runs", &id).await;
        ids.push(id);
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"flowName": "runs", "maxResults": 2});
        if let Some(t) = &token {
            body["nextToken"] = json!(t);
        }
        let page = server.ok("/describe-flow-execution-records", body).await;
        seen.extend(
            page["flowExecutions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["executionId"].as_str().unwrap().to_string()),
        );
        token = page["nextToken"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, every run exactly once");
    server
        .call(
            "/describe-flow-execution-records",
            json!({"flowName": "ghost"}),
        )
        .await
        .assert_error(404, "ResourceNotFoundException");
}
