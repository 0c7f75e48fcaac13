//! `CreateFlow`: validates and stores a flow definition.
//!
//! On-demand flows start `Active`; scheduled and event flows start `Draft` and run nothing
//! until `StartFlow` activates them. A `kmsArn` is stored and echoed, but credentials are always
//! encrypted with the data directory's own key.

use sluice_api_model::{CreateFlowRequest, CreateFlowResponse, DescribeFlowResponse};
use sluice_domain::FlowDefinitionRef;

use crate::api::common::{check_tags, now};
use crate::api::flows::{canonical_trigger, check_definition};
use crate::documents::{FlowDocument, FlowInternal};
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) async fn handle(
    state: &AppState,
    request: CreateFlowRequest,
) -> Result<CreateFlowResponse, ApiError> {
    if let Some(tags) = &request.tags {
        check_tags(tags)?;
    }
    let checked = check_definition(state, FlowDefinitionRef::from(&request)).await?;
    let status = checked.validated.initial_status;
    let arn = state.flow_arn(&request.flow_name);
    let created = now();
    let document = FlowDocument {
        describe: DescribeFlowResponse {
            created_at: Some(created),
            created_by: Some(state.caller.arn.clone()),
            description: request.description,
            destination_flow_config_list: Some(request.destination_flow_config_list),
            flow_arn: Some(arn.clone()),
            flow_name: Some(request.flow_name.clone()),
            flow_status: Some(status),
            flow_status_message: None,
            kms_arn: request.kms_arn,
            last_run_execution_details: None,
            last_run_metadata_catalog_details: None,
            last_updated_at: Some(created),
            last_updated_by: Some(state.caller.arn.clone()),
            metadata_catalog_config: request.metadata_catalog_config,
            schema_version: Some(1),
            source_flow_config: Some(request.source_flow_config),
            tags: request.tags,
            tasks: Some(request.tasks),
            trigger_config: Some(canonical_trigger(
                &request.trigger_config,
                checked.validated.schedule_expression.clone(),
            )),
        },
        internal: FlowInternal {
            source_connector_label: checked.source_connector_label,
            destination_connector_label: checked.destination_connector_label,
            source_fields: Vec::new(),
        },
    };
    let record = document.to_record()?;
    let _guard = state.flow_lock.lock().await;
    state
        .store
        .insert_flow(&record)
        .await
        .map_err(|error| match error {
            sluice_metastore::StoreError::AlreadyExists { .. } => {
                ApiError::conflict(format!("Flow {} already exists", request.flow_name))
            }
            other => other.into(),
        })?;
    tracing::info!(flow_name = %request.flow_name, flow_status = %status, "flow created");
    Ok(CreateFlowResponse {
        flow_arn: Some(arn),
        flow_status: Some(status),
    })
}
