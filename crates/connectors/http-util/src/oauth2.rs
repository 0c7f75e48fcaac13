//! OAuth 2.0 for connector profiles: grant exchanges at a token endpoint (RFC 6749 §4.1, §4.4,
//! §6 and the RFC 7523 JWT bearer grant) and a [`TokenManager`] that hands out access tokens,
//! renews them shortly before they expire and after a `401`, never runs two renewals at once,
//! and reports renewed tokens to a [`TokenStore`] so they survive the run.
//!
//! Secrets are [`Sensitive`] throughout, and no error message carries one.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::Deserialize;
use sluice_types::{Sensitive, SharedClock, SystemClock};
use tokio::sync::Mutex;

use crate::jwt::{JwtAssertion, JwtError};
use crate::retry::{HttpClient, HttpError};

/// A grant to exchange at the token endpoint.
#[derive(Debug, Clone)]
pub enum Grant {
    /// Authorization code, with its redirect URI and PKCE verifier.
    AuthorizationCode {
        /// The code from the authorization redirect.
        code: Sensitive<String>,
        /// The redirect URI the code was issued for.
        redirect_uri: String,
        /// PKCE `code_verifier`, when the flow used one.
        code_verifier: Option<Sensitive<String>>,
    },
    /// Refresh token.
    RefreshToken(Sensitive<String>),
    /// Client credentials (the client id and secret are the grant).
    ClientCredentials {
        /// Requested scope, if any.
        scope: Option<String>,
    },
    /// A signed JWT assertion (RFC 7523).
    JwtBearer(Sensitive<String>),
}

impl Grant {
    /// The `grant_type` form value.
    pub fn grant_type(&self) -> &'static str {
        match self {
            Grant::AuthorizationCode { .. } => "authorization_code",
            Grant::RefreshToken(_) => "refresh_token",
            Grant::ClientCredentials { .. } => "client_credentials",
            Grant::JwtBearer(_) => "urn:ietf:params:oauth:grant-type:jwt-bearer",
        }
    }
}

/// Tokens from a token endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSet {
    /// Bearer token for API calls.
    pub access_token: Sensitive<String>,
    /// Refresh token, when the provider issued one.
    pub refresh_token: Option<Sensitive<String>>,
    /// When the access token expires, when the provider said (`expires_in`).
    pub expires_at: Option<DateTime<Utc>>,
    /// Provider-specific API base URL (Salesforce's `instance_url`).
    pub instance_url: Option<String>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("expires_at", &self.expires_at)
            .field("instance_url", &self.instance_url)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

/// An OAuth 2.0 failure. Messages carry the provider's error text, never a token or secret.
#[derive(Debug, thiserror::Error)]
pub enum OAuth2Error {
    /// The provider refused the grant (`{"error", "error_description"}`).
    #[error("the OAuth 2.0 provider refused the {grant_type} grant: {error}: {description}")]
    Rejected {
        /// Grant type attempted.
        grant_type: &'static str,
        /// OAuth `error` code.
        error: String,
        /// OAuth `error_description`.
        description: String,
    },
    /// The refresh token no longer works; the user must authorise the profile again.
    #[error(
        "the refresh token of the connector profile was refused ({description}); \
         re-authorise the connector profile to continue"
    )]
    Revoked {
        /// The provider's text.
        description: String,
    },
    /// Nothing can renew the access token (no refresh token, no client credentials).
    #[error(
        "the access token of the connector profile expired and the profile has no refresh \
         token or other grant to renew it; re-authorise the connector profile"
    )]
    CannotRenew,
    /// The token endpoint answered something that is not a token response.
    #[error(
        "the OAuth 2.0 token endpoint answered HTTP {status} with an unexpected body: {excerpt}"
    )]
    Malformed {
        /// HTTP status.
        status: u16,
        /// Start of the body, with any token-looking field removed.
        excerpt: String,
    },
    /// A JWT bearer assertion could not be signed.
    #[error("cannot sign the JWT bearer assertion: {0}")]
    Assertion(#[from] JwtError),
    /// Transport failure.
    #[error(transparent)]
    Http(#[from] HttpError),
}

impl OAuth2Error {
    /// Whether the error means the credentials are bad (as opposed to the provider being down).
    pub fn is_authentication(&self) -> bool {
        !matches!(self, OAuth2Error::Http(_))
    }
}

/// Where an OAuth client authenticates and as whom.
#[derive(Clone)]
pub struct OAuth2Client {
    http: HttpClient,
    token_url: String,
    client_id: Option<String>,
    client_secret: Option<Sensitive<String>>,
}

impl fmt::Debug for OAuth2Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2Client")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: Option<serde_json::Value>,
    instance_url: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
    #[serde(default)]
    error_description: String,
}

