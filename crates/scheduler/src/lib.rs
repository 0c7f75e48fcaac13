//! When scheduled flows run, and which slice of the source each run reads.
//!
//! * [`plan`]: a flow's `ScheduledTriggerProperties` resolved into a [`SchedulePlan`], which
//!   knows the next tick, the tick due now (catching up once after downtime) and the window
//!   of an incremental run.
//! * [`window`](mod@window): incremental windows `[watermark, tick − offset)` that never
//!   overlap and never leave a gap.
//! * [`Scheduler`]: the loop that drives every active scheduled flow off a
//!   [`Clock`](sluice_types::Clock), and the run-completion feedback that moves watermarks and
//!   suspends flows that keep failing.
//!
//! The scheduler does no IO of its own. It reads and persists flows through a
//! [`ScheduleStore`] and starts runs through a [`RunLauncher`], two small traits the server
//! implements on top of its metadata store and run manager (tests use in-memory ones).
//!
//! # The loop
//!
//! [`Scheduler::run`] repeats: take every flow whose tick is due, sleep until the earliest
//! next tick, or until [`Scheduler::wake`] (activations, updates and deactivations call it),
//! or until shutdown. Sleeps are capped at [`MAX_SLEEP`] so that a wall clock that jumps is
//! noticed. For each due flow:
//!
//! 1. its last handled tick is moved to the due tick and persisted **before** the run starts:
//!    a crash between the two loses that tick rather than running it twice. Nothing is lost
//!    by that, since the next run's window starts at the unchanged watermark;
//! 2. if the flow's previous run is still in progress, the tick is skipped and logged;
//! 3. otherwise the run is launched in its own task, so a slow launch never delays another
//!    flow's tick.
//!
//! When a run ends, the server calls [`Scheduler::on_run_finished`]. A success moves the
//! watermark to the end of the run's window and resets the failure count; a failure leaves
//! the watermark where it is, and `flowErrorDeactivationThreshold` consecutive failures
//! suspend the flow through [`ScheduleStore::suspend`].
//!
//! A restarted server calls [`Scheduler::load`]: each flow continues from its persisted
//! state, and a flow whose ticks passed while the server was down runs once, for the latest
//! of them, with a window that reaches back to its last successful run.
//!
//! # What is not here
//!
//! Leases for running several schedulers against one metadata store; fire times in the
//! flow's `timezone` (AppFlow treats it as a label; everything is UTC).

pub mod clock;
pub mod plan;
pub mod window;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sluice_types::{BoxError, ErrorDomain, SharedClock};
use tokio::sync::Notify;
use tokio::task::JoinSet;

pub use clock::ManualClock;
pub use plan::{PlanError, SchedulePlan};
pub use window::{Window, window};

/// The longest the loop sleeps without looking at the clock again.
pub const MAX_SLEEP: Duration = Duration::from_secs(60);

/// How long [`Scheduler::run`] waits, at shutdown, for launches that have not answered yet.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What the scheduler persists per flow, between runs and across restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowState {
    /// The last tick handled (run, or skipped because a run was in progress).
    pub last_fire: Option<DateTime<Utc>>,
    /// The end of the last successful run's incremental window: where the next window starts.
    pub watermark: Option<DateTime<Utc>>,
    /// Failed runs since the last success.
    pub consecutive_failures: u32,
}

/// An active scheduled flow, as the store hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledFlow {
    /// `flowName`.
    pub name: String,
    /// Its trigger settings.
    pub plan: SchedulePlan,
    /// When `StartFlow` last activated it; a rate without `scheduleStartTime` counts its
    /// periods from here, and no tick before it runs.
    pub activated_at: DateTime<Utc>,
    /// What the scheduler persisted for it.
    pub state: FlowState,
}

/// What became of a launch request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchResult {
    /// A run started, with this execution id. Its end is reported through
    /// [`Scheduler::on_run_finished`].
    Started(String),
    /// A run of the flow is already in progress, so this tick is skipped.
    SkippedStillRunning,
    /// No run could start; the message says why. Counts as a failed run.
    Failed(String),
}

