//! One module per AppFlow operation, each with
//! `pub(crate) async fn handle(state: &AppState, request: XRequest) -> Result<XResponse, ApiError>`,
//! plus Sluice's flow webhook (`trigger_flow_webhook`).

pub(crate) mod cancel_flow_executions;
pub(crate) mod create_connector_profile;
pub(crate) mod create_flow;
pub(crate) mod delete_connector_profile;
pub(crate) mod delete_flow;
pub(crate) mod describe_connector;
pub(crate) mod describe_connector_entity;
pub(crate) mod describe_connector_profiles;
pub(crate) mod describe_connectors;
pub(crate) mod describe_flow;
pub(crate) mod describe_flow_execution_records;
pub(crate) mod list_connector_entities;
pub(crate) mod list_connectors;
pub(crate) mod list_flows;
pub(crate) mod list_tags_for_resource;
pub(crate) mod register_connector;
pub(crate) mod reset_connector_metadata_cache;
pub(crate) mod start_flow;
pub(crate) mod stop_flow;
pub(crate) mod tag_resource;
pub(crate) mod trigger_flow_webhook;
pub(crate) mod unregister_connector;
pub(crate) mod untag_resource;
pub(crate) mod update_connector_profile;
pub(crate) mod update_connector_registration;
pub(crate) mod update_flow;
