//! Flow definitions: the rules `CreateFlow` and `UpdateFlow` share, and what they derive.

use std::collections::BTreeSet;

use chrono::TimeDelta;
use sluice_api_model::{
    CreateFlowRequest, DataPullMode, DescribeFlowResponse, DestinationFlowConfig, FlowStatus,
    MetadataCatalogConfig, Operator, SourceFlowConfig, Task, TaskType, TriggerConfig, TriggerType,
    UpdateFlowRequest,
};

use crate::connectors::{
    Capabilities, check_union, destination_keys, min_schedule_interval, requires_profile,
    source_keys, usable_as,
};
use crate::error::{ConnectorRole, DomainError, FlowOperation};
use crate::operators::operator_entries;
use crate::schedule::{self, Schedule};
use crate::tasks::validate_tasks;

const SCHEDULED: &str = "triggerConfig.triggerProperties.Scheduled";

/// A borrowed view of the members `CreateFlowRequest` and `UpdateFlowRequest` share.
///
/// Custom connectors are identified by a label that lives on the connector profile, not in the
/// flow; callers that resolved the profiles set it with [`FlowDefinitionRef::with_labels`].
#[derive(Debug, Clone, Copy)]
pub struct FlowDefinitionRef<'a> {
    /// The request the definition comes from (some messages name it).
    pub operation: FlowOperation,
    /// `description`.
    pub description: Option<&'a str>,
    /// `triggerConfig`.
    pub trigger_config: &'a TriggerConfig,
    /// `sourceFlowConfig`.
    pub source_flow_config: &'a SourceFlowConfig,
    /// `destinationFlowConfigList`.
    pub destination_flow_config_list: &'a [DestinationFlowConfig],
    /// `tasks`.
    pub tasks: &'a [Task],
    /// `metadataCatalogConfig`.
    pub metadata_catalog_config: Option<&'a MetadataCatalogConfig>,
    /// The source's connector label (custom connectors), from its profile.
    pub source_connector_label: Option<&'a str>,
    /// The destination's connector label (custom connectors), from its profile.
    pub destination_connector_label: Option<&'a str>,
}

impl<'a> FlowDefinitionRef<'a> {
    /// Sets the connector labels resolved from the flow's connector profiles.
    pub fn with_labels(mut self, source: Option<&'a str>, destination: Option<&'a str>) -> Self {
        self.source_connector_label = source;
        self.destination_connector_label = destination;
        self
    }

    /// The definition stored in a `DescribeFlow`-shaped document, as an update would send it;
    /// `None` when the document lacks `triggerConfig` or `sourceFlowConfig`.
    pub fn from_describe(flow: &'a DescribeFlowResponse) -> Option<Self> {
        Some(Self {
            operation: FlowOperation::Update,
            description: flow.description.as_deref(),
            trigger_config: flow.trigger_config.as_ref()?,
            source_flow_config: flow.source_flow_config.as_ref()?,
            destination_flow_config_list: flow
                .destination_flow_config_list
                .as_deref()
                .unwrap_or(&[]),
            tasks: flow.tasks.as_deref().unwrap_or(&[]),
            metadata_catalog_config: flow.metadata_catalog_config.as_ref(),
            source_connector_label: None,
            destination_connector_label: None,
        })
    }
}

impl<'a> From<&'a CreateFlowRequest> for FlowDefinitionRef<'a> {
    fn from(request: &'a CreateFlowRequest) -> Self {
        Self {
            operation: FlowOperation::Create,
            description: request.description.as_deref(),
            trigger_config: &request.trigger_config,
            source_flow_config: &request.source_flow_config,
            destination_flow_config_list: &request.destination_flow_config_list,
            tasks: &request.tasks,
            metadata_catalog_config: request.metadata_catalog_config.as_ref(),
            source_connector_label: None,
            destination_connector_label: None,
        }
    }
}

