//! Bulk API 2.0: query jobs for large reads, ingest jobs for large writes.
//!
//! **Reading** ([`start_query`], [`stream_query`]): a query job is created with the plan's SOQL
//! (`queryAll` for deleted records), polled with a doubling wait until `JobComplete`, and its
//! results are downloaded one page (`maxRecords` records) at a time by `Sforce-Locator`. A
//! page is decoded as its body arrives ([`CsvDownload`]), a batch handed on whenever
//! `batch_rows` rows are in, and the next page is requested as soon as the current page's
//! locator is known, so memory holds a batch and a piece of the body whatever the page or
//! result size. The CSV is decoded with `csv-core` straight into typed Arrow builders
//! (`Column`), so a Bulk read has the same schema as a REST read. A page whose row count differs from `Sforce-NumberOfRecords`, or a
//! result that does not add up to the job's `numberRecordsProcessed`, fails the run: it never
//! stops early in silence. Each request is retried by the session (`503`,
//! `REQUEST_LIMIT_EXCEEDED`, an expired token), so a download resumes at the page it stopped
//! at; a body that breaks off midway is requested again and read on past the rows already
//! decoded. Finished jobs are deleted; an abandoned one is aborted and deleted in the background.
//!
//! Bulk API 2.0 does not transfer compound fields (`address`, `location`): a projected one is
//! left out of the query and its column is null, as AppFlow documents.
//!
//! **Writing** ([`run_ingest_job`], [`ingest_results`]): one ingest job per CSV upload of at
//! most [`BulkSettings::upload_max_bytes`] (Salesforce takes 150 MB of base64, about 100 MB of
//! CSV, and one upload per job). The CSV is streamed from a file ([`FileBody`]), so memory does
//! not grow with the upload; the job is closed and polled until it ends. A job that ends
//! `JobComplete`, or `Failed`/`Aborted` for a reason other than a refused request, is not an
//! error: its `failedResults` are read back into [`RejectedRecord`]s with Salesforce's error
//! code and message, and its `unprocessedrecords` (the records it never reached) with the code
//! [`UNPROCESSED`], both decoded as they download and handed out a chunk at a time
//! ([`RejectedResults`]), so a job whose every record failed needs no more memory than one
//! whose records all succeeded. A job refused as a whole (`InvalidBatch`, `InvalidJob`,
//! `FeatureNotEnabled`: an unknown field, a bad header) fails the run, since every later job
//! would be refused the same way.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use csv_core::{ReadRecordResult, Reader, ReaderBuilder};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Map, Value, json};
use sluice_connector_api::{
    BatchStream, ConnectorError, ConnectorErrorKind, ReadStats, RejectedRecord,
};
use sluice_connector_http_util::{HttpError, HttpStream};

use crate::client::Session;
use crate::source::{Column, QueryPlan, SfField, finish_batch, is_flat};

/// `AUTOMATIC` writes switch to Bulk API 2.0 at this many records (AppFlow's rule).
pub const DESTINATION_BULK_THRESHOLD: usize = 1_000;

/// The code given to records an ingest job never processed (`unprocessedrecords`), which
/// Salesforce lists without an error of their own.
pub const UNPROCESSED: &str = "UNPROCESSED";

/// CSV bytes per ingest upload: Salesforce accepts 150 MB of base64-encoded content per job,
/// which is 112.5 MB of CSV; its guidance is to stay at 100 MB.
pub const UPLOAD_MAX_BYTES: usize = 100_000_000;

/// How Bulk API 2.0 is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkSettings {
    /// `AUTOMATIC` reads use Bulk API 2.0 when `SELECT COUNT()` finds at least this many
    /// records ([`crate::SOURCE_BULK_THRESHOLD`]).
    pub source_threshold: u64,
    /// `AUTOMATIC` writes use Bulk API 2.0 from this many records on
    /// ([`DESTINATION_BULK_THRESHOLD`]); fewer go through sObject Collections.
    pub destination_threshold: usize,
    /// `maxRecords` of each query results page.
    pub page_records: usize,
    /// First wait between job status polls; it doubles up to `poll_max`.
    pub poll_initial: Duration,
    /// Longest wait between job status polls.
    pub poll_max: Duration,
    /// A job not finished after this long is aborted and the run fails.
    pub job_timeout: Duration,
    /// Largest CSV upload of one ingest job; more data starts another job.
    pub upload_max_bytes: usize,
}

impl Default for BulkSettings {
    fn default() -> Self {
        Self {
            source_threshold: crate::SOURCE_BULK_THRESHOLD,
            destination_threshold: DESTINATION_BULK_THRESHOLD,
            page_records: 50_000,
            poll_initial: Duration::from_millis(250),
            poll_max: Duration::from_secs(10),
            job_timeout: Duration::from_secs(6 * 60 * 60),
            upload_max_bytes: UPLOAD_MAX_BYTES,
        }
    }
}

impl BulkSettings {
    /// Polls a few milliseconds apart, for tests.
    pub fn fast() -> Self {
        Self {
            poll_initial: Duration::from_millis(2),
            poll_max: Duration::from_millis(10),
            job_timeout: Duration::from_secs(10),
            ..Self::default()
        }
    }
}

/// The state of a job, from its job info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    /// Job id.
    pub id: String,
    /// `Open`, `UploadComplete`, `InProgress`, `JobComplete`, `Failed` or `Aborted`.
    pub state: String,
    /// `numberRecordsProcessed`.
    pub processed: u64,
    /// `numberRecordsFailed` (ingest jobs).
    pub failed: u64,
    /// `errorMessage` of a failed job.
    pub error_message: Option<String>,
}

impl JobInfo {
    /// Whether the job ended `JobComplete`.
    pub fn is_complete(&self) -> bool {
        self.state == "JobComplete"
    }

    /// Whether Salesforce refused the job as a whole (`InvalidBatch`, `InvalidJob`,
    /// `FeatureNotEnabled`): the request itself was wrong, not the records.
    pub fn refused(&self) -> bool {
        !self.is_complete()
            && self.error_message.as_deref().is_some_and(|reason| {
                ["Invalid", "FeatureNotEnabled"]
                    .iter()
                    .any(|prefix| reason.starts_with(prefix))
            })
    }

    /// `errorMessage`, or a note that there is none.
    pub fn reason(&self) -> &str {
        self.error_message
            .as_deref()
            .unwrap_or("no errorMessage given")
    }

