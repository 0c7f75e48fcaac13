//! Rules for a flow's `tasks` (spec §B.4, §C.2).
//!
//! Every task is checked on its own (operator keyed by the source connector and allowed for
//! it, the fields and properties its `taskType` needs), then the list as a whole must contain a
//! `PROJECTION` filter or a `Map_all` task. Property values are only checked for shape here
//! (integers, JSON lists, single characters); what they mean at run time is the transforms'
//! business.

use std::collections::BTreeMap;

use sluice_api_model::{ConnectorType, Operator, Task, TaskType};

use crate::connectors::union_key;
use crate::error::{DomainError, FlowOperation};
use crate::operators::{operator_entries, operators_for};

/// `VALIDATION_ACTION` values: skip the record, or fail the run (`DropDataset` is the
/// spelling AWS tooling uses, `TerminateFlow` the console's label).
pub const VALIDATION_ACTIONS: &[&str] = &["DropRecord", "DropDataset", "TerminateFlow"];

/// The most partition keys a `Partition` task may name.
pub const MAX_PARTITION_KEYS: usize = 10;

const COMPARISONS: &[Operator] = &[
    Operator::LessThan,
    Operator::GreaterThan,
    Operator::Contains,
    Operator::Between,
    Operator::LessThanOrEqualTo,
    Operator::GreaterThanOrEqualTo,
    Operator::EqualTo,
    Operator::NotEqualTo,
];
const ARITHMETIC: &[Operator] = &[
    Operator::Addition,
    Operator::Subtraction,
    Operator::Multiplication,
    Operator::Division,
];
const MASKS: &[Operator] = &[Operator::MaskAll, Operator::MaskFirstN, Operator::MaskLastN];
const VALIDATIONS: &[Operator] = &[
    Operator::ValidateNonNull,
    Operator::ValidateNonZero,
    Operator::ValidateNonNegative,
    Operator::ValidateNumeric,
];

/// Checks every task and the projection-or-`Map_all` rule.
pub(crate) fn validate_tasks(
    tasks: &[Task],
    source: ConnectorType,
    destination: ConnectorType,
    operation: FlowOperation,
) -> Result<(), DomainError> {
    let mut has_projection = false;
    for (index, task) in tasks.iter().enumerate() {
        let checked = TaskCheck {
            task,
            path: format!("tasks.{}.member", index + 1),
            operator: None,
        }
        .with_operator(source)?;
        checked.validate(destination)?;
        has_projection |= task.task_type == TaskType::MapAll
            || (task.task_type == TaskType::Filter
                && checked.operator == Some(Operator::Projection));
    }
    if has_projection {
        Ok(())
    } else {
        Err(DomainError::MissingProjection { operation })
    }
}

struct TaskCheck<'a> {
    task: &'a Task,
    path: String,
    operator: Option<Operator>,
}

