//! `UpdateConnectorRegistration`: changes a registered connector's description or Lambda.

use sluice_api_model::{UpdateConnectorRegistrationRequest, UpdateConnectorRegistrationResponse};

use crate::api::common::now;
use crate::api::connectors::registration;
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) async fn handle(
    state: &AppState,
    request: UpdateConnectorRegistrationRequest,
) -> Result<UpdateConnectorRegistrationResponse, ApiError> {
    let label = &request.connector_label;
    let mut registered = registration(state, label)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Connector {label} is not registered")))?;
    if let Some(description) = request.description {
        registered.description = Some(description);
    }
    if let Some(config) = request.connector_provisioning_config {
        if config.lambda.is_none() {
            return Err(ApiError::validation(
                "connectorProvisioningConfig.lambda.lambdaArn is required",
            ));
        }
        registered.connector_provisioning_config = Some(config);
    }
    registered.last_updated_at = now();
    state
        .store
        .update_connector(&registered.to_record()?)
        .await?;
    tracing::info!(connector_label = %label, "connector registration updated");
    Ok(UpdateConnectorRegistrationResponse {
        connector_arn: Some(registered.connector_arn),
    })
}
