//! Server-level settings, and the profile, source and destination properties of a flow.
//!
//! A profile's credentials decide how Sluice gets and renews access tokens:
//!
//! | credentials | first token | renewal |
//! |---|---|---|
//! | `oAuthRequest.authCode` + `redirectUri` | exchanged at `CreateConnectorProfile` | refresh token |
//! | `accessToken` (+ `refreshToken`) | as given | refresh token, if any |
//! | `oAuth2GrantType: JWT_BEARER` + a signed `jwtToken` | the JWT, exchanged | the same JWT, while it is valid |
//! | `oAuth2GrantType: JWT_BEARER` + an unsigned `jwtToken` (`<header>.<claims>.`) | a JWT Sluice signs with the connected app's key | a freshly signed JWT |
//! | `oAuth2GrantType: CLIENT_CREDENTIALS` | client credentials grant | the same grant |
//!
//! What is stored after an exchange ([`ProfileConfig::stored_credentials`]) are the tokens,
//! never the authorization code.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};
use sluice_api_model as model;
use sluice_connector_api::{ConnectorError, CredentialsStore, Profile};
use sluice_connector_http_util::{
    ClaimsTemplate, Grant, JwtAssertion, Renewal, RetryConfig, RsaSigningKey, TokenSet,
};
use sluice_types::Sensitive;

/// The Salesforce REST API version used for every call.
pub const DEFAULT_API_VERSION: &str = "58.0";

/// The union key of Salesforce members in profile properties and credentials.
const UNION_KEY: &str = "Salesforce";

/// How Sluice reaches Salesforce, independent of any one profile.
#[derive(Clone)]
pub struct SalesforceSettings {
    /// Login host for production orgs (`https://login.salesforce.com`).
    pub login_url: String,
    /// Login host for sandboxes (`https://test.salesforce.com`).
    pub sandbox_login_url: String,
    /// Connected app client id, used for token exchanges (and as the `iss` of signed JWTs).
    pub client_id: Option<String>,
    /// Connected app client secret.
    pub client_secret: Option<Sensitive<String>>,
    /// REST API version, e.g. `58.0`.
    pub api_version: String,
    /// Retry policy of every HTTP call.
    pub retry: RetryConfig,
    /// PEM file holding the connected app's RSA private key, used to sign JWT bearer
    /// assertions for profiles whose `jwtToken` is an unsigned claims template.
    pub jwt_key_file: Option<PathBuf>,
    /// Where tokens obtained or renewed during runs are written back to their profile, when
    /// the server provides it.
    pub credentials_store: Option<Arc<dyn CredentialsStore>>,
}

impl std::fmt::Debug for SalesforceSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalesforceSettings")
            .field("login_url", &self.login_url)
            .field("sandbox_login_url", &self.sandbox_login_url)
            .field("client_id", &self.client_id)
            .field("api_version", &self.api_version)
            .field("jwt_key_file", &self.jwt_key_file)
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
            jwt_key_file: None,
            credentials_store: None,
        }
    }
}

