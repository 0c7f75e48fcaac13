//! `DescribeConnector`: the configuration of a built-in or registered connector.

use sluice_api_model::{ConnectorType, DescribeConnectorRequest, DescribeConnectorResponse};

use crate::api::connectors::registration;
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) async fn handle(
    state: &AppState,
    request: DescribeConnectorRequest,
) -> Result<DescribeConnectorResponse, ApiError> {
    let label = request.connector_label.as_deref();
    if let Some(connector) = state.registry.get(request.connector_type, label) {
        return Ok(DescribeConnectorResponse {
            connector_configuration: Some(connector.configuration()),
        });
    }
    if let (ConnectorType::CustomConnector, Some(label)) = (request.connector_type, label)
        && let Some(registered) = registration(state, label).await?
    {
        return Ok(DescribeConnectorResponse {
            connector_configuration: Some(registered.configuration()),
        });
    }
    let what = match label {
        Some(label) => format!("{} with label {label}", request.connector_type),
        None => request.connector_type.to_string(),
    };
    Err(ApiError::not_found(format!(
        "Connector {what} does not exist in Sluice"
    )))
}