/// Reads and persists scheduled flows: the server implements it over its metadata store.
///
/// # Contract
///
/// Calls for one flow may come from several tasks; the scheduler never has two `save_state`
/// calls in progress at once and never writes an older state over a newer one.
#[async_trait]
pub trait ScheduleStore: Send + Sync + fmt::Debug {
    /// Every scheduled flow whose status is `Active`, with its persisted state (the default
    /// state for a flow that has none yet).
    async fn load_active(&self) -> Result<Vec<ScheduledFlow>, BoxError>;

    /// Persists the state of `flow_name`. A flow that no longer exists (deleted meanwhile) is
    /// not an error: the call does nothing.
    async fn save_state(&self, flow_name: &str, state: &FlowState) -> Result<(), BoxError>;

    /// Deactivates `flow_name` after too many failed runs: status `Suspended`, with
    /// `message` as its `flowStatusMessage`.
    async fn suspend(&self, flow_name: &str, message: &str) -> Result<(), BoxError>;
}

/// Starts runs: the server implements it over its run manager.
///
/// # Contract
///
/// `launch` returns as soon as the run has started (or could not), without waiting for it to
/// finish. The scheduler calls it from a task of its own per tick, so a slow call delays only
/// that flow, but it should still be quick.
#[async_trait]
pub trait RunLauncher: Send + Sync + fmt::Debug {
    /// Starts a run of `flow_name` for the tick `fire_time`. `window` is the incremental
    /// window to read (`None` for `Complete` flows): record it as the run's
    /// `dataPullStartTime`/`dataPullEndTime` and push it down to the source.
    async fn launch(
        &self,
        flow_name: &str,
        fire_time: DateTime<Utc>,
        window: Option<Window>,
    ) -> LaunchResult;
}

/// A failure of the scheduler's persistence.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchedulerError {
    /// [`ScheduleStore::load_active`] failed.
    #[error("cannot load the scheduled flows: {source}")]
    Load {
        /// The store's error.
        source: BoxError,
    },
    /// [`ScheduleStore::save_state`] failed. The in-memory state has moved on regardless and
    /// is written again with the flow's next change.
    #[error("cannot save the schedule state of flow {flow_name}: {source}")]
    SaveState {
        /// The flow.
        flow_name: String,
        /// The store's error.
        source: BoxError,
    },
    /// [`ScheduleStore::suspend`] failed. The scheduler has stopped scheduling the flow
    /// anyway.
    #[error("cannot suspend flow {flow_name}: {source}")]
    Suspend {
        /// The flow.
        flow_name: String,
        /// The store's error.
        source: BoxError,
    },
}

impl SchedulerError {
    /// Persistence failures are ours, never the caller's.
    pub fn error_domain(&self) -> ErrorDomain {
        ErrorDomain::Internal
    }
}

/// What one tick of one flow led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    /// The flow.
    pub flow_name: String,
    /// The tick.
    pub fire_time: DateTime<Utc>,
    /// The window the run was asked to read; `None` for `Complete` flows and for ticks
    /// skipped without asking the launcher.
    pub window: Option<Window>,
    /// What happened.
    pub outcome: TickOutcome,
}

/// How a tick ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TickOutcome {
    /// A run started, with this execution id.
    Started(String),
    /// The previous run of the flow was still in progress.
    SkippedStillRunning,
    /// The run could not start.
    Failed {
        /// Why.
        message: String,
        /// Whether this failure suspended the flow.
        suspended: bool,
    },
}

/// What [`Scheduler::on_run_finished`] did with a finished run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunFeedback {
    /// The run is not one this scheduler is waiting for (unknown flow or execution id, or
    /// reported twice): nothing changed.
    Ignored,
    /// The run succeeded; the watermark is now this (unchanged for `Complete` flows).
    Succeeded {
        /// The flow's watermark after the run.
        watermark: Option<DateTime<Utc>>,
    },
    /// The run failed; the watermark did not move.
    Failed {
        /// Failed runs since the last success, this one included.
        consecutive_failures: u32,
        /// Whether the flow was suspended because of it.
        suspended: bool,
    },
}

/// The run of a flow that the scheduler launched and has not heard the end of.
#[derive(Debug, Clone)]
struct InFlight {
    /// Tells this launch from later ones of the same flow.
    seq: u64,
    fire_time: DateTime<Utc>,
    window: Option<Window>,
    /// `None` until the launcher answers.
    execution_id: Option<String>,
}

