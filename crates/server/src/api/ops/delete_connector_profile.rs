//! `DeleteConnectorProfile`: refused while flows use the profile unless `forceDelete`; those
//! flows then fail at run time until they name another profile.

use sluice_api_model::{DeleteConnectorProfileRequest, DeleteConnectorProfileResponse};

use crate::api::common::load_profile;
use crate::documents::FlowDocument;
use crate::error::ApiError;
use crate::state::AppState;

/// Flows fetched per metadata-store page while looking for users of the profile.
const SCAN_PAGE: usize = 200;

pub(crate) async fn handle(
    state: &AppState,
    request: DeleteConnectorProfileRequest,
) -> Result<DeleteConnectorProfileResponse, ApiError> {
    let name = &request.connector_profile_name;
    load_profile(state, name).await?;
    if !request.force_delete.unwrap_or(false) {
        let users = flows_using(state, name).await?;
        if !users.is_empty() {
            return Err(ApiError::conflict(format!(
                "Connector profile {name} is used by flow(s) {}; delete or update them first, \
                 or set forceDelete",
                users.join(", ")
            )));
        }
    }
    let deleted = {
        let _guard = state.profile_lock.lock().await;
        state.store.delete_profile(name).await?
    };
    if !deleted {
        return Err(ApiError::not_found(format!(
            "Connector profile {name} does not exist"
        )));
    }
    tracing::info!(connector_profile_name = %name, "connector profile deleted");
    Ok(DeleteConnectorProfileResponse {})
}

/// Names of the flows that reference `profile`.
async fn flows_using(
    state: &crate::state::AppState,
    profile: &str,
) -> Result<Vec<String>, ApiError> {
    let mut users = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = state.store.list_flows(after.as_deref(), SCAN_PAGE).await?;
        for record in &page {
            let document = FlowDocument::from_record(record)?;
            if document.profile_names().contains(&profile) {
                users.push(record.name.clone());
            }
        }
        if page.len() < SCAN_PAGE {
            return Ok(users);
        }
        after = page.last().map(|r| r.name.clone());
    }
}
