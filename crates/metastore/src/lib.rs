//! Metadata store: flows, connector profiles, runs, idempotency tokens, registered connectors,
//! API keys and the audit log.
//!
//! Everything the server persists goes through one async trait, [`MetadataStore`], so that a
//! second backend (Postgres, for several server nodes) can be added without touching callers.
//! Today's implementation is [`SqliteStore`]: an embedded SQLite database in the data
//! directory, migrated on open. Records keep their AppFlow-shaped payload as an opaque JSON
//! `document` owned by the server; the store only indexes the columns it needs to query
//! (name, status, trigger type, start time), which keeps schema changes rare.
//!
//! Credentials never reach the store in clear text: connector-profile credentials and API-key
//! secrets are sealed with [`secrets::SecretBox`] (AES-256-GCM, bound to their owner's ARN or
//! key id) before they are written.
//!
//! The backend-independent contract suite lives in `testsuite` (enabled by the `testsuite`
//! feature); every backend must pass it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sluice_types::ErrorDomain;

pub mod secrets;
mod sqlite;
#[cfg(test)]
mod test_util;
#[cfg(any(test, feature = "testsuite"))]
pub mod testsuite;

pub use sqlite::SqliteStore;

/// A metadata-store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A record with this key already exists.
    #[error("{entity} {name} already exists")]
    AlreadyExists {
        /// Kind of record, e.g. `flow`.
        entity: &'static str,
        /// Its key.
        name: String,
    },
    /// No record has this key.
    #[error("{entity} {name} does not exist")]
    NotFound {
        /// Kind of record, e.g. `flow`.
        entity: &'static str,
        /// Its key.
        name: String,
    },
    /// The write contradicts stored state in another way (e.g. an ARN already used by a
    /// record with a different name).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database failed (IO, locking, SQL error).
    #[error("metadata store error: {0}")]
    Backend(String),
    /// Stored data cannot be decoded, or the schema is not one this build understands.
    #[error("metadata store holds corrupt data: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whose fault the failure is: missing/duplicate records are the caller's, the rest is ours.
    pub fn domain(&self) -> ErrorDomain {
        match self {
            Self::AlreadyExists { .. } | Self::NotFound { .. } | Self::Conflict(_) => {
                ErrorDomain::User
            }
            Self::Backend(_) | Self::Corrupt(_) => ErrorDomain::Internal,
        }
    }
}

/// A flow definition.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRecord {
    /// Flow name, the primary key.
    pub name: String,
    /// Flow ARN; unique.
    pub arn: String,
    /// `FlowStatus` (`Active`, `Draft`, `Suspended`, ...).
    pub status: String,
    /// `TriggerType` (`OnDemand`, `Scheduled`, `Event`).
    pub trigger_type: String,
    /// `DescribeFlowResponse`-shaped JSON, owned by the server (tags live here).
    pub document: serde_json::Value,
    /// Creation time; never changed by updates.
    pub created_at: DateTime<Utc>,
    /// Last update time.
    pub updated_at: DateTime<Utc>,
}

/// A connector profile.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileRecord {
    /// Profile name, the primary key.
    pub name: String,
    /// Profile ARN; unique.
    pub arn: String,
    /// `ConnectorType`.
    pub connector_type: String,
    /// Label of the custom connector, when `connector_type` is `CustomConnector`.
    pub connector_label: Option<String>,
    /// `ConnectorProfile` JSON without credentials.
    pub document: serde_json::Value,
    /// Credentials sealed with [`secrets::SecretBox`]; may be empty for connectors without any.
    pub sealed_credentials: Vec<u8>,
    /// Creation time; never changed by updates.
    pub created_at: DateTime<Utc>,
    /// Last update time.
    pub updated_at: DateTime<Utc>,
}

/// One execution of a flow.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// The flow this run belongs to; it must exist.
    pub flow_name: String,
    /// Execution id, unique within the flow.
    pub execution_id: String,
    /// `ExecutionStatus` (`InProgress`, `Successful`, `Error`, `CancelStarted`, `Canceled`).
    pub status: String,
    /// Start time; part of the listing order, so it is never changed by updates.
    pub started_at: DateTime<Utc>,
    /// Last update time.
    pub updated_at: DateTime<Utc>,
    /// `ExecutionRecord` JSON.
    pub document: serde_json::Value,
}