impl<'a> From<&'a UpdateFlowRequest> for FlowDefinitionRef<'a> {
    fn from(request: &'a UpdateFlowRequest) -> Self {
        Self {
            operation: FlowOperation::Update,
            description: request.description.as_deref(),
            trigger_config: &request.trigger_config,
            source_flow_config: &request.source_flow_config,
            destination_flow_config_list: &request.destination_flow_config_list,
            tasks: &request.tasks,
            metadata_catalog_config: request.metadata_catalog_config.as_ref(),
            source_connector_label: None,
            destination_connector_label: None,
        }
    }
}

impl<'a> From<&FlowDefinitionRef<'a>> for FlowDefinitionRef<'a> {
    fn from(definition: &FlowDefinitionRef<'a>) -> Self {
        *definition
    }
}

/// One end of a validated flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowEndpoint {
    /// `connectorType`.
    pub connector_type: sluice_api_model::ConnectorType,
    /// The custom connector's label, when known.
    pub connector_label: Option<String>,
    /// `connectorProfileName`, when the connector uses one.
    pub connector_profile_name: Option<String>,
}

/// What the server needs to know about a flow that passed [`validate_flow`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedFlow {
    /// The status a new flow starts in: `Active` for on-demand flows, `Draft` for scheduled
    /// and event flows (they run only once activated by `StartFlow`).
    pub initial_status: FlowStatus,
    /// `triggerConfig.triggerType`.
    pub trigger_type: TriggerType,
    /// The parsed schedule of a scheduled flow.
    pub schedule: Option<Schedule>,
    /// The schedule expression in AppFlow's canonical form (`rate(5minutes)`), to store and echo.
    pub schedule_expression: Option<String>,
    /// The source.
    pub source: FlowEndpoint,
    /// The (single) destination.
    pub destination: FlowEndpoint,
}

/// Applies AppFlow's semantic rules to a flow definition.
///
/// Accepts a [`FlowDefinitionRef`] (by value or reference) or a `&CreateFlowRequest` /
/// `&UpdateFlowRequest` directly.
///
/// # Errors
///
/// The first rule broken, as a [`DomainError`] naming the field.
pub fn validate_flow<'a>(
    definition: impl Into<FlowDefinitionRef<'a>>,
    caps: &Capabilities,
) -> Result<ValidatedFlow, DomainError> {
    let flow = definition.into();
    let destination_config = match flow.destination_flow_config_list {
        [single] => single,
        list => {
            return Err(DomainError::invalid(
                "destinationFlowConfigList",
                format!(
                    "must contain exactly one destination, but has {}",
                    list.len()
                ),
            ));
        }
    };
    let source = check_source(&flow, caps)?;
    let destination = check_destination(&flow, destination_config, caps)?;
    let schedule = check_trigger(&flow)?;
    validate_tasks(
        flow.tasks,
        source.connector_type,
        destination.connector_type,
        flow.operation,
    )?;
    check_metadata_catalog(&flow, destination.connector_type)?;

    let trigger_type = flow.trigger_config.trigger_type;
    Ok(ValidatedFlow {
        initial_status: match trigger_type {
            TriggerType::OnDemand => FlowStatus::Active,
            TriggerType::Scheduled | TriggerType::Event => FlowStatus::Draft,
        },
        trigger_type,
        schedule_expression: schedule.as_ref().map(Schedule::canonical),
        schedule,
        source,
        destination,
    })
}

fn check_source(
    flow: &FlowDefinitionRef<'_>,
    caps: &Capabilities,
) -> Result<FlowEndpoint, DomainError> {
    let config = flow.source_flow_config;
    let connector = config.connector_type;
    if !usable_as(connector, ConnectorRole::Source) {
        return Err(DomainError::invalid(
            "sourceFlowConfig.connectorType",
            format!("{connector} cannot be used as a source"),
        ));
    }
    check_union(
        "sourceFlowConfig.sourceConnectorProperties",
        &source_keys(&config.source_connector_properties),
        connector,
        "sourceFlowConfig.connectorType",
    )?;
    caps.require(
        connector,
        flow.source_connector_label,
        ConnectorRole::Source,
        "sourceFlowConfig.connectorType",
    )?;
    let profile = check_profile_name(
        connector,
        config.connector_profile_name.as_deref(),
        "sourceFlowConfig.connectorProfileName",
    )?;
    Ok(FlowEndpoint {
        connector_type: connector,
        connector_label: flow.source_connector_label.map(str::to_string),
        connector_profile_name: profile,
    })
}

