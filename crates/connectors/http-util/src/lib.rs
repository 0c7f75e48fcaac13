//! Shared HTTP plumbing for SaaS connectors.
//!
//! - [`retry`]: an [`HttpClient`] that retries transient failures with full-jitter exponential
//!   backoff, honouring `Retry-After`, within a time budget ([`RetryConfig`]).
//! - [`oauth2`]: OAuth 2.0 grant exchanges and a [`TokenManager`] with renewal before expiry
//!   and after a `401`, single-flight renewal, and a [`TokenStore`] persistence hook.
//! - [`jwt`]: RS256 JWT bearer assertions signed by Sluice ([`JwtAssertion`]) from a PEM key,
//!   and the claims of unsigned JWTs ([`ClaimsTemplate`]).
//!
//! Connectors keep their API specifics (error bodies, paging, limits) and use these for the
//! parts every OAuth-protected HTTP API shares.

pub mod jwt;
pub mod oauth2;
pub mod retry;

pub use jwt::{ClaimsTemplate, JwtAssertion, JwtError, RsaSigningKey};

pub use oauth2::{Grant, OAuth2Client, OAuth2Error, Renewal, TokenManager, TokenSet, TokenStore};
pub use retry::{HttpClient, HttpError, HttpResponse, HttpStream, RetryConfig};
