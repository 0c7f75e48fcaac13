//! Helpers shared by several operations.

use std::collections::BTreeMap;

use chrono::Utc;
use sluice_api_model::Timestamp;
use sluice_metastore::{FlowRecord, ProfileRecord};

use crate::documents::FlowDocument;
use crate::error::ApiError;
use crate::state::AppState;

/// AppFlow's limit on tags per resource.
pub(crate) const MAX_TAGS: usize = 50;

/// Now, at the millisecond precision timestamps have on the wire.
pub(crate) fn now() -> Timestamp {
    Timestamp::from_millis(Utc::now().timestamp_millis())
}

/// The `Flow X does not exist` error.
pub(crate) fn flow_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("Flow {name} does not exist"))
}

/// Loads a flow or answers `ResourceNotFoundException`.
pub(crate) async fn load_flow(
    state: &AppState,
    name: &str,
) -> Result<(FlowRecord, FlowDocument), ApiError> {
    let record = state
        .store
        .get_flow(name)
        .await?
        .ok_or_else(|| flow_not_found(name))?;
    let document = FlowDocument::from_record(&record)?;
    Ok((record, document))
}

/// Writes a flow document back (the caller holds the flow lock).
pub(crate) async fn save_flow(state: &AppState, document: &FlowDocument) -> Result<(), ApiError> {
    state.store.update_flow(&document.to_record()?).await?;
    Ok(())
}

/// Loads a connector profile or answers `ResourceNotFoundException`.
pub(crate) async fn load_profile(state: &AppState, name: &str) -> Result<ProfileRecord, ApiError> {
    state
        .store
        .get_profile(name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Connector profile {name} does not exist")))
}

/// Checks a tag map against AppFlow's rules beyond the model's per-key patterns: at most 50
/// tags, and no `aws:` prefix (reserved for AWS).
pub(crate) fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::validation(format!(
            "A resource can have at most {MAX_TAGS} tags; this request would leave it with {}",
            tags.len()
        )));
    }
    if let Some(key) = tags
        .keys()
        .find(|k| k.to_ascii_lowercase().starts_with("aws:"))
    {
        return Err(ApiError::validation(format!(
            "Tag key '{key}' is invalid: the 'aws:' prefix is reserved for AWS use"
        )));
    }
    Ok(())
}

/// The flow an ARN names, if it is the ARN of a flow of this server; `ResourceNotFound`
/// otherwise.
pub(crate) async fn flow_by_arn(
    state: &AppState,
    arn: &str,
) -> Result<(FlowRecord, FlowDocument), ApiError> {
    let not_found = || {
        ApiError::not_found(format!(
            "Resource {arn} does not exist: tags are supported on flows of account {} in \
             region {}",
            state.config.account_id, state.config.region
        ))
    };
    let name = arn
        .split_once(":flow/")
        .map(|(_, name)| name)
        .ok_or_else(not_found)?;
    if state.flow_arn(name) != arn {
        return Err(not_found());
    }
    let record = state.store.get_flow(name).await?.ok_or_else(not_found)?;
    let document = FlowDocument::from_record(&record)?;
    Ok((record, document))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_rules() {
        let mut tags: BTreeMap<String, String> = (0..50)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        check_tags(&tags).unwrap();
        tags.insert("one-too-many".into(), "v".into());
        assert!(
            check_tags(&tags)
                .unwrap_err()
                .message
                .contains("at most 50")
        );
        let reserved: BTreeMap<String, String> = [("AWS:x".to_string(), String::new())].into();
        assert!(
            check_tags(&reserved)
                .unwrap_err()
                .message
                .contains("reserved")
        );
        check_tags(&BTreeMap::new()).unwrap();
    }
}
