//! An authenticated Salesforce REST session: bearer tokens from a [`TokenManager`] (renewed on
//! `401 INVALID_SESSION_ID`), retries of `503` and `REQUEST_LIMIT_EXCEEDED` with backoff, the
//! `Sforce-Limit-Info` header watched, and Salesforce error bodies turned into
//! [`ConnectorError`]s that quote Salesforce's `errorCode` and message.
//!
//! [`Sessions`] keeps one token manager per profile, shared by every run of that profile, so
//! concurrent runs never renew twice. Tokens it obtains or renews are written back to the
//! profile through the settings' [`CredentialsStore`]; a profile loaded again with exactly those
//! credentials keeps its manager, while credentials replaced by the user start a new one.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sluice_connector_api::{
    ConnectorError, ConnectorErrorKind, CredentialsStore, PreparedProfile, Profile,
};
use sluice_connector_http_util::{
    HttpClient, HttpError, HttpResponse, HttpStream, OAuth2Client, OAuth2Error, TokenManager,
    TokenSet, TokenStore,
};
use sluice_types::Sensitive;

use crate::config::{ProfileConfig, SalesforceSettings, stored_properties};

/// Usage above this share of the org's daily API limit is logged.
const LIMIT_WARNING_SHARE: f64 = 0.9;

/// One profile's session.
#[derive(Debug)]
pub struct Session {
    http: HttpClient,
    tokens: Arc<TokenManager>,
    profile: String,
    instance_url: String,
    api_version: String,
    api_usage: AtomicU64,
}

