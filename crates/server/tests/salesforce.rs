//! Salesforce through the API against the fake Salesforce server: connector profiles for every
//! OAuth grant (the authorization code exchanged at creation and never stored, JWT bearer
//! assertions signed with the connected app's key, client credentials), renewed tokens written
//! back to the profile and used after a restart without another renewal, one renewal for
//! concurrent runs, a revoked refresh token failing the run with a request to re-authorise,
//! and `schemaVersion` following fields added in Salesforce.

mod common;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{SALESFORCE_CLIENT_ID, TestServer, salesforce_settings};
use serde_json::{Map, Value, json};
use sluice_fake_salesforce::{FakeSalesforce, FieldDef};

const REDIRECT_URI: &str = "https://console.example/oauth/callback";
const JWT_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

fn object(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

fn seed_accounts(fake: &FakeSalesforce, count: usize) -> Vec<String> {
    fake.insert(
        "Account",
        (0..count)
            .map(|i| object(json!({"Name": format!("Account {i}"), "NumberOfEmployees": i})))
            .collect(),
    )
}

fn grants(fake: &FakeSalesforce, grant: &str) -> u64 {
    fake.stats().grants.get(grant).copied().unwrap_or(0)
}

async fn token_profile(server: &TestServer, fake: &FakeSalesforce, name: &str) -> (String, String) {
    let access = fake.issue_access_token();
    let refresh = fake.issue_refresh_token();
    server
        .ok(
            "/create-connector-profile",
            json!({"connectorProfileName": name, "connectorType": "Salesforce",
                "connectionMode": "Public", "connectorProfileConfig": {
                    "connectorProfileProperties": {"Salesforce": {"instanceUrl": fake.url()}},
                    "connectorProfileCredentials": {"Salesforce": {
                        "accessToken": access, "refreshToken": refresh}}}}),
        )
        .await;
    (access, refresh)
}

/// Salesforce `Account` -> S3 CSV, on demand; `tasks` decide the fields.
fn account_flow(name: &str, profile: &str, source: Value, tasks: Value) -> Value {
    let mut properties = json!({"object": "Account"});
    if let (Some(target), Some(extra)) = (properties.as_object_mut(), source.as_object()) {
        target.extend(extra.clone());
    }
    json!({
        "flowName": name,
        "triggerConfig": {"triggerType": "OnDemand"},
        "sourceFlowConfig": {"connectorType": "Salesforce", "connectorProfileName": profile,
            "sourceConnectorProperties": {"Salesforce": properties}},
        "destinationFlowConfigList": [{"connectorType": "S3",
            "destinationConnectorProperties": {"S3": {"bucketName": "dst", "bucketPrefix": "out",
                "s3OutputFormatConfig": {"fileType": "CSV",
                    "prefixConfig": {"pathPrefixHierarchy": ["SCHEMA_VERSION", "EXECUTION_ID"]}}}}}],
        "tasks": tasks,
    })
}

fn projection(fields: &[&str]) -> Value {
    let mut tasks = vec![json!({"sourceFields": fields,
        "connectorOperator": {"Salesforce": "PROJECTION"}, "taskType": "Filter"})];
    for field in fields {
        tasks.push(
            json!({"sourceFields": [field], "connectorOperator": {"Salesforce": "NO_OP"},
            "destinationField": field, "taskType": "Map"}),
        );
    }
    Value::Array(tasks)
}

fn map_all() -> Value {
    json!([{"sourceFields": [], "connectorOperator": {"Salesforce": "NO_OP"},
        "taskType": "Map_all", "taskProperties": {}}])
}

async fn run(server: &TestServer, flow: &str) -> Value {
    let started = server.ok("/start-flow", json!({"flowName": flow})).await;
    let execution_id = started["executionId"].as_str().unwrap().to_string();
    server.wait_for_run(flow, &execution_id).await
}

fn message(record: &Value) -> String {
    record["executionResult"]["errorInfo"]["executionMessage"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn run_ok(server: &TestServer, flow: &str) -> Value {
    let record = run(server, flow).await;
    assert_eq!(
        record["executionStatus"],
        "Successful",
        "{}",
        message(&record)
    );
    record
}

/// The records a run wrote (CSV rows as objects; an empty cell is `null`), and the folder that
/// holds them relative to the flow's.
fn output(server: &TestServer, flow: &str, execution_id: &str) -> (String, Vec<Value>) {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, files);
            } else {
                files.push(path);
            }
        }
    }
    let root = server.buckets().join("dst").join("out").join(flow);
    let mut files = Vec::new();
    walk(&root, &mut files);
    let mine: Vec<PathBuf> = files
        .into_iter()
        .filter(|path| path.components().any(|c| c.as_os_str() == execution_id))
        .collect();
    assert!(!mine.is_empty(), "run {execution_id} wrote nothing");
    let folder = mine[0]
        .parent()
        .and_then(|p| p.strip_prefix(&root).ok())
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let records = mine
        .iter()
        .flat_map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            // The values written here need no quoting; a quote would mean a parser is needed.
            assert!(!text.contains('"'), "{text}");
            let mut lines = text.lines().filter(|line| !line.trim().is_empty());
            let header: Vec<String> = lines
                .next()
                .map(|h| h.split(',').map(str::to_owned).collect())
                .unwrap_or_default();
            lines
                .map(|line| {
                    let row: Map<String, Value> = header
                        .iter()
                        .zip(line.split(','))
                        .map(|(name, cell)| {
                            let value = if cell.is_empty() {
                                Value::Null
                            } else {
                                Value::String(cell.to_owned())
                            };
                            (name.clone(), value)
                        })
                        .collect();
                    Value::Object(row)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    (folder, records)
}

/// The decrypted credentials stored for `profile`.
async fn stored_credentials(server: &TestServer, profile: &str) -> Value {
    use sluice_metastore::MetadataStore as _;
    let store =
        sluice_metastore::SqliteStore::open(&server.data_dir.join("metadata.sqlite")).unwrap();
    let record = store.get_profile(profile).await.unwrap().unwrap();
    let secrets =
        sluice_metastore::secrets::SecretBox::load_or_create(&server.data_dir.join("master.key"))
            .unwrap();
    let plaintext = secrets
        .open(&record.sealed_credentials, record.arn.as_bytes())
        .unwrap();
    serde_json::from_slice(&plaintext).unwrap()
}

/// Every file of the data directory, as lossy text.
fn data_dir_text(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            text.push_str(&data_dir_text(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    text
}

#[tokio::test]
async fn authorization_codes_are_exchanged_at_creation_and_never_stored() {
    let fake = FakeSalesforce::start(0).await.unwrap();
    let server = TestServer::start_with_salesforce(&fake, None).await;
    seed_accounts(&fake, 3);
    let code = fake.issue_auth_code(SALESFORCE_CLIENT_ID, REDIRECT_URI, None);
    let request = |name: &str, code: &str| {
        json!({"connectorProfileName": name, "connectorType": "Salesforce",
            "connectionMode": "Public", "connectorProfileConfig": {
                "connectorProfileProperties": {"Salesforce": {"isSandboxEnvironment": false}},
                "connectorProfileCredentials": {"Salesforce": {
                    "oAuth2GrantType": "AUTHORIZATION_CODE",
                    "oAuthRequest": {"authCode": code, "redirectUri": REDIRECT_URI}}}}})
    };
    server
        .ok("/create-connector-profile", request("sf-code", &code))
        .await;
    assert_eq!(grants(&fake, "authorization_code"), 1);

    // The instance URL came with the tokens; no credential is ever returned.
    let described = server
        .ok(
            "/describe-connector-profiles",
            json!({"connectorProfileNames": ["sf-code"]}),
        )
        .await;
    let profile = &described["connectorProfileDetails"][0];
    assert_eq!(
        profile["connectorProfileProperties"]["Salesforce"]["instanceUrl"],
        fake.url()
    );
    assert!(!described.to_string().contains(&code));
    let stored = stored_credentials(&server, "sf-code").await;
    let member = &stored["Salesforce"];
    assert!(
        member["accessToken"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert!(
        member["refreshToken"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert!(member.get("oAuthRequest").is_none(), "{member:?}");
    assert!(!stored.to_string().contains(&code));
    // Sealed at rest: no token appears in any file of the data directory.
    let on_disk = data_dir_text(&server.data_dir);
    for secret in [
        member["accessToken"].as_str().unwrap(),
        member["refreshToken"].as_str().unwrap(),
        code.as_str(),
    ] {
        assert!(!on_disk.contains(secret), "a credential is stored in clear");
    }

    // The stored tokens serve runs without another exchange.
    server
        .ok(
            "/create-flow",
            account_flow(
                "code-flow",
                "sf-code",
                json!({}),
                projection(&["Id", "Name"]),
            ),
        )
        .await;
    let record = run_ok(&server, "code-flow").await;
    let (_, records) = output(
        &server,
        "code-flow",
        record["executionId"].as_str().unwrap(),
    );
    assert_eq!(records.len(), 3);
    assert_eq!(grants(&fake, "authorization_code"), 1);
    assert_eq!(grants(&fake, "refresh_token"), 0);

    // A code used twice is refused by Salesforce: ConnectorAuthenticationException with
    // Salesforce's reason, without the code, and no profile is created.
    let response = server
        .call("/create-connector-profile", request("sf-reused", &code))
        .await;
    let text = response
        .assert_error(401, "ConnectorAuthenticationException")
        .to_string();
    assert!(text.contains("invalid_grant"), "{text}");
    assert!(text.contains("invalid authorization code"), "{text}");
    assert!(!text.contains(&code), "{text}");
    let listed = server
        .ok(
            "/describe-connector-profiles",
            json!({"connectorProfileNames": ["sf-reused"]}),
        )
        .await;
    assert_eq!(listed["connectorProfileDetails"], json!([]));

    // A code for another redirect URI is refused too; a code without its redirect URI is a
    // validation error naming the member.
    let other = fake.issue_auth_code(SALESFORCE_CLIENT_ID, "https://elsewhere.example", None);
    server
        .call("/create-connector-profile", request("sf-other", &other))
        .await
        .assert_error(401, "ConnectorAuthenticationException");
    let mut missing = request("sf-missing", "some-code");
    missing["connectorProfileConfig"]["connectorProfileCredentials"]["Salesforce"]["oAuthRequest"]
        .as_object_mut()
        .unwrap()
        .remove("redirectUri");
    let text = server
        .call("/create-connector-profile", missing)
        .await
        .assert_error(400, "ValidationException")
        .to_string();
    assert!(text.contains("redirectUri"), "{text}");

    // UpdateConnectorProfile exchanges a new code the same way (re-authorisation).
    let again = fake.issue_auth_code(SALESFORCE_CLIENT_ID, REDIRECT_URI, None);
    let mut update = request("sf-code", &again);
    update.as_object_mut().unwrap().remove("connectorType");
    server.ok("/update-connector-profile", update).await;
    assert_eq!(grants(&fake, "authorization_code"), 2);
    let updated = stored_credentials(&server, "sf-code").await;
    assert_ne!(updated["Salesforce"]["accessToken"], member["accessToken"]);
    assert!(!updated.to_string().contains(&again));
}

#[tokio::test]
async fn renewed_tokens_are_written_back_and_survive_a_restart() {
    let fake = FakeSalesforce::start(0).await.unwrap();
    fake.set_page_size(2);
    seed_accounts(&fake, 7);
    let server = TestServer::start_with_salesforce(&fake, None).await;
    let (access, refresh) = token_profile(&server, &fake, "sf").await;
    server
        .ok(
            "/create-flow",
            account_flow("persist", "sf", json!({}), projection(&["Id", "Name"])),
        )
        .await;

    fake.expire_access_tokens();
    let record = run_ok(&server, "persist").await;
    assert_eq!(grants(&fake, "refresh_token"), 1);
    let refused = fake.stats().unauthorized;
    assert!(refused >= 1);
    let (_, records) = output(&server, "persist", record["executionId"].as_str().unwrap());
    assert_eq!(records.len(), 7);
    let stored = stored_credentials(&server, "sf").await;
    let renewed = stored["Salesforce"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(renewed, access);
    // Salesforce does not rotate refresh tokens: the one given is kept.
    assert_eq!(stored["Salesforce"]["refreshToken"], refresh.as_str());

    // A restart starts from the stored token: no renewal, no refused call.
    let temp = server.stop().await;
    let dir = temp.as_ref().map(|t| t.path().to_path_buf());
    let server = TestServer::start_with_salesforce(&fake, dir).await;
    run_ok(&server, "persist").await;
    assert_eq!(grants(&fake, "refresh_token"), 1);
    assert_eq!(fake.stats().unauthorized, refused);
    drop(temp);
}

#[tokio::test]
async fn concurrent_runs_of_one_profile_renew_once() {
    let fake = FakeSalesforce::start(0).await.unwrap();
    fake.set_page_size(3);
    seed_accounts(&fake, 12);
    let server = TestServer::start_with_salesforce(&fake, None).await;
    token_profile(&server, &fake, "shared").await;
    let flows = ["para-1", "para-2", "para-3"];
    for flow in flows {
        server
            .ok(
                "/create-flow",
                account_flow(flow, "shared", json!({}), projection(&["Id", "Name"])),
            )
            .await;
    }
    fake.expire_access_tokens();
    let mut started = Vec::new();
    for flow in flows {
        let response = server.ok("/start-flow", json!({"flowName": flow})).await;
        started.push((flow, response["executionId"].as_str().unwrap().to_string()));
    }
    for (flow, execution_id) in &started {
        let record = server.wait_for_run(flow, execution_id).await;
        assert_eq!(
            record["executionStatus"],
            "Successful",
            "{}",
            message(&record)
        );
        let (_, records) = output(&server, flow, execution_id);
        assert_eq!(records.len(), 12);
    }
    assert!(
        fake.stats().unauthorized >= 1,
        "the runs met the expired token"
    );
    assert_eq!(grants(&fake, "refresh_token"), 1);
}

#[tokio::test]
async fn a_revoked_refresh_token_fails_the_run_with_a_request_to_reauthorise() {
    let fake = FakeSalesforce::start(0).await.unwrap();
    seed_accounts(&fake, 2);
    let server = TestServer::start_with_salesforce(&fake, None).await;
    let (_, refresh) = token_profile(&server, &fake, "sf-revoked").await;
    server
        .ok(
            "/create-flow",
            account_flow("revoked", "sf-revoked", json!({}), projection(&["Id"])),
        )
        .await;
    fake.revoke_refresh_token(&refresh);
    fake.expire_access_tokens();
    let record = run(&server, "revoked").await;
    assert_eq!(record["executionStatus"], "Error");
    let text = message(&record);
    assert!(
        text.contains("re-authorise the connector profile sf-revoked"),
        "{text}"
    );
    assert!(!text.contains(&refresh), "{text}");
    // Revoked is revoked: the credentials check of UpdateConnectorProfile says so as well.
    let response = server
        .call(
            "/update-connector-profile",
            json!({"connectorProfileName": "sf-revoked", "connectionMode": "Public",
                "connectorProfileConfig": {"connectorProfileProperties": {
                    "Salesforce": {"instanceUrl": fake.url()}}}}),
        )
        .await;
    let text = response
        .assert_error(401, "ConnectorAuthenticationException")
        .to_string();
    assert!(text.contains("re-authorise"), "{text}");
}

#[tokio::test]
async fn client_credentials_profiles_need_no_user_tokens() {
    let fake = FakeSalesforce::start(0).await.unwrap();
    seed_accounts(&fake, 1);
    let server = TestServer::start_with_salesforce(&fake, None).await;
    server
        .ok(
            "/create-connector-profile",
            json!({"connectorProfileName": "sf-cc", "connectorType": "Salesforce",
                "connectionMode": "Public", "connectorProfileConfig": {
                    "connectorProfileProperties": {"Salesforce": {}},
                    "connectorProfileCredentials": {"Salesforce": {
                        "oAuth2GrantType": "CLIENT_CREDENTIALS"}}}}),
        )
        .await;
    assert_eq!(grants(&fake, "client_credentials"), 1);
    server
        .ok(
            "/create-flow",
            account_flow("cc", "sf-cc", json!({}), projection(&["Id"])),
        )
        .await;
    fake.expire_access_tokens();
    run_ok(&server, "cc").await;
    // Renewed by repeating the grant: there is no refresh token.
    assert_eq!(grants(&fake, "client_credentials"), 2);
    assert_eq!(grants(&fake, "refresh_token"), 0);
}

/// An RSA key in a PEM file, as an administrator would install it.
fn write_key(dir: &Path) -> PathBuf {
    use aws_lc_rs::encoding::AsDer as _;
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der = pair.as_der().unwrap();
    let body = STANDARD.encode(der.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    let path = dir.join("connected-app.pem");
    std::fs::write(&path, pem).unwrap();
    path
}

/// An unsigned JWT (`<header>.<claims>.`) naming the user, within AppFlow's `jwtToken` pattern
/// (whose first two parts exclude `-`).
fn claims_template(subject: &str) -> String {
    let mut padding = String::new();
    loop {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none"{padding}}}"#));
        let claims = URL_SAFE_NO_PAD.encode(json!({"sub": subject}).to_string() + &padding);
        if !header.contains('-') && !claims.contains('-') {
            return format!("{header}.{claims}.");
        }
        padding.push(' ');
    }
}

#[tokio::test]
async fn jwt_bearer_profiles_are_signed_with_the_connected_app_key() {
    let fake = FakeSalesforce::start(0).await.unwrap();
    seed_accounts(&fake, 2);
    let keys = tempfile::tempdir().unwrap();
    let key_file = write_key(keys.path());
    fake.register_client(SALESFORCE_CLIENT_ID, common::SALESFORCE_CLIENT_SECRET);
    let url = fake.url();
    let server = TestServer::start_with(
        None,
        Box::new(move |config| {
            config.connector_settings.salesforce = salesforce_settings(&url);
            config.connector_settings.salesforce.jwt_key_file = Some(key_file);
        }),
    )
    .await;
    let profile = |name: &str, jwt: &str| {
        json!({"connectorProfileName": name, "connectorType": "Salesforce",
            "connectionMode": "Public", "connectorProfileConfig": {
                "connectorProfileProperties": {"Salesforce": {}},
                "connectorProfileCredentials": {"Salesforce": {
                    "oAuth2GrantType": "JWT_BEARER", "jwtToken": jwt}}}})
    };
    let template = claims_template("integration.user@example.com");
    server
        .ok("/create-connector-profile", profile("sf-jwt", &template))
        .await;
    assert_eq!(grants(&fake, JWT_GRANT), 1);
    server
        .ok(
            "/create-flow",
            account_flow("jwt", "sf-jwt", json!({}), projection(&["Id", "Name"])),
        )
        .await;
    fake.expire_access_tokens();
    run_ok(&server, "jwt").await;
    // A fresh assertion renewed the token; the template itself is what stays stored.
    assert_eq!(grants(&fake, JWT_GRANT), 2);
    let stored = stored_credentials(&server, "sf-jwt").await;
    assert_eq!(stored["Salesforce"]["jwtToken"], template.as_str());

    // A claims template without a subject is refused at creation, naming what is missing.
    let no_subject = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(r#"{"iss":"x"}"#)
    );
    let text = server
        .call(
            "/create-connector-profile",
            profile("sf-nosub", &no_subject),
        )
        .await
        .assert_error(400, "ValidationException")
        .to_string();
    assert!(text.contains("'sub'"), "{text}");

    // Without a configured key, Sluice cannot sign and says which setting is missing.
    let plain = TestServer::start_with_salesforce(&fake, None).await;
    let text = plain
        .call("/create-connector-profile", profile("sf-nokey", &template))
        .await
        .assert_error(400, "ValidationException")
        .to_string();
    assert!(text.contains("SLUICE_SALESFORCE_JWT_KEY_FILE"), "{text}");
}

async fn version(server: &TestServer, flow: &str) -> i64 {
    server.ok("/describe-flow", json!({"flowName": flow})).await["schemaVersion"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn new_salesforce_fields_raise_the_schema_version_of_dynamic_flows() {
    let fake = FakeSalesforce::start(0).await.unwrap();
    let ids = seed_accounts(&fake, 3);
    let server = TestServer::start_with_salesforce(&fake, None).await;
    token_profile(&server, &fake, "sf").await;
    let dynamic = json!({"enableDynamicFieldUpdate": true});
    server
        .ok(
            "/create-flow",
            account_flow("dynamic", "sf", dynamic.clone(), map_all()),
        )
        .await;
    // The same flag with a projection: the fields read are fixed, so nothing changes.
    server
        .ok(
            "/create-flow",
            account_flow("projected", "sf", dynamic, projection(&["Id", "Name"])),
        )
        .await;
    let first = run_ok(&server, "dynamic").await;
    let (folder, records) = output(&server, "dynamic", first["executionId"].as_str().unwrap());
    assert!(folder.starts_with("schemaVersion_1"), "{folder}");
    assert_eq!(records.len(), 3);
    assert!(records[0].get("Région__c").is_none());
    assert_eq!(version(&server, "dynamic").await, 1);
    run_ok(&server, "projected").await;

    // A field created in Salesforce after the flow: the next run writes it, in a new version.
    fake.add_field("Account", FieldDef::new("Région__c", "string"));
    assert!(fake.update(
        "Account",
        &ids[0],
        object(json!({"Région__c": "Île-de-France"}))
    ));
    let second = run_ok(&server, "dynamic").await;
    assert_eq!(version(&server, "dynamic").await, 2);
    let (folder, records) = output(&server, "dynamic", second["executionId"].as_str().unwrap());
    assert!(folder.starts_with("schemaVersion_2"), "{folder}");
    let values: Vec<&Value> = records.iter().map(|r| &r["Région__c"]).collect();
    assert!(values.contains(&&json!("Île-de-France")), "{records:?}");

    // Nothing new: the version stays.
    let third = run_ok(&server, "dynamic").await;
    assert_eq!(version(&server, "dynamic").await, 2);
    let (folder, _) = output(&server, "dynamic", third["executionId"].as_str().unwrap());
    assert!(folder.starts_with("schemaVersion_2"), "{folder}");

    run_ok(&server, "projected").await;
    assert_eq!(version(&server, "projected").await, 1);
}

#[tokio::test]
async fn salesforce_is_listed_and_its_entities_are_described_through_a_profile() {
    let fake = FakeSalesforce::start(0).await.unwrap();
    let server = TestServer::start_with_salesforce(&fake, None).await;
    token_profile(&server, &fake, "sf").await;
    let listed = server
        .ok(
            "/list-connector-entities",
            json!({"connectorProfileName": "sf"}),
        )
        .await;
    let names: Vec<&str> = listed["connectorEntityMap"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|group| group.as_array().unwrap())
        .filter_map(|entity| entity["name"].as_str())
        .collect();
    assert!(names.contains(&"Account"), "{listed}");
    // Salesforce reads metadata through a profile, never anonymously.
    let text = server
        .call(
            "/list-connector-entities",
            json!({"connectorType": "Salesforce"}),
        )
        .await
        .assert_error(400, "ValidationException")
        .to_string();
    assert!(text.contains("connector profile"), "{text}");
    let described = server
        .ok(
            "/describe-connector-entity",
            json!({"connectorProfileName": "sf", "connectorEntityName": "Account"}),
        )
        .await;
    let fields = described["connectorEntityFields"].as_array().unwrap();
    let modified = fields
        .iter()
        .find(|f| f["identifier"] == "LastModifiedDate")
        .unwrap();
    assert_eq!(
        modified["sourceProperties"]["isTimestampFieldForIncrementalQueries"],
        true
    );
}