impl SalesforceSettings {
    /// Defaults overridden by `SLUICE_SALESFORCE_LOGIN_URL`, `SLUICE_SALESFORCE_SANDBOX_LOGIN_URL`,
    /// `SLUICE_SALESFORCE_CLIENT_ID`, `SLUICE_SALESFORCE_CLIENT_SECRET`,
    /// `SLUICE_SALESFORCE_JWT_KEY_FILE` and `SLUICE_SALESFORCE_API_VERSION`.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any variable lookup (tests).
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let defaults = Self::default();
        Self {
            login_url: var("SLUICE_SALESFORCE_LOGIN_URL").unwrap_or(defaults.login_url),
            sandbox_login_url: var("SLUICE_SALESFORCE_SANDBOX_LOGIN_URL")
                .unwrap_or(defaults.sandbox_login_url),
            client_id: var("SLUICE_SALESFORCE_CLIENT_ID"),
            client_secret: var("SLUICE_SALESFORCE_CLIENT_SECRET").map(Sensitive::new),
            api_version: var("SLUICE_SALESFORCE_API_VERSION").unwrap_or(defaults.api_version),
            jwt_key_file: var("SLUICE_SALESFORCE_JWT_KEY_FILE").map(PathBuf::from),
            ..defaults
        }
    }

    /// The login host of a production org or a sandbox, without a trailing `/`.
    pub fn login_host(&self, sandbox: bool) -> &str {
        let host = if sandbox {
            &self.sandbox_login_url
        } else {
            &self.login_url
        };
        host.trim_end_matches('/')
    }

    /// The OAuth 2.0 token endpoint for a production org or a sandbox.
    pub fn token_url(&self, sandbox: bool) -> String {
        format!("{}/services/oauth2/token", self.login_host(sandbox))
    }

    /// Reads the connected app's signing key from [`jwt_key_file`](Self::jwt_key_file).
    fn signing_key(&self, profile: &str) -> Result<Arc<RsaSigningKey>, ConnectorError> {
        let path = self.jwt_key_file.as_ref().ok_or_else(|| {
            ConnectorError::invalid_config(format!(
                "connector profile {profile}: jwtToken is an unsigned JWT (empty signature), \
                 which Sluice signs with the connected app's private key, but no key is \
                 configured (SLUICE_SALESFORCE_JWT_KEY_FILE)"
            ))
        })?;
        let pem = std::fs::read_to_string(path).map_err(|error| {
            ConnectorError::invalid_config(format!(
                "SLUICE_SALESFORCE_JWT_KEY_FILE {}: cannot be read: {error}",
                path.display()
            ))
        })?;
        RsaSigningKey::from_pem(&pem)
            .map(Arc::new)
            .map_err(|error| {
                ConnectorError::invalid_config(format!(
                    "SLUICE_SALESFORCE_JWT_KEY_FILE {}: {error}",
                    path.display()
                ))
            })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OAuthRequest {
    auth_code: Option<Sensitive<String>>,
    redirect_uri: Option<String>,
    /// PKCE verifier. Not in AppFlow's `ConnectorOAuthRequest` shape, so API callers cannot
    /// send it; profiles built by other means may.
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
    client_credentials_arn: Option<Sensitive<String>>,
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
    /// Whether `clientCredentialsArn` is set (a Secrets Manager secret Sluice cannot read).
    pub names_client_credentials_secret: bool,
    /// The `Salesforce` member of the credentials, as given.
    credentials: Sensitive<Map<String, Value>>,
}

fn strip_union<'a>(value: &'a Value, key: &str) -> &'a Value {
    value.get(key).unwrap_or(value)
}

fn non_empty(secret: &Option<Sensitive<String>>) -> bool {
    secret
        .as_ref()
        .is_some_and(|s| !s.expose().trim().is_empty())
}

