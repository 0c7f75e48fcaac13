//! `schemaVersion` of flows that pick up new source fields by themselves.
//!
//! A Salesforce source with `enableDynamicFieldUpdate` and a `Map_all` task (no projection)
//! reads every field the object has when the run starts, so fields added in Salesforce after
//! the flow was created reach the output without editing the flow. AppFlow then increments the
//! flow's `schemaVersion`, on the run that first sees the new fields; with `SCHEMA_VERSION` in
//! the S3 `pathPrefixHierarchy`, that run's files land in the new `schemaVersion_<n>` folder,
//! so every folder holds files of one schema.
//!
//! To know before the destination opens, a run of such a flow first describes the source
//! entity ([`FieldTracking::describe`]) and compares its fields with the ones earlier runs saw
//! (kept in the flow document's `sluiceInternal.sourceFields`). After a successful run the
//! fields it saw are recorded ([`record_fields_locked`]); a field that appeared only between
//! the describe call and the read bumps the version for the next run. The first run of a flow
//! only records what it saw, and removed fields change nothing (Map_all simply stops
//! writing them). Failed runs change nothing: the next run sees the same new fields.

use sluice_api_model as model;
use sluice_connector_api::{ConnectorError, ConnectorRegistry, EntityContext};
use sluice_metastore::MetadataStore;
use sluice_pipeline::RunSpec;

use crate::documents::FlowDocument;
use crate::runs::edit_flow_locked;

/// What a run of a dynamic-field flow needs to decide its schema version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldTracking {
    /// The source entity (`object` of the Salesforce source).
    entity: String,
    /// Source fields earlier runs saw.
    known: Vec<String>,
}

impl FieldTracking {
    /// Tracking for `flow` when its runs read whatever fields the source has: a Salesforce
    /// source with `enableDynamicFieldUpdate` and no projection.
    pub(crate) fn of(flow: &FlowDocument, definition: &model::UpdateFlowRequest) -> Option<Self> {
        let source = &definition.source_flow_config;
        let properties = source.source_connector_properties.salesforce.as_ref()?;
        if properties.enable_dynamic_field_update != Some(true) {
            return None;
        }
        let plan =
            sluice_transforms::TaskPlan::compile(&definition.tasks, source.connector_type).ok()?;
        if plan.projection().is_some() {
            // A projection fixes the fields read; new ones never reach the output.
            return None;
        }
        Some(Self {
            entity: properties.object.clone(),
            known: flow.internal.source_fields.clone(),
        })
    }

    /// The fields the source entity has now, as the connector describes them (retrievable
    /// fields only: those a run reads).
    pub(crate) async fn describe(
        &self,
        registry: &dyn ConnectorRegistry,
        spec: &RunSpec,
    ) -> Result<Vec<String>, ConnectorError> {
        let profile = spec.source_profile.clone();
        let label = profile
            .as_ref()
            .and_then(|profile| profile.connector_label.clone());
        let connector = registry
            .get(spec.source.connector_type, label.as_deref())
            .ok_or_else(|| {
                ConnectorError::unsupported(format!(
                    "connector {} is not available",
                    spec.source.connector_type
                ))
            })?;
        let context = EntityContext {
            profile,
            entities_path: None,
        };
        let fields = connector.describe_entity(&context, &self.entity).await?;
        Ok(fields
            .into_iter()
            .filter(|field| {
                field
                    .source_properties
                    .as_ref()
                    .and_then(|properties| properties.is_retrievable)
                    != Some(false)
            })
            .map(|field| field.identifier)
            .collect())
    }

    /// Whether `fields` holds a field earlier runs did not see (never for the first run).
    pub(crate) fn has_new(&self, fields: &[String]) -> bool {
        !self.known.is_empty() && fields.iter().any(|field| !self.known.contains(field))
    }
}

