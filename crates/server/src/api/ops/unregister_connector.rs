//! `UnregisterConnector`: refused while connector profiles use the connector unless
//! `forceDelete`; such profiles are kept and stop working.

use sluice_api_model::{ConnectorType, UnregisterConnectorRequest, UnregisterConnectorResponse};

use crate::error::ApiError;
use crate::state::AppState;

/// Profiles fetched per metadata-store page while looking for users of the connector.
const SCAN_PAGE: usize = 200;

pub(crate) async fn handle(
    state: &AppState,
    request: UnregisterConnectorRequest,
) -> Result<UnregisterConnectorResponse, ApiError> {
    let label = &request.connector_label;
    let not_found = || ApiError::not_found(format!("Connector {label} is not registered"));
    state
        .store
        .get_connector(label)
        .await?
        .ok_or_else(not_found)?;
    if !request.force_delete.unwrap_or(false) {
        let users = profiles_using(state, label).await?;
        if !users.is_empty() {
            return Err(ApiError::conflict(format!(
                "Connector {label} is used by connector profile(s) {}; delete them first, or \
                 set forceDelete",
                users.join(", ")
            )));
        }
    }
    if !state.store.delete_connector(label).await? {
        return Err(not_found());
    }
    tracing::info!(connector_label = %label, "connector unregistered");
    Ok(UnregisterConnectorResponse {})
}

async fn profiles_using(state: &AppState, label: &str) -> Result<Vec<String>, ApiError> {
    let mut users = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = state
            .store
            .list_profiles(after.as_deref(), SCAN_PAGE)
            .await?;
        users.extend(
            page.iter()
                .filter(|p| {
                    p.connector_type == ConnectorType::CustomConnector.as_str()
                        && p.connector_label.as_deref() == Some(label)
                })
                .map(|p| p.name.clone()),
        );
        if page.len() < SCAN_PAGE {
            return Ok(users);
        }
        after = page.last().map(|p| p.name.clone());
    }
}
