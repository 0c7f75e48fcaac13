//! The run manager: starts flow runs, tracks them, persists their progress, cancels them.
//!
//! `StartFlow` creates an `InProgress` execution record and spawns a task that waits for a
//! slot of a bounded pool (a semaphore of `max_concurrent_runs` permits), resolves the flow's
//! connector profiles, and drives [`sluice_pipeline::execute`]. While the run executes, its
//! counters are written to the execution record every `progress_interval`; at the end the
//! record gets its final status and the flow's `lastRunExecutionDetails` follows.
//!
//! Every write to a run's record goes through that run's own async mutex, so a cancellation
//! (`CancelStarted`) and a progress write can never overwrite each other out of order.
//!
//! Every run that ends is reported to the scheduler, which moves the watermark of a scheduled
//! flow's successful run and counts its failures (it ignores runs it did not launch).
//!
//! Shutdown cancels every run (they end `Canceled` and abort their writers, so no partial
//! output is left) and waits a grace period for them to record it. A run that is still
//! `InProgress` when the next server starts was interrupted: [`RunManager::recover`] marks it
//! `Error`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sluice_api_model as model;
use sluice_api_model::Timestamp;
use sluice_connector_api::{ConnectorRegistry, IncrementalWindow, Profile};
use sluice_metastore::secrets::SecretBox;
use sluice_metastore::{MetadataStore, RunRecord, StoreError};
use sluice_pipeline::{RunOutcome, RunProgress, RunSpec, RunStatus};
use sluice_scheduler::{Scheduler, Window};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::documents::{FlowDocument, open_profile, run_document};
use crate::error::{ApiError, ErrorCode};
use crate::schema::FieldTracking;

/// The message of runs found `InProgress` at startup.
pub(crate) const INTERRUPTED_MESSAGE: &str =
    "the run was interrupted: the server stopped while it was in progress";

/// The message of runs canceled by a server shutdown.
pub(crate) const SHUTDOWN_MESSAGE: &str = "the run was canceled because the server shut down";

/// The message of runs canceled by `CancelFlowExecutions` or `DeleteFlow` with `forceDelete`.
pub(crate) const CANCELED_MESSAGE: &str = "the run was canceled on request";

/// A run in progress.
#[derive(Debug)]
struct ActiveRun {
    flow_name: String,
    cancel: CancellationToken,
    record: Arc<tokio::sync::Mutex<RunRecord>>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn MetadataStore>,
    registry: Arc<dyn ConnectorRegistry>,
    secrets: Arc<SecretBox>,
    flow_lock: Arc<tokio::sync::Mutex<()>>,
    permits: Arc<Semaphore>,
    active: Mutex<HashMap<String, ActiveRun>>,
    idle: Notify,
    shutdown: CancellationToken,
    max_pending: usize,
    progress_interval: Duration,
    /// Told about every finished run, so scheduled flows move their watermarks.
    scheduler: OnceLock<Scheduler>,
}

/// Starts, tracks and cancels runs. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct RunManager {
    inner: Arc<Inner>,
}

/// What a trigger adds to a run of a flow's definition.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunInputs {
    /// The incremental window of a scheduled run.
    pub window: Option<Window>,
    /// The one object an S3 object-created event's run reads, instead of the whole prefix.
    pub object_key: Option<String>,
}

/// Settings of the run manager.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunLimits {
    pub max_concurrent: usize,
    pub max_pending: usize,
    pub progress_interval: Duration,
}

