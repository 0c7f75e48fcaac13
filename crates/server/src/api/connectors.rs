//! Connector lookup shared by the connector and metadata operations.
//!
//! Two kinds of connectors exist: the ones compiled into Sluice (the registry; they really
//! read and write data) and custom connectors registered with `RegisterConnector` (stored,
//! listed and described, but backed by an AWS Lambda function Sluice cannot call).

use std::sync::Arc;

use sluice_api_model as model;
use sluice_connector_api::{Connector, ConnectorRegistry, Profile};
use sluice_domain::{Capabilities, ConnectorCapability, Support};

use crate::api::common::load_profile;
use crate::documents::{ConnectorRegistration, open_profile};
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// The connectors flows may use, as the domain rules see them: exactly what the registry
/// serves, each at the ends its configuration advertises. Connectors the release announces
/// but the registry lacks stay listed as planned, so their rejection says "not yet".
pub(crate) fn capabilities(registry: &dyn ConnectorRegistry) -> Capabilities {
    let mut capabilities = Capabilities::empty();
    for planned in Capabilities::sluice().entries() {
        let downgrade = |support: Option<Support>| support.map(|_| Support::Planned);
        capabilities = capabilities.with(ConnectorCapability {
            as_source: downgrade(planned.as_source),
            as_destination: downgrade(planned.as_destination),
            ..planned.clone()
        });
    }
    for connector in registry.all() {
        let configuration = connector.configuration();
        let support = |usable: Option<bool>| usable.unwrap_or(false).then_some(Support::Enabled);
        capabilities = capabilities.with(ConnectorCapability {
            connector_type: connector.connector_type(),
            label: connector.connector_label().map(str::to_string),
            as_source: support(configuration.can_use_as_source),
            as_destination: support(configuration.can_use_as_destination),
        });
    }
    capabilities
}

/// The message for anything that would need a Lambda-backed connector to run.
pub(crate) fn lambda_unsupported(label: &str) -> ApiError {
    ApiError::new(
        ErrorCode::UnsupportedOperation,
        format!(
            "Custom connector {label} is provisioned as an AWS Lambda function; Sluice cannot \
             invoke Lambda functions, so it cannot read metadata or data through it"
        ),
    )
}

/// A registered connector by label, if any.
pub(crate) async fn registration(
    state: &AppState,
    label: &str,
) -> Result<Option<ConnectorRegistration>, ApiError> {
    match state.store.get_connector(label).await? {
        Some(record) => Ok(Some(ConnectorRegistration::from_record(&record)?)),
        None => Ok(None),
    }
}

/// The connector (and decrypted profile) a metadata request targets: through its profile when
/// one is named, else through `connectorType`.
pub(crate) async fn resolve(
    state: &AppState,
    connector_type: Option<model::ConnectorType>,
    profile_name: Option<&str>,
) -> Result<(Arc<dyn Connector>, Option<Profile>), ApiError> {
    let profile = match profile_name {
        Some(name) => Some(open_profile(
            &load_profile(state, name).await?,
            &state.secrets,
        )?),
        None => None,
    };
    let connector_type = match (connector_type, &profile) {
        (Some(requested), Some(profile)) if requested != profile.connector_type => {
            return Err(ApiError::validation(format!(
                "connectorType {requested} does not match connector profile {} of type {}",
                profile.name, profile.connector_type
            )));
        }
        (_, Some(profile)) => profile.connector_type,
        (Some(requested), None) => requested,
        (None, None) => {
            return Err(ApiError::validation(
                "Either connectorProfileName or connectorType must be specified",
            ));
        }
    };
    let label = profile.as_ref().and_then(|p| p.connector_label.clone());
    match state.registry.get(connector_type, label.as_deref()) {
        Some(connector) => Ok((connector, profile)),
        None => Err(unavailable(state, connector_type, label.as_deref()).await?),
    }
}

/// The error for a connector type (and label) Sluice does not implement.
pub(crate) async fn unavailable(
    state: &AppState,
    connector_type: model::ConnectorType,
    label: Option<&str>,
) -> Result<ApiError, ApiError> {
    if let Some(label) = label {
        if registration(state, label).await?.is_some() {
            return Ok(lambda_unsupported(label));
        }
        return Ok(ApiError::not_found(format!(
            "Connector {connector_type} with label {label} does not exist"
        )));
    }
    Ok(ApiError::not_found(format!(
        "Connector {connector_type} is not available in Sluice"
    )))
}

/// The `ConnectorDetail` of a built-in connector.
pub(crate) fn builtin_detail(connector: &dyn Connector) -> model::ConnectorDetail {
    let configuration = connector.configuration();
    model::ConnectorDetail {
        application_type: None,
        connector_description: configuration.connector_description,
        connector_label: configuration
            .connector_label
            .or_else(|| connector.connector_label().map(str::to_string)),
        connector_modes: configuration.connector_modes,
        connector_name: configuration.connector_name,
        connector_owner: configuration.connector_owner,
        connector_provisioning_type: configuration.connector_provisioning_type,
        connector_type: Some(connector.connector_type()),
        connector_version: configuration.connector_version,
        registered_at: configuration.registered_at,
        registered_by: configuration.registered_by,
        supported_data_transfer_types: configuration.supported_data_transfer_types,
    }
}

/// A connector listed by `DescribeConnectors` / `ListConnectors`, in listing order: built-in
/// connectors first (by type, then label), then registered ones (by label).
pub(crate) enum Listed {
    Builtin(Arc<dyn Connector>),
    Registered(ConnectorRegistration),
}

impl Listed {
    /// The pagination key; sorts built-ins before registrations.
    pub(crate) fn key(&self) -> String {
        match self {
            Self::Builtin(c) => {
                format!(
                    "0:{}:{}",
                    c.connector_type(),
                    c.connector_label().unwrap_or_default()
                )
            }
            Self::Registered(r) => format!("1:{}", r.connector_label),
        }
    }

    pub(crate) fn detail(&self) -> model::ConnectorDetail {
        match self {
            Self::Builtin(c) => builtin_detail(c.as_ref()),
            Self::Registered(r) => r.detail(),
        }
    }
}

/// Every connector after `after` (a [`Listed::key`]), at most `limit` of them.
pub(crate) async fn list(
    state: &AppState,
    types: Option<&[model::ConnectorType]>,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<Listed>, ApiError> {
    let wanted = |t: model::ConnectorType| types.is_none_or(|types| types.contains(&t));
    let mut listed: Vec<Listed> = state
        .registry
        .all()
        .into_iter()
        .filter(|c| wanted(c.connector_type()))
        .map(Listed::Builtin)
        .collect();
    listed.sort_by_key(Listed::key);
    listed.retain(|l| after.is_none_or(|after| l.key().as_str() > after));
    if wanted(model::ConnectorType::CustomConnector) && listed.len() < limit {
        // Registered keys all start with "1:", after every built-in key.
        let store_after = after.and_then(|a| a.strip_prefix("1:"));
        let records = state
            .store
            .list_connectors(store_after, limit - listed.len())
            .await?;
        for record in records {
            listed.push(Listed::Registered(ConnectorRegistration::from_record(
                &record,
            )?));
        }
    }
    listed.truncate(limit);
    Ok(listed)
}
