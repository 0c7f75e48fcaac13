//! `DeleteFlow`: refused while a run is in progress unless `forceDelete`, which cancels the
//! runs first. Deleting a flow deletes its execution records.

use sluice_api_model::{DeleteFlowRequest, DeleteFlowResponse};

use crate::api::common::{flow_not_found, load_flow};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) async fn handle(
    state: &AppState,
    request: DeleteFlowRequest,
) -> Result<DeleteFlowResponse, ApiError> {
    let name = &request.flow_name;
    let _guard = state.flow_lock.lock().await;
    load_flow(state, name).await?;
    let running = state.runs.active_runs(name);
    if !running.is_empty() {
        if !request.force_delete.unwrap_or(false) {
            return Err(ApiError::conflict(format!(
                "Flow {name} has {} run(s) in progress ({}); wait for them to finish, cancel \
                 them with CancelFlowExecutions, or set forceDelete",
                running.len(),
                running.join(", ")
            )));
        }
        for execution_id in &running {
            state.runs.cancel(name, execution_id).await;
        }
    }
    if !state.store.delete_flow(name).await? {
        return Err(flow_not_found(name));
    }
    // The schedule record went with the flow; the scheduler forgets it too.
    state.scheduler.deactivate(name);
    tracing::info!(flow_name = %name, canceled_runs = running.len(), "flow deleted");
    Ok(DeleteFlowResponse {})
}
