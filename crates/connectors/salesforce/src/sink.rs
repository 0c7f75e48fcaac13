//! Writing: sObject Collections below the Bulk threshold, Bulk API 2.0 ingest jobs at or above
//! it, as AppFlow decides.
//!
//! With `dataTransferApi` `AUTOMATIC` (or absent) the writer holds the first records, up to
//! [`BulkSettings::destination_threshold`] (1,000), before choosing: a run that ends below it
//! goes through sObject Collections, one that reaches it through Bulk API 2.0. `REST_SYNC` and
//! `BULKV2` choose at once.
//!
//! - **Collections**: calls of [`COLLECTION_LIMIT`] records with `allOrNone: false`; each
//!   record's result is mapped back.
//! - **Bulk API 2.0**: the records are written as CSV into a temporary file; when it reaches
//!   [`BulkSettings::upload_max_bytes`] (or the schema changes, or the run commits) it is
//!   streamed as one ingest job ([`bulk::run_ingest_job`]), so memory stays the same whatever
//!   the upload size. Its `failedResults` are read back, and so are its `unprocessedrecords`
//!   when the job ended before reaching every record (code [`bulk::UNPROCESSED`]).
//!
//! Either way a rejected record is counted as a put failure and handed, with Salesforce's error
//! code and message, to the run's [`RejectedRecordSink`] in chunks; with
//! `failOnFirstDestinationError` the first one is handed over and the run stops. Salesforce
//! has no transaction spanning calls or jobs, so records accepted before a failure stay
//! written; `commit` only sends what is still buffered, and `abort` drops the buffer.
//!
//! **Values.** On `INSERT` a null is not sent, so Salesforce's default applies. On `UPDATE`
//! and `UPSERT` a null sets the field to null, on either API: JSON `null` to sObject
//! Collections, `#N/A` in Bulk API 2.0 CSV (Salesforce's documented rule: an empty field
//! leaves the value unchanged). An empty string does the same in Bulk CSV as it does over REST
//! (Salesforce keeps no empty strings), so a text value that is literally `#N/A` cannot be
//! written in a Bulk update or upsert; Salesforce has no escape for it. Instants are written in UTC as
//! `2024-04-16T19:00:00.250Z`, dates as `2024-04-16`, times as `19:00:00.250Z`, floating-point
//! numbers in plain decimal notation; NaN and infinities are refused with the field and record
//! named, since no Salesforce number field holds them. List columns (a JSON source's arrays,
//! a Map task's lists) go to multi-select picklists as Salesforce takes them, `a;b`, on both
//! APIs; the object is described once to check that the field is one. That is also the form
//! a read gives (text), so a multi-select picklist read and written back is unchanged.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::ops::Range;
use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, SchemaRef, TimeUnit};
use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Map, Value, json};
use sluice_api_model as model;
use sluice_connector_api::{
    ConnectorError, DestinationWriter, RejectedRecord, RejectedRecordSink, WriteSummary,
};

use crate::bulk::{self, BulkSettings, IngestResults, IngestUpload, RejectedResults};
use crate::client::Session;
use crate::config::{TransferApi, transfer_api};
use crate::source::{self, encode};

/// sObject Collections accept at most this many records per call.
pub const COLLECTION_LIMIT: usize = 200;

/// Rejected records handed to the error location per call.
const REJECTED_CHUNK: usize = 1_000;

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
    /// `dataTransferApi`.
    pub api: Option<model::SalesforceDataTransferApi>,
    /// Bulk API 2.0 thresholds and limits.
    pub bulk: BulkSettings,
}

/// Which API the writer settled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Still holding the first records.
    Undecided,
    Rest,
    Bulk,
}

/// A run's writer.
pub struct SalesforceWriter {
    session: Arc<Session>,
    settings: SinkSettings,
    rejected: Arc<dyn RejectedRecordSink>,
    route: Route,
    /// Batches held while undecided.
    held: Vec<RecordBatch>,
    held_rows: usize,
    /// Records waiting for a Collections call (fewer than [`COLLECTION_LIMIT`] after a flush).
    rows: Vec<Map<String, Value>>,
    /// The CSV of the next ingest job.
    upload: Option<CsvUpload>,
    written: u64,
    failed: u64,
    bytes: u64,
    jobs: u64,
    /// Salesforce field types by lower-case name, described the first time a batch has a list
    /// column.
    kinds: Option<HashMap<String, String>>,
}

impl std::fmt::Debug for SalesforceWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalesforceWriter")
            .field("object", &self.settings.object)
            .field("route", &self.route)
            .field("written", &self.written)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
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

/// Whether a null (or empty) value sets the field to null rather than leaving it alone.
fn nulls_clear(operation: model::WriteOperationType) -> bool {
    matches!(
        operation,
        model::WriteOperationType::Update | model::WriteOperationType::Upsert
    )
}

/// Refuses floating-point values no Salesforce field can hold (NaN, infinities), naming the
/// field and the record, before anything is sent.
fn check_numbers(batch: &RecordBatch, object: &str) -> Result<(), ConnectorError> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float32Type, Float64Type};
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let bad = match field.data_type() {
            DataType::Float64 => column
                .as_primitive::<Float64Type>()
                .iter()
                .position(|v| v.is_some_and(|v| !v.is_finite())),
            DataType::Float32 => column
                .as_primitive::<Float32Type>()
                .iter()
                .position(|v| v.is_some_and(|v| !v.is_finite())),
            _ => None,
        };
        if let Some(i) = bad {
            return Err(ConnectorError::bad_data(format!(
                "field {} of record {i} of a batch for Salesforce {object} is not a finite \
                 number (NaN or infinite), which Salesforce cannot store",
                field.name()
            )));
        }
    }
    Ok(())
}

impl SalesforceWriter {
    /// A writer for one run; rejected records go to `rejected`.
    pub fn new(
        session: Arc<Session>,
        settings: SinkSettings,
        rejected: Arc<dyn RejectedRecordSink>,
    ) -> Self {
        let route = match settings.api {
            Some(model::SalesforceDataTransferApi::RestSync) => Route::Rest,
            Some(model::SalesforceDataTransferApi::Bulkv2) => Route::Bulk,
            _ => Route::Undecided,
        };
        Self {
            session,
            settings,
            rejected,
            route,
            held: Vec::new(),
            held_rows: 0,
            rows: Vec::new(),
            upload: None,
            written: 0,
            failed: 0,
            bytes: 0,
            jobs: 0,
            kinds: None,
        }
    }

