//! `CreateConnectorProfile`: checks and stores a connector profile.
//!
//! When Sluice implements the connector, the connector prepares the profile first: it checks
//! the credentials (a refusal is `ConnectorAuthenticationException`) and exchanges one-time
//! grants, so for an OAuth authorization code the resulting tokens are stored, never the code.
//! Profiles for connectors Sluice does not implement are stored as configuration only: flows
//! that use them are rejected by `CreateFlow`. Credentials are sealed with the data directory's
//! key, bound to the profile ARN, and never returned or logged.

use sluice_api_model::{
    ConnectorProfile, CreateConnectorProfileRequest, CreateConnectorProfileResponse,
};
use sluice_metastore::{ProfileRecord, StoreError};

use crate::api::common::now;
use crate::api::ops::update_connector_profile::{
    credentials_arn, credentials_value, prepare_with_connector, target_connector,
};
use crate::documents::{profile_value, seal_json};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) async fn handle(
    state: &AppState,
    request: CreateConnectorProfileRequest,
) -> Result<CreateConnectorProfileResponse, ApiError> {
    sluice_domain::validate_connector_profile(&request)?;
    let name = request.connector_profile_name.clone();
    if state.store.get_profile(&name).await?.is_some() {
        return Err(already_exists(&name));
    }
    let arn = state.profile_arn(&name);
    let config = &request.connector_profile_config;
    let connector = target_connector(
        state,
        request.connector_type,
        request.connector_label.as_deref(),
    )
    .await?;
    let prepared = prepare_with_connector(
        connector.as_deref(),
        &name,
        request.connector_type,
        request.connector_label.as_deref(),
        &config.connector_profile_properties,
        credentials_value(config.connector_profile_credentials.as_ref())?,
    )
    .await?;
    let sealed = match &prepared.credentials {
        Some(credentials) => seal_json(credentials, &arn, &state.secrets)?,
        None => Vec::new(),
    };
    let created = now();
    let document = ConnectorProfile {
        connection_mode: Some(request.connection_mode),
        connector_label: request.connector_label.clone(),
        connector_profile_arn: Some(arn.clone()),
        connector_profile_name: Some(name.clone()),
        connector_profile_properties: Some(prepared.properties),
        connector_type: Some(request.connector_type),
        created_at: Some(created),
        credentials_arn: Some(credentials_arn(state, &name)),
        last_updated_at: Some(created),
        private_connection_provisioning_state: None,
    };
    let record = ProfileRecord {
        name: name.clone(),
        arn: arn.clone(),
        connector_type: request.connector_type.as_str().to_string(),
        connector_label: request.connector_label,
        document: profile_value(&document)?,
        sealed_credentials: sealed,
        created_at: created.0,
        updated_at: created.0,
    };
    {
        let _guard = state.profile_lock.lock().await;
        state
            .store
            .insert_profile(&record)
            .await
            .map_err(|error| match error {
                StoreError::AlreadyExists { .. } => already_exists(&name),
                other => other.into(),
            })?;
    }
    tracing::info!(connector_profile_name = %name, connector_type = %request.connector_type, "connector profile created");
    Ok(CreateConnectorProfileResponse {
        connector_profile_arn: Some(arn),
    })
}

fn already_exists(name: &str) -> ApiError {
    ApiError::conflict(format!("Connector profile {name} already exists"))
}
