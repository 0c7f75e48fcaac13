//! Compiling a flow's `tasks` into a [`TaskPlan`]: every task is checked and parsed once, so
//! applying the plan to a batch does no string parsing of task definitions.
//!
//! AppFlow treats `tasks` as an unordered set; the plan fixes the order of evaluation (see the
//! crate docs) and, within one kind of task, keeps the order of the array.

use std::collections::{HashMap, HashSet};

use sluice_api_model::{ConnectorOperator, ConnectorType, Operator, Task, TaskType};
use sluice_connector_api::PushdownFilter;

use crate::derive::{ArithOp, ConcatFormat, Derivation};
use crate::edit::{EditStep, MaskKind};
use crate::error::PlanError;
use crate::filter::{CompareAs, CompareOp, FilterStep, Operand};
use crate::map::{Conversion, OutputStep};
use crate::types::TypeClass;
use crate::validate::{Action, Check, ValidateStep};
use crate::{MapAll, TaskPlan};

/// Compiles `tasks` of a flow whose source connector is `source`.
pub(crate) fn compile(tasks: &[Task], source: ConnectorType) -> Result<TaskPlan, PlanError> {
    let mut builder = Builder::default();
    for (index, task) in tasks.iter().enumerate() {
        let task = TaskRef {
            index,
            task,
            source,
        };
        match task.task.task_type {
            TaskType::Filter => builder.filter(&task)?,
            TaskType::Map => builder.map(&task)?,
            TaskType::Passthrough => builder.passthrough(&task)?,
            TaskType::MapAll => builder.map_all(&task)?,
            TaskType::Mask => builder.mask(&task)?,
            TaskType::Truncate => builder.truncate(&task)?,
            TaskType::Merge => builder.merge(&task)?,
            TaskType::Arithmetic => builder.arithmetic(&task)?,
            TaskType::Validate => builder.validate(&task)?,
            TaskType::Partition => builder.partition(&task)?,
        }
    }
    builder.finish()
}

/// One task being compiled, with helpers that turn problems into [`PlanError`]s naming it.
struct TaskRef<'a> {
    index: usize,
    task: &'a Task,
    source: ConnectorType,
}

impl<'a> TaskRef<'a> {
    fn task_type(&self) -> TaskType {
        self.task.task_type
    }

    /// The operator of the `connectorOperator` union, checked against the source connector.
    fn operator(&self) -> Result<Option<Operator>, PlanError> {
        let Some(union) = &self.task.connector_operator else {
            return Ok(None);
        };
        let members = operator_members(union);
        let [(key, value)] = members.as_slice() else {
            return Err(PlanError::OperatorMembers {
                task: self.index,
                task_type: self.task_type(),
                found: members.len(),
            });
        };
        if let Some(expected) = operator_key(self.source)
            && *key != expected
        {
            return Err(PlanError::OperatorConnector {
                task: self.index,
                task_type: self.task_type(),
                key,
                connector: self.source,
            });
        }
        Operator::parse(value)
            .map(Some)
            .ok_or_else(|| PlanError::UnknownOperator {
                task: self.index,
                task_type: self.task_type(),
                operator: (*value).to_owned(),
            })
    }

    fn required_operator(&self) -> Result<Operator, PlanError> {
        self.operator()?.ok_or(PlanError::MissingOperator {
            task: self.index,
            task_type: self.task_type(),
        })
    }

    /// Accepts only an absent operator or `NO_OP`.
    fn expect_no_op(&self) -> Result<(), PlanError> {
        match self.operator()? {
            None | Some(Operator::NoOp) => Ok(()),
            Some(operator) => Err(self.unsupported(operator)),
        }
    }

    fn unsupported(&self, operator: Operator) -> PlanError {
        PlanError::UnsupportedOperator {
            task: self.index,
            task_type: self.task_type(),
            operator,
        }
    }

