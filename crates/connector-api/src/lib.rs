//! The connector contract.
//!
//! A connector is one value implementing [`Connector`]. Sources produce a [`BatchStream`] of
//! Arrow [`RecordBatch`]es; destinations accept batches through a [`DestinationWriter`] whose
//! output becomes visible only on [`DestinationWriter::commit`], so a failed run never leaves
//! output that looks complete. The methods follow AppFlow's custom-connector contract
//! (describe configuration, validate credentials, list/describe entities, read, write).
//!
//! Everything here is IO-free: connectors live in `crates/connectors/<name>/` and are listed
//! explicitly by the `sluice-connectors` registry.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::RecordBatch;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use sluice_api_model as model;
use sluice_types::{ErrorDomain, Sensitive};

/// A stream of record batches produced by a source.
pub type BatchStream = BoxStream<'static, Result<RecordBatch, ConnectorError>>;

/// What went wrong in a connector, classified so the API and run records can report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorErrorKind {
    /// The flow or profile configuration is invalid for this connector.
    InvalidConfig,
    /// The entity, bucket, object or table does not exist.
    NotFound,
    /// Credentials were refused.
    Authentication,
    /// The remote system is unavailable or failed (5xx, connection refused, throttled).
    Unavailable,
    /// The data could not be read or written (malformed row, type mismatch).
    BadData,
    /// The operation is not supported by this connector.
    Unsupported,
    /// Anything else.
    Internal,
}

/// A connector failure. The message must say what and where (object key, line, field) and must
/// never contain a credential.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ConnectorError {
    /// Classification.
    pub kind: ConnectorErrorKind,
    /// Human-readable message.
    pub message: String,
}

impl ConnectorError {
    /// Builds an error of the given kind.
    pub fn new(kind: ConnectorErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// Shorthand for [`ConnectorErrorKind::InvalidConfig`].
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Self::new(ConnectorErrorKind::InvalidConfig, message)
    }

    /// Shorthand for [`ConnectorErrorKind::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ConnectorErrorKind::NotFound, message)
    }

    /// Shorthand for [`ConnectorErrorKind::Unavailable`].
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ConnectorErrorKind::Unavailable, message)
    }

    /// Shorthand for [`ConnectorErrorKind::BadData`].
    pub fn bad_data(message: impl Into<String>) -> Self {
        Self::new(ConnectorErrorKind::BadData, message)
    }

    /// Shorthand for [`ConnectorErrorKind::Unsupported`].
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ConnectorErrorKind::Unsupported, message)
    }

    /// Shorthand for [`ConnectorErrorKind::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ConnectorErrorKind::Internal, message)
    }

    /// Where the failure comes from.
    pub fn domain(&self) -> ErrorDomain {
        match self.kind {
            ConnectorErrorKind::InvalidConfig
            | ConnectorErrorKind::NotFound
            | ConnectorErrorKind::BadData
            | ConnectorErrorKind::Unsupported => ErrorDomain::User,
            ConnectorErrorKind::Authentication | ConnectorErrorKind::Unavailable => {
                ErrorDomain::External
            }
            ConnectorErrorKind::Internal => ErrorDomain::Internal,
        }
    }
}

/// A connector profile as a connector sees it: non-secret properties and decrypted credentials.
#[derive(Clone)]
pub struct Profile {
    /// Profile name.
    pub name: String,
    /// Connector type of the profile.
    pub connector_type: model::ConnectorType,
    /// Label, for `CustomConnector` profiles.
    pub connector_label: Option<String>,
    /// The `ConnectorProfileProperties` union, as JSON (`{"Salesforce": {...}}`).
    pub properties: serde_json::Value,
    /// The `ConnectorProfileCredentials` union, as JSON; never logged.
    pub credentials: Sensitive<serde_json::Value>,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("name", &self.name)
            .field("connector_type", &self.connector_type)
            .field("connector_label", &self.connector_label)
            .finish_non_exhaustive()
    }
}