    fn parse(value: &Value, what: &str) -> Result<Self, ConnectorError> {
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        let count = |key: &str| value.get(key).and_then(Value::as_u64).unwrap_or(0);
        Ok(Self {
            id: text("id").ok_or_else(|| {
                ConnectorError::bad_data(format!("Salesforce {what}: the job info has no id"))
            })?,
            state: text("state").unwrap_or_default(),
            processed: count("numberRecordsProcessed"),
            failed: count("numberRecordsFailed"),
            error_message: text("errorMessage"),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobKind {
    Query,
    Ingest,
}

impl JobKind {
    fn path(self) -> &'static str {
        match self {
            JobKind::Query => "jobs/query",
            JobKind::Ingest => "jobs/ingest",
        }
    }

    fn name(self) -> &'static str {
        match self {
            JobKind::Query => "query",
            JobKind::Ingest => "ingest",
        }
    }
}

/// Polls a job until it ends (`JobComplete`, `Failed` or `Aborted`); a job still running
/// after `job_timeout` is aborted and is an error.
async fn wait_for_job(
    session: &Session,
    kind: JobKind,
    id: &str,
    object: &str,
    settings: &BulkSettings,
) -> Result<JobInfo, ConnectorError> {
    let started = Instant::now();
    let mut wait = settings.poll_initial;
    let what = format!(
        "status of Bulk API 2.0 {} job {id} on {object}",
        kind.name()
    );
    loop {
        let path = format!("{}/{id}", kind.path());
        let (value, _) = session.json(&what, Method::GET, &path, &[], None).await?;
        let info = JobInfo::parse(&value, &what)?;
        if matches!(info.state.as_str(), "JobComplete" | "Failed" | "Aborted") {
            return Ok(info);
        }
        if started.elapsed() >= settings.job_timeout {
            abort_job(session, kind, id).await;
            return Err(ConnectorError::unavailable(format!(
                "Salesforce Bulk API 2.0 {} job {id} on {object} did not finish within {:?} \
                 (last state {}); it was aborted",
                kind.name(),
                settings.job_timeout,
                info.state
            )));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(settings.poll_max);
    }
}

/// The error for a job that ended `Failed` or `Aborted`, quoting Salesforce's `errorMessage`.
fn job_error(kind: JobKind, object: &str, info: &JobInfo) -> ConnectorError {
    let kind_of_error = if info.refused() {
        ConnectorErrorKind::InvalidConfig
    } else {
        ConnectorErrorKind::Unavailable
    };
    ConnectorError::new(
        kind_of_error,
        format!(
            "Salesforce Bulk API 2.0 {} job {} on {object} ended {}: {}",
            kind.name(),
            info.id,
            info.state,
            info.reason()
        ),
    )
}

/// Best-effort `PATCH {state: Aborted}`; failures are logged, never raised.
async fn abort_job(session: &Session, kind: JobKind, id: &str) {
    let path = format!("{}/{id}", kind.path());
    let body = json!({"state": "Aborted"});
    if let Err(error) = session
        .call(
            "abort of a Bulk API 2.0 job",
            Method::PATCH,
            &path,
            &[],
            Some(&body),
        )
        .await
    {
        tracing::debug!(job = id, %error, "could not abort the Bulk API 2.0 job");
    }
}

/// Best-effort `DELETE` of a job.
async fn delete_job(session: &Session, kind: JobKind, id: &str) {
    let path = format!("{}/{id}", kind.path());
    if let Err(error) = session
        .call(
            "delete of a Bulk API 2.0 job",
            Method::DELETE,
            &path,
            &[],
            None,
        )
        .await
    {
        tracing::debug!(job = id, %error, "could not delete the Bulk API 2.0 job");
    }
}

/// A Bulk read of `plan`: the query job to create and the columns to fill.
#[derive(Debug, Clone)]
pub struct BulkQuery {
    /// The sObject.
    pub object: String,
    /// Output fields, in order (compound ones stay null).
    pub fields: Vec<SfField>,
    /// The SOQL sent, without compound fields.
    pub soql: String,
    /// `queryAll` rather than `query`.
    pub include_deleted: bool,
}

impl BulkQuery {
    /// The Bulk form of a REST plan.
    ///
    /// # Errors
    /// When every selected field is compound.
    pub fn from_plan(plan: &QueryPlan) -> Result<Self, ConnectorError> {
        let compound: Vec<&str> = plan
            .fields
            .iter()
            .filter(|f| !is_flat(&f.kind))
            .map(|f| f.name.as_str())
            .collect();
        if compound.len() == plan.fields.len() {
            return Err(ConnectorError::invalid_config(format!(
                "Bulk API 2.0 cannot read the compound fields {} of Salesforce object {}; use \
                 dataTransferApi REST_SYNC",
                compound.join(", "),
                plan.object
            )));
        }
        if !compound.is_empty() {
            tracing::warn!(
                object = %plan.object,
                fields = %compound.join(", "),
                "Bulk API 2.0 does not transfer compound fields; their columns are null"
            );
        }
        Ok(Self {
            object: plan.object.clone(),
            fields: plan.fields.clone(),
            soql: plan.soql_for(plan.fields.iter().filter(|f| is_flat(&f.kind))),
            include_deleted: plan.include_deleted,
        })
    }
}

/// Creates the query job and returns its id.
pub async fn start_query(session: &Session, query: &BulkQuery) -> Result<String, ConnectorError> {
    let body = json!({
        "operation": if query.include_deleted { "queryAll" } else { "query" },
        "query": query.soql,
        "contentType": "CSV",
        "columnDelimiter": "COMMA",
        "lineEnding": "LF",
    });
    let what = format!("Bulk API 2.0 query job on {}", query.object);
    let (value, _) = session
        .json(&what, Method::POST, JobKind::Query.path(), &[], Some(&body))
        .await?;
    let info = JobInfo::parse(&value, &what)?;
    tracing::info!(object = %query.object, job = %info.id, "created a Bulk API 2.0 query job");
    Ok(info.id)
}

/// Aborts and deletes a job that was abandoned before it was finished with (a dropped stream).
struct JobGuard {
    session: Arc<Session>,
    kind: JobKind,
    id: String,
    settled: bool,
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (session, kind, id) = (self.session.clone(), self.kind, self.id.clone());
        runtime.spawn(async move {
            abort_job(&session, kind, &id).await;
            delete_job(&session, kind, &id).await;
        });
    }
}

/// How often one download may break off and be requested again before the run fails.
const DOWNLOAD_RESUMES: u32 = 5;

/// A CSV download read record by record as its body arrives, so memory holds one piece of
/// the body and one record whatever the size of the file. A body that breaks off is
/// requested again and read on past the records already handed out: Salesforce serves the
/// same bytes for the same results (a query page by its locator, an ingest job's results).
pub(crate) struct CsvDownload {
    session: Arc<Session>,
    what: String,
    path: String,
    query: Vec<(&'static str, String)>,
    stream: HttpStream,
    /// The first answer's headers (`Sforce-Locator`, `Sforce-NumberOfRecords`).
    headers: reqwest::header::HeaderMap,
    feed: CsvFeed,
    /// Records handed out (the header too).
    handed: u64,
    /// Records still to pass over after a resumed request.
    skip: u64,
    resumes: u32,
    bytes: u64,
}

impl CsvDownload {
    /// Requests the CSV at `path` (API-relative) with `query`.
    pub(crate) async fn open(
        session: Arc<Session>,
        what: String,
        path: String,
        query: Vec<(&'static str, String)>,
    ) -> Result<Self, ConnectorError> {
        let stream = Self::request(&session, &what, &path, &query).await?;
        Ok(Self {
            headers: stream.headers.clone(),
            session,
            what,
            path,
            query,
            stream,
            feed: CsvFeed::new(),
            handed: 0,
            skip: 0,
            resumes: 0,
            bytes: 0,
        })
    }

    async fn request(
        session: &Session,
        what: &str,
        path: &str,
        query: &[(&'static str, String)],
    ) -> Result<HttpStream, ConnectorError> {
        session
            .call_streaming(what, Method::GET, path, query, |request| {
                request.header("accept", "text/csv")
            })
            .await
    }

    /// A header of the first answer, `None` when absent or not text.
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// Body bytes received, those of resumed requests included.
    fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The next record (the first is the header), `None` at the end of the body.
    pub(crate) async fn next_record(&mut self) -> Result<Option<CsvRecord<'_>>, ConnectorError> {
        loop {
            match self.feed.advance() {
                CsvStep::Record if self.skip > 0 => self.skip -= 1,
                CsvStep::Record => {
                    self.handed += 1;
                    return Ok(Some(self.feed.record()));
                }
                CsvStep::End => return Ok(None),
                CsvStep::NeedInput => match self.stream.chunk().await {
                    Ok(Some(piece)) => {
                        self.bytes += piece.len() as u64;
                        self.feed.push(piece);
                    }
                    Ok(None) => self.feed.end_input(),
                    Err(error) => self.resume(error).await?,
                },
            }
        }
    }

    /// Requests the body again after it broke off, to pass over what was handed out.
    async fn resume(&mut self, error: HttpError) -> Result<(), ConnectorError> {
        self.resumes += 1;
        if self.resumes > DOWNLOAD_RESUMES {
            return Err(ConnectorError::unavailable(format!(
                "Salesforce {}: {error} (given up after {DOWNLOAD_RESUMES} new requests)",
                self.what
            )));
        }
        tracing::warn!(what = %self.what, %error, records = self.handed, "a Salesforce download broke off; requesting it again");
        self.stream = Self::request(&self.session, &self.what, &self.path, &self.query).await?;
        self.feed = CsvFeed::new();
        self.skip = self.handed;
        Ok(())
    }
}

/// The next page's download, started while the current page is read (so the server prepares
/// it meanwhile) and cancelled when dropped. Its body waits on the wire until it is read.
struct Prefetch(tokio::task::JoinHandle<Result<CsvDownload, ConnectorError>>);

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn fetch_page(
    session: Arc<Session>,
    id: &str,
    object: &str,
    locator: Option<String>,
    page: u64,
    max_records: usize,
) -> Prefetch {
    let path = format!("jobs/query/{id}/results");
    let what = format!("Bulk API 2.0 results of {object} (page {page})");
    let mut query = vec![("maxRecords", max_records.to_string())];
    if let Some(locator) = locator {
        query.push(("locator", locator));
    }
    Prefetch(tokio::spawn(CsvDownload::open(session, what, path, query)))
}

/// The page being read.
struct PageRead {
    download: CsvDownload,
    /// `Sforce-NumberOfRecords`.
    announced: Option<u64>,
}

struct QueryState {
    session: Arc<Session>,
    query: Arc<BulkQuery>,
    settings: BulkSettings,
    stats: Arc<ReadStats>,
    job: JobGuard,
    decoder: CsvPageDecoder,
    /// `numberRecordsProcessed`, once the job completed.
    expected: Option<u64>,
    current: Option<PageRead>,
    next: Option<Prefetch>,
    pages: u64,
    received: u64,
    done: bool,
}

/// Streams the results of query job `job_id` as batches of at most `batch_rows` rows.
pub fn stream_query(
    session: Arc<Session>,
    query: BulkQuery,
    job_id: String,
    settings: BulkSettings,
    stats: Arc<ReadStats>,
    batch_rows: usize,
) -> BatchStream {
    let decoder = CsvPageDecoder::new(&query.object, &query.fields, batch_rows);
    let state = QueryState {
        job: JobGuard {
            session: session.clone(),
            kind: JobKind::Query,
            id: job_id,
            settled: false,
        },
        session,
        query: Arc::new(query),
        settings,
        stats,
        decoder,
        expected: None,
        current: None,
        next: None,
        pages: 0,
        received: 0,
        done: false,
    };
    futures::stream::try_unfold(state, |mut state| async move {
        loop {
            if state.done {
                state.finish().await?;
                return Ok(None);
            }
            if let Some(batch) = state.advance().await? {
                return Ok(Some((batch, state)));
            }
        }
    })
    .boxed()
}

impl QueryState {
    /// Waits for the job, then reads the current page on until a batch is full or the page
    /// ends (a batch never spans pages); the next page's download starts as soon as the
    /// current page's locator is known.
    async fn advance(&mut self) -> Result<Option<RecordBatch>, ConnectorError> {
        let object = self.query.object.clone();
        if self.expected.is_none() {
            let info = wait_for_job(
                &self.session,
                JobKind::Query,
                &self.job.id,
                &object,
                &self.settings,
            )
            .await?;
            if !info.is_complete() {
                return Err(job_error(JobKind::Query, &object, &info));
            }
            self.expected = Some(info.processed);
            self.next = Some(self.fetch(None));
        }
        if self.current.is_none() {
            let Some(mut download) = self.next.take() else {
                self.done = true;
                return Ok(None);
            };
            let mut download = (&mut download.0).await.map_err(|error| {
                ConnectorError::internal(format!(
                    "downloading Bulk API 2.0 results of {object}: {error}"
                ))
            })??;
            self.pages += 1;
            let locator = download
                .header("sforce-locator")
                .filter(|l| !l.is_empty() && l != "null");
            let announced = download
                .header("sforce-numberofrecords")
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(locator) = locator {
                self.next = Some(self.fetch(Some(locator)));
            }
            // An empty page (no header either) has no rows.
            match download.next_record().await? {
                Some(header) => self.decoder.start_page(self.pages, &header)?,
                None => self.decoder.start_empty_page(self.pages),
            }
            self.current = Some(PageRead {
                download,
                announced,
            });
        }
        let Some(page) = self.current.as_mut() else {
            return Ok(None);
        };
        while let Some(record) = page.download.next_record().await? {
            if let Some(batch) = self.decoder.push_row(&record)? {
                return Ok(Some(batch));
            }
        }
        let rows = self.decoder.page_rows();
        self.stats.add_bytes(page.download.bytes());
        if let Some(announced) = page.announced
            && announced != rows
        {
            return Err(ConnectorError::unavailable(format!(
                "Salesforce Bulk API 2.0 results of {object} page {}: \
                 Sforce-NumberOfRecords announced {announced} records but the page has {rows}",
                self.pages
            )));
        }
        self.received += rows;
        self.current = None;
        if self.next.is_none() {
            self.done = true;
        }
        self.decoder.flush()
    }

    fn fetch(&self, locator: Option<String>) -> Prefetch {
        fetch_page(
            self.session.clone(),
            &self.job.id,
            &self.query.object,
            locator,
            self.pages + 1,
            self.settings.page_records.max(1),
        )
    }

    /// Checks the total against the job's count and deletes the job.
    async fn finish(&mut self) -> Result<(), ConnectorError> {
        let expected = self.expected.unwrap_or(0);
        if self.received != expected {
            return Err(ConnectorError::unavailable(format!(
                "Salesforce Bulk API 2.0 query job {} on {} processed {expected} records but \
                 its results held {}",
                self.job.id, self.query.object, self.received
            )));
        }
        delete_job(&self.session, JobKind::Query, &self.job.id).await;
        self.job.settled = true;
        tracing::info!(object = %self.query.object, job = %self.job.id, records = self.received, pages = self.pages, "read a Bulk API 2.0 query result");
        Ok(())
    }
}

/// Bulk API 2.0 result CSV (comma-separated, `"` quoting, header on every page) into typed
/// batches of the output fields, fed one record at a time: [`start_page`](Self::start_page)
/// with a page's header, [`push_row`](Self::push_row) with each row, [`flush`](Self::flush)
/// at the page's end.
pub(crate) struct CsvPageDecoder {
    object: String,
    fields: Vec<SfField>,
    schema: SchemaRef,
    batch_rows: usize,
    /// For each CSV column of the page, the output column it fills.
    targets: Vec<usize>,
    /// Output columns the page has no CSV column for (compound fields).
    null_columns: Vec<usize>,
    columns: Vec<Column>,
    page: u64,
    /// Rows of the current page so far.
    row: u64,
}

impl CsvPageDecoder {
    pub(crate) fn new(object: &str, fields: &[SfField], batch_rows: usize) -> Self {
        let mut decoder = Self {
            object: object.to_owned(),
            fields: fields.to_vec(),
            schema: crate::source::schema_of(fields),
            batch_rows: batch_rows.max(1),
            targets: Vec::new(),
            null_columns: Vec::new(),
            columns: Vec::new(),
            page: 0,
            row: 0,
        };
        decoder.columns = decoder.new_columns();
        decoder
    }

    fn error(&self, message: String) -> ConnectorError {
        ConnectorError::bad_data(format!(
            "Salesforce Bulk API 2.0 results of {} page {}: {message}",
            self.object, self.page
        ))
    }

    /// Starts page `page` from its header. Every output field must be a column of the page,
    /// except compound fields (left out of the query, so null).
    pub(crate) fn start_page(
        &mut self,
        page: u64,
        header: &CsvRecord<'_>,
    ) -> Result<(), ConnectorError> {
        self.start_empty_page(page);
        let mut targets = Vec::with_capacity(header.len());
        for name in header.iter() {
            let name = std::str::from_utf8(name)
                .map_err(|_| self.error("the header is not UTF-8".to_owned()))?;
            let target = self
                .fields
                .iter()
                .position(|f| f.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| self.error(format!("unexpected column {name}")))?;
            if targets.contains(&target) {
                return Err(self.error(format!("column {name} appears twice")));
            }
            targets.push(target);
        }
        if let Some(missing) = self
            .fields
            .iter()
            .enumerate()
            .find(|(i, f)| is_flat(&f.kind) && !targets.contains(i))
        {
            return Err(self.error(format!("no column for field {}", missing.1.name)));
        }
        self.null_columns = (0..self.fields.len())
            .filter(|i| !targets.contains(i))
            .collect();
        self.targets = targets;
        Ok(())
    }

    /// Starts page `page`, which has no header and so no rows. Rows held from an earlier page
    /// (only after an error, since a page ends with [`flush`](Self::flush)) are dropped.
    pub(crate) fn start_empty_page(&mut self, page: u64) {
        self.page = page;
        self.row = 0;
        self.targets.clear();
        if self.columns.iter().any(|c| c.len() > 0) {
            self.columns = self.new_columns();
        }
    }

    fn new_columns(&self) -> Vec<Column> {
        let rows = self.batch_rows.min(64 * 1024);
        self.fields
            .iter()
            .map(|f| Column::new(&f.kind, rows))
            .collect()
    }

    /// Rows of the current page so far.
    pub(crate) fn page_rows(&self) -> u64 {
        self.row
    }

    /// Appends one row; a batch once `batch_rows` rows are held.
    pub(crate) fn push_row(
        &mut self,
        record: &CsvRecord<'_>,
    ) -> Result<Option<RecordBatch>, ConnectorError> {
        // A blank line is one empty field; Salesforce does not send them, skip anyway.
        if record.len() == 1 && record.get(0).is_some_and(<[u8]>::is_empty) {
            return Ok(None);
        }
        self.row += 1;
        let row = self.row;
        if record.len() != self.targets.len() {
            return Err(self.error(format!(
                "row {row} has {} fields, the header {}",
                record.len(),
                self.targets.len()
            )));
        }
        for (j, &target) in self.targets.iter().enumerate() {
            let bytes = record.get(j).unwrap_or_default();
            let column = &mut self.columns[target];
            if bytes.is_empty() {
                column.append_null();
                continue;
            }
            if !column.append_bytes(bytes) {
                let field = &self.fields[target];
                return Err(self.error(format!(
                    "row {row}: field {} ({}) has an unexpected value '{}'",
                    field.name,
                    field.kind,
                    String::from_utf8_lossy(bytes)
                )));
            }
        }
        for &i in &self.null_columns {
            self.columns[i].append_null();
        }
        if self
            .columns
            .first()
            .is_some_and(|c| c.len() >= self.batch_rows)
        {
            return finish_batch(&self.object, &self.schema, &mut self.columns).map(Some);
        }
        Ok(None)
    }

    /// The rows held, as a batch, `None` when there are none.
    pub(crate) fn flush(&mut self) -> Result<Option<RecordBatch>, ConnectorError> {
        if self.columns.first().is_some_and(|c| c.len() > 0) {
            return finish_batch(&self.object, &self.schema, &mut self.columns).map(Some);
        }
        Ok(None)
    }

    /// Decodes one whole page held in memory.
    #[cfg(test)]
    pub(crate) fn decode(
        &mut self,
        body: &[u8],
        page: u64,
    ) -> Result<Vec<RecordBatch>, ConnectorError> {
        let mut batches = Vec::new();
        let mut records = CsvRecords::new(body);
        match records.next_record() {
            Some(header) => self.start_page(page, &header)?,
            None => {
                self.start_empty_page(page);
                return Ok(batches);
            }
        }
        while let Some(record) = records.next_record() {
            batches.extend(self.push_row(&record)?);
        }
        batches.extend(self.flush()?);
        Ok(batches)
    }
}

/// One parsed CSV record: field bytes and their end offsets.
pub(crate) struct CsvRecord<'a> {
    data: &'a [u8],
    ends: &'a [usize],
}

impl CsvRecord<'_> {
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.data.get(start..end)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

/// What [`CsvFeed::advance`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CsvStep {
    /// A record, in [`CsvFeed::record`].
    Record,
    /// The input pushed so far is used up: push more, or end it.
    NeedInput,
    /// The end of the CSV.
    End,
}

/// A CSV parsed by `csv-core` as it arrives, in pieces of any size (`"` quoting with `""`
/// escapes, quoted separators and newlines, `\n` or `\r\n`); a record may span pieces.
pub(crate) struct CsvFeed {
    reader: Reader,
    input: Bytes,
    data: Vec<u8>,
    ends: Vec<usize>,
    /// Lengths of the record being read (or last read) in `data` and `ends`.
    data_len: usize,
    ends_len: usize,
    /// Whether `data` holds a finished record, to be cleared before reading on.
    complete: bool,
    eof: bool,
    done: bool,
}

impl CsvFeed {
    pub(crate) fn new() -> Self {
        Self {
            reader: ReaderBuilder::new().build(),
            input: Bytes::new(),
            data: vec![0; 4096],
            ends: vec![0; 64],
            data_len: 0,
            ends_len: 0,
            complete: false,
            eof: false,
            done: false,
        }
    }

    /// The next piece of input, once [`advance`](Self::advance) asked for it.
    pub(crate) fn push(&mut self, piece: Bytes) {
        debug_assert!(self.input.is_empty(), "input pushed before it was used up");
        self.input = piece;
    }

    /// No more input follows.
    pub(crate) fn end_input(&mut self) {
        self.eof = true;
    }

    /// Reads on to the next record.
    pub(crate) fn advance(&mut self) -> CsvStep {
        use bytes::Buf as _;
        if self.done {
            return CsvStep::End;
        }
        if self.complete {
            (self.data_len, self.ends_len, self.complete) = (0, 0, false);
        }
        loop {
            // csv-core takes an empty input for the end of the file, so one is only passed
            // once the input has ended.
            if self.input.is_empty() && !self.eof {
                return CsvStep::NeedInput;
            }
            let (result, read, written, ended) = self.reader.read_record(
                &self.input,
                &mut self.data[self.data_len..],
                &mut self.ends[self.ends_len..],
            );
            self.input.advance(read);
            self.data_len += written;
            self.ends_len += ended;
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => {
                    let bigger = self.data.len() * 2;
                    self.data.resize(bigger, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let bigger = self.ends.len() * 2;
                    self.ends.resize(bigger, 0);
                }
                ReadRecordResult::Record => {
                    self.complete = true;
                    return CsvStep::Record;
                }
                ReadRecordResult::End => {
                    self.done = true;
                    return CsvStep::End;
                }
            }
        }
    }

    /// The record [`advance`](Self::advance) found.
    pub(crate) fn record(&self) -> CsvRecord<'_> {
        CsvRecord {
            data: &self.data[..self.data_len],
            ends: &self.ends[..self.ends_len],
        }
    }
}

/// Records of a CSV held in memory.
#[cfg(test)]
pub(crate) struct CsvRecords {
    feed: CsvFeed,
}

#[cfg(test)]
impl CsvRecords {
    pub(crate) fn new(input: &[u8]) -> Self {
        let mut feed = CsvFeed::new();
        feed.push(Bytes::copy_from_slice(input));
        feed.end_input();
        Self { feed }
    }

    /// The next record, `None` at the end.
    pub(crate) fn next_record(&mut self) -> Option<CsvRecord<'_>> {
        match self.feed.advance() {
            CsvStep::Record => Some(self.feed.record()),
            CsvStep::NeedInput | CsvStep::End => None,
        }
    }
}

/// Bytes read from an upload file per body chunk.
const FILE_CHUNK: usize = 256 * 1024;

/// One ingest job's CSV, spooled to a file: what [`run_ingest_job`] uploads.
#[derive(Debug, Clone, Copy)]
pub struct IngestUpload<'a> {
    /// The CSV file: the header line, then the records.
    pub path: &'a Path,
    /// Its size in bytes.
    pub bytes: u64,
    /// Records after the header.
    pub rows: u64,
}

