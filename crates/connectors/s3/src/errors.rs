//! The error location of a run: rejected records as JSON Lines objects under
//! `<bucketPrefix>/<flowName>/<executionId>/` of the `errorHandlingConfig` bucket.
//!
//! Each line is `{"errorCode": …, "errorMessage": …, "record": {…}}`, so a user can read the
//! reason next to the record and replay the `record` objects after fixing them. Records are
//! buffered up to [`PART_BYTES`] and then written as one object (`error-records-00001.jsonl`,
//! …), so memory stays bounded however many records a destination rejects. Objects are written
//! as they fill, not at commit: they describe records that did not land, which is true whether
//! the run ends well or not.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde_json::{Value, json};
use sluice_connector_api::{ConnectorError, ErrorLocation, RejectedRecord, RejectedRecordSink};
use std::sync::Arc;

use crate::layout::encode_segment;

/// Bytes of JSON Lines buffered before an object is written.
pub const PART_BYTES: usize = 8 * 1024 * 1024;

/// Writes one run's rejected records to its error location.
#[derive(Debug)]
pub struct ErrorRecordWriter {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    folder: String,
    part_bytes: usize,
    next_part: AtomicU32,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    buffer: Vec<u8>,
    locations: Vec<String>,
}

impl ErrorRecordWriter {
    /// A writer for `location`, storing into `store` (the location's bucket).
    pub fn new(store: Arc<dyn ObjectStore>, location: &ErrorLocation) -> Self {
        let mut folder = String::new();
        for segment in location.prefix.split('/').filter(|s| !s.is_empty()) {
            folder.push_str(segment);
            folder.push('/');
        }
        folder.push_str(&encode_segment(&location.flow_name));
        folder.push('/');
        folder.push_str(&encode_segment(&location.execution_id));
        folder.push('/');
        Self {
            store,
            bucket: location.bucket.clone(),
            folder,
            part_bytes: PART_BYTES,
            next_part: AtomicU32::new(1),
            state: Mutex::new(State::default()),
        }
    }

    /// Writes an object every `bytes` bytes instead of [`PART_BYTES`] (tests).
    pub fn with_part_bytes(mut self, bytes: usize) -> Self {
        self.part_bytes = bytes.max(1);
        self
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes `data` as the next part object and remembers its key.
    async fn upload(&self, data: Vec<u8>) -> Result<(), ConnectorError> {
        let part = self.next_part.fetch_add(1, Ordering::Relaxed);
        let key = format!("{}error-records-{part:05}.jsonl", self.folder);
        // The key's segments are already encoded (`encode_segment`); `from` would encode again.
        let path = Path::parse(&key).map_err(|error| {
            ConnectorError::internal(format!("invalid error-record key {key}: {error}"))
        })?;
        self.store
            .put(&path, PutPayload::from(Bytes::from(data)))
            .await
            .map_err(|error| {
                ConnectorError::unavailable(format!(
                    "could not write rejected records to s3://{}/{key}: {error}",
                    self.bucket
                ))
            })?;
        tracing::info!(bucket = %self.bucket, key = %key, "rejected records written");
        self.state()
            .locations
            .push(format!("s3://{}/{key}", self.bucket));
        Ok(())
    }
}

fn line(record: RejectedRecord) -> Vec<u8> {
    let value = json!({
        "errorCode": record.code.map_or(Value::Null, Value::String),
        "errorMessage": record.message,
        "record": Value::Object(record.record),
    });
    let mut bytes = value.to_string().into_bytes();
    bytes.push(b'\n');
    bytes
}

#[async_trait]
impl RejectedRecordSink for ErrorRecordWriter {
    async fn put(&self, records: Vec<RejectedRecord>) -> Result<(), ConnectorError> {
        let full = {
            let mut state = self.state();
            for record in records {
                state.buffer.extend_from_slice(&line(record));
            }
            if state.buffer.len() >= self.part_bytes {
                Some(std::mem::take(&mut state.buffer))
            } else {
                None
            }
        };
        match full {
            Some(data) => self.upload(data).await,
            None => Ok(()),
        }
    }

    async fn finish(&self) -> Result<Vec<String>, ConnectorError> {
        let rest = std::mem::take(&mut self.state().buffer);
        if !rest.is_empty() {
            self.upload(rest).await?;
        }
        Ok(self.state().locations.clone())
    }
}
