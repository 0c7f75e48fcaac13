//! A fake Salesforce HTTP server for tests, following Salesforce's documented wire formats.
//!
//! It serves, on a loopback port:
//! - `POST /services/oauth2/token`: `authorization_code` (with PKCE `code_verifier`),
//!   `refresh_token`, `client_credentials` and JWT bearer grants; errors are
//!   `{"error", "error_description"}` with status 400.
//! - `GET /services/data/vXX.X/sobjects` and `.../sobjects/{object}/describe`.
//! - `GET .../query` and `.../queryAll` with a SOQL subset ([`soql`]), paged through
//!   `nextRecordsUrl` (`.../query/{locator}-{offset}`).
//! - sObject Collections (`/composite/sobjects`: insert, update, upsert by external id,
//!   delete) with per-record results, and the single-record `sobjects/{object}[/{id}]` calls.
//! - Bulk API 2.0 query and ingest jobs under `.../jobs/query` and `.../jobs/ingest` ([`bulk`]):
//!   CSV results paged by `Sforce-Locator`, per-record successful/failed/unprocessed results.
//!
//! Records are validated the same way on every write path: unknown fields (`INVALID_FIELD`),
//! required fields (`REQUIRED_FIELD_MISSING`), types, lengths, picklists and multi-select
//! picklists (`a;b`, each value from the picklist), unique external ids (`DUPLICATE_VALUE`) and
//! external ids repeated within one upsert (`DUPLICATE_EXTERNAL_ID`).
//!
//! Every data API response carries `Sforce-Limit-Info: api-usage=n/limit`. An unknown or
//! expired bearer token gets `401 INVALID_SESSION_ID`; faults queued with
//! [`FakeSalesforce::inject`] answer the next requests with `503` or
//! `403 REQUEST_LIMIT_EXCEEDED`; [`FakeSalesforce::break_next_body`] cuts a download short
//! midway. The state is in memory and inspectable from tests.

// Handlers short-circuit with a ready `Response` as their error; boxing it buys nothing here.
#![allow(clippy::result_large_err)]

mod admin;
pub mod bulk;
pub mod soql;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The API version the fake reports and serves (any `vNN.N` prefix is accepted).
pub const API_VERSION: &str = "58.0";

/// A field of an sObject, as `describe` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDef {
    /// API name.
    pub name: String,
    /// Salesforce field type (`id`, `string`, `boolean`, `int`, `double`, `currency`, `date`,
    /// `datetime`, `picklist`, `reference`, `textarea`, ...).
    pub kind: String,
    /// Maximum length for text fields.
    pub length: u32,
    /// Whether the field may be empty.
    pub nillable: bool,
    /// Whether inserts may set it.
    pub createable: bool,
    /// Whether updates may set it.
    pub updateable: bool,
    /// Whether it is an external id (usable for upserts).
    pub external_id: bool,
    /// Allowed picklist values.
    pub picklist: Vec<String>,
}

impl FieldDef {
    /// A writable, nillable field of `kind`.
    pub fn new(name: &str, kind: &str) -> Self {
        Self {
            name: name.to_owned(),
            kind: kind.to_owned(),
            length: if matches!(kind, "string" | "picklist" | "textarea" | "url" | "phone") {
                255
            } else if kind == "multipicklist" {
                4099
            } else {
                0
            },
            nillable: true,
            createable: true,
            updateable: true,
            external_id: false,
            picklist: Vec::new(),
        }
    }

    /// A system field the API sets (not createable or updateable).
    pub fn system(name: &str, kind: &str) -> Self {
        Self {
            nillable: kind != "id",
            createable: false,
            updateable: false,
            ..Self::new(name, kind)
        }
    }

    fn describe(&self) -> Value {
        let filterable = !matches!(self.kind.as_str(), "textarea");
        json!({
            "name": self.name,
            "label": self.name,
            "type": self.kind,
            "soapType": soap_type(&self.kind),
            "length": self.length,
            "nillable": self.nillable,
            "createable": self.createable,
            "updateable": self.updateable,
            "filterable": filterable,
            "sortable": filterable,
            "externalId": self.external_id,
            "idLookup": self.kind == "id" || self.external_id,
            "unique": self.external_id,
            "defaultedOnCreate": !self.createable,
            "custom": self.name.ends_with("__c"),
            "picklistValues": self.picklist.iter().map(|v| json!({
                "active": true, "defaultValue": false, "label": v, "value": v, "validFor": null
            })).collect::<Vec<_>>(),
        })
    }
}

fn soap_type(kind: &str) -> &'static str {
    match kind {
        "id" | "reference" => "tns:ID",
        "boolean" => "xsd:boolean",
        "int" => "xsd:int",
        "double" | "currency" | "percent" => "xsd:double",
        "date" => "xsd:date",
        "datetime" => "xsd:dateTime",
        _ => "xsd:string",
    }
}

/// An sObject type and its records.
#[derive(Debug, Clone)]
pub struct SObject {
    /// API name.
    pub name: String,
    /// Three-character id prefix.
    pub key_prefix: String,
    /// Fields.
    pub fields: Vec<FieldDef>,
    /// Records, in insertion order; deleted ones keep `IsDeleted: true`.
    pub records: Vec<Map<String, Value>>,
}

impl SObject {
    /// An object with Salesforce's system fields (`Id`, `IsDeleted`, `CreatedDate`,
    /// `LastModifiedDate`, `SystemModstamp`) plus `fields`.
    pub fn new(name: &str, key_prefix: &str, fields: Vec<FieldDef>) -> Self {
        let mut all = vec![
            FieldDef::system("Id", "id"),
            FieldDef {
                nillable: false,
                ..FieldDef::system("IsDeleted", "boolean")
            },
        ];
        all.extend(fields);
        for system in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
            all.push(FieldDef {
                nillable: false,
                ..FieldDef::system(system, "datetime")
            });
        }
        Self {
            name: name.to_owned(),
            key_prefix: key_prefix.to_owned(),
            fields: all,
            records: Vec::new(),
        }
    }

    /// A standard-looking `Account`.
    pub fn account() -> Self {
        let mut industry = FieldDef::new("Industry", "picklist");
        industry.picklist = ["Agriculture", "Banking", "Energy", "Technology"]
            .map(String::from)
            .to_vec();
        let mut external = FieldDef::new("External_Id__c", "string");
        external.external_id = true;
        Self::new(
            "Account",
            "001",
            vec![
                FieldDef {
                    nillable: false,
                    ..FieldDef::new("Name", "string")
                },
                industry,
                FieldDef::new("AnnualRevenue", "currency"),
                FieldDef::new("NumberOfEmployees", "int"),
                FieldDef::new("Phone", "phone"),
                FieldDef::new("Description", "textarea"),
                FieldDef::new("IsActive__c", "boolean"),
                FieldDef::new("SLAExpirationDate__c", "date"),
                external,
            ],
        )
    }

    fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

