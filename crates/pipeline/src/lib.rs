//! One flow run: source -> tasks -> destination, with bounded memory, cancellation and counters.
//!
//! [`execute`] is the whole engine. It compiles the flow's tasks into a
//! [`TaskPlan`](sluice_transforms::TaskPlan), opens the source stream (with the plan's
//! projection and push-down filters and the incremental window) and the destination writer
//! (with the plan's partition keys), then moves batches through three steps:
//!
//! ```text
//!  source thread                 sink thread
//!  poll stream (read + decode) -> plan.apply -> writer.write (encode + upload)
//!                  bounded channel (one batch by default)
//! ```
//!
//! Both steps run on threads of Tokio's blocking pool, each driving its async half with
//! `Handle::block_on`. Decoding and encoding are CPU-heavy and live inside the connectors'
//! futures, so polling those futures on the async workers would stall every other task of the
//! server for tens of milliseconds per batch; on their own threads they use two cores in
//! parallel while the runtime stays responsive. The channel between them holds at most
//! [`EngineOptions::channel_batches`] batches, so a slow destination back-pressures the source
//! and the engine holds about `channel_batches + 3` batches at once (one being decoded, one
//! waiting to be sent, the channel, one being written), plus the writer's own buffers.
//!
//! Failure handling is all-or-nothing: any error (source, task, destination, commit) or a
//! cancellation aborts the writer, so no partial output becomes visible, and the outcome says
//! what failed and where. `execute` never panics: panics inside connectors or tasks are caught
//! and reported as internal errors.
//!
//! Rejected alternatives: spawning both steps as ordinary async tasks (simpler, but blocks the
//! runtime workers during CPU work); a `DataFusion`-style operator graph (far more machinery
//! than a linear source -> tasks -> sink flow needs).

mod engine;
mod error;
mod progress;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sluice_api_model as model;
use sluice_connector_api::{ConnectorRegistry, IncrementalWindow, Profile};
use tokio_util::sync::CancellationToken;

pub use error::RunError;
pub use progress::{ProgressSnapshot, RunProgress};

/// Everything needed to run a flow once.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Flow name (used in destination paths and logs).
    pub flow_name: String,
    /// Execution id of this run.
    pub execution_id: String,
    /// The flow's source configuration.
    pub source: model::SourceFlowConfig,
    /// The flow's (single) destination configuration.
    pub destination: model::DestinationFlowConfig,
    /// The flow's tasks.
    pub tasks: Vec<model::Task>,
    /// Resolved source profile, when the source names one.
    pub source_profile: Option<Profile>,
    /// Resolved destination profile, when the destination names one.
    pub destination_profile: Option<Profile>,
    /// The flow's schema version (`schemaVersion_<n>` folders).
    pub schema_version: i64,
    /// Incremental window, for incremental pulls.
    pub window: Option<IncrementalWindow>,
    /// When the run started; drives date/time prefixes in destination paths.
    pub started_at: DateTime<Utc>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Everything was read, transformed and committed.
    Successful,
    /// The run failed; nothing was committed.
    Error,
    /// The run was canceled; nothing was committed.
    Canceled,
}

impl RunStatus {
    /// The AppFlow `ExecutionStatus` for this outcome.
    pub fn execution_status(self) -> model::ExecutionStatus {
        match self {
            Self::Successful => model::ExecutionStatus::Successful,
            Self::Error => model::ExecutionStatus::Error,
            Self::Canceled => model::ExecutionStatus::Canceled,
        }
    }
}

/// The result of [`execute`].
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// How the run ended.
    pub status: RunStatus,
    /// Final counters.
    pub progress: ProgressSnapshot,
    /// The `executionMessage`: what failed and where; `None` on success.
    pub message: Option<String>,
    /// Locations written (object keys), empty unless the run succeeded.
    pub locations: Vec<String>,
    /// Objects holding rejected records (`errorHandlingConfig` location), whatever the status.
    pub error_locations: Vec<String>,
    /// Source field names seen in the run, in first-seen order.
    pub source_fields: Vec<String>,
}

impl RunOutcome {
    /// The AppFlow `ExecutionResult` of this outcome. Counters beyond `i64::MAX` saturate.
    pub fn execution_result(&self) -> model::ExecutionResult {
        let long = |value: u64| Some(i64::try_from(value).unwrap_or(i64::MAX));
        model::ExecutionResult {
            bytes_processed: long(self.progress.bytes_processed),
            bytes_written: long(self.progress.bytes_written),
            records_processed: long(self.progress.records_processed),
            error_info: Some(model::ErrorInfo {
                execution_message: self.message.clone(),
                put_failures_count: long(self.progress.put_failures),
            }),
            max_page_size: None,
            num_parallel_processes: None,
        }
    }
}

/// Tuning knobs of the engine. The defaults suit both the server and `sluice run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// Preferred rows per source batch (a hint to the source).
    pub batch_rows: usize,
    /// Batches that may wait between the source and sink threads.
    pub channel_batches: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            batch_rows: engine::DEFAULT_BATCH_ROWS,
            channel_batches: 1,
        }
    }
}

/// Runs a flow once with the default [`EngineOptions`].
///
/// Never panics and always returns an outcome. `progress` is updated as batches flow, so
/// observers can poll it; cancelling `cancel` stops the run, aborts the destination writer and
/// yields [`RunStatus::Canceled`].
pub async fn execute(
    registry: &dyn ConnectorRegistry,
    spec: RunSpec,
    progress: Arc<RunProgress>,
    cancel: CancellationToken,
) -> RunOutcome {
    execute_with(registry, spec, progress, cancel, EngineOptions::default()).await
}

/// [`execute`] with explicit [`EngineOptions`].
pub async fn execute_with(
    registry: &dyn ConnectorRegistry,
    spec: RunSpec,
    progress: Arc<RunProgress>,
    cancel: CancellationToken,
    options: EngineOptions,
) -> RunOutcome {
    engine::execute(registry, spec, progress, cancel, options).await
}
