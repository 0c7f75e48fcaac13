//! `RegisterConnector`: records a Lambda-provisioned custom connector.
//!
//! The registration is stored, listed and described. Sluice cannot invoke AWS Lambda, so
//! the connector cannot be used by flows or for metadata calls; those requests are rejected
//! with a message that says so.

use sluice_api_model::{
    ConnectorProvisioningType, ConnectorType, RegisterConnectorRequest, RegisterConnectorResponse,
};
use sluice_metastore::StoreError;

use crate::api::common::now;
use crate::documents::ConnectorRegistration;
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) async fn handle(
    state: &AppState,
    request: RegisterConnectorRequest,
) -> Result<RegisterConnectorResponse, ApiError> {
    let label = request.connector_label.clone().ok_or_else(|| {
        ApiError::validation(
            "1 validation error detected: Value null at 'connectorLabel' failed to satisfy \
             constraint: Member must not be null",
        )
    })?;
    let provisioning_type = request
        .connector_provisioning_type
        .unwrap_or(ConnectorProvisioningType::Lambda);
    let has_lambda = request
        .connector_provisioning_config
        .as_ref()
        .is_some_and(|config| config.lambda.is_some());
    if !has_lambda {
        return Err(ApiError::validation(format!(
            "connectorProvisioningConfig.lambda.lambdaArn is required for a connector \
             provisioned as {provisioning_type}"
        )));
    }
    if state
        .registry
        .get(ConnectorType::CustomConnector, Some(&label))
        .is_some()
    {
        return Err(ApiError::conflict(format!(
            "Connector label {label} is taken by a connector built into Sluice"
        )));
    }
    let registered = now();
    let registration = ConnectorRegistration {
        connector_label: label.clone(),
        connector_arn: state.connector_arn(&label),
        description: request.description,
        connector_provisioning_type: Some(provisioning_type),
        connector_provisioning_config: request.connector_provisioning_config,
        registered_at: registered,
        registered_by: state.caller.arn.clone(),
        last_updated_at: registered,
    };
    state
        .store
        .insert_connector(&registration.to_record()?)
        .await
        .map_err(|error| match error {
            StoreError::AlreadyExists { .. } => {
                ApiError::conflict(format!("Connector {label} is already registered"))
            }
            other => other.into(),
        })?;
    tracing::info!(connector_label = %label, "connector registered");
    Ok(RegisterConnectorResponse {
        connector_arn: Some(registration.connector_arn),
    })
}