/// A fault answering the next data API request instead of the real handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `503 Service Unavailable` with an optional `Retry-After` (seconds).
    Unavailable {
        /// `Retry-After` header value.
        retry_after: Option<u32>,
    },
    /// `403` with `errorCode: REQUEST_LIMIT_EXCEEDED`.
    RequestLimitExceeded,
}

/// Counters of what the fake served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Successful token grants, by grant type.
    pub grants: BTreeMap<String, u64>,
    /// Data API requests answered (including faults and 401s).
    pub api_requests: u64,
    /// Requests refused with 401.
    pub unauthorized: u64,
    /// Faults served.
    pub faults_served: u64,
    /// REST `query`/`queryAll` calls that started a query (not counting `nextRecordsUrl` pages).
    pub rest_queries: u64,
    /// sObject Collections calls (insert, update, upsert, delete).
    pub collection_calls: u64,
    /// Bulk API 2.0 query jobs created.
    pub bulk_query_jobs: u64,
    /// Bulk API 2.0 ingest jobs created.
    pub bulk_ingest_jobs: u64,
    /// Answers cut short by [`FakeSalesforce::break_next_body`].
    pub bodies_broken: u64,
}

struct Inner {
    objects: BTreeMap<String, SObject>,
    clients: HashMap<String, String>,
    auth_codes: HashMap<String, (String, String, Option<String>)>,
    refresh_tokens: HashMap<String, bool>,
    access_tokens: HashMap<String, bool>,
    cursors: HashMap<String, Cursor>,
    faults: VecDeque<Fault>,
    /// Successful answers to cut short: a path fragment and the body bytes sent before the
    /// connection breaks.
    broken_bodies: Vec<(String, usize)>,
    page_size: usize,
    api_limit: u64,
    next_id: u64,
    next_token: u64,
    now: Option<DateTime<Utc>>,
    stats: Stats,
    base_url: String,
    bulk: bulk::BulkState,
}

impl Inner {
    fn now(&self) -> DateTime<Utc> {
        self.now.unwrap_or_else(Utc::now)
    }

    fn token(&mut self, kind: &str) -> String {
        self.next_token += 1;
        format!(
            "00D{kind}!{:016x}",
            self.next_token.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        )
    }
}

