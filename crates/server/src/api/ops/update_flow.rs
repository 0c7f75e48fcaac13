//! `UpdateFlow`: replaces a flow's definition.
//!
//! The source and destination connector types are part of a flow's identity and cannot
//! change. `schemaVersion` is bumped when mappings, data types or partition keys change.
//! Runs in progress keep the definition they started with. An active scheduled flow is
//! replanned at once (its state and watermark are kept); a flow that stops being an active
//! scheduled flow leaves the scheduler.

use sluice_api_model::{UpdateFlowRequest, UpdateFlowResponse};
use sluice_domain::FlowDefinitionRef;

use sluice_api_model::FlowStatus;
use sluice_scheduler::ScheduledFlow;

use crate::api::common::{load_flow, now, save_flow};
use crate::api::flows::{canonical_trigger, check_definition, status_after_update};
use crate::documents::FlowDocument;
use crate::error::ApiError;
use crate::schedules;
use crate::state::AppState;

pub(crate) async fn handle(
    state: &AppState,
    request: UpdateFlowRequest,
) -> Result<UpdateFlowResponse, ApiError> {
    let name = request.flow_name.clone();
    let new_definition = FlowDefinitionRef::from(&request);
    let checked = check_definition(state, new_definition).await?;

    let _guard = state.flow_lock.lock().await;
    let (_, mut document) = load_flow(state, &name).await?;
    let old_request = document.as_update_request()?;
    let old_definition = FlowDefinitionRef::from(&old_request);

    let old_source = old_request.source_flow_config.connector_type;
    let new_source = request.source_flow_config.connector_type;
    if old_source != new_source {
        return Err(ApiError::validation(format!(
            "The source connector of flow {name} cannot change: it is {old_source}, the \
             update sets sourceFlowConfig.connectorType to {new_source}; create a new flow \
             instead"
        )));
    }
    let old_destination = old_request
        .destination_flow_config_list
        .first()
        .map(|d| d.connector_type);
    let new_destination = request
        .destination_flow_config_list
        .first()
        .map(|d| d.connector_type);
    if old_destination != new_destination {
        let show = |t: Option<sluice_api_model::ConnectorType>| {
            t.map_or_else(|| "none".to_string(), |t| t.to_string())
        };
        return Err(ApiError::validation(format!(
            "The destination connector of flow {name} cannot change: it is {}, the update sets \
             destinationFlowConfigList.1.member.connectorType to {}; create a new flow instead",
            show(old_destination),
            show(new_destination)
        )));
    }

    let mut schema_version = document.schema_version();
    if sluice_domain::schema_version_changed(old_definition, new_definition) {
        schema_version += 1;
    }
    let status = status_after_update(
        document.status(),
        old_request.trigger_config.trigger_type,
        request.trigger_config.trigger_type,
        checked.validated.initial_status,
    );

    // The fields runs saw belong to the entity they read; another entity starts afresh.
    if crate::schema::source_entity(&old_request.source_flow_config)
        != crate::schema::source_entity(&request.source_flow_config)
    {
        document.internal.source_fields.clear();
    }
    let describe = &mut document.describe;
    describe.description = request.description;
    describe.trigger_config = Some(canonical_trigger(
        &request.trigger_config,
        checked.validated.schedule_expression.clone(),
    ));
    describe.source_flow_config = Some(request.source_flow_config);
    describe.destination_flow_config_list = Some(request.destination_flow_config_list);
    describe.tasks = Some(request.tasks);
    describe.metadata_catalog_config = request.metadata_catalog_config;
    describe.schema_version = Some(schema_version);
    if describe.flow_status != Some(status) {
        describe.flow_status_message = None;
    }
    describe.flow_status = Some(status);
    describe.last_updated_at = Some(now());
    describe.last_updated_by = Some(state.caller.arn.clone());
    document.internal.source_connector_label = checked.source_connector_label;
    document.internal.destination_connector_label = checked.destination_connector_label;
    save_flow(state, &document).await?;
    replan(state, &name, &document).await?;
    tracing::info!(flow_name = %name, schema_version, flow_status = %status, "flow updated");
    Ok(UpdateFlowResponse {
        flow_status: Some(status),
    })
}

/// Tells the scheduler about the updated flow.
async fn replan(state: &AppState, name: &str, document: &FlowDocument) -> Result<(), ApiError> {
    let scheduled = document.status() == FlowStatus::Active
        && schedules::scheduled_properties(document).is_some();
    if !scheduled {
        state.scheduler.deactivate(name);
        return Ok(());
    }
    let plan = schedules::plan_of(document)?;
    if state.scheduler.update(name, plan.clone()) {
        return Ok(());
    }
    // Active but unknown to the scheduler (its earlier plan could not be loaded): schedule it.
    let (activated_at, flow_state) = schedules::load_state(state.store.as_ref(), name).await?;
    let activated_at = activated_at.unwrap_or_else(|| state.clock.now());
    if let Err(error) = state
        .scheduler
        .activate(ScheduledFlow {
            name: name.to_string(),
            plan,
            activated_at,
            state: flow_state,
        })
        .await
    {
        tracing::error!(%error, "schedule state not persisted");
    }
    Ok(())
}