    fn property(&self, key: &str) -> Option<&'a str> {
        self.task
            .task_properties
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }

    fn required(&self, key: &'static str) -> Result<&'a str, PlanError> {
        self.property(key).ok_or(PlanError::MissingProperty {
            task: self.index,
            task_type: self.task_type(),
            property: key,
        })
    }

    fn invalid(&self, key: &'static str, value: &str, reason: impl Into<String>) -> PlanError {
        PlanError::InvalidProperty {
            task: self.index,
            task_type: self.task_type(),
            property: key,
            value: value.to_owned(),
            reason: reason.into(),
        }
    }

    /// A non-negative integer property.
    fn count(&self, key: &'static str) -> Result<usize, PlanError> {
        let value = self.required(key)?;
        value
            .trim()
            .parse::<usize>()
            .map_err(|_| self.invalid(key, value, "must be a non-negative integer"))
    }

    /// A property holding a JSON array of strings, e.g. `"[\"a\",\"b\"]"`.
    fn string_list(&self, key: &'static str) -> Result<Option<Vec<String>>, PlanError> {
        let Some(value) = self.property(key) else {
            return Ok(None);
        };
        let list: Vec<String> = serde_json::from_str(value).map_err(|error| {
            self.invalid(
                key,
                value,
                format!("must be a JSON array of strings ({error})"),
            )
        })?;
        if list.iter().any(String::is_empty) {
            return Err(self.invalid(key, value, "must not contain empty field names"));
        }
        Ok(Some(list))
    }

    /// `sourceFields` without empty entries (some tools send `[""]` for "no field").
    fn fields(&self) -> Vec<&'a str> {
        self.task
            .source_fields
            .iter()
            .map(String::as_str)
            .filter(|field| !field.is_empty())
            .collect()
    }

    fn field_count_error(&self, expected: &'static str, found: usize) -> PlanError {
        PlanError::SourceFields {
            task: self.index,
            task_type: self.task_type(),
            expected,
            found,
        }
    }

    fn single_field(&self) -> Result<String, PlanError> {
        match self.fields().as_slice() {
            [field] => Ok((*field).to_owned()),
            fields => Err(self.field_count_error("exactly 1 field", fields.len())),
        }
    }

    fn destination(&self) -> Option<&'a str> {
        self.task
            .destination_field
            .as_deref()
            .filter(|field| !field.is_empty())
    }
}

/// Every member set in the `connectorOperator` union, as (union key, operator spelling).
fn operator_members(union: &ConnectorOperator) -> Vec<(&'static str, &'static str)> {
    let candidates = [
        ("Amplitude", union.amplitude.map(|op| op.as_str())),
        (
            "CustomConnector",
            union.custom_connector.map(|op| op.as_str()),
        ),
        ("Datadog", union.datadog.map(|op| op.as_str())),
        ("Dynatrace", union.dynatrace.map(|op| op.as_str())),
        (
            "GoogleAnalytics",
            union.google_analytics.map(|op| op.as_str()),
        ),
        ("InforNexus", union.infor_nexus.map(|op| op.as_str())),
        ("Marketo", union.marketo.map(|op| op.as_str())),
        ("Pardot", union.pardot.map(|op| op.as_str())),
        ("S3", union.s3.map(|op| op.as_str())),
        ("SAPOData", union.sapo_data.map(|op| op.as_str())),
        ("Salesforce", union.salesforce.map(|op| op.as_str())),
        ("ServiceNow", union.service_now.map(|op| op.as_str())),
        ("Singular", union.singular.map(|op| op.as_str())),
        ("Slack", union.slack.map(|op| op.as_str())),
        ("Trendmicro", union.trendmicro.map(|op| op.as_str())),
        ("Veeva", union.veeva.map(|op| op.as_str())),
        ("Zendesk", union.zendesk.map(|op| op.as_str())),
    ];
    candidates
        .into_iter()
        .filter_map(|(key, value)| Some((key, value?)))
        .collect()
}