impl TaskCheck<'_> {
    fn field(&self, member: &str) -> String {
        format!("{}.{member}", self.path)
    }

    fn property_path(&self, key: &str) -> String {
        format!("{}.taskProperties.{key}", self.path)
    }

    fn property(&self, key: &str) -> Option<&str> {
        self.task
            .task_properties
            .as_ref()
            .and_then(|properties: &BTreeMap<String, String>| properties.get(key))
            .map(String::as_str)
    }

    fn require_property(&self, key: &str, why: &str) -> Result<&str, DomainError> {
        self.property(key).ok_or_else(|| {
            DomainError::invalid(self.property_path(key), format!("is required {why}"))
        })
    }

    /// Resolves `connectorOperator`: one member, keyed by the source, allowed for it.
    fn with_operator(mut self, source: ConnectorType) -> Result<Self, DomainError> {
        let Some(union) = &self.task.connector_operator else {
            return Ok(self);
        };
        let field = self.field("connectorOperator");
        let expected = union_key(source);
        let entries = operator_entries(union);
        let (key, operator) = match entries.as_slice() {
            [] => {
                return Err(DomainError::invalid(
                    field,
                    format!(
                        "must set exactly one connector, but none is set (expected {expected})"
                    ),
                ));
            }
            [single] => *single,
            many => {
                let keys: Vec<&str> = many.iter().map(|(key, _)| *key).collect();
                return Err(DomainError::invalid(
                    field,
                    format!(
                        "must set exactly one connector, but {} are set: {} (expected {expected})",
                        keys.len(),
                        keys.join(", ")
                    ),
                ));
            }
        };
        if key != expected {
            return Err(DomainError::invalid(
                field,
                format!(
                    "is keyed by {key}, but operators must be keyed by the source connector {source} (expected {expected})"
                ),
            ));
        }
        match operator.filter(|op| operators_for(source).contains(op)) {
            Some(operator) => {
                self.operator = Some(operator);
                Ok(self)
            }
            None => Err(DomainError::invalid(
                field,
                format!("is not an operator source connector {source} supports"),
            )),
        }
    }

    fn validate(&self, destination: ConnectorType) -> Result<(), DomainError> {
        match self.task.task_type {
            TaskType::Filter => self.filter(),
            TaskType::Map => {
                self.no_op_only()?;
                self.field_count(1, 1)?;
                self.destination_field()
            }
            TaskType::MapAll => {
                self.no_op_only()?;
                self.map_all()
            }
            TaskType::Merge => {
                self.no_op_only()?;
                self.field_count(2, usize::MAX)?;
                self.destination_field()
            }
            TaskType::Arithmetic => self.arithmetic(),
            TaskType::Mask => self.mask(),
            TaskType::Truncate => {
                self.no_op_only()?;
                self.field_count(1, 1)?;
                let length = self.require_property("TRUNCATE_LENGTH", "for a Truncate task")?;
                match length.parse::<u32>() {
                    Ok(n) if n > 0 => Ok(()),
                    _ => Err(DomainError::invalid(
                        self.property_path("TRUNCATE_LENGTH"),
                        format!("must be a positive integer, got '{length}'"),
                    )),
                }
            }
            TaskType::Validate => {
                self.require_operator_in(VALIDATIONS, "a VALIDATE_* operator")?;
                self.field_count(1, 1)?;
                let action = self.require_property("VALIDATION_ACTION", "for a Validate task")?;
                if VALIDATION_ACTIONS.contains(&action) {
                    Ok(())
                } else {
                    Err(DomainError::invalid(
                        self.property_path("VALIDATION_ACTION"),
                        format!(
                            "must be one of {}, got '{action}'",
                            VALIDATION_ACTIONS.join(", ")
                        ),
                    ))
                }
            }
            TaskType::Partition => self.partition(destination),
            TaskType::Passthrough => self.no_op_only(),
        }
    }

    fn filter(&self) -> Result<(), DomainError> {
        let Some(operator) = self.operator else {
            return Err(DomainError::invalid(
                self.field("connectorOperator"),
                "is required for a Filter task (PROJECTION or a comparison operator)",
            ));
        };
        if operator == Operator::Projection {
            return self.field_count(1, usize::MAX);
        }
        if !COMPARISONS.contains(&operator) {
            return Err(DomainError::invalid(
                self.field("connectorOperator"),
                format!(
                    "{operator} is not valid for a Filter task (use PROJECTION or a comparison operator)"
                ),
            ));
        }
        self.field_count(1, 1)?;
        if operator == Operator::Between {
            let lower = self.require_property("LOWER_BOUND", "for the BETWEEN operator")?;
            let upper = self.require_property("UPPER_BOUND", "for the BETWEEN operator")?;
            if let (Ok(low), Ok(high)) = (lower.trim().parse::<f64>(), upper.trim().parse::<f64>())
                && low > high
            {
                return Err(DomainError::invalid(
                    self.property_path("LOWER_BOUND"),
                    format!("'{lower}' must not be greater than UPPER_BOUND '{upper}'"),
                ));
            }
            return Ok(());
        }
        if self.property("VALUE").is_none() && self.property("VALUES").is_none() {
            return Err(DomainError::invalid(
                format!("{}.taskProperties", self.path),
                format!("must set VALUE or VALUES for the {operator} operator"),
            ));
        }
        Ok(())
    }

    fn map_all(&self) -> Result<(), DomainError> {
        if let Some(list) = self.property("EXCLUDE_SOURCE_FIELDS_LIST") {
            parse_string_list(list).map_err(|problem| {
                DomainError::invalid(
                    self.property_path("EXCLUDE_SOURCE_FIELDS_LIST"),
                    format!(
                        "must be a JSON array of field names, e.g. [\"Phone\",\"Fax\"]: {problem}"
                    ),
                )
            })?;
        }
        if let Some(flag) = self.property("INCLUDE_NEW_FIELDS")
            && !flag.eq_ignore_ascii_case("true")
            && !flag.eq_ignore_ascii_case("false")
        {
            return Err(DomainError::invalid(
                self.property_path("INCLUDE_NEW_FIELDS"),
                format!("must be true or false, got '{flag}'"),
            ));
        }
        Ok(())
    }

    fn arithmetic(&self) -> Result<(), DomainError> {
        self.require_operator_in(
            ARITHMETIC,
            "ADDITION, SUBTRACTION, MULTIPLICATION or DIVISION",
        )?;
        self.field_count(2, 2)?;
        if let Some(order) = self.property("MATH_OPERATION_FIELDS_ORDER") {
            let mut listed: Vec<&str> = order.split(',').map(str::trim).collect();
            let mut fields: Vec<&str> =
                self.task.source_fields.iter().map(String::as_str).collect();
            listed.sort_unstable();
            fields.sort_unstable();
            if listed != fields {
                return Err(DomainError::invalid(
                    self.property_path("MATH_OPERATION_FIELDS_ORDER"),
                    format!(
                        "must list the task's two sourceFields separated by a comma, got '{order}'"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn mask(&self) -> Result<(), DomainError> {
        let operator = self.require_operator_in(MASKS, "MASK_ALL, MASK_FIRST_N or MASK_LAST_N")?;
        self.field_count(1, 1)?;
        // The console also sends MASK_LENGTH with MASK_ALL, where it means nothing.
        if operator != Operator::MaskAll {
            let why = format!("for the {operator} operator");
            let length = self.require_property("MASK_LENGTH", &why)?;
            if length.parse::<u32>().is_err() {
                return Err(DomainError::invalid(
                    self.property_path("MASK_LENGTH"),
                    format!("must be a non-negative integer, got '{length}'"),
                ));
            }
        }
        if let Some(mask) = self.property("MASK_VALUE")
            && mask.chars().count() != 1
        {
            return Err(DomainError::invalid(
                self.property_path("MASK_VALUE"),
                format!("must be exactly one character, got '{mask}'"),
            ));
        }
        Ok(())
    }

    fn partition(&self, destination: ConnectorType) -> Result<(), DomainError> {
        self.no_op_only()?;
        if destination != ConnectorType::S3 {
            return Err(DomainError::invalid(
                self.field("taskType"),
                format!("Partition is only supported with an S3 destination, not {destination}"),
            ));
        }
        let (keys, field) = match self.property("ORDERED_PARTITION_KEYS_LIST") {
            Some(list) => {
                let field = self.property_path("ORDERED_PARTITION_KEYS_LIST");
                let keys = parse_string_list(list).map_err(|problem| {
                    DomainError::invalid(
                        &field,
                        format!("must be a JSON array of field names: {problem}"),
                    )
                })?;
                (keys, field)
            }
            None => (self.task.source_fields.clone(), self.field("sourceFields")),
        };
        if keys.is_empty() || keys.len() > MAX_PARTITION_KEYS {
            return Err(DomainError::invalid(
                field,
                format!(
                    "must name between 1 and {MAX_PARTITION_KEYS} partition keys, got {}",
                    keys.len()
                ),
            ));
        }
        if keys.iter().any(|key| key.trim().is_empty()) {
            return Err(DomainError::invalid(
                field,
                "must not contain empty field names",
            ));
        }
        Ok(())
    }

    /// Map-like tasks take no operator or `NO_OP`.
    fn no_op_only(&self) -> Result<(), DomainError> {
        match self.operator {
            None | Some(Operator::NoOp) => Ok(()),
            Some(other) => Err(DomainError::invalid(
                self.field("connectorOperator"),
                format!(
                    "{other} is not valid for a {} task (use NO_OP or omit it)",
                    self.task.task_type
                ),
            )),
        }
    }

    fn require_operator_in(
        &self,
        allowed: &[Operator],
        wanted: &str,
    ) -> Result<Operator, DomainError> {
        let task_type = self.task.task_type;
        match self.operator {
            Some(operator) if allowed.contains(&operator) => Ok(operator),
            Some(operator) => Err(DomainError::invalid(
                self.field("connectorOperator"),
                format!("{operator} is not valid for a {task_type} task (use {wanted})"),
            )),
            None => Err(DomainError::invalid(
                self.field("connectorOperator"),
                format!("is required for a {task_type} task ({wanted})"),
            )),
        }
    }

    /// Between `min` and `max` non-empty source field names.
    fn field_count(&self, min: usize, max: usize) -> Result<(), DomainError> {
        let fields = &self.task.source_fields;
        let field = self.field("sourceFields");
        if fields.iter().any(|name| name.is_empty()) {
            return Err(DomainError::invalid(
                field,
                "must not contain empty field names",
            ));
        }
        let count = fields.len();
        if count >= min && count <= max {
            return Ok(());
        }
        let task_type = self.task.task_type;
        let wanted = match (min, max) {
            (1, 1) => "exactly one field".to_string(),
            (n, m) if n == m => format!("exactly {n} fields"),
            (1, _) => "at least one field".to_string(),
            (n, _) => format!("at least {n} fields"),
        };
        Err(DomainError::invalid(
            field,
            format!("must list {wanted} for a {task_type} task, got {count}"),
        ))
    }

    fn destination_field(&self) -> Result<(), DomainError> {
        match self.task.destination_field.as_deref() {
            Some(name) if !name.trim().is_empty() => Ok(()),
            _ => Err(DomainError::invalid(
                self.field("destinationField"),
                format!("is required for a {} task", self.task.task_type),
            )),
        }
    }
}

/// Parses a JSON array of strings carried in a task property.
fn parse_string_list(text: &str) -> Result<Vec<String>, String> {
    serde_json::from_str::<Vec<String>>(text).map_err(|error| error.to_string())
}