/// A running fake; stops when dropped.
pub struct FakeSalesforce {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for FakeSalesforce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeSalesforce")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

type Shared = Arc<Mutex<Inner>>;

fn lock(inner: &Shared) -> MutexGuard<'_, Inner> {
    // A panic in a handler must not wedge every later request of a test.
    inner
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FakeSalesforce {
    /// Starts a fake on `127.0.0.1:port` (0 picks a free port) with an `Account` object.
    pub async fn start(port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let mut objects = BTreeMap::new();
        objects.insert("Account".to_owned(), SObject::account());
        let inner = Arc::new(Mutex::new(Inner {
            objects,
            clients: HashMap::new(),
            auth_codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
            cursors: HashMap::new(),
            faults: VecDeque::new(),
            broken_bodies: Vec::new(),
            page_size: 2000,
            api_limit: 15_000,
            next_id: 0,
            next_token: 0,
            now: None,
            stats: Stats::default(),
            base_url: format!("http://{addr}"),
            bulk: bulk::BulkState::default(),
        }));
        let app = router(inner.clone());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            inner,
            shutdown: Some(tx),
        })
    }

    /// `http://127.0.0.1:port`, both the login host and the instance URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn state(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Adds or replaces an sObject type.
    pub fn add_object(&self, object: SObject) {
        self.state().objects.insert(object.name.clone(), object);
    }

    /// Adds a field to an existing object (a field created in Salesforce after a flow was).
    pub fn add_field(&self, object: &str, field: FieldDef) {
        if let Some(o) = self.state().objects.get_mut(object) {
            o.fields.push(field);
        }
    }

    /// Records per query page (Salesforce's default is 2,000).
    pub fn set_page_size(&self, rows: usize) {
        self.state().page_size = rows.max(1);
    }

    /// Fixes the clock used for system timestamps (`None` uses the wall clock).
    pub fn set_now(&self, now: Option<DateTime<Utc>>) {
        self.state().now = now;
    }

    /// Inserts records directly, assigning ids and system fields; returns the ids.
    pub fn insert(&self, object: &str, records: Vec<Map<String, Value>>) -> Vec<String> {
        let mut state = self.state();
        records
            .into_iter()
            .filter_map(|r| insert_record(&mut state, object, r).ok())
            .collect()
    }

    /// Changes fields of a record, bumping `LastModifiedDate`/`SystemModstamp`.
    pub fn update(&self, object: &str, id: &str, fields: Map<String, Value>) -> bool {
        let mut state = self.state();
        update_record(&mut state, object, id, fields).is_ok()
    }

    /// Soft-deletes a record (it stays visible to `queryAll`).
    pub fn delete(&self, object: &str, id: &str) -> bool {
        let mut state = self.state();
        delete_record(&mut state, object, id).is_ok()
    }

    /// Live (not deleted) records of an object.
    pub fn records(&self, object: &str) -> Vec<Map<String, Value>> {
        self.state()
            .objects
            .get(object)
            .map(|o| {
                o.records
                    .iter()
                    .filter(|r| r.get("IsDeleted") != Some(&Value::Bool(true)))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Registers a connected app.
    pub fn register_client(&self, client_id: &str, client_secret: &str) {
        self.state()
            .clients
            .insert(client_id.to_owned(), client_secret.to_owned());
    }

    /// Issues an authorization code for `client_id`, bound to `redirect_uri` and, for PKCE, to
    /// `code_verifier` (the fake keeps the verifier itself rather than its S256 challenge; the
    /// exchange must send the same verifier either way).
    pub fn issue_auth_code(
        &self,
        client_id: &str,
        redirect_uri: &str,
        code_verifier: Option<&str>,
    ) -> String {
        let mut state = self.state();
        let code = state.token("code");
        state.auth_codes.insert(
            code.clone(),
            (
                client_id.to_owned(),
                redirect_uri.to_owned(),
                code_verifier.map(str::to_owned),
            ),
        );
        code
    }

    /// Issues a refresh token.
    pub fn issue_refresh_token(&self) -> String {
        let mut state = self.state();
        let token = state.token("refresh");
        state.refresh_tokens.insert(token.clone(), true);
        token
    }

    /// Issues an access token directly (as a session id).
    pub fn issue_access_token(&self) -> String {
        let mut state = self.state();
        let token = state.token("access");
        state.access_tokens.insert(token.clone(), true);
        token
    }

    /// Revokes a refresh token.
    pub fn revoke_refresh_token(&self, token: &str) {
        self.state().refresh_tokens.insert(token.to_owned(), false);
    }

    /// Expires every access token issued so far (the next API call gets a 401).
    pub fn expire_access_tokens(&self) {
        for valid in self.state().access_tokens.values_mut() {
            *valid = false;
        }
    }

    /// Queues faults for the next data API requests.
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state().faults.extend(faults);
    }

    /// Breaks the connection of the next successful answer to a request whose path contains
    /// `path_fragment`, after `after_bytes` bytes of its body (a download cut short midway).
    pub fn break_next_body(&self, path_fragment: &str, after_bytes: usize) {
        self.state()
            .broken_bodies
            .push((path_fragment.to_owned(), after_bytes));
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.state().stats.clone()
    }

    /// How many status polls a Bulk API 2.0 job answers `InProgress` before it completes
    /// (0, the default, completes a job by the first poll).
    pub fn set_bulk_processing_polls(&self, polls: u32) {
        self.state().bulk.processing_polls = polls;
    }

    /// Makes the next Bulk API 2.0 job created (query or ingest) end in state `Failed` with
    /// `message` as its `errorMessage`; an ingest job that fails processes no record.
    pub fn fail_next_bulk_job(&self, message: &str) {
        self.state().bulk.fail_next.push_back(message.to_owned());
    }

    /// The job info of every Bulk API 2.0 job, oldest first, as `GET .../jobs/{kind}/{id}`
    /// would answer it (without advancing the job).
    pub fn bulk_jobs(&self) -> Vec<Value> {
        let state = self.state();
        state.bulk.jobs().map(bulk::Job::info).collect()
    }
}

impl Drop for FakeSalesforce {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn new_id(state: &mut Inner, prefix: &str) -> String {
    state.next_id += 1;
    // 18 characters like a real id: 3-char prefix, 12 digits, 3-char suffix.
    format!("{prefix}{:012}AAA", state.next_id)
}

fn sf_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// A per-record failure, as Salesforce reports it.
#[derive(Debug, Clone)]
struct RecordError {
    status_code: &'static str,
    message: String,
    fields: Vec<String>,
}

impl RecordError {
    fn new(status_code: &'static str, message: impl Into<String>, fields: Vec<String>) -> Self {
        Self {
            status_code,
            message: message.into(),
            fields,
        }
    }

    fn to_json(&self) -> Value {
        json!({"statusCode": self.status_code, "message": self.message, "fields": self.fields})
    }
}

fn check_fields(
    object: &SObject,
    record: &Map<String, Value>,
    creating: bool,
) -> Result<Map<String, Value>, RecordError> {
    let mut clean = Map::new();
    for (key, value) in record {
        if key == "attributes" || key == "Id" {
            continue;
        }
        let Some(field) = object.field(key) else {
            return Err(RecordError::new(
                "INVALID_FIELD",
                format!("No such column '{key}' on sobject of type {}", object.name),
                vec![key.clone()],
            ));
        };
        if (creating && !field.createable) || (!creating && !field.updateable) {
            return Err(RecordError::new(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                format!("Unable to create/update fields: {}", field.name),
                vec![field.name.clone()],
            ));
        }
        let coerced = coerce(field, value).ok_or_else(|| {
            RecordError::new(
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
                format!("{}: value not of required type: {value}", field.name),
                vec![field.name.clone()],
            )
        })?;
        if let Value::String(s) = &coerced
            && field.length > 0
            && s.chars().count() > field.length as usize
        {
            return Err(RecordError::new(
                "STRING_TOO_LONG",
                format!("{}: data value too large: {s}", field.name),
                vec![field.name.clone()],
            ));
        }
        if !field.nillable && coerced.is_null() {
            return Err(RecordError::new(
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", field.name),
                vec![field.name.clone()],
            ));
        }
        clean.insert(field.name.clone(), coerced);
    }
    if creating {
        for field in &object.fields {
            if field.createable && !field.nillable && !clean.contains_key(&field.name) {
                return Err(RecordError::new(
                    "REQUIRED_FIELD_MISSING",
                    format!("Required fields are missing: [{}]", field.name),
                    vec![field.name.clone()],
                ));
            }
        }
    }
    Ok(clean)
}

/// External ids are unique: a value another live record already holds is `DUPLICATE_VALUE`.
fn check_unique(
    object: &SObject,
    clean: &Map<String, Value>,
    except_id: Option<&str>,
) -> Result<(), RecordError> {
    for field in object.fields.iter().filter(|f| f.external_id) {
        let Some(value) = clean.get(&field.name).filter(|v| !v.is_null()) else {
            continue;
        };
        let holder = object.records.iter().find(|r| {
            r.get(&field.name) == Some(value)
                && r.get("IsDeleted") != Some(&Value::Bool(true))
                && r.get("Id").and_then(Value::as_str) != except_id
        });
        if let Some(holder) = holder {
            let holder_id = holder.get("Id").and_then(Value::as_str).unwrap_or_default();
            return Err(RecordError::new(
                "DUPLICATE_VALUE",
                format!(
                    "duplicate value found: {} duplicates value on record with id: {holder_id}",
                    field.name
                ),
                vec![field.name.clone()],
            ));
        }
    }
    Ok(())
}

/// Positions of records whose external id occurs more than once in the same request: an
/// upsert cannot tell which of them is meant, so Salesforce rejects all of them.
fn repeated_keys(keys: impl Iterator<Item = Option<String>>) -> std::collections::HashSet<usize> {
    let mut seen: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, key) in keys.enumerate() {
        if let Some(key) = key {
            seen.entry(key).or_default().push(i);
        }
    }
    seen.into_values()
        .filter(|positions| positions.len() > 1)
        .flatten()
        .collect()
}

/// The text of an external id value (strings without their JSON quotes).
fn key_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn duplicate_external_id(value: &Value) -> RecordError {
    let text = key_text(value).unwrap_or_default();
    RecordError::new(
        "DUPLICATE_EXTERNAL_ID",
        format!("Duplicate external id specified: {text}"),
        vec![],
    )
}

fn coerce(field: &FieldDef, value: &Value) -> Option<Value> {
    if value.is_null() || value.as_str() == Some("") && field.kind != "string" {
        return Some(Value::Null);
    }
    match field.kind.as_str() {
        "boolean" => match value {
            Value::Bool(_) => Some(value.clone()),
            Value::String(s) => s.parse::<bool>().ok().map(Value::Bool),
            _ => None,
        },
        "int" => match value {
            Value::Number(n) => n.as_i64().map(Value::from),
            Value::String(s) => s.trim().parse::<i64>().ok().map(Value::from),
            _ => None,
        },
        "double" | "currency" | "percent" => match value {
            Value::Number(_) => Some(value.clone()),
            Value::String(s) => s.trim().parse::<f64>().ok().map(Value::from),
            _ => None,
        },
        "date" => {
            let s = value.as_str()?;
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .map(|_| value.clone())
        }
        "datetime" => soql::parse_datetime(value.as_str()?)
            .map(|dt| Value::String(sf_time(dt.with_timezone(&Utc)))),
        "picklist" => {
            let s = value.as_str()?;
            if field.picklist.is_empty() || field.picklist.iter().any(|p| p == s) {
                Some(value.clone())
            } else {
                None
            }
        }
        // A multi-select picklist takes its values as one text, `;`-separated (a JSON array
        // is refused); each must be one of the picklist's, and blanks between separators are
        // dropped.
        "multipicklist" => {
            let values: Vec<&str> = value
                .as_str()?
                .split(';')
                .filter(|v| !v.is_empty())
                .collect();
            let allowed =
                |v: &&str| field.picklist.is_empty() || field.picklist.iter().any(|p| p == v);
            if !values.iter().all(allowed) {
                return None;
            }
            Some(if values.is_empty() {
                Value::Null
            } else {
                Value::String(values.join(";"))
            })
        }
        _ => match value {
            Value::String(_) => Some(value.clone()),
            Value::Number(n) => Some(Value::String(n.to_string())),
            Value::Bool(b) => Some(Value::String(b.to_string())),
            _ => None,
        },
    }
}

fn insert_record(
    state: &mut Inner,
    object: &str,
    record: Map<String, Value>,
) -> Result<String, RecordError> {
    let now = sf_time(state.now());
    let Some(prefix) = state.objects.get(object).map(|o| o.key_prefix.clone()) else {
        return Err(RecordError::new(
            "NOT_FOUND",
            format!("sObject type '{object}' is not supported"),
            vec![],
        ));
    };
    let clean = check_fields(&state.objects[object], &record, true)?;
    check_unique(&state.objects[object], &clean, None)?;
    let id = new_id(state, &prefix);
    let sobject = state
        .objects
        .get_mut(object)
        .ok_or_else(|| RecordError::new("NOT_FOUND", "gone", vec![]))?;
    let mut stored = Map::new();
    for field in &sobject.fields {
        stored.insert(
            field.name.clone(),
            clean.get(&field.name).cloned().unwrap_or(Value::Null),
        );
    }
    stored.insert("Id".into(), Value::String(id.clone()));
    stored.insert("IsDeleted".into(), Value::Bool(false));
    for system in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
        stored.insert(system.into(), Value::String(now.clone()));
    }
    sobject.records.push(stored);
    Ok(id)
}