impl RunManager {
    pub(crate) fn new(
        store: Arc<dyn MetadataStore>,
        registry: Arc<dyn ConnectorRegistry>,
        secrets: Arc<SecretBox>,
        flow_lock: Arc<tokio::sync::Mutex<()>>,
        limits: RunLimits,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                registry,
                secrets,
                flow_lock,
                permits: Arc::new(Semaphore::new(limits.max_concurrent)),
                active: Mutex::new(HashMap::new()),
                idle: Notify::new(),
                shutdown: CancellationToken::new(),
                max_pending: limits.max_pending,
                progress_interval: limits.progress_interval,
                scheduler: OnceLock::new(),
            }),
        }
    }

    fn active(&self) -> std::sync::MutexGuard<'_, HashMap<String, ActiveRun>> {
        // The map is only touched by short, non-panicking sections; a poisoned lock still
        // holds consistent data.
        self.inner
            .active
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reports every run that ends from now on to `scheduler`. Only the first call counts.
    pub(crate) fn attach_scheduler(&self, scheduler: Scheduler) {
        if self.inner.scheduler.set(scheduler).is_err() {
            tracing::warn!("a scheduler is already attached to the run manager");
        }
    }

    /// Starts a run of `flow` and returns its execution id and start time. The caller must hold
    /// the flow lock and then record `lastRunExecutionDetails` itself. `inputs.window` is the
    /// incremental window of a scheduled run: it is recorded as the run's
    /// `dataPullStartTime`/`dataPullEndTime` and pushed down to the source as a filter on
    /// `incrementalPullConfig.datetimeTypeFieldName`. `inputs.object_key` narrows an S3 source
    /// to one object (its key becomes the bucket prefix, which the S3 source reads as that
    /// single object).
    ///
    /// # Errors
    /// `ServiceQuotaExceededException` when too many runs are pending, `ConflictException`
    /// during shutdown, store errors.
    pub(crate) async fn start(
        &self,
        flow: &FlowDocument,
        inputs: RunInputs,
    ) -> Result<(String, DateTime<Utc>), ApiError> {
        let RunInputs { window, object_key } = inputs;
        if self.inner.shutdown.is_cancelled() {
            return Err(ApiError::conflict(
                "The server is shutting down; no run can start",
            ));
        }
        if self.active().len() >= self.inner.max_pending {
            return Err(ApiError::new(
                ErrorCode::ServiceQuotaExceeded,
                format!(
                    "Too many flow runs in progress ({} at most); wait for some to finish",
                    self.inner.max_pending
                ),
            ));
        }
        let mut definition = flow.as_update_request()?;
        if let Some(key) = object_key {
            let s3 = definition
                .source_flow_config
                .source_connector_properties
                .s3
                .as_mut()
                .ok_or_else(|| {
                    ApiError::internal(format!("flow {} has no S3 source to narrow", flow.name()))
                })?;
            s3.bucket_prefix = Some(key);
        }
        let destination = definition
            .destination_flow_config_list
            .first()
            .cloned()
            .ok_or_else(|| {
                ApiError::internal(format!("stored flow {} has no destination", flow.name()))
            })?;
        let tracking = FieldTracking::of(flow, &definition);
        let execution_id = uuid::Uuid::new_v4().to_string();
        let started_at = Utc::now();
        let document = model::ExecutionRecord {
            execution_id: Some(execution_id.clone()),
            execution_status: Some(model::ExecutionStatus::InProgress),
            execution_result: Some(result_of(&Default::default(), None)),
            started_at: Some(Timestamp(started_at)),
            last_updated_at: Some(Timestamp(started_at)),
            data_pull_start_time: window.map(|window| Timestamp(window.start)),
            data_pull_end_time: window.map(|window| Timestamp(window.end)),
            ..Default::default()
        };
        let field = definition
            .source_flow_config
            .incremental_pull_config
            .as_ref()
            .and_then(|config| config.datetime_type_field_name.clone());
        let window = match (window, field) {
            (Some(window), Some(field)) => Some(IncrementalWindow {
                field,
                start: window.start,
                end: window.end,
            }),
            (Some(_), None) => {
                return Err(ApiError::validation(format!(
                    "Flow {} pulls incrementally but has no \
                     sourceFlowConfig.incrementalPullConfig.datetimeTypeFieldName",
                    flow.name()
                )));
            }
            (None, _) => None,
        };
        let record = RunRecord {
            flow_name: flow.name().to_string(),
            execution_id: execution_id.clone(),
            status: model::ExecutionStatus::InProgress.as_str().to_string(),
            started_at,
            updated_at: started_at,
            document: serde_json::to_value(&document).map_err(ApiError::internal)?,
        };
        self.inner.store.insert_run(&record).await?;

        let cancel = self.inner.shutdown.child_token();
        let record = Arc::new(tokio::sync::Mutex::new(record));
        self.active().insert(
            execution_id.clone(),
            ActiveRun {
                flow_name: flow.name().to_string(),
                cancel: cancel.clone(),
                record: record.clone(),
            },
        );
        let spec = RunSpec {
            flow_name: flow.name().to_string(),
            execution_id: execution_id.clone(),
            source: definition.source_flow_config,
            destination,
            tasks: definition.tasks,
            source_profile: None,
            destination_profile: None,
            schema_version: flow.schema_version(),
            window,
            started_at,
        };
        let manager = self.clone();
        let span =
            tracing::info_span!("run", flow_name = %spec.flow_name, execution_id = %execution_id);
        tokio::spawn(
            async move {
                manager.drive(spec, cancel, record, tracking).await;
            }
            .instrument(span),
        );
        tracing::info!(flow_name = flow.name(), %execution_id, "run started");
        Ok((execution_id, started_at))
    }

    /// The body of a run's task. `tracking` is set for flows that pick up new source fields
    /// by themselves (see [`crate::schema`]).
    async fn drive(
        &self,
        mut spec: RunSpec,
        cancel: CancellationToken,
        record: Arc<tokio::sync::Mutex<RunRecord>>,
        tracking: Option<FieldTracking>,
    ) {
        let execution_id = spec.execution_id.clone();
        let flow_name = spec.flow_name.clone();
        // If this task is dropped (the runtime shuts down without a graceful shutdown), the
        // engine's threads must still be told to stop, or they would wait forever.
        let _cancel_on_drop = cancel.clone().drop_guard();
        let progress = Arc::new(RunProgress::default());
        let base_version = spec.schema_version;
        let mut run_version = base_version;
        let mut described = Vec::new();
        let outcome = 'run: {
            let permit = tokio::select! {
                permit = self.inner.permits.clone().acquire_owned() => permit.ok(),
                () = cancel.cancelled() => None,
            };
            let Some(_permit) = permit else {
                break 'run canceled_outcome(&progress, "the run was canceled before it started");
            };
            match self.resolve_profiles(&mut spec).await {
                Ok(()) => {}
                Err(message) => break 'run error_outcome(&progress, message),
            }
            if let Some(tracking) = &tracking {
                let describe = tracking.describe(self.inner.registry.as_ref(), &spec);
                let fields = tokio::select! {
                    fields = describe => fields,
                    () = cancel.cancelled() => {
                        break 'run canceled_outcome(&progress, "the run was canceled before it started");
                    }
                };
                match fields {
                    Ok(fields) => {
                        if tracking.has_new(&fields) {
                            spec.schema_version += 1;
                            tracing::info!(
                                schema_version = spec.schema_version,
                                "the source has new fields: this run writes a new schema version"
                            );
                        }
                        described = fields;
                    }
                    // The run itself reports what is wrong with the source; the fields it
                    // reads are still recorded afterwards.
                    Err(error) => tracing::warn!(%error, "cannot describe the source entity"),
                }
                run_version = spec.schema_version;
            }
            let execute = sluice_pipeline::execute(
                self.inner.registry.as_ref(),
                spec,
                progress.clone(),
                cancel.clone(),
            );
            tokio::pin!(execute);
            let mut ticker = tokio::time::interval(self.inner.progress_interval);
            ticker.tick().await;
            loop {
                tokio::select! {
                    outcome = &mut execute => break 'run outcome,
                    _ = ticker.tick() => self.persist_progress(&record, &progress).await,
                }
            }
        };
        let outcome = self.explain_cancel(outcome);
        if tracking.is_some() && outcome.status == RunStatus::Successful {
            // Recorded before the run reads as finished, so a caller that sees it finished
            // also sees the flow's new schemaVersion.
            described.extend(outcome.source_fields.iter().cloned());
            let _guard = self.inner.flow_lock.lock().await;
            crate::schema::record_fields_locked(
                self.inner.store.as_ref(),
                &flow_name,
                base_version,
                run_version,
                &described,
            )
            .await;
        }
        self.finish(&flow_name, &record, &outcome).await;
        self.active().remove(&execution_id);
        // A run canceled by the shutdown is not the flow's failure: it is not reported, so it
        // neither counts towards the deactivation threshold nor moves the watermark.
        if let Some(scheduler) = self.inner.scheduler.get()
            && !self.inner.shutdown.is_cancelled()
        {
            let success = outcome.status == RunStatus::Successful;
            if let Err(error) = scheduler
                .on_run_finished(&flow_name, &execution_id, success)
                .await
            {
                tracing::error!(%error, "cannot record the end of a scheduled run");
            }
        }
        self.inner.idle.notify_waiters();
    }

    /// Gives canceled runs a message that says why.
    fn explain_cancel(&self, mut outcome: RunOutcome) -> RunOutcome {
        if outcome.status == RunStatus::Canceled {
            if self.inner.shutdown.is_cancelled() {
                outcome.message = Some(SHUTDOWN_MESSAGE.to_string());
            } else if outcome.message.is_none() {
                outcome.message = Some(CANCELED_MESSAGE.to_string());
            }
        }
        outcome
    }

    /// Decrypts the profiles the run needs.
    async fn resolve_profiles(&self, spec: &mut RunSpec) -> Result<(), String> {
        if let Some(name) = spec.source.connector_profile_name.clone() {
            spec.source_profile = Some(self.load_profile(&name).await?);
        }
        if let Some(name) = spec.destination.connector_profile_name.clone() {
            spec.destination_profile = Some(self.load_profile(&name).await?);
        }
        Ok(())
    }

    async fn load_profile(&self, name: &str) -> Result<Profile, String> {
        let record = self
            .inner
            .store
            .get_profile(name)
            .await
            .map_err(|error| format!("connector profile {name} cannot be read: {error}"))?
            .ok_or_else(|| format!("connector profile {name} does not exist"))?;
        open_profile(&record, &self.inner.secrets).map_err(|error| error.message)
    }

    async fn persist_progress(
        &self,
        record: &tokio::sync::Mutex<RunRecord>,
        progress: &RunProgress,
    ) {
        let mut record = record.lock().await;
        let Ok(mut document) = run_document(&record) else {
            return;
        };
        let now = Utc::now();
        document.execution_result = Some(result_of(&progress.snapshot(), None));
        document.last_updated_at = Some(Timestamp(now));
        self.write_run(&mut record, document, now).await;
    }

    /// Writes a run's document (keeping its status column in step); a run whose flow was
    /// deleted meanwhile is silently dropped.
    async fn write_run(
        &self,
        record: &mut RunRecord,
        document: model::ExecutionRecord,
        now: DateTime<Utc>,
    ) -> bool {
        let Ok(value) = serde_json::to_value(&document) else {
            return false;
        };
        record.status = document
            .execution_status
            .unwrap_or(model::ExecutionStatus::InProgress)
            .as_str()
            .to_string();
        record.updated_at = now;
        record.document = value;
        match self.inner.store.update_run(record).await {
            Ok(()) => true,
            Err(StoreError::NotFound { .. }) => {
                tracing::debug!(execution_id = %record.execution_id, "run record is gone (flow deleted)");
                false
            }
            Err(error) => {
                tracing::warn!(%error, execution_id = %record.execution_id, "cannot update run record");
                false
            }
        }
    }

    async fn finish(
        &self,
        flow_name: &str,
        record: &tokio::sync::Mutex<RunRecord>,
        outcome: &RunOutcome,
    ) {
        let status = outcome.status.execution_status();
        let now = Utc::now();
        let written = {
            let mut record = record.lock().await;
            let mut document = run_document(&record).unwrap_or_default();
            document.execution_status = Some(status);
            document.execution_result = Some(result_of(&outcome.progress, outcome.message.clone()));
            document.last_updated_at = Some(Timestamp(now));
            self.write_run(&mut record, document, now).await
        };
        match outcome.status {
            RunStatus::Successful => tracing::info!(
                records_processed = outcome.progress.records_processed,
                bytes_written = outcome.progress.bytes_written,
                "run succeeded"
            ),
            RunStatus::Error => tracing::warn!(
                message = outcome.message.as_deref().unwrap_or_default(),
                "run failed"
            ),
            RunStatus::Canceled => tracing::info!("run canceled"),
        }
        if written {
            let details = model::ExecutionDetails {
                most_recent_execution_message: outcome.message.clone(),
                most_recent_execution_status: Some(status),
                most_recent_execution_time: Some(Timestamp(now)),
            };
            self.set_last_run(flow_name, details).await;
        }
    }

    /// Updates a flow's `lastRunExecutionDetails` under the flow lock.
    async fn set_last_run(&self, flow_name: &str, details: model::ExecutionDetails) {
        let _guard = self.inner.flow_lock.lock().await;
        set_last_run_locked(self.inner.store.as_ref(), flow_name, details).await;
    }

    /// Execution ids of the flow's runs that are in progress.
    pub(crate) fn active_runs(&self, flow_name: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .active()
            .iter()
            .filter(|(_, run)| run.flow_name == flow_name)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Requests cancellation of one run: its record becomes `CancelStarted` now and
    /// `Canceled` when the engine has stopped. Returns `false` when the run is not in progress
    /// (finished, unknown, or of another flow).
    pub(crate) async fn cancel(&self, flow_name: &str, execution_id: &str) -> bool {
        let (token, record) = {
            let active = self.active();
            match active.get(execution_id) {
                Some(run) if run.flow_name == flow_name && !run.cancel.is_cancelled() => {
                    (run.cancel.clone(), run.record.clone())
                }
                _ => return false,
            }
        };
        {
            let mut record = record.lock().await;
            // The run may have finished between the lookup and this lock: its final status
            // must not be overwritten.
            if record.status != model::ExecutionStatus::InProgress.as_str() {
                return false;
            }
            let Ok(mut document) = run_document(&record) else {
                return false;
            };
            let now = Utc::now();
            document.execution_status = Some(model::ExecutionStatus::CancelStarted);
            document.last_updated_at = Some(Timestamp(now));
            self.write_run(&mut record, document, now).await;
        }
        token.cancel();
        tracing::info!(flow_name, execution_id, "run cancellation requested");
        true
    }

    /// Marks runs left `InProgress`/`CancelStarted` by a previous process as `Error`, and
    /// returns them as `(flow name, execution id)`.
    pub(crate) async fn recover(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut recovered = Vec::new();
        for status in [
            model::ExecutionStatus::InProgress,
            model::ExecutionStatus::CancelStarted,
        ] {
            for mut record in self
                .inner
                .store
                .list_runs_with_status(status.as_str())
                .await?
            {
                if self.active().contains_key(&record.execution_id) {
                    continue;
                }
                let now = Utc::now();
                let mut document = run_document(&record).unwrap_or_default();
                document.execution_status = Some(model::ExecutionStatus::Error);
                let mut result = document.execution_result.take().unwrap_or_default();
                result.error_info = Some(model::ErrorInfo {
                    execution_message: Some(INTERRUPTED_MESSAGE.to_string()),
                    put_failures_count: result
                        .error_info
                        .and_then(|info| info.put_failures_count)
                        .or(Some(0)),
                });
                document.execution_result = Some(result);
                document.last_updated_at = Some(Timestamp(now));
                if self.write_run(&mut record, document, now).await {
                    recovered.push((record.flow_name.clone(), record.execution_id.clone()));
                    tracing::warn!(
                        flow_name = %record.flow_name,
                        execution_id = %record.execution_id,
                        "marked an interrupted run as failed"
                    );
                    let _guard = self.inner.flow_lock.lock().await;
                    if let Ok(Some(flow)) = self.inner.store.get_flow(&record.flow_name).await {
                        let unfinished = FlowDocument::from_record(&flow).ok().is_some_and(|doc| {
                            doc.describe.last_run_execution_details.is_some_and(|d| {
                                matches!(
                                    d.most_recent_execution_status,
                                    Some(
                                        model::ExecutionStatus::InProgress
                                            | model::ExecutionStatus::CancelStarted
                                    )
                                )
                            })
                        });
                        if unfinished {
                            let details = model::ExecutionDetails {
                                most_recent_execution_message: Some(INTERRUPTED_MESSAGE.into()),
                                most_recent_execution_status: Some(model::ExecutionStatus::Error),
                                most_recent_execution_time: Some(Timestamp(now)),
                            };
                            set_last_run_locked(
                                self.inner.store.as_ref(),
                                &record.flow_name,
                                details,
                            )
                            .await;
                        }
                    }
                }
            }
        }
        Ok(recovered)
    }

    /// Cancels every run and waits up to `grace` for them to record their final status.
    pub(crate) async fn shutdown(&self, grace: Duration) {
        self.inner.shutdown.cancel();
        let wait = async {
            loop {
                let idle = self.inner.idle.notified();
                if self.active().is_empty() {
                    return;
                }
                idle.await;
            }
        };
        if tokio::time::timeout(grace, wait).await.is_err() {
            let left = self.active().len();
            tracing::warn!(left, "runs did not stop within the shutdown grace period");
        }
    }
}