impl ProfileConfig {
    /// Reads the `Salesforce` members of a profile; `settings` supply what signed JWTs need.
    ///
    /// # Errors
    /// [`ConnectorErrorKind::InvalidConfig`](sluice_connector_api::ConnectorErrorKind) naming
    /// the member that is missing or malformed; never quoting a secret.
    pub fn from_profile(
        profile: &Profile,
        settings: &SalesforceSettings,
    ) -> Result<Self, ConnectorError> {
        let name = &profile.name;
        let properties: model::SalesforceConnectorProfileProperties = serde_json::from_value(
            strip_union(&profile.properties, UNION_KEY).clone(),
        )
        .map_err(|error| {
            ConnectorError::invalid_config(format!(
                "connector profile {name}: invalid Salesforce properties: {error}"
            ))
        })?;
        let raw = strip_union(profile.credentials.expose(), UNION_KEY);
        // serde's message names the member and position, never the value of a string.
        let credentials: Credentials = serde_json::from_value(raw.clone()).map_err(|error| {
            ConnectorError::invalid_config(format!(
                "connector profile {name}: invalid Salesforce credentials: {error}"
            ))
        })?;
        let stored = raw.as_object().cloned().unwrap_or_default();
        let instance_url = properties
            .instance_url
            .map(|url| url.trim().trim_end_matches('/').to_owned())
            .filter(|url| !url.is_empty());
        if let Some(url) = &instance_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(ConnectorError::invalid_config(format!(
                "connector profile {name}: instanceUrl must be an http(s) URL, got {url}"
            )));
        }
        let sandbox = properties.is_sandbox_environment.unwrap_or(false);
        let renewal = match credentials.o_auth2_grant_type {
            Some(model::OAuth2GrantType::JwtBearer) => {
                jwt_renewal(name, credentials.jwt_token.as_ref(), sandbox, settings)?
            }
            Some(model::OAuth2GrantType::ClientCredentials) => {
                if settings.client_secret.is_none() {
                    return Err(ConnectorError::invalid_config(format!(
                        "connector profile {name}: oAuth2GrantType CLIENT_CREDENTIALS needs the \
                         connected app's secret (SLUICE_SALESFORCE_CLIENT_ID and \
                         SLUICE_SALESFORCE_CLIENT_SECRET)"
                    )));
                }
                Renewal::Repeat(Grant::ClientCredentials { scope: None })
            }
            Some(model::OAuth2GrantType::AuthorizationCode) | None => Renewal::RefreshToken,
        };
        let auth_code = credentials
            .o_auth_request
            .filter(|request| non_empty(&request.auth_code));
        let initial_grant = if let Some(request) = auth_code {
            let redirect_uri = request
                .redirect_uri
                .filter(|uri| !uri.trim().is_empty())
                .ok_or_else(|| {
                    ConnectorError::invalid_config(format!(
                        "connector profile {name}: oAuthRequest.redirectUri is required with \
                         oAuthRequest.authCode"
                    ))
                })?;
            Some(Grant::AuthorizationCode {
                code: request.auth_code.unwrap_or_default(),
                redirect_uri,
                code_verifier: request.code_verifier,
            })
        } else if non_empty(&credentials.access_token) {
            None
        } else {
            match &renewal {
                Renewal::Repeat(grant) => Some(grant.clone()),
                Renewal::SignedJwt(assertion) => Some(Grant::JwtBearer(
                    assertion.sign(chrono::Utc::now()).map_err(|error| {
                        ConnectorError::invalid_config(format!("connector profile {name}: {error}"))
                    })?,
                )),
                _ if non_empty(&credentials.refresh_token) => {
                    credentials.refresh_token.clone().map(Grant::RefreshToken)
                }
                _ => {
                    return Err(ConnectorError::invalid_config(format!(
                        "connector profile {name}: Salesforce credentials need an accessToken, a \
                         refreshToken, an oAuthRequest with authCode and redirectUri, or \
                         oAuth2GrantType JWT_BEARER (with jwtToken) or CLIENT_CREDENTIALS"
                    )));
                }
            }
        };
        Ok(Self {
            instance_url,
            sandbox,
            tokens: TokenSet {
                access_token: credentials.access_token.unwrap_or_default(),
                refresh_token: credentials
                    .refresh_token
                    .filter(|token| !token.expose().trim().is_empty()),
                expires_at: None,
                instance_url: None,
            },
            renewal,
            initial_grant,
            names_client_credentials_secret: credentials.client_credentials_arn.is_some(),
            credentials: Sensitive::new(stored),
        })
    }

    /// The credentials union to store once `tokens` are in hand: the profile's own members
    /// with the tokens set, and without the one-time `oAuthRequest`.
    pub fn stored_credentials(&self, tokens: &TokenSet) -> Sensitive<Value> {
        let mut member = self.credentials.expose().clone();
        member.remove("oAuthRequest");
        member.insert(
            "accessToken".to_owned(),
            Value::String(tokens.access_token.expose().clone()),
        );
        if let Some(refresh) = &tokens.refresh_token {
            member.insert(
                "refreshToken".to_owned(),
                Value::String(refresh.expose().clone()),
            );
        }
        let mut union = Map::new();
        union.insert(UNION_KEY.to_owned(), Value::Object(member));
        Sensitive::new(Value::Object(union))
    }
}

/// The properties union to store: `properties` with `instanceUrl` filled in from the token
/// response when the caller left it out.
pub fn stored_properties(properties: &Value, instance_url: Option<&str>) -> Value {
    let mut properties = properties.clone();
    let Some(url) = instance_url else {
        return properties;
    };
    if !properties.is_object() {
        properties = Value::Object(Map::new());
    }
    if let Some(union) = properties.as_object_mut() {
        let member = union
            .entry(UNION_KEY)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(member) = member.as_object_mut() {
            let missing = member
                .get("instanceUrl")
                .and_then(Value::as_str)
                .is_none_or(|given| given.trim().is_empty());
            if missing {
                member.insert("instanceUrl".to_owned(), Value::String(url.to_owned()));
            }
        }
    }
    properties
}

