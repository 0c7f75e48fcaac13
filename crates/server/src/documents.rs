//! The JSON documents the server keeps in the metadata store, and their conversions.
//!
//! - flows: `DescribeFlowResponse` JSON, so `DescribeFlow` is a read and a deserialize, plus a
//!   `sluiceInternal` member for derived facts AppFlow does not return from `DescribeFlow`
//!   (connector labels, which `ListFlows` reports);
//! - connector profiles: `ConnectorProfile` JSON without credentials (those are sealed
//!   separately);
//! - runs: `ExecutionRecord` JSON;
//! - registered connectors: [`ConnectorRegistration`].
//!
//! A stored document that no longer decodes is reported as an internal error naming the
//! record, never silently skipped.

use serde::{Deserialize, Serialize};
use sluice_api_model as model;
use sluice_api_model::Timestamp;
use sluice_connector_api::Profile;
use sluice_metastore::secrets::SecretBox;
use sluice_metastore::{ConnectorRecord, FlowRecord, ProfileRecord, RunRecord};
use sluice_types::Sensitive;

use crate::error::ApiError;

const FLOW_INTERNAL: &str = "sluiceInternal";

/// Facts derived at create/update time or by runs that `DescribeFlowResponse` has no member
/// for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FlowInternal {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_connector_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_connector_label: Option<String>,
    /// Source fields runs have seen, for flows that pick up new fields by themselves
    /// (`enableDynamicFieldUpdate`): a run that sees others bumps `schemaVersion`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_fields: Vec<String>,
}

/// A stored flow.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FlowDocument {
    pub describe: model::DescribeFlowResponse,
    pub internal: FlowInternal,
}

impl FlowDocument {
    /// Decodes a record's document.
    pub(crate) fn from_record(record: &FlowRecord) -> Result<Self, ApiError> {
        let mut value = record.document.clone();
        let internal = value
            .as_object_mut()
            .and_then(|map| map.remove(FLOW_INTERNAL))
            .map(serde_json::from_value::<FlowInternal>)
            .transpose()
            .map_err(|error| corrupt("flow", &record.name, error))?
            .unwrap_or_default();
        let describe =
            serde_json::from_value(value).map_err(|error| corrupt("flow", &record.name, error))?;
        Ok(Self { describe, internal })
    }

    /// Encodes the document for storage.
    pub(crate) fn to_value(&self) -> Result<serde_json::Value, ApiError> {
        let mut value = serde_json::to_value(&self.describe).map_err(ApiError::internal)?;
        if self.internal != FlowInternal::default()
            && let Some(map) = value.as_object_mut()
        {
            let internal = serde_json::to_value(&self.internal).map_err(ApiError::internal)?;
            map.insert(FLOW_INTERNAL.to_string(), internal);
        }
        Ok(value)
    }

    /// The record to store for this document.
    pub(crate) fn to_record(&self) -> Result<FlowRecord, ApiError> {
        let d = &self.describe;
        let now = chrono::Utc::now();
        Ok(FlowRecord {
            name: d.flow_name.clone().unwrap_or_default(),
            arn: d.flow_arn.clone().unwrap_or_default(),
            status: d
                .flow_status
                .map(|s| s.as_str())
                .unwrap_or("Draft")
                .to_string(),
            trigger_type: self.trigger_type().as_str().to_string(),
            document: self.to_value()?,
            created_at: d.created_at.map(|t| t.0).unwrap_or(now),
            updated_at: d.last_updated_at.map(|t| t.0).unwrap_or(now),
        })
    }

    pub(crate) fn name(&self) -> &str {
        self.describe.flow_name.as_deref().unwrap_or_default()
    }

    pub(crate) fn arn(&self) -> &str {
        self.describe.flow_arn.as_deref().unwrap_or_default()
    }

    pub(crate) fn status(&self) -> model::FlowStatus {
        self.describe
            .flow_status
            .unwrap_or(model::FlowStatus::Draft)
    }

    pub(crate) fn trigger_type(&self) -> model::TriggerType {
        self.describe
            .trigger_config
            .as_ref()
            .map(|t| t.trigger_type)
            .unwrap_or(model::TriggerType::OnDemand)
    }

    pub(crate) fn schema_version(&self) -> i64 {
        self.describe.schema_version.unwrap_or(1)
    }

    /// The definition as an `UpdateFlowRequest`, the shape the domain rules compare.
    pub(crate) fn as_update_request(&self) -> Result<model::UpdateFlowRequest, ApiError> {
        let d = &self.describe;
        let missing = |member: &str| {
            ApiError::internal(format!("stored flow {} has no {member}", self.name()))
        };
        Ok(model::UpdateFlowRequest {
            client_token: None,
            description: d.description.clone(),
            destination_flow_config_list: d
                .destination_flow_config_list
                .clone()
                .unwrap_or_default(),
            flow_name: self.name().to_string(),
            metadata_catalog_config: d.metadata_catalog_config.clone(),
            source_flow_config: d
                .source_flow_config
                .clone()
                .ok_or_else(|| missing("sourceFlowConfig"))?,
            tasks: d.tasks.clone().unwrap_or_default(),
            trigger_config: d
                .trigger_config
                .clone()
                .ok_or_else(|| missing("triggerConfig"))?,
        })
    }

