//! Bulk API 2.0, after Salesforce's documented wire format (`/services/data/vXX.X/jobs/...`).
//!
//! **Query jobs** (`POST .../jobs/query` with `{operation: query|queryAll, query, contentType,
//! columnDelimiter, lineEnding}`) run the SOQL subset of [`crate::soql`] when they are created
//! and remember the positions of the matching records, not copies of them. `GET
//! .../jobs/query/{id}` reports `UploadComplete`, then `InProgress` for as many polls as
//! [`crate::FakeSalesforce::set_bulk_processing_polls`] says, then `JobComplete` (or `Failed`).
//! `GET .../results?locator=&maxRecords=` answers one page of CSV with `Sforce-Locator` (the
//! string `null` on the last page) and `Sforce-NumberOfRecords`; the page is rendered while it
//! is sent, a thousand rows at a time, so a million-record result never sits in memory as text.
//! Values look the way Bulk API 2.0 writes them: every field quoted, nulls empty, date-times
//! `2024-04-16T19:00:00.000Z`, doubles as Java prints them (`100.0`, `1.5E7`). Compound fields
//! (`address`, `location`) fail the job, as Salesforce does.
//!
//! **Ingest jobs** (`POST .../jobs/ingest` with `{object, operation: insert|upsert|update|
//! delete|hardDelete, externalIdFieldName, contentType, columnDelimiter, lineEnding}`) take one
//! CSV upload (`PUT .../batches`, `201`; a second upload is refused as Salesforce refuses it),
//! are processed when closed (`PATCH {state: UploadComplete}`), and report per-record results
//! under `successfulResults/` (`sf__Id`, `sf__Created`, original columns), `failedResults/`
//! (`sf__Id`, `sf__Error` as `CODE:message:fields --`, original columns) and
//! `unprocessedrecords/`. An empty field leaves a value alone and `#N/A` sets it to null.
//! [`crate::FakeSalesforce::interrupt_next_ingest_job`] makes a job stop after some records,
//! leaving the rest in `unprocessedrecords/`, and end `JobComplete`, `Failed` or `Aborted`.
//! Records go through the same validation as the REST API; a header naming an unknown field
//! fails the whole job (`InvalidBatch : Field name not found : X`), as in Salesforce.
//!
//! Either kind can be aborted (`PATCH {state: Aborted}`), deleted, and listed (`GET
//! .../jobs/query`, `GET .../jobs/ingest`). Errors are Salesforce's JSON array
//! `[{"errorCode", "message"}]`. Every call goes through the same authentication, fault
//! injection and `Sforce-Limit-Info` accounting as the REST API.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt::Write as _;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::{
    API_VERSION, Inner, RecordError, Shared, check_query_fields, delete_record,
    duplicate_external_id, error_body, guard, insert_record, lock, parse_body, repeated_keys,
    select_rows, sf_time, soql, update_record, upsert_record, with_limits,
};

/// Records in a query results page when the request names no `maxRecords`.
pub const DEFAULT_MAX_RECORDS: usize = 100_000;

/// The largest upload accepted: Salesforce allows 150 MB of base64-encoded content, which is
/// 112.5 MB of CSV.
pub const MAX_UPLOAD_BYTES: usize = 150_000_000 / 4 * 3;

/// Rows rendered per chunk of a results page; the state lock is held for one chunk at a time.
const RENDER_CHUNK_ROWS: usize = 1_000;

const CREATED_BY: &str = "005000000000001AAA";

/// Lifecycle of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobState {
    Open,
    UploadComplete,
    InProgress,
    JobComplete,
    Failed,
    Aborted,
}

impl JobState {
    fn as_str(self) -> &'static str {
        match self {
            JobState::Open => "Open",
            JobState::UploadComplete => "UploadComplete",
            JobState::InProgress => "InProgress",
            JobState::JobComplete => "JobComplete",
            JobState::Failed => "Failed",
            JobState::Aborted => "Aborted",
        }
    }

    fn is_final(self) -> bool {
        matches!(
            self,
            JobState::JobComplete | JobState::Failed | JobState::Aborted
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Query,
    Ingest,
}

/// A job's `columnDelimiter`.
#[derive(Debug, Clone, Copy)]
struct Delimiter {
    name: &'static str,
    char: char,
}

const DELIMITERS: [Delimiter; 6] = [
    Delimiter {
        name: "COMMA",
        char: ',',
    },
    Delimiter {
        name: "TAB",
        char: '\t',
    },
    Delimiter {
        name: "PIPE",
        char: '|',
    },
    Delimiter {
        name: "SEMICOLON",
        char: ';',
    },
    Delimiter {
        name: "CARET",
        char: '^',
    },
    Delimiter {
        name: "BACKQUOTE",
        char: '`',
    },
];

/// How an ingest job interrupted by [`crate::FakeSalesforce::interrupt_next_ingest_job`]
/// ends once it has processed its first records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterruptedEnd {
    /// `JobComplete`, though the later records were never processed.
    Complete,
    /// `Failed`, with this `errorMessage`.
    Failed(String),
    /// `Aborted`, as when someone aborts the job while it runs.
    Aborted,
}

/// One ingested record's outcome.
#[derive(Debug, Clone)]
enum Outcome {
    Success { id: String, created: bool },
    Failure { id: String, error: String },
}