fn check_destination(
    flow: &FlowDefinitionRef<'_>,
    config: &DestinationFlowConfig,
    caps: &Capabilities,
) -> Result<FlowEndpoint, DomainError> {
    const PATH: &str = "destinationFlowConfigList.1.member";
    let connector = config.connector_type;
    if !usable_as(connector, ConnectorRole::Destination) {
        return Err(DomainError::invalid(
            format!("{PATH}.connectorType"),
            format!("{connector} cannot be used as a destination"),
        ));
    }
    check_union(
        &format!("{PATH}.destinationConnectorProperties"),
        &destination_keys(&config.destination_connector_properties),
        connector,
        &format!("{PATH}.connectorType"),
    )?;
    caps.require(
        connector,
        flow.destination_connector_label,
        ConnectorRole::Destination,
        &format!("{PATH}.connectorType"),
    )?;
    let profile = check_profile_name(
        connector,
        config.connector_profile_name.as_deref(),
        &format!("{PATH}.connectorProfileName"),
    )?;
    Ok(FlowEndpoint {
        connector_type: connector,
        connector_label: flow.destination_connector_label.map(str::to_string),
        connector_profile_name: profile,
    })
}

fn check_profile_name(
    connector: sluice_api_model::ConnectorType,
    name: Option<&str>,
    field: &str,
) -> Result<Option<String>, DomainError> {
    match name.map(str::trim) {
        Some(name) if !name.is_empty() => Ok(Some(name.to_string())),
        _ if requires_profile(connector) => Err(DomainError::invalid(
            field,
            format!("is required for connector {connector}"),
        )),
        _ => Ok(None),
    }
}

fn check_trigger(flow: &FlowDefinitionRef<'_>) -> Result<Option<Schedule>, DomainError> {
    let trigger = flow.trigger_config;
    let scheduled = trigger
        .trigger_properties
        .as_ref()
        .and_then(|properties| properties.scheduled.as_ref());
    let properties = match (trigger.trigger_type, scheduled) {
        (TriggerType::Scheduled, Some(properties)) => properties,
        (TriggerType::Scheduled, None) => {
            return Err(DomainError::invalid(
                SCHEDULED,
                "is required when triggerType is Scheduled",
            ));
        }
        (_, None) => return Ok(None),
        (other, Some(_)) => {
            return Err(DomainError::invalid(
                SCHEDULED,
                format!("is only allowed when triggerType is Scheduled, not {other}"),
            ));
        }
    };

    let expression_field = format!("{SCHEDULED}.scheduleExpression");
    let schedule = schedule::parse(&properties.schedule_expression)
        .map_err(|error| error.at(&expression_field))?;
    let source = flow.source_flow_config.connector_type;
    let limit = min_schedule_interval(source);
    let interval = schedule.min_interval();
    if interval < limit {
        return Err(DomainError::invalid(
            expression_field,
            format!(
                "runs every {}, but connector {source} allows at most one run per {}",
                describe(interval),
                describe(limit)
            ),
        ));
    }
    if let (Some(start), Some(end)) = (properties.schedule_start_time, properties.schedule_end_time)
        && end <= start
    {
        return Err(DomainError::invalid(
            format!("{SCHEDULED}.scheduleEndTime"),
            "must be after scheduleStartTime",
        ));
    }
    if properties.data_pull_mode == Some(DataPullMode::Incremental) {
        let field = flow
            .source_flow_config
            .incremental_pull_config
            .as_ref()
            .and_then(|config| config.datetime_type_field_name.as_deref())
            .map(str::trim)
            .unwrap_or_default();
        if field.is_empty() {
            return Err(DomainError::invalid(
                "sourceFlowConfig.incrementalPullConfig.datetimeTypeFieldName",
                "is required when dataPullMode is Incremental",
            ));
        }
    }
    Ok(Some(schedule))
}

