//! Shared services and the per-request state handlers receive.

use std::ops::Deref;
use std::sync::Arc;

use sluice_connector_api::ConnectorRegistry;
use sluice_metastore::MetadataStore;
use sluice_metastore::secrets::SecretBox;

use crate::config::ServerConfig;
use crate::idempotency::{FingerprintKey, TokenLocks};
use crate::runs::RunManager;

/// Everything the handlers share, built once at startup.
#[derive(Debug)]
pub(crate) struct Services {
    pub config: ServerConfig,
    pub store: Arc<dyn MetadataStore>,
    pub secrets: Arc<SecretBox>,
    pub registry: Arc<dyn ConnectorRegistry>,
    pub capabilities: sluice_domain::Capabilities,
    pub runs: RunManager,
    pub fingerprint: FingerprintKey,
    pub token_locks: TokenLocks,
    /// Serialises read-modify-write cycles on flow documents (handlers and the run manager
    /// both update them), so concurrent updates are never lost.
    pub flow_lock: Arc<tokio::sync::Mutex<()>>,
    /// Serialises writes of connector profile records (handlers, and connectors writing
    /// renewed credentials back), so a write-back never resurrects an older record.
    pub profile_lock: Arc<tokio::sync::Mutex<()>>,
    /// Drives scheduled flows.
    pub scheduler: sluice_scheduler::Scheduler,
    /// Polls the event sources of active event flows.
    pub events: crate::events::EventPoller,
    /// The time schedules follow (the system clock, or a test clock).
    pub clock: sluice_types::SharedClock,
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    /// The access key id that signed the request.
    pub access_key_id: String,
    /// The caller's ARN, used for `createdBy` / `lastUpdatedBy` / `registeredBy`.
    pub arn: String,
}

/// What a handler sees: the shared services plus the authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    services: Arc<Services>,
    pub caller: Caller,
}

impl AppState {
    pub(crate) fn new(services: Arc<Services>, caller: Caller) -> Self {
        Self { services, caller }
    }

    /// The ARN of flow `name` in this server's account and region.
    pub(crate) fn flow_arn(&self, name: &str) -> String {
        sluice_domain::arn::flow(&self.config.region, &self.config.account_id, name)
    }

    /// The ARN of connector profile `name`.
    pub(crate) fn profile_arn(&self, name: &str) -> String {
        sluice_domain::arn::connector_profile(&self.config.region, &self.config.account_id, name)
    }

    /// The ARN of registered connector `label`.
    pub(crate) fn connector_arn(&self, label: &str) -> String {
        sluice_domain::arn::connector(&self.config.region, &self.config.account_id, label)
    }
}

impl Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}
