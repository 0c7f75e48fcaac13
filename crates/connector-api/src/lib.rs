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
}
