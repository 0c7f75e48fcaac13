//! `StartFlow`: runs an on-demand flow now, or activates a scheduled or event flow.
//!
//! Activating an already active scheduled or event flow changes nothing and succeeds, so a
//! retried call is harmless. Sluice has no scheduler or event subscriptions yet: an active
//! scheduled or event flow is recorded as such but not triggered.

use sluice_api_model::{
    ExecutionDetails, ExecutionStatus, FlowStatus, StartFlowRequest, StartFlowResponse, TriggerType,
};

use crate::api::common::{load_flow, save_flow};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) async fn handle(
    state: &AppState,
    request: StartFlowRequest,
) -> Result<StartFlowResponse, ApiError> {
    let name = &request.flow_name;
    let _guard = state.flow_lock.lock().await;
    let (_, mut document) = load_flow(state, name).await?;
    let status = document.status();
    let arn = document.arn().to_string();
    match document.trigger_type() {
        TriggerType::OnDemand => {
            if status != FlowStatus::Active {
                return Err(ApiError::conflict(format!(
                    "Flow {name} is {status} and cannot be started; only Active flows run"
                )));
            }
            let (execution_id, started_at) = state.runs.start(&document).await?;
            document.describe.last_run_execution_details = Some(ExecutionDetails {
                most_recent_execution_message: None,
                most_recent_execution_status: Some(ExecutionStatus::InProgress),
                most_recent_execution_time: Some(started_at.into()),
            });
            save_flow(state, &document).await?;
            Ok(StartFlowResponse {
                execution_id: Some(execution_id),
                flow_arn: Some(arn),
                flow_status: Some(FlowStatus::Active),
            })
        }
        TriggerType::Scheduled | TriggerType::Event => match status {
            FlowStatus::Active => Ok(StartFlowResponse {
                execution_id: None,
                flow_arn: Some(arn),
                flow_status: Some(status),
            }),
            FlowStatus::Draft | FlowStatus::Suspended | FlowStatus::Errored => {
                document.describe.flow_status = Some(FlowStatus::Active);
                document.describe.flow_status_message = None;
                save_flow(state, &document).await?;
                tracing::info!(flow_name = %name, "flow activated");
                Ok(StartFlowResponse {
                    execution_id: None,
                    flow_arn: Some(arn),
                    flow_status: Some(FlowStatus::Active),
                })
            }
            FlowStatus::Deprecated | FlowStatus::Deleted => Err(ApiError::conflict(format!(
                "Flow {name} is {status} and cannot be activated"
            ))),
        },
    }
}
