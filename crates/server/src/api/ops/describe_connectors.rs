//! `DescribeConnectors`: configurations of the connectors Sluice implements (keyed by
//! connector type) plus the details of registered custom connectors, paginated together.

use std::collections::BTreeMap;

use sluice_api_model::{DescribeConnectorsRequest, DescribeConnectorsResponse};

use crate::api::connectors::{self, Listed};
use crate::error::ApiError;
use crate::pagination::{self, Cursor, MAX_PAGE_SIZE};
use crate::state::AppState;

const OPERATION: &str = "DescribeConnectors";

pub(crate) async fn handle(
    state: &AppState,
    request: DescribeConnectorsRequest,
) -> Result<DescribeConnectorsResponse, ApiError> {
    let page_size = pagination::page_size(request.max_results, MAX_PAGE_SIZE)?;
    let cursor = pagination::decode(OPERATION, request.next_token.as_deref())?;
    let types = request.connector_types.as_deref().filter(|t| !t.is_empty());
    let listed = connectors::list(
        state,
        types,
        cursor.as_ref().map(|c| c.key.as_str()),
        page_size + 1,
    )
    .await?;
    let (listed, next_token) = pagination::finish_page(OPERATION, listed, page_size, |l| Cursor {
        key: l.key(),
        time_micros: None,
    });
    let mut configurations = BTreeMap::new();
    for item in &listed {
        // The map is keyed by connector type; built-in custom connectors (which share the
        // `CustomConnector` type) are reported in `connectors` only.
        if let Listed::Builtin(connector) = item
            && connector.connector_label().is_none()
        {
            configurations.insert(
                connector.connector_type().to_string(),
                connector.configuration(),
            );
        }
    }
    Ok(DescribeConnectorsResponse {
        connector_configurations: Some(configurations),
        connectors: Some(listed.iter().map(Listed::detail).collect()),
        next_token,
    })
}
