//! Helpers for tests that run against a real S3-compatible server (moto, MinIO).
//!
//! Enabled by the `testing` feature; never used by production code.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{Storage, StorageConfig};

/// Environment variable naming the S3 endpoint integration tests run against.
pub const ENV_TEST_ENDPOINT: &str = "SLUICE_TEST_S3_ENDPOINT";

/// The test endpoint, when integration tests against a real server are enabled.
pub fn test_endpoint() -> Option<String> {
    std::env::var(ENV_TEST_ENDPOINT)
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// Storage pointed at `endpoint` with throwaway credentials (moto accepts any).
pub fn s3_storage(endpoint: &str) -> Storage {
    Storage::new(StorageConfig {
        endpoint: Some(endpoint.to_owned()),
        region: crate::DEFAULT_REGION.to_owned(),
        access_key_id: Some("testing".to_owned()),
        secret_access_key: Some(sluice_types::Sensitive::new("testing".to_owned())),
        local_root: std::env::temp_dir(),
    })
}

/// A bucket name no other test uses: `<prefix>-<time>-<counter>`.
pub fn unique_bucket_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{:x}-{n}", nanos % 0xffff_ffff_ffff)
}

/// Creates a bucket with an unsigned path-style `PUT /<bucket>`, which moto accepts.
/// `object_store` has no bucket API, and a plain HTTP/1.1 request avoids an HTTP client
/// dependency. Only `http://` endpoints are supported.
///
/// # Panics
/// When the endpoint is not `http://host:port` or the server refuses the request.
pub async fn create_s3_bucket(endpoint: &str, bucket: &str) {
    let authority = endpoint
        .strip_prefix("http://")
        .expect("test endpoint must be http://host:port")
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(authority)
        .await
        .expect("connect to the test S3 endpoint");
    let request = format!(
        "PUT /{bucket} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send create-bucket request");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .expect("read create-bucket response");
    let response = String::from_utf8_lossy(&response);
    let status = response.lines().next().unwrap_or_default();
    assert!(
        status.contains(" 200"),
        "creating bucket {bucket} failed: {status}"
    );
}
