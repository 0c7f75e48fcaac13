//! `DescribeConnectorProfiles`: profiles filtered by names, type and label, ordered by name,
//! paginated. No match is an empty list, not an error. Credentials are never returned.

use sluice_api_model::{
    ConnectorProfile, DescribeConnectorProfilesRequest, DescribeConnectorProfilesResponse,
};

use crate::documents::profile_document;
use crate::error::ApiError;
use crate::pagination::{self, Cursor, MAX_PAGE_SIZE};
use crate::state::AppState;

const OPERATION: &str = "DescribeConnectorProfiles";

/// Profiles fetched per metadata-store page while filtering.
const SCAN_PAGE: usize = 200;

pub(crate) async fn handle(
    state: &AppState,
    request: DescribeConnectorProfilesRequest,
) -> Result<DescribeConnectorProfilesResponse, ApiError> {
    let page_size = pagination::page_size(request.max_results, MAX_PAGE_SIZE)?;
    let mut after = pagination::decode(OPERATION, request.next_token.as_deref())?.map(|c| c.key);
    let names = request.connector_profile_names.as_deref();
    let matches = |record: &sluice_metastore::ProfileRecord| {
        names.is_none_or(|names| names.is_empty() || names.contains(&record.name))
            && request
                .connector_type
                .is_none_or(|t| t.as_str() == record.connector_type)
            && request
                .connector_label
                .as_deref()
                .is_none_or(|label| record.connector_label.as_deref() == Some(label))
    };
    // Collect one more match than the page holds, to know whether a next page exists.
    let mut found = Vec::new();
    loop {
        let records = state
            .store
            .list_profiles(after.as_deref(), SCAN_PAGE)
            .await?;
        let exhausted = records.len() < SCAN_PAGE;
        after = records.last().map(|r| r.name.clone());
        found.extend(records.into_iter().filter(|r| matches(r)));
        if exhausted || found.len() > page_size {
            break;
        }
    }
    let (records, next_token) = pagination::finish_page(OPERATION, found, page_size, |r| Cursor {
        key: r.name.clone(),
        time_micros: None,
    });
    let details = records
        .iter()
        .map(profile_document)
        .collect::<Result<Vec<ConnectorProfile>, _>>()?;
    Ok(DescribeConnectorProfilesResponse {
        connector_profile_details: Some(details),
        next_token,
    })
}
