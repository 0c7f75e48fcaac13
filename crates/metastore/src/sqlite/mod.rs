//! The embedded SQLite backend.
//!
//! One connection behind a `std::sync::Mutex`, used only inside `spawn_blocking`: SQLite
//! serialises writers anyway, a single server process is the only writer, and one connection
//! keeps transactions and `PRAGMA`s simple. The lock is never held across an `.await`. WAL mode
//! lets readers outside the process (backups, `sqlite3` shell) work while the server writes;
//! `busy_timeout` makes them wait instead of failing; foreign keys delete a flow's runs with it.
//!
//! Timestamps are stored as INTEGER microseconds since the epoch so that they sort and compare
//! natively; documents are JSON text.

mod migrate;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, ErrorCode, OptionalExtension, Params, Row, ffi, params};

use crate::{
    ApiKeyRecord, AuditEntry, ConnectorRecord, FlowRecord, IdempotencyRecord, MetadataStore,
    ProfileRecord, RunRecord, ScheduleRecord, ScheduleUpdate, StoreError,
};

/// How long a statement waits for a lock held by another connection before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// [`MetadataStore`] on an embedded SQLite database.
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// File path or `:memory:`, for messages.
    location: String,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`, creating missing parent
    /// directories, and applies pending migrations.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if the file cannot be created or opened or is not a SQLite
    /// database; [`StoreError::Corrupt`] if its schema is newer than this build. Messages name
    /// the path.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let location = path.display().to_string();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|error| {
                StoreError::Backend(format!(
                    "cannot create directory {} for metadata database: {error}",
                    parent.display()
                ))
            })?;
        }
        let conn = Connection::open(path).map_err(|error| {
            StoreError::Backend(format!("cannot open metadata database {location}: {error}"))
        })?;
        Self::init(conn, location, true)
    }

    /// Opens a private, empty in-memory database (tests, throw-away servers).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if SQLite cannot allocate the database.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(|error| {
            StoreError::Backend(format!("cannot open in-memory metadata database: {error}"))
        })?;
        Self::init(conn, ":memory:".to_owned(), false)
    }

    /// The schema version the database is at.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if the query fails.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        self.call(|conn| migrate::current_version(conn)).await
    }

    fn init(mut conn: Connection, location: String, on_disk: bool) -> Result<Self, StoreError> {
        let with_location = |error: StoreError| match error {
            StoreError::Backend(message) => {
                StoreError::Backend(format!("metadata database {location}: {message}"))
            }
            StoreError::Corrupt(message) => {
                StoreError::Corrupt(format!("metadata database {location}: {message}"))
            }
            other => other,
        };
        configure(&conn, on_disk).map_err(with_location)?;
        let version = migrate::migrate(&mut conn).map_err(with_location)?;
        tracing::debug!(%location, version, "metadata store ready");
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            location,
        })
    }

    /// Runs `f` on the connection in the blocking thread pool.
    async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|poisoned| {
                // A panic mid-call cannot leave a half-applied write: every write is a single
                // statement or a transaction that rolls back on drop. The connection is usable.
                tracing::warn!("metadata store connection lock was poisoned by a panic");
                conn.clear_poison();
                poisoned.into_inner()
            });
            f(&mut guard)
        })
        .await
        .map_err(|error| StoreError::Backend(format!("metadata store task failed: {error}")))?
    }
}

fn configure(conn: &Connection, on_disk: bool) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(backend)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(backend)?;
    let foreign_keys: bool = conn
        .query_row("PRAGMA foreign_keys", [], |row| row.get(0))
        .map_err(backend)?;
    if !foreign_keys {
        return Err(StoreError::Backend(
            "SQLite refused to enable foreign keys".to_owned(),
        ));
    }
    let journal_mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(backend)?;
    if on_disk && !journal_mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(journal_mode, "metadata database is not in WAL mode");
    }
    // With WAL, NORMAL only risks the last transactions on power loss, never corruption.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(backend)?;
    Ok(())
}

/// Converts an unexpected SQLite failure.
fn backend(error: rusqlite::Error) -> StoreError {
    StoreError::Backend(error.to_string())
}

/// Which constraint a write violated, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Violation {
    PrimaryKey,
    Unique,
    ForeignKey,
}

fn violation(error: &rusqlite::Error) -> Option<Violation> {
    let error = error.sqlite_error()?;
    if error.code != ErrorCode::ConstraintViolation {
        return None;
    }
    match error.extended_code {
        ffi::SQLITE_CONSTRAINT_PRIMARYKEY => Some(Violation::PrimaryKey),
        ffi::SQLITE_CONSTRAINT_UNIQUE => Some(Violation::Unique),
        ffi::SQLITE_CONSTRAINT_FOREIGNKEY => Some(Violation::ForeignKey),
        _ => None,
    }
}

/// A table whose rows have a text key and a unique ARN.
#[derive(Debug, Clone, Copy)]
struct Keyed {
    entity: &'static str,
    table: &'static str,
    key_column: &'static str,
}

const FLOWS: Keyed = Keyed {
    entity: "flow",
    table: "flows",
    key_column: "name",
};
const PROFILES: Keyed = Keyed {
    entity: "connector profile",
    table: "connector_profiles",
    key_column: "name",
};
const CONNECTORS: Keyed = Keyed {
    entity: "connector",
    table: "registered_connectors",
    key_column: "label",
};

impl Keyed {
    /// Maps a failed write of the row `key` (with ARN `arn`) to the contract's errors.
    ///
    /// SQLite does not say which of the two unique constraints (key, ARN) a duplicate hit
    /// first, so a violation is resolved by looking the key up on the same connection.
    fn write_error(
        self,
        conn: &Connection,
        key: &str,
        arn: &str,
        error: rusqlite::Error,
    ) -> StoreError {
        if !matches!(
            violation(&error),
            Some(Violation::PrimaryKey | Violation::Unique)
        ) {
            return backend(error);
        }
        let sql = format!(
            "SELECT 1 FROM {} WHERE {} = ?1",
            self.table, self.key_column
        );
        match conn.query_row(&sql, [key], |_| Ok(())).optional() {
            Ok(Some(())) => StoreError::AlreadyExists {
                entity: self.entity,
                name: key.to_owned(),
            },
            Ok(None) => StoreError::Conflict(format!(
                "ARN {arn} is already used by another {}",
                self.entity
            )),
            Err(lookup) => backend(lookup),
        }
    }
}

fn micros(time: &DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

fn to_json(
    entity: &'static str,
    key: &str,
    value: &serde_json::Value,
) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|error| {
        StoreError::Backend(format!(
            "{entity} {key}: cannot serialise document: {error}"
        ))
    })
}

/// `limit` as SQL wants it; anything beyond `i64::MAX` means "no limit" anyway.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Reads one row's columns with errors that say which record and column are bad.
struct Decoder<'r, 's> {
    row: &'r Row<'s>,
    entity: &'static str,
    key: String,
}

impl<'r, 's> Decoder<'r, 's> {
    /// Starts decoding; `key_columns` are the columns joined with `/` to name the record.
    fn new(row: &'r Row<'s>, entity: &'static str, key_columns: &[usize]) -> Self {
        let key = key_columns
            .iter()
            .map(|&index| {
                row.get::<_, String>(index)
                    .unwrap_or_else(|_| "?".to_owned())
            })
            .collect::<Vec<_>>()
            .join("/");
        Self { row, entity, key }
    }

    fn corrupt(&self, column: &str, problem: impl fmt::Display) -> StoreError {
        StoreError::Corrupt(format!(
            "{} {}: column {column}: {problem}",
            self.entity, self.key
        ))
    }

    fn get<T: rusqlite::types::FromSql>(
        &self,
        index: usize,
        column: &str,
    ) -> Result<T, StoreError> {
        self.row
            .get(index)
            .map_err(|error| self.corrupt(column, error))
    }

    fn json(&self, index: usize, column: &str) -> Result<serde_json::Value, StoreError> {
        let text: String = self.get(index, column)?;
        serde_json::from_str(&text).map_err(|error| self.corrupt(column, error))
    }

    fn time(&self, index: usize, column: &str) -> Result<DateTime<Utc>, StoreError> {
        let value: i64 = self.get(index, column)?;
        DateTime::from_timestamp_micros(value)
            .ok_or_else(|| self.corrupt(column, format_args!("timestamp {value} is out of range")))
    }
}

/// Runs a query and decodes every row.
fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let mut rows = stmt.query(params).map_err(backend)?;
    let mut records = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        records.push(decode(row)?);
    }
    Ok(records)
}

/// Runs a query expected to match at most one row (a primary-key lookup).
fn query_opt<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let mut rows = stmt.query(params).map_err(backend)?;
    match rows.next().map_err(backend)? {
        Some(row) => decode(row).map(Some),
        None => Ok(None),
    }
}

/// Runs a write and returns the number of rows changed.
fn execute(conn: &Connection, sql: &str, params: impl Params) -> Result<usize, rusqlite::Error> {
    conn.prepare_cached(sql)?.execute(params)
}

macro_rules! select_flows {
    ($tail:literal) => {
        concat!(
            "SELECT name, arn, status, trigger_type, document, created_at, updated_at FROM flows ",
            $tail
        )
    };
}

fn decode_flow(row: &Row<'_>) -> Result<FlowRecord, StoreError> {
    let d = Decoder::new(row, "flow", &[0]);
    Ok(FlowRecord {
        name: d.get(0, "name")?,
        arn: d.get(1, "arn")?,
        status: d.get(2, "status")?,
        trigger_type: d.get(3, "trigger_type")?,
        document: d.json(4, "document")?,
        created_at: d.time(5, "created_at")?,
        updated_at: d.time(6, "updated_at")?,
    })
}

macro_rules! select_profiles {
    ($tail:literal) => {
        concat!(
            "SELECT name, arn, connector_type, connector_label, document, sealed_credentials, ",
            "created_at, updated_at FROM connector_profiles ",
            $tail
        )
    };
}

fn decode_profile(row: &Row<'_>) -> Result<ProfileRecord, StoreError> {
    let d = Decoder::new(row, "connector profile", &[0]);
    Ok(ProfileRecord {
        name: d.get(0, "name")?,
        arn: d.get(1, "arn")?,
        connector_type: d.get(2, "connector_type")?,
        connector_label: d.get(3, "connector_label")?,
        document: d.json(4, "document")?,
        sealed_credentials: d.get(5, "sealed_credentials")?,
        created_at: d.time(6, "created_at")?,
        updated_at: d.time(7, "updated_at")?,
    })
}

macro_rules! select_runs {
    ($tail:literal) => {
        concat!(
            "SELECT flow_name, execution_id, status, started_at, updated_at, document FROM runs ",
            $tail
        )
    };
}

fn decode_run(row: &Row<'_>) -> Result<RunRecord, StoreError> {
    let d = Decoder::new(row, "run", &[0, 1]);
    Ok(RunRecord {
        flow_name: d.get(0, "flow_name")?,
        execution_id: d.get(1, "execution_id")?,
        status: d.get(2, "status")?,
        started_at: d.time(3, "started_at")?,
        updated_at: d.time(4, "updated_at")?,
        document: d.json(5, "document")?,
    })
}

fn decode_idempotency(row: &Row<'_>) -> Result<IdempotencyRecord, StoreError> {
    let d = Decoder::new(row, "idempotency token", &[0, 1]);
    Ok(IdempotencyRecord {
        operation: d.get(0, "operation")?,
        token: d.get(1, "token")?,
        request_hash: d.get(2, "request_hash")?,
        response: d.json(3, "response")?,
        created_at: d.time(4, "created_at")?,
    })
}

macro_rules! select_connectors {
    ($tail:literal) => {
        concat!(
            "SELECT label, arn, document, created_at FROM registered_connectors ",
            $tail
        )
    };
}

fn decode_connector(row: &Row<'_>) -> Result<ConnectorRecord, StoreError> {
    let d = Decoder::new(row, "connector", &[0]);
    Ok(ConnectorRecord {
        label: d.get(0, "label")?,
        arn: d.get(1, "arn")?,
        document: d.json(2, "document")?,
        created_at: d.time(3, "created_at")?,
    })
}

fn decode_api_key(row: &Row<'_>) -> Result<ApiKeyRecord, StoreError> {
    let d = Decoder::new(row, "API key", &[0]);
    Ok(ApiKeyRecord {
        access_key_id: d.get(0, "access_key_id")?,
        sealed_secret: d.get(1, "sealed_secret")?,
        description: d.get(2, "description")?,
        created_at: d.time(3, "created_at")?,
        disabled: d.get(4, "disabled")?,
    })
}

fn decode_schedule(row: &Row<'_>) -> Result<ScheduleRecord, StoreError> {
    let d = Decoder::new(row, "flow schedule", &[0]);
    let activated_at: Option<i64> = d.get(1, "activated_at")?;
    let activated_at = activated_at
        .map(|value| {
            DateTime::from_timestamp_micros(value).ok_or_else(|| {
                d.corrupt(
                    "activated_at",
                    format_args!("timestamp {value} is out of range"),
                )
            })
        })
        .transpose()?;
    let json = |index: usize, column: &str| -> Result<Option<serde_json::Value>, StoreError> {
        let text: Option<String> = d.get(index, column)?;
        text.map(|text| serde_json::from_str(&text).map_err(|error| d.corrupt(column, error)))
            .transpose()
    };
    Ok(ScheduleRecord {
        flow_name: d.get(0, "flow_name")?,
        activated_at,
        state: json(2, "state")?,
        event_mark: json(3, "event_mark")?,
        updated_at: d.time(4, "updated_at")?,
    })
}

fn decode_audit(row: &Row<'_>) -> Result<(i64, AuditEntry), StoreError> {
    let id: i64 = row.get(0).map_err(backend)?;
    let d = Decoder {
        row,
        entity: "audit entry",
        key: id.to_string(),
    };
    let status: i64 = d.get(8, "status")?;
    let status = u16::try_from(status)
        .map_err(|_| d.corrupt("status", format_args!("{status} is not an HTTP status")))?;
    Ok((
        id,
        AuditEntry {
            time: d.time(1, "time")?,
            request_id: d.get(2, "request_id")?,
            operation: d.get(3, "operation")?,
            access_key_id: d.get(4, "access_key_id")?,
            source_ip: d.get(5, "source_ip")?,
            user_agent: d.get(6, "user_agent")?,
            status,
            error_code: d.get(9, "error_code")?,
            resource: d.get(10, "resource")?,
            request_parameters: d.json(7, "request_parameters")?,
        },
    ))
}

/// Pages through a name-keyed table: `first` has one parameter (limit), `after` two (key, limit).
fn list_page<T>(
    conn: &Connection,
    first: &str,
    after_sql: &str,
    after: Option<&str>,
    limit: usize,
    decode: fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    match after {
        Some(key) => query_all(conn, after_sql, params![key, sql_limit(limit)], decode),
        None => query_all(conn, first, params![sql_limit(limit)], decode),
    }
}

#[async_trait]
impl MetadataStore for SqliteStore {
    async fn insert_flow(&self, flow: &FlowRecord) -> Result<(), StoreError> {
        let flow = flow.clone();
        self.call(move |conn| {
            let document = to_json("flow", &flow.name, &flow.document)?;
            execute(
                conn,
                "INSERT INTO flows (name, arn, status, trigger_type, document, created_at, \
                 updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    flow.name,
                    flow.arn,
                    flow.status,
                    flow.trigger_type,
                    document,
                    micros(&flow.created_at),
                    micros(&flow.updated_at),
                ],
            )
            .map_err(|error| FLOWS.write_error(conn, &flow.name, &flow.arn, error))?;
            Ok(())
        })
        .await
    }

    async fn get_flow(&self, name: &str) -> Result<Option<FlowRecord>, StoreError> {
        let name = name.to_owned();
        self.call(move |conn| {
            query_opt(
                conn,
                select_flows!("WHERE name = ?1"),
                params![name],
                decode_flow,
            )
        })
        .await
    }

    async fn update_flow(&self, flow: &FlowRecord) -> Result<(), StoreError> {
        let flow = flow.clone();
        self.call(move |conn| {
            let document = to_json("flow", &flow.name, &flow.document)?;
            let changed = execute(
                conn,
                "UPDATE flows SET arn = ?2, status = ?3, trigger_type = ?4, document = ?5, \
                 updated_at = ?6 WHERE name = ?1",
                params![
                    flow.name,
                    flow.arn,
                    flow.status,
                    flow.trigger_type,
                    document,
                    micros(&flow.updated_at),
                ],
            )
            .map_err(|error| FLOWS.write_error(conn, &flow.name, &flow.arn, error))?;
            if changed == 0 {
                return Err(StoreError::NotFound {
                    entity: "flow",
                    name: flow.name,
                });
            }
            Ok(())
        })
        .await
    }

    async fn delete_flow(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.call(move |conn| {
            // Runs go with it through `ON DELETE CASCADE`, in the same statement.
            let deleted = execute(conn, "DELETE FROM flows WHERE name = ?1", params![name])
                .map_err(backend)?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn list_flows(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FlowRecord>, StoreError> {
        let after = after.map(str::to_owned);
        self.call(move |conn| {
            list_page(
                conn,
                select_flows!("ORDER BY name LIMIT ?1"),
                select_flows!("WHERE name > ?1 ORDER BY name LIMIT ?2"),
                after.as_deref(),
                limit,
                decode_flow,
            )
        })
        .await
    }

    async fn list_flows_by_status(&self, status: &str) -> Result<Vec<FlowRecord>, StoreError> {
        let status = status.to_owned();
        self.call(move |conn| {
            query_all(
                conn,
                select_flows!("WHERE status = ?1 ORDER BY name"),
                params![status],
                decode_flow,
            )
        })
        .await
    }

    async fn insert_profile(&self, profile: &ProfileRecord) -> Result<(), StoreError> {
        let profile = profile.clone();
        self.call(move |conn| {
            let document = to_json("connector profile", &profile.name, &profile.document)?;
            execute(
                conn,
                "INSERT INTO connector_profiles (name, arn, connector_type, connector_label, \
                 document, sealed_credentials, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    profile.name,
                    profile.arn,
                    profile.connector_type,
                    profile.connector_label,
                    document,
                    profile.sealed_credentials,
                    micros(&profile.created_at),
                    micros(&profile.updated_at),
                ],
            )
            .map_err(|error| PROFILES.write_error(conn, &profile.name, &profile.arn, error))?;
            Ok(())
        })
        .await
    }

    async fn get_profile(&self, name: &str) -> Result<Option<ProfileRecord>, StoreError> {
        let name = name.to_owned();
        self.call(move |conn| {
            query_opt(
                conn,
                select_profiles!("WHERE name = ?1"),
                params![name],
                decode_profile,
            )
        })
        .await
    }

    async fn update_profile(&self, profile: &ProfileRecord) -> Result<(), StoreError> {
        let profile = profile.clone();
        self.call(move |conn| {
            let document = to_json("connector profile", &profile.name, &profile.document)?;
            let changed = execute(
                conn,
                "UPDATE connector_profiles SET arn = ?2, connector_type = ?3, \
                 connector_label = ?4, document = ?5, sealed_credentials = ?6, updated_at = ?7 \
                 WHERE name = ?1",
                params![
                    profile.name,
                    profile.arn,
                    profile.connector_type,
                    profile.connector_label,
                    document,
                    profile.sealed_credentials,
                    micros(&profile.updated_at),
                ],
            )
            .map_err(|error| PROFILES.write_error(conn, &profile.name, &profile.arn, error))?;
            if changed == 0 {
                return Err(StoreError::NotFound {
                    entity: "connector profile",
                    name: profile.name,
                });
            }
            Ok(())
        })
        .await
    }

    async fn delete_profile(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.call(move |conn| {
            let deleted = execute(
                conn,
                "DELETE FROM connector_profiles WHERE name = ?1",
                [name],
            )
            .map_err(backend)?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn list_profiles(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ProfileRecord>, StoreError> {
        let after = after.map(str::to_owned);
        self.call(move |conn| {
            list_page(
                conn,
                select_profiles!("ORDER BY name LIMIT ?1"),
                select_profiles!("WHERE name > ?1 ORDER BY name LIMIT ?2"),
                after.as_deref(),
                limit,
                decode_profile,
            )
        })
        .await
    }

    async fn insert_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let run = run.clone();
        self.call(move |conn| {
            let key = format!("{}/{}", run.flow_name, run.execution_id);
            let document = to_json("run", &key, &run.document)?;
            execute(
                conn,
                "INSERT INTO runs (flow_name, execution_id, status, started_at, updated_at, \
                 document) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    run.flow_name,
                    run.execution_id,
                    run.status,
                    micros(&run.started_at),
                    micros(&run.updated_at),
                    document,
                ],
            )
            .map_err(|error| match violation(&error) {
                Some(Violation::PrimaryKey) => StoreError::AlreadyExists {
                    entity: "run",
                    name: key,
                },
                Some(Violation::ForeignKey) => StoreError::NotFound {
                    entity: "flow",
                    name: run.flow_name.clone(),
                },
                _ => backend(error),
            })?;
            Ok(())
        })
        .await
    }

    async fn update_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let run = run.clone();
        self.call(move |conn| {
            let key = format!("{}/{}", run.flow_name, run.execution_id);
            let document = to_json("run", &key, &run.document)?;
            let changed = execute(
                conn,
                "UPDATE runs SET status = ?3, updated_at = ?4, document = ?5 \
                 WHERE flow_name = ?1 AND execution_id = ?2",
                params![
                    run.flow_name,
                    run.execution_id,
                    run.status,
                    micros(&run.updated_at),
                    document
                ],
            )
            .map_err(backend)?;
            if changed == 0 {
                return Err(StoreError::NotFound {
                    entity: "run",
                    name: key,
                });
            }
            Ok(())
        })
        .await
    }

    async fn get_run(
        &self,
        flow_name: &str,
        execution_id: &str,
    ) -> Result<Option<RunRecord>, StoreError> {
        let (flow_name, execution_id) = (flow_name.to_owned(), execution_id.to_owned());
        self.call(move |conn| {
            query_opt(
                conn,
                select_runs!("WHERE flow_name = ?1 AND execution_id = ?2"),
                params![flow_name, execution_id],
                decode_run,
            )
        })
        .await
    }

    async fn list_runs(
        &self,
        flow_name: &str,
        before: Option<(DateTime<Utc>, String)>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let flow_name = flow_name.to_owned();
        self.call(move |conn| {
            if limit == 0 {
                return Ok(Vec::new());
            }
            match before {
                Some((started_at, execution_id)) => query_all(
                    conn,
                    select_runs!(
                        "WHERE flow_name = ?1 AND (started_at, execution_id) < (?2, ?3) \
                         ORDER BY started_at DESC, execution_id DESC LIMIT ?4"
                    ),
                    params![
                        flow_name,
                        micros(&started_at),
                        execution_id,
                        sql_limit(limit)
                    ],
                    decode_run,
                ),
                None => query_all(
                    conn,
                    select_runs!(
                        "WHERE flow_name = ?1 ORDER BY started_at DESC, execution_id DESC LIMIT ?2"
                    ),
                    params![flow_name, sql_limit(limit)],
                    decode_run,
                ),
            }
        })
        .await
    }

    async fn list_runs_with_status(&self, status: &str) -> Result<Vec<RunRecord>, StoreError> {
        let status = status.to_owned();
        self.call(move |conn| {
            query_all(
                conn,
                select_runs!("WHERE status = ?1 ORDER BY started_at, flow_name, execution_id"),
                params![status],
                decode_run,
            )
        })
        .await
    }

    async fn get_idempotency(
        &self,
        operation: &str,
        token: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let (operation, token) = (operation.to_owned(), token.to_owned());
        self.call(move |conn| {
            query_opt(
                conn,
                "SELECT operation, token, request_hash, response, created_at \
                 FROM idempotency_tokens WHERE operation = ?1 AND token = ?2",
                params![operation, token],
                decode_idempotency,
            )
        })
        .await
    }

    async fn put_idempotency(&self, record: &IdempotencyRecord) -> Result<(), StoreError> {
        let record = record.clone();
        self.call(move |conn| {
            let key = format!("{}/{}", record.operation, record.token);
            let response = to_json("idempotency token", &key, &record.response)?;
            execute(
                conn,
                "INSERT INTO idempotency_tokens (operation, token, request_hash, response, \
                 created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    record.operation,
                    record.token,
                    record.request_hash,
                    response,
                    micros(&record.created_at),
                ],
            )
            .map_err(|error| match violation(&error) {
                Some(Violation::PrimaryKey) => StoreError::AlreadyExists {
                    entity: "idempotency token",
                    name: key,
                },
                _ => backend(error),
            })?;
            Ok(())
        })
        .await
    }

    async fn purge_idempotency(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        self.call(move |conn| {
            let purged = execute(
                conn,
                "DELETE FROM idempotency_tokens WHERE created_at < ?1",
                params![micros(&cutoff)],
            )
            .map_err(backend)?;
            Ok(purged as u64)
        })
        .await
    }

    async fn insert_connector(&self, connector: &ConnectorRecord) -> Result<(), StoreError> {
        let connector = connector.clone();
        self.call(move |conn| {
            let document = to_json("connector", &connector.label, &connector.document)?;
            execute(
                conn,
                "INSERT INTO registered_connectors (label, arn, document, created_at) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    connector.label,
                    connector.arn,
                    document,
                    micros(&connector.created_at)
                ],
            )
            .map_err(|error| {
                CONNECTORS.write_error(conn, &connector.label, &connector.arn, error)
            })?;
            Ok(())
        })
        .await
    }

    async fn get_connector(&self, label: &str) -> Result<Option<ConnectorRecord>, StoreError> {
        let label = label.to_owned();
        self.call(move |conn| {
            query_opt(
                conn,
                select_connectors!("WHERE label = ?1"),
                params![label],
                decode_connector,
            )
        })
        .await
    }

    async fn update_connector(&self, connector: &ConnectorRecord) -> Result<(), StoreError> {
        let connector = connector.clone();
        self.call(move |conn| {
            let document = to_json("connector", &connector.label, &connector.document)?;
            let changed = execute(
                conn,
                "UPDATE registered_connectors SET arn = ?2, document = ?3 WHERE label = ?1",
                params![connector.label, connector.arn, document],
            )
            .map_err(|error| {
                CONNECTORS.write_error(conn, &connector.label, &connector.arn, error)
            })?;
            if changed == 0 {
                return Err(StoreError::NotFound {
                    entity: "connector",
                    name: connector.label,
                });
            }
            Ok(())
        })
        .await
    }

    async fn delete_connector(&self, label: &str) -> Result<bool, StoreError> {
        let label = label.to_owned();
        self.call(move |conn| {
            let deleted = execute(
                conn,
                "DELETE FROM registered_connectors WHERE label = ?1",
                [label],
            )
            .map_err(backend)?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn list_connectors(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ConnectorRecord>, StoreError> {
        let after = after.map(str::to_owned);
        self.call(move |conn| {
            list_page(
                conn,
                select_connectors!("ORDER BY label LIMIT ?1"),
                select_connectors!("WHERE label > ?1 ORDER BY label LIMIT ?2"),
                after.as_deref(),
                limit,
                decode_connector,
            )
        })
        .await
    }

    async fn get_api_key(&self, access_key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let access_key_id = access_key_id.to_owned();
        self.call(move |conn| {
            query_opt(
                conn,
                "SELECT access_key_id, sealed_secret, description, created_at, disabled \
                 FROM api_keys WHERE access_key_id = ?1",
                params![access_key_id],
                decode_api_key,
            )
        })
        .await
    }

    async fn put_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let key = key.clone();
        self.call(move |conn| {
            execute(
                conn,
                "INSERT INTO api_keys (access_key_id, sealed_secret, description, created_at, \
                 disabled) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (access_key_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, \
                 description = excluded.description, created_at = excluded.created_at, \
                 disabled = excluded.disabled",
                params![
                    key.access_key_id,
                    key.sealed_secret,
                    key.description,
                    micros(&key.created_at),
                    key.disabled,
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn get_schedule(&self, flow_name: &str) -> Result<Option<ScheduleRecord>, StoreError> {
        let flow_name = flow_name.to_owned();
        self.call(move |conn| {
            query_opt(
                conn,
                "SELECT flow_name, activated_at, state, event_mark, updated_at \
                 FROM flow_schedules WHERE flow_name = ?1",
                params![flow_name],
                decode_schedule,
            )
        })
        .await
    }

    async fn update_schedule(
        &self,
        flow_name: &str,
        update: &ScheduleUpdate,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let flow_name = flow_name.to_owned();
        let update = update.clone();
        self.call(move |conn| {
            let json = |value: &Option<serde_json::Value>| {
                value
                    .as_ref()
                    .map(|value| to_json("flow schedule", &flow_name, value))
                    .transpose()
            };
            let state = json(&update.state)?;
            let event_mark = json(&update.event_mark)?;
            // COALESCE keeps the stored value of every column the update leaves out.
            let written = execute(
                conn,
                "INSERT INTO flow_schedules (flow_name, activated_at, state, event_mark, \
                 updated_at) SELECT name, ?2, ?3, ?4, ?5 FROM flows WHERE name = ?1 \
                 ON CONFLICT (flow_name) DO UPDATE SET \
                 activated_at = COALESCE(excluded.activated_at, activated_at), \
                 state = COALESCE(excluded.state, state), \
                 event_mark = COALESCE(excluded.event_mark, event_mark), \
                 updated_at = excluded.updated_at",
                params![
                    flow_name,
                    update.activated_at.as_ref().map(micros),
                    state,
                    event_mark,
                    micros(&now),
                ],
            )
            .map_err(backend)?;
            if written == 0 {
                return Err(StoreError::NotFound {
                    entity: "flow",
                    name: flow_name,
                });
            }
            Ok(())
        })
        .await
    }

    async fn delete_schedule(&self, flow_name: &str) -> Result<bool, StoreError> {
        let flow_name = flow_name.to_owned();
        self.call(move |conn| {
            let deleted = execute(
                conn,
                "DELETE FROM flow_schedules WHERE flow_name = ?1",
                params![flow_name],
            )
            .map_err(backend)?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let entry = entry.clone();
        self.call(move |conn| {
            let parameters = to_json("audit entry", &entry.request_id, &entry.request_parameters)?;
            execute(
                conn,
                "INSERT INTO audit_log (time, request_id, operation, access_key_id, source_ip, \
                 user_agent, status, error_code, resource, request_parameters) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    micros(&entry.time),
                    entry.request_id,
                    entry.operation,
                    entry.access_key_id,
                    entry.source_ip,
                    entry.user_agent,
                    entry.status,
                    entry.error_code,
                    entry.resource,
                    parameters,
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn list_audit(
        &self,
        after_id: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, AuditEntry)>, StoreError> {
        self.call(move |conn| {
            query_all(
                conn,
                "SELECT id, time, request_id, operation, access_key_id, source_ip, user_agent, \
                 request_parameters, status, error_code, resource FROM audit_log \
                 WHERE id > ?1 ORDER BY id LIMIT ?2",
                params![after_id.unwrap_or(i64::MIN), sql_limit(limit)],
                decode_audit,
            )
        })
        .await
    }
}
