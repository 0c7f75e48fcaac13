//! The HTTP entry point: one handler for every request.
//!
//! For each request: assign a request id, read the body (bounded), route on the raw path,
//! authenticate (SigV4), dispatch to the operation, then write the response with AppFlow's
//! headers, log one line and append one audit entry. A single fallback handler, rather than
//! an axum route per operation, keeps the raw request line intact for the signature and lets
//! every failure, including unknown routes, share the same response shape.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use http::{HeaderValue, StatusCode, header};
use tracing::Instrument as _;

use crate::api;
use crate::audit::{self, CallRecord};
use crate::auth;
use crate::error::{ApiError, ErrorCode};
use crate::router::{self, Route};
use crate::sigv4::RequestParts;
use crate::state::{AppState, Services};

/// The response header carrying the request id (`x-amzn-RequestId`; HTTP header names are
/// case-insensitive and `http` stores them lowercased).
pub(crate) const REQUEST_ID_HEADER: &str = "x-amzn-requestid";

/// The response header carrying the error code (`x-amzn-ErrorType`).
pub(crate) const ERROR_TYPE_HEADER: &str = "x-amzn-errortype";

/// The axum handler for every method and path.
pub(crate) async fn handle(
    State(services): State<Arc<Services>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        operation = tracing::field::Empty,
    );
    process(services, peer, request, request_id)
        .instrument(span)
        .await
}

async fn process(
    services: Arc<Services>,
    peer: SocketAddr,
    request: Request,
    request_id: String,
) -> Response {
    let started = Instant::now();
    let time = Utc::now();
    let (parts, body) = request.into_parts();
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(512).collect::<String>());

    // Routing is pure, so it is done up front: the audit entry and the log line name the
    // operation even when authentication fails. An unknown route is answered before
    // authentication: the routes are AppFlow's public API, so nothing is revealed.
    let routed = router::route(&parts.method, parts.uri.path(), parts.uri.query());
    let route: Option<Route> = routed.as_ref().ok().cloned();
    let operation = route.as_ref().map_or("Unknown", |r| r.operation.name());
    tracing::Span::current().record("operation", operation);
    let mut access_key_id = auth::claimed_access_key(&parts.headers);
    let mut body_bytes = Bytes::new();
    let result = async {
        body_bytes = read_body(&parts.headers, body, services.config.body_limit).await?;
        let request_parts = RequestParts {
            method: parts.method.as_str(),
            raw_path: parts.uri.path(),
            raw_query: parts.uri.query(),
            headers: &parts.headers,
            body: &body_bytes,
        };
        let routed = routed?;
        let caller = auth::authenticate(&services, &request_parts).await?;
        access_key_id = Some(caller.access_key_id.clone());
        let state = AppState::new(services.clone(), caller);
        api::dispatch(&state, &routed, &body_bytes).await
    }
    .await;

    let (status, error_code, response) = match result {
        Ok(body) => (
            StatusCode::OK,
            None,
            json_response(StatusCode::OK, &body, &request_id, None),
        ),
        Err(error) => {
            let status = error.code.status();
            let response = json_response(status, &error.body(), &request_id, Some(error.code));
            (status, Some(error), response)
        }
    };

    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match &error_code {
        None => tracing::info!(status = status.as_u16(), latency_ms, "request served"),
        Some(error) if error.code == ErrorCode::InternalServer => tracing::error!(
            status = status.as_u16(),
            latency_ms,
            error_code = error.code.as_str(),
            "request failed"
        ),
        Some(error) => tracing::info!(
            status = status.as_u16(),
            latency_ms,
            error_code = error.code.as_str(),
            reason = %error.message,
            "request rejected"
        ),
    }

    let params = audit::request_parameters(route.as_ref(), &body_bytes);
    let resource = audit::resource_of(route.as_ref(), &params);
    audit::append(
        services.store.as_ref(),
        CallRecord {
            time,
            request_id,
            operation: operation.to_string(),
            access_key_id,
            source_ip: Some(peer.ip().to_string()),
            user_agent,
            status: status.as_u16(),
            error_code: error_code.map(|e| e.code.as_str().to_string()),
            resource,
            request_parameters: params,
        },
    )
    .await;
    response
}

/// Reads the whole body, refusing more than `limit` bytes.
async fn read_body(headers: &http::HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::RequestEntityTooLarge,
            format!("The request body exceeds the limit of {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        // The only failures are the limit (without a Content-Length) and a broken connection,
        // whose client will not read the answer anyway.
        tracing::debug!(%error, "cannot read the request body");
        too_large()
    })
}

fn json_response(
    status: StatusCode,
    body: &serde_json::Value,
    request_id: &str,
    error: Option<ErrorCode>,
) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = (status, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    if let Some(code) = error {
        headers.insert(ERROR_TYPE_HEADER, HeaderValue::from_static(code.as_str()));
    }
    response
}
