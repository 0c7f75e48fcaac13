//! Scheduler tests with a manual clock and in-memory store and launcher.
//!
//! Most tests step time by hand and call [`Scheduler::run_due`], which handles the due ticks
//! and waits for their launches, so they are deterministic. The loop tests run
//! [`Scheduler::run`] for real and wait (with a timeout) for launches to be observed; none of
//! them waits for a tick in real time except one, whose tick is 100 ms away.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use sluice_api_model::ScheduledTriggerProperties;
use sluice_types::{BoxError, Clock};
use tokio::sync::{Semaphore, watch};

use super::*;

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn plan(json: &str) -> SchedulePlan {
    let properties: ScheduledTriggerProperties =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"));
    SchedulePlan::try_from(&properties).unwrap_or_else(|e| panic!("{json}: {e}"))
}

fn flow(name: &str, json: &str, activated_at: DateTime<Utc>) -> ScheduledFlow {
    ScheduledFlow {
        name: name.to_string(),
        plan: plan(json),
        activated_at,
        state: FlowState::default(),
    }
}

/// The metadata store, in memory: definitions of active flows and their persisted states.
#[derive(Debug, Default)]
struct MemoryStore {
    flows: Mutex<Vec<ScheduledFlow>>,
    states: Mutex<HashMap<String, FlowState>>,
    suspended: Mutex<Vec<(String, String)>>,
    fail_saves: AtomicBool,
}

impl MemoryStore {
    fn add(&self, flow: ScheduledFlow) {
        self.states
            .lock()
            .unwrap()
            .insert(flow.name.clone(), flow.state.clone());
        self.flows.lock().unwrap().push(flow);
    }

    fn saved(&self, name: &str) -> Option<FlowState> {
        self.states.lock().unwrap().get(name).cloned()
    }

    fn suspended(&self) -> Vec<(String, String)> {
        self.suspended.lock().unwrap().clone()
    }
}

#[async_trait]
impl ScheduleStore for MemoryStore {
    async fn load_active(&self) -> Result<Vec<ScheduledFlow>, BoxError> {
        let states = self.states.lock().unwrap();
        Ok(self
            .flows
            .lock()
            .unwrap()
            .iter()
            .map(|flow| ScheduledFlow {
                state: states.get(&flow.name).cloned().unwrap_or_default(),
                ..flow.clone()
            })
            .collect())
    }

    async fn save_state(&self, flow_name: &str, state: &FlowState) -> Result<(), BoxError> {
        if self.fail_saves.load(Ordering::SeqCst) {
            return Err("the disk is full".into());
        }
        self.states
            .lock()
            .unwrap()
            .insert(flow_name.to_string(), state.clone());
        Ok(())
    }

    async fn suspend(&self, flow_name: &str, message: &str) -> Result<(), BoxError> {
        self.flows
            .lock()
            .unwrap()
            .retain(|flow| flow.name != flow_name);
        self.suspended
            .lock()
            .unwrap()
            .push((flow_name.to_string(), message.to_string()));
        Ok(())
    }
}