/// A filter the source may push down. The pipeline applies every filter again after reading,
/// so pushing down is an optimisation, never a requirement.
#[derive(Debug, Clone, PartialEq)]
pub struct PushdownFilter {
    /// Source field.
    pub field: String,
    /// AppFlow operator (`EQUAL_TO`, `BETWEEN`, ...).
    pub operator: model::Operator,
    /// Operand values as the task gave them (`VALUE`, `VALUES`, or lower and upper bound).
    pub values: Vec<String>,
    /// `DATA_TYPE` of the task, when given.
    pub data_type: Option<String>,
}

/// The incremental window of a run: `[start, end)` on `field`.
#[derive(Debug, Clone, PartialEq)]
pub struct IncrementalWindow {
    /// The `datetimeTypeFieldName`.
    pub field: String,
    /// Inclusive start.
    pub start: DateTime<Utc>,
    /// Exclusive end.
    pub end: DateTime<Utc>,
}

/// Counters a source updates while it reads.
#[derive(Debug, Default)]
pub struct ReadStats {
    bytes_read: AtomicU64,
}

impl ReadStats {
    /// Adds to the number of bytes read from the source system.
    pub fn add_bytes(&self, bytes: u64) {
        self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }
}

/// Everything a source needs for one run.
#[derive(Debug, Clone)]
pub struct ReadRequest {
    /// Flow name.
    pub flow_name: String,
    /// Execution id of the run.
    pub execution_id: String,
    /// The flow's source configuration.
    pub source: model::SourceFlowConfig,
    /// The resolved profile, when the flow names one.
    pub profile: Option<Profile>,
    /// Fields to read; `None` reads every field.
    pub projection: Option<Vec<String>>,
    /// Filters the source may push down.
    pub filters: Vec<PushdownFilter>,
    /// Incremental window, for incremental pulls.
    pub window: Option<IncrementalWindow>,
    /// Preferred number of rows per batch.
    pub batch_rows: usize,
    /// Counters the source must update.
    pub stats: Arc<ReadStats>,
}

/// Everything a destination needs for one run.
#[derive(Debug, Clone)]
pub struct WriteRequest {
    /// Flow name.
    pub flow_name: String,
    /// Execution id of the run.
    pub execution_id: String,
    /// The flow's destination configuration.
    pub destination: model::DestinationFlowConfig,
    /// The resolved profile, when the destination names one.
    pub profile: Option<Profile>,
    /// The flow's schema version (`schemaVersion_<n>` folders).
    pub schema_version: i64,
    /// When the run started; drives date/time prefixes.
    pub run_started_at: DateTime<Utc>,
    /// Destination fields used as partition keys, in nesting order.
    pub partition_keys: Vec<String>,
    /// Where rejected records go (the `errorHandlingConfig` bucket location, or nowhere).
    /// A destination that counts a put failure must also hand the record here.
    pub rejected: Arc<dyn RejectedRecordSink>,
}

/// One record a destination refused, with the destination's reason.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedRecord {
    /// The record as it was sent, field name to value.
    pub record: serde_json::Map<String, serde_json::Value>,
    /// The destination's error code, when it gives one (`DUPLICATE_VALUE`, SQLSTATE `23505`).
    pub code: Option<String>,
    /// The destination's message. Must not contain a credential.
    pub message: String,
}

/// Receives the records a destination rejected during one run, for AppFlow's
/// `errorHandlingConfig` error location.
///
/// Implementations may buffer; [`finish`](Self::finish) makes everything durable. The engine
/// calls `finish` after the writer committed or aborted, so rejected records are kept even
/// when the run stops at the first error.
#[async_trait]
pub trait RejectedRecordSink: Send + Sync + fmt::Debug {
    /// Stores `records`.
    async fn put(&self, records: Vec<RejectedRecord>) -> Result<(), ConnectorError>;

    /// Writes whatever is buffered and returns the locations written so far (object keys).
    async fn finish(&self) -> Result<Vec<String>, ConnectorError>;
}

/// The sink used when a flow has no error location: records are counted by the destination
/// and dropped here, with a log line per call so the drop is visible.
#[derive(Debug, Default)]
pub struct NoErrorLocation;

