//! Scheduled flows: the [`sluice_scheduler`] loop wired to the metadata store and the run
//! manager.
//!
//! * [`StoreAdapter`] implements [`ScheduleStore`]: active scheduled flows come from the
//!   `flows` table, their activation time and [`FlowState`] from the `flow_schedules` table,
//!   so a restarted server continues every schedule where it stopped.
//! * [`Launcher`] implements [`RunLauncher`]: it starts a run through the run manager with the
//!   incremental window, unless a run of the flow is still in progress (the tick is skipped).
//! * The run manager reports every finished run to the scheduler
//!   ([`sluice_scheduler::Scheduler::on_run_finished`]), which moves the watermark on success
//!   and suspends flows that fail `flowErrorDeactivationThreshold` times in a row.
//!
//! A run interrupted by a crash never reports back: recovery marks it `Error` and reports it
//! to the scheduler as a failure ([`sluice_scheduler::Scheduler::on_run_interrupted`]), so it
//! counts towards `flowErrorDeactivationThreshold`; the watermark, only ever moved by a
//! reported success, stays where it was.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sluice_api_model as model;
use sluice_metastore::{MetadataStore, ScheduleUpdate, StoreError};
use sluice_scheduler::{
    FlowState, LaunchResult, RunLauncher, SchedulePlan, ScheduleStore, ScheduledFlow, Window,
};
use sluice_types::{BoxError, SharedClock};

use crate::documents::FlowDocument;
use crate::error::ApiError;
use crate::runs::{RunInputs, RunManager, set_last_run_locked};

/// The scheduled trigger settings of a flow, or `None` when it is not a scheduled flow.
pub(crate) fn scheduled_properties(
    document: &FlowDocument,
) -> Option<&model::ScheduledTriggerProperties> {
    if document.trigger_type() != model::TriggerType::Scheduled {
        return None;
    }
    document
        .describe
        .trigger_config
        .as_ref()?
        .trigger_properties
        .as_ref()?
        .scheduled
        .as_ref()
}

/// The schedule plan of a scheduled flow.
///
/// # Errors
/// `ValidationException` when the flow is not scheduled or its trigger cannot be planned.
pub(crate) fn plan_of(document: &FlowDocument) -> Result<SchedulePlan, ApiError> {
    let properties = scheduled_properties(document).ok_or_else(|| {
        ApiError::validation(format!(
            "Flow {} has no triggerConfig.triggerProperties.Scheduled",
            document.name()
        ))
    })?;
    SchedulePlan::try_from(properties).map_err(|error| ApiError::validation(error.to_string()))
}

/// The persisted scheduler state of a flow (the default state when none was saved).
pub(crate) async fn load_state(
    store: &dyn MetadataStore,
    flow_name: &str,
) -> Result<(Option<DateTime<Utc>>, FlowState), StoreError> {
    let Some(record) = store.get_schedule(flow_name).await? else {
        return Ok((None, FlowState::default()));
    };
    let state = match record.state {
        Some(value) => serde_json::from_value(value).map_err(|error| {
            StoreError::Corrupt(format!("flow schedule {flow_name}: column state: {error}"))
        })?,
        None => FlowState::default(),
    };
    Ok((record.activated_at, state))
}

/// [`ScheduleStore`] over the metadata store.
#[derive(Debug)]
pub(crate) struct StoreAdapter {
    pub store: Arc<dyn MetadataStore>,
    pub flow_lock: Arc<tokio::sync::Mutex<()>>,
    pub clock: SharedClock,
}

#[async_trait]
impl ScheduleStore for StoreAdapter {
    async fn load_active(&self) -> Result<Vec<ScheduledFlow>, BoxError> {
        let mut flows = Vec::new();
        for record in self
            .store
            .list_flows_by_status(model::FlowStatus::Active.as_str())
            .await?
        {
            let document = match FlowDocument::from_record(&record) {
                Ok(document) => document,
                Err(error) => {
                    tracing::error!(flow_name = %record.name, error = %error.message, "stored flow cannot be read; not scheduled");
                    continue;
                }
            };
            if scheduled_properties(&document).is_none() {
                continue;
            }
            let plan = match plan_of(&document) {
                Ok(plan) => plan,
                Err(error) => {
                    tracing::error!(flow_name = %record.name, error = %error.message, "stored schedule cannot be planned; not scheduled");
                    continue;
                }
            };
            let (activated_at, state) = load_state(self.store.as_ref(), &record.name).await?;
            // A flow activated before schedules were persisted counts from its last update.
            let activated_at = activated_at.unwrap_or(record.updated_at);
            flows.push(ScheduledFlow {
                name: record.name,
                plan,
                activated_at,
                state,
            });
        }
        Ok(flows)
    }

    async fn save_state(&self, flow_name: &str, state: &FlowState) -> Result<(), BoxError> {
        let update = ScheduleUpdate {
            state: Some(serde_json::to_value(state)?),
            ..ScheduleUpdate::default()
        };
        match self
            .store
            .update_schedule(flow_name, &update, self.clock.now())
            .await
        {
            Ok(()) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    async fn suspend(&self, flow_name: &str, message: &str) -> Result<(), BoxError> {
        let _guard = self.flow_lock.lock().await;
        let Some(record) = self.store.get_flow(flow_name).await? else {
            return Ok(());
        };
        let mut document = FlowDocument::from_record(&record).map_err(|e| e.message)?;
        if document.status() != model::FlowStatus::Active {
            return Ok(());
        }
        document.describe.flow_status = Some(model::FlowStatus::Suspended);
        document.describe.flow_status_message = Some(message.to_string());
        let updated = document.to_record().map_err(|e| e.message)?;
        match self.store.update_flow(&updated).await {
            Ok(()) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}

/// [`RunLauncher`] over the run manager.
#[derive(Debug)]
pub(crate) struct Launcher {
    pub store: Arc<dyn MetadataStore>,
    pub runs: RunManager,
    pub flow_lock: Arc<tokio::sync::Mutex<()>>,
}

#[async_trait]
impl RunLauncher for Launcher {
    async fn launch(
        &self,
        flow_name: &str,
        fire_time: DateTime<Utc>,
        window: Option<Window>,
    ) -> LaunchResult {
        let _guard = self.flow_lock.lock().await;
        if !self.runs.active_runs(flow_name).is_empty() {
            return LaunchResult::SkippedStillRunning;
        }
        let document = match self.store.get_flow(flow_name).await {
            Ok(Some(record)) => match FlowDocument::from_record(&record) {
                Ok(document) => document,
                Err(error) => return LaunchResult::Failed(error.message),
            },
            Ok(None) => return LaunchResult::Failed(format!("flow {flow_name} does not exist")),
            Err(error) => return LaunchResult::Failed(error.to_string()),
        };
        match self
            .runs
            .start(
                &document,
                RunInputs {
                    window,
                    object_key: None,
                },
            )
            .await
        {
            Ok((execution_id, started_at)) => {
                tracing::debug!(flow_name, %fire_time, %execution_id, "scheduled run launched");
                let details = model::ExecutionDetails {
                    most_recent_execution_message: None,
                    most_recent_execution_status: Some(model::ExecutionStatus::InProgress),
                    most_recent_execution_time: Some(started_at.into()),
                };
                set_last_run_locked(self.store.as_ref(), flow_name, details).await;
                LaunchResult::Started(execution_id)
            }
            Err(error) => LaunchResult::Failed(error.message),
        }
    }
}
