//! `TagResource`: adds or overwrites tags of a flow (at most 50 in total).

use sluice_api_model::{TagResourceRequest, TagResourceResponse};

use crate::api::common::{check_tags, flow_by_arn, save_flow};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) async fn handle(
    state: &AppState,
    request: TagResourceRequest,
) -> Result<TagResourceResponse, ApiError> {
    check_tags(&request.tags)?;
    let _guard = state.flow_lock.lock().await;
    let (_, mut document) = flow_by_arn(state, &request.resource_arn).await?;
    let mut tags = document.describe.tags.take().unwrap_or_default();
    tags.extend(request.tags);
    check_tags(&tags)?;
    document.describe.tags = Some(tags);
    save_flow(state, &document).await?;
    Ok(TagResourceResponse {})
}