#[async_trait]
impl RejectedRecordSink for NoErrorLocation {
    async fn put(&self, records: Vec<RejectedRecord>) -> Result<(), ConnectorError> {
        if let Some(first) = records.first() {
            tracing::warn!(
                count = records.len(),
                first_error = %first.message,
                "rejected records not stored: the flow's errorHandlingConfig has no bucketName"
            );
        }
        Ok(())
    }

    async fn finish(&self) -> Result<Vec<String>, ConnectorError> {
        Ok(Vec::new())
    }
}

/// In-memory sink for tests and `sluice run` previews: keeps every record.
#[derive(Debug, Default)]
pub struct CollectRejected {
    records: std::sync::Mutex<Vec<RejectedRecord>>,
}

impl CollectRejected {
    /// The records received so far.
    pub fn records(&self) -> Vec<RejectedRecord> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl RejectedRecordSink for CollectRejected {
    async fn put(&self, records: Vec<RejectedRecord>) -> Result<(), ConnectorError> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(records);
        Ok(())
    }

    async fn finish(&self) -> Result<Vec<String>, ConnectorError> {
        Ok(Vec::new())
    }
}

/// What a destination wrote in one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Records accepted by the destination.
    pub records_written: u64,
    /// Bytes written to the destination.
    pub bytes_written: u64,
    /// Records the destination rejected (AppFlow `putFailuresCount`).
    pub put_failures: u64,
    /// Locations written (object keys, table names), for run reports.
    pub locations: Vec<String>,
}

/// One run's writer. Output becomes visible only on `commit`; `abort` discards it.
#[async_trait]
pub trait DestinationWriter: Send {
    /// Writes one batch.
    async fn write(&mut self, batch: RecordBatch) -> Result<(), ConnectorError>;
    /// Finishes the run's output and makes it visible.
    async fn commit(self: Box<Self>) -> Result<WriteSummary, ConnectorError>;
    /// Discards everything written in this run. Must not fail loudly.
    async fn abort(self: Box<Self>);
}

/// Context for metadata calls (`ListConnectorEntities`, `DescribeConnectorEntity`).
#[derive(Debug, Clone, Default)]
pub struct EntityContext {
    /// The resolved profile, when one was named.
    pub profile: Option<Profile>,
    /// `entitiesPath` of the request.
    pub entities_path: Option<String>,
}

/// Entities grouped as `ListConnectorEntities.connectorEntityMap` expects.
pub type EntityListing = std::collections::BTreeMap<String, Vec<model::ConnectorEntity>>;

/// A connector: metadata plus optional source and destination capabilities.
///
/// # Contract
/// - `read` streams batches with bounded memory; each batch carries its own schema (files of
///   one run may differ in columns).
/// - `read` and `open_writer` errors, and errors inside the stream, say what failed and where.
/// - Nothing a connector returns or logs contains a credential.
#[async_trait]
pub trait Connector: Send + Sync + fmt::Debug {
    /// The `ConnectorType` this connector implements.
    fn connector_type(&self) -> model::ConnectorType;

    /// The label, for connectors exposed as `CustomConnector`.
    fn connector_label(&self) -> Option<&'static str> {
        None
    }

    /// What `DescribeConnector(s)` reports for this connector.
    fn configuration(&self) -> model::ConnectorConfiguration;

    /// Checks a profile's credentials at `CreateConnectorProfile`/`UpdateConnectorProfile`.
    async fn validate_profile(&self, profile: &Profile) -> Result<(), ConnectorError> {
        let _ = profile;
        Ok(())
    }

    /// Turns the profile a caller sent to `CreateConnectorProfile`/`UpdateConnectorProfile`
    /// into the profile to store. OAuth connectors exchange one-time grants here (an
    /// authorization code) and return the resulting tokens, so the code itself is never
    /// stored; they may also fill in properties the exchange revealed (an instance URL).
    ///
    /// The default checks the profile with [`validate_profile`](Self::validate_profile) and
    /// stores it as given.
    ///
    /// # Errors
    /// An [`ConnectorErrorKind::Authentication`] error when the provider refuses the
    /// credentials, quoting the provider's reason but never a secret.
    async fn prepare_profile(&self, profile: &Profile) -> Result<PreparedProfile, ConnectorError> {
        self.validate_profile(profile).await?;
        Ok(PreparedProfile {
            properties: profile.properties.clone(),
            credentials: profile.credentials.clone(),
        })
    }

    /// Lists entities (`ListConnectorEntities`).
    async fn list_entities(&self, ctx: &EntityContext) -> Result<EntityListing, ConnectorError>;

    /// Describes one entity's fields (`DescribeConnectorEntity`).
    async fn describe_entity(
        &self,
        ctx: &EntityContext,
        entity: &str,
    ) -> Result<Vec<model::ConnectorEntityField>, ConnectorError>;

    /// Starts reading for one run.
    async fn read(&self, request: ReadRequest) -> Result<BatchStream, ConnectorError> {
        let _ = request;
        Err(ConnectorError::unsupported(format!(
            "{} cannot be used as a source",
            self.connector_type()
        )))
    }

    /// Opens the destination writer for one run.
    async fn open_writer(
        &self,
        request: WriteRequest,
    ) -> Result<Box<dyn DestinationWriter>, ConnectorError> {
        let _ = request;
        Err(ConnectorError::unsupported(format!(
            "{} cannot be used as a destination",
            self.connector_type()
        )))
    }
}