/// Uploads `upload` as one ingest job and waits until the job ends.
///
/// The job info is returned for `JobComplete` jobs and for `Failed`/`Aborted` ones that
/// Salesforce did not refuse as a whole: `numberRecordsProcessed` may then be below
/// `upload.rows`, and the caller reads the failed and unprocessed records back.
///
/// # Errors
/// A refused request or job ([`JobInfo::refused`]), a job still running after `job_timeout`,
/// or a job reporting more records than were uploaded.
pub async fn run_ingest_job(
    session: &Session,
    object: &str,
    operation: &str,
    external_id: Option<&str>,
    upload: IngestUpload<'_>,
    settings: &BulkSettings,
) -> Result<JobInfo, ConnectorError> {
    let rows = upload.rows;
    let mut body = json!({
        "object": object,
        "operation": operation,
        "contentType": "CSV",
        "columnDelimiter": "COMMA",
        "lineEnding": "LF",
    });
    if let Some(field) = external_id {
        body["externalIdFieldName"] = json!(field);
    }
    let what = format!("Bulk API 2.0 {operation} job on {object}");
    let (value, _) = session
        .json(
            &what,
            Method::POST,
            JobKind::Ingest.path(),
            &[],
            Some(&body),
        )
        .await?;
    let id = JobInfo::parse(&value, &what)?.id;
    tracing::info!(object, operation, job = %id, rows, bytes = upload.bytes, "created a Bulk API 2.0 ingest job");
    let uploaded = async {
        session
            .call_with(
                &format!("upload of {rows} {object} records to job {id}"),
                Method::PUT,
                &format!("jobs/ingest/{id}/batches"),
                &[],
                // A fresh body from the start of the file for every attempt.
                |request| {
                    request
                        .header("content-type", "text/csv")
                        .header("accept", "application/json")
                        .body(FileBody::open(upload.path, upload.bytes))
                },
            )
            .await?;
        session
            .call(
                &format!("close of job {id}"),
                Method::PATCH,
                &format!("jobs/ingest/{id}"),
                &[],
                Some(&json!({"state": "UploadComplete"})),
            )
            .await
    }
    .await;
    if let Err(error) = uploaded {
        abort_job(session, JobKind::Ingest, &id).await;
        return Err(error);
    }
    let info = wait_for_job(session, JobKind::Ingest, &id, object, settings).await?;
    if info.refused() {
        return Err(job_error(JobKind::Ingest, object, &info));
    }
    if info.processed > rows || info.failed > info.processed {
        return Err(ConnectorError::unavailable(format!(
            "Salesforce Bulk API 2.0 {operation} job {id} on {object} reports {} records \
             processed and {} failed for the {rows} records uploaded",
            info.processed, info.failed
        )));
    }
    if !info.is_complete() {
        tracing::warn!(object, operation, job = %id, state = %info.state, reason = info.reason(), processed = info.processed, rows, "a Bulk API 2.0 ingest job ended before processing every record");
    }
    Ok(info)
}

