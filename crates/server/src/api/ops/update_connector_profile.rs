//! `UpdateConnectorProfile`: replaces a profile's connection mode, properties and (when
//! given) credentials. Without `connectorProfileCredentials` the stored credentials are kept
//! (checked, and renewed if the connector had to). The connector type and label cannot change.
//! As at creation, OAuth connectors exchange an authorization code for tokens, which are what
//! is stored.

use std::sync::Arc;

use sluice_api_model::{
    ConnectorProfileCredentials, ConnectorProfileProperties, ConnectorType,
    UpdateConnectorProfileRequest, UpdateConnectorProfileResponse,
};
use sluice_connector_api::{Connector, Profile};
use sluice_types::Sensitive;

use crate::api::common::{load_profile, now};
use crate::api::connectors::registration;
use crate::documents::{open_profile, profile_document, profile_value, seal_json};
use crate::error::{ApiError, connector_error};
use crate::state::AppState;

pub(crate) async fn handle(
    state: &AppState,
    request: UpdateConnectorProfileRequest,
) -> Result<UpdateConnectorProfileResponse, ApiError> {
    let name = &request.connector_profile_name;
    let record = load_profile(state, name).await?;
    let document = profile_document(&record)?;
    let connector_type = document.connector_type.ok_or_else(|| {
        ApiError::internal(format!(
            "stored connector profile {name} has no connectorType"
        ))
    })?;
    let config = &request.connector_profile_config;
    sluice_domain::validate_profile_config(connector_type, config)?;

    let connector =
        target_connector(state, connector_type, record.connector_label.as_deref()).await?;
    let given = credentials_value(config.connector_profile_credentials.as_ref())?;
    // The connector checks (and may renew) the credentials the profile will have after the
    // update: the new ones, or the stored ones.
    let kept = match (&given, &connector) {
        (None, Some(_)) => Some(open_profile(&record, &state.secrets)?.credentials),
        _ => None,
    };
    let prepared = prepare_with_connector(
        connector.as_deref(),
        name,
        connector_type,
        record.connector_label.as_deref(),
        &config.connector_profile_properties,
        given.clone().or_else(|| kept.clone()),
    )
    .await?;

    let _guard = state.profile_lock.lock().await;
    // Re-read under the lock: a run may have written renewed tokens meanwhile.
    let mut record = load_profile(state, name).await?;
    let mut document = profile_document(&record)?;
    match (&given, &kept, &prepared.credentials) {
        (Some(_), _, Some(credentials)) => {
            record.sealed_credentials = seal_json(credentials, &record.arn, &state.secrets)?;
        }
        (None, Some(kept), Some(credentials)) => {
            // Stored credentials the connector renewed are written back, unless a run stored
            // newer ones in the meantime (those win).
            let current = open_profile(&record, &state.secrets)?.credentials;
            if current.expose() == kept.expose() {
                record.sealed_credentials = seal_json(credentials, &record.arn, &state.secrets)?;
            }
        }
        _ => {}
    }
    let updated = now();
    document.connection_mode = Some(request.connection_mode);
    document.connector_profile_properties = Some(prepared.properties);
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

/// A request's credentials union as JSON (`None` when the request has none).
pub(crate) fn credentials_value(
    credentials: Option<&ConnectorProfileCredentials>,
) -> Result<Option<Sensitive<serde_json::Value>>, ApiError> {
    credentials
        .map(|credentials| {
            serde_json::to_value(credentials)
                .map(Sensitive::new)
                .map_err(ApiError::internal)
        })
        .transpose()
}

/// A profile as it is to be stored.
pub(crate) struct PreparedProfile {
    pub properties: ConnectorProfileProperties,
    /// The credentials union to seal; `None` stores none.
    pub credentials: Option<Sensitive<serde_json::Value>>,
}

/// Lets the connector, when Sluice implements it, check a profile's properties and
/// credentials and turn them into what is stored (tokens instead of an authorization code).
/// Without a connector the profile is stored as given.
pub(crate) async fn prepare_with_connector(
    connector: Option<&dyn Connector>,
    name: &str,
    connector_type: ConnectorType,
    label: Option<&str>,
    properties: &ConnectorProfileProperties,
    credentials: Option<Sensitive<serde_json::Value>>,
) -> Result<PreparedProfile, ApiError> {
    let Some(connector) = connector else {
        return Ok(PreparedProfile {
            properties: properties.clone(),
            credentials,
        });
    };
    let profile = Profile {
        name: name.to_string(),
        connector_type,
        connector_label: label.map(str::to_string),
        properties: serde_json::to_value(properties).map_err(ApiError::internal)?,
        credentials: credentials
            .unwrap_or_else(|| Sensitive::new(serde_json::Value::Object(serde_json::Map::new()))),
    };
    let prepared = connector
        .prepare_profile(&profile)
        .await
        .map_err(|error| connector_error(connector_type.as_str(), error))?;
    let properties = serde_json::from_value(prepared.properties).map_err(|error| {
        ApiError::internal(format!(
            "connector {connector_type} returned properties for profile {name} that are not a \
             ConnectorProfileProperties union: {error}"
        ))
    })?;
    Ok(PreparedProfile {
        properties,
        credentials: Some(prepared.credentials),
    })
}
