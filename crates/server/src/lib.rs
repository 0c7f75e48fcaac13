//! The AppFlow-compatible HTTP control API.
//!
//! Sluice speaks AppFlow's `2020-08-23` restJson1 protocol, so the real `aws appflow` CLI and
//! boto3 work against it unchanged (`--endpoint-url` / `AWS_ENDPOINT_URL_APPFLOW`). One request
//! goes through:
//!
//! ```text
//! frontend   read body (bounded) -> route on the raw path (router) -> SigV4 (auth, sigv4)
//! api        parse + model validation -> idempotency (clientToken) -> ops/<operation>.rs
//! frontend   JSON response or AppFlow error (error) -> log line -> audit entry (audit)
//! ```
//!
//! Handlers validate with the generated model (`sluice_api_model::validate`) and the domain
//! rules (`sluice_domain`), keep their state in the metadata store (`sluice_metastore`), and
//! hand runs to the run manager (`runs`), which executes them with
//! `sluice_pipeline` on a bounded pool.
//!
//! Custom connectors registered with `RegisterConnector` are stored and listed, but Sluice
//! cannot invoke AWS Lambda: flows that use such a connector are rejected at `CreateFlow` /
//! `UpdateFlow` with a `ValidationException` that says so.
//!
//! Scheduled flows are driven by `sluice_scheduler` (`schedules` wires it to the metadata
//! store and the run manager: activation, replanning, watermarks, the deactivation threshold,
//! catch-up after a restart). Event-triggered flows run on signed webhook calls
//! (`POST /webhooks/flows/{flowName}`) and, for S3 sources, when a new object appears under
//! the source prefix (`events`). Schedules follow [`ServerConfig::clock`]: the system clock,
//! or a [`FileClock`] in end-to-end tests.
//!
//! Start a server with [`serve`], or with [`Server::bind`] + [`Server::run`] to learn the bound
//! address first (tests bind `127.0.0.1:0`).

mod api;
mod audit;
mod auth;
pub mod config;
mod credentials;
mod documents;
mod error;
mod events;
mod frontend;
mod idempotency;
mod pagination;
mod router;
mod runs;
mod schedules;
mod schema;
pub mod sigv4;
mod state;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sluice_metastore::SqliteStore;
use sluice_metastore::secrets::SecretBox;
use tokio::net::TcpListener;

pub use config::{FileClock, RootCredentials, ServerConfig};
pub use error::{ApiError, ErrorCode, ServerError};

use crate::idempotency::{FingerprintKey, TokenLocks};
use crate::runs::{RunLimits, RunManager};
use crate::state::Services;

/// How often expired client tokens are purged.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// A bound, not yet running server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    storage_description: String,
    services: Arc<Services>,
}