fn check_metadata_catalog(
    flow: &FlowDefinitionRef<'_>,
    destination: sluice_api_model::ConnectorType,
) -> Result<(), DomainError> {
    let Some(config) = flow.metadata_catalog_config else {
        return Ok(());
    };
    if destination != sluice_api_model::ConnectorType::S3 {
        return Err(DomainError::invalid(
            "metadataCatalogConfig",
            format!("is only supported with an S3 destination, not {destination}"),
        ));
    }
    if config.glue_data_catalog.is_some() {
        return Err(DomainError::invalid(
            "metadataCatalogConfig.glueDataCatalog",
            "is not supported: Sluice does not register tables in the AWS Glue Data Catalog",
        ));
    }
    Ok(())
}

/// `5 minutes`, `1 hour`, `2 days`.
fn describe(interval: TimeDelta) -> String {
    let minutes = interval.num_minutes();
    let (value, unit) = if minutes > 0 && minutes % (24 * 60) == 0 {
        (minutes / (24 * 60), "day")
    } else if minutes > 0 && minutes % 60 == 0 {
        (minutes / 60, "hour")
    } else {
        (minutes, "minute")
    };
    if value == 1 {
        format!("1 {unit}")
    } else {
        format!("{value} {unit}s")
    }
}

/// Whether an update changes the output schema, which bumps the flow's `schemaVersion`: field
/// mappings (`Map`, `Map_all`, `Merge`, `Arithmetic`, `Passthrough` tasks and the projected
/// fields), their data types (`SOURCE_DATA_TYPE`/`DESTINATION_DATA_TYPE`, the S3 destination's
/// `preserveSourceDataTyping`) or the partition keys. Task order is not significant; filters,
/// masks, truncation and validation do not change the schema.
pub fn schema_version_changed<'a, 'b>(
    old: impl Into<FlowDefinitionRef<'a>>,
    new: impl Into<FlowDefinitionRef<'b>>,
) -> bool {
    schema_fingerprint(&old.into()) != schema_fingerprint(&new.into())
}

/// Task properties that shape the output schema.
const SCHEMA_PROPERTIES: &[&str] = &[
    "SOURCE_DATA_TYPE",
    "DESTINATION_DATA_TYPE",
    "EXCLUDE_SOURCE_FIELDS_LIST",
    "INCLUDE_NEW_FIELDS",
    "CONCAT_FORMAT",
    "MATH_OPERATION_FIELDS_ORDER",
    "ORDERED_PARTITION_KEYS_LIST",
    "SUBFIELD_CATEGORY_MAP",
];

fn schema_fingerprint(flow: &FlowDefinitionRef<'_>) -> (BTreeSet<String>, BTreeSet<String>, bool) {
    let mut projected = BTreeSet::new();
    let mut mappings = BTreeSet::new();
    for task in flow.tasks {
        let operator = task
            .connector_operator
            .as_ref()
            .and_then(|union| operator_entries(union).first().and_then(|(_, op)| *op));
        match task.task_type {
            TaskType::Filter if operator == Some(Operator::Projection) => {
                projected.extend(task.source_fields.iter().cloned());
            }
            TaskType::Map
            | TaskType::MapAll
            | TaskType::Merge
            | TaskType::Arithmetic
            | TaskType::Passthrough
            | TaskType::Partition => {
                let properties: Vec<(&str, &str)> = task
                    .task_properties
                    .iter()
                    .flatten()
                    .filter(|(key, _)| SCHEMA_PROPERTIES.contains(&key.as_str()))
                    .map(|(key, value)| (key.as_str(), value.as_str()))
                    .collect();
                // Debug formatting gives an unambiguous encoding of the parts.
                mappings.insert(format!(
                    "{:?}",
                    (
                        task.task_type.as_str(),
                        &task.source_fields,
                        &task.destination_field,
                        properties
                    )
                ));
            }
            _ => {}
        }
    }
    let preserve_types = flow
        .destination_flow_config_list
        .first()
        .and_then(|d| d.destination_connector_properties.s3.as_ref())
        .and_then(|s3| s3.s3_output_format_config.as_ref())
        .and_then(|format| format.preserve_source_data_typing)
        .unwrap_or(false);
    (projected, mappings, preserve_types)
}

#[cfg(test)]
mod tests;
