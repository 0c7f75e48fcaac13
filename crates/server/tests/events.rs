//! Event-triggered flows: the signed webhook `POST /webhooks/flows/{flowName}`, and S3
//! object-created events found by polling the source prefix.

mod common;

use std::time::Duration;

use common::{Signing, TestServer, files_under, s3_flow};
use serde_json::{Value, json};

fn event_flow(name: &str) -> Value {
    let mut flow = s3_flow(name, "src", "dst");
    flow["triggerConfig"] = json!({"triggerType": "Event"});
    flow
}

fn webhook(flow: &str) -> String {
    format!("/webhooks/flows/{flow}")
}

#[tokio::test]
async fn a_signed_webhook_starts_a_run_of_an_active_event_flow() {
    let server = TestServer::start().await;
    let source = server.buckets().join("src/in");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("a.csv"), "id,name\n1,Zoë\n2,\n").unwrap();
    let created = server.ok("/create-flow", event_flow("on-event")).await;
    assert_eq!(created["flowStatus"], "Draft");

    // Not active yet: events are refused.
    let early = server.call(&webhook("on-event"), json!({})).await;
    let message = early.assert_error(409, "ConflictException");
    assert!(message.contains("StartFlow"), "{message}");

    let started = server
        .ok("/start-flow", json!({"flowName": "on-event"}))
        .await;
    assert_eq!(started["flowStatus"], "Active");
    assert!(
        started.get("executionId").is_none(),
        "activation runs nothing"
    );

    let fired = server
        .ok(&webhook("on-event"), json!({"anything": ["is", "ignored"]}))
        .await;
    assert_eq!(fired["flowStatus"], "Active");
    assert!(
        fired["flowArn"]
            .as_str()
            .unwrap()
            .ends_with(":flow/on-event")
    );
    let execution_id = fired["executionId"].as_str().unwrap();
    let record = server.wait_for_run("on-event", execution_id).await;
    assert_eq!(record["executionStatus"], "Successful", "{record:#?}");
    assert_eq!(record["executionResult"]["recordsProcessed"], 2);

    // An empty body is an event too; each event is its own run.
    let again = server
        .send("POST", &webhook("on-event"), b"", Signing::Root)
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_ne!(again.body["executionId"], fired["executionId"]);

    // Stopped: events are refused again.
    server
        .ok("/stop-flow", json!({"flowName": "on-event"}))
        .await;
    server
        .call(&webhook("on-event"), json!({}))
        .await
        .assert_error(409, "ConflictException");
    server.stop().await;
}

#[tokio::test]
async fn the_webhook_is_authenticated_and_only_for_event_flows() {
    let server = TestServer::start().await;
    server.ok("/create-flow", event_flow("ev")).await;
    server.ok("/start-flow", json!({"flowName": "ev"})).await;

    let unsigned = server
        .send("POST", &webhook("ev"), b"{}", Signing::None)
        .await;
    assert_eq!(unsigned.status, 403, "{}", unsigned.body);
    let wrong_key = server
        .send(
            "POST",
            &webhook("ev"),
            b"{}",
            Signing::Key("AKSLNOSUCHKEY0000001".into(), "nope".into()),
        )
        .await;
    assert_eq!(wrong_key.status, 403, "{}", wrong_key.body);
    let tampered = server
        .send(
            "POST",
            &webhook("ev"),
            b"{}",
            Signing::TamperBody(b"{\"x\":1}".to_vec()),
        )
        .await;
    assert_eq!(tampered.status, 403, "{}", tampered.body);

    server
        .call(&webhook("missing"), json!({}))
        .await
        .assert_error(404, "ResourceNotFoundException");
    server
        .ok("/create-flow", s3_flow("on-demand", "src", "dst"))
        .await;
    let message = server
        .call(&webhook("on-demand"), json!({}))
        .await
        .assert_error(400, "ValidationException")
        .to_string();
    assert!(message.contains("not Event"), "{message}");

    // Names are validated like flowName; other methods are not routed.
    server
        .call(&webhook("bad%20name"), json!({}))
        .await
        .assert_error(400, "ValidationException");
    server
        .call("/webhooks/flows/", json!({}))
        .await
        .assert_error(400, "ValidationException");
    server
        .get(&webhook("ev"))
        .await
        .assert_error(404, "UnknownOperationException");
    server.stop().await;
}

