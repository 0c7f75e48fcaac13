//! restJson1 routing: method + **raw** path -> operation.
//!
//! Twenty-two operations are `POST /<kebab-case-name>`; the three tagging operations share
//! `/tags/{resourceArn}` and differ by method. The ARN label is non-greedy, so SDKs encode the
//! whole ARN, `/` included (`/tags/arn%3Aaws%3A…%3Aflow%2Fmy-flow`): routing happens on the
//! raw path and the single segment is percent-decoded afterwards. Splitting a decoded path on
//! `/` would cut the ARN in two.
//!
//! The route table is the generated `OPERATIONS` list, so paths cannot drift from the model.
//! One route is Sluice's own: `POST /webhooks/flows/{flowName}` starts a run of an active
//! event-triggered flow (see `api::ops::trigger_flow_webhook`); it is signed like every call.

use std::fmt;

use http::Method;
use sluice_api_model::OPERATIONS;

use crate::error::{ApiError, ErrorCode};

/// The 25 AppFlow operations, and Sluice's flow webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Operation {
    CancelFlowExecutions,
    CreateConnectorProfile,
    CreateFlow,
    DeleteConnectorProfile,
    DeleteFlow,
    DescribeConnector,
    DescribeConnectorEntity,
    DescribeConnectorProfiles,
    DescribeConnectors,
    DescribeFlow,
    DescribeFlowExecutionRecords,
    ListConnectorEntities,
    ListConnectors,
    ListFlows,
    ListTagsForResource,
    RegisterConnector,
    ResetConnectorMetadataCache,
    StartFlow,
    StopFlow,
    TagResource,
    UnregisterConnector,
    UntagResource,
    UpdateConnectorProfile,
    UpdateConnectorRegistration,
    UpdateFlow,
    /// `POST /webhooks/flows/{flowName}`: an event for an event-triggered flow.
    TriggerFlowWebhook,
}

impl Operation {
    /// Every AppFlow operation (the webhook is not one).
    pub(crate) const ALL: [Self; 25] = [
        Self::CancelFlowExecutions,
        Self::CreateConnectorProfile,
        Self::CreateFlow,
        Self::DeleteConnectorProfile,
        Self::DeleteFlow,
        Self::DescribeConnector,
        Self::DescribeConnectorEntity,
        Self::DescribeConnectorProfiles,
        Self::DescribeConnectors,
        Self::DescribeFlow,
        Self::DescribeFlowExecutionRecords,
        Self::ListConnectorEntities,
        Self::ListConnectors,
        Self::ListFlows,
        Self::ListTagsForResource,
        Self::RegisterConnector,
        Self::ResetConnectorMetadataCache,
        Self::StartFlow,
        Self::StopFlow,
        Self::TagResource,
        Self::UnregisterConnector,
        Self::UntagResource,
        Self::UpdateConnectorProfile,
        Self::UpdateConnectorRegistration,
        Self::UpdateFlow,
    ];

    /// The operation name, as in the model and in audit entries.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::CancelFlowExecutions => "CancelFlowExecutions",
            Self::CreateConnectorProfile => "CreateConnectorProfile",
            Self::CreateFlow => "CreateFlow",
            Self::DeleteConnectorProfile => "DeleteConnectorProfile",
            Self::DeleteFlow => "DeleteFlow",
            Self::DescribeConnector => "DescribeConnector",
            Self::DescribeConnectorEntity => "DescribeConnectorEntity",
            Self::DescribeConnectorProfiles => "DescribeConnectorProfiles",
            Self::DescribeConnectors => "DescribeConnectors",
            Self::DescribeFlow => "DescribeFlow",
            Self::DescribeFlowExecutionRecords => "DescribeFlowExecutionRecords",
            Self::ListConnectorEntities => "ListConnectorEntities",
            Self::ListConnectors => "ListConnectors",
            Self::ListFlows => "ListFlows",
            Self::ListTagsForResource => "ListTagsForResource",
            Self::RegisterConnector => "RegisterConnector",
            Self::ResetConnectorMetadataCache => "ResetConnectorMetadataCache",
            Self::StartFlow => "StartFlow",
            Self::StopFlow => "StopFlow",
            Self::TagResource => "TagResource",
            Self::UnregisterConnector => "UnregisterConnector",
            Self::UntagResource => "UntagResource",
            Self::UpdateConnectorProfile => "UpdateConnectorProfile",
            Self::UpdateConnectorRegistration => "UpdateConnectorRegistration",
            Self::UpdateFlow => "UpdateFlow",
            Self::TriggerFlowWebhook => "TriggerFlowWebhook",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A routed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    /// The operation.
    pub operation: Operation,
    /// The decoded `{resourceArn}` label of the tagging operations.
    pub resource_arn: Option<String>,
    /// The `tagKeys` query parameters (UntagResource), decoded, in request order.
    pub tag_keys: Vec<String>,
    /// The decoded `{flowName}` label of the flow webhook.
    pub flow_name: Option<String>,
}

const TAGS_PREFIX: &str = "/tags/";
const WEBHOOK_PREFIX: &str = "/webhooks/flows/";