/// A Bulk API 2.0 job.
#[derive(Debug)]
pub(crate) struct Job {
    id: String,
    kind: Kind,
    operation: String,
    object: String,
    state: JobState,
    created: String,
    modified: String,
    delimiter: Delimiter,
    crlf: bool,
    /// Polls still answered `InProgress`.
    polls_left: u32,
    /// Set when the job is meant to end `Failed` with this message.
    fail_with: Option<String>,
    /// Ingest: process only this many records, then end this way.
    interrupt: Option<(usize, InterruptedEnd)>,
    error_message: Option<String>,
    /// Query: result columns (field name, Salesforce type) and the matching record positions.
    columns: Vec<(String, String)>,
    rows: Vec<usize>,
    /// Ingest.
    external_id: Option<String>,
    data: Option<String>,
    header: Vec<String>,
    results: Vec<(Outcome, Vec<String>)>,
    unprocessed: Vec<Vec<String>>,
}

impl Job {
    /// The job info, as `GET .../jobs/{query|ingest}/{id}` answers it.
    pub(crate) fn info(&self) -> Value {
        let version: f64 = API_VERSION.parse().unwrap_or(58.0);
        let mut info = json!({
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": CREATED_BY,
            "createdDate": self.created,
            "systemModstamp": self.modified,
            "state": self.state.as_str(),
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": version,
            "lineEnding": if self.crlf { "CRLF" } else { "LF" },
            "columnDelimiter": self.delimiter.name,
            "retries": 0,
            "totalProcessingTime": 0,
        });
        match self.kind {
            Kind::Query => {
                let processed = if self.state == JobState::JobComplete {
                    self.rows.len()
                } else {
                    0
                };
                info["jobType"] = json!("V2Query");
                info["numberRecordsProcessed"] = json!(processed);
                info["isPkChunkingSupported"] = json!(true);
            }
            Kind::Ingest => {
                let failed = self
                    .results
                    .iter()
                    .filter(|(o, _)| matches!(o, Outcome::Failure { .. }))
                    .count();
                info["jobType"] = json!("V2Ingest");
                info["contentUrl"] = json!(format!(
                    "services/data/v{API_VERSION}/jobs/ingest/{}/batches",
                    self.id
                ));
                if let Some(field) = &self.external_id {
                    info["externalIdFieldName"] = json!(field);
                }
                info["numberRecordsProcessed"] = json!(self.results.len());
                info["numberRecordsFailed"] = json!(failed);
                info["apiActiveProcessingTime"] = json!(0);
                info["apexProcessingTime"] = json!(0);
            }
        }
        if let Some(message) = &self.error_message {
            info["errorMessage"] = json!(message);
        }
        info
    }

    /// One status poll: a closed job moves towards completion.
    fn advance(&mut self, now: String) {
        if !matches!(self.state, JobState::UploadComplete | JobState::InProgress) {
            return;
        }
        if self.polls_left > 0 {
            self.polls_left -= 1;
            self.state = JobState::InProgress;
        } else if let Some(message) = self.fail_with.take() {
            self.state = JobState::Failed;
            self.error_message = Some(message);
        } else if let Some((_, end)) = self.interrupt.take() {
            self.state = match end {
                InterruptedEnd::Complete => JobState::JobComplete,
                InterruptedEnd::Failed(message) => {
                    self.error_message = Some(message);
                    JobState::Failed
                }
                InterruptedEnd::Aborted => JobState::Aborted,
            };
        } else {
            self.state = JobState::JobComplete;
        }
        self.modified = now;
    }

    fn line_end(&self) -> &'static str {
        if self.crlf { "\r\n" } else { "\n" }
    }
}

/// Every Bulk API 2.0 job of the fake, and its knobs.
#[derive(Debug, Default)]
pub(crate) struct BulkState {
    /// By id; ids grow with creation, so this is creation order.
    jobs: BTreeMap<String, Job>,
    next_job: u64,
    /// Polls a job answers `InProgress` before completing.
    pub(crate) processing_polls: u32,
    /// Messages of the next jobs to fail.
    pub(crate) fail_next: VecDeque<String>,
    /// Interruptions of the next ingest jobs: records processed, and how the job ends.
    interrupt_next: VecDeque<(usize, InterruptedEnd)>,
}

impl BulkState {
    /// Every job, oldest first.
    pub(crate) fn jobs(&self) -> impl Iterator<Item = &Job> {
        self.jobs.values()
    }
}

/// The Bulk API 2.0 routes (the caller adds the shared state).
pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/services/data/{version}/jobs/query",
            get(list_jobs).post(create_query_job),
        )
        .route(
            "/services/data/{version}/jobs/query/{id}",
            get(job_info).patch(patch_job).delete(delete_job),
        )
        .route(
            "/services/data/{version}/jobs/query/{id}/results",
            get(query_results),
        )
        .route(
            "/services/data/{version}/jobs/ingest",
            get(list_jobs).post(create_ingest_job),
        )
        .route(
            "/services/data/{version}/jobs/ingest/{id}",
            get(job_info).patch(patch_job).delete(delete_job),
        )
        .route(
            "/services/data/{version}/jobs/ingest/{id}/batches",
            // Above the limit so oversized uploads get Salesforce's error, not a bare 413.
            axum::routing::put(upload).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES + (1 << 20))),
        )
        .route(
            "/services/data/{version}/jobs/ingest/{id}/successfulResults",
            get(successful_results),
        )
        .route(
            "/services/data/{version}/jobs/ingest/{id}/failedResults",
            get(failed_results),
        )
        .route(
            "/services/data/{version}/jobs/ingest/{id}/unprocessedrecords",
            get(unprocessed_records),
        )
        // simple-salesforce spells it in camel case.
        .route(
            "/services/data/{version}/jobs/ingest/{id}/unprocessedRecords",
            get(unprocessed_records),
        )
}