/// A file sent as a request body 256 KiB at a time, so an upload never sits in
/// memory; its exact length is announced, so the request has a `Content-Length`.
#[derive(Debug)]
pub struct FileBody {
    file: Option<tokio::fs::File>,
    /// Reported on the first read (the file could not be opened).
    error: Option<std::io::Error>,
    remaining: u64,
    buffer: Vec<u8>,
}

impl FileBody {
    /// A body of the first `len` bytes of the file at `path`, opened now; a failure to open it
    /// is the body's first (and only) frame.
    pub fn open(path: &Path, len: u64) -> reqwest::Body {
        let (file, error) = match std::fs::File::open(path) {
            Ok(file) => (Some(tokio::fs::File::from_std(file)), None),
            Err(error) => (
                None,
                Some(std::io::Error::new(
                    error.kind(),
                    format!("opening the upload file {}: {error}", path.display()),
                )),
            ),
        };
        reqwest::Body::wrap(Self {
            file,
            error,
            remaining: len,
            buffer: Vec::new(),
        })
    }
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        use tokio::io::AsyncRead as _;
        let this = self.get_mut();
        if let Some(error) = this.error.take() {
            return Poll::Ready(Some(Err(error)));
        }
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let Some(file) = this.file.as_mut() else {
            return Poll::Ready(None);
        };
        let want = usize::try_from(this.remaining).map_or(FILE_CHUNK, |n| n.min(FILE_CHUNK));
        this.buffer.resize(want, 0);
        let mut buffer = tokio::io::ReadBuf::new(&mut this.buffer);
        match Pin::new(file).poll_read(cx, &mut buffer) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(error)) => {
                this.file = None;
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(Ok(())) => {
                let read = buffer.filled();
                if read.is_empty() {
                    let missing = this.remaining;
                    this.file = None;
                    return Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("the upload file ended {missing} bytes early"),
                    ))));
                }
                this.remaining -= read.len() as u64;
                Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::copy_from_slice(
                    read,
                )))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0 && self.error.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

