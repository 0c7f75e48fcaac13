//! Wire protocol: routing, error shape, SigV4 failures, request validation, body limits.

mod common;

use chrono::Utc;
use common::{ACCESS_KEY, SECRET_KEY, Signing, TestServer, raw_exchange};
use serde_json::json;

#[tokio::test]
async fn every_response_has_a_request_id_and_json_content_type() {
    let server = TestServer::start().await;
    let ok = server.call("/list-flows", json!({})).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body, json!({"flows": []}));
    assert_eq!(ok.header("content-type"), Some("application/json"));
    let id = ok.header("x-amzn-RequestId").expect("request id");
    assert_eq!(id.len(), 36);
    assert!(ok.header("x-amzn-ErrorType").is_none());

    let again = server.call("/list-flows", json!({})).await;
    assert_ne!(
        again.header("x-amzn-RequestId"),
        Some(id),
        "request ids are unique"
    );
}

#[tokio::test]
async fn unknown_routes_are_404_unknown_operation() {
    let server = TestServer::start().await;
    for (method, path) in [
        ("POST", "/create-flows"),
        ("GET", "/list-flows"),
        ("POST", "/"),
        ("PUT", "/tags/x"),
    ] {
        let response = server.send(method, path, b"{}", Signing::Root).await;
        let message = response.assert_error(404, "UnknownOperationException");
        assert!(message.contains(path), "{message}");
    }
}

#[tokio::test]
async fn missing_and_malformed_authorization() {
    let server = TestServer::start().await;
    let missing = server
        .send("POST", "/list-flows", b"{}", Signing::None)
        .await;
    missing.assert_error(403, "MissingAuthenticationTokenException");

    let malformed = server
        .send(
            "POST",
            "/list-flows",
            b"{}",
            Signing::Raw("AWS4-HMAC-SHA256 Credential=oops".into()),
        )
        .await;
    malformed.assert_error(403, "IncompleteSignatureException");

    let basic = server
        .send(
            "POST",
            "/list-flows",
            b"{}",
            Signing::Raw("Basic dXNlcjpwYXNz".into()),
        )
        .await;
    basic.assert_error(403, "IncompleteSignatureException");

    // An unknown route is reported as such even without a signature (AppFlow's routes are
    // public); a known one needs the signature.
    let probe = server
        .send("POST", "/no-such-op", b"{}", Signing::None)
        .await;
    probe.assert_error(404, "UnknownOperationException");
}

#[tokio::test]
async fn unknown_access_key_is_unrecognized_client() {
    let server = TestServer::start().await;
    let response = server
        .send(
            "POST",
            "/list-flows",
            b"{}",
            Signing::Key("AKSLNOBODY0000000000".into(), SECRET_KEY.into()),
        )
        .await;
    let message = response.assert_error(403, "UnrecognizedClientException");
    assert_eq!(
        message,
        "The security token included in the request is invalid."
    );
}

#[tokio::test]
async fn wrong_secret_or_tampered_body_is_invalid_signature() {
    let server = TestServer::start().await;
    let wrong = server
        .send(
            "POST",
            "/list-flows",
            b"{}",
            Signing::Key(ACCESS_KEY.into(), "not-the-secret".into()),
        )
        .await;
    let message = wrong.assert_error(403, "InvalidSignatureException");
    assert!(
        message.starts_with("The request signature we calculated does not match"),
        "{message}"
    );

    let tampered = server
        .send(
            "POST",
            "/list-flows",
            b"{}",
            Signing::TamperBody(b"{ }".to_vec()),
        )
        .await;
    tampered.assert_error(403, "InvalidSignatureException");
}

#[tokio::test]
async fn clock_skew_beyond_15_minutes_is_rejected() {
    let server = TestServer::start().await;
    let old = server
        .send(
            "POST",
            "/list-flows",
            b"{}",
            Signing::At(Utc::now() - chrono::Duration::minutes(16)),
        )
        .await;
    let message = old.assert_error(403, "InvalidSignatureException");
    assert!(message.starts_with("Signature expired:"), "{message}");

    let future = server
        .send(
            "POST",
            "/list-flows",
            b"{}",
            Signing::At(Utc::now() + chrono::Duration::minutes(16)),
        )
        .await;
    let message = future.assert_error(403, "InvalidSignatureException");
    assert!(
        message.starts_with("Signature not yet current:"),
        "{message}"
    );

    let slightly_off = server
        .send(
            "POST",
            "/list-flows",
            b"{}",
            Signing::At(Utc::now() - chrono::Duration::minutes(10)),
        )
        .await;
    assert_eq!(slightly_off.status, 200, "{}", slightly_off.body);
}

#[tokio::test]
async fn malformed_json_and_wrong_types_are_validation_errors() {
    let server = TestServer::start().await;
    for body in [
        &b"{not json"[..],
        b"[]",
        b"\"text\"",
        b"{\"flowName\": 7}",
        b"\xff\xfe",
    ] {
        let response = server
            .send("POST", "/describe-flow", body, Signing::Root)
            .await;
        response.assert_error(400, "ValidationException");
    }
    let missing = server.call("/describe-flow", json!({})).await;
    let message = missing.assert_error(400, "ValidationException");
    assert!(message.contains("'flowName'"), "{message}");
    assert!(message.contains("Member must not be null"), "{message}");

    let bad_name = server
        .call("/describe-flow", json!({"flowName": "my flow"}))
        .await;
    let message = bad_name.assert_error(400, "ValidationException");
    assert!(message.contains("'my flow'"), "{message}");

    let bad_page = server.call("/list-flows", json!({"maxResults": 0})).await;
    let message = bad_page.assert_error(400, "ValidationException");
    assert!(message.contains("maxResults"), "{message}");
}

