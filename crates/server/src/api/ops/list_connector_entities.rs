//! `ListConnectorEntities`: the connector's entities, grouped, paginated across groups.

use std::collections::BTreeMap;

use sluice_api_model::{
    ConnectorEntity, ListConnectorEntitiesRequest, ListConnectorEntitiesResponse,
};
use sluice_connector_api::EntityContext;

use crate::api::connectors::resolve;
use crate::error::{ApiError, connector_error};
use crate::pagination::{self, Cursor, MAX_ENTITY_PAGE_SIZE};
use crate::state::AppState;

const OPERATION: &str = "ListConnectorEntities";

pub(crate) async fn handle(
    state: &AppState,
    request: ListConnectorEntitiesRequest,
) -> Result<ListConnectorEntitiesResponse, ApiError> {
    let page_size = pagination::page_size(request.max_results, MAX_ENTITY_PAGE_SIZE)?;
    // The listing is recomputed on every call, so the cursor is an offset into it.
    let offset = match pagination::decode(OPERATION, request.next_token.as_deref())? {
        Some(cursor) => cursor
            .key
            .parse::<usize>()
            .map_err(|_| ApiError::validation("Invalid nextToken for ListConnectorEntities"))?,
        None => 0,
    };
    let (connector, profile) = resolve(
        state,
        request.connector_type,
        request.connector_profile_name.as_deref(),
    )
    .await?;
    let context = EntityContext {
        profile,
        entities_path: request.entities_path.clone(),
    };
    let listing = connector
        .list_entities(&context)
        .await
        .map_err(|error| connector_error(connector.connector_type().as_str(), error))?;
    let flattened: Vec<(String, ConnectorEntity)> = listing
        .into_iter()
        .flat_map(|(group, entities)| entities.into_iter().map(move |e| (group.clone(), e)))
        .collect();
    let total = flattened.len();
    let mut map: BTreeMap<String, Vec<ConnectorEntity>> = BTreeMap::new();
    for (group, entity) in flattened.into_iter().skip(offset).take(page_size) {
        map.entry(group).or_default().push(entity);
    }
    let end = offset.saturating_add(page_size);
    let next_token = (end < total).then(|| {
        pagination::encode(
            OPERATION,
            Cursor {
                key: end.to_string(),
                time_micros: None,
            },
        )
    });
    Ok(ListConnectorEntitiesResponse {
        connector_entity_map: map,
        next_token,
    })
}
