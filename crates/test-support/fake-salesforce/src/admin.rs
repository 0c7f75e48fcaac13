//! Test-control endpoints under `/__admin/`, so tests in other languages (the pytest suite
//! drives the `fake-salesforce` binary) can set up scenarios the way Rust tests do with the
//! [`FakeSalesforce`] methods, which these endpoints call.
//!
//! | Method and path | Body | Effect / answer |
//! |---|---|---|
//! | `POST /__admin/records/{object}` | `{"records": [{..}]}` | inserts; `{"ids": [..]}` |
//! | `GET /__admin/records/{object}` | | live records; `{"records": [..]}` |
//! | `PATCH /__admin/records/{object}/{id}` | `{field: value}` | updates (bumps `LastModifiedDate`) |
//! | `DELETE /__admin/records/{object}/{id}` | | soft-deletes (visible to `queryAll`) |
//! | `POST /__admin/objects/{object}/fields` | `{"name", "type", "externalId"?, "nillable"?, "picklist"?}` | adds a field |
//! | `POST /__admin/clock` | `{"now": "2030-01-01T00:00:00Z"}` or `{"now": null}` | fixes the time of system timestamps |
//! | `POST /__admin/page-size` | `{"rows": n}` | records per query page |
//! | `POST /__admin/tokens` | `{"kind": "access" \| "refresh"}` | issues a token; `{"token"}` |
//! | `POST /__admin/auth-codes` | `{"clientId", "redirectUri", "codeVerifier"?}` | issues an authorization code; `{"code"}` |
//! | `POST /__admin/tokens/expire` | `{"afterRequests": n}` (optional) | expires every access token issued so far, now or once `n` more API requests were served |
//! | `POST /__admin/tokens/revoke` | `{"refreshToken"}` | revokes a refresh token |
//! | `POST /__admin/faults` | `{"faults": [{"type": "unavailable", "retryAfter"?: s} \| {"type": "requestLimitExceeded"}]}` | answers the next API requests with these faults |
//! | `GET /__admin/stats` | | counters: grants by type, API requests, 401s, faults served |
//!
//! Errors are `{"error": "..."}` with status 400 (bad body) or 404 (unknown object or record).
//! Admin calls are not API requests: they are not counted, authenticated or faulted.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{FakeSalesforce, Fault, FieldDef, Shared, lock};

/// How long a delayed token expiry waits for its API requests before giving up.
const EXPIRY_WAIT: Duration = Duration::from_secs(120);

/// The admin routes, merged into the fake's router.
pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/__admin/records/{object}", post(insert).get(records))
        .route(
            "/__admin/records/{object}/{id}",
            patch(update).delete(delete),
        )
        .route("/__admin/objects/{object}/fields", post(add_field))
        .route("/__admin/clock", post(clock))
        .route("/__admin/page-size", post(page_size))
        .route("/__admin/tokens", post(issue_token))
        .route("/__admin/tokens/expire", post(expire_tokens))
        .route("/__admin/tokens/revoke", post(revoke))
        .route("/__admin/auth-codes", post(auth_code))
        .route("/__admin/faults", post(faults))
        .route("/__admin/stats", get(stats))
}

/// A handle on the running fake's state, to call its methods.
fn fake(inner: &Shared) -> FakeSalesforce {
    let base = lock(inner).base_url.clone();
    let addr = base
        .trim_start_matches("http://")
        .parse()
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
    // No shutdown sender: dropping the handle leaves the server running.
    FakeSalesforce {
        addr,
        inner: inner.clone(),
        shutdown: None,
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

/// Parses a JSON body, answering 400 with serde's reason when it does not fit.
fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Response> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("invalid body: {e}")))
}

fn known_object(inner: &Shared, object: &str) -> Result<(), Response> {
    if lock(inner).objects.contains_key(object) {
        Ok(())
    } else {
        Err(error(
            StatusCode::NOT_FOUND,
            format!("no sObject type {object}"),
        ))
    }
}

#[derive(Deserialize)]
struct Records {
    records: Vec<Map<String, Value>>,
}

async fn insert(
    State(inner): State<Shared>,
    Path(object): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let request: Records = match parse(&body) {
        Ok(request) => request,
        Err(response) => return response,
    };
    if let Err(response) = known_object(&inner, &object) {
        return response;
    }
    let count = request.records.len();
    let ids = fake(&inner).insert(&object, request.records);
    if ids.len() != count {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "{} of {count} records were refused (check required fields and types)",
                count - ids.len()
            ),
        );
    }
    axum::Json(json!({ "ids": ids })).into_response()
}

async fn records(State(inner): State<Shared>, Path(object): Path<String>) -> Response {
    if let Err(response) = known_object(&inner, &object) {
        return response;
    }
    axum::Json(json!({ "records": fake(&inner).records(&object) })).into_response()
}

