//! Server-level settings, and the profile, source and destination properties of a flow.

use std::sync::Arc;

use serde::Deserialize;
use sluice_api_model as model;
use sluice_connector_api::{ConnectorError, Profile};
use sluice_connector_http_util::{Grant, Renewal, RetryConfig, TokenSet, TokenStore};
use sluice_types::Sensitive;

/// The Salesforce REST API version used for every call.
pub const DEFAULT_API_VERSION: &str = "58.0";

/// How Sluice reaches Salesforce, independent of any one profile.
#[derive(Clone)]
pub struct SalesforceSettings {
    /// Login host for production orgs (`https://login.salesforce.com`).
    pub login_url: String,
    /// Login host for sandboxes (`https://test.salesforce.com`).
    pub sandbox_login_url: String,
    /// Connected app client id, used for token exchanges.
    pub client_id: Option<String>,
    /// Connected app client secret.
    pub client_secret: Option<Sensitive<String>>,
    /// REST API version, e.g. `58.0`.
    pub api_version: String,
    /// Retry policy of every HTTP call.
    pub retry: RetryConfig,
    /// Where renewed tokens are persisted, when the server provides it.
    pub token_store: Option<Arc<dyn TokenStore>>,
}

impl std::fmt::Debug for SalesforceSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalesforceSettings")
            .field("login_url", &self.login_url)
            .field("sandbox_login_url", &self.sandbox_login_url)
            .field("client_id", &self.client_id)
            .field("api_version", &self.api_version)
            .finish_non_exhaustive()
    }
}

impl Default for SalesforceSettings {
    fn default() -> Self {
        Self {
            login_url: "https://login.salesforce.com".to_owned(),
            sandbox_login_url: "https://test.salesforce.com".to_owned(),
            client_id: None,
            client_secret: None,
            api_version: DEFAULT_API_VERSION.to_owned(),
            retry: RetryConfig::default(),
            token_store: None,
        }
    }
}