    /// The `ListFlows` element.
    pub(crate) fn definition(&self) -> model::FlowDefinition {
        let d = &self.describe;
        model::FlowDefinition {
            created_at: d.created_at,
            created_by: d.created_by.clone(),
            description: d.description.clone(),
            destination_connector_label: self.internal.destination_connector_label.clone(),
            destination_connector_type: d
                .destination_flow_config_list
                .as_ref()
                .and_then(|list| list.first())
                .map(|dest| dest.connector_type),
            flow_arn: d.flow_arn.clone(),
            flow_name: d.flow_name.clone(),
            flow_status: d.flow_status,
            last_run_execution_details: d.last_run_execution_details.clone(),
            last_updated_at: d.last_updated_at,
            last_updated_by: d.last_updated_by.clone(),
            source_connector_label: self.internal.source_connector_label.clone(),
            source_connector_type: d.source_flow_config.as_ref().map(|s| s.connector_type),
            tags: d.tags.clone(),
            trigger_type: d.trigger_config.as_ref().map(|t| t.trigger_type),
        }
    }

    /// Profile names the flow references (source and destinations).
    pub(crate) fn profile_names(&self) -> Vec<&str> {
        let d = &self.describe;
        let source = d
            .source_flow_config
            .iter()
            .filter_map(|s| s.connector_profile_name.as_deref());
        let destinations = d
            .destination_flow_config_list
            .iter()
            .flatten()
            .filter_map(|dest| dest.connector_profile_name.as_deref());
        source.chain(destinations).collect()
    }
}

/// Decodes a profile record's `ConnectorProfile` document.
pub(crate) fn profile_document(
    record: &ProfileRecord,
) -> Result<model::ConnectorProfile, ApiError> {
    serde_json::from_value(record.document.clone())
        .map_err(|error| corrupt("connector profile", &record.name, error))
}

/// Decodes a run record's `ExecutionRecord` document.
pub(crate) fn run_document(record: &RunRecord) -> Result<model::ExecutionRecord, ApiError> {
    serde_json::from_value(record.document.clone())
        .map_err(|error| corrupt("execution record", &record.execution_id, error))
}

/// The connector's view of a stored profile, with its credentials decrypted. The sealed
/// credentials are bound to the profile ARN (associated data), so a ciphertext copied onto
/// another profile does not open.
pub(crate) fn open_profile(
    record: &ProfileRecord,
    secrets: &SecretBox,
) -> Result<Profile, ApiError> {
    let document = profile_document(record)?;
    let credentials = if record.sealed_credentials.is_empty() {
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        let plaintext = secrets
            .open(&record.sealed_credentials, record.arn.as_bytes())
            .map_err(|error| {
                ApiError::internal(format!(
                    "credentials of connector profile {} cannot be decrypted: {error}",
                    record.name
                ))
            })?;
        serde_json::from_slice(&plaintext).map_err(|error| {
            ApiError::internal(format!(
                "credentials of connector profile {} cannot be decoded: {}",
                record.name,
                crate::error::json_error_kind(&error)
            ))
        })?
    };
    let connector_type = document.connector_type.ok_or_else(|| {
        ApiError::internal(format!(
            "stored connector profile {} has no connectorType",
            record.name
        ))
    })?;
    let properties = document
        .connector_profile_properties
        .as_ref()
        .map(serde_json::to_value)
        .transpose()
        .map_err(ApiError::internal)?
        .unwrap_or(serde_json::Value::Null);
    Ok(Profile {
        name: record.name.clone(),
        connector_type,
        connector_label: record.connector_label.clone(),
        properties,
        credentials: Sensitive::new(credentials),
    })
}

/// Seals a credentials union a connector prepared for storage; an empty object (a connector
/// without credentials) stores nothing, as an absent union does.
pub(crate) fn seal_json(
    credentials: &Sensitive<serde_json::Value>,
    profile_arn: &str,
    secrets: &SecretBox,
) -> Result<Vec<u8>, ApiError> {
    let empty = match credentials.expose() {
        serde_json::Value::Null => true,
        serde_json::Value::Object(map) => map.is_empty(),
        _ => false,
    };
    if empty {
        return Ok(Vec::new());
    }
    let plaintext =
        Sensitive::new(serde_json::to_vec(credentials.expose()).map_err(ApiError::internal)?);
    Ok(secrets.seal(plaintext.expose(), profile_arn.as_bytes()))
}

/// The credentials-free `ConnectorProfile` JSON for a stored profile.
pub(crate) fn profile_value(
    profile: &model::ConnectorProfile,
) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(profile).map_err(ApiError::internal)
}