/// How the fake launcher answers for a flow.
#[derive(Debug, Clone)]
enum Behaviour {
    Start,
    Skip,
    Fail(&'static str),
    Panic,
    /// Starts once a permit is available.
    Gate(Arc<Semaphore>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Launch {
    flow: String,
    fire_time: DateTime<Utc>,
    window: Option<Window>,
}

#[derive(Debug)]
struct FakeLauncher {
    behaviour: Mutex<HashMap<String, Behaviour>>,
    /// Launches that returned, in order.
    launches: Mutex<Vec<Launch>>,
    returned: watch::Sender<usize>,
    entered: watch::Sender<usize>,
    ids: AtomicUsize,
}

impl FakeLauncher {
    fn new() -> Self {
        Self {
            behaviour: Mutex::new(HashMap::new()),
            launches: Mutex::new(Vec::new()),
            returned: watch::Sender::new(0),
            entered: watch::Sender::new(0),
            ids: AtomicUsize::new(0),
        }
    }

    fn set(&self, flow: &str, behaviour: Behaviour) {
        self.behaviour
            .lock()
            .unwrap()
            .insert(flow.to_string(), behaviour);
    }

    fn launches(&self) -> Vec<Launch> {
        self.launches.lock().unwrap().clone()
    }

    /// Waits until `count` launches have returned.
    async fn returned(&self, count: usize) {
        let mut receiver = self.returned.subscribe();
        tokio::time::timeout(Duration::from_secs(10), receiver.wait_for(|n| *n >= count))
            .await
            .unwrap_or_else(|_| panic!("{count} launches expected, got {:?}", self.launches()))
            .unwrap();
    }

    /// Waits until `count` launches have been called.
    async fn entered(&self, count: usize) {
        let mut receiver = self.entered.subscribe();
        tokio::time::timeout(Duration::from_secs(10), receiver.wait_for(|n| *n >= count))
            .await
            .unwrap_or_else(|_| panic!("{count} launch calls expected"))
            .unwrap();
    }
}

#[async_trait]
impl RunLauncher for FakeLauncher {
    async fn launch(
        &self,
        flow_name: &str,
        fire_time: DateTime<Utc>,
        window: Option<Window>,
    ) -> LaunchResult {
        self.entered.send_modify(|n| *n += 1);
        let behaviour = self
            .behaviour
            .lock()
            .unwrap()
            .get(flow_name)
            .cloned()
            .unwrap_or(Behaviour::Start);
        let result = match behaviour {
            Behaviour::Start => None,
            Behaviour::Skip => Some(LaunchResult::SkippedStillRunning),
            Behaviour::Fail(message) => Some(LaunchResult::Failed(message.to_string())),
            Behaviour::Panic => panic!("the launcher broke"),
            Behaviour::Gate(gate) => {
                gate.acquire().await.unwrap().forget();
                None
            }
        };
        let result = result.unwrap_or_else(|| {
            let id = self.ids.fetch_add(1, Ordering::SeqCst) + 1;
            LaunchResult::Started(format!("{flow_name}-{id}"))
        });
        self.launches.lock().unwrap().push(Launch {
            flow: flow_name.to_string(),
            fire_time,
            window,
        });
        self.returned.send_modify(|n| *n += 1);
        result
    }
}

struct Harness {
    clock: ManualClock,
    store: Arc<MemoryStore>,
    launcher: Arc<FakeLauncher>,
    scheduler: Scheduler,
}

fn harness(now: &str) -> Harness {
    harness_with(ManualClock::new(at(now)), Arc::new(MemoryStore::default()))
}

fn harness_with(clock: ManualClock, store: Arc<MemoryStore>) -> Harness {
    let launcher = Arc::new(FakeLauncher::new());
    let scheduler = Scheduler::new(
        Arc::clone(&store) as Arc<dyn ScheduleStore>,
        Arc::clone(&launcher) as Arc<dyn RunLauncher>,
        Arc::new(clock.clone()),
    );
    Harness {
        clock,
        store,
        launcher,
        scheduler,
    }
}

impl Harness {
    async fn activate(&self, name: &str, json: &str) {
        self.scheduler
            .activate(flow(name, json, self.clock.now()))
            .await
            .unwrap();
    }

    /// Moves the clock to `now` and handles what is due.
    async fn tick_at(&self, now: &str) -> Vec<Tick> {
        self.clock.set(at(now));
        self.scheduler.run_due().await
    }

    async fn finish(&self, name: &str, execution_id: &str, success: bool) -> RunFeedback {
        self.scheduler
            .on_run_finished(name, execution_id, success)
            .await
            .unwrap()
    }
}

fn started(name: &str, fire_time: &str, window: Option<Window>, id: &str) -> Tick {
    Tick {
        flow_name: name.to_string(),
        fire_time: at(fire_time),
        window,
        outcome: TickOutcome::Started(id.to_string()),
    }
}

fn skipped(name: &str, fire_time: &str) -> Tick {
    Tick {
        flow_name: name.to_string(),
        fire_time: at(fire_time),
        window: None,
        outcome: TickOutcome::SkippedStillRunning,
    }
}

fn window_of(start: &str, end: &str) -> Option<Window> {
    Some(Window {
        start: at(start),
        end: at(end),
    })
}

const HOURLY_INCREMENTAL: &str = r#"{"scheduleExpression": "rate(1hours)",
    "dataPullMode": "Incremental", "scheduleOffset": 60,
    "firstExecutionFrom": "2024-01-01T00:00:00Z"}"#;

#[tokio::test]
async fn a_rate_fires_at_activation_and_then_every_period() {
    let h = harness("2024-01-02T10:00:00Z");
    h.activate("orders", r#"{"scheduleExpression": "rate(5minutes)"}"#)
        .await;
    assert_eq!(
        h.scheduler.run_due().await,
        [started("orders", "2024-01-02T10:00:00Z", None, "orders-1")]
    );
    assert_eq!(
        h.finish("orders", "orders-1", true).await,
        RunFeedback::Succeeded { watermark: None }
    );
    assert_eq!(h.tick_at("2024-01-02T10:04:59.999Z").await, []);
    assert_eq!(h.scheduler.next_wake(), Some(at("2024-01-02T10:05:00Z")));
    assert_eq!(
        h.tick_at("2024-01-02T10:05:00Z").await,
        [started("orders", "2024-01-02T10:05:00Z", None, "orders-2")]
    );
    // The tick is persisted.
    assert_eq!(
        h.store.saved("orders").unwrap().last_fire,
        Some(at("2024-01-02T10:05:00Z"))
    );
    assert_eq!(h.scheduler.run_due().await, []);
}

#[tokio::test]
async fn ticks_are_skipped_while_the_previous_run_is_in_progress() {
    let h = harness("2024-01-02T10:00:00Z");
    h.activate("orders", HOURLY_INCREMENTAL).await;
    let first_window = window_of("2024-01-01T00:00:00Z", "2024-01-02T09:59:00Z");
    assert_eq!(
        h.scheduler.run_due().await,
        [started(
            "orders",
            "2024-01-02T10:00:00Z",
            first_window,
            "orders-1"
        )]
    );
    assert!(h.scheduler.is_running("orders"));
    // The run takes more than an hour: the 11:00 tick is skipped, not queued.
    assert_eq!(
        h.tick_at("2024-01-02T11:00:00Z").await,
        [skipped("orders", "2024-01-02T11:00:00Z")]
    );
    assert_eq!(h.launcher.launches().len(), 1);
    assert_eq!(
        h.store.saved("orders").unwrap().last_fire,
        Some(at("2024-01-02T11:00:00Z"))
    );
    assert_eq!(
        h.finish("orders", "orders-1", true).await,
        RunFeedback::Succeeded {
            watermark: Some(at("2024-01-02T09:59:00Z"))
        }
    );
    assert!(!h.scheduler.is_running("orders"));
    // The next window starts where the first ended and covers the skipped hour.
    assert_eq!(
        h.tick_at("2024-01-02T12:00:00Z").await,
        [started(
            "orders",
            "2024-01-02T12:00:00Z",
            window_of("2024-01-02T09:59:00Z", "2024-01-02T11:59:00Z"),
            "orders-2"
        )]
    );
}

#[tokio::test]
async fn a_failed_run_does_not_move_the_watermark() {
    let h = harness("2024-01-02T10:00:00Z");
    h.activate("orders", HOURLY_INCREMENTAL).await;
    h.scheduler.run_due().await;
    h.finish("orders", "orders-1", true).await;
    h.tick_at("2024-01-02T11:00:00Z").await;
    assert_eq!(
        h.finish("orders", "orders-2", false).await,
        RunFeedback::Failed {
            consecutive_failures: 1,
            suspended: false
        }
    );
    let state = h.store.saved("orders").unwrap();
    assert_eq!(state.watermark, Some(at("2024-01-02T09:59:00Z")));
    assert_eq!(state.consecutive_failures, 1);
    // The run after the failure reads from the last success: nothing is lost.
    assert_eq!(
        h.tick_at("2024-01-02T12:00:00Z").await,
        [started(
            "orders",
            "2024-01-02T12:00:00Z",
            window_of("2024-01-02T09:59:00Z", "2024-01-02T11:59:00Z"),
            "orders-3"
        )]
    );
    assert_eq!(
        h.finish("orders", "orders-3", true).await,
        RunFeedback::Succeeded {
            watermark: Some(at("2024-01-02T11:59:00Z"))
        }
    );
    assert_eq!(h.store.saved("orders").unwrap().consecutive_failures, 0);
}

#[tokio::test]
async fn consecutive_failures_suspend_the_flow_at_the_threshold() {
    let h = harness("2024-01-02T10:00:00Z");
    h.activate(
        "orders",
        r#"{"scheduleExpression": "rate(1hours)", "flowErrorDeactivationThreshold": 3}"#,
    )
    .await;
    h.scheduler.run_due().await;
    h.finish("orders", "orders-1", false).await;
    h.tick_at("2024-01-02T11:00:00Z").await;
    h.finish("orders", "orders-2", false).await;
    // A success in between resets the count.
    h.tick_at("2024-01-02T12:00:00Z").await;
    h.finish("orders", "orders-3", true).await;
    for (hour, id) in [(13, "orders-4"), (14, "orders-5")] {
        h.tick_at(&format!("2024-01-02T{hour}:00:00Z")).await;
        h.finish("orders", id, false).await;
    }
    assert!(h.store.suspended().is_empty());
    h.tick_at("2024-01-02T15:00:00Z").await;
    assert_eq!(
        h.finish("orders", "orders-6", false).await,
        RunFeedback::Failed {
            consecutive_failures: 3,
            suspended: true
        }
    );
    assert_eq!(
        h.store.suspended(),
        [(
            "orders".to_string(),
            "The flow was deactivated after 3 consecutive failed runs \
             (flowErrorDeactivationThreshold is 3)"
                .to_string()
        )]
    );
    assert_eq!(h.store.saved("orders").unwrap().consecutive_failures, 3);
    // Nothing runs any more.
    assert_eq!(h.scheduler.state("orders"), None);
    assert_eq!(h.scheduler.next_wake(), None);
    assert_eq!(h.tick_at("2024-01-02T18:00:00Z").await, []);
    assert_eq!(h.launcher.launches().len(), 6);
}

#[tokio::test]
async fn runs_that_cannot_start_count_as_failures() {
    let h = harness("2024-01-02T10:00:00Z");
    h.launcher
        .set("orders", Behaviour::Fail("profile not found"));
    h.activate(
        "orders",
        r#"{"scheduleExpression": "rate(1hours)", "flowErrorDeactivationThreshold": 2}"#,
    )
    .await;
    let failed = |fire: &str, suspended| Tick {
        flow_name: "orders".to_string(),
        fire_time: at(fire),
        window: None,
        outcome: TickOutcome::Failed {
            message: "profile not found".to_string(),
            suspended,
        },
    };
    assert_eq!(
        h.scheduler.run_due().await,
        [failed("2024-01-02T10:00:00Z", false)]
    );
    assert!(!h.scheduler.is_running("orders"));
    assert_eq!(
        h.tick_at("2024-01-02T11:00:00Z").await,
        [failed("2024-01-02T11:00:00Z", true)]
    );
    assert_eq!(h.store.suspended().len(), 1);
    assert_eq!(h.tick_at("2024-01-02T12:00:00Z").await, []);
}

#[tokio::test]
async fn without_a_threshold_a_flow_is_never_suspended() {
    let h = harness("2024-01-02T00:00:00Z");
    h.launcher
        .set("orders", Behaviour::Fail("source unavailable"));
    h.activate("orders", r#"{"scheduleExpression": "rate(1hours)"}"#)
        .await;
    for hour in 0..24 {
        let ticks = h.tick_at(&format!("2024-01-02T{hour:02}:00:00Z")).await;
        assert_eq!(ticks.len(), 1);
    }
    assert!(h.store.suspended().is_empty());
    assert_eq!(
        h.scheduler.state("orders").unwrap().consecutive_failures,
        24
    );
}

#[tokio::test]
async fn a_launcher_that_reports_a_run_in_progress_skips_the_tick() {
    let h = harness("2024-01-02T10:00:00Z");
    h.launcher.set("orders", Behaviour::Skip);
    h.activate(
        "orders",
        r#"{"scheduleExpression": "rate(1hours)", "flowErrorDeactivationThreshold": 1}"#,
    )
    .await;
    let ticks = h.scheduler.run_due().await;
    assert_eq!(ticks.len(), 1);
    assert_eq!(ticks[0].outcome, TickOutcome::SkippedStillRunning);
    // Not a failure, and nothing is in flight.
    assert!(!h.scheduler.is_running("orders"));
    assert_eq!(h.scheduler.state("orders").unwrap().consecutive_failures, 0);
    h.launcher.set("orders", Behaviour::Start);
    assert_eq!(
        h.tick_at("2024-01-02T11:00:00Z").await,
        [started("orders", "2024-01-02T11:00:00Z", None, "orders-1")]
    );
}

#[tokio::test]
async fn a_launcher_that_panics_fails_the_run() {
    let h = harness("2024-01-02T10:00:00Z");
    h.launcher.set("orders", Behaviour::Panic);
    h.activate("orders", r#"{"scheduleExpression": "rate(1hours)"}"#)
        .await;
    let ticks = h.scheduler.run_due().await;
    let TickOutcome::Failed { message, suspended } = &ticks[0].outcome else {
        panic!("expected a failed tick, got {ticks:?}");
    };
    assert!(
        message.starts_with("the run could not be launched"),
        "{message}"
    );
    assert!(!suspended);
    assert_eq!(h.scheduler.state("orders").unwrap().consecutive_failures, 1);
    assert!(!h.scheduler.is_running("orders"));
}

#[tokio::test]
async fn reports_of_unknown_runs_are_ignored() {
    let h = harness("2024-01-02T10:00:00Z");
    h.activate("orders", HOURLY_INCREMENTAL).await;
    h.scheduler.run_due().await;
    assert_eq!(h.finish("nobody", "x", true).await, RunFeedback::Ignored);
    assert_eq!(
        h.finish("orders", "orders-99", true).await,
        RunFeedback::Ignored
    );
    assert!(h.scheduler.is_running("orders"));
    assert!(matches!(
        h.finish("orders", "orders-1", true).await,
        RunFeedback::Succeeded { .. }
    ));
    // Reported twice: the second report changes nothing.
    assert_eq!(
        h.finish("orders", "orders-1", false).await,
        RunFeedback::Ignored
    );
    assert_eq!(h.scheduler.state("orders").unwrap().consecutive_failures, 0);
}

#[tokio::test]
async fn a_run_may_finish_before_its_launch_answers() {
    let h = harness("2024-01-02T10:00:00Z");
    let gate = Arc::new(Semaphore::new(0));
    h.launcher.set("orders", Behaviour::Gate(Arc::clone(&gate)));
    h.activate("orders", HOURLY_INCREMENTAL).await;
    let scheduler = h.scheduler.clone();
    let ticks = tokio::spawn(async move { scheduler.run_due().await });
    h.launcher.entered(1).await;
    assert_eq!(
        h.finish("orders", "orders-1", true).await,
        RunFeedback::Succeeded {
            watermark: Some(at("2024-01-02T09:59:00Z"))
        }
    );
    gate.add_permits(1);
    let ticks = ticks.await.unwrap();
    assert_eq!(
        ticks[0].outcome,
        TickOutcome::Started("orders-1".to_string())
    );
    // The late answer does not resurrect the finished run.
    assert!(!h.scheduler.is_running("orders"));
    assert_eq!(
        h.finish("orders", "orders-1", true).await,
        RunFeedback::Ignored
    );
}

#[tokio::test]
async fn a_restart_runs_a_missed_tick_once_and_the_window_covers_the_gap() {
    let store = Arc::new(MemoryStore::default());
    let clock = ManualClock::new(at("2024-01-02T10:00:00Z"));
    let before = harness_with(clock.clone(), Arc::clone(&store));
    store.add(flow("orders", HOURLY_INCREMENTAL, clock.now()));
    assert_eq!(before.scheduler.load().await.unwrap(), 1);
    before.scheduler.run_due().await;
    before.finish("orders", "orders-1", true).await;
    before.tick_at("2024-01-02T11:00:00Z").await;
    before.finish("orders", "orders-2", true).await;
    // The 12:00 run is in progress when the server is killed.
    before.tick_at("2024-01-02T12:00:00Z").await;
    assert!(before.scheduler.is_running("orders"));
    drop(before);

    // The server comes back at 17:30: five ticks were missed (12:00 was handled).
    clock.set(at("2024-01-02T17:30:00Z"));
    let after = harness_with(clock.clone(), Arc::clone(&store));
    assert_eq!(after.scheduler.load().await.unwrap(), 1);
    assert_eq!(
        after.scheduler.run_due().await,
        [started(
            "orders",
            "2024-01-02T17:00:00Z",
            // From the last successful run (11:00) to the latest tick: the interrupted run
            // and the downtime are covered.
            window_of("2024-01-02T10:59:00Z", "2024-01-02T16:59:00Z"),
            "orders-1"
        )]
    );
    assert_eq!(after.launcher.launches().len(), 1);
    assert_eq!(after.scheduler.run_due().await, []);
    assert_eq!(
        after.scheduler.next_wake(),
        Some(at("2024-01-02T18:00:00Z"))
    );
    // Later ticks follow the original grid.
    after.finish("orders", "orders-1", true).await;
    assert_eq!(
        after.tick_at("2024-01-02T18:00:00Z").await,
        [started(
            "orders",
            "2024-01-02T18:00:00Z",
            window_of("2024-01-02T16:59:00Z", "2024-01-02T17:59:00Z"),
            "orders-2"
        )]
    );
}

#[tokio::test]
async fn loading_keeps_the_failure_count_and_activating_resets_it() {
    let store = Arc::new(MemoryStore::default());
    let h = harness_with(
        ManualClock::new(at("2024-01-02T10:00:00Z")),
        Arc::clone(&store),
    );
    let mut orders = flow(
        "orders",
        r#"{"scheduleExpression": "rate(1hours)", "flowErrorDeactivationThreshold": 3}"#,
        at("2024-01-01T00:00:00Z"),
    );
    orders.state = FlowState {
        last_fire: Some(at("2024-01-02T09:00:00Z")),
        watermark: None,
        consecutive_failures: 2,
    };
    store.add(orders.clone());
    h.scheduler.load().await.unwrap();
    assert_eq!(h.scheduler.state("orders").unwrap().consecutive_failures, 2);
    let ticks = h.scheduler.run_due().await;
    assert_eq!(ticks[0].fire_time, at("2024-01-02T10:00:00Z"));
    assert_eq!(
        h.finish("orders", "orders-1", false).await,
        RunFeedback::Failed {
            consecutive_failures: 3,
            suspended: true
        }
    );
    // StartFlow reactivates it with a clean slate, persisted.
    orders.activated_at = at("2024-01-02T10:30:00Z");
    orders.state = h.store.saved("orders").unwrap();
    h.clock.set(at("2024-01-02T10:30:00Z"));
    h.scheduler.activate(orders).await.unwrap();
    assert_eq!(h.store.saved("orders").unwrap().consecutive_failures, 0);
    // A rate without a start time counts from the new activation.
    assert_eq!(
        h.scheduler.run_due().await[0].fire_time,
        at("2024-01-02T10:30:00Z")
    );
    assert_eq!(h.scheduler.next_wake(), Some(at("2024-01-02T11:30:00Z")));
}

#[tokio::test]
async fn loading_drops_flows_that_are_no_longer_active() {
    let store = Arc::new(MemoryStore::default());
    let h = harness_with(
        ManualClock::new(at("2024-01-02T10:00:00Z")),
        Arc::clone(&store),
    );
    store.add(flow(
        "a",
        r#"{"scheduleExpression": "rate(1hours)"}"#,
        h.clock.now(),
    ));
    store.add(flow(
        "b",
        r#"{"scheduleExpression": "rate(1hours)"}"#,
        h.clock.now(),
    ));
    assert_eq!(h.scheduler.load().await.unwrap(), 2);
    store.flows.lock().unwrap().retain(|flow| flow.name == "b");
    assert_eq!(h.scheduler.load().await.unwrap(), 1);
    assert_eq!(h.scheduler.state("a"), None);
    let ticks = h.scheduler.run_due().await;
    assert_eq!(ticks.len(), 1);
    assert_eq!(ticks[0].flow_name, "b");
}

#[tokio::test]
async fn a_deactivated_flow_stops_but_its_last_run_still_counts() {
    let h = harness("2024-01-02T10:00:00Z");
    h.activate("orders", HOURLY_INCREMENTAL).await;
    h.scheduler.run_due().await;
    assert!(h.scheduler.deactivate("orders"));
    assert!(!h.scheduler.deactivate("orders"));
    assert!(!h.scheduler.deactivate("unknown"));
    assert_eq!(h.tick_at("2024-01-02T13:00:00Z").await, []);
    assert_eq!(h.scheduler.next_wake(), None);
    // The run that was in progress ends well: its window is not read again.
    assert!(matches!(
        h.finish("orders", "orders-1", true).await,
        RunFeedback::Succeeded { .. }
    ));
    assert_eq!(
        h.store.saved("orders").unwrap().watermark,
        Some(at("2024-01-02T09:59:00Z"))
    );
    assert_eq!(h.scheduler.state("orders"), None);
}

#[tokio::test]
async fn updating_a_flow_replaces_its_schedule_and_keeps_its_state() {
    let h = harness("2024-01-02T10:00:00Z");
    h.activate("orders", HOURLY_INCREMENTAL).await;
    h.scheduler.run_due().await;
    h.finish("orders", "orders-1", true).await;
    assert_eq!(h.scheduler.next_wake(), Some(at("2024-01-02T11:00:00Z")));
    assert!(h.scheduler.update(
        "orders",
        plan(r#"{"scheduleExpression": "cron(0/10 * * * ? *)", "dataPullMode": "Incremental"}"#)
    ));
    assert_eq!(h.scheduler.next_wake(), Some(at("2024-01-02T10:10:00Z")));
    assert_eq!(
        h.tick_at("2024-01-02T10:10:00Z").await,
        [started(
            "orders",
            "2024-01-02T10:10:00Z",
            window_of("2024-01-02T09:59:00Z", "2024-01-02T10:10:00Z"),
            "orders-2"
        )]
    );
    assert!(!h.scheduler.update("unknown", plan(HOURLY_INCREMENTAL)));
}

#[tokio::test]
async fn nothing_runs_after_the_schedule_end() {
    let h = harness("2024-01-02T10:00:00Z");
    h.activate(
        "orders",
        r#"{"scheduleExpression": "rate(1hours)", "scheduleStartTime": "2024-01-02T10:30:00Z",
            "scheduleEndTime": "2024-01-02T11:45:00Z"}"#,
    )
    .await;
    assert_eq!(h.scheduler.run_due().await, []);
    assert_eq!(h.tick_at("2024-01-02T10:30:00Z").await.len(), 1);
    h.finish("orders", "orders-1", true).await;
    assert_eq!(h.tick_at("2024-01-02T11:30:00Z").await.len(), 1);
    h.finish("orders", "orders-2", true).await;
    assert_eq!(h.scheduler.next_wake(), None);
    assert_eq!(h.tick_at("2024-01-03T00:00:00Z").await, []);
}

#[tokio::test]
async fn a_store_that_cannot_save_does_not_stop_the_schedule() {
    let h = harness("2024-01-02T10:00:00Z");
    h.activate("orders", HOURLY_INCREMENTAL).await;
    h.store.fail_saves.store(true, Ordering::SeqCst);
    // The tick cannot be persisted, but the run still starts.
    assert_eq!(
        h.scheduler.run_due().await[0].outcome,
        TickOutcome::Started("orders-1".to_string())
    );
    let error = h
        .scheduler
        .on_run_finished("orders", "orders-1", true)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot save the schedule state of flow orders: the disk is full"
    );
    assert_eq!(error.error_domain(), ErrorDomain::Internal);
    // Memory moved on; the next successful write carries the newest state.
    assert_eq!(
        h.scheduler.state("orders").unwrap().watermark,
        Some(at("2024-01-02T09:59:00Z"))
    );
    h.store.fail_saves.store(false, Ordering::SeqCst);
    h.tick_at("2024-01-02T11:00:00Z").await;
    let saved = h.store.saved("orders").unwrap();
    assert_eq!(saved.watermark, Some(at("2024-01-02T09:59:00Z")));
    assert_eq!(saved.last_fire, Some(at("2024-01-02T11:00:00Z")));
}

#[tokio::test]
async fn many_flows_tick_independently() {
    let h = harness("2024-01-02T10:00:00Z");
    for (name, expression) in [
        ("hourly", "rate(1hours)"),
        ("quarter", "cron(0/15 * * * ? *)"),
        ("daily", "cron(0 6 * * ? *)"),
    ] {
        h.activate(
            name,
            &format!(r#"{{"scheduleExpression": "{expression}"}}"#),
        )
        .await;
    }
    let mut fired: HashMap<String, usize> = HashMap::new();
    let mut minute = at("2024-01-02T10:00:00Z");
    while minute <= at("2024-01-03T10:00:00Z") {
        h.clock.set(minute);
        for tick in h.scheduler.run_due().await {
            let TickOutcome::Started(id) = &tick.outcome else {
                panic!("{tick:?}");
            };
            h.finish(&tick.flow_name, id, true).await;
            *fired.entry(tick.flow_name).or_default() += 1;
        }
        minute += TimeDelta::minutes(1);
    }
    assert_eq!(fired["hourly"], 25);
    assert_eq!(fired["quarter"], 97);
    assert_eq!(fired["daily"], 1);
}

#[test]
fn flow_state_round_trips_through_json() {
    let state = FlowState {
        last_fire: Some(at("2024-01-02T10:00:00Z")),
        watermark: Some(at("2024-01-02T09:59:00.123Z")),
        consecutive_failures: 2,
    };
    let json = serde_json::to_value(&state).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "lastFire": "2024-01-02T10:00:00Z",
            "watermark": "2024-01-02T09:59:00.123Z",
            "consecutiveFailures": 2
        })
    );
    assert_eq!(serde_json::from_value::<FlowState>(json).unwrap(), state);
}

/// Runs the loop in a task; dropping the guard's sender stops it.
fn spawn_loop(
    scheduler: &Scheduler,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let scheduler = scheduler.clone();
    let handle = tokio::spawn(async move {
        scheduler
            .run(async {
                let _ = stopped.await;
            })
            .await;
    });
    (stop, handle)
}

async fn stop_loop(stop: tokio::sync::oneshot::Sender<()>, handle: tokio::task::JoinHandle<()>) {
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .expect("the loop stops on shutdown")
        .unwrap();
}

#[tokio::test]
async fn the_loop_wakes_up_for_activations_and_clock_moves() {
    let h = harness("2024-01-02T10:00:00Z");
    let (stop, handle) = spawn_loop(&h.scheduler);
    h.activate("orders", r#"{"scheduleExpression": "rate(1hours)"}"#)
        .await;
    h.launcher.returned(1).await;
    h.finish("orders", "orders-1", true).await;
    h.clock.set(at("2024-01-02T11:00:00Z"));
    h.scheduler.wake();
    h.launcher.returned(2).await;
    assert_eq!(
        h.launcher
            .launches()
            .iter()
            .map(|launch| launch.fire_time)
            .collect::<Vec<_>>(),
        [at("2024-01-02T10:00:00Z"), at("2024-01-02T11:00:00Z")]
    );
    stop_loop(stop, handle).await;
}

#[tokio::test]
async fn a_slow_launch_does_not_hold_up_other_flows() {
    let h = harness("2024-01-02T10:00:00Z");
    let gate = Arc::new(Semaphore::new(0));
    h.launcher.set("slow", Behaviour::Gate(Arc::clone(&gate)));
    let (stop, handle) = spawn_loop(&h.scheduler);
    h.activate("slow", r#"{"scheduleExpression": "rate(1hours)"}"#)
        .await;
    h.launcher.entered(1).await;
    h.activate("fast", r#"{"scheduleExpression": "rate(1hours)"}"#)
        .await;
    h.launcher.returned(1).await;
    assert_eq!(h.launcher.launches()[0].flow, "fast");
    // An hour later the slow launch still has not answered; the fast flow ticks again and
    // the slow flow's tick is skipped, since its first run has not even started.
    h.finish("fast", "fast-1", true).await;
    h.clock.set(at("2024-01-02T11:00:00Z"));
    h.scheduler.wake();
    h.launcher.returned(2).await;
    assert_eq!(h.launcher.launches()[1].flow, "fast");
    assert_eq!(
        h.scheduler.state("slow").unwrap().last_fire,
        Some(at("2024-01-02T11:00:00Z"))
    );
    gate.add_permits(1);
    h.launcher.returned(3).await;
    assert_eq!(
        h.launcher.launches()[2],
        Launch {
            flow: "slow".to_string(),
            fire_time: at("2024-01-02T10:00:00Z"),
            window: None
        }
    );
    stop_loop(stop, handle).await;
}

/// Real time from a chosen starting point, for the one test that lets the loop sleep.
#[derive(Debug)]
struct OffsetClock {
    base: DateTime<Utc>,
    started: Instant,
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        self.base + TimeDelta::from_std(self.started.elapsed()).unwrap_or(TimeDelta::MAX)
    }
}

#[tokio::test]
async fn the_loop_sleeps_until_the_next_tick() {
    let store = Arc::new(MemoryStore::default());
    let mut every_minute = flow(
        "orders",
        r#"{"scheduleExpression": "cron(* * * * ? *)"}"#,
        at("2024-01-02T09:00:00Z"),
    );
    every_minute.state.last_fire = Some(at("2024-01-02T10:00:00Z"));
    store.add(every_minute);
    let launcher = Arc::new(FakeLauncher::new());
    let clock = Arc::new(OffsetClock {
        base: at("2024-01-02T10:00:59.900Z"),
        started: Instant::now(),
    });
    let scheduler = Scheduler::new(
        Arc::clone(&store) as Arc<dyn ScheduleStore>,
        Arc::clone(&launcher) as Arc<dyn RunLauncher>,
        clock,
    );
    scheduler.load().await.unwrap();
    let (stop, handle) = spawn_loop(&scheduler);
    // Nothing wakes the loop: it must sleep the 100 ms to the next tick by itself.
    launcher.returned(1).await;
    assert_eq!(launcher.launches()[0].fire_time, at("2024-01-02T10:01:00Z"));
    stop_loop(stop, handle).await;
}

#[tokio::test]
async fn runs_interrupted_by_a_crash_count_towards_the_threshold() {
    let h = harness("2024-01-02T10:00:00Z");
    h.activate(
        "orders",
        r#"{"scheduleExpression": "rate(1hours)", "flowErrorDeactivationThreshold": 2}"#,
    )
    .await;
    // A flow the scheduler does not know is left alone.
    assert_eq!(
        h.scheduler
            .on_run_interrupted("other", "other-1")
            .await
            .unwrap(),
        RunFeedback::Ignored
    );
    // A run of this process in flight is never mistaken for the crashed one.
    h.scheduler.run_due().await;
    assert!(h.scheduler.is_running("orders"));
    assert_eq!(
        h.scheduler
            .on_run_interrupted("orders", "old-1")
            .await
            .unwrap(),
        RunFeedback::Ignored
    );
    assert_eq!(h.scheduler.state("orders").unwrap().consecutive_failures, 0);
    h.finish("orders", "orders-1", false).await;
    assert_eq!(
        h.scheduler
            .on_run_interrupted("orders", "old-2")
            .await
            .unwrap(),
        RunFeedback::Failed {
            consecutive_failures: 2,
            suspended: true
        }
    );
    assert_eq!(h.store.suspended().len(), 1);
    assert_eq!(h.store.saved("orders").unwrap().consecutive_failures, 2);
    assert_eq!(h.scheduler.state("orders"), None);
}
