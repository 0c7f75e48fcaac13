//! `StopFlow`: deactivates a scheduled or event flow (`Suspended`). On-demand flows have
//! nothing to deactivate. Runs in progress continue, and the scheduler still records their
//! end (watermark, failure count).

use sluice_api_model::{FlowStatus, StopFlowRequest, StopFlowResponse, TriggerType};

use crate::api::common::{load_flow, save_flow};
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

pub(crate) async fn handle(
    state: &AppState,
    request: StopFlowRequest,
) -> Result<StopFlowResponse, ApiError> {
    let name = &request.flow_name;
    let _guard = state.flow_lock.lock().await;
    let (_, mut document) = load_flow(state, name).await?;
    if document.trigger_type() == TriggerType::OnDemand {
        return Err(ApiError::new(
            ErrorCode::UnsupportedOperation,
            format!(
                "Flow {name} is an on-demand flow: StopFlow only deactivates scheduled and \
                 event-triggered flows (cancel on-demand runs with CancelFlowExecutions)"
            ),
        ));
    }
    let status = document.status();
    if status != FlowStatus::Active {
        return Err(ApiError::conflict(format!(
            "Flow {name} is {status}, not Active, so it cannot be stopped"
        )));
    }
    document.describe.flow_status = Some(FlowStatus::Suspended);
    save_flow(state, &document).await?;
    // A run in progress continues; its end is still recorded.
    state.scheduler.deactivate(name);
    tracing::info!(flow_name = %name, "flow deactivated");
    Ok(StopFlowResponse {
        flow_arn: Some(document.arn().to_string()),
        flow_status: Some(FlowStatus::Suspended),
    })
}
