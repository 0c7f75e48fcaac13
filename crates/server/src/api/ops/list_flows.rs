//! `ListFlows`: flows ordered by name, paginated.

use sluice_api_model::{ListFlowsRequest, ListFlowsResponse};

use crate::documents::FlowDocument;
use crate::error::ApiError;
use crate::pagination::{self, Cursor, MAX_PAGE_SIZE};
use crate::state::AppState;

const OPERATION: &str = "ListFlows";

pub(crate) async fn handle(
    state: &AppState,
    request: ListFlowsRequest,
) -> Result<ListFlowsResponse, ApiError> {
    let page_size = pagination::page_size(request.max_results, MAX_PAGE_SIZE)?;
    let cursor = pagination::decode(OPERATION, request.next_token.as_deref())?;
    let records = state
        .store
        .list_flows(cursor.as_ref().map(|c| c.key.as_str()), page_size + 1)
        .await?;
    let (records, next_token) =
        pagination::finish_page(OPERATION, records, page_size, |r| Cursor {
            key: r.name.clone(),
            time_micros: None,
        });
    let flows = records
        .iter()
        .map(|record| FlowDocument::from_record(record).map(|d| d.definition()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ListFlowsResponse {
        flows: Some(flows),
        next_token,
    })
}