/// Writes a flow's `lastRunExecutionDetails`; the caller holds the flow lock.
pub(crate) async fn set_last_run_locked(
    store: &dyn MetadataStore,
    flow_name: &str,
    details: model::ExecutionDetails,
) {
    edit_flow_locked(store, flow_name, "its last run", |document| {
        document.describe.last_run_execution_details = Some(details);
        true
    })
    .await;
}

/// A bookkeeping edit of a flow's document (last run, source fields): `edit` changes it and
/// says whether there is anything to write. The flow's own `lastUpdatedAt` stays the user's.
/// Failures are logged (naming `what` was recorded), never returned: the run they follow has
/// already ended. The caller holds the flow lock.
pub(crate) async fn edit_flow_locked(
    store: &dyn MetadataStore,
    flow_name: &str,
    what: &str,
    edit: impl FnOnce(&mut FlowDocument) -> bool,
) {
    let flow = match store.get_flow(flow_name).await {
        Ok(Some(flow)) => flow,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(%error, flow_name, "cannot read the flow to record {what}");
            return;
        }
    };
    let Ok(mut document) = FlowDocument::from_record(&flow) else {
        return;
    };
    if !edit(&mut document) {
        return;
    }
    let Ok(value) = document.to_value() else {
        return;
    };
    let updated = sluice_metastore::FlowRecord {
        document: value,
        ..flow
    };
    if let Err(error) = store.update_flow(&updated).await {
        tracing::warn!(%error, flow_name, "cannot record {what}");
    }
}

