//! `ListConnectors`: details of the connectors Sluice implements and of registered custom
//! connectors, paginated.

use sluice_api_model::{ListConnectorsRequest, ListConnectorsResponse};

use crate::api::connectors::{self, Listed};
use crate::error::ApiError;
use crate::pagination::{self, Cursor, MAX_PAGE_SIZE};
use crate::state::AppState;

const OPERATION: &str = "ListConnectors";

pub(crate) async fn handle(
    state: &AppState,
    request: ListConnectorsRequest,
) -> Result<ListConnectorsResponse, ApiError> {
    let page_size = pagination::page_size(request.max_results, MAX_PAGE_SIZE)?;
    let cursor = pagination::decode(OPERATION, request.next_token.as_deref())?;
    let listed = connectors::list(
        state,
        None,
        cursor.as_ref().map(|c| c.key.as_str()),
        page_size + 1,
    )
    .await?;
    let (listed, next_token) = pagination::finish_page(OPERATION, listed, page_size, |l| Cursor {
        key: l.key(),
        time_micros: None,
    });
    Ok(ListConnectorsResponse {
        connectors: Some(listed.iter().map(Listed::detail).collect()),
        next_token,
    })
}
