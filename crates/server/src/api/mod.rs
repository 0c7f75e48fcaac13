//! Operation dispatch: parse and validate the request, apply idempotency, call the handler.
//!
//! Each operation lives in its own file under `ops/` with the same shape,
//! `handle(state, request) -> Result<response, ApiError>`, so the 25 operations read alike and
//! none of them deals with HTTP. Requests are parsed with the model validator, so a handler
//! only ever sees well-formed input; members bound to the path or query string are validated
//! here with the same validator.

mod common;
mod connectors;
mod flows;
mod ops;

use serde::Serialize;
use sluice_api_model as model;
use sluice_api_model::validate;

use crate::error::ApiError;
use crate::idempotency;
use crate::router::{Operation, Route};
use crate::state::AppState;

pub(crate) use connectors::capabilities;

/// Parses and validates a JSON body against an input shape.
fn parse<T: serde::de::DeserializeOwned>(shape: &str, body: &[u8]) -> Result<T, ApiError> {
    Ok(validate::parse_request::<T>(shape, body)?)
}

/// Serializes a response; `None` members are omitted by the generated types.
fn respond<T: Serialize>(response: T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(response).map_err(ApiError::internal)
}

/// Validates a member bound to the URI or the query string.
fn check_member(shape: &str, member: &str, value: serde_json::Value) -> Result<(), ApiError> {
    Ok(validate::validate_member(shape, member, &value)?)
}

/// A non-idempotent operation.
macro_rules! plain {
    ($state:expr, $body:expr, $request:ident, $module:ident) => {{
        let request: model::$request = parse(stringify!($request), $body)?;
        respond(ops::$module::handle($state, request).await?)
    }};
}

/// An operation with a `clientToken`.
macro_rules! idempotent {
    ($state:expr, $body:expr, $request:ident, $module:ident, $operation:expr) => {{
        let request: model::$request = parse(stringify!($request), $body)?;
        let token = request.client_token.clone();
        let fingerprint = $state.fingerprint.fingerprint(&request)?;
        idempotency::run(
            $state.store.as_ref(),
            &$state.token_locks,
            $operation.name(),
            token.as_deref(),
            fingerprint,
            || async move { respond(ops::$module::handle($state, request).await?) },
        )
        .await
    }};
}

/// Runs the operation `route` names.
pub(crate) async fn dispatch(
    state: &AppState,
    route: &Route,
    body: &[u8],
) -> Result<serde_json::Value, ApiError> {
    use Operation as Op;
    let op = route.operation;
    match op {
        Op::CancelFlowExecutions => {
            plain!(
                state,
                body,
                CancelFlowExecutionsRequest,
                cancel_flow_executions
            )
        }
        Op::CreateConnectorProfile => idempotent!(
            state,
            body,
            CreateConnectorProfileRequest,
            create_connector_profile,
            op
        ),
        Op::CreateFlow => {
            let body = &*flows::canonical_body(body);
            idempotent!(state, body, CreateFlowRequest, create_flow, op)
        }
        Op::DeleteConnectorProfile => {
            plain!(
                state,
                body,
                DeleteConnectorProfileRequest,
                delete_connector_profile
            )
        }
        Op::DeleteFlow => plain!(state, body, DeleteFlowRequest, delete_flow),
        Op::DescribeConnector => plain!(state, body, DescribeConnectorRequest, describe_connector),
        Op::DescribeConnectorEntity => {
            plain!(
                state,
                body,
                DescribeConnectorEntityRequest,
                describe_connector_entity
            )
        }
        Op::DescribeConnectorProfiles => {
            plain!(
                state,
                body,
                DescribeConnectorProfilesRequest,
                describe_connector_profiles
            )
        }
        Op::DescribeConnectors => {
            plain!(state, body, DescribeConnectorsRequest, describe_connectors)
        }
        Op::DescribeFlow => plain!(state, body, DescribeFlowRequest, describe_flow),
        Op::DescribeFlowExecutionRecords => plain!(
            state,
            body,
            DescribeFlowExecutionRecordsRequest,
            describe_flow_execution_records
        ),
        Op::ListConnectorEntities => {
            plain!(
                state,
                body,
                ListConnectorEntitiesRequest,
                list_connector_entities
            )
        }
        Op::ListConnectors => plain!(state, body, ListConnectorsRequest, list_connectors),
        Op::ListFlows => plain!(state, body, ListFlowsRequest, list_flows),
        Op::ListTagsForResource => {
            let resource_arn = route.resource_arn.clone().unwrap_or_default();
            check_member(
                "ListTagsForResourceRequest",
                "resourceArn",
                resource_arn.clone().into(),
            )?;
            let request = model::ListTagsForResourceRequest { resource_arn };
            respond(ops::list_tags_for_resource::handle(state, request).await?)
        }
        Op::RegisterConnector => {
            idempotent!(
                state,
                body,
                RegisterConnectorRequest,
                register_connector,
                op
            )
        }
        Op::ResetConnectorMetadataCache => plain!(
            state,
            body,
            ResetConnectorMetadataCacheRequest,
            reset_connector_metadata_cache
        ),
        Op::StartFlow => idempotent!(state, body, StartFlowRequest, start_flow, op),
        Op::StopFlow => plain!(state, body, StopFlowRequest, stop_flow),
        Op::TagResource => {
            let resource_arn = route.resource_arn.clone().unwrap_or_default();
            check_member(
                "TagResourceRequest",
                "resourceArn",
                resource_arn.clone().into(),
            )?;
            let mut request: model::TagResourceRequest = parse("TagResourceRequest", body)?;
            request.resource_arn = resource_arn;
            respond(ops::tag_resource::handle(state, request).await?)
        }
        Op::UnregisterConnector => {
            plain!(
                state,
                body,
                UnregisterConnectorRequest,
                unregister_connector
            )
        }
        Op::UntagResource => {
            let resource_arn = route.resource_arn.clone().unwrap_or_default();
            check_member(
                "UntagResourceRequest",
                "resourceArn",
                resource_arn.clone().into(),
            )?;
            let tag_keys = if route.tag_keys.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::json!(route.tag_keys)
            };
            check_member("UntagResourceRequest", "tagKeys", tag_keys)?;
            let request = model::UntagResourceRequest {
                resource_arn,
                tag_keys: route.tag_keys.clone(),
            };
            respond(ops::untag_resource::handle(state, request).await?)
        }
        Op::UpdateConnectorProfile => idempotent!(
            state,
            body,
            UpdateConnectorProfileRequest,
            update_connector_profile,
            op
        ),
        Op::UpdateConnectorRegistration => idempotent!(
            state,
            body,
            UpdateConnectorRegistrationRequest,
            update_connector_registration,
            op
        ),
        Op::TriggerFlowWebhook => {
            let flow_name = route.flow_name.as_deref().unwrap_or_default();
            check_member("StartFlowRequest", "flowName", flow_name.into())?;
            respond(ops::trigger_flow_webhook::handle(state, flow_name).await?)
        }
        Op::UpdateFlow => {
            let body = &*flows::canonical_body(body);
            idempotent!(state, body, UpdateFlowRequest, update_flow, op)
        }
    }
}
