//! `UntagResource`: removes tags of a flow; keys it does not have are ignored.

use sluice_api_model::{UntagResourceRequest, UntagResourceResponse};

use crate::api::common::{flow_by_arn, save_flow};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) async fn handle(
    state: &AppState,
    request: UntagResourceRequest,
) -> Result<UntagResourceResponse, ApiError> {
    let _guard = state.flow_lock.lock().await;
    let (_, mut document) = flow_by_arn(state, &request.resource_arn).await?;
    let mut tags = document.describe.tags.take().unwrap_or_default();
    for key in &request.tag_keys {
        tags.remove(key);
    }
    document.describe.tags = if tags.is_empty() { None } else { Some(tags) };
    save_flow(state, &document).await?;
    Ok(UntagResourceResponse {})
}
