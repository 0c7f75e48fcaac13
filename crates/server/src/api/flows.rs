//! Flow definition checks shared by `CreateFlow` and `UpdateFlow`.
//!
//! The pure rules (unions, tasks, triggers, schedules, supported connectors) are
//! `sluice_domain::validate_flow`; this module adds what needs the metadata store: the
//! profiles a flow names must exist and belong to the flow's connector, and flows may not use
//! Lambda-provisioned custom connectors, which Sluice cannot invoke.

use sluice_api_model as model;
use sluice_domain::{FlowDefinitionRef, ValidatedFlow};

use crate::documents::ConnectorRegistration;
use crate::error::ApiError;
use crate::state::AppState;

/// What a definition check yields.
#[derive(Debug)]
pub(crate) struct CheckedFlow {
    pub validated: ValidatedFlow,
    pub source_connector_label: Option<String>,
    pub destination_connector_label: Option<String>,
}

/// Validates a flow definition and the profiles it references.
pub(crate) async fn check_definition(
    state: &AppState,
    definition: FlowDefinitionRef<'_>,
) -> Result<CheckedFlow, ApiError> {
    // Profiles are resolved first: custom connectors are identified by the label their
    // profile carries, and a Lambda connector is reported with a message that says why
    // instead of the generic "unsupported connector" rule.
    let source = definition.source_flow_config;
    let source_label = profile_label(
        state,
        "sourceFlowConfig",
        source.connector_type,
        source.connector_profile_name.as_deref(),
    )
    .await?;
    let mut destination_label = None;
    for (index, destination) in definition.destination_flow_config_list.iter().enumerate() {
        let member = format!("destinationFlowConfigList.{}.member", index + 1);
        let label = profile_label(
            state,
            &member,
            destination.connector_type,
            destination.connector_profile_name.as_deref(),
        )
        .await?;
        if index == 0 {
            destination_label = label;
        }
    }
    if let Some(end) = definition
        .trigger_config
        .trigger_properties
        .as_ref()
        .and_then(|properties| properties.scheduled.as_ref())
        .and_then(|scheduled| scheduled.schedule_end_time)
        && end.0 <= state.clock.now()
    {
        return Err(ApiError::validation(format!(
            "triggerConfig.triggerProperties.Scheduled.scheduleEndTime {} is in the past: the \
             flow would never run",
            end.0.to_rfc3339()
        )));
    }
    let validated = sluice_domain::validate_flow(
        definition.with_labels(source_label.as_deref(), destination_label.as_deref()),
        &state.capabilities,
    )?;
    // Compiling the task plan here catches what only the plan sees (a field used by a task but
    // missing from the projection, a partition key that is never mapped), so such a flow is
    // rejected at CreateFlow/UpdateFlow instead of failing every run.
    sluice_transforms::TaskPlan::compile(definition.tasks, source.connector_type)
        .map_err(|error| ApiError::validation(format!("Task Validation Error: {error}")))?;
    Ok(CheckedFlow {
        validated,
        source_connector_label: source_label,
        destination_connector_label: destination_label,
    })
}

/// Checks the profile one end of a flow names, and returns its connector label.
async fn profile_label(
    state: &AppState,
    member: &str,
    connector_type: model::ConnectorType,
    profile_name: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let Some(profile_name) = profile_name else {
        return Ok(None);
    };
    let record = state
        .store
        .get_profile(profile_name)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Connector profile {profile_name} ({member}.connectorProfileName) does not exist"
            ))
        })?;
    if record.connector_type != connector_type.as_str() {
        return Err(ApiError::validation(format!(
            "Connector profile {profile_name} ({member}.connectorProfileName) belongs to \
             connector type {}, not {connector_type}",
            record.connector_type
        )));
    }
    if let Some(label) = &record.connector_label
        && let Some(registered) = state.store.get_connector(label).await?
    {
        let registration = ConnectorRegistration::from_record(&registered)?;
        return Err(ApiError::validation(format!(
            "{member} uses custom connector {} through connector profile {profile_name}; \
             it is provisioned as an AWS Lambda function, and Sluice cannot invoke Lambda \
             functions, so flows cannot use it",
            registration.connector_label
        )));
    }
    Ok(record.connector_label)
}

/// The flow status after an update: a changed trigger type restarts the lifecycle (an
/// on-demand flow is `Active`, a scheduled or event flow goes back to `Draft` until
/// `StartFlow`); otherwise the status is kept.
pub(crate) fn status_after_update(
    current: model::FlowStatus,
    old_trigger: model::TriggerType,
    new_trigger: model::TriggerType,
    initial: model::FlowStatus,
) -> model::FlowStatus {
    if old_trigger == new_trigger {
        current
    } else {
        initial
    }
}