/// Looks connectors up by type (and label for `CustomConnector`).
pub trait ConnectorRegistry: Send + Sync + fmt::Debug {
    /// The connector for `connector_type` (and `label` for `CustomConnector`), if compiled in.
    fn get(
        &self,
        connector_type: model::ConnectorType,
        label: Option<&str>,
    ) -> Option<Arc<dyn Connector>>;

    /// Every connector, in a stable order.
    fn all(&self) -> Vec<Arc<dyn Connector>>;

    /// A sink writing one run's rejected records under `location`.
    fn error_location(
        &self,
        location: &ErrorLocation,
    ) -> Result<Arc<dyn RejectedRecordSink>, ConnectorError> {
        Err(ConnectorError::unsupported(format!(
            "rejected records cannot be written to bucket {}: no object store is configured",
            location.bucket
        )))
    }
}

/// Where one run's rejected records are written: AppFlow's `errorHandlingConfig` bucket and
/// prefix, with the flow name and execution id below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorLocation {
    /// `errorHandlingConfig.bucketName`.
    pub bucket: String,
    /// `errorHandlingConfig.bucketPrefix`, possibly empty.
    pub prefix: String,
    /// Flow name.
    pub flow_name: String,
    /// Execution id of the run.
    pub execution_id: String,
}

/// What [`Connector::prepare_profile`] returns: the profile as it is to be stored.
#[derive(Clone)]
pub struct PreparedProfile {
    /// The `ConnectorProfileProperties` union to store, as JSON (`{"Salesforce": {...}}`).
    pub properties: serde_json::Value,
    /// The `ConnectorProfileCredentials` union to store, as JSON; sealed by the server.
    pub credentials: Sensitive<serde_json::Value>,
}

impl fmt::Debug for PreparedProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedProfile")
            .field("properties", &self.properties)
            .finish_non_exhaustive()
    }
}

/// Writes credentials a connector renewed back to a stored connector profile, so that the
/// next run and the next server start begin from them: a restart needs no renewal, and a
/// refresh token the provider rotated is not lost.
///
/// The server implements it over its metadata store (credentials sealed as at
/// `CreateConnectorProfile`); connectors receive it at construction.
///
/// # Contract
/// The write is a compare-and-swap: it happens only while the stored credentials still equal
/// `previous`, so credentials a user replaced meanwhile with `UpdateConnectorProfile` are never
/// overwritten by tokens renewed from the old ones.
#[async_trait]
pub trait CredentialsStore: Send + Sync + fmt::Debug {
    /// Replaces the credentials of profile `profile` with `credentials` if they are still
    /// `previous`. Returns `false` (and writes nothing) when the profile is gone or its
    /// credentials changed.
    ///
    /// # Errors
    /// A [`ConnectorErrorKind::Internal`] error when the store fails; the message names the
    /// profile, never a secret.
    async fn replace_credentials(
        &self,
        profile: &str,
        previous: &Sensitive<serde_json::Value>,
        credentials: &Sensitive<serde_json::Value>,
    ) -> Result<bool, ConnectorError>;
}
