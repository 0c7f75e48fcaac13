//! `POST /webhooks/flows/{flowName}`: an event that starts a run of an active event-triggered
//! flow, from any system that can send an HTTP request signed with an API key (SigV4, like
//! every call). The body, if any, is not interpreted: the event only says "run now".
//!
//! [`fire`] is the one entry point for events: other event sources (a Salesforce Change Data
//! Capture subscriber, a storage notification listener) start their runs through it, so every
//! trigger shares the same rules: only `Active` `Event` flows run, and each event starts one
//! run, recorded like any other.

use serde::Serialize;
use sluice_api_model::{ExecutionDetails, ExecutionStatus, FlowStatus, TriggerType};

use crate::api::common::{load_flow, save_flow};
use crate::error::ApiError;
use crate::runs::RunInputs;
use crate::state::AppState;

/// The webhook's answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WebhookResponse {
    /// The run the event started.
    pub execution_id: String,
    /// The flow's ARN.
    pub flow_arn: String,
    /// The flow's status (`Active`).
    pub flow_status: FlowStatus,
}

pub(crate) async fn handle(state: &AppState, flow_name: &str) -> Result<WebhookResponse, ApiError> {
    fire(state, flow_name, "webhook").await
}

/// Starts a run of the event flow `flow_name` for an event from `trigger`.
///
/// # Errors
/// `ResourceNotFoundException` for an unknown flow, `ValidationException` for a flow that is
/// not event-triggered, `ConflictException` for one that is not `Active`, and the run
/// manager's errors (quota, shutdown).
pub(crate) async fn fire(
    state: &AppState,
    flow_name: &str,
    trigger: &str,
) -> Result<WebhookResponse, ApiError> {
    let _guard = state.flow_lock.lock().await;
    let (_, mut document) = load_flow(state, flow_name).await?;
    let trigger_type = document.trigger_type();
    if trigger_type != TriggerType::Event {
        return Err(ApiError::validation(format!(
            "Flow {flow_name} is triggered {trigger_type}, not Event: only event-triggered \
             flows accept events (use StartFlow for on-demand flows)"
        )));
    }
    let status = document.status();
    if status != FlowStatus::Active {
        return Err(ApiError::conflict(format!(
            "Flow {flow_name} is {status}: activate it with StartFlow before sending events"
        )));
    }
    let (execution_id, started_at) = state.runs.start(&document, RunInputs::default()).await?;
    document.describe.last_run_execution_details = Some(ExecutionDetails {
        most_recent_execution_message: None,
        most_recent_execution_status: Some(ExecutionStatus::InProgress),
        most_recent_execution_time: Some(started_at.into()),
    });
    save_flow(state, &document).await?;
    tracing::info!(flow_name, trigger, %execution_id, "event started a run");
    Ok(WebhookResponse {
        execution_id,
        flow_arn: document.arn().to_string(),
        flow_status: FlowStatus::Active,
    })
}