fn update_record(
    state: &mut Inner,
    object: &str,
    id: &str,
    record: Map<String, Value>,
) -> Result<(), RecordError> {
    let now = sf_time(state.now());
    let sobject = state.objects.get_mut(object).ok_or_else(|| {
        RecordError::new(
            "NOT_FOUND",
            format!("sObject type '{object}' is not supported"),
            vec![],
        )
    })?;
    let clean = check_fields(sobject, &record, false)?;
    check_unique(sobject, &clean, Some(id))?;
    let Some(stored) = sobject
        .records
        .iter_mut()
        .find(|r| r.get("Id").and_then(Value::as_str) == Some(id))
    else {
        return Err(RecordError::new(
            "INVALID_CROSS_REFERENCE_KEY",
            format!("invalid cross reference id: {id}"),
            vec![],
        ));
    };
    if stored.get("IsDeleted") == Some(&Value::Bool(true)) {
        return Err(RecordError::new(
            "ENTITY_IS_DELETED",
            "entity is deleted",
            vec![],
        ));
    }
    for (k, v) in clean {
        stored.insert(k, v);
    }
    stored.insert("LastModifiedDate".into(), Value::String(now.clone()));
    stored.insert("SystemModstamp".into(), Value::String(now));
    Ok(())
}

fn delete_record(state: &mut Inner, object: &str, id: &str) -> Result<(), RecordError> {
    let now = sf_time(state.now());
    let found = state.objects.get_mut(object).and_then(|o| {
        o.records
            .iter_mut()
            .find(|r| r.get("Id").and_then(Value::as_str) == Some(id))
    });
    let Some(stored) = found else {
        return Err(RecordError::new(
            "INVALID_CROSS_REFERENCE_KEY",
            format!("invalid cross reference id: {id}"),
            vec![],
        ));
    };
    if stored.get("IsDeleted") == Some(&Value::Bool(true)) {
        return Err(RecordError::new(
            "ENTITY_IS_DELETED",
            "entity is deleted",
            vec![],
        ));
    }
    stored.insert("IsDeleted".into(), Value::Bool(true));
    stored.insert("LastModifiedDate".into(), Value::String(now.clone()));
    stored.insert("SystemModstamp".into(), Value::String(now));
    Ok(())
}

fn object_of_id(state: &Inner, id: &str) -> Option<String> {
    state
        .objects
        .values()
        .find(|o| id.starts_with(&o.key_prefix))
        .map(|o| o.name.clone())
}

fn upsert_record(
    state: &mut Inner,
    object: &str,
    external_field: &str,
    mut record: Map<String, Value>,
) -> Result<(String, bool), RecordError> {
    let sobject = state.objects.get(object).ok_or_else(|| {
        RecordError::new(
            "NOT_FOUND",
            format!("sObject type '{object}' is not supported"),
            vec![],
        )
    })?;
    let Some(field) = sobject
        .field(external_field)
        .filter(|f| f.external_id || f.kind == "id")
    else {
        return Err(RecordError::new(
            "INVALID_FIELD",
            format!("Field {external_field} is not an external id field of {object}"),
            vec![external_field.to_owned()],
        ));
    };
    let field_name = field.name.clone();
    let Some(key) = record.get(&field_name).filter(|v| !v.is_null()).cloned() else {
        return Err(RecordError::new(
            "MISSING_ARGUMENT",
            format!("{field_name} not specified"),
            vec![field_name],
        ));
    };
    let existing = sobject
        .records
        .iter()
        .find(|r| {
            r.get(&field_name) == Some(&key) && r.get("IsDeleted") != Some(&Value::Bool(true))
        })
        .and_then(|r| r.get("Id").and_then(Value::as_str).map(str::to_owned));
    match existing {
        Some(id) => {
            if field_name == "Id" {
                record.remove("Id");
            }
            update_record(state, object, &id, record)?;
            Ok((id, false))
        }
        None => Ok((insert_record(state, object, record)?, true)),
    }
}

fn error_body(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!([{"message": message, "errorCode": code}])),
    )
        .into_response()
}