/// A registered (Lambda-provisioned) custom connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConnectorRegistration {
    pub connector_label: String,
    pub connector_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_provisioning_type: Option<model::ConnectorProvisioningType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_provisioning_config: Option<model::ConnectorProvisioningConfig>,
    pub registered_at: Timestamp,
    pub registered_by: String,
    pub last_updated_at: Timestamp,
}

impl ConnectorRegistration {
    pub(crate) fn from_record(record: &ConnectorRecord) -> Result<Self, ApiError> {
        serde_json::from_value(record.document.clone())
            .map_err(|error| corrupt("connector", &record.label, error))
    }

    pub(crate) fn to_record(&self) -> Result<ConnectorRecord, ApiError> {
        Ok(ConnectorRecord {
            label: self.connector_label.clone(),
            arn: self.connector_arn.clone(),
            document: serde_json::to_value(self).map_err(ApiError::internal)?,
            created_at: self.registered_at.0,
        })
    }

    /// The `ConnectorDetail` of `ListConnectors` / `DescribeConnectors.connectors`.
    pub(crate) fn detail(&self) -> model::ConnectorDetail {
        model::ConnectorDetail {
            application_type: Some("Custom".to_string()),
            connector_description: self.description.clone(),
            connector_label: Some(self.connector_label.clone()),
            connector_modes: None,
            connector_name: Some(self.connector_label.clone()),
            connector_owner: None,
            connector_provisioning_type: self.connector_provisioning_type,
            connector_type: Some(model::ConnectorType::CustomConnector),
            connector_version: None,
            registered_at: Some(self.registered_at),
            registered_by: Some(self.registered_by.clone()),
            supported_data_transfer_types: None,
        }
    }

    /// The `ConnectorConfiguration` of `DescribeConnector`. Sluice cannot invoke the Lambda
    /// that implements the connector, so it is advertised as usable neither as a source nor
    /// as a destination.
    pub(crate) fn configuration(&self) -> model::ConnectorConfiguration {
        model::ConnectorConfiguration {
            can_use_as_destination: Some(false),
            can_use_as_source: Some(false),
            connector_arn: Some(self.connector_arn.clone()),
            connector_description: self.description.clone(),
            connector_label: Some(self.connector_label.clone()),
            connector_name: Some(self.connector_label.clone()),
            connector_provisioning_config: self.connector_provisioning_config.clone(),
            connector_provisioning_type: self.connector_provisioning_type,
            connector_type: Some(model::ConnectorType::CustomConnector),
            registered_at: Some(self.registered_at),
            registered_by: Some(self.registered_by.clone()),
            ..Default::default()
        }
    }
}

fn corrupt(entity: &str, name: &str, error: serde_json::Error) -> ApiError {
    ApiError::internal(format!("stored {entity} {name} cannot be decoded: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow_record(document: serde_json::Value) -> FlowRecord {
        FlowRecord {
            name: "f".into(),
            arn: "arn:aws:appflow:us-east-1:000000000000:flow/f".into(),
            status: "Active".into(),
            trigger_type: "OnDemand".into(),
            document,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn flow_documents_round_trip_with_internal_facts() {
        let document = serde_json::json!({
            "flowName": "f",
            "flowArn": "arn:aws:appflow:us-east-1:000000000000:flow/f",
            "flowStatus": "Active",
            "createdAt": 1700000000.123,
            "triggerConfig": {"triggerType": "OnDemand"},
            "sourceFlowConfig": {"connectorType": "CustomConnector", "connectorProfileName": "p",
                "sourceConnectorProperties": {"CustomConnector": {"entityName": "e"}}},
            "destinationFlowConfigList": [{"connectorType": "S3",
                "destinationConnectorProperties": {"S3": {"bucketName": "b"}}}],
            "tasks": [],
            "schemaVersion": 3,
            "sluiceInternal": {"sourceConnectorLabel": "Postgres"}
        });
        let parsed = FlowDocument::from_record(&flow_record(document.clone())).unwrap();
        assert_eq!(
            parsed.internal.source_connector_label.as_deref(),
            Some("Postgres")
        );
        assert_eq!(parsed.schema_version(), 3);
        assert_eq!(parsed.profile_names(), vec!["p"]);
        assert_eq!(parsed.to_value().unwrap(), document);
        let definition = parsed.definition();
        assert_eq!(
            definition.source_connector_label.as_deref(),
            Some("Postgres")
        );
        assert_eq!(
            definition.destination_connector_type,
            Some(model::ConnectorType::S3)
        );
        // The internal member never reaches a DescribeFlow response.
        let describe = serde_json::to_value(&parsed.describe).unwrap();
        assert!(describe.get("sluiceInternal").is_none());
    }

    #[test]
    fn corrupt_documents_are_internal_errors() {
        let error = FlowDocument::from_record(&flow_record(serde_json::json!({"flowStatus": 7})))
            .unwrap_err();
        assert_eq!(error.code, crate::error::ErrorCode::InternalServer);
    }
}