impl OAuth2Client {
    /// A client for `token_url`, identified by a client id and (for confidential clients) secret.
    pub fn new(
        http: HttpClient,
        token_url: impl Into<String>,
        client_id: Option<String>,
        client_secret: Option<Sensitive<String>>,
    ) -> Self {
        Self {
            http,
            token_url: token_url.into(),
            client_id,
            client_secret,
        }
    }

    /// The token endpoint.
    pub fn token_url(&self) -> &str {
        &self.token_url
    }

    /// Exchanges a grant for tokens. `now` dates `expires_in`.
    pub async fn exchange(
        &self,
        grant: &Grant,
        now: DateTime<Utc>,
    ) -> Result<TokenSet, OAuth2Error> {
        let mut form: Vec<(&str, String)> = vec![("grant_type", grant.grant_type().to_owned())];
        match grant {
            Grant::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
            } => {
                form.push(("code", code.expose().clone()));
                form.push(("redirect_uri", redirect_uri.clone()));
                if let Some(verifier) = code_verifier {
                    form.push(("code_verifier", verifier.expose().clone()));
                }
            }
            Grant::RefreshToken(token) => form.push(("refresh_token", token.expose().clone())),
            Grant::ClientCredentials { scope } => {
                if let Some(scope) = scope {
                    form.push(("scope", scope.clone()));
                }
            }
            Grant::JwtBearer(assertion) => form.push(("assertion", assertion.expose().clone())),
        }
        if let Some(id) = &self.client_id {
            form.push(("client_id", id.clone()));
        }
        if let Some(secret) = &self.client_secret {
            form.push(("client_secret", secret.expose().clone()));
        }
        let response = self
            .http
            .send(
                "OAuth 2.0 token request",
                |c| c.post(&self.token_url).form(&form),
                |_| false,
            )
            .await?;
        if response.status.is_success() {
            let parsed: TokenResponse =
                serde_json::from_slice(&response.body).map_err(|_| OAuth2Error::Malformed {
                    status: response.status.as_u16(),
                    excerpt: "a success response without access_token".to_owned(),
                })?;
            let expires_at = parsed
                .expires_in
                .and_then(|v| {
                    v.as_i64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                })
                .map(|seconds| now + ChronoDuration::seconds(seconds));
            return Ok(TokenSet {
                access_token: Sensitive::new(parsed.access_token),
                refresh_token: parsed.refresh_token.map(Sensitive::new),
                expires_at,
                instance_url: parsed.instance_url,
            });
        }
        match serde_json::from_slice::<ErrorResponse>(&response.body) {
            Ok(error)
                if matches!(grant, Grant::RefreshToken(_)) && error.error == "invalid_grant" =>
            {
                Err(OAuth2Error::Revoked {
                    description: error.error_description,
                })
            }
            Ok(error) => Err(OAuth2Error::Rejected {
                grant_type: grant.grant_type(),
                error: error.error,
                description: error.error_description,
            }),
            Err(_) => Err(OAuth2Error::Malformed {
                status: response.status.as_u16(),
                // Error bodies that are not OAuth JSON are HTML or text pages, not tokens.
                excerpt: response.body_excerpt(200),
            }),
        }
    }
}