/// The `connectorOperator` union key of a source connector; `None` for connectors that cannot
/// be a source.
fn operator_key(source: ConnectorType) -> Option<&'static str> {
    let key = match source {
        ConnectorType::Amplitude => "Amplitude",
        ConnectorType::CustomConnector => "CustomConnector",
        ConnectorType::Datadog => "Datadog",
        ConnectorType::Dynatrace => "Dynatrace",
        ConnectorType::Googleanalytics => "GoogleAnalytics",
        ConnectorType::Infornexus => "InforNexus",
        ConnectorType::Marketo => "Marketo",
        ConnectorType::Pardot => "Pardot",
        ConnectorType::S3 => "S3",
        ConnectorType::SAPOData => "SAPOData",
        ConnectorType::Salesforce => "Salesforce",
        ConnectorType::Servicenow => "ServiceNow",
        ConnectorType::Singular => "Singular",
        ConnectorType::Slack => "Slack",
        ConnectorType::Trendmicro => "Trendmicro",
        ConnectorType::Veeva => "Veeva",
        ConnectorType::Zendesk => "Zendesk",
        ConnectorType::Redshift
        | ConnectorType::Snowflake
        | ConnectorType::EventBridge
        | ConnectorType::LookoutMetrics
        | ConnectorType::Upsolver
        | ConnectorType::Honeycode
        | ConnectorType::CustomerProfiles => return None,
    };
    Some(key)
}

#[derive(Default)]
struct Builder {
    has_projection: bool,
    projection: Vec<String>,
    projection_set: HashSet<String>,
    filters: Vec<FilterStep>,
    edits: Vec<EditStep>,
    derivations: Vec<Derivation>,
    validations: Vec<ValidateStep>,
    outputs: Vec<OutputStep>,
    /// Destination field -> index of the task writing it.
    destinations: HashMap<String, usize>,
    map_all: Option<(usize, MapAll)>,
    partition_keys: Vec<(usize, String)>,
    /// Source fields read by tasks, checked against the projection at the end.
    reads: Vec<(usize, TaskType, String)>,
}

impl Builder {
    fn read(&mut self, task: &TaskRef<'_>, field: &str) {
        self.reads
            .push((task.index, task.task_type(), field.to_owned()));
    }