/// Cuts a successful answer short when [`FakeSalesforce::break_next_body`] asked for it.
async fn break_bodies(
    State(inner): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if !response.status().is_success() {
        return response;
    }
    let keep = {
        let mut state = lock(&inner);
        let found = state
            .broken_bodies
            .iter()
            .position(|(fragment, _)| path.contains(fragment.as_str()));
        let keep = found.map(|i| state.broken_bodies.remove(i).1);
        if keep.is_some() {
            state.stats.bodies_broken += 1;
        }
        keep
    };
    let Some(keep) = keep else {
        return response;
    };
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let head = bytes.slice(..keep.min(bytes.len()));
    // The head, then (once the client had time to read it) an error that breaks the
    // connection, then nothing.
    let pieces = futures::stream::unfold(Some(Some(head)), |step| async move {
        match step? {
            Some(head) => Some((Ok(head), Some(None))),
            None => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                Some((
                    Err(std::io::Error::other("connection cut by the fake")),
                    None,
                ))
            }
        }
    });
    Response::from_parts(parts, axum::body::Body::from_stream(pieces))
}

fn router(inner: Shared) -> Router {
    let breaker = axum::middleware::from_fn_with_state(inner.clone(), break_bodies);
    let routes = api_routes(inner);
    // Clients differ on trailing slashes (`sobjects/Account/`); Salesforce ignores them.
    let retry = routes.clone();
    routes
        .fallback(move |request: axum::extract::Request| {
            let mut retry = retry.clone();
            async move {
                let path = request.uri().path();
                if path.len() > 1 && path.ends_with('/') {
                    let trimmed = match request.uri().query() {
                        Some(query) => format!("{}?{query}", path.trim_end_matches('/')),
                        None => path.trim_end_matches('/').to_owned(),
                    };
                    let (mut parts, body) = request.into_parts();
                    if let Ok(uri) = trimmed.parse() {
                        parts.uri = uri;
                        let request = axum::extract::Request::from_parts(parts, body);
                        return match tower::Service::call(&mut retry, request).await {
                            Ok(response) => response,
                            Err(never) => match never {},
                        };
                    }
                }
                StatusCode::NOT_FOUND.into_response()
            }
        })
        .layer(breaker)
}

fn api_routes(inner: Shared) -> Router {
    Router::new()
        .route("/services/oauth2/token", post(token))
        .route("/services/data", get(versions))
        .route("/services/data/{version}/sobjects", get(list_sobjects))
        .route(
            "/services/data/{version}/sobjects/{object}",
            post(create_one),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/describe",
            get(describe),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/{id}",
            get(get_one).patch(update_one).delete(delete_one),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/{field}/{value}",
            axum::routing::patch(upsert_one),
        )
        .route("/services/data/{version}/query", get(query))
        .route("/services/data/{version}/queryAll", get(query_all))
        .route("/services/data/{version}/query/{locator}", get(query_more))
        .route(
            "/services/data/{version}/queryAll/{locator}",
            get(query_more),
        )
        .route(
            "/services/data/{version}/composite/sobjects",
            post(collection_insert)
                .patch(collection_update)
                .delete(collection_delete),
        )
        .route(
            "/services/data/{version}/composite/sobjects/{object}/{field}",
            axum::routing::patch(collection_upsert),
        )
        .merge(bulk::routes())
        .merge(admin::routes())
        .with_state(inner)
}

async fn versions(State(inner): State<Shared>) -> Response {
    let base = lock(&inner).base_url.clone();
    axum::Json(json!([{"label": "Summer '23", "url": format!("/services/data/v{API_VERSION}"), "version": API_VERSION, "base": base}]))
        .into_response()
}

fn oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn token(State(inner): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    let mut state = lock(&inner);
    let grant = form.get("grant_type").map(String::as_str).unwrap_or("");
    let client_ok = |state: &Inner| match (form.get("client_id"), form.get("client_secret")) {
        (Some(id), Some(secret)) => state.clients.get(id) == Some(secret),
        (Some(id), None) => state.clients.contains_key(id),
        _ => false,
    };
    let mut issue_refresh = false;
    match grant {
        "authorization_code" => {
            if !client_ok(&state) {
                return oauth_error("invalid_client", "invalid client credentials");
            }
            let code = form.get("code").cloned().unwrap_or_default();
            let Some((client, redirect, verifier)) = state.auth_codes.remove(&code) else {
                return oauth_error("invalid_grant", "invalid authorization code");
            };
            if Some(&client) != form.get("client_id") || Some(&redirect) != form.get("redirect_uri")
            {
                return oauth_error("invalid_grant", "redirect_uri mismatch");
            }
            if verifier.is_some() && verifier.as_ref() != form.get("code_verifier") {
                return oauth_error("invalid_grant", "invalid code verifier");
            }
            issue_refresh = true;
        }
        "refresh_token" => {
            if !client_ok(&state) {
                return oauth_error("invalid_client", "invalid client credentials");
            }
            let token = form.get("refresh_token").cloned().unwrap_or_default();
            if state.refresh_tokens.get(&token) != Some(&true) {
                return oauth_error("invalid_grant", "expired access/refresh token");
            }
        }
        "client_credentials" => {
            if !form.contains_key("client_secret") || !client_ok(&state) {
                return oauth_error("invalid_client", "invalid client credentials");
            }
        }
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => {
            // The fake accepts any three-part JWT; it does not hold the app's certificate.
            let assertion = form.get("assertion").map(String::as_str).unwrap_or("");
            if assertion.split('.').count() != 3 {
                return oauth_error("invalid_grant", "invalid assertion");
            }
        }
        "" => return oauth_error("invalid_request", "grant type not supported"),
        _ => return oauth_error("unsupported_grant_type", "grant type not supported"),
    }
    *state.stats.grants.entry(grant.to_owned()).or_default() += 1;
    let access = state.token("access");
    state.access_tokens.insert(access.clone(), true);
    let issued_at = state.now().timestamp_millis().to_string();
    let mut body = json!({
        "access_token": access,
        "instance_url": state.base_url,
        "id": format!("{}/id/00D000000000001AAA/005000000000001AAA", state.base_url),
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": "ZmFrZS1zaWduYXR1cmU=",
        "scope": "api refresh_token",
    });
    if issue_refresh {
        let refresh = state.token("refresh");
        state.refresh_tokens.insert(refresh.clone(), true);
        body["refresh_token"] = Value::String(refresh);
    }
    axum::Json(body).into_response()
}