/// A registered custom connector.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorRecord {
    /// Connector label, the primary key.
    pub label: String,
    /// Connector ARN; unique.
    pub arn: String,
    /// Registration JSON (`ConnectorDetail` / `ConnectorConfiguration` material), server-owned.
    pub document: serde_json::Value,
    /// Registration time; never changed by updates.
    pub created_at: DateTime<Utc>,
}

/// The remembered outcome of an idempotent request.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyRecord {
    /// Operation name, e.g. `CreateFlow`.
    pub operation: String,
    /// The client token.
    pub token: String,
    /// Hash of the request parameters, to tell a replay from a token reused for another request.
    pub request_hash: String,
    /// The response to replay.
    pub response: serde_json::Value,
    /// When the token was first used.
    pub created_at: DateTime<Utc>,
}

/// An API access key.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    /// Access key id, the primary key.
    pub access_key_id: String,
    /// Secret access key sealed with [`secrets::SecretBox`].
    pub sealed_secret: Vec<u8>,
    /// Free-form description.
    pub description: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Disabled keys are kept for the audit trail but must be refused.
    pub disabled: bool,
}

/// What is persisted for a scheduled or event-triggered flow: its activation, the scheduler's
/// state and the event trigger's high-water mark. The documents are JSON owned by the server.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRecord {
    /// The flow, the primary key; the record is deleted with its flow.
    pub flow_name: String,
    /// When `StartFlow` last activated the flow.
    pub activated_at: Option<DateTime<Utc>>,
    /// The scheduler's state of the flow.
    pub state: Option<serde_json::Value>,
    /// The event trigger's high-water mark.
    pub event_mark: Option<serde_json::Value>,
    /// When any of the above last changed.
    pub updated_at: DateTime<Utc>,
}

/// A partial write of a [`ScheduleRecord`]: `None` fields keep their stored value, so the
/// scheduler, activations and event triggers never overwrite each other's columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduleUpdate {
    /// New activation time.
    pub activated_at: Option<DateTime<Utc>>,
    /// New scheduler state.
    pub state: Option<serde_json::Value>,
    /// New event high-water mark.
    pub event_mark: Option<serde_json::Value>,
}

/// One API call, as recorded in the append-only audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// When the call was received.
    pub time: DateTime<Utc>,
    /// The `x-amzn-RequestId` returned to the caller.
    pub request_id: String,
    /// Operation name, e.g. `CreateFlow`.
    pub operation: String,
    /// Caller's access key id, when the request was signed.
    pub access_key_id: Option<String>,
    /// Caller's address.
    pub source_ip: Option<String>,
    /// Caller's `User-Agent`.
    pub user_agent: Option<String>,
    /// HTTP status of the response.
    pub status: u16,
    /// Error code (`ValidationException`, ...) when the call failed.
    pub error_code: Option<String>,
    /// ARN or name of the resource acted on.
    pub resource: Option<String>,
    /// Request parameters, already redacted by the caller.
    pub request_parameters: serde_json::Value,
}