/// Maps an OAuth failure of profile `profile` to the connector error the server reports. A
/// refused refresh token tells the user to authorise the profile again.
pub fn oauth_error(profile: &str, error: OAuth2Error) -> ConnectorError {
    match error {
        OAuth2Error::Revoked { description } => ConnectorError::new(
            ConnectorErrorKind::Authentication,
            format!(
                "Salesforce refused the refresh token of connector profile {profile} \
                 ({description}); re-authorise the connector profile {profile}: call \
                 UpdateConnectorProfile with a new oAuthRequest (authCode and redirectUri) or \
                 new tokens"
            ),
        ),
        OAuth2Error::CannotRenew => ConnectorError::new(
            ConnectorErrorKind::Authentication,
            format!(
                "the access token of connector profile {profile} expired and the profile has \
                 no refresh token or other grant to renew it; re-authorise the connector \
                 profile {profile}"
            ),
        ),
        other => {
            let kind = if other.is_authentication() {
                ConnectorErrorKind::Authentication
            } else {
                ConnectorErrorKind::Unavailable
            };
            ConnectorError::new(kind, format!("connector profile {profile}: {other}"))
        }
    }
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
    /// A session of profile `profile` against `instance_url`.
    pub fn new(
        http: HttpClient,
        tokens: Arc<TokenManager>,
        profile: String,
        instance_url: String,
        api_version: String,
    ) -> Self {
        Self {
            http,
            tokens,
            profile,
            instance_url,
            api_version,
            api_usage: AtomicU64::new(0),
        }
    }

    /// The connector profile this session authenticates as.
    pub fn profile(&self) -> &str {
        &self.profile
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
        self.call_with(what, method, path, query, |request| {
            let request = request.header("accept", "application/json");
            match body {
                Some(body) => request.json(body),
                None => request,
            }
        })
        .await
    }

    /// `call` with the body and content headers set by `shape` (applied to every attempt), for
    /// the APIs that exchange CSV rather than JSON, such as Bulk API 2.0.
    pub async fn call_with<F>(
        &self,
        what: &str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        shape: F,
    ) -> Result<HttpResponse, ConnectorError>
    where
        F: Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    {
        let url = self.url(path);
        let (method, url, shape) = (&method, url.as_str(), &shape);
        let response = self
            .authorized(what, |bearer| async move {
                let build =
                    |client: &reqwest::Client| shape(request(client, method, url, &bearer, query));
                self.http.send(what, build, is_limit_exceeded).await
            })
            .await?;
        if response.status.is_success() {
            return Ok(response);
        }
        Err(api_error(what, &self.profile, &response))
    }

    /// `call_with` for large bodies: a successful answer is returned once its headers arrive,
    /// the body to be read a piece at a time; the token renewal, retries and error mapping are
    /// `call_with`'s. A body that breaks off midway is the caller's to resume.
    pub async fn call_streaming<F>(
        &self,
        what: &str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        shape: F,
    ) -> Result<HttpStream, ConnectorError>
    where
        F: Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    {
        let url = self.url(path);
        let (method, url, shape) = (&method, url.as_str(), &shape);
        let stream = self
            .authorized(what, |bearer| async move {
                let build =
                    |client: &reqwest::Client| shape(request(client, method, url, &bearer, query));
                self.http
                    .send_streaming(what, build, is_limit_exceeded)
                    .await
            })
            .await?;
        if stream.status.is_success() {
            return Ok(stream);
        }
        // Not a success, so the body was already read whole.
        let response = stream
            .collect()
            .await
            .map_err(|error| ConnectorError::unavailable(format!("Salesforce: {error}")))?;
        Err(api_error(what, &self.profile, &response))
    }

    /// Runs `send` with the profile's access token, watching the limit headers of every
    /// answer; a `401` renews the token once (shared with concurrent runs) and sends again.
    /// Any other answer is returned as it is, for the caller to map.
    async fn authorized<A, S, Fut>(&self, what: &str, send: S) -> Result<A, ConnectorError>
    where
        A: Answer,
        S: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<A, HttpError>>,
    {
        let mut token = self
            .tokens
            .access_token()
            .await
            .map_err(|error| oauth_error(&self.profile, error))?;
        let mut renewed = false;
        loop {
            let answer = send(token.expose().clone())
                .await
                .map_err(|error| ConnectorError::unavailable(format!("Salesforce: {error}")))?;
            self.watch_limits(answer.headers());
            if answer.status() == StatusCode::UNAUTHORIZED && !renewed {
                tracing::info!(what, "Salesforce refused the access token; renewing it");
                token = self
                    .tokens
                    .refresh_after_unauthorized(&token)
                    .await
                    .map_err(|error| oauth_error(&self.profile, error))?;
                renewed = true;
                continue;
            }
            return Ok(answer);
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

    fn watch_limits(&self, headers: &reqwest::header::HeaderMap) {
        let Some(info) = headers
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

fn api_error(what: &str, profile: &str, response: &HttpResponse) -> ConnectorError {
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
        message.push_str(&format!("; re-authorise the connector profile {profile}"));
    }
    ConnectorError::new(kind, message)
}

/// Identifies a profile's properties and credentials as loaded, without keeping them.
fn fingerprint(properties: &Value, credentials: &Value) -> u64 {
    let mut hasher = DefaultHasher::new();
    properties.to_string().hash(&mut hasher);
    credentials.to_string().hash(&mut hasher);
    hasher.finish()
}

/// One profile's token manager and the credential versions it stands for: the ones it was
/// built from and every version it wrote back since.
#[derive(Debug)]
struct Cached {
    manager: Arc<TokenManager>,
    versions: Arc<StdMutex<HashSet<u64>>>,
    instance_url: Option<String>,
}

/// Token managers per profile, shared by all runs, and the sessions built on them.
#[derive(Debug)]
pub struct Sessions {
    settings: SalesforceSettings,
    http: HttpClient,
    /// Profile name to its slot; the slot's async lock makes building a manager (which may
    /// exchange a grant) single-flight per profile without holding up other profiles.
    slots: StdMutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
}

impl Sessions {
    /// Sessions for `settings`, sending through `http`.
    pub fn new(settings: SalesforceSettings, http: HttpClient) -> Self {
        Self {
            settings,
            http,
            slots: StdMutex::new(HashMap::new()),
        }
    }

    fn oauth_client(&self, sandbox: bool) -> OAuth2Client {
        OAuth2Client::new(
            self.http.clone(),
            self.settings.token_url(sandbox),
            self.settings.client_id.clone(),
            self.settings.client_secret.clone(),
        )
    }

    fn slot(&self, profile: &str) -> Arc<tokio::sync::Mutex<Option<Cached>>> {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots.entry(profile.to_owned()).or_default().clone()
    }

    /// A session for `profile`, reusing the profile's token manager while its credentials are
    /// the ones the manager knows.
    ///
    /// # Errors
    /// Invalid profile members, a refused or failed initial grant, no instance URL.
    pub async fn session(&self, profile: &Profile) -> Result<Arc<Session>, ConnectorError> {
        let version = fingerprint(&profile.properties, profile.credentials.expose());
        let slot = self.slot(&profile.name);
        let mut cached = slot.lock().await;
        let current = cached.as_ref().filter(|c| {
            c.versions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains(&version)
        });
        let (manager, configured_url) = match current {
            Some(c) => (c.manager.clone(), c.instance_url.clone()),
            None => {
                let built = self.build(profile, version).await?;
                let pair = (built.manager.clone(), built.instance_url.clone());
                *cached = Some(built);
                pair
            }
        };
        drop(cached);
        let instance_url = manager
            .tokens()
            .await
            .instance_url
            .or(configured_url)
            .ok_or_else(|| no_instance_url(&profile.name))?;
        Ok(Arc::new(Session::new(
            self.http.clone(),
            manager,
            profile.name.clone(),
            instance_url.trim_end_matches('/').to_owned(),
            self.settings.api_version.clone(),
        )))
    }

    async fn build(&self, profile: &Profile, version: u64) -> Result<Cached, ConnectorError> {
        let config = ProfileConfig::from_profile(profile, &self.settings)?;
        let oauth = self.oauth_client(config.sandbox);
        let versions = Arc::new(StdMutex::new(HashSet::from([version])));
        let store = Arc::new(WriteBack {
            profile: profile.name.clone(),
            properties: profile.properties.clone(),
            config: config.clone(),
            stored: tokio::sync::Mutex::new(profile.credentials.clone()),
            versions: versions.clone(),
            target: self.settings.credentials_store.clone(),
        });
        let tokens = initial_tokens(&oauth, &config, &profile.name).await?;
        if let Some(grant) = &config.initial_grant {
            tracing::info!(profile = %profile.name, grant_type = grant.grant_type(), "obtained a Salesforce access token");
            if let Err(error) = store.save(&tokens).await {
                tracing::warn!(profile = %profile.name, %error, "could not store the Salesforce tokens");
            }
        }
        let manager = TokenManager::new(oauth, tokens, config.renewal.clone()).with_store(store);
        Ok(Cached {
            manager: Arc::new(manager),
            versions,
            instance_url: config.instance_url,
        })
    }

    /// What to store for a profile sent to `CreateConnectorProfile`/`UpdateConnectorProfile`:
    /// one-time grants exchanged for tokens, the tokens checked with a call to the org, and
    /// `instanceUrl` filled in from the token response when it was left out.
    ///
    /// # Errors
    /// An authentication error quoting Salesforce's reason when the exchange or the check is
    /// refused; invalid profile members.
    pub async fn prepare(&self, profile: &Profile) -> Result<PreparedProfile, ConnectorError> {
        let config = ProfileConfig::from_profile(profile, &self.settings)?;
        if config.names_client_credentials_secret {
            tracing::warn!(
                profile = %profile.name,
                "clientCredentialsArn names an AWS Secrets Manager secret, which Sluice does not \
                 read: token exchanges use the connected app of SLUICE_SALESFORCE_CLIENT_ID"
            );
        }
        let oauth = self.oauth_client(config.sandbox);
        let tokens = initial_tokens(&oauth, &config, &profile.name).await?;
        let exchanged_url = tokens.instance_url.clone();
        let instance_url = exchanged_url
            .clone()
            .or(config.instance_url.clone())
            .ok_or_else(|| no_instance_url(&profile.name))?;
        // Not stored yet, so nothing is written back: renewed tokens are returned instead.
        let manager = Arc::new(TokenManager::new(oauth, tokens, config.renewal.clone()));
        let session = Session::new(
            self.http.clone(),
            manager.clone(),
            profile.name.clone(),
            instance_url.trim_end_matches('/').to_owned(),
            self.settings.api_version.clone(),
        );
        session
            .call("credential check", Method::GET, "sobjects", &[], None)
            .await?;
        let tokens = manager.tokens().await;
        Ok(PreparedProfile {
            properties: stored_properties(&profile.properties, exchanged_url.as_deref()),
            credentials: config.stored_credentials(&tokens),
        })
    }
}

fn no_instance_url(profile: &str) -> ConnectorError {
    ConnectorError::invalid_config(format!(
        "connector profile {profile}: instanceUrl is required (the token response named none)"
    ))
}

/// Writes a manager's tokens back to its profile.
#[derive(Debug)]
struct WriteBack {
    profile: String,
    properties: Value,
    config: ProfileConfig,
    /// The credentials as stored now, for the compare-and-swap.
    stored: tokio::sync::Mutex<Sensitive<Value>>,
    versions: Arc<StdMutex<HashSet<u64>>>,
    target: Option<Arc<dyn CredentialsStore>>,
}

#[async_trait]
impl TokenStore for WriteBack {
    async fn save(&self, tokens: &TokenSet) -> Result<(), String> {
        let Some(target) = &self.target else {
            return Ok(());
        };
        let next = self.config.stored_credentials(tokens);
        let mut stored = self.stored.lock().await;
        let written = target
            .replace_credentials(&self.profile, &stored, &next)
            .await
            .map_err(|error| error.message)?;
        if !written {
            return Err(format!(
                "connector profile {} was updated or deleted meanwhile; the renewed tokens \
                 serve this run only",
                self.profile
            ));
        }
        self.versions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(fingerprint(&self.properties, next.expose()));
        *stored = next;
        tracing::info!(profile = %self.profile, "stored the renewed Salesforce tokens in the connector profile");
        Ok(())
    }
}

/// A request to `url` with the bearer token and, when there is one, the query string.
fn request(
    client: &reqwest::Client,
    method: &Method,
    url: &str,
    bearer: &str,
    query: &[(&str, String)],
) -> reqwest::RequestBuilder {
    let request = client.request(method.clone(), url).bearer_auth(bearer);
    if query.is_empty() {
        request
    } else {
        request.query(query)
    }
}

/// What [`Session::authorized`] needs of an answer, read whole or streamed.
trait Answer {
    fn status(&self) -> StatusCode;
    fn headers(&self) -> &reqwest::header::HeaderMap;
}

impl Answer for HttpResponse {
    fn status(&self) -> StatusCode {
        self.status
    }
    fn headers(&self) -> &reqwest::header::HeaderMap {
        &self.headers
    }
}

impl Answer for HttpStream {
    fn status(&self) -> StatusCode {
        self.status
    }
    fn headers(&self) -> &reqwest::header::HeaderMap {
        &self.headers
    }
}

/// The profile's tokens, after exchanging its one-time grant (authorization code, JWT, client
/// credentials) when it has one. A refresh token the exchange does not return is kept.
async fn initial_tokens(
    oauth: &OAuth2Client,
    config: &ProfileConfig,
    profile: &str,
) -> Result<TokenSet, ConnectorError> {
    let tokens = config.tokens.clone();
    let Some(grant) = &config.initial_grant else {
        return Ok(tokens);
    };
    let fresh = oauth
        .exchange(grant, chrono::Utc::now())
        .await
        .map_err(|error| oauth_error(profile, error))?;
    Ok(TokenSet {
        refresh_token: fresh.refresh_token.clone().or(tokens.refresh_token),
        ..fresh
    })
}
