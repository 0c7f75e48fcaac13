//! `DescribeFlow`.

use sluice_api_model::{DescribeFlowRequest, DescribeFlowResponse};

use crate::api::common::load_flow;
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) async fn handle(
    state: &AppState,
    request: DescribeFlowRequest,
) -> Result<DescribeFlowResponse, ApiError> {
    let (_, document) = load_flow(state, &request.flow_name).await?;
    Ok(document.describe)
}