/// The trigger config as stored: the schedule expression in its canonical form.
pub(crate) fn canonical_trigger(
    trigger: &model::TriggerConfig,
    canonical_expression: Option<String>,
) -> model::TriggerConfig {
    let mut trigger = trigger.clone();
    if let (Some(expression), Some(scheduled)) = (
        canonical_expression,
        trigger
            .trigger_properties
            .as_mut()
            .and_then(|p| p.scheduled.as_mut()),
    ) {
        scheduled.schedule_expression = expression;
    }
    trigger
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{FlowStatus, TriggerType};

    #[test]
    fn status_is_kept_unless_the_trigger_type_changes() {
        assert_eq!(
            status_after_update(
                FlowStatus::Suspended,
                TriggerType::Scheduled,
                TriggerType::Scheduled,
                FlowStatus::Draft
            ),
            FlowStatus::Suspended
        );
        assert_eq!(
            status_after_update(
                FlowStatus::Active,
                TriggerType::OnDemand,
                TriggerType::Scheduled,
                FlowStatus::Draft
            ),
            FlowStatus::Draft
        );
        assert_eq!(
            status_after_update(
                FlowStatus::Suspended,
                TriggerType::Event,
                TriggerType::OnDemand,
                FlowStatus::Active
            ),
            FlowStatus::Active
        );
    }

    #[test]
    fn schedule_expressions_are_stored_canonically() {
        let trigger: model::TriggerConfig = serde_json::from_value(serde_json::json!({
            "triggerType": "Scheduled",
            "triggerProperties": {"Scheduled": {"scheduleExpression": "rate(5 minute)"}}
        }))
        .unwrap();
        let stored = canonical_trigger(&trigger, Some("rate(5minutes)".into()));
        assert_eq!(
            stored
                .trigger_properties
                .unwrap()
                .scheduled
                .unwrap()
                .schedule_expression,
            "rate(5minutes)"
        );
        let on_demand: model::TriggerConfig =
            serde_json::from_value(serde_json::json!({"triggerType": "OnDemand"})).unwrap();
        assert_eq!(canonical_trigger(&on_demand, None), on_demand);
    }
}

/// A `CreateFlow`/`UpdateFlow` body with `dataPullMode` in its canonical spelling: Terraform
/// sends `incremental`, and AppFlow accepts any case. Anything else (including a body that is
/// not JSON) is left for the model validator to report.
pub(crate) fn canonical_body(body: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return body.into();
    };
    let Some(mode) = value
        .pointer_mut("/triggerConfig/triggerProperties/Scheduled/dataPullMode")
        .filter(|mode| mode.is_string())
    else {
        return body.into();
    };
    let canonical = model::DataPullMode::ALL
        .iter()
        .map(model::DataPullMode::as_str)
        .find(|known| {
            mode.as_str()
                .is_some_and(|given| given.eq_ignore_ascii_case(known))
        });
    match canonical {
        Some(known) if mode.as_str() != Some(known) => {
            *mode = serde_json::Value::from(known);
            serde_json::to_vec(&value).map_or(body.into(), Into::into)
        }
        _ => body.into(),
    }
}

#[cfg(test)]
mod canonical_body_tests {
    use super::*;

    fn mode_of(body: &[u8]) -> serde_json::Value {
        let value: serde_json::Value = serde_json::from_slice(body).unwrap();
        value["triggerConfig"]["triggerProperties"]["Scheduled"]["dataPullMode"].clone()
    }

    fn body(mode: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "flowName": "f",
            "triggerConfig": {"triggerType": "Scheduled", "triggerProperties": {"Scheduled": {
                "scheduleExpression": "rate(1hours)", "dataPullMode": mode
            }}}
        }))
        .unwrap()
    }

    #[test]
    fn data_pull_mode_is_case_insensitive() {
        for (given, expected) in [
            ("incremental", "Incremental"),
            ("INCREMENTAL", "Incremental"),
            ("Incremental", "Incremental"),
            ("complete", "Complete"),
            ("cOmPlEtE", "Complete"),
        ] {
            let input = body(serde_json::json!(given));
            assert_eq!(mode_of(&canonical_body(&input)), expected, "{given}");
        }
    }

    #[test]
    fn unknown_values_and_other_bodies_are_left_alone() {
        for odd in [
            serde_json::json!("Incrémental"),
            serde_json::json!(""),
            serde_json::json!(3),
        ] {
            let input = body(odd.clone());
            assert_eq!(&*canonical_body(&input), input.as_slice());
        }
        let not_json = b"{\"flowName\": ";
        assert_eq!(&*canonical_body(not_json), not_json);
        let on_demand = br#"{"triggerConfig":{"triggerType":"OnDemand"}}"#;
        assert_eq!(&*canonical_body(on_demand), on_demand);
    }
}