    fn filter(&mut self, task: &TaskRef<'_>) -> Result<(), PlanError> {
        let operator = task.required_operator()?;
        let op = match operator {
            Operator::Projection => return self.projection(task),
            Operator::LessThan => CompareOp::Lt,
            Operator::GreaterThan => CompareOp::Gt,
            Operator::LessThanOrEqualTo => CompareOp::LtEq,
            Operator::GreaterThanOrEqualTo => CompareOp::GtEq,
            Operator::EqualTo => CompareOp::Eq,
            Operator::NotEqualTo => CompareOp::NotEq,
            Operator::Contains => CompareOp::Contains,
            Operator::Between => CompareOp::Between,
            other => return Err(task.unsupported(other)),
        };
        let field = task.single_field()?;
        let data_type = task.property("DATA_TYPE");
        let compare_as = CompareAs::from_class(data_type.and_then(TypeClass::of));

        let mut texts: Vec<(&'static str, &str)> = Vec::new();
        if op == CompareOp::Between {
            texts.push(("LOWER_BOUND", task.required("LOWER_BOUND")?));
            texts.push(("UPPER_BOUND", task.required("UPPER_BOUND")?));
        } else {
            if let Some(value) = task.property("VALUE") {
                texts.push(("VALUE", value));
            }
            if let Some(values) = task.property("VALUES") {
                texts.extend(values.split(',').map(|value| ("VALUES", value.trim())));
            }
            if texts.is_empty() {
                return Err(PlanError::MissingProperty {
                    task: task.index,
                    task_type: task.task_type(),
                    property: "VALUE",
                });
            }
        }

        let mut operands = Vec::with_capacity(texts.len());
        for &(key, text) in &texts {
            let operand = Operand::parse(text);
            // CONTAINS is a substring test whatever the DATA_TYPE.
            if op != CompareOp::Contains
                && let Some(reason) = operand.unusable_as(compare_as)
            {
                let data_type = data_type.unwrap_or_default();
                return Err(task.invalid(key, text, format!("{reason} (DATA_TYPE {data_type})")));
            }
            operands.push(operand);
        }

        self.read(task, &field);
        self.filters.push(FilterStep {
            pushdown: PushdownFilter {
                field: field.clone(),
                operator,
                values: texts.iter().map(|(_, text)| (*text).to_owned()).collect(),
                data_type: data_type.map(str::to_owned),
            },
            field,
            op,
            compare_as,
            operands,
        });
        Ok(())
    }

    fn projection(&mut self, task: &TaskRef<'_>) -> Result<(), PlanError> {
        let fields = task.fields();
        if fields.is_empty() {
            return Err(task.field_count_error("at least 1 field", 0));
        }
        self.has_projection = true;
        for field in fields {
            if self.projection_set.insert(field.to_owned()) {
                self.projection.push(field.to_owned());
            }
        }
        Ok(())
    }

    fn output(
        &mut self,
        task: &TaskRef<'_>,
        source: String,
        destination: String,
        conversion: Conversion,
    ) -> Result<(), PlanError> {
        if let Some(&first) = self.destinations.get(&destination) {
            return Err(PlanError::DuplicateDestination {
                task: task.index,
                task_type: task.task_type(),
                field: destination,
                first,
            });
        }
        self.destinations.insert(destination.clone(), task.index);
        self.read(task, &source);
        self.outputs.push(OutputStep {
            task: task.index,
            source,
            destination,
            conversion,
        });
        Ok(())
    }

    fn map(&mut self, task: &TaskRef<'_>) -> Result<(), PlanError> {
        task.expect_no_op()?;
        let source = task.single_field()?;
        let destination = task.destination().unwrap_or(&source).to_owned();
        let conversion = task
            .property("DESTINATION_DATA_TYPE")
            .and_then(TypeClass::of)
            .map_or(Conversion::Keep, Conversion::To);
        self.output(task, source, destination, conversion)
    }

    fn passthrough(&mut self, task: &TaskRef<'_>) -> Result<(), PlanError> {
        task.expect_no_op()?;
        let fields = task.fields();
        match (fields.as_slice(), task.destination()) {
            ([], _) => Err(task.field_count_error("at least 1 field", 0)),
            ([field], destination) => {
                let destination = destination.unwrap_or(field).to_owned();
                self.output(task, (*field).to_owned(), destination, Conversion::Keep)
            }
            (fields, Some(_)) => Err(task
                .field_count_error("exactly 1 field when destinationField is set", fields.len())),
            (fields, None) => {
                for field in fields {
                    self.output(
                        task,
                        (*field).to_owned(),
                        (*field).to_owned(),
                        Conversion::Keep,
                    )?;
                }
                Ok(())
            }
        }
    }

    fn map_all(&mut self, task: &TaskRef<'_>) -> Result<(), PlanError> {
        task.expect_no_op()?;
        if let Some((first, _)) = &self.map_all {
            return Err(PlanError::DuplicateMapAll {
                task: task.index,
                first: *first,
            });
        }
        let exclude = task
            .string_list("EXCLUDE_SOURCE_FIELDS_LIST")?
            .unwrap_or_default();
        self.map_all = Some((
            task.index,
            MapAll {
                exclude: exclude.into_iter().collect(),
            },
        ));
        Ok(())
    }

    fn mask(&mut self, task: &TaskRef<'_>) -> Result<(), PlanError> {
        let operator = task.required_operator()?;
        let field = task.single_field()?;
        let kind = match operator {
            Operator::MaskAll => MaskKind::All,
            Operator::MaskFirstN => MaskKind::FirstN(task.count("MASK_LENGTH")?),
            Operator::MaskLastN => MaskKind::LastN(task.count("MASK_LENGTH")?),
            other => return Err(task.unsupported(other)),
        };
        let mask = match task.property("MASK_VALUE") {
            None => '*',
            Some(value) => {
                let mut chars = value.chars();
                match (chars.next(), chars.next()) {
                    (Some(mask), None) => mask,
                    _ => {
                        return Err(task.invalid(
                            "MASK_VALUE",
                            value,
                            "must be exactly one character",
                        ));
                    }
                }
            }
        };
        self.read(task, &field);
        self.edits.push(EditStep::Mask { field, kind, mask });
        Ok(())
    }

    fn truncate(&mut self, task: &TaskRef<'_>) -> Result<(), PlanError> {
        task.expect_no_op()?;
        let field = task.single_field()?;
        let length = task.count("TRUNCATE_LENGTH")?;
        self.read(task, &field);
        self.edits.push(EditStep::Truncate { field, length });
        Ok(())
    }

    fn merge(&mut self, task: &TaskRef<'_>) -> Result<(), PlanError> {
        task.expect_no_op()?;
        let fields: Vec<String> = task.fields().into_iter().map(str::to_owned).collect();
        if fields.is_empty() {
            return Err(task.field_count_error("at least 1 field", 0));
        }
        let format = match task.property("CONCAT_FORMAT") {
            Some(format) => ConcatFormat::parse(format, fields.len())
                .map_err(|reason| task.invalid("CONCAT_FORMAT", format, reason))?,
            None => ConcatFormat::Separator(String::new()),
        };
        let destination = task
            .destination()
            .map_or_else(|| fields.join(","), str::to_owned);
        for field in &fields {
            self.read(task, field);
        }
        self.derivations.push(Derivation::Merge {
            fields,
            format,
            destination,
        });
        Ok(())
    }

    fn arithmetic(&mut self, task: &TaskRef<'_>) -> Result<(), PlanError> {
        let op = match task.required_operator()? {
            Operator::Addition => ArithOp::Add,
            Operator::Subtraction => ArithOp::Sub,
            Operator::Multiplication => ArithOp::Mul,
            Operator::Division => ArithOp::Div,
            other => return Err(task.unsupported(other)),
        };
        let fields = task.fields();
        const ORDER: &str = "MATH_OPERATION_FIELDS_ORDER";
        let (left, right) = match task.property(ORDER) {
            Some(order) => {
                let names: Vec<&str> = order.split(',').map(str::trim).collect();
                let [left, right] = names.as_slice() else {
                    return Err(task.invalid(
                        ORDER,
                        order,
                        "must name exactly two fields, e.g. \"a,b\"",
                    ));
                };
                if left.is_empty() || right.is_empty() {
                    return Err(task.invalid(
                        ORDER,
                        order,
                        "must name exactly two fields, e.g. \"a,b\"",
                    ));
                }
                if let Some(stranger) = [left, right]
                    .into_iter()
                    .find(|name| !fields.is_empty() && !fields.contains(name))
                {
                    return Err(task.invalid(
                        ORDER,
                        order,
                        format!("`{stranger}` is not one of sourceFields"),
                    ));
                }
                ((*left).to_owned(), (*right).to_owned())
            }
            None => match fields.as_slice() {
                [left, right] => ((*left).to_owned(), (*right).to_owned()),
                _ => return Err(task.field_count_error("exactly 2 fields", fields.len())),
            },
        };
        let destination = match task.destination() {
            Some(destination) => destination.to_owned(),
            None if fields.is_empty() => format!("{left},{right}"),
            None => fields.join(","),
        };
        self.read(task, &left);
        self.read(task, &right);
        self.derivations.push(Derivation::Arithmetic {
            op,
            left,
            right,
            destination,
        });
        Ok(())
    }

    fn validate(&mut self, task: &TaskRef<'_>) -> Result<(), PlanError> {
        let check = match task.required_operator()? {
            Operator::ValidateNonNull => Check::NonNull,
            Operator::ValidateNonZero => Check::NonZero,
            Operator::ValidateNonNegative => Check::NonNegative,
            Operator::ValidateNumeric => Check::Numeric,
            other => return Err(task.unsupported(other)),
        };
        let field = task.single_field()?;
        let action = match task.property("VALIDATION_ACTION").map(str::trim) {
            None => Action::DropRecord,
            Some(action) if action.eq_ignore_ascii_case("DropRecord") => Action::DropRecord,
            Some(action)
                if action.eq_ignore_ascii_case("DropDataset")
                    || action.eq_ignore_ascii_case("TerminateFlow") =>
            {
                Action::Terminate(action.to_owned())
            }
            Some(action) => {
                return Err(task.invalid(
                    "VALIDATION_ACTION",
                    action,
                    "expected DropRecord, DropDataset or TerminateFlow",
                ));
            }
        };
        self.read(task, &field);
        self.validations.push(ValidateStep {
            task: task.index,
            field,
            check,
            action,
        });
        Ok(())
    }

    fn partition(&mut self, task: &TaskRef<'_>) -> Result<(), PlanError> {
        task.expect_no_op()?;
        let keys = match task.string_list("ORDERED_PARTITION_KEYS_LIST")? {
            Some(keys) if keys.is_empty() => {
                return Err(task.invalid(
                    "ORDERED_PARTITION_KEYS_LIST",
                    task.property("ORDERED_PARTITION_KEYS_LIST")
                        .unwrap_or_default(),
                    "lists no field",
                ));
            }
            Some(keys) => keys,
            None => task.fields().into_iter().map(str::to_owned).collect(),
        };
        if keys.is_empty() {
            return Err(task.field_count_error(
                "at least 1 field (or taskProperties.ORDERED_PARTITION_KEYS_LIST)",
                0,
            ));
        }
        self.partition_keys
            .extend(keys.into_iter().map(|key| (task.index, key)));
        Ok(())
    }

    fn finish(self) -> Result<TaskPlan, PlanError> {
        if !self.has_projection && self.map_all.is_none() {
            return Err(PlanError::NoProjection);
        }
        let derived: HashSet<&str> = self
            .derivations
            .iter()
            .map(Derivation::destination)
            .collect();
        if self.has_projection {
            let stray = self.reads.iter().find(|(_, _, field)| {
                !self.projection_set.contains(field) && !derived.contains(field.as_str())
            });
            if let Some((task, task_type, field)) = stray {
                return Err(PlanError::FieldNotProjected {
                    task: *task,
                    task_type: *task_type,
                    field: field.clone(),
                });
            }
        }

        // A flow with a projection but no mapping task at all would deliver rows without columns.
        // Users who write only a projection expect the projected fields, so they pass through as is.
        let mut outputs = self.outputs;
        if outputs.is_empty() && self.map_all.is_none() {
            outputs = self
                .projection
                .iter()
                .map(|field| OutputStep {
                    task: 0,
                    source: field.clone(),
                    destination: field.clone(),
                    conversion: Conversion::Keep,
                })
                .collect();
        }
        let destinations: HashSet<&str> = outputs.iter().map(|o| o.destination.as_str()).collect();

        let mut partition_keys: Vec<String> = Vec::with_capacity(self.partition_keys.len());
        for (task, key) in self.partition_keys {
            let from_map_all = self.map_all.as_ref().is_some_and(|(_, map_all)| {
                !map_all.exclude.contains(&key)
                    && (!self.has_projection || self.projection_set.contains(&key))
            });
            if !destinations.contains(key.as_str()) && !from_map_all {
                return Err(PlanError::PartitionKeyNotMapped { task, field: key });
            }
            if !partition_keys.contains(&key) {
                partition_keys.push(key);
            }
        }

        Ok(TaskPlan {
            projection: self.has_projection.then_some(self.projection),
            projection_set: self.projection_set,
            filters: self.filters,
            edits: self.edits,
            derivations: self.derivations,
            validations: self.validations,
            outputs,
            map_all: self.map_all.map(|(_, map_all)| map_all),
            partition_keys,
        })
    }
}