impl SalesforceSettings {
    /// Defaults overridden by `SLUICE_SALESFORCE_LOGIN_URL`, `SLUICE_SALESFORCE_SANDBOX_LOGIN_URL`,
    /// `SLUICE_SALESFORCE_CLIENT_ID` and `SLUICE_SALESFORCE_CLIENT_SECRET`.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let defaults = Self::default();
        Self {
            login_url: var("SLUICE_SALESFORCE_LOGIN_URL").unwrap_or(defaults.login_url),
            sandbox_login_url: var("SLUICE_SALESFORCE_SANDBOX_LOGIN_URL")
                .unwrap_or(defaults.sandbox_login_url),
            client_id: var("SLUICE_SALESFORCE_CLIENT_ID"),
            client_secret: var("SLUICE_SALESFORCE_CLIENT_SECRET").map(Sensitive::new),
            ..defaults
        }
    }

    /// The OAuth 2.0 token endpoint for a production org or a sandbox.
    pub fn token_url(&self, sandbox: bool) -> String {
        let host = if sandbox {
            &self.sandbox_login_url
        } else {
            &self.login_url
        };
        format!("{}/services/oauth2/token", host.trim_end_matches('/'))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OAuthRequest {
    auth_code: Option<Sensitive<String>>,
    redirect_uri: Option<String>,
    code_verifier: Option<Sensitive<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Credentials {
    access_token: Option<Sensitive<String>>,
    refresh_token: Option<Sensitive<String>>,
    o_auth_request: Option<OAuthRequest>,
    o_auth2_grant_type: Option<model::OAuth2GrantType>,
    jwt_token: Option<Sensitive<String>>,
}

/// A profile's connection and credentials.
#[derive(Debug, Clone)]
pub struct ProfileConfig {
    /// `instanceUrl`, when given.
    pub instance_url: Option<String>,
    /// `isSandboxEnvironment`.
    pub sandbox: bool,
    /// Tokens to start from (an empty access token when one must be obtained first).
    pub tokens: TokenSet,
    /// How the access token is renewed.
    pub renewal: Renewal,
    /// A grant to exchange before the first call (authorization code, JWT, client credentials).
    pub initial_grant: Option<Grant>,
}

fn strip_union<'a>(value: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    value.get(key).unwrap_or(value)
}

impl ProfileConfig {
    /// Reads the `Salesforce` members of a profile.
    pub fn from_profile(profile: &Profile) -> Result<Self, ConnectorError> {
        let properties: model::SalesforceConnectorProfileProperties =
            serde_json::from_value(strip_union(&profile.properties, "Salesforce").clone())
                .map_err(|error| {
                    ConnectorError::invalid_config(format!(
                        "connector profile {}: invalid Salesforce properties: {error}",
                        profile.name
                    ))
                })?;
        // serde's message names the member and position, never the value of a string.
        let credentials: Credentials =
            serde_json::from_value(strip_union(profile.credentials.expose(), "Salesforce").clone())
                .map_err(|error| {
                    ConnectorError::invalid_config(format!(
                        "connector profile {}: invalid Salesforce credentials: {error}",
                        profile.name
                    ))
                })?;
        let instance_url = properties
            .instance_url
            .map(|url| url.trim_end_matches('/').to_owned())
            .filter(|url| !url.is_empty());
        if let Some(url) = &instance_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(ConnectorError::invalid_config(format!(
                "connector profile {}: instanceUrl must be an http(s) URL, got {url}",
                profile.name
            )));
        }
        let grant_type = credentials.o_auth2_grant_type;
        let renewal = match (grant_type, &credentials.jwt_token) {
            (Some(model::OAuth2GrantType::JwtBearer), Some(jwt)) => {
                Renewal::Repeat(Grant::JwtBearer(jwt.clone()))
            }
            (Some(model::OAuth2GrantType::JwtBearer), None) => {
                return Err(ConnectorError::invalid_config(format!(
                    "connector profile {}: oAuth2GrantType JWT_BEARER needs jwtToken",
                    profile.name
                )));
            }
            (Some(model::OAuth2GrantType::ClientCredentials), _) => {
                Renewal::Repeat(Grant::ClientCredentials { scope: None })
            }
            _ => Renewal::RefreshToken,
        };
        let auth_code = credentials
            .o_auth_request
            .filter(|r| r.auth_code.as_ref().is_some_and(|c| !c.expose().is_empty()));
        let initial_grant = if let Some(request) = auth_code {
            let redirect_uri = request.redirect_uri.ok_or_else(|| {
                ConnectorError::invalid_config(format!(
                    "connector profile {}: oAuthRequest.redirectUri is required with authCode",
                    profile.name
                ))
            })?;
            Some(Grant::AuthorizationCode {
                code: request.auth_code.unwrap_or_default(),
                redirect_uri,
                code_verifier: request.code_verifier,
            })
        } else {
            match (&credentials.access_token, &renewal) {
                (Some(token), _) if !token.expose().is_empty() => None,
                (_, Renewal::Repeat(grant)) => Some(grant.clone()),
                (_, _) if credentials.refresh_token.is_some() => {
                    credentials.refresh_token.clone().map(Grant::RefreshToken)
                }
                _ => {
                    return Err(ConnectorError::invalid_config(format!(
                        "connector profile {}: Salesforce credentials need an accessToken, a \
                         refreshToken, an oAuthRequest with authCode, or a JWT_BEARER/\
                         CLIENT_CREDENTIALS grant",
                        profile.name
                    )));
                }
            }
        };
        Ok(Self {
            instance_url,
            sandbox: properties.is_sandbox_environment.unwrap_or(false),
            tokens: TokenSet {
                access_token: credentials.access_token.unwrap_or_default(),
                refresh_token: credentials.refresh_token,
                expires_at: None,
                instance_url: None,
            },
            renewal,
            initial_grant,
        })
    }
}

/// Which Salesforce API moves the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferApi {
    /// REST (SOQL query / sObject Collections).
    Rest,
    /// Bulk API 2.0.
    Bulk,
}

/// Resolves `dataTransferApi` for a known or estimated record count.
pub fn transfer_api(
    choice: Option<model::SalesforceDataTransferApi>,
    records: u64,
    bulk_threshold: u64,
) -> TransferApi {
    match choice {
        Some(model::SalesforceDataTransferApi::RestSync) => TransferApi::Rest,
        Some(model::SalesforceDataTransferApi::Bulkv2) => TransferApi::Bulk,
        _ if records >= bulk_threshold => TransferApi::Bulk,
        _ => TransferApi::Rest,
    }
}