/// Routes a request from its method, raw path and raw query string.
///
/// # Errors
/// `UnknownOperationException` (404) when nothing matches; `ValidationException` when the ARN
/// label is empty or does not decode to UTF-8.
pub(crate) fn route(
    method: &Method,
    raw_path: &str,
    raw_query: Option<&str>,
) -> Result<Route, ApiError> {
    if let Some(label) = raw_path.strip_prefix(TAGS_PREFIX) {
        let operation = match *method {
            Method::GET => Operation::ListTagsForResource,
            Method::POST => Operation::TagResource,
            Method::DELETE => Operation::UntagResource,
            _ => return Err(unknown(method, raw_path)),
        };
        // SDKs send one encoded segment; a hand-written client may leave the ARN's `/` raw.
        // Both decode to the same ARN, and no other route lives under /tags/.
        let resource_arn = decode_component(label, "resourceArn")?;
        if resource_arn.is_empty() {
            return Err(ApiError::validation(
                "1 validation error detected: Value null at 'resourceArn' failed to satisfy \
                 constraint: Member must not be null",
            ));
        }
        let tag_keys = if operation == Operation::UntagResource {
            query_values(raw_query, "tagKeys")?
        } else {
            Vec::new()
        };
        return Ok(Route {
            operation,
            resource_arn: Some(resource_arn),
            tag_keys,
            flow_name: None,
        });
    }
    if let Some(label) = raw_path.strip_prefix(WEBHOOK_PREFIX) {
        if *method != Method::POST {
            return Err(unknown(method, raw_path));
        }
        let flow_name = decode_component(label, "flowName")?;
        if flow_name.is_empty() || flow_name.contains('/') {
            return Err(ApiError::validation(
                "The webhook path must be /webhooks/flows/{flowName} with a non-empty flow name",
            ));
        }
        return Ok(Route {
            operation: Operation::TriggerFlowWebhook,
            resource_arn: None,
            tag_keys: Vec::new(),
            flow_name: Some(flow_name),
        });
    }
    let spec = OPERATIONS
        .iter()
        .find(|spec| spec.uri == raw_path && spec.method == method.as_str())
        .ok_or_else(|| unknown(method, raw_path))?;
    let operation = Operation::from_name(spec.name).ok_or_else(|| unknown(method, raw_path))?;
    Ok(Route {
        operation,
        resource_arn: None,
        tag_keys: Vec::new(),
        flow_name: None,
    })
}

fn unknown(method: &Method, raw_path: &str) -> ApiError {
    // The path is echoed back, so cap it: it is attacker-controlled.
    let shown: String = raw_path.chars().take(200).collect();
    ApiError::new(
        ErrorCode::UnknownOperation,
        format!("No AppFlow operation is bound to {method} {shown}"),
    )
}

/// Percent-decodes one URI component to UTF-8.
fn decode_component(raw: &str, field: &str) -> Result<String, ApiError> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::validation(format!("{field} is not valid percent-encoded UTF-8")))
}

/// Every value of `name` in a raw query string, decoded, in order.
fn query_values(raw_query: Option<&str>, name: &str) -> Result<Vec<String>, ApiError> {
    let Some(raw_query) = raw_query else {
        return Ok(Vec::new());
    };
    let mut values = Vec::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if decode_component(key, "query parameter name")? == name {
            values.push(decode_component(value, name)?);
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_post_operation_routes() {
        for spec in OPERATIONS.iter().filter(|s| !s.uri.contains('{')) {
            let route = route(&Method::POST, spec.uri, None).unwrap();
            assert_eq!(route.operation.name(), spec.name);
            assert_eq!(route.resource_arn, None);
        }
        assert_eq!(OPERATIONS.len(), Operation::ALL.len());
    }

    #[test]
    fn tag_routes_decode_the_whole_arn() {
        let path = "/tags/arn%3Aaws%3Aappflow%3Aus-east-1%3A123456789012%3Aflow%2Fmy-flow";
        let arn = "arn:aws:appflow:us-east-1:123456789012:flow/my-flow";
        let list = route(&Method::GET, path, None).unwrap();
        assert_eq!(list.operation, Operation::ListTagsForResource);
        assert_eq!(list.resource_arn.as_deref(), Some(arn));
        let tag = route(&Method::POST, path, None).unwrap();
        assert_eq!(tag.operation, Operation::TagResource);
        let untag = route(
            &Method::DELETE,
            path,
            Some("tagKeys=a&tagKeys=b%20c&other=x"),
        )
        .unwrap();
        assert_eq!(untag.operation, Operation::UntagResource);
        assert_eq!(untag.resource_arn.as_deref(), Some(arn));
        assert_eq!(untag.tag_keys, vec!["a", "b c"]);
        // An unencoded ARN (curl) decodes to the same value.
        let raw = route(&Method::GET, &format!("/tags/{arn}"), None).unwrap();
        assert_eq!(raw.resource_arn.as_deref(), Some(arn));
        // Unicode in a flow name survives.
        let unicode = route(&Method::GET, "/tags/arn%3Aflow%2Fcaf%C3%A9", None).unwrap();
        assert_eq!(unicode.resource_arn.as_deref(), Some("arn:flow/café"));
    }

    #[test]
    fn unknown_routes_are_404() {
        for (method, path) in [
            (Method::GET, "/create-flow"),
            (Method::POST, "/create-flows"),
            (Method::POST, "/"),
            (Method::POST, "/create-flow/"),
            (Method::PUT, "/tags/arn"),
            (Method::POST, "/CreateFlow"),
        ] {
            let error = route(&method, path, None).unwrap_err();
            assert_eq!(error.code, ErrorCode::UnknownOperation, "{method} {path}");
            assert_eq!(error.code.status(), 404);
        }
    }

    #[test]
    fn bad_arn_labels_are_validation_errors() {
        let empty = route(&Method::GET, "/tags/", None).unwrap_err();
        assert_eq!(empty.code, ErrorCode::Validation);
        let not_utf8 = route(&Method::GET, "/tags/%FF%FE", None).unwrap_err();
        assert_eq!(not_utf8.code, ErrorCode::Validation);
        let bad_query = route(&Method::DELETE, "/tags/arn", Some("tagKeys=%FF")).unwrap_err();
        assert_eq!(bad_query.code, ErrorCode::Validation);
    }
}
