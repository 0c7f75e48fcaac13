//! `UpdateConnectorProfile`: replaces a profile's connection mode, properties and (when
//! given) credentials. Without `connectorProfileCredentials` the stored credentials are kept.
//! The connector type and label cannot change.

use std::sync::Arc;

use sluice_api_model::{
    ConnectorProfileCredentials, ConnectorProfileProperties, ConnectorType,
    UpdateConnectorProfileRequest, UpdateConnectorProfileResponse,
};
use sluice_connector_api::{Connector, Profile};
use sluice_types::Sensitive;

use crate::api::common::{load_profile, now};
use crate::api::connectors::registration;
use crate::documents::{open_profile, profile_document, profile_value, seal_credentials};
use crate::error::{ApiError, connector_error};
use crate::state::AppState;

pub(crate) async fn handle(
    state: &AppState,
    request: UpdateConnectorProfileRequest,
) -> Result<UpdateConnectorProfileResponse, ApiError> {
    let name = &request.connector_profile_name;
    let mut record = load_profile(state, name).await?;
    let mut document = profile_document(&record)?;
    let connector_type = document.connector_type.ok_or_else(|| {
        ApiError::internal(format!(
            "stored connector profile {name} has no connectorType"
        ))
    })?;
    let config = &request.connector_profile_config;
    sluice_domain::validate_profile_config(connector_type, config)?;

    let connector =
        target_connector(state, connector_type, record.connector_label.as_deref()).await?;
    if let Some(connector) = connector {
        // Check the credentials the profile will have after the update.
        let credentials = match &config.connector_profile_credentials {
            Some(credentials) => serde_json::to_value(credentials).map_err(ApiError::internal)?,
            None => open_profile(&record, &state.secrets)?
                .credentials
                .into_inner(),
        };
        validate_with(
            connector.as_ref(),
            name,
            connector_type,
            record.connector_label.as_deref(),
            &config.connector_profile_properties,
            credentials,
        )
        .await?;
    }
    if config.connector_profile_credentials.is_some() {
        record.sealed_credentials = seal_credentials(
            config.connector_profile_credentials.as_ref(),
            &record.arn,
            &state.secrets,
        )?;
    }
    let updated = now();
    document.connection_mode = Some(request.connection_mode);
    document.connector_profile_properties = Some(config.connector_profile_properties.clone());
    document.last_updated_at = Some(updated);
    record.document = profile_value(&document)?;
    record.updated_at = updated.0;
    state.store.update_profile(&record).await?;
    tracing::info!(connector_profile_name = %name, "connector profile updated");
    Ok(UpdateConnectorProfileResponse {
        connector_profile_arn: Some(record.arn),
    })
}

/// The synthetic Secrets Manager ARN reported as a profile's `credentialsArn`.
pub(crate) fn credentials_arn(state: &AppState, profile_name: &str) -> String {
    format!(
        "arn:aws:secretsmanager:{}:{}:secret:appflow!{profile_name}",
        state.config.region, state.config.account_id
    )
}

/// The built-in connector a profile is for, if Sluice implements it.
///
/// # Errors
/// `ResourceNotFoundException` for a custom connector label that is neither built in nor
/// registered.
pub(crate) async fn target_connector(
    state: &AppState,
    connector_type: ConnectorType,
    label: Option<&str>,
) -> Result<Option<Arc<dyn Connector>>, ApiError> {
    if let Some(connector) = state.registry.get(connector_type, label) {
        return Ok(Some(connector));
    }
    match (connector_type, label) {
        (ConnectorType::CustomConnector, Some(label)) => {
            if registration(state, label).await?.is_none() {
                return Err(ApiError::not_found(format!(
                    "Custom connector {label} does not exist: register it with \
                     RegisterConnector first"
                )));
            }
            tracing::debug!(
                connector_label = label,
                "profile for a Lambda connector is stored unchecked"
            );
        }
        _ => {
            tracing::debug!(%connector_type, "profile for a connector Sluice does not implement is stored unchecked")
        }
    }
    Ok(None)
}

/// Lets the connector check a profile's properties and credentials.
pub(crate) async fn check_with_connector(
    connector: Option<&dyn Connector>,
    name: &str,
    connector_type: ConnectorType,
    label: Option<&str>,
    properties: &ConnectorProfileProperties,
    credentials: Option<&ConnectorProfileCredentials>,
) -> Result<(), ApiError> {
    let Some(connector) = connector else {
        return Ok(());
    };
    let credentials = match credentials {
        Some(credentials) => serde_json::to_value(credentials).map_err(ApiError::internal)?,
        None => serde_json::Value::Object(serde_json::Map::new()),
    };
    validate_with(
        connector,
        name,
        connector_type,
        label,
        properties,
        credentials,
    )
    .await
}

async fn validate_with(
    connector: &dyn Connector,
    name: &str,
    connector_type: ConnectorType,
    label: Option<&str>,
    properties: &ConnectorProfileProperties,
    credentials: serde_json::Value,
) -> Result<(), ApiError> {
    let profile = Profile {
        name: name.to_string(),
        connector_type,
        connector_label: label.map(str::to_string),
        properties: serde_json::to_value(properties).map_err(ApiError::internal)?,
        credentials: Sensitive::new(credentials),
    };
    connector
        .validate_profile(&profile)
        .await
        .map_err(|error| connector_error(connector_type.as_str(), error))
}
