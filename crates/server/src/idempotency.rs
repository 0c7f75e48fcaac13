//! Idempotency on `clientToken`.
//!
//! SDKs fill `clientToken` with a fresh UUID when the caller does not, and reuse it when they
//! retry. The first successful response for `(operation, token)` is stored; a later request
//! with the same token and the same parameters gets that response again without side effects,
//! and one with different parameters is a `ConflictException`. Failed requests are not
//! remembered, so a caller can fix a mistake and retry with the same token.
//!
//! Parameters are compared through a fingerprint: HMAC-SHA256 over the canonical JSON of the
//! typed request (keys sorted, `clientToken` removed) under a random key kept in the data
//! directory. The key matters for `CreateConnectorProfile`, whose parameters include
//! credentials: a plain hash of them in the database could be brute-forced offline.
//!
//! Concurrent requests with the same token are serialised by an in-process lock, so a retry
//! racing the original waits for it and then replays its response.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use sluice_metastore::{IdempotencyRecord, MetadataStore, StoreError};

use crate::error::{ApiError, ServerError};

/// How long a token is remembered.
pub(crate) const TOKEN_TTL: chrono::Duration = chrono::Duration::hours(24);

const KEY_LEN: usize = 32;

/// The fingerprint key.
pub(crate) struct FingerprintKey([u8; KEY_LEN]);

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FingerprintKey(**REDACTED**)")
    }
}

impl FingerprintKey {
    /// Reads the key at `path`, or creates it (mode 0600) if the file does not exist.
    pub(crate) fn load_or_create(path: &Path) -> Result<Self, ServerError> {
        let error = |message: String| ServerError::DataDir {
            path: path.display().to_string(),
            message,
        };
        match std::fs::read(path) {
            Ok(bytes) => {
                let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
                    error(format!(
                        "expected a {KEY_LEN}-byte key, found {} bytes; delete the file to \
                         create a new one (pending idempotency tokens are then forgotten)",
                        bytes.len()
                    ))
                })?;
                Ok(Self(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; KEY_LEN] = rand::random();
                crate::config::write_private(path, &key).map_err(|e| error(e.to_string()))?;
                Ok(Self(key))
            }
            Err(e) => Err(error(e.to_string())),
        }
    }

    #[cfg(test)]
    pub(crate) fn from_bytes(key: [u8; KEY_LEN]) -> Self {
        Self(key)
    }

    /// The fingerprint of a request's parameters, `clientToken` excluded.
    pub(crate) fn fingerprint<T: Serialize>(&self, request: &T) -> Result<String, ApiError> {
        let mut value = serde_json::to_value(request).map_err(ApiError::internal)?;
        if let serde_json::Value::Object(map) = &mut value {
            map.remove("clientToken");
        }
        let mut canonical = String::new();
        write_canonical(&value, &mut canonical);
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).map_err(ApiError::internal)?;
        mac.update(canonical.as_bytes());
        Ok(hex::encode(mac.finalize().into_bytes()))
    }
}

/// JSON with object keys sorted at every level, independent of map ordering features.
fn write_canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The lock of one `(operation, token)` pair.
type TokenLock = Arc<tokio::sync::Mutex<()>>;

/// Per-token locks for requests in flight.
#[derive(Debug, Default)]
pub(crate) struct TokenLocks {
    locks: Mutex<HashMap<(String, String), TokenLock>>,
}

impl TokenLocks {
    fn lock_for(&self, operation: &str, token: &str) -> TokenLock {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Drop locks nobody holds, so the map only ever holds tokens in flight.
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        locks
            .entry((operation.to_string(), token.to_string()))
            .or_default()
            .clone()
    }
}

/// Runs `handler` under idempotency for `(operation, token)`.
///
/// Without a token the handler simply runs. With one: a stored response for the same
/// fingerprint is replayed, a stored response for another fingerprint is a conflict, and a
/// fresh success is stored before it is returned.
pub(crate) async fn run<F, Fut>(
    store: &dyn MetadataStore,
    locks: &TokenLocks,
    operation: &str,
    token: Option<&str>,
    fingerprint: String,
    handler: F,
) -> Result<serde_json::Value, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<serde_json::Value, ApiError>>,
{
    let Some(token) = token else {
        return handler().await;
    };
    let lock = locks.lock_for(operation, token);
    let _guard = lock.lock().await;

    if let Some(previous) = store.get_idempotency(operation, token).await?
        && previous.created_at >= Utc::now() - TOKEN_TTL
    {
        return replay(operation, previous, &fingerprint);
    }
    let response = handler().await?;
    let record = IdempotencyRecord {
        operation: operation.to_string(),
        token: token.to_string(),
        request_hash: fingerprint,
        response: response.clone(),
        created_at: Utc::now(),
    };
    match store.put_idempotency(&record).await {
        Ok(()) => {}
        // Another server process won the race; its response is as good as ours.
        Err(StoreError::AlreadyExists { .. }) => {}
        // The operation succeeded; failing it now would invite a retry that conflicts.
        Err(error) => tracing::warn!(%error, operation, "cannot remember the client token"),
    }
    Ok(response)
}