/// The `ExecutionResult` for a snapshot of counters.
fn result_of(
    progress: &sluice_pipeline::ProgressSnapshot,
    message: Option<String>,
) -> model::ExecutionResult {
    let long = |value: u64| Some(i64::try_from(value).unwrap_or(i64::MAX));
    model::ExecutionResult {
        bytes_processed: long(progress.bytes_processed),
        bytes_written: long(progress.bytes_written),
        records_processed: long(progress.records_processed),
        error_info: Some(model::ErrorInfo {
            execution_message: message,
            put_failures_count: long(progress.put_failures),
        }),
        max_page_size: None,
        num_parallel_processes: None,
    }
}

fn canceled_outcome(progress: &RunProgress, message: &str) -> RunOutcome {
    RunOutcome {
        status: RunStatus::Canceled,
        progress: progress.snapshot(),
        message: Some(message.to_string()),
        locations: Vec::new(),
        error_locations: Vec::new(),
        source_fields: Vec::new(),
    }
}

fn error_outcome(progress: &RunProgress, message: String) -> RunOutcome {
    RunOutcome {
        status: RunStatus::Error,
        progress: progress.snapshot(),
        message: Some(message),
        locations: Vec::new(),
        error_locations: Vec::new(),
        source_fields: Vec::new(),
    }
}
