//! Errors of plan compilation ([`PlanError`]) and of applying a plan to a batch
//! ([`TransformError`]).
//!
//! Task positions are reported as `tasks[i]` (0-based, the index in the flow's `tasks` array) so a
//! message points at the exact JSON element to fix. Row numbers are 0-based positions in the batch
//! given to [`crate::TaskPlan::apply`], before any row was filtered out.

use arrow_schema::ArrowError;
use sluice_api_model::{ConnectorType, Operator, TaskType};
use sluice_types::ErrorDomain;

/// The `field` of a [`TransformError::Arrow`] about the batch as a whole.
pub(crate) const BATCH: &str = "*";

/// A task definition that cannot be compiled into a plan.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// Neither a `PROJECTION` filter nor a `Map_all` task is present.
    #[error("tasks: you must specify a Filter task with the PROJECTION operator or a Map_all task")]
    NoProjection,

    /// A required task property is absent.
    #[error("tasks[{task}] ({task_type}): taskProperties.{property} is required")]
    MissingProperty {
        /// Index of the task.
        task: usize,
        /// Type of the task.
        task_type: TaskType,
        /// The missing `OperatorPropertiesKeys` key.
        property: &'static str,
    },

    /// A task property has a value that cannot be used.
    #[error(
        "tasks[{task}] ({task_type}): taskProperties.{property} {value:?} is invalid: {reason}"
    )]
    InvalidProperty {
        /// Index of the task.
        task: usize,
        /// Type of the task.
        task_type: TaskType,
        /// The offending `OperatorPropertiesKeys` key.
        property: &'static str,
        /// The value as given.
        value: String,
        /// Why it was rejected.
        reason: String,
    },

    /// The task type needs a `connectorOperator` and none was given.
    #[error("tasks[{task}] ({task_type}): connectorOperator is required for this task type")]
    MissingOperator {
        /// Index of the task.
        task: usize,
        /// Type of the task.
        task_type: TaskType,
    },

    /// The operator does not make sense for the task type (e.g. `MASK_ALL` on a `Filter`).
    #[error(
        "tasks[{task}] ({task_type}): connectorOperator {operator} is not valid for this task type"
    )]
    UnsupportedOperator {
        /// Index of the task.
        task: usize,
        /// Type of the task.
        task_type: TaskType,
        /// The operator given.
        operator: Operator,
    },

    /// The operator is not one of AppFlow's `Operator` values.
    #[error("tasks[{task}] ({task_type}): connectorOperator {operator:?} is not a known operator")]
    UnknownOperator {
        /// Index of the task.
        task: usize,
        /// Type of the task.
        task_type: TaskType,
        /// The operator as given.
        operator: String,
    },

    /// `connectorOperator` is a union and must have exactly one member.
    #[error(
        "tasks[{task}] ({task_type}): connectorOperator must have exactly one member, found {found}"
    )]
    OperatorMembers {
        /// Index of the task.
        task: usize,
        /// Type of the task.
        task_type: TaskType,
        /// Number of members set.
        found: usize,
    },

    /// `connectorOperator` is keyed by a connector other than the flow's source.
    #[error(
        "tasks[{task}] ({task_type}): connectorOperator.{key} does not match the source connector {connector}"
    )]
    OperatorConnector {
        /// Index of the task.
        task: usize,
        /// Type of the task.
        task_type: TaskType,
        /// The union key that was set.
        key: &'static str,
        /// The flow's source connector type.
        connector: ConnectorType,
    },

    /// `sourceFields` has the wrong number of (non-empty) entries for the task type.
    #[error("tasks[{task}] ({task_type}): sourceFields must contain {expected}, found {found}")]
    SourceFields {
        /// Index of the task.
        task: usize,
        /// Type of the task.
        task_type: TaskType,
        /// What the task type needs, e.g. `"exactly 1 field"`.
        expected: &'static str,
        /// Number of non-empty entries found.
        found: usize,
    },

    /// Two tasks write the same destination field.
    #[error(
        "tasks[{task}] ({task_type}): destinationField `{field}` is already written by tasks[{first}]"
    )]
    DuplicateDestination {
        /// Index of the second task.
        task: usize,
        /// Type of the second task.
        task_type: TaskType,
        /// The destination field.
        field: String,
        /// Index of the task that writes it first.
        first: usize,
    },

    /// More than one `Map_all` task.
    #[error(
        "tasks[{task}] (Map_all): only one Map_all task is allowed, tasks[{first}] is one already"
    )]
    DuplicateMapAll {
        /// Index of the second `Map_all` task.
        task: usize,
        /// Index of the first one.
        first: usize,
    },

    /// A task reads a source field that no `PROJECTION` task lists.
    #[error(
        "tasks[{task}] ({task_type}): source field `{field}` is not in the projection; add it to the sourceFields of the PROJECTION task"
    )]
    FieldNotProjected {
        /// Index of the task.
        task: usize,
        /// Type of the task.
        task_type: TaskType,
        /// The source field.
        field: String,
    },

    /// A partition key is not a field of the output.
    #[error(
        "tasks[{task}] (Partition): partition key `{field}` is not a destination field of the flow"
    )]
    PartitionKeyNotMapped {
        /// Index of the `Partition` task.
        task: usize,
        /// The partition key.
        field: String,
    },
}

