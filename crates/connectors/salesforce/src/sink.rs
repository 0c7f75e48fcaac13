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
//! - **Bulk API 2.0**: the records are written as CSV into an upload buffer; when it reaches
//!   [`BulkSettings::upload_max_bytes`] (or the schema changes, or the run commits) it becomes
//!   one ingest job ([`bulk::run_ingest_job`]), and its `failedResults` are read back.
//!
//! Either way a rejected record is counted as a put failure and handed, with Salesforce's error
//! code and message, to the run's [`RejectedRecordSink`] in chunks; with
//! `failOnFirstDestinationError` the first one is handed over and the run stops. Salesforce
//! has no transaction spanning calls or jobs, so records accepted before a failure stay
//! written; `commit` only sends what is still buffered, and `abort` drops the buffer.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, SchemaRef, TimeUnit};
use async_trait::async_trait;
use bytes::Bytes;
use reqwest::Method;
use serde_json::{Map, Value, json};
use sluice_api_model as model;
use sluice_connector_api::{
    ConnectorError, DestinationWriter, RejectedRecord, RejectedRecordSink, WriteSummary,
};

use crate::bulk::{self, BulkSettings, FailedResults};
use crate::client::Session;
use crate::config::{TransferApi, transfer_api};
use crate::source::encode;

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
        }
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
        self.rows.extend(batch_rows(batch)?);
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
            if self.settings.fail_on_first_error {
                return self.stop_at_first(rejected).await;
            }
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
        let delete = matches!(self.settings.operation, model::WriteOperationType::Delete);
        // Rendered up front: the formatters cannot be held across the job calls below.
        let (header, lines, ends) = {
            let encoder =
                RowEncoder::new(batch, delete.then_some(self.settings.id_field.as_str()))?;
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
        let mut start = 0;
        for end in ends {
            let row = &lines[start..end];
            start = end;
            let max_bytes = self.settings.bulk.upload_max_bytes;
            let upload = self
                .upload
                .get_or_insert_with(|| CsvUpload::new(header.clone()));
            if !upload.fits(row, max_bytes) {
                if upload.rows == 0 {
                    return Err(ConnectorError::bad_data(format!(
                        "a record for Salesforce {} is {} bytes of CSV, more than the \
                         {max_bytes} bytes one Bulk API 2.0 upload can take",
                        self.settings.object,
                        row.len(),
                    )));
                }
                self.run_job().await?;
            }
            self.upload
                .get_or_insert_with(|| CsvUpload::new(header.clone()))
                .push(row);
        }
        Ok(())
    }

    /// Sends the buffered CSV as one ingest job and maps its results back.
    async fn run_job(&mut self) -> Result<(), ConnectorError> {
        let Some(upload) = self.upload.take().filter(|u| u.rows > 0) else {
            return Ok(());
        };
        let settings = &self.settings;
        let operation = match settings.operation {
            model::WriteOperationType::Insert => "insert",
            model::WriteOperationType::Upsert => "upsert",
            model::WriteOperationType::Update => "update",
            model::WriteOperationType::Delete => "delete",
        };
        let external_id = (settings.operation == model::WriteOperationType::Upsert)
            .then_some(settings.id_field.as_str());
        let rows = upload.rows;
        let size = upload.data.len() as u64;
        let info = bulk::run_ingest_job(
            &self.session,
            &settings.object,
            operation,
            external_id,
            Bytes::from(upload.data),
            rows,
            &settings.bulk,
        )
        .await?;
        self.jobs += 1;
        self.bytes += size;
        self.written += info.processed - info.failed.min(info.processed);
        if info.failed == 0 {
            return Ok(());
        }
        let body = bulk::failed_results(&self.session, &settings.object, &info.id).await?;
        let mut results = FailedResults::new(&body)?;
        let mut handed = 0u64;
        loop {
            let limit = if self.settings.fail_on_first_error {
                1
            } else {
                REJECTED_CHUNK
            };
            let chunk = results.next_chunk(limit)?;
            if chunk.is_empty() {
                break;
            }
            if self.settings.fail_on_first_error {
                self.failed += 1;
                return self.stop_at_first(chunk).await;
            }
            handed += chunk.len() as u64;
            self.rejected.put(chunk).await?;
        }
        if handed != info.failed {
            return Err(ConnectorError::unavailable(format!(
                "Salesforce Bulk API 2.0 job {} on {} reported {} failed records but its failed \
                 results hold {handed}",
                info.id, self.settings.object, info.failed
            )));
        }
        self.failed += info.failed;
        tracing::warn!(object = %self.settings.object, job = %info.id, failed = info.failed, "Salesforce rejected records of a Bulk API 2.0 job");
        Ok(())
    }
}

