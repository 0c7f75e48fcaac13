//! Shared primitives used by every other Sluice crate.
//!
//! This crate has no internal dependencies on purpose: it is the bottom of the dependency graph.
//! It owns [`Sensitive`] (secrets that cannot leak through `Debug`/`Display`), the [`Clock`]
//! abstraction (so schedulers and tests can control time) and the [`ErrorDomain`] classification
//! that decides how a failure is reported to API callers and in run records.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A secret value. `Debug` and `Display` print `**REDACTED**`, so a secret cannot reach a log
/// line or an error message by accident; call [`Sensitive::expose`] where the value is needed.
///
/// Serialization is transparent because secrets must be persisted (encrypted) and sent to the
/// services they authenticate against. API response types never contain `Sensitive` members.
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    /// Wraps a secret.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// Gives access to the secret itself.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the secret.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Sensitive<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**REDACTED**")
    }
}

impl<T> fmt::Display for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**REDACTED**")
    }
}

/// Where a failure comes from, which decides how it is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorDomain {
    /// The caller's input or configuration is wrong (bad flow, missing field, malformed file).
    User,
    /// A remote system failed (S3 down, SaaS 5xx, authentication refused).
    External,
    /// A bug or an unexpected local condition.
    Internal,
}

/// A source of the current time. Production uses [`SystemClock`]; tests use a manual clock.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// Boxed error for places that only need to carry a cause along.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_never_prints_its_value() {
        let secret = Sensitive::new("hunter2".to_string());
        assert_eq!(format!("{secret:?}"), "**REDACTED**");
        assert_eq!(format!("{secret}"), "**REDACTED**");
        assert_eq!(secret.expose(), "hunter2");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"hunter2\"");
    }
}