/// Persistent storage for everything the server knows.
///
/// # Contract
///
/// * Keys compare and list in byte order of their UTF-8 encoding (`"B" < "a" < "é"`); list
///   methods return records strictly after the `after` cursor, at most `limit` of them.
/// * Timestamps are kept to the microsecond (the precision of Postgres `timestamptz`); finer
///   digits are truncated on write.
/// * `update_*` never changes the key nor the creation/start time of a record.
/// * Methods run their blocking work off the async executor and must be called from within a
///   Tokio runtime.
///
/// # Errors
///
/// [`StoreError::AlreadyExists`] and [`StoreError::NotFound`] as documented per method;
/// [`StoreError::Conflict`] when a unique ARN is reused under another key;
/// [`StoreError::Backend`] / [`StoreError::Corrupt`] for database failures and undecodable rows.
#[async_trait]
pub trait MetadataStore: Send + Sync + std::fmt::Debug {
    /// Stores a new flow. `AlreadyExists` if a flow has this name.
    async fn insert_flow(&self, flow: &FlowRecord) -> Result<(), StoreError>;
    /// Reads a flow by name.
    async fn get_flow(&self, name: &str) -> Result<Option<FlowRecord>, StoreError>;
    /// Replaces a flow's ARN, status, trigger type, document and update time. `NotFound` if
    /// there is no flow with this name.
    async fn update_flow(&self, flow: &FlowRecord) -> Result<(), StoreError>;
    /// Deletes a flow and all its runs; `false` if it did not exist.
    async fn delete_flow(&self, name: &str) -> Result<bool, StoreError>;
    /// Flows ordered by name, starting after `after`.
    async fn list_flows(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FlowRecord>, StoreError>;
    /// Every flow with this status, ordered by name.
    async fn list_flows_by_status(&self, status: &str) -> Result<Vec<FlowRecord>, StoreError>;

    /// Stores a new connector profile. `AlreadyExists` if a profile has this name.
    async fn insert_profile(&self, profile: &ProfileRecord) -> Result<(), StoreError>;
    /// Reads a connector profile by name.
    async fn get_profile(&self, name: &str) -> Result<Option<ProfileRecord>, StoreError>;
    /// Replaces everything but the name and creation time. `NotFound` if there is no profile
    /// with this name.
    async fn update_profile(&self, profile: &ProfileRecord) -> Result<(), StoreError>;
    /// Deletes a connector profile; `false` if it did not exist.
    async fn delete_profile(&self, name: &str) -> Result<bool, StoreError>;
    /// Connector profiles ordered by name, starting after `after`.
    async fn list_profiles(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ProfileRecord>, StoreError>;

    /// Stores a new run. `NotFound` if the flow does not exist, `AlreadyExists` if the flow
    /// already has a run with this execution id.
    async fn insert_run(&self, run: &RunRecord) -> Result<(), StoreError>;
    /// Replaces a run's status, document and update time. `NotFound` if there is no such run.
    async fn update_run(&self, run: &RunRecord) -> Result<(), StoreError>;
    /// Reads one run.
    async fn get_run(
        &self,
        flow_name: &str,
        execution_id: &str,
    ) -> Result<Option<RunRecord>, StoreError>;
    /// Runs of a flow, newest first (by `started_at`, then `execution_id`, both descending);
    /// `before` is the (started_at, execution_id) cursor of the last row of the previous page.
    /// An unknown flow has no runs.
    async fn list_runs(
        &self,
        flow_name: &str,
        before: Option<(DateTime<Utc>, String)>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, StoreError>;
    /// Every run with this status across all flows, oldest first (restart recovery).
    async fn list_runs_with_status(&self, status: &str) -> Result<Vec<RunRecord>, StoreError>;

    /// Reads the remembered outcome of `(operation, token)`.
    async fn get_idempotency(
        &self,
        operation: &str,
        token: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;
    /// Remembers the outcome of a request. The first writer wins: `AlreadyExists` if
    /// `(operation, token)` is already recorded, so a racing duplicate can re-read and replay.
    async fn put_idempotency(&self, record: &IdempotencyRecord) -> Result<(), StoreError>;
    /// Forgets tokens created strictly before `cutoff`; returns how many were removed.
    async fn purge_idempotency(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Stores a new registered connector. `AlreadyExists` if a connector has this label.
    async fn insert_connector(&self, connector: &ConnectorRecord) -> Result<(), StoreError>;
    /// Reads a registered connector by label.
    async fn get_connector(&self, label: &str) -> Result<Option<ConnectorRecord>, StoreError>;
    /// Replaces a connector's ARN and document. `NotFound` if there is no such label.
    async fn update_connector(&self, connector: &ConnectorRecord) -> Result<(), StoreError>;
    /// Deletes a registered connector; `false` if it did not exist.
    async fn delete_connector(&self, label: &str) -> Result<bool, StoreError>;
    /// Registered connectors ordered by label, starting after `after`.
    async fn list_connectors(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ConnectorRecord>, StoreError>;

    /// Reads an API key.
    async fn get_api_key(&self, access_key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError>;
    /// Creates or replaces an API key (every field, `created_at` included).
    async fn put_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError>;

    /// The persisted schedule of a flow; `None` when nothing was ever written for it.
    async fn get_schedule(&self, flow_name: &str) -> Result<Option<ScheduleRecord>, StoreError>;
    /// Writes the given columns of a flow's schedule, creating the record if needed; the other
    /// columns keep their values. [`StoreError::NotFound`] when the flow does not exist.
    async fn update_schedule(
        &self,
        flow_name: &str,
        update: &ScheduleUpdate,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Forgets a flow's schedule (its activation, state and mark); `false` when there was none.
    async fn delete_schedule(&self, flow_name: &str) -> Result<bool, StoreError>;

    /// Appends to the audit log. Entries can never be changed or removed.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// Audit entries in insertion order with their ids (ever increasing, never reused),
    /// starting after `after_id`.
    async fn list_audit(
        &self,
        after_id: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, AuditEntry)>, StoreError>;
}