/// Which per-record results of an ingest job to download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestResults {
    /// `failedResults`: the records Salesforce rejected, with `sf__Error`.
    Failed,
    /// `unprocessedrecords`: the records the job never reached.
    Unprocessed,
}

impl IngestResults {
    fn name(self) -> &'static str {
        match self {
            IngestResults::Failed => "failed results",
            IngestResults::Unprocessed => "unprocessed records",
        }
    }
}

/// The `failedResults` or `unprocessedrecords` of an ingest job, downloaded and decoded as
/// they arrive, handed out as [`RejectedRecord`]s a chunk at a time.
pub struct RejectedResults {
    download: CsvDownload,
    records: ResultRecords,
}

impl std::fmt::Debug for RejectedResults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RejectedResults")
            .field("what", &self.download.what)
            .finish_non_exhaustive()
    }
}

impl RejectedResults {
    /// Up to `limit` more rejected records; empty at the end.
    ///
    /// # Errors
    /// A failed download, malformed CSV, or a record with more fields than the header.
    pub async fn next_chunk(
        &mut self,
        limit: usize,
    ) -> Result<Vec<RejectedRecord>, ConnectorError> {
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(record) = self.download.next_record().await? else {
                break;
            };
            out.extend(self.records.record(&record)?);
        }
        Ok(out)
    }
}