#[derive(Debug)]
struct Entry {
    plan: SchedulePlan,
    activated_at: DateTime<Utc>,
    state: FlowState,
    /// Increases with every change of `state`, so stale writes can be dropped.
    version: u64,
    /// `false` once deactivated; the entry stays until its in-flight run reports back.
    active: bool,
    in_flight: Option<InFlight>,
}

#[derive(Debug, Default)]
struct Flows {
    entries: HashMap<String, Entry>,
    /// Source of versions and launch sequence numbers.
    counter: u64,
}

impl Flows {
    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// Records a change of `name`'s state and returns what to persist.
    fn changed(&mut self, name: &str) -> Option<(FlowState, u64)> {
        let version = self.next();
        let entry = self.entries.get_mut(name)?;
        entry.version = version;
        Some((entry.state.clone(), version))
    }

    /// Forgets a deactivated flow once no run of it is in flight.
    fn drop_if_done(&mut self, name: &str) {
        if self
            .entries
            .get(name)
            .is_some_and(|entry| !entry.active && entry.in_flight.is_none())
        {
            self.entries.remove(name);
        }
    }
}

/// One due tick, decided under the lock and carried out afterwards.
#[derive(Debug)]
struct Due {
    flow_name: String,
    fire_time: DateTime<Utc>,
    snapshot: (FlowState, u64),
    /// `Some((seq, window))` to launch, `None` to skip.
    launch: Option<(u64, Option<Window>)>,
}

/// A finished run, applied to the in-memory state.
#[derive(Debug)]
struct Settled {
    feedback: RunFeedback,
    snapshot: (FlowState, u64),
    /// The suspension message, when the run suspended the flow.
    suspension: Option<String>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn ScheduleStore>,
    launcher: Arc<dyn RunLauncher>,
    clock: SharedClock,
    flows: Mutex<Flows>,
    wake: Notify,
    /// The version last written per flow; the lock also keeps writes one at a time.
    written: tokio::sync::Mutex<HashMap<String, u64>>,
}

/// Drives every active scheduled flow. Cheap to clone; clones share everything.
#[derive(Debug, Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