/// Authenticates, serves faults and adds `Sforce-Limit-Info`, like the REST handlers.
fn api(inner: &Shared, headers: &HeaderMap, body: impl FnOnce() -> Response) -> Response {
    let response = match guard(inner, headers) {
        Err(response) => response,
        Ok(()) => body(),
    };
    with_limits(inner, response)
}

fn bad_request(code: &str, message: &str) -> Response {
    error_body(StatusCode::BAD_REQUEST, code, message)
}

fn no_such_job() -> Response {
    error_body(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "The requested resource does not exist",
    )
}

fn kind_of(uri: &Uri) -> Kind {
    if uri.path().contains("/jobs/query") {
        Kind::Query
    } else {
        Kind::Ingest
    }
}

/// Reads `columnDelimiter` and `lineEnding` of a job request.
fn csv_options(request: &Value) -> Result<(Delimiter, bool), Response> {
    if let Some(content) = request.get("contentType").and_then(Value::as_str)
        && content != "CSV"
    {
        return Err(bad_request(
            "INVALIDJOB",
            &format!("Invalid contentType: {content}; Bulk API 2.0 jobs use CSV"),
        ));
    }
    let name = request
        .get("columnDelimiter")
        .and_then(Value::as_str)
        .unwrap_or("COMMA");
    let delimiter = DELIMITERS
        .iter()
        .find(|d| d.name == name)
        .copied()
        .ok_or_else(|| bad_request("INVALIDJOB", &format!("Invalid columnDelimiter: {name}")))?;
    let crlf = match request
        .get("lineEnding")
        .and_then(Value::as_str)
        .unwrap_or("LF")
    {
        "LF" => false,
        "CRLF" => true,
        other => {
            return Err(bad_request(
                "INVALIDJOB",
                &format!("Invalid lineEnding: {other}"),
            ));
        }
    };
    Ok((delimiter, crlf))
}

fn new_job(state: &mut Inner, kind: Kind, operation: &str, object: &str) -> Job {
    state.bulk.next_job += 1;
    let now = sf_time(state.now());
    Job {
        id: format!("750{:012}AAA", state.bulk.next_job),
        kind,
        operation: operation.to_owned(),
        object: object.to_owned(),
        state: JobState::Open,
        created: now.clone(),
        modified: now,
        delimiter: DELIMITERS[0],
        crlf: false,
        polls_left: state.bulk.processing_polls,
        fail_with: state.bulk.fail_next.pop_front(),
        interrupt: None,
        error_message: None,
        columns: Vec::new(),
        rows: Vec::new(),
        external_id: None,
        data: None,
        header: Vec::new(),
        results: Vec::new(),
        unprocessed: Vec::new(),
    }
}

async fn create_query_job(
    State(inner): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api(&inner, &headers, || {
        let request = match parse_body(&body) {
            Ok(value) => value,
            Err(response) => return response,
        };
        let operation = request
            .get("operation")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !matches!(operation, "query" | "queryAll") {
            return bad_request(
                "INVALIDJOB",
                &format!("Invalid operation for a query job: '{operation}'"),
            );
        }
        let Some(text) = request.get("query").and_then(Value::as_str) else {
            return bad_request("INVALIDJOB", "query is required for a query job");
        };
        let (delimiter, crlf) = match csv_options(&request) {
            Ok(options) => options,
            Err(response) => return response,
        };
        let query = match soql::parse(text) {
            Ok(query) => query,
            Err(error) => return bad_request("MALFORMED_QUERY", &error.0),
        };
        if query.count {
            return bad_request(
                "INVALIDJOB",
                "Aggregate queries are not supported by Bulk API 2.0 query jobs",
            );
        }
        let mut state = lock(&inner);
        let Some(object) = state.objects.get(&query.object) else {
            return bad_request(
                "INVALID_TYPE",
                &format!("sObject type '{}' is not supported.", query.object),
            );
        };
        if let Err(response) = check_query_fields(object, &query) {
            return response;
        }
        let columns: Vec<(String, String)> = query
            .fields
            .iter()
            .filter_map(|f| object.field(f))
            .map(|f| (f.name.clone(), f.kind.clone()))
            .collect();
        let compound = columns
            .iter()
            .any(|(_, kind)| matches!(kind.as_str(), "address" | "location"));
        let rows = select_rows(object, &query, operation == "queryAll");
        let object_name = object.name.clone();
        let mut job = new_job(&mut state, Kind::Query, operation, &object_name);
        job.state = JobState::UploadComplete;
        job.delimiter = delimiter;
        job.crlf = crlf;
        job.columns = columns;
        job.rows = rows;
        if compound && job.fail_with.is_none() {
            job.fail_with =
                Some("FeatureNotEnabled : Compound data not supported in Bulk Query".to_owned());
        }
        let info = job.info();
        state.stats.bulk_query_jobs += 1;
        state.bulk.jobs.insert(job.id.clone(), job);
        axum::Json(info).into_response()
    })
}

