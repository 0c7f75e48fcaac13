//! `ResetConnectorMetadataCache`: Sluice does not cache connector metadata (every
//! `ListConnectorEntities` / `DescribeConnectorEntity` asks the connector), so there is
//! nothing to reset; the request is still checked so that mistakes are reported as AppFlow
//! would (unknown profile, connector Sluice does not implement, missing connectorType).

use sluice_api_model::{ResetConnectorMetadataCacheRequest, ResetConnectorMetadataCacheResponse};

use crate::api::connectors::resolve;
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) async fn handle(
    state: &AppState,
    request: ResetConnectorMetadataCacheRequest,
) -> Result<ResetConnectorMetadataCacheResponse, ApiError> {
    resolve(
        state,
        request.connector_type,
        request.connector_profile_name.as_deref(),
    )
    .await?;
    Ok(ResetConnectorMetadataCacheResponse {})
}