#[tokio::test]
async fn empty_post_body_counts_as_empty_object() {
    let server = TestServer::start().await;
    let response = server.send("POST", "/list-flows", b"", Signing::Root).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.body, json!({"flows": []}));
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let server = TestServer::start_with(None, Box::new(|c| c.body_limit = 1024)).await;
    let big = format!("{{\"flowName\": \"{}\"}}", "a".repeat(2000));
    let response = server
        .send("POST", "/describe-flow", big.as_bytes(), Signing::Root)
        .await;
    response.assert_error(413, "RequestEntityTooLargeException");
}

#[tokio::test]
async fn service_in_the_credential_scope_must_be_appflow() {
    let server = TestServer::start().await;
    let date = sluice_server::sigv4::format_amz_date(Utc::now());
    let head = format!(
        "POST /list-flows HTTP/1.1\r\nhost: {addr}\r\nx-amz-date: {date}\r\n\
         authorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{day}/us-east-1/s3/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature={sig}\r\ncontent-length: 2\r\nconnection: close\r\n\r\n",
        addr = server.addr,
        day = &date[..8],
        sig = "0".repeat(64),
    );
    let response = raw_exchange(server.addr, head.as_bytes(), b"{}").await;
    let message = response.assert_error(403, "IncompleteSignatureException");
    assert!(message.contains("appflow"), "{message}");
}

#[tokio::test]
async fn requests_are_audited_without_credentials() {
    let fake = sluice_fake_salesforce::FakeSalesforce::start(0)
        .await
        .unwrap();
    let server = TestServer::start_with_salesforce(&fake, None).await;
    let secret = fake.issue_access_token();
    let secret = secret.as_str();
    let refresh = fake.issue_refresh_token();
    let created = server
        .call(
            "/create-connector-profile",
            json!({
                "connectorProfileName": "sf",
                "connectorType": "Salesforce",
                "connectionMode": "Public",
                "connectorProfileConfig": {
                    "connectorProfileProperties": {"Salesforce": {"instanceUrl": fake.url()}},
                    "connectorProfileCredentials": {"Salesforce": {"accessToken": secret, "refreshToken": refresh}}
                }
            }),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    server
        .send("POST", "/list-flows", b"{}", Signing::None)
        .await;
    server
        .call("/describe-flow", json!({"flowName": "nope"}))
        .await;

    let store =
        sluice_metastore::SqliteStore::open(&server.data_dir.join("metadata.sqlite")).unwrap();
    use sluice_metastore::MetadataStore as _;
    let entries = store.list_audit(None, 100).await.unwrap();
    let text = format!("{entries:?}");
    assert!(
        !text.contains(secret) && !text.contains(&refresh),
        "a credential reached the audit log: {text}"
    );
    let create = entries
        .iter()
        .map(|(_, e)| e)
        .find(|e| e.operation == "CreateConnectorProfile")
        .unwrap();
    assert_eq!(create.status, 200);
    assert_eq!(create.access_key_id.as_deref(), Some(ACCESS_KEY));
    assert_eq!(create.source_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(create.user_agent.as_deref(), Some("sluice-tests/1.0"));
    assert_eq!(create.resource.as_deref(), Some("sf"));
    assert_eq!(
        create.request_parameters["connectorProfileConfig"]["connectorProfileProperties"]["Salesforce"]
            ["instanceUrl"],
        fake.url()
    );
    let unsigned = entries
        .iter()
        .map(|(_, e)| e)
        .find(|e| e.status == 403)
        .unwrap();
    assert_eq!(
        unsigned.error_code.as_deref(),
        Some("MissingAuthenticationTokenException")
    );
    let missing = entries
        .iter()
        .map(|(_, e)| e)
        .find(|e| e.operation == "DescribeFlow")
        .unwrap();
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.error_code.as_deref(),
        Some("ResourceNotFoundException")
    );
    assert!(!missing.request_id.is_empty());
}

#[tokio::test]
async fn api_keys_from_the_metadata_store_sign_requests() {
    use sluice_metastore::MetadataStore as _;
    let server = TestServer::start().await;
    let secrets =
        sluice_metastore::secrets::SecretBox::load_or_create(&server.data_dir.join("master.key"))
            .unwrap();
    let store =
        sluice_metastore::SqliteStore::open(&server.data_dir.join("metadata.sqlite")).unwrap();
    for (id, disabled) in [
        ("AKSLUSERKEY000000001", false),
        ("AKSLUSERKEY000000002", true),
    ] {
        store
            .put_api_key(&sluice_metastore::ApiKeyRecord {
                access_key_id: id.into(),
                sealed_secret: secrets.seal(b"user-secret", id.as_bytes()),
                description: "test key".into(),
                created_at: Utc::now(),
                disabled,
            })
            .await
            .unwrap();
    }
    let body = serde_json::to_vec(&common::s3_flow("by-user", "src", "dst")).unwrap();
    let created = server
        .send(
            "POST",
            "/create-flow",
            &body,
            Signing::Key("AKSLUSERKEY000000001".into(), "user-secret".into()),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let described = server
        .ok("/describe-flow", json!({"flowName": "by-user"}))
        .await;
    assert_eq!(
        described["createdBy"],
        format!("arn:aws:iam::{}:user/AKSLUSERKEY000000001", common::ACCOUNT)
    );

    let wrong = server
        .send(
            "POST",
            "/list-flows",
            b"{}",
            Signing::Key("AKSLUSERKEY000000001".into(), "other".into()),
        )
        .await;
    wrong.assert_error(403, "InvalidSignatureException");
    let disabled = server
        .send(
            "POST",
            "/list-flows",
            b"{}",
            Signing::Key("AKSLUSERKEY000000002".into(), "user-secret".into()),
        )
        .await;
    disabled.assert_error(403, "UnrecognizedClientException");
}
