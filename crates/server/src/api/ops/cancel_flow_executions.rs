//! `CancelFlowExecutions`: cancels some or all runs in progress of a flow.
//!
//! A canceled run becomes `CancelStarted` at once and `Canceled` when the engine has stopped;
//! its destination writer is aborted, so it leaves no partial output. Ids of runs that are
//! not in progress (finished, unknown, or of another flow) are returned in
//! `invalidExecutions` instead of failing the call.

use sluice_api_model::{CancelFlowExecutionsRequest, CancelFlowExecutionsResponse};

use crate::api::common::load_flow;
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) async fn handle(
    state: &AppState,
    request: CancelFlowExecutionsRequest,
) -> Result<CancelFlowExecutionsResponse, ApiError> {
    let name = &request.flow_name;
    load_flow(state, name).await?;
    let requested = match request.execution_ids {
        Some(ids) if !ids.is_empty() => ids,
        _ => state.runs.active_runs(name),
    };
    let mut invalid = Vec::new();
    for execution_id in requested {
        if !state.runs.cancel(name, &execution_id).await {
            invalid.push(execution_id);
        }
    }
    Ok(CancelFlowExecutionsResponse {
        invalid_executions: Some(invalid),
    })
}
