//! `DescribeConnectorEntity`: the fields of one entity, from the connector.

use sluice_api_model::{DescribeConnectorEntityRequest, DescribeConnectorEntityResponse};
use sluice_connector_api::EntityContext;

use crate::api::connectors::resolve;
use crate::error::{ApiError, connector_error};
use crate::state::AppState;

pub(crate) async fn handle(
    state: &AppState,
    request: DescribeConnectorEntityRequest,
) -> Result<DescribeConnectorEntityResponse, ApiError> {
    let (connector, profile) = resolve(
        state,
        request.connector_type,
        request.connector_profile_name.as_deref(),
    )
    .await?;
    let context = EntityContext {
        profile,
        entities_path: None,
    };
    let fields = connector
        .describe_entity(&context, &request.connector_entity_name)
        .await
        .map_err(|error| connector_error(connector.connector_type().as_str(), error))?;
    Ok(DescribeConnectorEntityResponse {
        connector_entity_fields: fields,
    })
}