async fn create_ingest_job(
    State(inner): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api(&inner, &headers, || {
        let request = match parse_body(&body) {
            Ok(value) => value,
            Err(response) => return response,
        };
        let operation = request
            .get("operation")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !matches!(
            operation,
            "insert" | "upsert" | "update" | "delete" | "hardDelete"
        ) {
            return bad_request(
                "INVALIDJOB",
                &format!("Invalid operation for an ingest job: '{operation}'"),
            );
        }
        let Some(object_name) = request.get("object").and_then(Value::as_str) else {
            return bad_request("INVALIDJOB", "object is required for an ingest job");
        };
        let (delimiter, crlf) = match csv_options(&request) {
            Ok(options) => options,
            Err(response) => return response,
        };
        let mut state = lock(&inner);
        let Some(object) = state.objects.get(object_name) else {
            return bad_request(
                "INVALIDJOB",
                &format!("Entity '{object_name}' is not supported by the Bulk API."),
            );
        };
        let external_id = request
            .get("externalIdFieldName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let external_id = match (operation, external_id) {
            ("upsert", None) => {
                return bad_request(
                    "INVALIDJOB",
                    "External ID was blank for Account. An External ID must be specified for \
                     upsert.",
                );
            }
            ("upsert", Some(name)) => match object.field(name) {
                Some(field) if field.external_id || field.kind == "id" => Some(field.name.clone()),
                _ => {
                    return bad_request(
                        "INVALIDJOB",
                        &format!(
                            "The field {name} is not an External ID or Id field of {object_name}"
                        ),
                    );
                }
            },
            _ => None,
        };
        let object_name = object.name.clone();
        let mut job = new_job(&mut state, Kind::Ingest, operation, &object_name);
        job.delimiter = delimiter;
        job.crlf = crlf;
        job.external_id = external_id;
        job.interrupt = state.bulk.interrupt_next.pop_front();
        let info = job.info();
        state.stats.bulk_ingest_jobs += 1;
        state.bulk.jobs.insert(job.id.clone(), job);
        axum::Json(info).into_response()
    })
}

async fn list_jobs(State(inner): State<Shared>, headers: HeaderMap, uri: Uri) -> Response {
    let kind = kind_of(&uri);
    api(&inner, &headers, || {
        let state = lock(&inner);
        let records: Vec<Value> = state
            .bulk
            .jobs()
            .filter(|j| j.kind == kind)
            .map(Job::info)
            .collect();
        axum::Json(json!({"done": true, "records": records, "nextRecordsUrl": null}))
            .into_response()
    })
}

async fn job_info(
    State(inner): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let kind = kind_of(&uri);
    api(&inner, &headers, || {
        let mut state = lock(&inner);
        let now = sf_time(state.now());
        match state.bulk.jobs.get_mut(&id).filter(|j| j.kind == kind) {
            Some(job) => {
                job.advance(now);
                axum::Json(job.info()).into_response()
            }
            None => no_such_job(),
        }
    })
}

async fn patch_job(
    State(inner): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let kind = kind_of(&uri);
    api(&inner, &headers, || {
        let request = match parse_body(&body) {
            Ok(value) => value,
            Err(response) => return response,
        };
        let wanted = request
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut state = lock(&inner);
        let now = sf_time(state.now());
        let Some(job) = state.bulk.jobs.get_mut(&id).filter(|j| j.kind == kind) else {
            return no_such_job();
        };
        match (kind, wanted) {
            (_, "Aborted") if !job.state.is_final() => {
                job.state = JobState::Aborted;
                job.modified = now;
            }
            (Kind::Ingest, "UploadComplete") if job.state == JobState::Open => {
                job.state = JobState::UploadComplete;
                job.modified = now;
                close_ingest(&mut state, &id);
            }
            _ => {
                return bad_request(
                    "INVALIDJOBSTATE",
                    &format!(
                        "Cannot change the state of job {id} from {} to '{wanted}'",
                        job.state.as_str()
                    ),
                );
            }
        }
        match state.bulk.jobs.get(&id) {
            Some(job) => axum::Json(job.info()).into_response(),
            None => no_such_job(),
        }
    })
}

async fn delete_job(
    State(inner): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let kind = kind_of(&uri);
    api(&inner, &headers, || {
        let mut state = lock(&inner);
        match state.bulk.jobs.get(&id).filter(|j| j.kind == kind) {
            None => no_such_job(),
            Some(job) if job.state == JobState::InProgress => bad_request(
                "INVALIDJOBSTATE",
                &format!("Job {id} is in progress and cannot be deleted"),
            ),
            Some(_) => {
                state.bulk.jobs.remove(&id);
                StatusCode::NO_CONTENT.into_response()
            }
        }
    })
}

fn encode_locator(offset: usize) -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(offset.to_string())
}

fn decode_locator(locator: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(locator)
        .ok()?;
    std::str::from_utf8(&bytes).ok()?.parse().ok()
}