/// Authenticates a data API call, serves queued faults, and counts API usage.
fn guard(inner: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    let mut state = lock(inner);
    state.stats.api_requests += 1;
    if let Some(fault) = state.faults.pop_front() {
        state.stats.faults_served += 1;
        return Err(match fault {
            Fault::Unavailable { retry_after } => {
                let mut response =
                    (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response();
                if let Some(seconds) = retry_after {
                    response
                        .headers_mut()
                        .insert("retry-after", HeaderValue::from(seconds));
                }
                response
            }
            Fault::RequestLimitExceeded => error_body(
                StatusCode::FORBIDDEN,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            ),
        });
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("OAuth "))
        })
        .unwrap_or("");
    if state.access_tokens.get(token) != Some(&true) {
        state.stats.unauthorized += 1;
        return Err(error_body(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        ));
    }
    Ok(())
}

fn with_limits(inner: &Shared, mut response: Response) -> Response {
    let state = lock(inner);
    let value = format!("api-usage={}/{}", state.stats.api_requests, state.api_limit);
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert("sforce-limit-info", value);
    }
    response
}

macro_rules! api {
    ($inner:expr, $headers:expr, $body:expr) => {{
        let response = match guard(&$inner, &$headers) {
            Err(response) => response,
            Ok(()) => $body,
        };
        with_limits(&$inner, response)
    }};
}

async fn list_sobjects(State(inner): State<Shared>, headers: HeaderMap) -> Response {
    api!(inner, headers, {
        let state = lock(&inner);
        let sobjects: Vec<Value> = state
            .objects
            .values()
            .map(|o| {
                json!({"name": o.name, "label": o.name, "keyPrefix": o.key_prefix, "queryable": true,
                       "createable": true, "updateable": true, "deletable": true, "custom": o.name.ends_with("__c"),
                       "urls": {"sobject": format!("/services/data/v{API_VERSION}/sobjects/{}", o.name)}})
            })
            .collect();
        axum::Json(json!({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects}))
            .into_response()
    })
}

fn not_found_object(object: &str) -> Response {
    error_body(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        &format!("The requested resource does not exist: {object}"),
    )
}

async fn describe(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Path((_, object)): Path<(String, String)>,
) -> Response {
    api!(inner, headers, {
        let state = lock(&inner);
        match state.objects.get(&object) {
            None => not_found_object(&object),
            Some(o) => axum::Json(json!({
                "name": o.name, "label": o.name, "keyPrefix": o.key_prefix, "queryable": true,
                "createable": true, "updateable": true, "deletable": true,
                "fields": o.fields.iter().map(FieldDef::describe).collect::<Vec<_>>(),
            }))
            .into_response(),
        }
    })
}

fn record_json(object: &str, record: &Map<String, Value>, fields: Option<&[String]>) -> Value {
    let mut out = Map::new();
    let id = record.get("Id").and_then(Value::as_str).unwrap_or_default();
    out.insert(
        "attributes".into(),
        json!({"type": object, "url": format!("/services/data/v{API_VERSION}/sobjects/{object}/{id}")}),
    );
    match fields {
        Some(fields) => {
            for f in fields {
                let (name, value) = record
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(f))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .unwrap_or_else(|| (f.clone(), Value::Null));
                out.insert(name, value);
            }
        }
        None => {
            for (k, v) in record {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

fn run_query(inner: &Shared, q: Option<&String>, all: bool) -> Response {
    let Some(text) = q else {
        return error_body(
            StatusCode::BAD_REQUEST,
            "MALFORMED_QUERY",
            "q parameter is required",
        );
    };
    let query = match soql::parse(text) {
        Ok(query) => query,
        Err(error) => return error_body(StatusCode::BAD_REQUEST, "MALFORMED_QUERY", &error.0),
    };
    let mut state = lock(inner);
    state.stats.rest_queries += 1;
    let Some(object) = state.objects.get(&query.object) else {
        return error_body(
            StatusCode::BAD_REQUEST,
            "INVALID_TYPE",
            &format!("sObject type '{}' is not supported.", query.object),
        );
    };
    if let Err(response) = check_query_fields(object, &query) {
        return response;
    }
    let rows = select_rows(object, &query, all);
    if query.count {
        return axum::Json(json!({"totalSize": rows.len(), "done": true, "records": []}))
            .into_response();
    }
    let cursor = Cursor {
        object: object.name.clone(),
        fields: query
            .fields
            .iter()
            .filter_map(|f| object.field(f))
            .map(|f| f.name.clone())
            .collect(),
        rows,
    };
    let locator = state.token("cursor").replace('!', "");
    state.cursors.insert(locator.clone(), cursor);
    page(&state, &locator, 0, all)
}

/// A REST query result: the positions of its records, read when a page is served (like
/// Salesforce's server-side cursor, and without copying a large result).
#[derive(Debug)]
pub(crate) struct Cursor {
    pub(crate) object: String,
    /// Selected fields, as the object spells them.
    fields: Vec<String>,
    pub(crate) rows: Vec<usize>,
}

/// `INVALID_FIELD` when the query names a field the object does not have.
fn check_query_fields(object: &SObject, query: &soql::Query) -> Result<(), Response> {
    let mut mentioned = query.fields.clone();
    if let Some(cond) = &query.condition {
        cond.fields(&mut mentioned);
    }
    if let Some((f, _)) = &query.order_by {
        mentioned.push(f.clone());
    }
    match mentioned.iter().find(|f| object.field(f).is_none()) {
        Some(bad) => Err(error_body(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
            &format!("No such column '{bad}' on entity '{}'.", object.name),
        )),
        None => Ok(()),
    }
}

/// Positions in `object.records` of the rows a query returns, in result order.
fn select_rows(object: &SObject, query: &soql::Query, all: bool) -> Vec<usize> {
    let mut rows: Vec<usize> = object
        .records
        .iter()
        .enumerate()
        .filter(|(_, r)| all || r.get("IsDeleted") != Some(&Value::Bool(true)))
        .filter(|(_, r)| query.condition.as_ref().is_none_or(|c| c.matches(r)))
        .map(|(i, _)| i)
        .collect();
    if let Some((field, desc)) = &query.order_by {
        let name = object
            .field(field)
            .map_or_else(|| field.clone(), |f| f.name.clone());
        rows.sort_by(|&a, &b| {
            let value = |i: usize| object.records[i].get(&name).unwrap_or(&Value::Null);
            let ordering = soql::order_values(value(a), value(b));
            if *desc { ordering.reverse() } else { ordering }
        });
    }
    if let Some(limit) = query.limit {
        rows.truncate(limit);
    }
    rows
}

fn page(state: &Inner, locator: &str, offset: usize, all: bool) -> Response {
    let Some((cursor, object)) = state
        .cursors
        .get(locator)
        .and_then(|c| Some((c, state.objects.get(&c.object)?)))
    else {
        return error_body(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        );
    };
    let end = (offset + state.page_size).min(cursor.rows.len());
    let next = (end < cursor.rows.len()).then(|| {
        let kind = if all { "queryAll" } else { "query" };
        format!("/services/data/v{API_VERSION}/{kind}/{locator}-{end}")
    });
    let body = PageJson {
        total: cursor.rows.len(),
        next,
        records: RecordsJson {
            object,
            fields: &cursor.fields,
            rows: cursor.rows.get(offset..end).unwrap_or_default(),
        },
    };
    match serde_json::to_vec(&body) {
        Ok(bytes) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            bytes,
        )
            .into_response(),
        Err(error) => error_body(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN_EXCEPTION",
            &error.to_string(),
        ),
    }
}

/// A query page, keys in Salesforce's order.
struct PageJson<'a> {
    total: usize,
    next: Option<String>,
    records: RecordsJson<'a>,
}

impl serde::Serialize for PageJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("totalSize", &self.total)?;
        map.serialize_entry("done", &self.next.is_none())?;
        if let Some(next) = &self.next {
            map.serialize_entry("nextRecordsUrl", next)?;
        }
        map.serialize_entry("records", &self.records)?;
        map.end()
    }
}