/// The CSV of one ingest job.
#[derive(Debug)]
struct CsvUpload {
    header: Vec<String>,
    data: Vec<u8>,
    rows: u64,
}

impl CsvUpload {
    fn new(header: Vec<String>) -> Self {
        let mut data = Vec::with_capacity(64 * 1024);
        for (i, name) in header.iter().enumerate() {
            if i > 0 {
                data.push(b',');
            }
            push_field(&mut data, name);
        }
        data.push(b'\n');
        Self {
            header,
            data,
            rows: 0,
        }
    }

    fn fits(&self, row: &[u8], max_bytes: usize) -> bool {
        self.data.len() + row.len() <= max_bytes
    }

    fn push(&mut self, row: &[u8]) {
        self.data.extend_from_slice(row);
        self.rows += 1;
    }
}

/// Writes one CSV field, quoted when it holds a separator, a quote or a line break.
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

/// How one column is rendered.
enum Render<'a> {
    /// Instants as `2024-04-16T19:00:00.250Z` whatever the zone attached for display (zone
    /// names need a time zone database Sluice does not carry).
    Timestamp(&'a dyn Array, TimeUnit),
    Other(ArrayFormatter<'a>),
}

/// Renders the rows of a batch as Bulk API 2.0 CSV lines.
struct RowEncoder<'a> {
    header: Vec<String>,
    columns: Vec<Render<'a>>,
}

impl<'a> RowEncoder<'a> {
    /// Every column, or only `id_column` (written as `Id`) for deletes. Nulls become empty
    /// fields, which Salesforce leaves alone, as the Collections path leaves them out.
    fn new(batch: &'a RecordBatch, id_column: Option<&str>) -> Result<Self, ConnectorError> {
        static OPTIONS: std::sync::LazyLock<FormatOptions<'static>> =
            std::sync::LazyLock::new(|| FormatOptions::new().with_null(""));
        let schema: SchemaRef = batch.schema();
        let mut header = Vec::new();
        let mut columns = Vec::new();
        for (i, field) in schema.fields().iter().enumerate() {
            if let Some(id) = id_column
                && field.name() != id
            {
                continue;
            }
            let array = batch.column(i).as_ref();
            let render = match field.data_type() {
                DataType::Timestamp(unit, _) => Render::Timestamp(array, *unit),
                _ => Render::Other(ArrayFormatter::try_new(array, &OPTIONS).map_err(|error| {
                    ConnectorError::bad_data(format!(
                        "field {} cannot be written to Salesforce as text: {error}",
                        field.name()
                    ))
                })?),
            };
            header.push(if id_column.is_some() {
                "Id".to_owned()
            } else {
                field.name().clone()
            });
            columns.push(render);
        }
        Ok(Self { header, columns })
    }

    fn encode(&self, row: usize, out: &mut Vec<u8>) -> Result<(), ConnectorError> {
        let mut text = String::new();
        for (i, column) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            text.clear();
            let written = match column {
                Render::Timestamp(array, unit) => {
                    if array.is_valid(row) {
                        write_instant(&mut text, *array, *unit, row)
                    } else {
                        Ok(())
                    }
                }
                Render::Other(formatter) => write!(text, "{}", formatter.value(row)),
            };
            written.map_err(|error| {
                ConnectorError::bad_data(format!(
                    "field {} of record {row} cannot be written as text: {error}",
                    self.header[i]
                ))
            })?;
            push_field(out, &text);
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
        self.check_ids(&batch)?;
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
        BooleanArray, Float64Array, Int64Array, StringArray, TimestampMillisecondArray,
    };
    use arrow_schema::{Field, Schema, TimeUnit};

    use super::*;

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
        let encoder = RowEncoder::new(&batch, None).unwrap();
        let mut upload = CsvUpload::new(encoder.header.clone());
        let mut row = Vec::new();
        for i in 0..2 {
            row.clear();
            encoder.encode(i, &mut row).unwrap();
            upload.push(&row);
        }
        assert_eq!(
            String::from_utf8(upload.data).unwrap(),
            "Name,NumberOfEmployees,AnnualRevenue,IsActive__c,Seen__c,LastModifiedDate\n\
             \"Acme, \"\"Inc\"\"\nHQ\",12,1.5,true,2024-04-16T19:00:00.250Z,\n\
             ,,,,,1969-12-31T23:59:59.999Z\n"
        );
        assert_eq!(upload.rows, 2);
        // Deletes send only the id column, named Id.
        let ids = RowEncoder::new(&batch, Some("Name")).unwrap();
        assert_eq!(ids.header, ["Id"]);
    }
}