async fn query_results(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Path((_, id)): Path<(String, String)>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    api(&inner, &headers, || {
        let state = lock(&inner);
        let Some(job) = state.bulk.jobs.get(&id).filter(|j| j.kind == Kind::Query) else {
            return no_such_job();
        };
        if job.state != JobState::JobComplete {
            return error_body(
                StatusCode::PRECONDITION_FAILED,
                "JOB_NOT_COMPLETE",
                &format!(
                    "can only download query results of successfully completed bulk job with \
                     status: JOB_COMPLETE. Current status: {}",
                    job.state.as_str()
                ),
            );
        }
        let offset = match params.get("locator").filter(|l| !l.is_empty()) {
            None => 0,
            Some(locator) => match decode_locator(locator).filter(|&o| o <= job.rows.len()) {
                Some(offset) => offset,
                None => {
                    return bad_request(
                        "INVALID_LOCATOR",
                        &format!("Invalid locator value: {locator}"),
                    );
                }
            },
        };
        let max_records = match params.get("maxRecords") {
            None => DEFAULT_MAX_RECORDS,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return bad_request(
                        "INVALIDPARAMETER",
                        &format!("Invalid maxRecords value: {text}"),
                    );
                }
            },
        };
        let end = offset.saturating_add(max_records).min(job.rows.len());
        let locator = if end < job.rows.len() {
            encode_locator(end)
        } else {
            "null".to_owned()
        };
        let mut header_line = String::new();
        for (i, (name, _)) in job.columns.iter().enumerate() {
            if i > 0 {
                header_line.push(job.delimiter.char);
            }
            push_quoted(&mut header_line, name);
        }
        header_line.push_str(job.line_end());
        let cursor = PageCursor {
            inner: inner.clone(),
            job: id.clone(),
            next: offset,
            end,
            header: Some(header_line),
        };
        let stream = futures::stream::unfold(cursor, |mut cursor| async move {
            let chunk = cursor.render_chunk()?;
            Some((
                Ok::<_, std::convert::Infallible>(Bytes::from(chunk)),
                cursor,
            ))
        });
        let mut response = Body::from_stream(stream).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/csv"),
        );
        if let Ok(value) = header::HeaderValue::from_str(&locator) {
            headers.insert("sforce-locator", value);
        }
        headers.insert(
            "sforce-numberofrecords",
            header::HeaderValue::from(end - offset),
        );
        response
    })
}

/// Where a streamed results page is.
struct PageCursor {
    inner: Shared,
    job: String,
    next: usize,
    end: usize,
    /// The header line, until it is sent.
    header: Option<String>,
}

impl PageCursor {
    /// The next piece of the page: the header and up to [`RENDER_CHUNK_ROWS`] rows. `None` at
    /// the end, or when the job disappeared meanwhile (the body is then cut short).
    fn render_chunk(&mut self) -> Option<String> {
        let header = self.header.take();
        if self.next >= self.end {
            return header;
        }
        let state = lock(&self.inner);
        let job = state.bulk.jobs.get(&self.job)?;
        let object = state.objects.get(&job.object)?;
        let stop = (self.next + RENDER_CHUNK_ROWS).min(self.end);
        let mut out = header.unwrap_or_default();
        out.reserve((stop - self.next) * 32 * job.columns.len().max(1));
        for &position in job.rows.get(self.next..stop)? {
            let record = object.records.get(position)?;
            for (i, (name, kind)) in job.columns.iter().enumerate() {
                if i > 0 {
                    out.push(job.delimiter.char);
                }
                render_value(&mut out, record.get(name).unwrap_or(&Value::Null), kind);
            }
            out.push_str(job.line_end());
        }
        self.next = stop;
        Some(out)
    }
}

/// `"text"` with inner quotes doubled.
fn push_quoted(out: &mut String, text: &str) {
    out.push('"');
    if text.contains('"') {
        out.push_str(&text.replace('"', "\"\""));
    } else {
        out.push_str(text);
    }
    out.push('"');
}

/// A value as Bulk API 2.0 writes it into query results.
fn render_value(out: &mut String, value: &Value, kind: &str) {
    match value {
        Value::Null => out.push_str("\"\""),
        Value::Bool(b) => push_quoted(out, if *b { "true" } else { "false" }),
        Value::Number(n) => {
            out.push('"');
            match n.as_f64() {
                Some(f) if matches!(kind, "double" | "currency" | "percent") => {
                    java_double(out, f);
                }
                _ => {
                    let _ = write!(out, "{n}");
                }
            }
            out.push('"');
        }
        // Stored as the REST API writes it (`+0000`); Bulk API 2.0 writes `Z`.
        Value::String(s) if kind == "datetime" => match s.strip_suffix("+0000") {
            Some(stem) => {
                out.push('"');
                out.push_str(stem);
                out.push_str("Z\"");
            }
            None => push_quoted(out, s),
        },
        Value::String(s) => push_quoted(out, s),
        other => push_quoted(out, &other.to_string()),
    }
}

