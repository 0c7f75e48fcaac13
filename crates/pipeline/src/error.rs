//! Why a run failed.
//!
//! Every variant renders as the run's `executionMessage`, so each one says what failed and
//! where (`S3 source: in/data.csv line 17: expected 5 fields, found 4`), and each one knows
//! whose fault it is through [`RunError::domain`].

use sluice_connector_api::ConnectorError;
use sluice_transforms::{PlanError, TransformError};
use sluice_types::ErrorDomain;

/// A run failure. Its `Display` is the run's `executionMessage`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The flow's tasks could not be compiled.
    #[error("invalid tasks: {0}")]
    Plan(#[source] PlanError),
    /// No connector of this type is compiled into this build.
    #[error("{connector} cannot be used as a {role}: no such connector in this build")]
    ConnectorUnavailable {
        /// Connector name (type, or label for custom connectors).
        connector: String,
        /// `source` or `destination`.
        role: &'static str,
    },
    /// The source failed to open or while streaming.
    #[error("{connector} source: {error}")]
    Source {
        /// Connector name.
        connector: String,
        /// The connector's error, which names the object and line.
        #[source]
        error: ConnectorError,
    },
    /// A task failed on a batch (conversion error, `TerminateFlow` validation).
    #[error("task failed: {0}")]
    Transform(#[source] TransformError),
    /// The destination failed to open or to accept a batch.
    #[error("{connector} destination: {error}")]
    Destination {
        /// Connector name.
        connector: String,
        /// The connector's error.
        #[source]
        error: ConnectorError,
    },
    /// The destination could not make the run's output visible.
    #[error("{connector} destination: cannot commit output: {error}")]
    Commit {
        /// Connector name.
        connector: String,
        /// The connector's error.
        #[source]
        error: ConnectorError,
    },
    /// Rejected records could not be stored in the `errorHandlingConfig` location.
    #[error("error location s3://{bucket}: {error}")]
    ErrorLocation {
        /// `errorHandlingConfig.bucketName`.
        bucket: String,
        /// The storage error.
        #[source]
        error: ConnectorError,
    },
    /// A bug: a stage panicked or disappeared.
    #[error("internal error: {0}")]
    Internal(String),
}

impl RunError {
    /// Whose fault the failure is.
    pub fn domain(&self) -> ErrorDomain {
        match self {
            Self::Plan(_) | Self::ConnectorUnavailable { .. } | Self::Transform(_) => {
                ErrorDomain::User
            }
            Self::Source { error, .. }
            | Self::Destination { error, .. }
            | Self::Commit { error, .. }
            | Self::ErrorLocation { error, .. } => error.domain(),
            Self::Internal(_) => ErrorDomain::Internal,
        }
    }
}