/// The known fields and schema version after a successful run, or `None` when nothing
/// changes. `run_version` is the version the run wrote (`base_version + 1` when it bumped).
fn merged(
    known: &[String],
    stored_version: i64,
    base_version: i64,
    run_version: i64,
    seen: &[String],
) -> Option<(Vec<String>, i64)> {
    let mut fields = known.to_vec();
    for field in seen {
        if !fields.contains(field) {
            fields.push(field.clone());
        }
    }
    if fields.len() == known.len() {
        return None;
    }
    if known.is_empty() {
        return Some((fields, stored_version));
    }
    let target = if run_version > base_version {
        run_version
    } else {
        // Seen only while reading: the run's own files stay in the old version.
        stored_version + 1
    };
    Some((fields, stored_version.max(target)))
}

/// Records the fields a successful run saw and bumps the flow's `schemaVersion` when they
/// include new ones. The caller holds the flow lock. Failures are logged: the next run sees
/// the same fields again.
pub(crate) async fn record_fields_locked(
    store: &dyn MetadataStore,
    flow_name: &str,
    base_version: i64,
    run_version: i64,
    seen: &[String],
) {
    edit_flow_locked(store, flow_name, "its source fields", |document| {
        let stored_version = document.schema_version();
        let Some((fields, version)) = merged(
            &document.internal.source_fields,
            stored_version,
            base_version,
            run_version,
            seen,
        ) else {
            return false;
        };
        if version != stored_version {
            let added: Vec<&String> = fields
                .iter()
                .filter(|field| !document.internal.source_fields.contains(field))
                .collect();
            tracing::info!(
                flow_name,
                schema_version = version,
                ?added,
                "new source fields: schemaVersion increased"
            );
        }
        document.internal.source_fields = fields;
        document.describe.schema_version = Some(version);
        true
    })
    .await;
}

/// The entity a source reads, for telling whether an update points the flow elsewhere.
pub(crate) fn source_entity(source: &model::SourceFlowConfig) -> Option<String> {
    let properties = serde_json::to_value(&source.source_connector_properties).ok()?;
    properties.as_object()?.values().find_map(|member| {
        ["object", "entityName", "objectPath", "bucketPrefix"]
            .iter()
            .find_map(|key| member.get(*key)?.as_str().map(str::to_owned))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_first_run_records_fields_without_a_bump() {
        let seen = names(&["Id", "Name"]);
        assert_eq!(merged(&[], 1, 1, 1, &seen), Some((seen.clone(), 1)));
        // Nothing new: nothing to write.
        assert_eq!(merged(&seen, 1, 1, 1, &names(&["Name", "Id"])), None);
        assert_eq!(merged(&seen, 1, 1, 1, &[]), None);
    }

    #[test]
    fn new_fields_bump_once_for_the_run_that_wrote_them() {
        let known = names(&["Id", "Name"]);
        let seen = names(&["Id", "Name", "Région__c"]);
        // The run described the new field first and wrote version 2.
        assert_eq!(
            merged(&known, 1, 1, 2, &seen),
            Some((names(&["Id", "Name", "Région__c"]), 2))
        );
        // Seen only while reading (no bump before the run): the next run gets version 2.
        assert_eq!(merged(&known, 1, 1, 1, &seen).map(|m| m.1), Some(2));
        // UpdateFlow bumped meanwhile to 3: the version never goes back.
        assert_eq!(merged(&known, 3, 1, 2, &seen).map(|m| m.1), Some(3));
        // A removed field changes nothing.
        assert_eq!(merged(&known, 1, 1, 1, &names(&["Id"])), None);
    }

    #[test]
    fn entities_are_read_from_any_source_union() {
        let salesforce: model::SourceFlowConfig = serde_json::from_value(serde_json::json!({
            "connectorType": "Salesforce",
            "sourceConnectorProperties": {"Salesforce": {"object": "Account"}}}))
        .unwrap();
        assert_eq!(source_entity(&salesforce).as_deref(), Some("Account"));
        let custom: model::SourceFlowConfig = serde_json::from_value(serde_json::json!({
            "connectorType": "CustomConnector",
            "sourceConnectorProperties": {"CustomConnector": {"entityName": "public.orders"}}}))
        .unwrap();
        assert_eq!(source_entity(&custom).as_deref(), Some("public.orders"));
    }
}