/// The flow's execution records once `count` have finished, none in progress.
async fn finished_runs(server: &TestServer, flow: &str, count: usize) -> Vec<Value> {
    for _ in 0..400 {
        let body = server
            .ok(
                "/describe-flow-execution-records",
                json!({"flowName": flow}),
            )
            .await;
        let runs = body["flowExecutions"].as_array().unwrap().clone();
        assert!(runs.len() <= count, "more runs than expected: {runs:#?}");
        let finished = runs
            .iter()
            .all(|run| run["executionStatus"] != "InProgress");
        if runs.len() == count && finished {
            return runs;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("flow {flow} did not reach {count} finished runs");
}

/// The ids one run wrote.
fn delivered(server: &TestServer, flow: &str, execution_id: &str) -> Vec<String> {
    let dir = server
        .buckets()
        .join("dst/out")
        .join(flow)
        .join(execution_id);
    let mut ids = Vec::new();
    for file in files_under(&dir) {
        for line in std::fs::read_to_string(dir.join(file)).unwrap().lines() {
            if !line.trim().is_empty() {
                let row: Value = serde_json::from_str(line).unwrap();
                ids.push(row["id"].as_str().unwrap().to_string());
            }
        }
    }
    ids.sort();
    ids
}

#[tokio::test]
async fn each_new_s3_object_starts_one_run_that_reads_only_it() {
    let server = TestServer::start_with(
        None,
        Box::new(|config| config.event_poll_interval = Duration::from_millis(50)),
    )
    .await;
    let source = server.buckets().join("src/in");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("old.csv"), "id,name\nold,x\n").unwrap();
    server.ok("/create-flow", event_flow("objects")).await;
    server
        .ok("/start-flow", json!({"flowName": "objects"}))
        .await;

    // What existed at activation is not an event.
    tokio::time::sleep(Duration::from_millis(300)).await;
    finished_runs(&server, "objects", 0).await;

    std::fs::write(source.join("b.csv"), "id,name\nb1,Zoë\nb2,y\n").unwrap();
    let runs = finished_runs(&server, "objects", 1).await;
    assert_eq!(runs[0]["executionStatus"], "Successful", "{runs:#?}");
    let id = runs[0]["executionId"].as_str().unwrap();
    assert_eq!(delivered(&server, "objects", id), ["b1", "b2"]);

    std::fs::create_dir_all(source.join("sub")).unwrap();
    std::fs::write(source.join("sub/c.csv"), "id,name\nc,z\n").unwrap();
    std::fs::write(source.join("d.csv"), "id,name\nd,w\n").unwrap();
    let runs = finished_runs(&server, "objects", 3).await;
    let mut seen: Vec<Vec<String>> = runs
        .iter()
        .filter(|run| run["executionId"] != id)
        .map(|run| delivered(&server, "objects", run["executionId"].as_str().unwrap()))
        .collect();
    seen.sort();
    assert_eq!(seen, [vec!["c".to_string()], vec!["d".to_string()]]);

    // Nothing new: no more runs; a stopped flow ignores new objects.
    tokio::time::sleep(Duration::from_millis(300)).await;
    finished_runs(&server, "objects", 3).await;
    server
        .ok("/stop-flow", json!({"flowName": "objects"}))
        .await;
    std::fs::write(source.join("e.csv"), "id,name\ne,v\n").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    finished_runs(&server, "objects", 3).await;
    server.stop().await;
}
