//! The error every domain rule returns.
//!
//! The server answers any [`DomainError`] with a `ValidationException`, so each message is
//! written for the API caller and names the offending field in the same path convention as the
//! model validator (`tasks.2.member.taskProperties.MASK_LENGTH`). Secrets never appear in a
//! message: rules about credentials only name union keys.

use std::fmt;

use sluice_types::ErrorDomain;

/// Which request a flow definition comes from; AppFlow words some messages per operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowOperation {
    /// `CreateFlow`.
    Create,
    /// `UpdateFlow`.
    Update,
}

impl fmt::Display for FlowOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Create => "Create Flow",
            Self::Update => "Update Flow",
        })
    }
}

/// The end of a flow a connector sits at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectorRole {
    /// Where records are read.
    Source,
    /// Where records are written.
    Destination,
}

impl fmt::Display for ConnectorRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Source => "source",
            Self::Destination => "destination",
        })
    }
}

/// A request that is well-formed JSON but breaks an AppFlow rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// `field` breaks a rule; `reason` completes the sentence that starts with the field.
    #[error("{field} {reason}")]
    Invalid {
        /// Path of the offending field.
        field: String,
        /// What is wrong, e.g. `is required when triggerType is Scheduled`.
        reason: String,
    },
    /// Neither a `PROJECTION` filter nor a `Map_all` task is present (AppFlow's own wording).
    #[error(
        "{operation} request failed: [Task Validation Error: You must specify a projection task or a MAP_ALL task]"
    )]
    MissingProjection {
        /// The request the tasks came from.
        operation: FlowOperation,
    },
    /// The connector exists in AppFlow but Sluice cannot run it (yet) at this end of a flow.
    #[error("Sluice does not support connector {connector} as a {role} yet ({field})")]
    UnsupportedConnector {
        /// Path of the `connectorType` member.
        field: String,
        /// The connector, e.g. `Salesforce` or `CustomConnector (Postgres)`.
        connector: String,
        /// Which end of the flow.
        role: ConnectorRole,
    },
    /// A `scheduleExpression` that does not parse or is out of range.
    #[error("{field} '{expression}' is not a valid schedule expression: {reason}")]
    InvalidSchedule {
        /// Path of the expression.
        field: String,
        /// The expression as sent.
        expression: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl DomainError {
    /// Shorthand for [`DomainError::Invalid`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The path of the offending field.
    pub fn field(&self) -> &str {
        match self {
            Self::Invalid { field, .. }
            | Self::UnsupportedConnector { field, .. }
            | Self::InvalidSchedule { field, .. } => field,
            Self::MissingProjection { .. } => "tasks",
        }
    }

    /// Every domain error is the caller's to fix.
    pub fn error_domain(&self) -> ErrorDomain {
        ErrorDomain::User
    }

    /// Re-anchors the error at `field` (used when a rule checked a value out of context).
    pub(crate) fn at(mut self, path: &str) -> Self {
        match &mut self {
            Self::Invalid { field, .. }
            | Self::UnsupportedConnector { field, .. }
            | Self::InvalidSchedule { field, .. } => *field = path.to_string(),
            Self::MissingProjection { .. } => {}
        }
        self
    }
}
