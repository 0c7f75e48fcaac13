//! The audit log: one append-only entry per API call, CloudTrail-style (`appflow-spec.md`
//! §D.3).
//!
//! Entries hold the caller (access key, source IP, user agent), the outcome (status, error
//! code), the resource and the request parameters with every credential removed. Responses
//! are not logged, as in CloudTrail, because some contain material derived from secrets.
//!
//! Writing an entry is best effort: a failing audit write is logged but does not turn a
//! successful call into an error.

use chrono::{DateTime, Utc};
use sluice_metastore::{AuditEntry, MetadataStore};

use crate::router::Route;

/// Replaces every value that is or may contain a credential.
const REDACTED: &str = "**REDACTED**";

/// Members whose whole subtree is credentials.
const CREDENTIAL_SUBTREES: &[&str] = &["connectorProfileCredentials"];

/// Credential member names found anywhere in the AppFlow model (profile credentials, OAuth
/// requests, custom auth maps). Matched case-insensitively, as defence in depth: the subtree
/// rule above already covers them in today's operations.
const CREDENTIAL_MEMBERS: &[&str] = &[
    "password",
    "secretkey",
    "secretaccesskey",
    "clientsecret",
    "accesstoken",
    "refreshtoken",
    "apikey",
    "apisecretkey",
    "apitoken",
    "applicationkey",
    "privatekey",
    "jwttoken",
    "authcode",
    "codeverifier",
    "credentialsmap",
    "datakey",
    "basicauthcredentials",
    "oauthcredentials",
    "oauth2credentials",
];

/// Returns `params` with every credential member replaced by `**REDACTED**`.
pub(crate) fn redact(mut params: serde_json::Value) -> serde_json::Value {
    redact_in_place(&mut params);
    params
}

fn redact_in_place(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, member) in map.iter_mut() {
                let lower = key.to_ascii_lowercase();
                if CREDENTIAL_SUBTREES.contains(&key.as_str())
                    || CREDENTIAL_MEMBERS.contains(&lower.as_str())
                {
                    *member = serde_json::Value::String(REDACTED.to_string());
                } else {
                    redact_in_place(member);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_in_place),
        _ => {}
    }
}

/// The audit view of a request's parameters: the JSON body (redacted) plus the members bound
/// to the path and query string. A body that is not JSON is recorded as its size only.
pub(crate) fn request_parameters(route: Option<&Route>, body: &[u8]) -> serde_json::Value {
    let mut params = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(value @ serde_json::Value::Object(_)) => redact(value),
            _ => serde_json::json!({ "unparsedBodyBytes": body.len() }),
        }
    };
    if let (Some(route), serde_json::Value::Object(map)) = (route, &mut params) {
        if let Some(arn) = &route.resource_arn {
            map.insert("resourceArn".into(), serde_json::Value::String(arn.clone()));
        }
        if !route.tag_keys.is_empty() {
            map.insert("tagKeys".into(), serde_json::json!(route.tag_keys));
        }
        if let Some(flow_name) = &route.flow_name {
            map.insert("flowName".into(), serde_json::json!(flow_name));
        }
    }
    params
}

/// The resource a request acts on, for the audit entry's `resource` column.
pub(crate) fn resource_of(route: Option<&Route>, params: &serde_json::Value) -> Option<String> {
    if let Some(arn) = route.and_then(|r| r.resource_arn.clone()) {
        return Some(arn);
    }
    [
        "flowName",
        "connectorProfileName",
        "connectorLabel",
        "connectorEntityName",
    ]
    .iter()
    .find_map(|member| {
        params
            .get(*member)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    })
}

/// What the audit writer needs to know about one call.
#[derive(Debug)]
pub(crate) struct CallRecord {
    pub time: DateTime<Utc>,
    pub request_id: String,
    pub operation: String,
    pub access_key_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub status: u16,
    pub error_code: Option<String>,
    pub resource: Option<String>,
    pub request_parameters: serde_json::Value,
}

/// Appends one entry; failures are logged, not returned.
pub(crate) async fn append(store: &dyn MetadataStore, call: CallRecord) {
    let entry = AuditEntry {
        time: call.time,
        request_id: call.request_id,
        operation: call.operation,
        access_key_id: call.access_key_id,
        source_ip: call.source_ip,
        user_agent: call.user_agent,
        status: call.status,
        error_code: call.error_code,
        resource: call.resource,
        request_parameters: call.request_parameters,
    };
    if let Err(error) = store.append_audit(&entry).await {
        tracing::warn!(%error, request_id = %entry.request_id, "cannot append to the audit log");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::Operation;
    use serde_json::json;

    #[test]
    fn credentials_are_removed_everywhere() {
        let body = json!({
            "connectorProfileName": "p",
            "connectorProfileConfig": {
                "connectorProfileProperties": {"Salesforce": {"instanceUrl": "https://x"}},
                "connectorProfileCredentials": {"Salesforce": {"accessToken": "secret-1"}}
            },
            "nested": [{"Password": "secret-2", "ok": 1}],
            "clientSecret": "secret-3"
        });
        let redacted = redact(body);
        let text = redacted.to_string();
        for secret in ["secret-1", "secret-2", "secret-3"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(
            redacted["connectorProfileConfig"]["connectorProfileProperties"]["Salesforce"]["instanceUrl"],
            "https://x"
        );
        assert_eq!(redacted["nested"][0]["ok"], 1);
    }

    #[test]
    fn parameters_include_path_and_query_members() {
        let route = Route {
            operation: Operation::UntagResource,
            resource_arn: Some("arn:aws:appflow:us-east-1:000000000000:flow/f".into()),
            tag_keys: vec!["a".into(), "b".into()],
            flow_name: None,
        };
        let params = request_parameters(Some(&route), b"");
        assert_eq!(
            params,
            json!({
                "resourceArn": "arn:aws:appflow:us-east-1:000000000000:flow/f",
                "tagKeys": ["a", "b"]
            })
        );
        assert_eq!(
            resource_of(Some(&route), &params).as_deref(),
            Some("arn:aws:appflow:us-east-1:000000000000:flow/f")
        );
    }

    #[test]
    fn unparsable_bodies_are_recorded_by_size() {
        assert_eq!(
            request_parameters(None, b"{not json"),
            json!({"unparsedBodyBytes": 9})
        );
        assert_eq!(
            request_parameters(None, b"[1]"),
            json!({"unparsedBodyBytes": 3})
        );
        let params = request_parameters(None, br#"{"flowName": "f"}"#);
        assert_eq!(resource_of(None, &params).as_deref(), Some("f"));
    }
}