impl Scheduler {
    /// A scheduler with no flows; call [`Scheduler::load`] and then [`Scheduler::run`].
    pub fn new(
        store: Arc<dyn ScheduleStore>,
        launcher: Arc<dyn RunLauncher>,
        clock: SharedClock,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                launcher,
                clock,
                flows: Mutex::new(Flows::default()),
                wake: Notify::new(),
                written: tokio::sync::Mutex::new(HashMap::new()),
            }),
        }
    }

    fn flows(&self) -> MutexGuard<'_, Flows> {
        // Every section under this lock only updates plain fields and cannot panic halfway,
        // so a poisoned lock still holds consistent data.
        self.inner
            .flows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// (Re)loads the active flows from the store, at startup or to resynchronise. A flow the
    /// scheduler already knows keeps its in-memory state, which is never older than the
    /// persisted one; flows that are no longer active stop being scheduled. Returns how many
    /// flows are active.
    ///
    /// # Errors
    ///
    /// [`SchedulerError::Load`] when the store fails; nothing changes then.
    pub async fn load(&self) -> Result<usize, SchedulerError> {
        let loaded = self
            .inner
            .store
            .load_active()
            .await
            .map_err(|source| SchedulerError::Load { source })?;
        let count = loaded.len();
        {
            let mut flows = self.flows();
            let names: HashSet<String> = loaded.iter().map(|flow| flow.name.clone()).collect();
            for flow in loaded {
                let version = flows.next();
                match flows.entries.get_mut(&flow.name) {
                    Some(entry) => {
                        entry.plan = flow.plan;
                        entry.activated_at = flow.activated_at;
                        entry.active = true;
                    }
                    None => {
                        flows.entries.insert(
                            flow.name,
                            Entry {
                                plan: flow.plan,
                                activated_at: flow.activated_at,
                                state: flow.state,
                                version,
                                active: true,
                                in_flight: None,
                            },
                        );
                    }
                }
            }
            let gone: Vec<String> = flows
                .entries
                .keys()
                .filter(|name| !names.contains(name.as_str()))
                .cloned()
                .collect();
            for name in gone {
                if let Some(entry) = flows.entries.get_mut(&name) {
                    entry.active = false;
                }
                flows.drop_if_done(&name);
            }
        }
        tracing::info!(flows = count, "scheduled flows loaded");
        self.wake();
        Ok(count)
    }

    /// Starts scheduling `flow` (`StartFlow` on a `Draft` or `Suspended` flow). An activation
    /// forgives earlier failures: the failure count restarts from zero. The watermark carries
    /// over, so incremental pulls continue where the last successful run ended.
    ///
    /// # Errors
    ///
    /// [`SchedulerError::SaveState`] when the reset state cannot be persisted; the flow is
    /// scheduled regardless.
    pub async fn activate(&self, flow: ScheduledFlow) -> Result<(), SchedulerError> {
        let name = flow.name.clone();
        let snapshot = {
            let mut flows = self.flows();
            match flows.entries.get_mut(&name) {
                // Still known (a run from before a deactivation is in flight): its in-memory
                // state is the newest.
                Some(entry) => {
                    entry.plan = flow.plan;
                    entry.activated_at = flow.activated_at;
                    entry.active = true;
                    entry.state.consecutive_failures = 0;
                }
                None => {
                    flows.entries.insert(
                        name.clone(),
                        Entry {
                            plan: flow.plan,
                            activated_at: flow.activated_at,
                            state: FlowState {
                                consecutive_failures: 0,
                                ..flow.state
                            },
                            version: 0,
                            active: true,
                            in_flight: None,
                        },
                    );
                }
            }
            flows.changed(&name)
        };
        tracing::info!(flow_name = %name, "scheduled flow activated");
        self.wake();
        match snapshot {
            Some((state, version)) => self.write_state(&name, state, version).await,
            None => Ok(()),
        }
    }

    /// Replaces the trigger settings of an active flow (`UpdateFlow`); its state and any run in
    /// progress are kept. Returns `false` when the flow is not active here.
    pub fn update(&self, flow_name: &str, plan: SchedulePlan) -> bool {
        let updated = match self.flows().entries.get_mut(flow_name) {
            Some(entry) if entry.active => {
                entry.plan = plan;
                true
            }
            _ => false,
        };
        if updated {
            tracing::info!(flow_name, "scheduled flow updated");
            self.wake();
        }
        updated
    }

    /// Stops scheduling a flow (`StopFlow`, `DeleteFlow`, a trigger that is no longer
    /// `Scheduled`). A run in progress continues, and its end is still recorded. Returns
    /// `false` when the flow was not active here.
    pub fn deactivate(&self, flow_name: &str) -> bool {
        let deactivated = {
            let mut flows = self.flows();
            let was_active = match flows.entries.get_mut(flow_name) {
                Some(entry) => std::mem::replace(&mut entry.active, false),
                None => false,
            };
            flows.drop_if_done(flow_name);
            was_active
        };
        if deactivated {
            tracing::info!(flow_name, "scheduled flow deactivated");
            self.wake();
        }
        deactivated
    }

    /// Makes the loop look at its flows and the clock again now.
    pub fn wake(&self) {
        // A permit is stored when the loop is not waiting, so a wake-up is never lost.
        self.inner.wake.notify_one();
    }

    /// The in-memory state of a flow the scheduler knows.
    pub fn state(&self, flow_name: &str) -> Option<FlowState> {
        self.flows()
            .entries
            .get(flow_name)
            .map(|entry| entry.state.clone())
    }

    /// Whether the scheduler launched a run of `flow_name` that has not reported back.
    pub fn is_running(&self, flow_name: &str) -> bool {
        self.flows()
            .entries
            .get(flow_name)
            .is_some_and(|entry| entry.in_flight.is_some())
    }

    /// The earliest upcoming tick of any active flow.
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.next_wake_after(self.inner.clock.now())
    }

    fn next_wake_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.flows()
            .entries
            .values()
            .filter(|entry| entry.active)
            .filter_map(|entry| {
                // Not before the last handled tick, in case the clock went back.
                let after = entry.state.last_fire.map_or(now, |last| last.max(now));
                entry.plan.next_fire(after, entry.activated_at)
            })
            .min()
    }

    /// Handles every tick due now and waits until each launch has answered. The loop does the
    /// same without waiting; this is for tests and tools that step time by hand.
    pub async fn run_due(&self) -> Vec<Tick> {
        let mut tasks = JoinSet::new();
        for due in self.take_due(self.inner.clock.now()) {
            tasks.spawn(self.clone().carry_out(due));
        }
        let mut ticks = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(tick) => ticks.push(tick),
                Err(error) => tracing::error!(%error, "a scheduled tick task failed"),
            }
        }
        ticks.sort_by(|a, b| (a.fire_time, &a.flow_name).cmp(&(b.fire_time, &b.flow_name)));
        ticks
    }

    /// Runs the loop until `shutdown` completes, then waits up to [`SHUTDOWN_GRACE`] for
    /// launches that have not answered yet. Call [`Scheduler::load`] first.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut tasks = JoinSet::new();
        tracing::info!("scheduler started");
        loop {
            let now = self.inner.clock.now();
            for due in self.take_due(now) {
                tasks.spawn(self.clone().carry_out(due));
            }
            let sleep = self
                .next_wake_after(now)
                .and_then(|next| (next - now).to_std().ok())
                .map_or(MAX_SLEEP, |until| until.min(MAX_SLEEP));
            tokio::select! {
                () = &mut shutdown => break,
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(sleep) => {}
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(error) = joined {
                        tracing::error!(%error, "a scheduled tick task failed");
                    }
                }
            }
        }
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while let Some(joined) = tasks.join_next().await {
                if let Err(error) = joined {
                    tracing::error!(%error, "a scheduled tick task failed");
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                launches = tasks.len(),
                "scheduler stopped before every launch answered"
            );
            tasks.abort_all();
        }
        tracing::info!("scheduler stopped");
    }

    /// Decides, under the lock, what every active flow does at `now`.
    fn take_due(&self, now: DateTime<Utc>) -> Vec<Due> {
        let mut flows = self.flows();
        let names: Vec<String> = flows
            .entries
            .iter()
            .filter(|(_, entry)| entry.active)
            .map(|(name, _)| name.clone())
            .collect();
        let mut due = Vec::new();
        for name in names {
            let seq = flows.next();
            let Some(entry) = flows.entries.get_mut(&name) else {
                continue;
            };
            let Some(fire_time) = entry
                .plan
                .due(entry.state.last_fire, entry.activated_at, now)
            else {
                continue;
            };
            if let Some(last) = entry.state.last_fire
                && entry
                    .plan
                    .next_fire(last, entry.activated_at)
                    .is_some_and(|missed| missed < fire_time)
            {
                tracing::info!(
                    flow_name = %name,
                    last_fire = %last,
                    %fire_time,
                    "ticks were missed; running once for the latest of them"
                );
            }
            entry.state.last_fire = Some(fire_time);
            let launch = if entry.in_flight.is_some() {
                tracing::info!(
                    flow_name = %name,
                    %fire_time,
                    "scheduled run skipped: the previous run is still in progress"
                );
                None
            } else {
                let window = entry.plan.window(entry.state.watermark, fire_time);
                entry.in_flight = Some(InFlight {
                    seq,
                    fire_time,
                    window,
                    execution_id: None,
                });
                Some((seq, window))
            };
            if let Some(snapshot) = flows.changed(&name) {
                due.push(Due {
                    flow_name: name,
                    fire_time,
                    snapshot,
                    launch,
                });
            }
        }
        due
    }

    /// Persists a due tick and launches its run.
    async fn carry_out(self, due: Due) -> Tick {
        let Due {
            flow_name,
            fire_time,
            snapshot: (state, version),
            launch,
        } = due;
        if let Err(error) = self.write_state(&flow_name, state, version).await {
            // Launch anyway: at worst the tick runs again after a restart, and its window
            // still starts at the unchanged watermark.
            tracing::error!(%error, "scheduled tick not persisted");
        }
        let Some((seq, window)) = launch else {
            return Tick {
                flow_name,
                fire_time,
                window: None,
                outcome: TickOutcome::SkippedStillRunning,
            };
        };
        let launcher = Arc::clone(&self.inner.launcher);
        let name = flow_name.clone();
        // A task of its own, so that a launcher that panics is a failed run, not a lost one.
        let launched =
            tokio::spawn(async move { launcher.launch(&name, fire_time, window).await }).await;
        let result = launched.unwrap_or_else(|error| {
            LaunchResult::Failed(format!("the run could not be launched: {error}"))
        });
        let outcome = self.launched(&flow_name, seq, fire_time, result).await;
        Tick {
            flow_name,
            fire_time,
            window,
            outcome,
        }
    }

    /// Applies a launcher's answer.
    async fn launched(
        &self,
        flow_name: &str,
        seq: u64,
        fire_time: DateTime<Utc>,
        result: LaunchResult,
    ) -> TickOutcome {
        match result {
            LaunchResult::Started(execution_id) => {
                if let Some(in_flight) = self
                    .flows()
                    .entries
                    .get_mut(flow_name)
                    .and_then(|entry| entry.in_flight.as_mut())
                    .filter(|in_flight| in_flight.seq == seq)
                {
                    in_flight.execution_id = Some(execution_id.clone());
                }
                tracing::info!(flow_name, %fire_time, execution_id, "scheduled run started");
                TickOutcome::Started(execution_id)
            }
            LaunchResult::SkippedStillRunning => {
                {
                    let mut flows = self.flows();
                    if let Some(entry) = flows.entries.get_mut(flow_name) {
                        entry.in_flight.take_if(|in_flight| in_flight.seq == seq);
                    }
                    flows.drop_if_done(flow_name);
                }
                tracing::info!(
                    flow_name,
                    %fire_time,
                    "scheduled run skipped: the previous run is still in progress"
                );
                TickOutcome::SkippedStillRunning
            }
            LaunchResult::Failed(message) => {
                tracing::warn!(
                    flow_name,
                    %fire_time,
                    error = %message,
                    "scheduled run failed to start"
                );
                let (feedback, persisted) = self
                    .settle(flow_name, |in_flight| in_flight.seq == seq, false)
                    .await;
                if let Err(error) = persisted {
                    tracing::error!(%error, "failed run not persisted");
                }
                let suspended = matches!(
                    feedback,
                    RunFeedback::Failed {
                        suspended: true,
                        ..
                    }
                );
                TickOutcome::Failed { message, suspended }
            }
        }
    }

    /// Records the end of a run: the server calls it when a run of a scheduled flow finishes.
    ///
    /// A success moves the flow's watermark to the end of the run's window and resets its
    /// failure count. A failure (or cancellation) leaves the watermark alone and counts
    /// towards `flowErrorDeactivationThreshold`; reaching it suspends the flow. Runs the
    /// scheduler did not launch are ignored.
    ///
    /// # Errors
    ///
    /// [`SchedulerError::SaveState`] or [`SchedulerError::Suspend`] when the store fails. The
    /// in-memory state has been updated regardless.
    pub async fn on_run_finished(
        &self,
        flow_name: &str,
        execution_id: &str,
        success: bool,
    ) -> Result<RunFeedback, SchedulerError> {
        // A run can end before its launch has answered; it is the flow's only run in flight.
        let (feedback, persisted) = self
            .settle(
                flow_name,
                |in_flight| {
                    in_flight
                        .execution_id
                        .as_deref()
                        .is_none_or(|id| id == execution_id)
                },
                success,
            )
            .await;
        persisted.map(|()| feedback)
    }

    /// Records a run of `flow_name` that a previous process started and never finished (it
    /// crashed or was killed): a failure, counted towards `flowErrorDeactivationThreshold` like
    /// any other, so a flow whose runs keep crashing the server is suspended too. The
    /// watermark stays. Ignored when the flow is not scheduled here or already has a run of
    /// this process in flight.
    ///
    /// # Errors
    ///
    /// As [`Scheduler::on_run_finished`].
    pub async fn on_run_interrupted(
        &self,
        flow_name: &str,
        execution_id: &str,
    ) -> Result<RunFeedback, SchedulerError> {
        let now = self.inner.clock.now();
        {
            let mut flows = self.flows();
            let seq = flows.next();
            let Some(entry) = flows.entries.get_mut(flow_name) else {
                return Ok(RunFeedback::Ignored);
            };
            if entry.in_flight.is_some() {
                return Ok(RunFeedback::Ignored);
            }
            entry.in_flight = Some(InFlight {
                seq,
                fire_time: now,
                window: None,
                execution_id: Some(execution_id.to_owned()),
            });
        }
        tracing::warn!(
            flow_name,
            execution_id,
            "a run interrupted by the previous shutdown counts as failed"
        );
        self.on_run_finished(flow_name, execution_id, false).await
    }

    /// Applies the end of the in-flight run that `is_this_run` recognises, and persists it.
    /// The feedback holds even when persisting fails.
    async fn settle(
        &self,
        flow_name: &str,
        is_this_run: impl Fn(&InFlight) -> bool,
        success: bool,
    ) -> (RunFeedback, Result<(), SchedulerError>) {
        let Some(settled) = self.apply_end(flow_name, is_this_run, success) else {
            tracing::debug!(flow_name, "finished run is not one the scheduler waits for");
            return (RunFeedback::Ignored, Ok(()));
        };
        let (state, version) = settled.snapshot;
        let saved = self.write_state(flow_name, state, version).await;
        let mut suspended = Ok(());
        if let Some(message) = settled.suspension {
            tracing::warn!(flow_name, message, "scheduled flow suspended");
            self.wake();
            suspended = self
                .inner
                .store
                .suspend(flow_name, &message)
                .await
                .map_err(|source| SchedulerError::Suspend {
                    flow_name: flow_name.to_string(),
                    source,
                });
        }
        (settled.feedback, suspended.and(saved))
    }

    fn apply_end(
        &self,
        flow_name: &str,
        is_this_run: impl Fn(&InFlight) -> bool,
        success: bool,
    ) -> Option<Settled> {
        let mut flows = self.flows();
        let entry = flows.entries.get_mut(flow_name)?;
        let run = entry
            .in_flight
            .take_if(|in_flight| is_this_run(in_flight))?;
        let state = &mut entry.state;
        let mut suspension = None;
        let feedback = if success {
            if let Some(window) = run.window {
                // Monotonic even if runs were somehow reported out of order.
                state.watermark = Some(state.watermark.map_or(window.end, |w| w.max(window.end)));
            }
            state.consecutive_failures = 0;
            tracing::info!(flow_name, fire_time = %run.fire_time, "scheduled run succeeded");
            RunFeedback::Succeeded {
                watermark: state.watermark,
            }
        } else {
            state.consecutive_failures = state.consecutive_failures.saturating_add(1);
            let failures = state.consecutive_failures;
            let threshold = entry
                .plan
                .error_threshold
                .filter(|threshold| entry.active && failures >= *threshold);
            if let Some(threshold) = threshold {
                entry.active = false;
                suspension = Some(format!(
                    "The flow was deactivated after {failures} consecutive failed runs \
                     (flowErrorDeactivationThreshold is {threshold})"
                ));
            }
            let suspended = threshold.is_some();
            tracing::warn!(
                flow_name,
                fire_time = %run.fire_time,
                consecutive_failures = failures,
                "scheduled run failed"
            );
            RunFeedback::Failed {
                consecutive_failures: failures,
                suspended,
            }
        };
        let snapshot = flows.changed(flow_name)?;
        flows.drop_if_done(flow_name);
        Some(Settled {
            feedback,
            snapshot,
            suspension,
        })
    }

    /// Persists `state` unless a newer version of it has been written already.
    async fn write_state(
        &self,
        flow_name: &str,
        state: FlowState,
        version: u64,
    ) -> Result<(), SchedulerError> {
        let mut written = self.inner.written.lock().await;
        if written
            .get(flow_name)
            .is_some_and(|latest| *latest >= version)
        {
            return Ok(());
        }
        self.inner
            .store
            .save_state(flow_name, &state)
            .await
            .map_err(|source| SchedulerError::SaveState {
                flow_name: flow_name.to_string(),
                source,
            })?;
        written.insert(flow_name.to_string(), version);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