    /// Writes list columns (from a JSON source or a Map task) into multi-select picklists as
    /// Salesforce takes them, `a;b`: the object is described once, the first time a batch has
    /// one. Deletes send only ids, so their batches are left alone.
    async fn join_lists(&mut self, batch: RecordBatch) -> Result<RecordBatch, ConnectorError> {
        if self.settings.operation == model::WriteOperationType::Delete
            || !batch
                .columns()
                .iter()
                .any(|c| list_parts(c.as_ref()).is_some())
        {
            return Ok(batch);
        }
        let kinds = match &self.kinds {
            Some(kinds) => kinds,
            None => {
                let fields = source::describe(&self.session, &self.settings.object).await?;
                self.kinds.insert(
                    fields
                        .into_iter()
                        .map(|f| (f.name.to_ascii_lowercase(), f.kind))
                        .collect(),
                )
            }
        };
        join_list_columns(batch, kinds, &self.settings.object)
    }

    /// UPDATE, UPSERT and DELETE need the id field in every record; refused before sending.
    fn check_ids(&self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        let operation = self.settings.operation;
        if operation == model::WriteOperationType::Insert {
            return Ok(());
        }
        let id_field = &self.settings.id_field;
        let object = &self.settings.object;
        let Some(column) = batch.column_by_name(id_field) else {
            return Err(ConnectorError::bad_data(format!(
                "the records for Salesforce {object} have no {id_field} field, which {} needs",
                op_name(operation)
            )));
        };
        let empty = |i: usize| {
            column.is_null(i)
                || (matches!(column.data_type(), DataType::Utf8)
                    && column
                        .as_any()
                        .downcast_ref::<arrow_array::StringArray>()
                        .is_some_and(|s| s.value(i).is_empty()))
        };
        if let Some(i) = (0..batch.num_rows()).find(|&i| empty(i)) {
            return Err(ConnectorError::bad_data(format!(
                "record {i} of a batch for Salesforce {object} has no {id_field} value, which {} \
                 needs",
                op_name(operation)
            )));
        }
        Ok(())
    }

    async fn route_batch(&mut self, batch: RecordBatch) -> Result<(), ConnectorError> {
        match self.route {
            Route::Undecided => {
                self.held_rows += batch.num_rows();
                self.held.push(batch);
                if self.held_rows >= self.settings.bulk.destination_threshold {
                    self.settle(Route::Bulk).await?;
                }
                Ok(())
            }
            Route::Rest => self.write_rest(&batch).await,
            Route::Bulk => self.write_bulk(&batch).await,
        }
    }

    /// Chooses the route and sends the held records along it.
    async fn settle(&mut self, route: Route) -> Result<(), ConnectorError> {
        tracing::info!(
            object = %self.settings.object,
            records = self.held_rows,
            api = if route == Route::Bulk { "Bulk API 2.0" } else { "sObject Collections" },
            "Salesforce destination API chosen"
        );
        self.route = route;
        for batch in std::mem::take(&mut self.held) {
            match route {
                Route::Bulk => self.write_bulk(&batch).await?,
                _ => self.write_rest(&batch).await?,
            }
        }
        Ok(())
    }

    async fn write_rest(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        self.rows
            .extend(batch_rows(batch, nulls_clear(self.settings.operation))?);
        while self.rows.len() >= COLLECTION_LIMIT {
            let chunk: Vec<Map<String, Value>> = self.rows.drain(..COLLECTION_LIMIT).collect();
            self.send(chunk).await?;
        }
        Ok(())
    }

    async fn flush_rest(&mut self) -> Result<(), ConnectorError> {
        while !self.rows.is_empty() {
            let take = self.rows.len().min(COLLECTION_LIMIT);
            let chunk: Vec<Map<String, Value>> = self.rows.drain(..take).collect();
            self.send(chunk).await?;
        }
        Ok(())
    }