async fn update(
    State(inner): State<Shared>,
    Path((object, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let fields: Map<String, Value> = match parse(&body) {
        Ok(fields) => fields,
        Err(response) => return response,
    };
    if fake(&inner).update(&object, &id, fields) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(
            StatusCode::NOT_FOUND,
            format!("{object} {id} cannot be updated (unknown, deleted, or invalid fields)"),
        )
    }
}

async fn delete(
    State(inner): State<Shared>,
    Path((object, id)): Path<(String, String)>,
) -> Response {
    if fake(&inner).delete(&object, &id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(
            StatusCode::NOT_FOUND,
            format!("{object} {id} does not exist or is already deleted"),
        )
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewField {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    external_id: bool,
    nillable: Option<bool>,
    #[serde(default)]
    picklist: Vec<String>,
}

async fn add_field(
    State(inner): State<Shared>,
    Path(object): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let request: NewField = match parse(&body) {
        Ok(request) => request,
        Err(response) => return response,
    };
    if let Err(response) = known_object(&inner, &object) {
        return response;
    }
    if request.name.trim().is_empty() || request.kind.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "name and type must not be empty");
    }
    let exists = lock(&inner)
        .objects
        .get(&object)
        .is_some_and(|o| o.field(&request.name).is_some());
    if exists {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{object} already has a field {}", request.name),
        );
    }
    let mut field = FieldDef::new(&request.name, &request.kind);
    field.external_id = request.external_id;
    field.picklist = request.picklist;
    if let Some(nillable) = request.nillable {
        field.nillable = nillable;
    }
    fake(&inner).add_field(&object, field);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct Clock {
    now: Option<DateTime<Utc>>,
}

async fn clock(State(inner): State<Shared>, body: axum::body::Bytes) -> Response {
    match parse::<Clock>(&body) {
        Ok(request) => {
            fake(&inner).set_now(request.now);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(response) => response,
    }
}

#[derive(Deserialize)]
struct PageSize {
    rows: usize,
}

async fn page_size(State(inner): State<Shared>, body: axum::body::Bytes) -> Response {
    match parse::<PageSize>(&body) {
        Ok(request) if request.rows > 0 => {
            fake(&inner).set_page_size(request.rows);
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(_) => error(StatusCode::BAD_REQUEST, "rows must be at least 1"),
        Err(response) => response,
    }
}

#[derive(Deserialize)]
struct IssueToken {
    kind: String,
}

async fn issue_token(State(inner): State<Shared>, body: axum::body::Bytes) -> Response {
    let request: IssueToken = match parse(&body) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let token = match request.kind.as_str() {
        "access" => fake(&inner).issue_access_token(),
        "refresh" => fake(&inner).issue_refresh_token(),
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("kind must be 'access' or 'refresh', got '{other}'"),
            );
        }
    };
    axum::Json(json!({ "token": token })).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthCode {
    client_id: String,
    redirect_uri: String,
    code_verifier: Option<String>,
}

async fn auth_code(State(inner): State<Shared>, body: axum::body::Bytes) -> Response {
    let request: AuthCode = match parse(&body) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let code = fake(&inner).issue_auth_code(
        &request.client_id,
        &request.redirect_uri,
        request.code_verifier.as_deref(),
    );
    axum::Json(json!({ "code": code })).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Expire {
    after_requests: Option<u64>,
}

async fn expire_tokens(State(inner): State<Shared>, body: axum::body::Bytes) -> Response {
    let request: Expire = match parse(&body) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let handle = fake(&inner);
    let Some(after) = request.after_requests.filter(|n| *n > 0) else {
        handle.expire_access_tokens();
        return StatusCode::NO_CONTENT.into_response();
    };
    // The tokens in use now expire in the middle of whatever the client is doing: once `after`
    // more API requests were answered. Polling the counter keeps the request path untouched.
    let target = handle.stats().api_requests + after;
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + EXPIRY_WAIT;
        while handle.stats().api_requests < target {
            if tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        handle.expire_access_tokens();
    });
    StatusCode::ACCEPTED.into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Revoke {
    refresh_token: String,
}

async fn revoke(State(inner): State<Shared>, body: axum::body::Bytes) -> Response {
    match parse::<Revoke>(&body) {
        Ok(request) => {
            fake(&inner).revoke_refresh_token(&request.refresh_token);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(response) => response,
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum FaultSpec {
    #[serde(rename_all = "camelCase")]
    Unavailable {
        retry_after: Option<u32>,
    },
    RequestLimitExceeded,
}

#[derive(Deserialize)]
struct Faults {
    faults: Vec<FaultSpec>,
}

async fn faults(State(inner): State<Shared>, body: axum::body::Bytes) -> Response {
    let request: Faults = match parse(&body) {
        Ok(request) => request,
        Err(response) => return response,
    };
    fake(&inner).inject(request.faults.into_iter().map(|fault| match fault {
        FaultSpec::Unavailable { retry_after } => Fault::Unavailable { retry_after },
        FaultSpec::RequestLimitExceeded => Fault::RequestLimitExceeded,
    }));
    StatusCode::NO_CONTENT.into_response()
}

async fn stats(State(inner): State<Shared>) -> Response {
    let stats = fake(&inner).stats();
    axum::Json(json!({
        "grants": stats.grants,
        "apiRequests": stats.api_requests,
        "unauthorized": stats.unauthorized,
        "faultsServed": stats.faults_served,
        "restQueries": stats.rest_queries,
        "collectionCalls": stats.collection_calls,
        "bulkQueryJobs": stats.bulk_query_jobs,
        "bulkIngestJobs": stats.bulk_ingest_jobs,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn send(fake: &FakeSalesforce, method: &str, path: &str, body: Value) -> (u16, Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = fake.url().trim_start_matches("http://").to_owned();
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let body = body.to_string();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8_lossy(&raw).to_string();
        let status = text[9..12].parse().unwrap();
        let payload = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        // Chunked bodies are not used by axum for JSON of known length.
        let value = serde_json::from_str(payload).unwrap_or(Value::Null);
        (status, value)
    }

    #[tokio::test]
    async fn records_fields_tokens_and_stats_are_controllable() {
        let fake = FakeSalesforce::start(0).await.unwrap();
        let (status, body) = send(
            &fake,
            "POST",
            "/__admin/records/Account",
            json!({"records": [{"Name": "Ünïcode GmbH"}, {"Name": "Other"}]}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let ids: Vec<String> = serde_json::from_value(body["ids"].clone()).unwrap();
        assert_eq!(ids.len(), 2);
        let (status, _) = send(
            &fake,
            "PATCH",
            &format!("/__admin/records/Account/{}", ids[0]),
            json!({"Phone": "555"}),
        )
        .await;
        assert_eq!(status, 204);
        let (status, _) = send(
            &fake,
            "DELETE",
            &format!("/__admin/records/Account/{}", ids[1]),
            Value::Null,
        )
        .await;
        assert_eq!(status, 204);
        let (_, listed) = send(&fake, "GET", "/__admin/records/Account", Value::Null).await;
        let live = listed["records"].as_array().unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0]["Name"], "Ünïcode GmbH");
        assert_eq!(live[0]["Phone"], "555");

        let (status, _) = send(
            &fake,
            "POST",
            "/__admin/objects/Account/fields",
            json!({"name": "Region__c", "type": "string"}),
        )
        .await;
        assert_eq!(status, 204);
        let (status, body) = send(
            &fake,
            "POST",
            "/__admin/objects/Account/fields",
            json!({"name": "Region__c", "type": "string"}),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            send(&fake, "GET", "/__admin/records/Nope", Value::Null)
                .await
                .0,
            404
        );
        let (status, body) = send(&fake, "POST", "/__admin/records/Account", json!([])).await;
        assert_eq!(status, 400);
        assert!(body["error"].as_str().unwrap().contains("invalid body"));

        let (_, token) = send(&fake, "POST", "/__admin/tokens", json!({"kind": "refresh"})).await;
        assert!(token["token"].as_str().unwrap().starts_with("00D"));
        let (status, _) = send(&fake, "POST", "/__admin/tokens", json!({"kind": "id"})).await;
        assert_eq!(status, 400);
        let (_, code) = send(
            &fake,
            "POST",
            "/__admin/auth-codes",
            json!({"clientId": "app", "redirectUri": "https://cb"}),
        )
        .await;
        assert!(code["code"].is_string());

        let (status, _) = send(
            &fake,
            "POST",
            "/__admin/faults",
            json!({"faults": [{"type": "unavailable", "retryAfter": 1}, {"type": "requestLimitExceeded"}]}),
        )
        .await;
        assert_eq!(status, 204);
        let (_, stats) = send(&fake, "GET", "/__admin/stats", Value::Null).await;
        assert_eq!(stats["apiRequests"], 0, "admin calls are not API requests");
        assert_eq!(stats["faultsServed"], 0);
    }

    #[tokio::test]
    async fn tokens_expire_after_a_number_of_requests() {
        let fake = FakeSalesforce::start(0).await.unwrap();
        let token = fake.issue_access_token();
        let (status, _) = send(
            &fake,
            "POST",
            "/__admin/tokens/expire",
            json!({"afterRequests": 2}),
        )
        .await;
        assert_eq!(status, 202);
        let state = fake.inner.clone();
        let valid = |state: &Shared| lock(state).access_tokens.get(&token) == Some(&true);
        assert!(valid(&state));
        // Two API requests (the fake counts them as it answers), then the token is gone.
        lock(&state).stats.api_requests += 2;
        for _ in 0..2000 {
            if !valid(&state) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(!valid(&state));
        let fresh = fake.issue_access_token();
        assert_eq!(lock(&state).access_tokens.get(&fresh), Some(&true));
        let (status, _) = send(&fake, "POST", "/__admin/clock", json!({"now": "soon"})).await;
        assert_eq!(status, 400);
        let (status, _) = send(
            &fake,
            "POST",
            "/__admin/clock",
            json!({"now": "2030-01-01T00:00:00Z"}),
        )
        .await;
        assert_eq!(status, 204);
        let ids = fake.insert(
            "Account",
            vec![json!({"Name": "At T0"}).as_object().cloned().unwrap()],
        );
        let record = fake
            .records("Account")
            .into_iter()
            .find(|r| r["Id"] == ids[0].as_str())
            .unwrap();
        assert_eq!(record["CreatedDate"], "2030-01-01T00:00:00.000+0000");
    }
}
