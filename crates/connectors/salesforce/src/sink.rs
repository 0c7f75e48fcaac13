//! Writing through sObject Collections: records are sent in calls of 200 with
//! `allOrNone: false`, and each record's result is mapped back. Rejected records are counted as
//! put failures (with Salesforce's `statusCode` and message kept for the run report), or stop
//! the run at the first one with `failOnFirstDestinationError`.
//!
//! Salesforce has no transaction spanning calls, so records accepted before a failure stay
//! written; `commit` only sends what is still buffered, and `abort` drops the buffer.

use std::sync::Arc;

use arrow_array::RecordBatch;
use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Map, Value, json};
use sluice_api_model as model;
use sluice_connector_api::{ConnectorError, DestinationWriter, WriteSummary};

use crate::client::Session;
use crate::source::encode;

/// sObject Collections accept at most this many records per call.
pub const COLLECTION_LIMIT: usize = 200;

/// At most this many rejected records are kept, with their errors, for the run report.
const KEPT_REJECTIONS: usize = 1000;

/// One rejected record.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The record as sent.
    pub record: Value,
    /// `STATUS_CODE: message` of each error.
    pub errors: Vec<String>,
}

/// Destination settings.
#[derive(Debug, Clone)]
pub struct SinkSettings {
    /// sObject written.
    pub object: String,
    /// Operation.
    pub operation: model::WriteOperationType,
    /// External id (UPSERT) or id field (UPDATE/DELETE).
    pub id_field: String,
    /// Stop at the first rejected record.
    pub fail_on_first_error: bool,
}

/// A run's writer.
#[derive(Debug)]
pub struct SalesforceWriter {
    session: Arc<Session>,
    settings: SinkSettings,
    buffer: Vec<Map<String, Value>>,
    written: u64,
    failed: u64,
    bytes: u64,
    rejections: Vec<Rejection>,
}

impl SalesforceWriter {
    /// A writer for one run.
    pub fn new(session: Arc<Session>, settings: SinkSettings) -> Self {
        Self {
            session,
            settings,
            buffer: Vec::new(),
            written: 0,
            failed: 0,
            bytes: 0,
            rejections: Vec::new(),
        }
    }

    /// Rejected records kept so far.
    pub fn rejections(&self) -> &[Rejection] {
        &self.rejections
    }

    async fn flush(&mut self) -> Result<(), ConnectorError> {
        while !self.buffer.is_empty() {
            let take = self.buffer.len().min(COLLECTION_LIMIT);
            let chunk: Vec<Map<String, Value>> = self.buffer.drain(..take).collect();
            self.send(chunk).await?;
        }
        Ok(())
    }