impl Server {
    /// Opens the data directory (metadata store, keys, buckets), recovers runs interrupted by a
    /// previous process, and binds the listen address.
    ///
    /// # Errors
    /// [`ServerError`] naming the file, key or address that failed.
    pub async fn bind(config: ServerConfig) -> Result<Self, ServerError> {
        config.validate()?;
        config::ensure_dir(&config.data_dir)?;
        let store = SqliteStore::open(&config.database_path())?;
        let secrets = SecretBox::load_or_create(&config.master_key_path())
            .map_err(|error| ServerError::Secrets(error.to_string()))?;
        let fingerprint = FingerprintKey::load_or_create(&config.fingerprint_key_path())?;
        let storage = Arc::new(sluice_storage::Storage::new(config.storage.clone()));
        let event_storage = storage.clone();
        let storage_description = storage.describe();
        let store: Arc<dyn sluice_metastore::MetadataStore> = Arc::new(store);
        let secrets = Arc::new(secrets);
        let profile_lock = Arc::new(tokio::sync::Mutex::new(()));
        let registry: Arc<dyn sluice_connector_api::ConnectorRegistry> = match &config.connectors {
            Some(registry) => registry.clone(),
            None => {
                let mut settings = config.connector_settings.clone();
                settings.credentials_store = Some(Arc::new(credentials::ProfileCredentials {
                    store: store.clone(),
                    secrets: secrets.clone(),
                    profile_lock: profile_lock.clone(),
                }));
                Arc::new(sluice_connectors::Registry::with_settings(
                    storage, settings,
                ))
            }
        };
        let flow_lock = Arc::new(tokio::sync::Mutex::new(()));
        let runs = RunManager::new(
            store.clone(),
            registry.clone(),
            secrets.clone(),
            flow_lock.clone(),
            RunLimits {
                max_concurrent: config.max_concurrent_runs,
                max_pending: config.max_pending_runs,
                progress_interval: config.progress_interval,
            },
        );
        let recovered = runs.recover().await?;
        if !recovered.is_empty() {
            tracing::warn!(
                recovered = recovered.len(),
                "marked runs interrupted by the previous shutdown as failed"
            );
        }
        idempotency::purge_expired(store.as_ref()).await;

        let clock = config.clock.clone();
        let scheduler = sluice_scheduler::Scheduler::new(
            Arc::new(schedules::StoreAdapter {
                store: store.clone(),
                flow_lock: flow_lock.clone(),
                clock: clock.clone(),
            }),
            Arc::new(schedules::Launcher {
                store: store.clone(),
                runs: runs.clone(),
                flow_lock: flow_lock.clone(),
            }),
            clock.clone(),
        );
        runs.attach_scheduler(scheduler.clone());
        let events = events::EventPoller {
            store: store.clone(),
            runs: runs.clone(),
            flow_lock: flow_lock.clone(),
            sources: Arc::new(vec![Arc::new(events::S3Objects {
                storage: event_storage,
            })]),
            clock: clock.clone(),
        };
        scheduler
            .load()
            .await
            .map_err(|error| ServerError::Scheduler(error.to_string()))?;
        // Interrupted runs of scheduled flows count as failed runs of their schedule.
        for (flow_name, execution_id) in &recovered {
            if let Err(error) = scheduler.on_run_interrupted(flow_name, execution_id).await {
                tracing::warn!(%error, flow_name, "cannot count an interrupted run as failed");
            }
        }

        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    address: config.listen.to_string(),
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            address: config.listen.to_string(),
            source,
        })?;
        let services = Arc::new(Services {
            capabilities: api::capabilities(registry.as_ref()),
            config,
            store,
            secrets,
            registry,
            runs,
            fingerprint,
            token_locks: TokenLocks::default(),
            flow_lock,
            profile_lock,
            scheduler,
            events,
            clock,
        });
        Ok(Self {
            listener,
            local_addr,
            storage_description,
            services,
        })
    }

    /// The address the server listens on (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where bucket data lives (local folder or S3 endpoint), for startup logs; no secrets.
    pub fn storage_description(&self) -> &str {
        &self.storage_description
    }

    /// Serves requests until `shutdown` completes, then stops accepting connections, lets
    /// in-flight requests finish, cancels running flow runs and waits (up to the configured
    /// grace period) for them to record their final status.
    ///
    /// # Errors
    /// [`ServerError::Serve`] when the listener fails.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let Self {
            listener, services, ..
        } = self;
        let app = axum::Router::new()
            .fallback(frontend::handle)
            .with_state(services.clone())
            .into_make_service_with_connect_info::<SocketAddr>();

        let purge_stop = tokio_util::sync::CancellationToken::new();
        let purge = {
            let store = services.store.clone();
            let stop = purge_stop.clone();
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(PURGE_INTERVAL);
                ticker.tick().await;
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        _ = ticker.tick() => idempotency::purge_expired(store.as_ref()).await,
                    }
                }
            })
        };

        let scheduler = {
            let scheduler = services.scheduler.clone();
            let stop = purge_stop.clone();
            let poll = services.config.scheduler_poll;
            tokio::spawn(async move {
                // A clock that jumps (the test clock) is not noticed by sleeping until the next
                // tick, so the loop is woken up regularly instead.
                let poller = poll.map(|every| {
                    let scheduler = scheduler.clone();
                    let stop = stop.clone();
                    tokio::spawn(async move {
                        let mut ticker = tokio::time::interval(every);
                        loop {
                            tokio::select! {
                                () = stop.cancelled() => return,
                                _ = ticker.tick() => scheduler.wake(),
                            }
                        }
                    })
                });
                scheduler.run(stop.cancelled_owned()).await;
                if let Some(poller) = poller {
                    let _ = poller.await;
                }
            })
        };

        let events = {
            let poller = services.events.clone();
            let stop = purge_stop.clone();
            let every = services.config.event_poll_interval;
            tokio::spawn(poller.run(every, stop))
        };

        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        tracing::info!("stopped accepting requests; canceling runs in progress");
        // Stopped first, so no scheduled run starts while the others are being canceled.
        purge_stop.cancel();
        let _ = scheduler.await;
        let _ = events.await;
        let _ = purge.await;
        services.runs.shutdown(services.config.shutdown_grace).await;
        served.map_err(ServerError::Serve)
    }
}

/// Runs the server until `shutdown` completes. See [`Server::bind`] and [`Server::run`].
///
/// # Errors
/// [`ServerError`] when the server cannot start or its listener fails.
pub async fn serve(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    Server::bind(config).await?.run(shutdown).await
}