impl PlanError {
    /// Where the failure comes from: always the flow definition.
    pub fn domain(&self) -> ErrorDomain {
        ErrorDomain::User
    }
}

/// A failure while applying a plan to one batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransformError {
    /// A value could not be converted to the destination type of a `Map` task.
    #[error(
        "tasks[{task}]: field `{field}` row {row}: cannot convert {value} to {target}: {reason}"
    )]
    Conversion {
        /// Index of the `Map` task.
        task: usize,
        /// The source field.
        field: String,
        /// Row in the input batch (0-based).
        row: usize,
        /// The value, as text (shortened when long).
        value: String,
        /// Destination type family (`integer`, `double`, `boolean`, `datetime`).
        target: &'static str,
        /// Why it failed.
        reason: &'static str,
    },

    /// A `Validate` task with a terminating `VALIDATION_ACTION` found a bad record.
    #[error(
        "tasks[{task}]: validation {check} failed for field `{field}` at row {row} (value {value}); VALIDATION_ACTION {action} stops the flow"
    )]
    Validation {
        /// Index of the `Validate` task.
        task: usize,
        /// The validated field.
        field: String,
        /// The failed check (`VALIDATE_NON_NULL`, ...).
        check: Operator,
        /// Row in the input batch (0-based).
        row: usize,
        /// The value, as text (`null` for a null or missing value).
        value: String,
        /// The `VALIDATION_ACTION` that made the failure fatal.
        action: String,
    },

    /// An Arrow kernel failed. This indicates an unsupported column type or a bug.
    #[error("field `{field}`: {context}: {source}")]
    Arrow {
        /// The field being processed (`*` for the batch as a whole).
        field: String,
        /// What was being done.
        context: &'static str,
        /// The kernel error.
        #[source]
        source: ArrowError,
    },
}

impl TransformError {
    /// Where the failure comes from: bad data and failed validations are the user's, kernel
    /// failures are internal.
    pub fn domain(&self) -> ErrorDomain {
        match self {
            Self::Conversion { .. } | Self::Validation { .. } => ErrorDomain::User,
            Self::Arrow { .. } => ErrorDomain::Internal,
        }
    }

    /// The input row the error is about, if any.
    pub fn row(&self) -> Option<usize> {
        match self {
            Self::Conversion { row, .. } | Self::Validation { row, .. } => Some(*row),
            Self::Arrow { .. } => None,
        }
    }

    /// Rewrites the row number through `map` (rows are first reported relative to the batch
    /// after filtering, then translated back to input positions).
    pub(crate) fn map_row(mut self, map: impl FnOnce(usize) -> usize) -> Self {
        match &mut self {
            Self::Conversion { row, .. } | Self::Validation { row, .. } => *row = map(*row),
            Self::Arrow { .. } => {}
        }
        self
    }

    pub(crate) fn arrow(field: &str, context: &'static str, source: ArrowError) -> Self {
        Self::Arrow {
            field: field.to_owned(),
            context,
            source,
        }
    }
}
