//! An authenticated Salesforce REST session: bearer tokens from a [`TokenManager`] (renewed on
//! `401 INVALID_SESSION_ID`), retries of `503` and `REQUEST_LIMIT_EXCEEDED` with backoff, the
//! `Sforce-Limit-Info` header watched, and Salesforce error bodies turned into
//! [`ConnectorError`]s that quote Salesforce's `errorCode` and message.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use sluice_connector_api::{ConnectorError, ConnectorErrorKind};
use sluice_connector_http_util::{HttpClient, HttpResponse, OAuth2Error, TokenManager};

/// Usage above this share of the org's daily API limit is logged.
const LIMIT_WARNING_SHARE: f64 = 0.9;

/// One profile's session.
#[derive(Debug)]
pub struct Session {
    http: HttpClient,
    tokens: Arc<TokenManager>,
    instance_url: String,
    api_version: String,
    api_usage: AtomicU64,
}

/// Maps an OAuth failure to the connector error the server reports.
pub fn oauth_error(error: OAuth2Error) -> ConnectorError {
    let kind = if error.is_authentication() {
        ConnectorErrorKind::Authentication
    } else {
        ConnectorErrorKind::Unavailable
    };
    ConnectorError::new(kind, format!("Salesforce: {error}"))
}

fn is_limit_exceeded(response: &HttpResponse) -> bool {
    response.status == StatusCode::FORBIDDEN
        && response
            .body_excerpt(2000)
            .contains("REQUEST_LIMIT_EXCEEDED")
}

/// `errorCode: message` pairs of a Salesforce error body.
pub fn error_text(response: &HttpResponse) -> String {
    let parsed: Option<Vec<Value>> = serde_json::from_slice(&response.body).ok();
    let parts: Vec<String> = parsed
        .unwrap_or_default()
        .iter()
        .map(|e| {
            format!(
                "{}: {}",
                e.get("errorCode")
                    .and_then(Value::as_str)
                    .unwrap_or("UNKNOWN"),
                e.get("message").and_then(Value::as_str).unwrap_or("")
            )
        })
        .collect();
    if parts.is_empty() {
        format!("HTTP {}", response.status.as_u16())
    } else {
        parts.join("; ")
    }
}

impl Session {
    /// A session against `instance_url`.
    pub fn new(
        http: HttpClient,
        tokens: Arc<TokenManager>,
        instance_url: String,
        api_version: String,
    ) -> Self {
        Self {
            http,
            tokens,
            instance_url,
            api_version,
            api_usage: AtomicU64::new(0),
        }
    }

    /// `https://instance/services/data/vXX.X/` + `path`; absolute API paths
    /// (`/services/data/...`, as in `nextRecordsUrl`) are joined to the instance.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("/services/") {
            format!("{}{path}", self.instance_url)
        } else {
            format!(
                "{}/services/data/v{}/{path}",
                self.instance_url, self.api_version
            )
        }
    }

    /// API requests used in the org, per the last `Sforce-Limit-Info`.
    pub fn api_usage(&self) -> u64 {
        self.api_usage.load(Ordering::Relaxed)
    }

    /// Sends a request and returns the successful response; `what` names it in errors.
    pub async fn call(
        &self,
        what: &str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<HttpResponse, ConnectorError> {
        let url = self.url(path);
        let mut token = self.tokens.access_token().await.map_err(oauth_error)?;
        let mut renewed = false;
        loop {
            let bearer = token.expose().clone();
            let response = self
                .http
                .send(
                    what,
                    |client| {
                        let mut request = client
                            .request(method.clone(), &url)
                            .bearer_auth(&bearer)
                            .header("accept", "application/json");
                        if !query.is_empty() {
                            request = request.query(query);
                        }
                        if let Some(body) = body {
                            request = request.json(body);
                        }
                        request
                    },
                    is_limit_exceeded,
                )
                .await
                .map_err(|error| ConnectorError::unavailable(format!("Salesforce: {error}")))?;
            self.watch_limits(&response);
            if response.status == StatusCode::UNAUTHORIZED && !renewed {
                tracing::info!(what, "Salesforce refused the access token; renewing it");
                token = self
                    .tokens
                    .refresh_after_unauthorized(&token)
                    .await
                    .map_err(oauth_error)?;
                renewed = true;
                continue;
            }
            if response.status.is_success() {
                return Ok(response);
            }
            return Err(api_error(what, &response));
        }
    }

    /// `call` for JSON answers.
    pub async fn json(
        &self,
        what: &str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<(Value, u64), ConnectorError> {
        let response = self.call(what, method, path, query, body).await?;
        let bytes = response.body.len() as u64;
        let value = serde_json::from_slice(&response.body).map_err(|error| {
            ConnectorError::bad_data(format!(
                "Salesforce {what}: the answer is not JSON: {error}"
            ))
        })?;
        Ok((value, bytes))
    }

    fn watch_limits(&self, response: &HttpResponse) {
        let Some(info) = response
            .headers
            .get("sforce-limit-info")
            .and_then(|v| v.to_str().ok())
        else {
            return;
        };
        let usage = info
            .split(',')
            .find_map(|part| part.trim().strip_prefix("api-usage="))
            .and_then(|usage| usage.split_once('/'))
            .and_then(|(used, limit)| {
                Some((used.parse::<u64>().ok()?, limit.parse::<u64>().ok()?))
            });
        if let Some((used, limit)) = usage {
            self.api_usage.store(used, Ordering::Relaxed);
            if limit > 0 && used as f64 >= limit as f64 * LIMIT_WARNING_SHARE {
                tracing::warn!(
                    used,
                    limit,
                    "Salesforce org is close to its daily API request limit"
                );
            }
        }
    }
}

fn api_error(what: &str, response: &HttpResponse) -> ConnectorError {
    let text = error_text(response);
    let kind = match response.status.as_u16() {
        401 => ConnectorErrorKind::Authentication,
        403 if text.contains("REQUEST_LIMIT_EXCEEDED") => ConnectorErrorKind::Unavailable,
        403 => ConnectorErrorKind::Authentication,
        404 => ConnectorErrorKind::NotFound,
        400 => ConnectorErrorKind::InvalidConfig,
        _ => ConnectorErrorKind::Unavailable,
    };
    let mut message = format!("Salesforce {what} failed: {text}");
    if kind == ConnectorErrorKind::Authentication {
        message.push_str("; re-authorise the connector profile");
    }
    ConnectorError::new(kind, message)
}
