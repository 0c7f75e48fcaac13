//! `DescribeFlowExecutionRecords`: a flow's runs, newest first, paginated.

use sluice_api_model::{DescribeFlowExecutionRecordsRequest, DescribeFlowExecutionRecordsResponse};

use crate::api::common::load_flow;
use crate::documents::run_document;
use crate::error::ApiError;
use crate::pagination::{self, Cursor, MAX_PAGE_SIZE};
use crate::state::AppState;

const OPERATION: &str = "DescribeFlowExecutionRecords";

pub(crate) async fn handle(
    state: &AppState,
    request: DescribeFlowExecutionRecordsRequest,
) -> Result<DescribeFlowExecutionRecordsResponse, ApiError> {
    load_flow(state, &request.flow_name).await?;
    let page_size = pagination::page_size(request.max_results, MAX_PAGE_SIZE)?;
    let before = match pagination::decode(OPERATION, request.next_token.as_deref())? {
        Some(Cursor {
            key,
            time_micros: Some(micros),
        }) => {
            let time = chrono::DateTime::from_timestamp_micros(micros).ok_or_else(|| {
                ApiError::validation("Invalid nextToken for DescribeFlowExecutionRecords")
            })?;
            Some((time, key))
        }
        Some(_) => {
            return Err(ApiError::validation(
                "Invalid nextToken for DescribeFlowExecutionRecords",
            ));
        }
        None => None,
    };
    let records = state
        .store
        .list_runs(&request.flow_name, before, page_size + 1)
        .await?;
    let (records, next_token) =
        pagination::finish_page(OPERATION, records, page_size, |r| Cursor {
            key: r.execution_id.clone(),
            time_micros: Some(r.started_at.timestamp_micros()),
        });
    let flow_executions = records
        .iter()
        .map(run_document)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DescribeFlowExecutionRecordsResponse {
        flow_executions: Some(flow_executions),
        next_token,
    })
}