/// Persists tokens renewed during a run (encrypted, by the server's profile store).
#[async_trait]
pub trait TokenStore: Send + Sync + fmt::Debug {
    /// Saves `tokens` for the profile the manager belongs to.
    async fn save(&self, tokens: &TokenSet) -> Result<(), String>;
}

/// How a [`TokenManager`] renews an access token.
#[derive(Debug, Clone)]
pub enum Renewal {
    /// With the current refresh token.
    RefreshToken,
    /// By repeating a grant that needs no user (client credentials, a pre-signed JWT).
    Repeat(Grant),
    /// With a JWT bearer assertion signed afresh for each renewal.
    SignedJwt(JwtAssertion),
    /// It cannot: an expired token fails the run.
    Never,
}

struct ManagerState {
    tokens: TokenSet,
}

/// Hands out access tokens and renews them.
pub struct TokenManager {
    client: OAuth2Client,
    renewal: Renewal,
    state: Mutex<ManagerState>,
    store: Option<Arc<dyn TokenStore>>,
    clock: SharedClock,
    skew: ChronoDuration,
    renewals: AtomicU64,
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManager")
            .field("client", &self.client)
            .field("renewals", &self.renewals.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl TokenManager {
    /// A manager starting from `tokens`, renewing them per `renewal`.
    pub fn new(client: OAuth2Client, tokens: TokenSet, renewal: Renewal) -> Self {
        Self {
            client,
            renewal,
            state: Mutex::new(ManagerState { tokens }),
            store: None,
            clock: Arc::new(SystemClock),
            skew: ChronoDuration::seconds(60),
            renewals: AtomicU64::new(0),
        }
    }

    /// Reports renewed tokens to `store`.
    pub fn with_store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Uses `clock` to decide expiry.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Renews this long before `expires_at` (default 60 s).
    pub fn with_skew(mut self, skew: ChronoDuration) -> Self {
        self.skew = skew;
        self
    }

    /// How many renewals this manager made.
    pub fn renewals(&self) -> u64 {
        self.renewals.load(Ordering::Relaxed)
    }

    /// The current tokens.
    pub async fn tokens(&self) -> TokenSet {
        self.state.lock().await.tokens.clone()
    }

    /// A usable access token, renewed first when it expires within the skew.
    pub async fn access_token(&self) -> Result<Sensitive<String>, OAuth2Error> {
        let mut state = self.state.lock().await;
        let expiring = state
            .tokens
            .expires_at
            .is_some_and(|at| at - self.skew <= self.clock.now());
        if expiring {
            self.renew(&mut state).await?;
        }
        Ok(state.tokens.access_token.clone())
    }

    /// Called after the API refused `rejected` with a 401: renews it, unless another task
    /// already did (then the newer token is returned without a second renewal).
    pub async fn refresh_after_unauthorized(
        &self,
        rejected: &Sensitive<String>,
    ) -> Result<Sensitive<String>, OAuth2Error> {
        // Holding the async lock across the exchange is what makes renewals single-flight.
        let mut state = self.state.lock().await;
        if state.tokens.access_token != *rejected {
            return Ok(state.tokens.access_token.clone());
        }
        self.renew(&mut state).await?;
        Ok(state.tokens.access_token.clone())
    }

    async fn renew(&self, state: &mut ManagerState) -> Result<(), OAuth2Error> {
        let grant = match &self.renewal {
            Renewal::RefreshToken => match &state.tokens.refresh_token {
                Some(token) => Grant::RefreshToken(token.clone()),
                None => return Err(OAuth2Error::CannotRenew),
            },
            Renewal::Repeat(grant) => grant.clone(),
            Renewal::SignedJwt(assertion) => Grant::JwtBearer(assertion.sign(self.clock.now())?),
            Renewal::Never => return Err(OAuth2Error::CannotRenew),
        };
        let mut fresh = self.client.exchange(&grant, self.clock.now()).await?;
        if fresh.refresh_token.is_none() {
            fresh.refresh_token = state.tokens.refresh_token.clone();
        }
        if fresh.instance_url.is_none() {
            fresh.instance_url = state.tokens.instance_url.clone();
        }
        state.tokens = fresh;
        self.renewals.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            grant_type = grant.grant_type(),
            "renewed the OAuth 2.0 access token"
        );
        if let Some(store) = &self.store
            && let Err(error) = store.save(&state.tokens).await
        {
            // The run can go on with the new token; the next run renews again.
            tracing::warn!(%error, "could not persist the renewed OAuth 2.0 tokens");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use sluice_fake_salesforce::FakeSalesforce;
    use sluice_types::Clock;

    use super::*;
    use crate::retry::RetryConfig;

    #[derive(Debug, Default)]
    struct MemoryStore(StdMutex<Vec<TokenSet>>);

    #[async_trait]
    impl TokenStore for MemoryStore {
        async fn save(&self, tokens: &TokenSet) -> Result<(), String> {
            self.0
                .lock()
                .map_err(|e| e.to_string())?
                .push(tokens.clone());
            Ok(())
        }
    }

    #[derive(Debug)]
    struct FixedClock(DateTime<Utc>);

    impl Clock for FixedClock {
        fn now(&self) -> DateTime<Utc> {
            self.0
        }
    }

    fn client(fake: &FakeSalesforce, secret: &str) -> OAuth2Client {
        OAuth2Client::new(
            HttpClient::new(RetryConfig::fast()).unwrap(),
            format!("{}/services/oauth2/token", fake.url()),
            Some("app".into()),
            Some(Sensitive::new(secret.into())),
        )
    }

    fn tokens(access: &str, refresh: Option<String>) -> TokenSet {
        TokenSet {
            access_token: Sensitive::new(access.into()),
            refresh_token: refresh.map(Sensitive::new),
            expires_at: None,
            instance_url: None,
        }
    }

    #[tokio::test]
    async fn authorization_code_with_pkce_and_refusals() {
        let fake = FakeSalesforce::start(0).await.unwrap();
        fake.register_client("app", "s3cret");
        let verifier = "v".repeat(43);
        let code = fake.issue_auth_code("app", "https://cb", Some(&verifier));
        let grant = |verifier: &str| Grant::AuthorizationCode {
            code: Sensitive::new(code.clone()),
            redirect_uri: "https://cb".into(),
            code_verifier: Some(Sensitive::new(verifier.to_owned())),
        };
        let wrong = client(&fake, "s3cret")
            .exchange(&grant("wrong"), Utc::now())
            .await
            .unwrap_err();
        assert!(
            matches!(&wrong, OAuth2Error::Rejected { error, .. } if error == "invalid_grant"),
            "{wrong}"
        );
        // The failed attempt consumed the code, as providers do.
        let code = fake.issue_auth_code("app", "https://cb", Some(&verifier));
        let set = client(&fake, "s3cret")
            .exchange(
                &Grant::AuthorizationCode {
                    code: Sensitive::new(code),
                    redirect_uri: "https://cb".into(),
                    code_verifier: Some(Sensitive::new(verifier.clone())),
                },
                Utc::now(),
            )
            .await
            .unwrap();
        assert!(set.refresh_token.is_some());
        assert_eq!(set.instance_url.as_deref(), Some(fake.url().as_str()));
        let bad_secret = client(&fake, "nope")
            .exchange(&Grant::ClientCredentials { scope: None }, Utc::now())
            .await
            .unwrap_err();
        let text = bad_secret.to_string();
        assert!(text.contains("invalid_client"), "{text}");
        assert!(!text.contains("nope"), "{text}");
    }

    #[tokio::test]
    async fn single_flight_refresh_after_401_and_persistence() {
        let fake = FakeSalesforce::start(0).await.unwrap();
        fake.register_client("app", "s3cret");
        let refresh = fake.issue_refresh_token();
        let store = Arc::new(MemoryStore::default());
        let manager = Arc::new(
            TokenManager::new(
                client(&fake, "s3cret"),
                tokens("stale", Some(refresh.clone())),
                Renewal::RefreshToken,
            )
            .with_store(store.clone()),
        );
        let stale = Sensitive::new("stale".to_owned());
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let manager = manager.clone();
            let stale = stale.clone();
            tasks.push(tokio::spawn(async move {
                manager.refresh_after_unauthorized(&stale).await
            }));
        }
        let mut seen = Vec::new();
        for task in tasks {
            seen.push(task.await.unwrap().unwrap());
        }
        assert!(seen.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(manager.renewals(), 1);
        assert_eq!(fake.stats().grants.get("refresh_token"), Some(&1));
        let saved = store.0.lock().unwrap().clone();
        assert_eq!(saved.len(), 1);
        // Salesforce does not rotate refresh tokens; the old one is kept.
        assert_eq!(
            saved[0].refresh_token.as_ref().map(|t| t.expose().clone()),
            Some(refresh.clone())
        );
        // Revocation reads as an instruction to re-authorise.
        fake.revoke_refresh_token(&refresh);
        let current = manager.access_token().await.unwrap();
        let revoked = manager
            .refresh_after_unauthorized(&current)
            .await
            .unwrap_err();
        assert!(matches!(revoked, OAuth2Error::Revoked { .. }));
        assert!(revoked.to_string().contains("re-authorise"), "{revoked}");
        assert!(!revoked.to_string().contains(&refresh));
    }

    #[tokio::test]
    async fn renews_before_expiry_and_cannot_renew_without_a_grant() {
        let fake = FakeSalesforce::start(0).await.unwrap();
        fake.register_client("app", "s3cret");
        let now = Utc::now();
        let mut expiring = tokens("old", None);
        expiring.expires_at = Some(now + ChronoDuration::seconds(30));
        let manager = TokenManager::new(
            client(&fake, "s3cret"),
            expiring.clone(),
            Renewal::Repeat(Grant::ClientCredentials { scope: None }),
        )
        .with_clock(Arc::new(FixedClock(now)));
        let fresh = manager.access_token().await.unwrap();
        assert_ne!(fresh.expose(), "old");
        assert_eq!(manager.renewals(), 1);
        // Fresh tokens without expires_in are not renewed again.
        assert_eq!(manager.access_token().await.unwrap(), fresh);
        assert_eq!(manager.renewals(), 1);

        let stuck = TokenManager::new(client(&fake, "s3cret"), expiring, Renewal::RefreshToken)
            .with_clock(Arc::new(FixedClock(now)));
        assert!(matches!(
            stuck.access_token().await,
            Err(OAuth2Error::CannotRenew)
        ));
    }

    #[tokio::test]
    async fn signed_jwt_renewals_sign_a_new_assertion_each_time() {
        use aws_lc_rs::encoding::AsDer as _;
        let fake = FakeSalesforce::start(0).await.unwrap();
        fake.register_client("app", "s3cret");
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let key =
            crate::jwt::RsaSigningKey::from_pkcs8_der(pair.as_der().unwrap().as_ref()).unwrap();
        let assertion = JwtAssertion::new(Arc::new(key), "app", "user@example.com", fake.url());
        let store = Arc::new(MemoryStore::default());
        let manager = TokenManager::new(
            client(&fake, "s3cret"),
            tokens("expired", None),
            Renewal::SignedJwt(assertion),
        )
        .with_store(store.clone());
        let first = manager
            .refresh_after_unauthorized(&Sensitive::new("expired".to_owned()))
            .await
            .unwrap();
        let second = manager.refresh_after_unauthorized(&first).await.unwrap();
        assert_ne!(first, second);
        assert_eq!(
            fake.stats()
                .grants
                .get("urn:ietf:params:oauth:grant-type:jwt-bearer"),
            Some(&2)
        );
        assert_eq!(store.0.lock().unwrap().len(), 2);
        assert!(!format!("{manager:?}").contains(second.expose()));
    }
}