fn replay(
    operation: &str,
    previous: IdempotencyRecord,
    fingerprint: &str,
) -> Result<serde_json::Value, ApiError> {
    // Both are hex strings of equal length; the comparison does not need to be constant-time
    // because the caller already knows its own parameters.
    if previous.request_hash == fingerprint {
        tracing::debug!(
            operation,
            "replaying the response of an earlier request with this client token"
        );
        Ok(previous.response)
    } else {
        Err(ApiError::conflict(format!(
            "The clientToken was already used by an earlier {operation} request with different \
             parameters; use a new clientToken for a different request"
        )))
    }
}

/// Forgets tokens older than [`TOKEN_TTL`].
pub(crate) async fn purge_expired(store: &dyn MetadataStore) {
    match store.purge_idempotency(Utc::now() - TOKEN_TTL).await {
        Ok(0) => {}
        Ok(removed) => tracing::debug!(removed, "forgot expired client tokens"),
        Err(error) => tracing::warn!(%error, "cannot purge expired client tokens"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fingerprint_ignores_key_order_and_client_token() {
        let key = FingerprintKey::from_bytes([7; KEY_LEN]);
        let a = key
            .fingerprint(&json!({"b": 1, "a": {"y": [1, 2], "x": "é"}, "clientToken": "t1"}))
            .unwrap();
        let b = key
            .fingerprint(&json!({"a": {"x": "é", "y": [1, 2]}, "b": 1, "clientToken": "t2"}))
            .unwrap();
        assert_eq!(a, b);
        let c = key
            .fingerprint(&json!({"a": {"x": "é", "y": [2, 1]}, "b": 1}))
            .unwrap();
        assert_ne!(a, c);
        let other_key = FingerprintKey::from_bytes([8; KEY_LEN]);
        assert_ne!(
            other_key.fingerprint(&json!({"b": 1})).unwrap(),
            key.fingerprint(&json!({"b": 1})).unwrap()
        );
    }

    #[test]
    fn key_file_is_created_once_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fingerprint.key");
        let first = FingerprintKey::load_or_create(&path).unwrap();
        let second = FingerprintKey::load_or_create(&path).unwrap();
        assert_eq!(first.0, second.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, b"short").unwrap();
        let error = FingerprintKey::load_or_create(&path).unwrap_err();
        assert!(error.to_string().contains("32-byte key"), "{error}");
        assert!(!format!("{first:?}").contains('7'));
    }

    #[tokio::test]
    async fn replays_conflicts_and_forgets_failures() {
        let store = sluice_metastore::SqliteStore::open_in_memory().unwrap();
        let locks = TokenLocks::default();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let handler = |value: serde_json::Value| {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { Ok(value) }
        };
        let first = run(&store, &locks, "CreateFlow", Some("t"), "h1".into(), || {
            handler(json!({"n": 1}))
        })
        .await
        .unwrap();
        let again = run(&store, &locks, "CreateFlow", Some("t"), "h1".into(), || {
            handler(json!({"n": 2}))
        })
        .await
        .unwrap();
        assert_eq!(first, json!({"n": 1}));
        assert_eq!(again, json!({"n": 1}), "the stored response is replayed");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);

        let conflict = run(&store, &locks, "CreateFlow", Some("t"), "h2".into(), || {
            handler(json!({}))
        })
        .await
        .unwrap_err();
        assert_eq!(conflict.code, crate::error::ErrorCode::Conflict);

        // Same token, other operation: independent.
        run(&store, &locks, "StartFlow", Some("t"), "h2".into(), || {
            handler(json!({}))
        })
        .await
        .unwrap();

        // A failure is not remembered.
        let failed = run(
            &store,
            &locks,
            "UpdateFlow",
            Some("u"),
            "h".into(),
            || async { Err(ApiError::validation("bad")) },
        )
        .await
        .unwrap_err();
        assert_eq!(failed.code, crate::error::ErrorCode::Validation);
        let ok = run(&store, &locks, "UpdateFlow", Some("u"), "h".into(), || {
            handler(json!({"ok": true}))
        })
        .await
        .unwrap();
        assert_eq!(ok, json!({"ok": true}));

        // No token: always runs.
        let before = calls.load(std::sync::atomic::Ordering::SeqCst);
        run(&store, &locks, "CreateFlow", None, "h1".into(), || {
            handler(json!({}))
        })
        .await
        .unwrap();
        run(&store, &locks, "CreateFlow", None, "h1".into(), || {
            handler(json!({}))
        })
        .await
        .unwrap();
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), before + 2);
    }
}