/// The records of a page, serialized from the stored records.
struct RecordsJson<'a> {
    object: &'a SObject,
    fields: &'a [String],
    rows: &'a [usize],
}

impl serde::Serialize for RecordsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        struct Attributes<'a>(&'a str, &'a str);
        impl serde::Serialize for Attributes<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("type", self.0)?;
                let url = format!(
                    "/services/data/v{API_VERSION}/sobjects/{}/{}",
                    self.0, self.1
                );
                map.serialize_entry("url", &url)?;
                map.end()
            }
        }
        struct Record<'a>(&'a str, &'a Map<String, Value>, &'a [String]);
        impl serde::Serialize for Record<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let Record(object, record, fields) = self;
                let id = record.get("Id").and_then(Value::as_str).unwrap_or_default();
                let mut map = serializer.serialize_map(Some(fields.len() + 1))?;
                map.serialize_entry("attributes", &Attributes(object, id))?;
                for field in fields.iter() {
                    map.serialize_entry(field, record.get(field).unwrap_or(&Value::Null))?;
                }
                map.end()
            }
        }
        let mut seq = serializer.serialize_seq(Some(self.rows.len()))?;
        for &row in self.rows {
            if let Some(record) = self.object.records.get(row) {
                seq.serialize_element(&Record(&self.object.name, record, self.fields))?;
            }
        }
        seq.end()
    }
}

async fn query(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    api!(inner, headers, run_query(&inner, params.get("q"), false))
}

async fn query_all(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    api!(inner, headers, run_query(&inner, params.get("q"), true))
}

async fn query_more(
    State(inner): State<Shared>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path((_, locator)): Path<(String, String)>,
) -> Response {
    let all = uri.path().contains("/queryAll/");
    api!(inner, headers, {
        let state = lock(&inner);
        let parsed = locator
            .rsplit_once('-')
            .and_then(|(cursor, offset)| Some((cursor.to_owned(), offset.parse::<usize>().ok()?)));
        match parsed {
            Some((cursor, offset)) => page(&state, &cursor, offset, all),
            None => error_body(
                StatusCode::BAD_REQUEST,
                "INVALID_QUERY_LOCATOR",
                "invalid query locator",
            ),
        }
    })
}