/// How a `JWT_BEARER` profile renews: a signed `jwtToken` is repeated as it is; an unsigned
/// one is a claims template that Sluice signs afresh with the connected app's key.
fn jwt_renewal(
    profile: &str,
    jwt: Option<&Sensitive<String>>,
    sandbox: bool,
    settings: &SalesforceSettings,
) -> Result<Renewal, ConnectorError> {
    let jwt = jwt
        .filter(|token| !token.expose().trim().is_empty())
        .ok_or_else(|| {
            ConnectorError::invalid_config(format!(
                "connector profile {profile}: oAuth2GrantType JWT_BEARER needs jwtToken"
            ))
        })?;
    let template = ClaimsTemplate::from_unsigned_jwt(jwt.expose()).map_err(|error| {
        ConnectorError::invalid_config(format!("connector profile {profile}: jwtToken: {error}"))
    })?;
    let Some(template) = template else {
        return Ok(Renewal::Repeat(Grant::JwtBearer(jwt.clone())));
    };
    let key = settings.signing_key(profile)?;
    let issuer = template
        .issuer
        .or_else(|| settings.client_id.clone())
        .ok_or_else(|| {
            ConnectorError::invalid_config(format!(
                "connector profile {profile}: the jwtToken claims have no 'iss' and no connected \
                 app is configured (SLUICE_SALESFORCE_CLIENT_ID)"
            ))
        })?;
    let audience = template
        .audience
        .unwrap_or_else(|| settings.login_host(sandbox).to_owned());
    Ok(Renewal::SignedJwt(JwtAssertion::new(
        key,
        issuer,
        template.subject,
        audience,
    )))
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

#[cfg(test)]
mod profile_tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use serde_json::json;

    use super::*;

    fn profile(properties: Value, credentials: Value) -> Profile {
        Profile {
            name: "sf-profile".into(),
            connector_type: model::ConnectorType::Salesforce,
            connector_label: None,
            properties: json!({ "Salesforce": properties }),
            credentials: Sensitive::new(json!({ "Salesforce": credentials })),
        }
    }

    fn settings() -> SalesforceSettings {
        SalesforceSettings {
            login_url: "http://login.test/".into(),
            sandbox_login_url: "http://sandbox.test".into(),
            client_id: Some("app".into()),
            client_secret: Some(Sensitive::new("app-secret".into())),
            ..SalesforceSettings::default()
        }
    }

    fn error(properties: Value, credentials: Value, settings: &SalesforceSettings) -> String {
        ProfileConfig::from_profile(&profile(properties, credentials), settings)
            .unwrap_err()
            .message
    }

    fn tokens(access: &str, refresh: Option<&str>) -> TokenSet {
        TokenSet {
            access_token: Sensitive::new(access.into()),
            refresh_token: refresh.map(|r| Sensitive::new(r.into())),
            expires_at: None,
            instance_url: None,
        }
    }

    #[test]
    fn an_authorization_code_is_exchanged_then_replaced_by_tokens() {
        let config = ProfileConfig::from_profile(
            &profile(
                json!({"instanceUrl": "https://acme.my.salesforce.com/"}),
                json!({"oAuth2GrantType": "AUTHORIZATION_CODE", "clientCredentialsArn":
                    "arn:aws:secretsmanager:us-east-1:123456789012:secret:app",
                    "oAuthRequest": {"authCode": "c0de", "redirectUri": "https://cb"}}),
            ),
            &settings(),
        )
        .unwrap();
        assert_eq!(
            config.instance_url.as_deref(),
            Some("https://acme.my.salesforce.com")
        );
        assert!(config.names_client_credentials_secret);
        assert!(matches!(config.renewal, Renewal::RefreshToken));
        match &config.initial_grant {
            Some(Grant::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
            }) => {
                assert_eq!(code.expose(), "c0de");
                assert_eq!(redirect_uri, "https://cb");
                assert!(code_verifier.is_none());
            }
            other => panic!("expected an authorization code grant, got {other:?}"),
        }
        let stored = config.stored_credentials(&tokens("access-1", Some("refresh-1")));
        assert_eq!(
            stored.expose(),
            &json!({"Salesforce": {"oAuth2GrantType": "AUTHORIZATION_CODE",
                "clientCredentialsArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:app",
                "accessToken": "access-1", "refreshToken": "refresh-1"}})
        );
        assert!(!format!("{config:?}").contains("c0de"));
    }

    #[test]
    fn tokens_are_used_as_given_and_a_rotated_refresh_token_replaces_the_old_one() {
        let config = ProfileConfig::from_profile(
            &profile(
                json!({"instanceUrl": "https://acme.example"}),
                json!({"accessToken": "a", "refreshToken": "r-old"}),
            ),
            &settings(),
        )
        .unwrap();
        assert!(config.initial_grant.is_none());
        assert_eq!(config.tokens.access_token.expose(), "a");
        let rotated = config.stored_credentials(&tokens("b", Some("r-new")));
        assert_eq!(rotated.expose()["Salesforce"]["refreshToken"], "r-new");
        // A renewal without a new refresh token keeps the profile's.
        let kept = config.stored_credentials(&tokens("c", None));
        assert_eq!(kept.expose()["Salesforce"]["refreshToken"], "r-old");
        assert_eq!(kept.expose()["Salesforce"]["accessToken"], "c");

        // Only a refresh token: it is exchanged first.
        let config = ProfileConfig::from_profile(
            &profile(json!({}), json!({"refreshToken": "r", "accessToken": ""})),
            &settings(),
        )
        .unwrap();
        assert!(matches!(config.initial_grant, Some(Grant::RefreshToken(_))));
    }

    #[test]
    fn bad_profiles_are_explained_without_secrets() {
        let settings = settings();
        let text = error(json!({}), json!({}), &settings);
        assert!(text.contains("need an accessToken"), "{text}");
        let text = error(
            json!({}),
            json!({"oAuthRequest": {"authCode": "s3cret-code"}}),
            &settings,
        );
        assert!(text.contains("redirectUri"), "{text}");
        assert!(!text.contains("s3cret-code"), "{text}");
        let text = error(
            json!({"instanceUrl": "ftp://acme"}),
            json!({"accessToken": "t"}),
            &settings,
        );
        assert!(
            text.contains("instanceUrl must be an http(s) URL"),
            "{text}"
        );
        let text = error(json!({}), json!({"accessToken": 42}), &settings);
        assert!(text.contains("invalid Salesforce credentials"), "{text}");
        let text = error(json!({"isSandboxEnvironment": "yes"}), json!({}), &settings);
        assert!(text.contains("invalid Salesforce properties"), "{text}");
        let text = error(
            json!({}),
            json!({"oAuth2GrantType": "JWT_BEARER"}),
            &settings,
        );
        assert!(text.contains("needs jwtToken"), "{text}");
        let text = error(
            json!({}),
            json!({"oAuth2GrantType": "CLIENT_CREDENTIALS"}),
            &SalesforceSettings::default(),
        );
        assert!(text.contains("SLUICE_SALESFORCE_CLIENT_SECRET"), "{text}");
        let text = error(
            json!({}),
            json!({"oAuth2GrantType": "JWT_BEARER", "jwtToken": "no-dots"}),
            &settings,
        );
        assert!(text.contains("jwtToken"), "{text}");
        assert!(!text.contains("no-dots"), "{text}");
    }

    #[test]
    fn client_credentials_repeat_their_grant() {
        let config = ProfileConfig::from_profile(
            &profile(
                json!({"isSandboxEnvironment": true}),
                json!({"oAuth2GrantType": "CLIENT_CREDENTIALS"}),
            ),
            &settings(),
        )
        .unwrap();
        assert!(config.sandbox);
        assert!(matches!(
            config.initial_grant,
            Some(Grant::ClientCredentials { .. })
        ));
        assert!(matches!(
            config.renewal,
            Renewal::Repeat(Grant::ClientCredentials { .. })
        ));
        assert_eq!(
            settings().token_url(config.sandbox),
            "http://sandbox.test/services/oauth2/token"
        );
    }

    fn unsigned(claims: &Value) -> String {
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    fn key_file(dir: &std::path::Path) -> PathBuf {
        use aws_lc_rs::encoding::AsDer as _;
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(pair.as_der().unwrap().as_ref())
        );
        let path = dir.join("app.pem");
        std::fs::write(&path, pem).unwrap();
        path
    }

    fn claims_of(grant: &Option<Grant>) -> Value {
        let Some(Grant::JwtBearer(jwt)) = grant else {
            panic!("expected a JWT bearer grant, got {grant:?}");
        };
        let claims = jwt.expose().split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap()
    }

    #[test]
    fn jwt_bearer_profiles_use_a_signed_token_or_sign_their_claims() {
        let signed = "aGVhZGVy.Y2xhaW1z.c2lnbmF0dXJl";
        let config = ProfileConfig::from_profile(
            &profile(
                json!({}),
                json!({"oAuth2GrantType": "JWT_BEARER", "jwtToken": signed}),
            ),
            &settings(),
        )
        .unwrap();
        assert!(
            matches!(&config.renewal, Renewal::Repeat(Grant::JwtBearer(t)) if t.expose() == signed)
        );

        let template = unsigned(&json!({"sub": "user@example.com"}));
        let credentials = json!({"oAuth2GrantType": "JWT_BEARER", "jwtToken": template});
        let text = error(json!({}), credentials.clone(), &settings());
        assert!(text.contains("SLUICE_SALESFORCE_JWT_KEY_FILE"), "{text}");

        let dir = tempfile::tempdir().unwrap();
        let mut with_key = settings();
        with_key.jwt_key_file = Some(key_file(dir.path()));
        let config =
            ProfileConfig::from_profile(&profile(json!({}), credentials.clone()), &with_key)
                .unwrap();
        assert!(matches!(config.renewal, Renewal::SignedJwt(_)));
        let claims = claims_of(&config.initial_grant);
        assert_eq!(claims["iss"], "app");
        assert_eq!(claims["sub"], "user@example.com");
        assert_eq!(claims["aud"], "http://login.test");
        // A sandbox profile addresses the sandbox login host; claims in the template win.
        let config = ProfileConfig::from_profile(
            &profile(
                json!({"isSandboxEnvironment": true}),
                json!({"oAuth2GrantType": "JWT_BEARER", "jwtToken":
                    unsigned(&json!({"sub": "u", "iss": "other-app"}))}),
            ),
            &with_key,
        )
        .unwrap();
        let claims = claims_of(&config.initial_grant);
        assert_eq!(claims["aud"], "http://sandbox.test");
        assert_eq!(claims["iss"], "other-app");
        // With an access token already stored, nothing is signed until a renewal.
        let config = ProfileConfig::from_profile(
            &profile(
                json!({}),
                json!({"oAuth2GrantType": "JWT_BEARER", "jwtToken": template, "accessToken": "a"}),
            ),
            &with_key,
        )
        .unwrap();
        assert!(config.initial_grant.is_none());

        let mut anonymous = with_key.clone();
        anonymous.client_id = None;
        let text = error(json!({}), credentials.clone(), &anonymous);
        assert!(text.contains("'iss'"), "{text}");
        let mut broken = with_key;
        std::fs::write(dir.path().join("broken.pem"), "not a key").unwrap();
        broken.jwt_key_file = Some(dir.path().join("broken.pem"));
        let text = error(json!({}), credentials.clone(), &broken);
        assert!(text.contains("broken.pem"), "{text}");
        broken.jwt_key_file = Some(dir.path().join("missing.pem"));
        let text = error(json!({}), credentials, &broken);
        assert!(
            text.contains("missing.pem") && text.contains("cannot be read"),
            "{text}"
        );
    }

    #[test]
    fn the_instance_url_of_the_token_response_fills_a_missing_property() {
        let given = json!({"Salesforce": {"instanceUrl": "https://given.example"}});
        assert_eq!(stored_properties(&given, Some("https://other")), given);
        assert_eq!(
            stored_properties(
                &json!({"Salesforce": {"isSandboxEnvironment": true}}),
                Some("https://x")
            ),
            json!({"Salesforce": {"isSandboxEnvironment": true, "instanceUrl": "https://x"}})
        );
        assert_eq!(
            stored_properties(
                &json!({"Salesforce": {"instanceUrl": " "}}),
                Some("https://x")
            ),
            json!({"Salesforce": {"instanceUrl": "https://x"}})
        );
        assert_eq!(
            stored_properties(&Value::Null, Some("https://x")),
            json!({"Salesforce": {"instanceUrl": "https://x"}})
        );
        assert_eq!(stored_properties(&given, None), given);
    }
}