    async fn send(&mut self, chunk: Vec<Map<String, Value>>) -> Result<(), ConnectorError> {
        let object = self.settings.object.clone();
        let what = format!(
            "{} of {} {object} records",
            op_name(self.settings.operation),
            chunk.len()
        );
        let (results, bytes) = match self.settings.operation {
            model::WriteOperationType::Delete => {
                let ids: Vec<String> = chunk
                    .iter()
                    .map(|r| {
                        r.get(&self.settings.id_field)
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned()
                    })
                    .collect();
                let query = [("ids", ids.join(",")), ("allOrNone", "false".to_owned())];
                self.session
                    .json(&what, Method::DELETE, "composite/sobjects", &query, None)
                    .await?
            }
            operation => {
                let records: Vec<Value> = chunk
                    .iter()
                    .map(|r| {
                        let mut record = Map::new();
                        record.insert("attributes".into(), json!({"type": object}));
                        record.extend(r.clone());
                        Value::Object(record)
                    })
                    .collect();
                let body = json!({"allOrNone": false, "records": records});
                let (method, path) = match operation {
                    model::WriteOperationType::Upsert => (
                        Method::PATCH,
                        format!(
                            "composite/sobjects/{}/{}",
                            encode(&object),
                            encode(&self.settings.id_field)
                        ),
                    ),
                    model::WriteOperationType::Update => {
                        (Method::PATCH, "composite/sobjects".to_owned())
                    }
                    _ => (Method::POST, "composite/sobjects".to_owned()),
                };
                self.session
                    .json(&what, method, &path, &[], Some(&body))
                    .await?
            }
        };
        self.bytes += bytes;
        let results = results.as_array().cloned().unwrap_or_default();
        if results.len() != chunk.len() {
            return Err(ConnectorError::unavailable(format!(
                "Salesforce {what}: {} results for {} records",
                results.len(),
                chunk.len()
            )));
        }
        for (record, result) in chunk.into_iter().zip(results) {
            if result.get("success").and_then(Value::as_bool) == Some(true) {
                self.written += 1;
                continue;
            }
            self.failed += 1;
            let errors: Vec<String> = result
                .get("errors")
                .and_then(Value::as_array)
                .map(|errors| {
                    errors
                        .iter()
                        .map(|e| {
                            format!(
                                "{}: {}",
                                e.get("statusCode")
                                    .and_then(Value::as_str)
                                    .unwrap_or("UNKNOWN"),
                                e.get("message").and_then(Value::as_str).unwrap_or("")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            tracing::debug!(object = %object, errors = ?errors, "Salesforce rejected a record");
            if self.settings.fail_on_first_error {
                return Err(ConnectorError::bad_data(format!(
                    "Salesforce rejected a {object} record ({}); the flow stops at the first \
                     destination error",
                    errors.join("; ")
                )));
            }
            if self.rejections.len() < KEPT_REJECTIONS {
                self.rejections.push(Rejection {
                    record: Value::Object(record),
                    errors,
                });
            }
        }
        Ok(())
    }
}

fn op_name(operation: model::WriteOperationType) -> &'static str {
    match operation {
        model::WriteOperationType::Insert => "insert",
        model::WriteOperationType::Upsert => "upsert",
        model::WriteOperationType::Update => "update",
        model::WriteOperationType::Delete => "delete",
    }
}

/// Rows of a batch as JSON objects; nulls are left out (Salesforce leaves those fields alone).
pub fn batch_rows(batch: &RecordBatch) -> Result<Vec<Map<String, Value>>, ConnectorError> {
    let mut writer = arrow_json::ArrayWriter::new(Vec::new());
    writer
        .write(batch)
        .and_then(|()| writer.finish())
        .map_err(|error| {
            ConnectorError::bad_data(format!("encoding records for Salesforce: {error}"))
        })?;
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<Map<String, Value>> = serde_json::from_slice(&bytes).map_err(|error| {
        ConnectorError::internal(format!("encoding records for Salesforce: {error}"))
    })?;
    Ok(rows)
}

#[async_trait]
impl DestinationWriter for SalesforceWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<(), ConnectorError> {
        let rows = batch_rows(&batch)?;
        for (i, row) in rows.into_iter().enumerate() {
            if self.settings.operation != model::WriteOperationType::Insert
                && row
                    .get(&self.settings.id_field)
                    .is_none_or(|v| v.is_null() || v.as_str() == Some(""))
            {
                return Err(ConnectorError::bad_data(format!(
                    "record {i} of a batch for Salesforce {} has no {} value, which {} needs",
                    self.settings.object,
                    self.settings.id_field,
                    op_name(self.settings.operation)
                )));
            }
            self.buffer.push(row);
        }
        if self.buffer.len() >= COLLECTION_LIMIT {
            let full = self.buffer.len() / COLLECTION_LIMIT * COLLECTION_LIMIT;
            let rest = self.buffer.split_off(full);
            self.flush().await?;
            self.buffer = rest;
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<WriteSummary, ConnectorError> {
        self.flush().await?;
        if self.failed > 0 {
            tracing::warn!(object = %self.settings.object, failed = self.failed, "Salesforce rejected records");
        }
        Ok(WriteSummary {
            records_written: self.written,
            bytes_written: self.bytes,
            put_failures: self.failed,
            locations: vec![self.settings.object.clone()],
        })
    }

    async fn abort(self: Box<Self>) {
        tracing::info!(
            object = %self.settings.object,
            written = self.written,
            "aborting a Salesforce write; records already accepted by Salesforce stay written"
        );
    }
}
