//! `StartFlow`: runs an on-demand flow now, or activates a scheduled or event flow.
//!
//! Activating an already active scheduled or event flow changes nothing and succeeds, so a
//! retried call is harmless. Activating a scheduled flow hands it to the scheduler: a rate
//! without `scheduleStartTime` counts its periods from the activation, and the incremental
//! watermark of an earlier activation carries over. A schedule whose `scheduleEndTime` has
//! passed cannot be activated. Activating an event flow records where its source's events
//! start: only events from then on start runs.

use sluice_api_model::{
    ExecutionDetails, ExecutionStatus, FlowStatus, StartFlowRequest, StartFlowResponse, TriggerType,
};

use sluice_metastore::ScheduleUpdate;
use sluice_scheduler::{SchedulePlan, ScheduledFlow};

use crate::api::common::{load_flow, save_flow};
use crate::documents::FlowDocument;
use crate::error::ApiError;
use crate::runs::RunInputs;
use crate::schedules;
use crate::state::AppState;

pub(crate) async fn handle(
    state: &AppState,
    request: StartFlowRequest,
) -> Result<StartFlowResponse, ApiError> {
    let name = &request.flow_name;
    let _guard = state.flow_lock.lock().await;
    let (_, mut document) = load_flow(state, name).await?;
    let status = document.status();
    let arn = document.arn().to_string();
    match document.trigger_type() {
        TriggerType::OnDemand => {
            if status != FlowStatus::Active {
                return Err(ApiError::conflict(format!(
                    "Flow {name} is {status} and cannot be started; only Active flows run"
                )));
            }
            let (execution_id, started_at) =
                state.runs.start(&document, RunInputs::default()).await?;
            document.describe.last_run_execution_details = Some(ExecutionDetails {
                most_recent_execution_message: None,
                most_recent_execution_status: Some(ExecutionStatus::InProgress),
                most_recent_execution_time: Some(started_at.into()),
            });
            save_flow(state, &document).await?;
            Ok(StartFlowResponse {
                execution_id: Some(execution_id),
                flow_arn: Some(arn),
                flow_status: Some(FlowStatus::Active),
            })
        }
        TriggerType::Scheduled | TriggerType::Event => match status {
            FlowStatus::Active => Ok(StartFlowResponse {
                execution_id: None,
                flow_arn: Some(arn),
                flow_status: Some(status),
            }),
            FlowStatus::Draft | FlowStatus::Suspended | FlowStatus::Errored => {
                let plan = match document.trigger_type() {
                    TriggerType::Scheduled => Some(activatable_plan(state, &document)?),
                    _ => None,
                };
                document.describe.flow_status = Some(FlowStatus::Active);
                document.describe.flow_status_message = None;
                save_flow(state, &document).await?;
                if let Some(plan) = plan {
                    activate(state, name, plan).await?;
                }
                if document.trigger_type() == TriggerType::Event
                    && let Err(error) = state.events.prime(&document).await
                {
                    // The first poll records the mark instead; objects created until then
                    // do not start runs.
                    tracing::warn!(flow_name = %name, %error, "cannot record the event mark at activation");
                }
                tracing::info!(flow_name = %name, "flow activated");
                Ok(StartFlowResponse {
                    execution_id: None,
                    flow_arn: Some(arn),
                    flow_status: Some(FlowStatus::Active),
                })
            }
            FlowStatus::Deprecated | FlowStatus::Deleted => Err(ApiError::conflict(format!(
                "Flow {name} is {status} and cannot be activated"
            ))),
        },
    }
}

/// The plan of a scheduled flow about to be activated.
fn activatable_plan(state: &AppState, document: &FlowDocument) -> Result<SchedulePlan, ApiError> {
    let plan = schedules::plan_of(document)?;
    let now = state.clock.now();
    if let Some(end) = plan.end
        && end <= now
    {
        return Err(ApiError::validation(format!(
            "Flow {} cannot be activated: its \
             triggerConfig.triggerProperties.Scheduled.scheduleEndTime {} has passed",
            document.name(),
            end.to_rfc3339()
        )));
    }
    Ok(plan)
}

/// Records the activation and hands the flow to the scheduler.
async fn activate(state: &AppState, name: &str, plan: SchedulePlan) -> Result<(), ApiError> {
    let activated_at = state.clock.now();
    let update = ScheduleUpdate {
        activated_at: Some(activated_at),
        ..ScheduleUpdate::default()
    };
    state
        .store
        .update_schedule(name, &update, activated_at)
        .await?;
    let (_, flow_state) = schedules::load_state(state.store.as_ref(), name).await?;
    if let Err(error) = state
        .scheduler
        .activate(ScheduledFlow {
            name: name.to_string(),
            plan,
            activated_at,
            state: flow_state,
        })
        .await
    {
        // The flow is scheduled regardless; the state is written again with its next change.
        tracing::error!(%error, "activation state not persisted");
    }
    Ok(())
}