/// Starts downloading the `failedResults` or `unprocessedrecords` CSV of ingest job `id`;
/// unprocessed records are given the code [`UNPROCESSED`] and `message`.
///
/// # Errors
/// A refused request, or a `failedResults` CSV without an `sf__Error` column.
pub async fn ingest_results(
    session: &Arc<Session>,
    object: &str,
    id: &str,
    which: IngestResults,
    message: String,
) -> Result<RejectedResults, ConnectorError> {
    let path = match which {
        IngestResults::Failed => "failedResults",
        IngestResults::Unprocessed => "unprocessedrecords",
    };
    let mut download = CsvDownload::open(
        session.clone(),
        format!("{} of Bulk API 2.0 job {id} on {object}", which.name()),
        format!("jobs/ingest/{id}/{path}"),
        Vec::new(),
    )
    .await?;
    let header = download.next_record().await?;
    let records = ResultRecords::new(header.as_ref(), which, message)?;
    Ok(RejectedResults { download, records })
}

/// Turns the records of a `failedResults` CSV (`sf__Id`, `sf__Error`, the columns as
/// uploaded) or an `unprocessedrecords` CSV (the columns as uploaded) into
/// [`RejectedRecord`]s holding the fields as they were sent (`#N/A` as null).
pub(crate) struct ResultRecords {
    header: Vec<String>,
    /// `sf__Error`; `None` for unprocessed records.
    error_column: Option<usize>,
    /// The message of unprocessed records.
    message: String,
    /// `failed results` or `unprocessed records`, for errors.
    what: &'static str,
    /// Records read so far.
    row: u64,
}