/// Java's `Double.toString`: plain with at least one decimal in `[1e-3, 1e7)`, else
/// scientific with a capital `E` (`1.5E7`).
fn java_double(out: &mut String, f: f64) {
    let magnitude = f.abs();
    if f == 0.0 || (1e-3..1e7).contains(&magnitude) || !f.is_finite() {
        let text = f.to_string();
        out.push_str(&text);
        if f.is_finite() && !text.contains('.') {
            out.push_str(".0");
        }
        return;
    }
    let text = format!("{f:e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    out.push_str(mantissa);
    if !mantissa.contains('.') {
        out.push_str(".0");
    }
    out.push('E');
    out.push_str(exponent);
}

async fn upload(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    api(&inner, &headers, || {
        let mut state = lock(&inner);
        let Some(job) = state
            .bulk
            .jobs
            .get_mut(&id)
            .filter(|j| j.kind == Kind::Ingest)
        else {
            return no_such_job();
        };
        if !content_type.starts_with("text/csv") {
            return bad_request(
                "INVALID_CONTENT_TYPE",
                &format!("Job data must be text/csv, got '{content_type}'"),
            );
        }
        if job.state != JobState::Open {
            return bad_request(
                "INVALIDJOBSTATE",
                &format!(
                    "Job {id} is {}; data can only be uploaded to an Open job",
                    job.state.as_str()
                ),
            );
        }
        if job.data.is_some() {
            return bad_request(
                "BULK_API_ERROR",
                &format!(
                    "Found multiple contents for job: <{id}>, please 'Close' / 'Abort' / \
                     'Delete' the current Job then create a new Job and make sure you only do \
                     'PUT' once on a given Job."
                ),
            );
        }
        if body.len() > MAX_UPLOAD_BYTES {
            return bad_request(
                "EXCEEDED_QUOTA",
                &format!(
                    "Job data of {} bytes exceeds 150 MB of base64-encoded content",
                    body.len()
                ),
            );
        }
        match String::from_utf8(body.to_vec()) {
            Ok(text) => {
                job.data = Some(text);
                StatusCode::CREATED.into_response()
            }
            Err(_) => bad_request("INVALID_CONTENT", "Job data must be UTF-8"),
        }
    })
}

impl crate::FakeSalesforce {
    /// Makes the next Bulk API 2.0 ingest job created process only its first `after` records
    /// and then end as `end` says; the other records are listed by `unprocessedrecords/`.
    pub fn interrupt_next_ingest_job(&self, after: usize, end: InterruptedEnd) {
        self.state().bulk.interrupt_next.push_back((after, end));
    }
}

/// Processes a closed ingest job: every row is applied like a single-record REST call.
fn close_ingest(state: &mut Inner, id: &str) {
    let Some(job) = state.bulk.jobs.get_mut(id) else {
        return;
    };
    let data = job.data.take().unwrap_or_default();
    let parsed = if data.is_empty() {
        Err("InvalidBatch : no data was uploaded for the job".to_owned())
    } else {
        parse_csv(&data, job.delimiter.char).map_err(|e| format!("InvalidBatch : {e}"))
    };
    let mut rows = match parsed {
        Ok(rows) => rows,
        Err(message) => {
            job.fail_with.get_or_insert(message);
            return;
        }
    };
    let header = if rows.is_empty() {
        Vec::new()
    } else {
        rows.remove(0)
    };
    job.header = header.clone();
    if job.fail_with.is_some() {
        job.unprocessed = rows;
        return;
    }
    let (object, operation, external_id) = (
        job.object.clone(),
        job.operation.clone(),
        job.external_id.clone(),
    );
    if let Err(message) = check_header(state, &object, &operation, &header, rows.as_slice()) {
        if let Some(job) = state.bulk.jobs.get_mut(id) {
            job.fail_with = Some(message);
            job.unprocessed = rows;
        }
        return;
    }
    // An interrupted job stops after its first records; the others stay unprocessed.
    let stop_after = state
        .bulk
        .jobs
        .get(id)
        .and_then(|job| job.interrupt.as_ref())
        .map(|(after, _)| *after);
    if let Some(after) = stop_after
        && after < rows.len()
    {
        let rest = rows.split_off(after);
        if let Some(job) = state.bulk.jobs.get_mut(id) {
            job.unprocessed = rest;
        }
    }
    let key_column = external_id
        .as_ref()
        .and_then(|name| header.iter().position(|h| h.eq_ignore_ascii_case(name)));
    let repeated = repeated_keys(rows.iter().map(|row| {
        key_column
            .and_then(|c| row.get(c))
            .filter(|v| !v.is_empty() && v.as_str() != "#N/A")
            .cloned()
    }));
    let mut results = Vec::with_capacity(rows.len());
    let mut purged = HashSet::new();
    for (i, row) in rows.into_iter().enumerate() {
        let mut record = Map::new();
        for (name, value) in header.iter().zip(&row) {
            match value.as_str() {
                // An empty field leaves the value alone; #N/A sets it to null.
                "" => {}
                "#N/A" => {
                    record.insert(name.clone(), Value::Null);
                }
                text => {
                    record.insert(name.clone(), Value::String(text.to_owned()));
                }
            }
        }
        let outcome = if repeated.contains(&i) {
            let key = key_column
                .and_then(|c| row.get(c))
                .map_or(Value::Null, |v| Value::String(v.clone()));
            failure(String::new(), &duplicate_external_id(&key))
        } else {
            apply_row(
                state,
                &object,
                &operation,
                external_id.as_deref(),
                record,
                &mut purged,
            )
        };
        results.push((outcome, row));
    }
    if !purged.is_empty() {
        purge(state, &object, &purged);
    }
    if let Some(job) = state.bulk.jobs.get_mut(id) {
        job.results = results;
    }
}

/// Header problems fail the whole job, as in Salesforce.
fn check_header(
    state: &Inner,
    object: &str,
    operation: &str,
    header: &[String],
    rows: &[Vec<String>],
) -> Result<(), String> {
    let sobject = state
        .objects
        .get(object)
        .ok_or_else(|| format!("InvalidBatch : Entity '{object}' is not supported"))?;
    if header.is_empty() {
        return Err("InvalidBatch : the CSV has no header row".to_owned());
    }
    let mut seen = HashSet::new();
    for name in header {
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(format!(
                "InvalidBatch : Duplicate header specified : {name}"
            ));
        }
        if sobject.field(name).is_none() {
            return Err(format!("InvalidBatch : Field name not found : {name}"));
        }
    }
    if matches!(operation, "delete" | "hardDelete")
        && !header.iter().any(|h| h.eq_ignore_ascii_case("Id"))
    {
        return Err("InvalidBatch : The Id field is required for delete".to_owned());
    }
    if let Some((line, row)) = rows
        .iter()
        .enumerate()
        .find(|(_, row)| row.len() != header.len())
    {
        return Err(format!(
            "InvalidBatch : Wrong number of columns in row {}: expected {}, found {}",
            line + 1,
            header.len(),
            row.len()
        ));
    }
    Ok(())
}