    /// One sObject Collections call.
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
        let mut rejected = Vec::new();
        for (record, result) in chunk.into_iter().zip(results) {
            // Every record of the call was processed (allOrNone is false), so successes after
            // a rejection count as written even when the run stops at the first error.
            if result.get("success").and_then(Value::as_bool) == Some(true) {
                self.written += 1;
                continue;
            }
            let errors: Vec<(Option<String>, String)> = result
                .get("errors")
                .and_then(Value::as_array)
                .map(|errors| {
                    errors
                        .iter()
                        .map(|e| {
                            (
                                e.get("statusCode")
                                    .and_then(Value::as_str)
                                    .map(str::to_owned),
                                e.get("message")
                                    .and_then(Value::as_str)
                                    .unwrap_or("")
                                    .to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let code = errors.iter().find_map(|(code, _)| code.clone());
            let message = if errors.is_empty() {
                "Salesforce reported the record as failed without an error".to_owned()
            } else {
                errors
                    .iter()
                    .map(|(code, message)| match code {
                        Some(code) => format!("{code}: {message}"),
                        None => message.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            self.failed += 1;
            rejected.push(RejectedRecord {
                record,
                code,
                message,
            });
        }
        if self.settings.fail_on_first_error && !rejected.is_empty() {
            return self.stop_at_first(rejected).await;
        }
        if !rejected.is_empty() {
            tracing::debug!(object = %object, count = rejected.len(), "Salesforce rejected records");
            self.rejected.put(rejected).await?;
        }
        Ok(())
    }

    /// Hands the first rejected record over and fails the run with its reason.
    async fn stop_at_first(
        &mut self,
        mut rejected: Vec<RejectedRecord>,
    ) -> Result<(), ConnectorError> {
        rejected.truncate(1);
        let reason = rejected
            .first()
            .map(|r| r.message.clone())
            .unwrap_or_default();
        self.rejected.put(rejected).await?;
        Err(ConnectorError::bad_data(format!(
            "Salesforce rejected a {} record ({reason}); the flow stops at the first destination \
             error",
            self.settings.object
        )))
    }

    async fn write_bulk(&mut self, batch: &RecordBatch) -> Result<(), ConnectorError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let operation = self.settings.operation;
        let delete = matches!(operation, model::WriteOperationType::Delete);
        let null_text = if nulls_clear(operation) {
            bulk::NULL_FIELD
        } else {
            ""
        };
        // Rendered up front: the formatters cannot be held across the job calls below.
        let (header, lines, ends) = {
            let encoder = RowEncoder::new(
                batch,
                delete.then_some(self.settings.id_field.as_str()),
                null_text,
            )?;
            let mut lines = Vec::new();
            let mut ends = Vec::with_capacity(batch.num_rows());
            for i in 0..batch.num_rows() {
                encoder.encode(i, &mut lines)?;
                ends.push(lines.len());
            }
            (encoder.header, lines, ends)
        };
        if self.upload.as_ref().is_some_and(|u| u.header != header) {
            // A CSV has one header; other columns make another job.
            self.run_job().await?;
        }
        let max_bytes = self.settings.bulk.upload_max_bytes;
        let mut start = 0;
        for end in ends {
            let row = &lines[start..end];
            start = end;
            let mut upload = match self.upload.take() {
                Some(upload) => upload,
                None => CsvUpload::new(header.clone())?,
            };
            if !upload.fits(row, max_bytes) {
                if upload.rows == 0 {
                    return Err(ConnectorError::bad_data(format!(
                        "a record for Salesforce {} is {} bytes of CSV, more than the \
                         {max_bytes} bytes one Bulk API 2.0 upload can take",
                        self.settings.object,
                        row.len(),
                    )));
                }
                self.upload = Some(upload);
                self.run_job().await?;
                upload = CsvUpload::new(header.clone())?;
            }
            upload.push(row)?;
            self.upload = Some(upload);
        }
        Ok(())
    }

    /// Sends the buffered CSV as one ingest job and maps its results back: the records Salesforce
    /// rejected (`failedResults`) and those the job never reached (`unprocessedrecords`) are
    /// put failures.
    async fn run_job(&mut self) -> Result<(), ConnectorError> {
        let Some(mut upload) = self.upload.take().filter(|u| u.rows > 0) else {
            return Ok(());
        };
        upload.finish()?;
        let settings = &self.settings;
        let operation = op_name(settings.operation);
        let external_id = (settings.operation == model::WriteOperationType::Upsert)
            .then_some(settings.id_field.as_str());
        let (rows, size) = (upload.rows, upload.bytes);
        let info = bulk::run_ingest_job(
            &self.session,
            &settings.object,
            operation,
            external_id,
            IngestUpload {
                path: &upload.path,
                bytes: upload.bytes,
                rows,
            },
            &settings.bulk,
        )
        .await?;
        // The file is not needed any more: the results come from Salesforce.
        drop(upload);
        self.jobs += 1;
        self.bytes += size;
        self.written += info.processed - info.failed;
        if info.failed > 0 {
            let results = bulk::ingest_results(
                &self.session,
                &self.settings.object,
                &info.id,
                IngestResults::Failed,
                String::new(),
            )
            .await?;
            self.hand_over(results, info.failed, &info.id, "failed results")
                .await?;
        }
        let unprocessed = rows - info.processed;
        if unprocessed > 0 {
            let message = if info.is_complete() {
                format!(
                    "Salesforce Bulk API 2.0 job {} completed without processing the record",
                    info.id
                )
            } else {
                format!(
                    "Salesforce Bulk API 2.0 job {} ended {} before processing the record: {}",
                    info.id,
                    info.state,
                    info.reason()
                )
            };
            let results = bulk::ingest_results(
                &self.session,
                &self.settings.object,
                &info.id,
                IngestResults::Unprocessed,
                message,
            )
            .await?;
            self.hand_over(results, unprocessed, &info.id, "unprocessed records")
                .await?;
        }
        Ok(())
    }

    /// Hands the records of a job's results CSV to the error location in chunks and counts
    /// them as put failures; with `failOnFirstDestinationError` only the first, and the run
    /// stops. The CSV must hold exactly `expected` records.
    async fn hand_over(
        &mut self,
        mut results: RejectedResults,
        expected: u64,
        job: &str,
        what: &str,
    ) -> Result<(), ConnectorError> {
        let limit = if self.settings.fail_on_first_error {
            1
        } else {
            REJECTED_CHUNK
        };
        let mut handed = 0u64;
        loop {
            let chunk = results.next_chunk(limit).await?;
            if chunk.is_empty() {
                break;
            }
            if self.settings.fail_on_first_error {
                self.failed += 1;
                return self.stop_at_first(chunk).await;
            }
            handed += chunk.len() as u64;
            self.failed += chunk.len() as u64;
            self.rejected.put(chunk).await?;
        }
        if handed != expected {
            return Err(ConnectorError::unavailable(format!(
                "Salesforce Bulk API 2.0 job {job} on {}: its record counts call for \
                 {expected} {what} but Salesforce listed {handed}",
                self.settings.object
            )));
        }
        tracing::warn!(object = %self.settings.object, job, count = handed, "Salesforce Bulk API 2.0 {what}");
        Ok(())
    }
}

/// The CSV of one ingest job, spooled to a temporary file (removed when dropped) so that
/// memory does not grow with the upload.
#[derive(Debug)]
struct CsvUpload {
    header: Vec<String>,
    file: std::io::BufWriter<std::fs::File>,
    path: tempfile::TempPath,
    /// Bytes written, header included.
    bytes: u64,
    rows: u64,
}

impl CsvUpload {
    /// A new file holding the header line.
    fn new(header: Vec<String>) -> Result<Self, ConnectorError> {
        let (file, path) = tempfile::Builder::new()
            .prefix("sluice-salesforce-")
            .suffix(".csv")
            .tempfile()
            .map_err(|error| {
                ConnectorError::internal(format!(
                    "creating a temporary file for a Salesforce Bulk API 2.0 upload in {}: \
                     {error}",
                    std::env::temp_dir().display()
                ))
            })?
            .into_parts();
        let mut line = Vec::new();
        for (i, name) in header.iter().enumerate() {
            if i > 0 {
                line.push(b',');
            }
            push_field(&mut line, name);
        }
        line.push(b'\n');
        let mut upload = Self {
            header,
            file: std::io::BufWriter::with_capacity(64 * 1024, file),
            path,
            bytes: 0,
            rows: 0,
        };
        upload.append(&line)?;
        Ok(upload)
    }

    fn fits(&self, row: &[u8], max_bytes: usize) -> bool {
        self.bytes + row.len() as u64 <= max_bytes as u64
    }

    fn push(&mut self, row: &[u8]) -> Result<(), ConnectorError> {
        self.append(row)?;
        self.rows += 1;
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), ConnectorError> {
        self.file
            .write_all(bytes)
            .map_err(|error| self.io_error(&error))?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Writes out what is buffered, so the file holds the whole upload.
    fn finish(&mut self) -> Result<(), ConnectorError> {
        self.file.flush().map_err(|error| self.io_error(&error))
    }

    fn io_error(&self, error: &std::io::Error) -> ConnectorError {
        ConnectorError::internal(format!(
            "writing the Salesforce Bulk API 2.0 upload file {}: {error}",
            self.path.display()
        ))
    }
}

/// Writes one CSV field, quoted when it holds a separator, a quote or a line break. Leading
/// and trailing spaces need no quotes: Salesforce does not trim field values.
fn push_field(out: &mut Vec<u8>, text: &str) {
    if text
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        out.push(b'"');
        for b in text.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

/// How the values of one column are written as text.
enum Render<'a> {
    /// Instants as `2024-04-16T19:00:00.250Z` whatever the zone attached for display (zone
    /// names need a time zone database Sluice does not carry).
    Timestamp(TimeUnit),
    /// Dates held as milliseconds, as `2024-04-16`.
    Date64,
    /// Times of day as `19:00:00.250Z`, the form Salesforce time fields take.
    Time(TimeUnit),
    /// Plain decimal notation: Arrow's display would write `12.0` (refused by integer fields)
    /// and `1e20`.
    Float,
    Other(ArrayFormatter<'a>),
}

/// One column and how its values are written.
struct TextColumn<'a> {
    array: &'a dyn Array,
    render: Render<'a>,
}

impl<'a> TextColumn<'a> {
    fn new(array: &'a dyn Array, name: &str) -> Result<Self, ConnectorError> {
        static OPTIONS: std::sync::LazyLock<FormatOptions<'static>> =
            std::sync::LazyLock::new(|| FormatOptions::new().with_null(""));
        let render = match array.data_type() {
            DataType::Timestamp(unit, _) => Render::Timestamp(*unit),
            DataType::Date64 => Render::Date64,
            DataType::Time32(unit) | DataType::Time64(unit) => Render::Time(*unit),
            DataType::Float32 | DataType::Float64 => Render::Float,
            _ => Render::Other(ArrayFormatter::try_new(array, &OPTIONS).map_err(|error| {
                ConnectorError::bad_data(format!(
                    "field {name} cannot be written to Salesforce as text: {error}"
                ))
            })?),
        };
        Ok(Self { array, render })
    }

    /// Whether the values need this module's rendering rather than Arrow's JSON encoding.
    fn is_special(data_type: &DataType) -> bool {
        matches!(
            data_type,
            DataType::Timestamp(..) | DataType::Date64 | DataType::Time32(_) | DataType::Time64(_)
        )
    }

    /// Writes the value of `row`, which must not be null.
    fn write(&self, row: usize, out: &mut String) -> std::fmt::Result {
        use arrow_array::cast::AsArray;
        use arrow_array::types::{
            Date64Type, Float32Type, Float64Type, Time32MillisecondType, Time32SecondType,
            Time64MicrosecondType, Time64NanosecondType,
        };
        let array = self.array;
        match &self.render {
            Render::Timestamp(unit) => write_instant(out, array, *unit, row),
            Render::Date64 => {
                let millis = array.as_primitive::<Date64Type>().value(row);
                let date = chrono::DateTime::from_timestamp_millis(millis)
                    .ok_or(std::fmt::Error)?
                    .date_naive();
                write!(out, "{}", date.format("%Y-%m-%d"))
            }
            Render::Time(unit) => {
                let nanos: i64 = match (array.data_type(), unit) {
                    (DataType::Time32(_), TimeUnit::Second) => {
                        i64::from(array.as_primitive::<Time32SecondType>().value(row))
                            * 1_000_000_000
                    }
                    (DataType::Time32(_), _) => {
                        i64::from(array.as_primitive::<Time32MillisecondType>().value(row))
                            * 1_000_000
                    }
                    (_, TimeUnit::Microsecond) => {
                        array.as_primitive::<Time64MicrosecondType>().value(row) * 1_000
                    }
                    _ => array.as_primitive::<Time64NanosecondType>().value(row),
                };
                let seconds =
                    u32::try_from(nanos.div_euclid(1_000_000_000)).map_err(|_| std::fmt::Error)?;
                let fraction =
                    u32::try_from(nanos.rem_euclid(1_000_000_000)).map_err(|_| std::fmt::Error)?;
                let time = chrono::NaiveTime::from_num_seconds_from_midnight_opt(seconds, fraction)
                    .ok_or(std::fmt::Error)?;
                write!(out, "{}", time.format("%H:%M:%S%.3fZ"))
            }
            Render::Float => match array.data_type() {
                DataType::Float32 => {
                    write!(out, "{}", array.as_primitive::<Float32Type>().value(row))
                }
                _ => write!(out, "{}", array.as_primitive::<Float64Type>().value(row)),
            },
            Render::Other(formatter) => write!(out, "{}", formatter.value(row)),
        }
    }
}

/// Renders the rows of a batch as Bulk API 2.0 CSV lines.
struct RowEncoder<'a> {
    header: Vec<String>,
    columns: Vec<TextColumn<'a>>,
    /// What a null or empty value is written as: an empty field (left alone) or `#N/A` (set
    /// to null).
    null_text: &'static str,
}

impl<'a> RowEncoder<'a> {
    /// Every column, or only `id_column` (written as `Id`) for deletes.
    fn new(
        batch: &'a RecordBatch,
        id_column: Option<&str>,
        null_text: &'static str,
    ) -> Result<Self, ConnectorError> {
        let schema: SchemaRef = batch.schema();
        let mut header = Vec::new();
        let mut columns = Vec::new();
        for (i, field) in schema.fields().iter().enumerate() {
            if let Some(id) = id_column
                && field.name() != id
            {
                continue;
            }
            columns.push(TextColumn::new(batch.column(i).as_ref(), field.name())?);
            header.push(if id_column.is_some() {
                "Id".to_owned()
            } else {
                field.name().clone()
            });
        }
        Ok(Self {
            header,
            columns,
            null_text,
        })
    }

    fn encode(&self, row: usize, out: &mut Vec<u8>) -> Result<(), ConnectorError> {
        let mut text = String::new();
        for (i, column) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            text.clear();
            if column.array.is_valid(row) {
                column.write(row, &mut text).map_err(|error| {
                    ConnectorError::bad_data(format!(
                        "field {} of record {row} cannot be written as text: {error}",
                        self.header[i]
                    ))
                })?;
            }
            if text.is_empty() {
                out.extend_from_slice(self.null_text.as_bytes());
            } else {
                push_field(out, &text);
            }
        }
        out.push(b'\n');
        Ok(())
    }
}

/// A timestamp value as a UTC instant with milliseconds.
fn write_instant(
    out: &mut String,
    array: &dyn Array,
    unit: TimeUnit,
    row: usize,
) -> std::fmt::Result {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{
        TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
        TimestampSecondType,
    };
    let instant = match unit {
        TimeUnit::Second => chrono::DateTime::from_timestamp(
            array.as_primitive::<TimestampSecondType>().value(row),
            0,
        ),
        TimeUnit::Millisecond => chrono::DateTime::from_timestamp_millis(
            array.as_primitive::<TimestampMillisecondType>().value(row),
        ),
        TimeUnit::Microsecond => chrono::DateTime::from_timestamp_micros(
            array.as_primitive::<TimestampMicrosecondType>().value(row),
        ),
        TimeUnit::Nanosecond => Some(chrono::DateTime::from_timestamp_nanos(
            array.as_primitive::<TimestampNanosecondType>().value(row),
        )),
    };
    match instant {
        Some(instant) => write!(out, "{}", instant.format("%Y-%m-%dT%H:%M:%S%.3fZ")),
        None => Err(std::fmt::Error),
    }
}

/// Rows of a batch as JSON objects for sObject Collections. Nulls are left out (Salesforce
/// leaves those fields alone) unless `explicit_nulls`, which sends them as `null` (Salesforce
/// clears the field). Instants, dates and times are written as in the Bulk API 2.0 CSV.
pub fn batch_rows(
    batch: &RecordBatch,
    explicit_nulls: bool,
) -> Result<Vec<Map<String, Value>>, ConnectorError> {
    let mut writer = arrow_json::WriterBuilder::new()
        .with_explicit_nulls(explicit_nulls)
        .build::<_, arrow_json::writer::JsonArray>(Vec::new());
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
    let mut rows: Vec<Map<String, Value>> = serde_json::from_slice(&bytes).map_err(|error| {
        ConnectorError::internal(format!("encoding records for Salesforce: {error}"))
    })?;
    let schema = batch.schema();
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        if !TextColumn::is_special(field.data_type()) {
            continue;
        }
        let column = TextColumn::new(array.as_ref(), field.name())?;
        let mut text = String::new();
        for (i, row) in rows.iter_mut().enumerate() {
            if !array.is_valid(i) {
                continue;
            }
            text.clear();
            column.write(i, &mut text).map_err(|error| {
                ConnectorError::bad_data(format!(
                    "field {} of record {i} cannot be written as text: {error}",
                    field.name()
                ))
            })?;
            row.insert(field.name().clone(), Value::String(text.clone()));
        }
    }
    Ok(rows)
}

/// The values and per-row ranges of a list column (`List`, `LargeList`, `FixedSizeList`);
/// `None` for any other column.
fn list_parts(array: &dyn Array) -> Option<(arrow_array::ArrayRef, Vec<Range<usize>>)> {
    use arrow_array::cast::AsArray;
    let ranges = |offsets: &[usize]| offsets.windows(2).map(|w| w[0]..w[1]).collect();
    match array.data_type() {
        DataType::List(_) => {
            let list = array.as_list::<i32>();
            let offsets: Vec<usize> = list
                .value_offsets()
                .iter()
                .map(|&o| usize::try_from(o).unwrap_or(0))
                .collect();
            Some((list.values().clone(), ranges(&offsets)))
        }
        DataType::LargeList(_) => {
            let list = array.as_list::<i64>();
            let offsets: Vec<usize> = list
                .value_offsets()
                .iter()
                .map(|&o| usize::try_from(o).unwrap_or(0))
                .collect();
            Some((list.values().clone(), ranges(&offsets)))
        }
        DataType::FixedSizeList(_, size) => {
            let list = array.as_fixed_size_list();
            let size = usize::try_from(*size).unwrap_or(0);
            let rows = (0..list.len())
                .map(|i| {
                    let start = list.value_offset_at(i);
                    start..start + size
                })
                .collect();
            Some((list.values().clone(), rows))
        }
        _ => None,
    }
}

/// Replaces each list column with the text Salesforce takes for a multi-select picklist:
/// the values joined by `;`. Null and empty values are left out, and a list with no values
/// left is null (Salesforce stores no empty selection). A list column for any other field
/// type, a nested list, or a value holding `;` (which would read back as two values) is
/// refused with the field and record named.
fn join_list_columns(
    batch: RecordBatch,
    kinds: &HashMap<String, String>,
    object: &str,
) -> Result<RecordBatch, ConnectorError> {
    static OPTIONS: std::sync::LazyLock<FormatOptions<'static>> =
        std::sync::LazyLock::new(FormatOptions::new);
    let schema = batch.schema();
    let mut fields: Vec<arrow_schema::FieldRef> = Vec::with_capacity(schema.fields().len());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let Some((values, rows)) = list_parts(column.as_ref()) else {
            fields.push(field.clone());
            columns.push(column.clone());
            continue;
        };
        let name = field.name();
        match kinds.get(&name.to_ascii_lowercase()).map(String::as_str) {
            Some("multipicklist") => {}
            Some(kind) => {
                return Err(ConnectorError::bad_data(format!(
                    "field {name} holds lists, but Salesforce {object}.{name} is a {kind} \
                     field; only multi-select picklists take several values"
                )));
            }
            None => {
                return Err(ConnectorError::bad_data(format!(
                    "field {name} holds lists, but Salesforce {object} has no field {name}"
                )));
            }
        }
        if values.data_type().is_nested() {
            return Err(ConnectorError::bad_data(format!(
                "field {name} holds lists of {}, but a Salesforce multi-select picklist takes \
                 a list of values",
                values.data_type()
            )));
        }
        let formatter = ArrayFormatter::try_new(values.as_ref(), &OPTIONS).map_err(|error| {
            ConnectorError::bad_data(format!(
                "field {name} cannot be written to Salesforce as text: {error}"
            ))
        })?;
        let mut joined = arrow_array::builder::StringBuilder::new();
        let mut text = String::new();
        let mut value = String::new();
        for (row, range) in rows.into_iter().enumerate() {
            if column.is_null(row) {
                joined.append_null();
                continue;
            }
            text.clear();
            for i in range {
                if values.is_null(i) {
                    continue;
                }
                value.clear();
                write!(value, "{}", formatter.value(i)).map_err(|error| {
                    ConnectorError::bad_data(format!(
                        "field {name} of record {row} cannot be written as text: {error}"
                    ))
                })?;
                if value.is_empty() {
                    continue;
                }
                if value.contains(';') {
                    return Err(ConnectorError::bad_data(format!(
                        "field {name} of record {row} holds the value '{value}', but ';' \
                         separates the values of a Salesforce multi-select picklist"
                    )));
                }
                if !text.is_empty() {
                    text.push(';');
                }
                text.push_str(&value);
            }
            if text.is_empty() {
                joined.append_null();
            } else {
                joined.append_value(&text);
            }
        }
        fields.push(Arc::new(arrow_schema::Field::new(
            name,
            DataType::Utf8,
            true,
        )));
        columns.push(Arc::new(joined.finish()) as arrow_array::ArrayRef);
    }
    let schema = Arc::new(arrow_schema::Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    ));
    RecordBatch::try_new(schema, columns).map_err(|error| {
        ConnectorError::internal(format!(
            "Salesforce {object}: joining multi-select picklist values failed: {error}"
        ))
    })
}

#[async_trait]
impl DestinationWriter for SalesforceWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<(), ConnectorError> {
        self.check_ids(&batch)?;
        check_numbers(&batch, &self.settings.object)?;
        let batch = self.join_lists(batch).await?;
        self.route_batch(batch).await
    }

    async fn commit(mut self: Box<Self>) -> Result<WriteSummary, ConnectorError> {
        if self.route == Route::Undecided {
            let route = match transfer_api(
                self.settings.api,
                self.held_rows as u64,
                self.settings.bulk.destination_threshold as u64,
            ) {
                TransferApi::Bulk => Route::Bulk,
                TransferApi::Rest => Route::Rest,
            };
            self.settle(route).await?;
        }
        self.flush_rest().await?;
        self.run_job().await?;
        if self.failed > 0 {
            tracing::warn!(object = %self.settings.object, failed = self.failed, "Salesforce rejected records");
        }
        tracing::info!(object = %self.settings.object, written = self.written, failed = self.failed, bulk_jobs = self.jobs, "Salesforce write committed");
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{
        BooleanArray, Date32Array, Date64Array, Decimal128Array, Float32Array, Float64Array,
        Int64Array, LargeStringArray, StringArray, Time32MillisecondArray, Time32SecondArray,
        Time64MicrosecondArray, Time64NanosecondArray, TimestampMillisecondArray,
        TimestampNanosecondArray, TimestampSecondArray,
    };
    use arrow_schema::{Field, Schema, TimeUnit};

    use super::*;
    use crate::bulk::CsvRecords;

    /// The CSV a batch becomes in an ingest job, header included.
    fn csv(batch: &RecordBatch, null_text: &'static str) -> String {
        let encoder = RowEncoder::new(batch, None, null_text).unwrap();
        let mut upload = CsvUpload::new(encoder.header.clone()).unwrap();
        let mut row = Vec::new();
        for i in 0..batch.num_rows() {
            row.clear();
            encoder.encode(i, &mut row).unwrap();
            upload.push(&row).unwrap();
        }
        assert_eq!(upload.rows, batch.num_rows() as u64);
        upload.finish().unwrap();
        let text = String::from_utf8(std::fs::read(&upload.path).unwrap()).unwrap();
        assert_eq!(upload.bytes, text.len() as u64);
        text
    }

    fn batch(columns: Vec<(&str, arrow_array::ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns.into_iter().map(|(n, a)| (n.to_owned(), a))).unwrap()
    }

    #[test]
    fn rows_encode_as_csv_with_quoting_and_empty_nulls() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("Name", DataType::Utf8, true),
            Field::new("NumberOfEmployees", DataType::Int64, true),
            Field::new("AnnualRevenue", DataType::Float64, true),
            Field::new("IsActive__c", DataType::Boolean, true),
            Field::new(
                "Seen__c",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                true,
            ),
            Field::new(
                "LastModifiedDate",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                true,
            ),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![Some("Acme, \"Inc\"\nHQ"), None])),
                Arc::new(Int64Array::from(vec![Some(12), None])),
                Arc::new(Float64Array::from(vec![Some(1.5), None])),
                Arc::new(BooleanArray::from(vec![Some(true), None])),
                Arc::new(TimestampMillisecondArray::from(vec![
                    Some(1_713_294_000_250),
                    None,
                ])),
                Arc::new(
                    TimestampMillisecondArray::from(vec![None, Some(-1)]).with_timezone("UTC"),
                ),
            ],
        )
        .unwrap();
        assert_eq!(
            csv(&batch, ""),
            "Name,NumberOfEmployees,AnnualRevenue,IsActive__c,Seen__c,LastModifiedDate\n\
             \"Acme, \"\"Inc\"\"\nHQ\",12,1.5,true,2024-04-16T19:00:00.250Z,\n\
             ,,,,,1969-12-31T23:59:59.999Z\n"
        );
        // Updates and upserts set null fields to null with #N/A.
        assert_eq!(
            csv(&batch, bulk::NULL_FIELD).lines().last(),
            Some("#N/A,#N/A,#N/A,#N/A,#N/A,1969-12-31T23:59:59.999Z")
        );
        // Deletes send only the id column, named Id.
        let ids = RowEncoder::new(&batch, Some("Name"), "").unwrap();
        assert_eq!(ids.header, ["Id"]);
    }

    #[test]
    fn awkward_text_survives_a_csv_round_trip() {
        let values = [
            "plain",
            " leading and trailing spaces ",
            "comma, inside",
            "\"quoted\"",
            "a \"quote\" in the middle",
            "line\nbreak",
            "carriage\r\nreturn",
            "Ünïcödé — 日本語 🚀",
            "#",
            "'single'",
            "tab\there",
            ",",
            "\"",
        ];
        let text = csv(
            &batch(vec![
                ("Name", Arc::new(StringArray::from(values.to_vec())) as _),
                (
                    "Description",
                    Arc::new(LargeStringArray::from(values.to_vec())) as _,
                ),
            ]),
            "",
        );
        let mut records = CsvRecords::new(text.as_bytes());
        let mut read = Vec::new();
        while let Some(record) = records.next_record() {
            let fields: Vec<String> = record
                .iter()
                .map(|f| String::from_utf8(f.to_vec()).unwrap())
                .collect();
            read.push(fields);
        }
        assert_eq!(read[0], ["Name", "Description"]);
        assert_eq!(read.len(), values.len() + 1);
        for (value, fields) in values.iter().zip(&read[1..]) {
            assert_eq!(fields, &[*value, *value]);
        }
        // Spaces are kept without quotes (Salesforce does not trim); quotes only when needed.
        assert!(
            text.contains("\n leading and trailing spaces , leading"),
            "{text}"
        );
        assert!(text.contains("\n\"\"\"\",\"\"\"\"\n"), "{text}");
    }

    #[test]
    fn empty_strings_and_nulls_follow_the_operation() {
        let data = batch(vec![
            ("Id", Arc::new(StringArray::from(vec!["001A", "001B"])) as _),
            (
                "Phone",
                Arc::new(StringArray::from(vec![Some(""), None])) as _,
            ),
        ]);
        // Insert: not sent, so defaults apply.
        assert_eq!(csv(&data, ""), "Id,Phone\n001A,\n001B,\n");
        // Update and upsert: both clear the field, as an empty string does over REST.
        assert_eq!(
            csv(&data, bulk::NULL_FIELD),
            "Id,Phone\n001A,#N/A\n001B,#N/A\n"
        );
        let rows = batch_rows(&data, true).unwrap();
        assert_eq!(rows[0]["Phone"], "");
        assert_eq!(rows[1]["Phone"], Value::Null);
        let rows = batch_rows(&data, false).unwrap();
        assert!(
            !rows[1].contains_key("Phone"),
            "nulls are left out on insert"
        );
    }

    #[test]
    fn numbers_dates_and_times_are_written_as_salesforce_reads_them() {
        let data = batch(vec![
            (
                "D64",
                Arc::new(Float64Array::from(vec![12.0, 1e20, 1e-7, -0.5])) as _,
            ),
            (
                "D32",
                Arc::new(Float32Array::from(vec![0.1, 3.0, -2.5e9, 7.25])) as _,
            ),
            (
                "Money",
                Arc::new(
                    Decimal128Array::from(vec![12_345, -5, 0, 100])
                        .with_precision_and_scale(10, 2)
                        .unwrap(),
                ) as _,
            ),
            (
                "Flag",
                Arc::new(BooleanArray::from(vec![true, false, true, false])) as _,
            ),
            (
                "Day",
                Arc::new(Date32Array::from(vec![19_782, -1, 0, -719_162])) as _,
            ),
            (
                "Day64",
                Arc::new(Date64Array::from(vec![
                    1_709_164_800_000,
                    -86_400_000,
                    0,
                    1_709_164_800_000 + 3_600_000,
                ])) as _,
            ),
            (
                "At",
                Arc::new(Time32SecondArray::from(vec![0, 68_400, 86_399, 1])) as _,
            ),
            (
                "AtMs",
                Arc::new(Time32MillisecondArray::from(vec![
                    68_400_250, 0, 1, 86_399_999,
                ])) as _,
            ),
            (
                "AtUs",
                Arc::new(Time64MicrosecondArray::from(vec![
                    68_400_250_999,
                    0,
                    1_000,
                    5,
                ])) as _,
            ),
            (
                "AtNs",
                Arc::new(Time64NanosecondArray::from(vec![
                    68_400_250_000_000,
                    0,
                    999_999_999,
                    86_399_999_999_999,
                ])) as _,
            ),
            (
                "Sec",
                Arc::new(TimestampSecondArray::from(vec![
                    0,
                    -1,
                    1_713_294_000,
                    951_782_400,
                ])) as _,
            ),
            (
                "Nano",
                Arc::new(
                    TimestampNanosecondArray::from(vec![1, -1, 1_713_294_000_123_456_789, 0])
                        .with_timezone("+02:00"),
                ) as _,
            ),
        ]);
        let text = csv(&data, "");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1],
            "12,0.1,123.45,true,2024-02-29,2024-02-29,00:00:00.000Z,19:00:00.250Z,\
             19:00:00.250Z,19:00:00.250Z,1970-01-01T00:00:00.000Z,1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            lines[2],
            "100000000000000000000,3,-0.05,false,1969-12-31,1969-12-31,19:00:00.000Z,\
             00:00:00.000Z,00:00:00.000Z,00:00:00.000Z,1969-12-31T23:59:59.000Z,\
             1969-12-31T23:59:59.999Z"
        );
        assert_eq!(
            lines[3],
            "0.0000001,-2500000000,0.00,true,1970-01-01,1970-01-01,23:59:59.000Z,\
             00:00:00.001Z,00:00:00.001Z,00:00:00.999Z,2024-04-16T19:00:00.000Z,\
             2024-04-16T19:00:00.123Z"
        );
        assert_eq!(
            lines[4],
            "-0.5,7.25,1.00,false,0001-01-01,2024-02-29,00:00:01.000Z,23:59:59.999Z,\
             00:00:00.000Z,23:59:59.999Z,2000-02-29T00:00:00.000Z,1970-01-01T00:00:00.000Z"
        );
        // sObject Collections get the same instants, dates and times, and JSON numbers.
        let rows = batch_rows(&data, false).unwrap();
        assert_eq!(rows[0]["At"], "00:00:00.000Z");
        assert_eq!(rows[0]["Day64"], "2024-02-29");
        assert_eq!(rows[2]["Nano"], "2024-04-16T19:00:00.123Z");
        assert_eq!(rows[1]["Sec"], "1969-12-31T23:59:59.000Z");
        assert_eq!(rows[0]["D64"], 12.0);
        assert_eq!(rows[0]["Flag"], true);
    }

    #[test]
    fn non_finite_numbers_are_refused_naming_field_and_record() {
        let ok = batch(vec![(
            "AnnualRevenue",
            Arc::new(Float64Array::from(vec![Some(1.0), None, Some(-0.0)])) as _,
        )]);
        assert!(check_numbers(&ok, "Account").is_ok());
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let data = batch(vec![(
                "AnnualRevenue",
                Arc::new(Float64Array::from(vec![Some(1.0), None, Some(bad)])) as _,
            )]);
            let error = check_numbers(&data, "Account").unwrap_err();
            assert_eq!(
                error.kind,
                sluice_connector_api::ConnectorErrorKind::BadData
            );
            assert!(
                error.message.contains("field AnnualRevenue of record 2"),
                "{error}"
            );
        }
        let data = batch(vec![(
            "Ratio__c",
            Arc::new(Float32Array::from(vec![f32::NAN])) as _,
        )]);
        assert!(check_numbers(&data, "Account").is_err());
    }

    #[test]
    fn uploads_are_spooled_to_a_file_that_goes_away() {
        let mut upload = CsvUpload::new(vec!["Name".into(), "Odd, header".into()]).unwrap();
        assert_eq!(upload.bytes, "Name,\"Odd, header\"\n".len() as u64);
        assert!(upload.fits(b"x,y\n", 24));
        assert!(!upload.fits(b"x,y\n", 22));
        upload.push(b"x,y\n").unwrap();
        upload.finish().unwrap();
        let path = upload.path.to_path_buf();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "Name,\"Odd, header\"\nx,y\n"
        );
        drop(upload);
        assert!(!path.exists(), "the spool file is removed with the upload");
    }

    #[test]
    fn list_columns_of_every_kind_are_joined_for_multi_select_picklists() {
        use arrow_array::builder::{
            FixedSizeListBuilder, Int64Builder, LargeListBuilder, ListBuilder, StringBuilder,
        };
        let kinds: HashMap<String, String> = [
            ("regions__c", "multipicklist"),
            ("codes__c", "multipicklist"),
            ("pairs__c", "multipicklist"),
            ("name", "string"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let mut large = LargeListBuilder::new(StringBuilder::new());
        for row in [
            vec![Some("a"), Some("b")],
            vec![],
            vec![Some("日本")],
            vec![None],
        ] {
            for value in row {
                large.values().append_option(value);
            }
            large.append(true);
        }
        let mut fixed = FixedSizeListBuilder::new(Int64Builder::new(), 2);
        for (a, b, valid) in [(1, 2, true), (3, 4, true), (0, 0, false), (5, -6, true)] {
            fixed.values().append_value(a);
            fixed.values().append_value(b);
            fixed.append(valid);
        }
        let data = batch(vec![
            ("Regions__c", Arc::new(large.finish()) as _),
            ("Pairs__c", Arc::new(fixed.finish()) as _),
            (
                "Name",
                Arc::new(StringArray::from(vec!["w", "x", "y", "z"])) as _,
            ),
        ]);
        // A slice: offsets into the shared values must be honoured.
        let joined = join_list_columns(data.slice(1, 3), &kinds, "Account").unwrap();
        assert_eq!(joined.schema().field(0).data_type(), &DataType::Utf8);
        assert_eq!(joined.schema().field(2).name(), "Name");
        let text = |c: usize| -> Vec<Option<String>> {
            let column = joined
                .column(c)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            column.iter().map(|v| v.map(str::to_owned)).collect()
        };
        assert_eq!(text(0), [None, Some("日本".into()), None]);
        assert_eq!(text(1), [Some("3;4".into()), None, Some("5;-6".into())]);
        // The joined text goes to either API as any text does.
        let rows = batch_rows(&joined, true).unwrap();
        assert_eq!(rows[2]["Pairs__c"], "5;-6");
        assert_eq!(rows[0]["Regions__c"], Value::Null);
        assert_eq!(
            csv(&joined, bulk::NULL_FIELD).lines().nth(2),
            Some("日本,#N/A,y")
        );

        // Lists of lists are refused, naming the field.
        let mut nested = ListBuilder::new(ListBuilder::new(StringBuilder::new()));
        nested.values().values().append_value("a");
        nested.values().append(true);
        nested.append(true);
        let data = batch(vec![("Codes__c", Arc::new(nested.finish()) as _)]);
        let error = join_list_columns(data, &kinds, "Account").unwrap_err();
        assert!(
            error.message.contains("field Codes__c holds lists of List"),
            "{error}"
        );
        // Batches without lists are not touched.
        let plain = batch(vec![(
            "Name",
            Arc::new(StringArray::from(vec!["a;b"])) as _,
        )]);
        assert_eq!(
            join_list_columns(plain.clone(), &kinds, "Account").unwrap(),
            plain
        );
    }
}