impl ResultRecords {
    /// Reads the header (`None`: an empty CSV, which lists no unprocessed records).
    ///
    /// # Errors
    /// A `failedResults` CSV without an `sf__Error` column.
    pub(crate) fn new(
        header: Option<&CsvRecord<'_>>,
        which: IngestResults,
        message: String,
    ) -> Result<Self, ConnectorError> {
        let what = which.name();
        let header: Vec<String> = header
            .map(|record| {
                record
                    .iter()
                    .map(|name| String::from_utf8_lossy(name).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let error_column = match which {
            IngestResults::Failed => Some(
                header
                    .iter()
                    .position(|h| h == "sf__Error")
                    .ok_or_else(|| results_error(what, "no sf__Error column"))?,
            ),
            IngestResults::Unprocessed => None,
        };
        Ok(Self {
            header,
            error_column,
            message,
            what,
            row: 0,
        })
    }

    /// The rejected record of one CSV record; `None` for a blank line.
    ///
    /// # Errors
    /// A record with more fields than the header.
    pub(crate) fn record(
        &mut self,
        record: &CsvRecord<'_>,
    ) -> Result<Option<RejectedRecord>, ConnectorError> {
        self.row += 1;
        // A blank line (one empty field) is no record.
        if record.len() == 1 && record.get(0).is_some_and(<[u8]>::is_empty) {
            return Ok(None);
        }
        if record.len() > self.header.len() {
            return Err(results_error(
                self.what,
                &format!(
                    "record {} has {} fields, the header {}",
                    self.row,
                    record.len(),
                    self.header.len()
                ),
            ));
        }
        let text = |i: usize| {
            record
                .get(i)
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        let (code, message) = match self.error_column {
            Some(column) => split_error(&text(column)),
            None => (Some(UNPROCESSED.to_owned()), self.message.clone()),
        };
        let mut fields = Map::new();
        for (i, name) in self.header.iter().enumerate() {
            // sf__Id, sf__Error, sf__Created are Salesforce's, not the record's.
            if name.starts_with("sf__") {
                continue;
            }
            match text(i).as_str() {
                // Empty fields were not sent (an empty field leaves a value alone).
                "" => {}
                NULL_FIELD => {
                    fields.insert(name.clone(), Value::Null);
                }
                value => {
                    fields.insert(name.clone(), Value::String(value.to_owned()));
                }
            }
        }
        Ok(Some(RejectedRecord {
            record: fields,
            code,
            message,
        }))
    }
}

fn results_error(what: &str, message: &str) -> ConnectorError {
    ConnectorError::bad_data(format!("Salesforce Bulk API 2.0 {what}: {message}"))
}

/// The field value that sets a field to null in an ingest job (an empty one leaves it alone).
pub const NULL_FIELD: &str = "#N/A";

/// `REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --` into the code and the
/// rest of the text.
fn split_error(text: &str) -> (Option<String>, String) {
    let text = text.trim().trim_end_matches("--").trim_end();
    match text.split_once(':') {
        Some((code, rest))
            if !code.is_empty()
                && code
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') =>
        {
            (Some(code.to_owned()), rest.trim().to_owned())
        }
        _ => (None, text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Date32Type, Float64Type, Int64Type, TimestampMillisecondType};

    use super::*;

    fn field(name: &str, kind: &str) -> SfField {
        SfField {
            name: name.into(),
            label: name.into(),
            kind: kind.into(),
            nillable: true,
            createable: true,
            updateable: true,
            filterable: true,
            external_id: false,
            defaulted_on_create: false,
            picklist: Vec::new(),
        }
    }

    fn fields() -> Vec<SfField> {
        vec![
            field("Id", "id"),
            field("Name", "string"),
            field("NumberOfEmployees", "int"),
            field("AnnualRevenue", "currency"),
            field("IsActive__c", "boolean"),
            field("SLAExpirationDate__c", "date"),
            field("LastModifiedDate", "datetime"),
            field("BillingAddress", "address"),
        ]
    }

    #[test]
    fn decodes_typed_columns_in_batches() {
        let body = "\"Id\",\"Name\",\"NumberOfEmployees\",\"AnnualRevenue\",\"IsActive__c\",\
                    \"SLAExpirationDate__c\",\"LastModifiedDate\"\n\
                    \"001A\",\"Acme, \"\"the\"\" one\nsecond line\",\"12\",\"1.5E7\",\"true\",\
                    \"2024-02-29\",\"2024-04-16T19:00:00.250Z\"\n\
                    \"001B\",\"Ünïcode\",\"\",\"100.0\",\"false\",\"\",\"\"\n\
                    \"001C\",\"\",\"7.0\",\"\",\"\",\"1969-12-31\",\"1970-01-01T00:00:00.000+0000\"\n";
        let mut decoder = CsvPageDecoder::new("Account", &fields(), 2);
        let batches = decoder.decode(body.as_bytes(), 1).unwrap();
        assert_eq!(
            batches
                .iter()
                .map(RecordBatch::num_rows)
                .collect::<Vec<_>>(),
            [2, 1]
        );
        let first = &batches[0];
        assert_eq!(
            first.column(1).as_string::<i32>().value(0),
            "Acme, \"the\" one\nsecond line"
        );
        assert_eq!(first.column(1).as_string::<i32>().value(1), "Ünïcode");
        assert_eq!(first.column(2).as_primitive::<Int64Type>().value(0), 12);
        assert!(first.column(2).is_null(1));
        assert_eq!(
            first.column(3).as_primitive::<Float64Type>().value(0),
            1.5e7
        );
        assert!(first.column(4).as_boolean().value(0));
        assert_eq!(
            first.column(5).as_primitive::<Date32Type>().value(0),
            19_782
        );
        assert_eq!(
            first
                .column(6)
                .as_primitive::<TimestampMillisecondType>()
                .value(0),
            1_713_294_000_250
        );
        // The compound field is not in the results: a null column.
        assert_eq!(first.column(7).null_count(), 2);
        let second = &batches[1];
        assert!(second.column(1).is_null(0), "an empty field is null");
        assert_eq!(second.column(2).as_primitive::<Int64Type>().value(0), 7);
        assert_eq!(second.column(5).as_primitive::<Date32Type>().value(0), -1);
        assert_eq!(
            second
                .column(6)
                .as_primitive::<TimestampMillisecondType>()
                .value(0),
            0
        );
    }

    #[test]
    fn fast_date_and_time_parsing_agrees_with_chrono() {
        use crate::source::{parse_date_days, parse_timestamp_millis};
        use chrono::NaiveDate;
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        let mut day = NaiveDate::from_ymd_opt(1599, 12, 25).unwrap();
        while day < NaiveDate::from_ymd_opt(2401, 3, 5).unwrap() {
            let text = day.format("%Y-%m-%d").to_string();
            let expected = (day - epoch).num_days();
            assert_eq!(
                parse_date_days(&text).map(i64::from),
                Some(expected),
                "{text}"
            );
            let time = day.and_hms_milli_opt(23, 59, 58, 999).unwrap().and_utc();
            let millis = time.timestamp_millis();
            let bulk = time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
            let rest = time.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string();
            assert_eq!(parse_timestamp_millis(&bulk), Some(millis), "{bulk}");
            assert_eq!(parse_timestamp_millis(&rest), Some(millis), "{rest}");
            day += chrono::Duration::days(13);
        }
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-04-31",
            "24-01-01x",
        ] {
            assert_eq!(parse_date_days(bad), None, "{bad}");
        }
        for bad in [
            "2024-04-16T24:00:00.000Z",
            "2024-04-16T19:60:00.000Z",
            "2024-02-30T00:00:00.000Z",
        ] {
            assert_eq!(parse_timestamp_millis(bad), None, "{bad}");
        }
        // Other offsets go through the general parser.
        assert_eq!(
            parse_timestamp_millis("2024-04-16T21:00:00.000+02:00"),
            parse_timestamp_millis("2024-04-16T19:00:00.000Z")
        );
    }

    #[test]
    fn malformed_pages_name_the_page_row_and_field() {
        let mut decoder = CsvPageDecoder::new("Account", &fields()[..3], 100);
        let error = decoder
            .decode(b"Id,Name,NumberOfEmployees\n001A,x,12\n001B,y,many\n", 4)
            .unwrap_err();
        assert!(
            error.message.contains("page 4")
                && error.message.contains("row 2")
                && error.message.contains("NumberOfEmployees")
                && error.message.contains("'many'"),
            "{error}"
        );
        let error = decoder.decode(b"Id,Name\n001A,x\n", 1).unwrap_err();
        assert!(
            error
                .message
                .contains("no column for field NumberOfEmployees"),
            "{error}"
        );
        let error = decoder
            .decode(b"Id,Name,NumberOfEmployees,name\n", 1)
            .unwrap_err();
        assert!(
            error.message.contains("column name appears twice"),
            "{error}"
        );
        let error = decoder.decode(b"Id,Name,Extra\n", 1).unwrap_err();
        assert!(error.message.contains("unexpected column Extra"), "{error}");
        let error = decoder
            .decode(b"Id,Name,NumberOfEmployees\n001A,x\n", 1)
            .unwrap_err();
        assert!(error.message.contains("row 1 has 2 fields"), "{error}");
        let overflow = decoder.decode(b"Id,Name,NumberOfEmployees\n001A,x,1e300\n", 1);
        assert!(overflow.is_err());
        // An empty page (no header either) is no rows, not an error.
        assert!(decoder.decode(b"", 1).unwrap().is_empty());
        assert!(
            decoder
                .decode(b"Id,Name,NumberOfEmployees\n", 1)
                .unwrap()
                .is_empty()
        );
    }

    /// The records of a results CSV fed to the parser `piece` bytes at a time, as a download
    /// hands them over.
    fn results_in_pieces(
        body: &[u8],
        which: IngestResults,
        message: &str,
        piece: usize,
    ) -> Result<Vec<RejectedRecord>, ConnectorError> {
        let mut feed = CsvFeed::new();
        let mut pieces = body.chunks(piece.max(1));
        let mut parser: Option<ResultRecords> = None;
        let mut out = Vec::new();
        loop {
            match feed.advance() {
                CsvStep::NeedInput => match pieces.next() {
                    Some(bytes) => feed.push(Bytes::copy_from_slice(bytes)),
                    None => feed.end_input(),
                },
                CsvStep::End => break,
                CsvStep::Record => match parser.as_mut() {
                    None => {
                        parser = Some(ResultRecords::new(
                            Some(&feed.record()),
                            which,
                            message.to_owned(),
                        )?);
                    }
                    Some(parser) => out.extend(parser.record(&feed.record())?),
                },
            }
        }
        if parser.is_none() {
            // An empty CSV: no header at all.
            ResultRecords::new(None, which, message.to_owned())?;
        }
        Ok(out)
    }

    /// The same records whatever the pieces the body arrives in.
    fn results(
        body: &[u8],
        which: IngestResults,
        message: &str,
    ) -> Result<Vec<RejectedRecord>, ConnectorError> {
        let whole = results_in_pieces(body, which, message, body.len());
        for piece in [1, 2, 3, 7, 64] {
            let split = results_in_pieces(body, which, message, piece);
            match (&whole, &split) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "pieces of {piece} bytes"),
                (Err(a), Err(b)) => assert_eq!(a.message, b.message, "pieces of {piece} bytes"),
                _ => panic!("pieces of {piece} bytes: {whole:?} but {split:?}"),
            }
        }
        whole
    }

    #[test]
    fn failed_results_become_rejected_records() {
        let body = "\"sf__Id\",\"sf__Error\",\"Name\",\"External_Id__c\"\n\
                    \"\",\"REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --\",\"\",\"e1\"\n\
                    \"001X\",\"DUPLICATE_VALUE:duplicate value found: a, b:External_Id__c --\",\"Ü\",\"e2\"\r\n\
                    \"\",\"something went wrong\",\"n\nline two\",\"e3\"";
        let records = results(body.as_bytes(), IngestResults::Failed, "").unwrap();
        assert_eq!(records.len(), 3, "the last record has no line end");
        assert_eq!(records[0].code.as_deref(), Some("REQUIRED_FIELD_MISSING"));
        assert_eq!(
            records[0].message,
            "Required fields are missing: [Name]:Name"
        );
        assert_eq!(
            records[0].record,
            json!({"External_Id__c": "e1"})
                .as_object()
                .cloned()
                .unwrap()
        );
        assert_eq!(records[1].code.as_deref(), Some("DUPLICATE_VALUE"));
        assert_eq!(records[1].record["Name"], "Ü");
        assert_eq!(records[2].code, None);
        assert_eq!(records[2].message, "something went wrong");
        assert_eq!(records[2].record["Name"], "n\nline two");
        let error = results(b"a,b\n", IngestResults::Failed, "").unwrap_err();
        assert!(error.message.contains("no sf__Error column"), "{error}");
        assert!(results(b"", IngestResults::Failed, "").is_err());
    }

    #[test]
    fn unprocessed_records_become_rejected_records() {
        let body = "Name,External_Id__c,Phone\n\
                    \"Acme, Inc\",e1,#N/A\n\
                    \n\
                    Ünï,e2,\n";
        let message = "job 750 ended Failed before processing the record";
        let records = results(body.as_bytes(), IngestResults::Unprocessed, message).unwrap();
        assert_eq!(records.len(), 2, "the blank line is no record");
        assert_eq!(records[0].code.as_deref(), Some(UNPROCESSED));
        assert_eq!(records[0].message, message);
        assert_eq!(
            records[0].record,
            json!({"Name": "Acme, Inc", "External_Id__c": "e1", "Phone": null})
                .as_object()
                .cloned()
                .unwrap(),
            "#N/A was a null"
        );
        assert_eq!(
            records[1].record,
            json!({"Name": "Ünï", "External_Id__c": "e2"})
                .as_object()
                .cloned()
                .unwrap()
        );
        // Nothing unprocessed: an empty body, or a header alone.
        let none = |body: &[u8]| results(body, IngestResults::Unprocessed, "").unwrap();
        assert!(none(b"").is_empty());
        assert!(none(b"Name\n").is_empty());
        // More fields than the header is an error that says where.
        let error = results(b"Name\na\nb,c\n", IngestResults::Unprocessed, "").unwrap_err();
        assert!(
            error
                .message
                .contains("unprocessed records: record 2 has 2 fields"),
            "{error}"
        );
    }

    #[test]
    fn query_pages_decode_the_same_in_any_pieces() {
        let body = "\"Id\",\"Name\",\"NumberOfEmployees\"\n\
                    \"001A\",\"Acme, \"\"the\"\" one\nsecond line\",\"12\"\n\
                    \"001B\",\"Ünïcode 🚀\",\"\"\n\
                    \"001C\",\"\",\"7\"";
        let whole = CsvPageDecoder::new("Account", &fields()[..3], 2)
            .decode(body.as_bytes(), 1)
            .unwrap();
        for piece in [1, 2, 5, 16] {
            let mut decoder = CsvPageDecoder::new("Account", &fields()[..3], 2);
            let mut feed = CsvFeed::new();
            let mut pieces = body.as_bytes().chunks(piece);
            let mut header = true;
            let mut batches = Vec::new();
            loop {
                match feed.advance() {
                    CsvStep::NeedInput => match pieces.next() {
                        Some(bytes) => feed.push(Bytes::copy_from_slice(bytes)),
                        None => feed.end_input(),
                    },
                    CsvStep::End => break,
                    CsvStep::Record if header => {
                        decoder.start_page(1, &feed.record()).unwrap();
                        header = false;
                    }
                    CsvStep::Record => batches.extend(decoder.push_row(&feed.record()).unwrap()),
                }
            }
            batches.extend(decoder.flush().unwrap());
            assert_eq!(decoder.page_rows(), 3);
            assert_eq!(batches, whole, "pieces of {piece} bytes");
        }
        assert_eq!(
            whole.iter().map(RecordBatch::num_rows).collect::<Vec<_>>(),
            [2, 1]
        );
    }

    async fn frames(mut body: reqwest::Body) -> Result<Vec<u8>, String> {
        use http_body::Body as _;
        let mut out = Vec::new();
        loop {
            let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
            match frame {
                None => return Ok(out),
                Some(Err(error)) => {
                    // The file's error is the source of reqwest's.
                    let mut text = error.to_string();
                    let mut source = std::error::Error::source(&error);
                    while let Some(cause) = source {
                        text = format!("{text}: {cause}");
                        source = cause.source();
                    }
                    return Err(text);
                }
                Some(Ok(frame)) => out.extend_from_slice(&frame.into_data().unwrap_or_default()),
            }
        }
    }

    #[tokio::test]
    async fn file_bodies_stream_the_file_and_announce_its_length() {
        use http_body::Body as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upload.csv");
        // Several chunks, the last one short.
        let data: Vec<u8> = (0..FILE_CHUNK * 2 + 1234)
            .map(|i| b"abc,\"d\"\n"[i % 8])
            .collect();
        std::fs::write(&path, &data).unwrap();
        let body = FileBody::open(&path, data.len() as u64);
        assert_eq!(body.size_hint().exact(), Some(data.len() as u64));
        assert_eq!(frames(body).await.unwrap(), data);
        // Only the announced length is sent.
        assert_eq!(
            frames(FileBody::open(&path, 10)).await.unwrap(),
            &data[..10]
        );
        // A file shorter than announced, or missing, is an error, not a short body.
        let error = frames(FileBody::open(&path, data.len() as u64 + 5))
            .await
            .unwrap_err();
        assert!(error.contains("ended 5 bytes early"), "{error}");
        let missing = dir.path().join("gone.csv");
        let error = frames(FileBody::open(&missing, 3)).await.unwrap_err();
        assert!(error.contains("gone.csv"), "{error}");
    }
}