fn parse_body(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice(body)
        .map_err(|e| error_body(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", &e.to_string()))
}

async fn create_one(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Path((_, object)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    api!(inner, headers, {
        match parse_body(&body) {
            Err(response) => response,
            Ok(Value::Object(record)) => match insert_record(&mut lock(&inner), &object, record) {
                Ok(id) => (
                    StatusCode::CREATED,
                    axum::Json(json!({"id": id, "success": true, "errors": []})),
                )
                    .into_response(),
                Err(e) => single_error(e),
            },
            Ok(_) => error_body(
                StatusCode::BAD_REQUEST,
                "JSON_PARSER_ERROR",
                "expected an object",
            ),
        }
    })
}

fn single_error(e: RecordError) -> Response {
    let status = if e.status_code == "NOT_FOUND" {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::BAD_REQUEST
    };
    (
        status,
        axum::Json(json!([{"message": e.message, "errorCode": e.status_code, "fields": e.fields}])),
    )
        .into_response()
}

async fn get_one(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Path((_, object, id)): Path<(String, String, String)>,
) -> Response {
    api!(inner, headers, {
        let state = lock(&inner);
        let found = state.objects.get(&object).and_then(|o| {
            o.records.iter().find(|r| {
                r.get("Id").and_then(Value::as_str) == Some(&id)
                    && r.get("IsDeleted") != Some(&Value::Bool(true))
            })
        });
        match found {
            Some(r) => axum::Json(record_json(&object, r, None)).into_response(),
            None => not_found_object(&id),
        }
    })
}

async fn update_one(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Path((_, object, id)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    api!(inner, headers, {
        match parse_body(&body) {
            Err(response) => response,
            Ok(Value::Object(record)) => {
                match update_record(&mut lock(&inner), &object, &id, record) {
                    Ok(()) => StatusCode::NO_CONTENT.into_response(),
                    Err(e) => single_error(e),
                }
            }
            Ok(_) => error_body(
                StatusCode::BAD_REQUEST,
                "JSON_PARSER_ERROR",
                "expected an object",
            ),
        }
    })
}

async fn delete_one(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Path((_, object, id)): Path<(String, String, String)>,
) -> Response {
    api!(inner, headers, {
        match delete_record(&mut lock(&inner), &object, &id) {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => single_error(e),
        }
    })
}

async fn upsert_one(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Path((_, object, field, value)): Path<(String, String, String, String)>,
    body: Bytes,
) -> Response {
    api!(inner, headers, {
        match parse_body(&body) {
            Err(response) => response,
            Ok(Value::Object(mut record)) => {
                record.insert(field.clone(), Value::String(value));
                match upsert_record(&mut lock(&inner), &object, &field, record) {
                    Ok((id, true)) => (
                        StatusCode::CREATED,
                        axum::Json(
                            json!({"id": id, "success": true, "errors": [], "created": true}),
                        ),
                    )
                        .into_response(),
                    Ok((_, false)) => StatusCode::NO_CONTENT.into_response(),
                    Err(e) => single_error(e),
                }
            }
            Ok(_) => error_body(
                StatusCode::BAD_REQUEST,
                "JSON_PARSER_ERROR",
                "expected an object",
            ),
        }
    })
}

/// Reads an sObject Collections request body: `{allOrNone, records: [...]}`, at most 200.
fn collection_records(body: &Bytes) -> Result<(bool, Vec<Map<String, Value>>), Response> {
    let value = parse_body(body)?;
    let all_or_none = value
        .get("allOrNone")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let records: Vec<Map<String, Value>> = value
        .get("records")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            error_body(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
                "records is required",
            )
        })?
        .iter()
        .map(|r| r.as_object().cloned().unwrap_or_default())
        .collect();
    if records.len() > 200 {
        return Err(error_body(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        ));
    }
    Ok((all_or_none, records))
}

fn record_type(record: &Map<String, Value>) -> Option<String> {
    record
        .get("attributes")?
        .get("type")?
        .as_str()
        .map(str::to_owned)
}

fn result_json(outcome: Result<(String, Option<bool>), (Option<String>, RecordError)>) -> Value {
    match outcome {
        Ok((id, created)) => {
            let mut v = json!({"id": id, "success": true, "errors": []});
            if let Some(created) = created {
                v["created"] = Value::Bool(created);
            }
            v
        }
        Err((id, e)) => json!({"id": id, "success": false, "errors": [e.to_json()]}),
    }
}

/// Applies `op` to each record; with `allOrNone`, a failure rolls every change back.
fn apply_collection<F>(inner: &Shared, all_or_none: bool, count: usize, mut op: F) -> Response
where
    F: FnMut(&mut Inner, usize) -> Result<(String, Option<bool>), (Option<String>, RecordError)>,
{
    let mut state = lock(inner);
    state.stats.collection_calls += 1;
    let snapshot = all_or_none.then(|| state.objects.clone());
    let outcomes: Vec<_> = (0..count).map(|i| op(&mut state, i)).collect();
    if let Some(snapshot) = snapshot
        && outcomes.iter().any(Result::is_err)
    {
        state.objects = snapshot;
        let rolled: Vec<Value> = outcomes
            .into_iter()
            .map(|o| match o {
                Err(e) => result_json(Err(e)),
                Ok((id, _)) => result_json(Err((
                    Some(id),
                    RecordError::new("ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back because not all records were valid and the request was using AllOrNone header", vec![]),
                ))),
            })
            .collect();
        return axum::Json(rolled).into_response();
    }
    axum::Json(outcomes.into_iter().map(result_json).collect::<Vec<_>>()).into_response()
}

async fn collection_insert(
    State(inner): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api!(inner, headers, {
        match collection_records(&body) {
            Err(response) => response,
            Ok((all_or_none, records)) => {
                apply_collection(&inner, all_or_none, records.len(), |state, i| {
                    let record = records[i].clone();
                    let Some(object) = record_type(&record) else {
                        return Err((
                            None,
                            RecordError::new("INVALID_TYPE", "attributes.type is required", vec![]),
                        ));
                    };
                    insert_record(state, &object, record)
                        .map(|id| (id, None))
                        .map_err(|e| (None, e))
                })
            }
        }
    })
}

async fn collection_update(
    State(inner): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api!(inner, headers, {
        match collection_records(&body) {
            Err(response) => response,
            Ok((all_or_none, records)) => {
                apply_collection(&inner, all_or_none, records.len(), |state, i| {
                    let record = records[i].clone();
                    let Some(id) = record.get("Id").and_then(Value::as_str).map(str::to_owned)
                    else {
                        return Err((
                            None,
                            RecordError::new(
                                "MISSING_ARGUMENT",
                                "Id not specified in an update call",
                                vec![],
                            ),
                        ));
                    };
                    let object = record_type(&record)
                        .or_else(|| object_of_id(state, &id))
                        .unwrap_or_default();
                    update_record(state, &object, &id, record)
                        .map(|()| (id.clone(), None))
                        .map_err(|e| (Some(id), e))
                })
            }
        }
    })
}

async fn collection_upsert(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Path((_, object, field)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    api!(inner, headers, {
        match collection_records(&body) {
            Err(response) => response,
            Ok((all_or_none, records)) => {
                let repeated = repeated_keys(records.iter().map(|r| {
                    r.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(&field))
                        .and_then(|(_, v)| key_text(v))
                }));
                apply_collection(&inner, all_or_none, records.len(), |state, i| {
                    if repeated.contains(&i) {
                        let key = records[i]
                            .iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(&field))
                            .map_or(Value::Null, |(_, v)| v.clone());
                        return Err((None, duplicate_external_id(&key)));
                    }
                    upsert_record(state, &object, &field, records[i].clone())
                        .map(|(id, created)| (id, Some(created)))
                        .map_err(|e| (None, e))
                })
            }
        }
    })
}

async fn collection_delete(
    State(inner): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    api!(inner, headers, {
        let ids: Vec<String> = params
            .get("ids")
            .map(|s| {
                s.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let all_or_none = params.get("allOrNone").is_some_and(|v| v == "true");
        if ids.len() > 200 {
            error_body(
                StatusCode::BAD_REQUEST,
                "EXCEEDED_ID_LIMIT",
                "cannot delete more than 200 records",
            )
        } else {
            apply_collection(&inner, all_or_none, ids.len(), |state, i| {
                let id = ids[i].clone();
                let object = object_of_id(state, &id).unwrap_or_default();
                delete_record(state, &object, &id)
                    .map(|()| (id.clone(), None))
                    .map_err(|e| (Some(id), e))
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipicklists_take_known_values_separated_by_semicolons() {
        let mut field = FieldDef::new("Regions__c", "multipicklist");
        field.picklist = ["North", "South", "Ost-Süd"].map(String::from).to_vec();
        let take = |value: Value| coerce(&field, &value);
        assert_eq!(take(json!("North")), Some(json!("North")));
        assert_eq!(
            take(json!("South;North;Ost-Süd")),
            Some(json!("South;North;Ost-Süd"))
        );
        assert_eq!(take(json!("North;;South;")), Some(json!("North;South")));
        assert_eq!(take(json!("")), Some(Value::Null));
        assert_eq!(take(json!(";")), Some(Value::Null));
        assert_eq!(take(Value::Null), Some(Value::Null));
        // A value outside the picklist, the display form of a list, or a JSON array are refused.
        assert_eq!(take(json!("North;West")), None);
        assert_eq!(take(json!("[North, South]")), None);
        assert_eq!(take(json!("north")), None, "values are case-sensitive");
        assert_eq!(take(json!(["North", "South"])), None);
        assert_eq!(take(json!(1)), None);
        // Through record validation: the field's error names it.
        let mut object = SObject::new("Thing__c", "a01", vec![field.clone()]);
        object.fields.push(FieldDef::new("Name", "string"));
        let error = check_fields(
            &object,
            json!({"Regions__c": "North;West"}).as_object().unwrap(),
            true,
        )
        .unwrap_err();
        assert_eq!(error.status_code, "INVALID_TYPE_ON_FIELD_IN_RECORD");
        assert_eq!(error.fields, ["Regions__c"]);
        assert_eq!(FieldDef::new("Regions__c", "multipicklist").length, 4099);
    }
}
