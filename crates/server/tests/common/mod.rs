//! Test harness: an in-process server on `127.0.0.1:0` with a temporary data directory, and
//! a minimal HTTP/1.1 client that signs requests with the server's own SigV4 signer.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use serde_json::Value;
use sluice_connector_api::ConnectorRegistry;
use sluice_connectors::SalesforceSettings;
use sluice_fake_salesforce::FakeSalesforce;
use sluice_server::sigv4::{self, Credentials, RequestParts};
use sluice_server::{RootCredentials, Server, ServerConfig, ServerError};
use sluice_types::Sensitive;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ACCESS_KEY: &str = "AKSLTESTTESTTEST0001";
pub const SECRET_KEY: &str = "test/secret+key/0123456789abcdefghijklmno";
pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";
pub const SALESFORCE_CLIENT_ID: &str = "sluice-connected-app";
pub const SALESFORCE_CLIENT_SECRET: &str = "connected-app-secret";

/// Salesforce settings pointing at a fake's login host, with fast retries.
pub fn salesforce_settings(login_url: &str) -> SalesforceSettings {
    SalesforceSettings {
        login_url: login_url.to_string(),
        sandbox_login_url: login_url.to_string(),
        client_id: Some(SALESFORCE_CLIENT_ID.into()),
        client_secret: Some(Sensitive::new(SALESFORCE_CLIENT_SECRET.into())),
        retry: sluice_connector_http_util::RetryConfig::fast(),
        ..SalesforceSettings::default()
    }
}

/// A running server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), ServerError>>>,
}