fn failure(id: String, error: &RecordError) -> Outcome {
    Outcome::Failure {
        id,
        error: format!(
            "{}:{}:{} --",
            error.status_code,
            error.message,
            error.fields.join(",")
        ),
    }
}

fn record_id(record: &Map<String, Value>) -> Option<String> {
    record
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Id"))
        .and_then(|(_, v)| v.as_str())
        .map(str::to_owned)
}

fn apply_row(
    state: &mut Inner,
    object: &str,
    operation: &str,
    external_id: Option<&str>,
    record: Map<String, Value>,
    purged: &mut HashSet<String>,
) -> Outcome {
    let missing_id = || {
        RecordError::new(
            "MISSING_ARGUMENT",
            format!("Id not specified in an {operation} call"),
            vec![],
        )
    };
    match operation {
        "insert" => match insert_record(state, object, record) {
            Ok(id) => Outcome::Success { id, created: true },
            Err(e) => failure(String::new(), &e),
        },
        "upsert" => match upsert_record(state, object, external_id.unwrap_or("Id"), record) {
            Ok((id, created)) => Outcome::Success { id, created },
            Err(e) => failure(String::new(), &e),
        },
        "update" => {
            let Some(id) = record_id(&record) else {
                return failure(String::new(), &missing_id());
            };
            match update_record(state, object, &id, record) {
                Ok(()) => Outcome::Success { id, created: false },
                Err(e) => failure(id, &e),
            }
        }
        "delete" => {
            let Some(id) = record_id(&record) else {
                return failure(String::new(), &missing_id());
            };
            match delete_record(state, object, &id) {
                Ok(()) => Outcome::Success { id, created: false },
                Err(e) => failure(id, &e),
            }
        }
        _ => {
            // hardDelete: the record skips the recycle bin and is gone for queryAll too.
            let Some(id) = record_id(&record) else {
                return failure(String::new(), &missing_id());
            };
            let exists = state.objects.get(object).is_some_and(|o| {
                o.records
                    .iter()
                    .any(|r| r.get("Id").and_then(Value::as_str) == Some(id.as_str()))
            });
            if !exists || purged.contains(&id) {
                let error = RecordError::new(
                    "INVALID_CROSS_REFERENCE_KEY",
                    format!("invalid cross reference id: {id}"),
                    vec![],
                );
                return failure(id, &error);
            }
            purged.insert(id.clone());
            Outcome::Success { id, created: false }
        }
    }
}

/// Removes records for good, keeping the record positions of query jobs and REST cursors
/// right.
fn purge(state: &mut Inner, object: &str, ids: &HashSet<String>) {
    let Some(sobject) = state.objects.get_mut(object) else {
        return;
    };
    let mut kept = 0usize;
    let remap: Vec<Option<usize>> = sobject
        .records
        .iter()
        .map(|r| {
            let gone = r
                .get("Id")
                .and_then(Value::as_str)
                .is_some_and(|id| ids.contains(id));
            if gone {
                None
            } else {
                kept += 1;
                Some(kept - 1)
            }
        })
        .collect();
    sobject.records.retain(|r| {
        !r.get("Id")
            .and_then(Value::as_str)
            .is_some_and(|id| ids.contains(id))
    });
    let moved = |rows: &[usize]| -> Vec<usize> {
        rows.iter()
            .filter_map(|&i| remap.get(i).copied().flatten())
            .collect()
    };
    for job in state
        .bulk
        .jobs
        .values_mut()
        .filter(|j| j.kind == Kind::Query && j.object == object)
    {
        job.rows = moved(&job.rows);
    }
    for cursor in state.cursors.values_mut().filter(|c| c.object == object) {
        cursor.rows = moved(&cursor.rows);
    }
}

/// Parses CSV with `delimiter`, `"` quoting and `""` escapes; `\n` or `\r\n` end records and
/// blank lines are skipped. Errors name the line.
fn parse_csv(text: &str, delimiter: char) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut line = 1usize;
    // Whether the current record has anything (a blank line has nothing).
    let mut started = false;
    loop {
        let Some(c) = chars.next() else {
            if started {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            return Ok(rows);
        };
        match c {
            '"' if field.is_empty() => {
                started = true;
                let opened = line;
                loop {
                    match chars.next() {
                        None => {
                            return Err(format!(
                                "unterminated quoted field starting on line {opened}"
                            ));
                        }
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some('"') => break,
                        Some(other) => {
                            if other == '\n' {
                                line += 1;
                            }
                            field.push(other);
                        }
                    }
                }
                match chars.peek() {
                    None | Some('\n' | '\r') => {}
                    Some(&next) if next == delimiter => {}
                    Some(next) => {
                        return Err(format!(
                            "unexpected character '{next}' after a closing quote on line {line}"
                        ));
                    }
                }
            }
            '"' => return Err(format!("a quote inside an unquoted field on line {line}")),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if started {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                started = false;
                line += 1;
            }
            c if c == delimiter => {
                started = true;
                row.push(std::mem::take(&mut field));
            }
            other => {
                started = true;
                field.push(other);
            }
        }
    }
}

