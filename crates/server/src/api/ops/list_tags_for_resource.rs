//! `ListTagsForResource`: the tags of a flow (`{}` when it has none).

use sluice_api_model::{ListTagsForResourceRequest, ListTagsForResourceResponse};

use crate::api::common::flow_by_arn;
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) async fn handle(
    state: &AppState,
    request: ListTagsForResourceRequest,
) -> Result<ListTagsForResourceResponse, ApiError> {
    let (_, document) = flow_by_arn(state, &request.resource_arn).await?;
    Ok(ListTagsForResourceResponse {
        tags: Some(document.describe.tags.unwrap_or_default()),
    })
}