/// What a test may change in the configuration.
pub type Tweak = Box<dyn FnOnce(&mut ServerConfig) + Send>;

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(None, Box::new(|_| {})).await
    }

    pub async fn start_with_registry(registry: Arc<dyn ConnectorRegistry>) -> Self {
        Self::start_with(None, Box::new(move |c| c.connectors = Some(registry))).await
    }

    /// A server whose Salesforce connector logs in at `fake` as connected app
    /// [`SALESFORCE_CLIENT_ID`], in `dir` (a fresh temporary directory when `None`).
    pub async fn start_with_salesforce(fake: &FakeSalesforce, dir: Option<PathBuf>) -> Self {
        fake.register_client(SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET);
        let url = fake.url();
        Self::start_with(
            dir,
            Box::new(move |config| {
                config.connector_settings.salesforce = salesforce_settings(&url)
            }),
        )
        .await
    }

    /// Starts a server in `dir` (a fresh temporary directory when `None`).
    pub async fn start_with(dir: Option<PathBuf>, tweak: Tweak) -> Self {
        let (temp, data_dir) = match dir {
            Some(dir) => (None, dir),
            None => {
                let temp = tempfile::tempdir().expect("temp dir");
                let path = temp.path().to_path_buf();
                (Some(temp), path)
            }
        };
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), &data_dir);
        config.storage = sluice_storage::StorageConfig::local(data_dir.join("buckets"));
        config.account_id = ACCOUNT.into();
        config.region = REGION.into();
        config.root_credentials = Some(RootCredentials {
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: Sensitive::new(SECRET_KEY.into()),
        });
        config.progress_interval = Duration::from_millis(100);
        config.shutdown_grace = Duration::from_secs(10);
        tweak(&mut config);
        let server = Server::bind(config).await.expect("server binds");
        let addr = server.local_addr();
        let (tx, rx) = oneshot::channel();
        let handle = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            data_dir,
            _temp: temp,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    /// Stops the server and waits for it; returns the temporary directory so a test can
    /// restart a server on the same data.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle
                .await
                .expect("server task")
                .expect("server stops cleanly");
        }
        self._temp.take()
    }

    /// Stops the server the way a crash would: the server task is aborted without a graceful
    /// shutdown, so nothing is recorded about the runs in progress. Tasks the server spawned
    /// are left behind, as a dying process would leave its files; give them nothing to do.
    pub fn crash(mut self) -> Option<tempfile::TempDir> {
        // Dropping the sender would start a graceful shutdown.
        std::mem::forget(self.shutdown.take());
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
        self._temp.take()
    }

    pub fn buckets(&self) -> PathBuf {
        self.data_dir.join("buckets")
    }

    /// A signed `POST /<path>` with a JSON body.
    pub async fn call(&self, path: &str, body: Value) -> Response {
        let bytes = serde_json::to_vec(&body).unwrap();
        self.send("POST", path, &bytes, Signing::Root).await
    }

    /// Calls an operation and asserts it succeeded.
    pub async fn ok(&self, path: &str, body: Value) -> Value {
        let response = self.call(path, body).await;
        assert_eq!(response.status, 200, "{path} failed: {}", response.body);
        response.body
    }

    /// Sends a request, signed as `signing` says.
    pub async fn send(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        signing: Signing,
    ) -> Response {
        let host = self.addr.to_string();
        let (raw_path, raw_query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        let mut headers = HeaderMap::new();
        headers.insert("host", host.parse().unwrap());
        if method == "POST" {
            headers.insert("content-type", "application/json".parse().unwrap());
        }
        let now = match &signing {
            Signing::At(time) => *time,
            _ => chrono::Utc::now(),
        };
        headers.insert("x-amz-date", sigv4::format_amz_date(now).parse().unwrap());
        let credentials = match &signing {
            Signing::Key(access, secret) => Credentials {
                access_key_id: access.clone(),
                secret_access_key: Sensitive::new(secret.clone()),
            },
            _ => Credentials {
                access_key_id: ACCESS_KEY.into(),
                secret_access_key: Sensitive::new(SECRET_KEY.into()),
            },
        };
        let parts = RequestParts {
            method,
            raw_path,
            raw_query,
            headers: &headers,
            body,
        };
        let authorization = sigv4::sign(&parts, &credentials, REGION, "appflow").unwrap();
        let mut extra = Vec::new();
        match &signing {
            Signing::None => {}
            Signing::Raw(value) => extra.push(("authorization".to_string(), value.clone())),
            _ => extra.push(("authorization".to_string(), authorization)),
        }
        let sent_body = match &signing {
            Signing::TamperBody(other) => other.clone(),
            _ => body.to_vec(),
        };
        let mut request = format!("{method} {path_and_query} HTTP/1.1\r\n");
        for (name, value) in headers.iter() {
            request.push_str(&format!("{}: {}\r\n", name, value.to_str().unwrap()));
        }
        for (name, value) in extra {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("user-agent: sluice-tests/1.0\r\n");
        request.push_str(&format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            sent_body.len()
        ));
        raw_exchange(self.addr, request.as_bytes(), &sent_body).await
    }

    /// A signed GET.
    pub async fn get(&self, path: &str) -> Response {
        self.send("GET", path, b"", Signing::Root).await
    }

    /// A signed DELETE.
    pub async fn delete(&self, path: &str) -> Response {
        self.send("DELETE", path, b"", Signing::Root).await
    }

    /// Polls `DescribeFlowExecutionRecords` until the run leaves `InProgress`/`CancelStarted`.
    pub async fn wait_for_run(&self, flow: &str, execution_id: &str) -> Value {
        for _ in 0..300 {
            let records = self
                .ok(
                    "/describe-flow-execution-records",
                    serde_json::json!({"flowName": flow}),
                )
                .await;
            let record = records["flowExecutions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["executionId"] == execution_id)
                .cloned()
                .expect("the run is listed");
            let status = record["executionStatus"].as_str().unwrap().to_string();
            if status != "InProgress" && status != "CancelStarted" {
                return record;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("run {execution_id} did not finish");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// How to sign a request.
pub enum Signing {
    /// With the root key, now.
    Root,
    /// With the root key, at another time.
    At(chrono::DateTime<chrono::Utc>),
    /// With another key pair.
    Key(String, String),
    /// Not at all.
    None,
    /// With this literal Authorization header.
    Raw(String),
    /// Correctly, but then send another body.
    TamperBody(Vec<u8>),
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub raw_body: Vec<u8>,
    pub body: Value,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts an AppFlow error response: status, both code carriers, request id.
    pub fn assert_error(&self, status: u16, code: &str) -> &str {
        assert_eq!(
            self.status, status,
            "expected {code}, got {}: {}",
            self.status, self.body
        );
        assert_eq!(self.header("x-amzn-ErrorType"), Some(code), "{}", self.body);
        assert_eq!(self.body["__type"], code, "{}", self.body);
        assert!(
            self.header("x-amzn-RequestId")
                .is_some_and(|id| id.len() == 36)
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
        self.body["message"].as_str().expect("message")
    }
}

/// Writes `head` + `body` to a fresh connection and reads the whole response.
pub async fn raw_exchange(addr: SocketAddr, head: &[u8], body: &[u8]) -> Response {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.unwrap();
    parse_response(&bytes)
}

fn parse_response(bytes: &[u8]) -> Response {
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = std::str::from_utf8(&bytes[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut raw_body = bytes[split + 4..].to_vec();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        raw_body = dechunk(&raw_body);
    }
    let body = if raw_body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&raw_body).unwrap_or(Value::Null)
    };
    Response {
        status,
        headers,
        raw_body,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// A minimal on-demand S3 -> S3 flow definition.
pub fn s3_flow(name: &str, source_bucket: &str, destination_bucket: &str) -> Value {
    serde_json::json!({
        "flowName": name,
        "triggerConfig": {"triggerType": "OnDemand"},
        "sourceFlowConfig": {
            "connectorType": "S3",
            "sourceConnectorProperties": {"S3": {
                "bucketName": source_bucket,
                "bucketPrefix": "in",
                "s3InputFormatConfig": {"s3InputFileType": "CSV"}
            }}
        },
        "destinationFlowConfigList": [{
            "connectorType": "S3",
            "destinationConnectorProperties": {"S3": {
                "bucketName": destination_bucket,
                "bucketPrefix": "out",
                "s3OutputFormatConfig": {"fileType": "JSON", "aggregationConfig": {"aggregationType": "SingleFile"}}
            }}
        }],
        "tasks": [
            {"sourceFields": ["id", "name"], "connectorOperator": {"S3": "PROJECTION"}, "taskType": "Filter"},
            {"sourceFields": ["id"], "connectorOperator": {"S3": "NO_OP"}, "destinationField": "id",
             "taskType": "Map", "taskProperties": {"SOURCE_DATA_TYPE": "string", "DESTINATION_DATA_TYPE": "string"}},
            {"sourceFields": ["name"], "connectorOperator": {"S3": "NO_OP"}, "destinationField": "name",
             "taskType": "Map", "taskProperties": {"SOURCE_DATA_TYPE": "string", "DESTINATION_DATA_TYPE": "string"}}
        ]
    })
}

/// The percent-encoded `/tags/{arn}` path of a flow, as the SDKs send it.
pub fn tags_path(flow: &str) -> String {
    let arn = format!("arn:aws:appflow:{REGION}:{ACCOUNT}:flow/{flow}");
    let encoded: String = arn
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("/tags/{encoded}")
}

/// Every file under `dir`, recursively, relative to it.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}