fn results_csv(job: &Job, columns: &[&str], rows: Vec<Vec<&str>>) -> Response {
    let mut out = String::new();
    let line_end = job.line_end();
    let line = |out: &mut String, values: &[&str]| {
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                out.push(job.delimiter.char);
            }
            push_quoted(out, v);
        }
        out.push_str(line_end);
    };
    let mut header: Vec<&str> = columns.to_vec();
    header.extend(job.header.iter().map(String::as_str));
    line(&mut out, &header);
    for row in rows {
        line(&mut out, &row);
    }
    ([(header::CONTENT_TYPE, "text/csv")], out).into_response()
}

#[derive(Clone, Copy)]
enum ResultKind {
    Successful,
    Failed,
    Unprocessed,
}

fn ingest_results(inner: &Shared, headers: &HeaderMap, id: &str, kind: ResultKind) -> Response {
    api(inner, headers, || {
        let state = lock(inner);
        let Some(job) = state.bulk.jobs.get(id).filter(|j| j.kind == Kind::Ingest) else {
            return no_such_job();
        };
        if !job.state.is_final() {
            return bad_request(
                "INVALIDJOBSTATE",
                &format!(
                    "Results of job {id} are available once it is complete; it is {}",
                    job.state.as_str()
                ),
            );
        }
        match kind {
            ResultKind::Successful => {
                let rows = job
                    .results
                    .iter()
                    .filter_map(|(outcome, row)| match outcome {
                        Outcome::Success { id, created } => {
                            let mut values =
                                vec![id.as_str(), if *created { "true" } else { "false" }];
                            values.extend(row.iter().map(String::as_str));
                            Some(values)
                        }
                        Outcome::Failure { .. } => None,
                    })
                    .collect();
                results_csv(job, &["sf__Id", "sf__Created"], rows)
            }
            ResultKind::Failed => {
                let rows = job
                    .results
                    .iter()
                    .filter_map(|(outcome, row)| match outcome {
                        Outcome::Failure { id, error } => {
                            let mut values = vec![id.as_str(), error.as_str()];
                            values.extend(row.iter().map(String::as_str));
                            Some(values)
                        }
                        Outcome::Success { .. } => None,
                    })
                    .collect();
                results_csv(job, &["sf__Id", "sf__Error"], rows)
            }
            ResultKind::Unprocessed => {
                let rows = job
                    .unprocessed
                    .iter()
                    .map(|row| row.iter().map(String::as_str).collect())
                    .collect();
                results_csv(job, &[], rows)
            }
        }
    })
}

async fn successful_results(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    ingest_results(&inner, &headers, &id, ResultKind::Successful)
}

async fn failed_results(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    ingest_results(&inner, &headers, &id, ResultKind::Failed)
}

async fn unprocessed_records(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    ingest_results(&inner, &headers, &id, ResultKind::Unprocessed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_parsing_quotes_newlines_and_errors() {
        let rows = parse_csv(
            "Name,Description\r\n\"Acme, Inc.\",\"line one\nline \"\"two\"\"\"\n\nÜnï,\n",
            ',',
        )
        .unwrap();
        assert_eq!(
            rows,
            vec![
                vec!["Name", "Description"],
                vec!["Acme, Inc.", "line one\nline \"two\""],
                vec!["Ünï", ""],
            ]
        );
        assert_eq!(parse_csv("a|b\n1|2", '|').unwrap()[1], vec!["1", "2"]);
        assert!(
            parse_csv("a\n\"open\n", ',')
                .unwrap_err()
                .contains("line 2")
        );
        assert!(parse_csv("a\nx\"y\n", ',').unwrap_err().contains("line 2"));
        assert!(parse_csv("a\n\"x\" y\n", ',').is_err());
    }

    #[test]
    fn values_render_like_bulk_api() {
        let render = |value: Value, kind: &str| {
            let mut out = String::new();
            render_value(&mut out, &value, kind);
            out
        };
        assert_eq!(render(json!(100.0), "currency"), "\"100.0\"");
        assert_eq!(render(json!(1.5e7), "double"), "\"1.5E7\"");
        assert_eq!(render(json!(0.0001), "double"), "\"1.0E-4\"");
        assert_eq!(render(json!(-2.25), "percent"), "\"-2.25\"");
        assert_eq!(render(json!(42), "int"), "\"42\"");
        assert_eq!(render(Value::Null, "string"), "\"\"");
        assert_eq!(render(json!(true), "boolean"), "\"true\"");
        assert_eq!(
            render(json!("2024-04-16T19:00:00.000+0000"), "datetime"),
            "\"2024-04-16T19:00:00.000Z\""
        );
        assert_eq!(render(json!("say \"hi\""), "string"), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn locators_round_trip() {
        assert_eq!(decode_locator(&encode_locator(50_000)), Some(50_000));
        assert_eq!(decode_locator("not base64!"), None);
    }
}
