//! Salesforce source and destination connector.
//!
//! - **Profiles** ([`config`]): AppFlow's `Salesforce` profile properties and credentials.
//!   Access tokens come from an authorization code (exchanged once, at profile creation), a
//!   refresh token, a JWT bearer assertion (given, or signed by Sluice with the connected app's
//!   key) or client credentials, at the configurable login host ([`SalesforceSettings`]); they
//!   are renewed on `401` by one shared
//!   [`TokenManager`](sluice_connector_http_util::TokenManager) per profile, so concurrent runs
//!   never renew twice, and written back to the profile through the settings'
//!   [`CredentialsStore`](sluice_connector_api::CredentialsStore).
//! - **Source** ([`source`], [`bulk`]): a SOQL query with the projection as the field list and
//!   the incremental window and pushable filters as the `WHERE` clause, read over REST
//!   (`query`/`queryAll`, following `nextRecordsUrl`) or as a Bulk API 2.0 query job (CSV pages
//!   by locator). `dataTransferApi` `REST_SYNC` and `BULKV2` force one; `AUTOMATIC` (the
//!   default) counts the records first (`SELECT COUNT()` with the same `WHERE`) and uses Bulk
//!   API 2.0 from [`SOURCE_BULK_THRESHOLD`] records on, as AppFlow does. Without a projection
//!   (`Map_all`), every field the object has at run time is read, so fields added in Salesforce
//!   appear by themselves.
//! - **Destination** ([`sink`]): INSERT, UPSERT, UPDATE and DELETE through sObject Collections
//!   (200 records per call) below [`bulk::DESTINATION_BULK_THRESHOLD`] records and Bulk API 2.0
//!   ingest jobs at or above it; rejected records are counted as put failures and handed to
//!   the run's error location with Salesforce's error code and message.
//! - **Metadata**: `ListConnectorEntities` and `DescribeConnectorEntity` from the describe API.

pub mod bulk;
mod client;
pub mod config;
pub mod sink;
pub mod source;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use sluice_api_model as model;
use sluice_connector_api::{
    BatchStream, Connector, ConnectorError, DestinationWriter, EntityContext, EntityListing,
    PreparedProfile, Profile, ReadRequest, WriteRequest,
};
use sluice_connector_http_util::HttpClient;

use crate::bulk::{BulkQuery, BulkSettings};
use crate::client::{Session, Sessions};
pub use crate::config::SalesforceSettings;
use crate::config::{TransferApi, transfer_api};
use crate::sink::{SalesforceWriter, SinkSettings};

/// `connectorEntityMap` group of the object list.
pub const OBJECTS_GROUP: &str = "Objects";

/// `AUTOMATIC` reads switch to Bulk API 2.0 at this many records (AppFlow's rule).
pub const SOURCE_BULK_THRESHOLD: u64 = 1_000_000;

/// The Salesforce connector.
#[derive(Debug)]
pub struct SalesforceConnector {
    /// One token manager per profile, shared by concurrent runs.
    sessions: Sessions,
    /// When and how Bulk API 2.0 is used.
    bulk: BulkSettings,
}

impl SalesforceConnector {
    /// A connector using `settings`.
    pub fn new(settings: SalesforceSettings) -> Result<Self, ConnectorError> {
        let http = HttpClient::new(settings.retry.clone())
            .map_err(|error| ConnectorError::internal(error.to_string()))?;
        Ok(Self {
            sessions: Sessions::new(settings, http),
            bulk: BulkSettings::default(),
        })
    }

    /// Replaces the Bulk API 2.0 settings (thresholds, page size, polling, upload size).
    #[must_use]
    pub fn with_bulk_settings(mut self, bulk: BulkSettings) -> Self {
        self.bulk = bulk;
        self
    }

    fn profile<'a>(&self, profile: Option<&'a Profile>) -> Result<&'a Profile, ConnectorError> {
        profile.ok_or_else(|| {
            ConnectorError::invalid_config(
                "Salesforce needs a connector profile (connectorProfileName)",
            )
        })
    }

    async fn session(&self, profile: &Profile) -> Result<Arc<Session>, ConnectorError> {
        self.sessions.session(profile).await
    }
}

fn salesforce_operators() -> Vec<model::Operator> {
    model::SalesforceConnectorOperator::ALL
        .iter()
        .filter_map(|op| model::Operator::parse(op.as_str()))
        .collect()
}

#[async_trait]
impl Connector for SalesforceConnector {
    fn connector_type(&self) -> model::ConnectorType {
        model::ConnectorType::Salesforce
    }

    fn configuration(&self) -> model::ConnectorConfiguration {
        model::ConnectorConfiguration {
            can_use_as_source: Some(true),
            can_use_as_destination: Some(true),
            connector_type: Some(model::ConnectorType::Salesforce),
            connector_name: Some("Salesforce".to_owned()),
            connector_description: Some(
                "Reads Salesforce objects with SOQL over REST or Bulk API 2.0 and writes them \
                 through sObject Collections or Bulk API 2.0"
                    .to_owned(),
            ),
            connector_owner: Some("Sluice".to_owned()),
            connector_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            connector_metadata: Some(model::ConnectorMetadata {
                salesforce: Some(model::SalesforceMetadata {
                    data_transfer_apis: Some(vec![
                        model::SalesforceDataTransferApi::Automatic,
                        model::SalesforceDataTransferApi::Bulkv2,
                        model::SalesforceDataTransferApi::RestSync,
                    ]),
                    o_auth_scopes: Some(vec!["api".to_owned(), "refresh_token".to_owned()]),
                    oauth2_grant_types_supported: Some(vec![
                        model::OAuth2GrantType::AuthorizationCode,
                        model::OAuth2GrantType::JwtBearer,
                        model::OAuth2GrantType::ClientCredentials,
                    ]),
                }),
                ..Default::default()
            }),
            is_private_link_enabled: Some(false),
            is_private_link_endpoint_url_required: Some(false),
            supported_destination_connectors: Some(vec![
                model::ConnectorType::S3,
                model::ConnectorType::Salesforce,
            ]),
            supported_scheduling_frequencies: Some(model::ScheduleFrequencyType::ALL.to_vec()),
            supported_trigger_types: Some(vec![
                model::TriggerType::OnDemand,
                model::TriggerType::Scheduled,
            ]),
            supported_operators: Some(
                model::SalesforceConnectorOperator::ALL
                    .iter()
                    .filter_map(|op| model::Operators::parse(op.as_str()))
                    .collect(),
            ),
            supported_write_operations: Some(model::WriteOperationType::ALL.to_vec()),
            supported_data_transfer_types: Some(vec![model::SupportedDataTransferType::Record]),
            ..Default::default()
        }
    }

    async fn validate_profile(&self, profile: &Profile) -> Result<(), ConnectorError> {
        self.sessions.prepare(profile).await.map(|_| ())
    }

    async fn prepare_profile(&self, profile: &Profile) -> Result<PreparedProfile, ConnectorError> {
        self.sessions.prepare(profile).await
    }

    async fn list_entities(&self, ctx: &EntityContext) -> Result<EntityListing, ConnectorError> {
        let session = self.session(self.profile(ctx.profile.as_ref())?).await?;
        let (value, _) = session
            .json("object list", reqwest::Method::GET, "sobjects", &[], None)
            .await?;
        let entities = value
            .get("sobjects")
            .and_then(serde_json::Value::as_array)
            .map(|objects| {
                objects
                    .iter()
                    .filter(|o| {
                        o.get("queryable").and_then(serde_json::Value::as_bool) != Some(false)
                    })
                    .filter_map(|o| {
                        let name = o.get("name")?.as_str()?.to_owned();
                        let label = o
                            .get("label")
                            .and_then(serde_json::Value::as_str)
                            .unwrap_or(&name)
                            .to_owned();
                        Some(model::ConnectorEntity {
                            name,
                            label: Some(label),
                            has_nested_entities: Some(false),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut listing = EntityListing::new();
        listing.insert(OBJECTS_GROUP.to_owned(), entities);
        Ok(listing)
    }

    async fn describe_entity(
        &self,
        ctx: &EntityContext,
        entity: &str,
    ) -> Result<Vec<model::ConnectorEntityField>, ConnectorError> {
        let session = self.session(self.profile(ctx.profile.as_ref())?).await?;
        let fields = source::describe(&session, entity).await?;
        let operators = salesforce_operators();
        Ok(fields
            .into_iter()
            .map(|f| {
                let timestamp = f.kind == "datetime"
                    && matches!(
                        f.name.as_str(),
                        "LastModifiedDate" | "SystemModstamp" | "CreatedDate"
                    );
                let mut writes = Vec::new();
                if f.createable {
                    writes.push(model::WriteOperationType::Insert);
                }
                if f.updateable {
                    writes.push(model::WriteOperationType::Update);
                }
                if f.createable || f.updateable {
                    writes.push(model::WriteOperationType::Upsert);
                }
                model::ConnectorEntityField {
                    identifier: f.name.clone(),
                    label: Some(f.label.clone()),
                    is_primary_key: Some(f.kind == "id"),
                    supported_field_type_details: Some(model::SupportedFieldTypeDetails {
                        v1: model::FieldTypeDetails {
                            field_type: f.kind.clone(),
                            filter_operators: if f.filterable {
                                operators.clone()
                            } else {
                                Vec::new()
                            },
                            supported_values: (!f.picklist.is_empty()).then(|| f.picklist.clone()),
                            ..Default::default()
                        },
                    }),
                    source_properties: Some(model::SourceFieldProperties {
                        is_queryable: Some(f.filterable),
                        is_retrievable: Some(source::is_flat(&f.kind)),
                        is_timestamp_field_for_incremental_queries: Some(timestamp),
                    }),
                    destination_properties: Some(model::DestinationFieldProperties {
                        is_creatable: Some(f.createable),
                        is_defaulted_on_create: Some(f.defaulted_on_create),
                        is_nullable: Some(f.nillable),
                        is_updatable: Some(f.updateable),
                        is_upsertable: Some(f.createable || f.updateable || f.external_id),
                        supported_write_operations: Some(writes),
                    }),
                    ..Default::default()
                }
            })
            .collect())
    }

    async fn read(&self, request: ReadRequest) -> Result<BatchStream, ConnectorError> {
        let props = request
            .source
            .source_connector_properties
            .salesforce
            .clone()
            .ok_or_else(|| {
                ConnectorError::invalid_config("the source has no Salesforce properties")
            })?;
        let session = self
            .session(self.profile(request.profile.as_ref())?)
            .await?;
        let described = source::describe(&session, &props.object).await?;
        let plan = source::plan_query(
            &props.object,
            &described,
            request.projection.as_deref(),
            &request.filters,
            request.window.as_ref(),
            props.include_deleted_records.unwrap_or(false),
        )?;
        let choice = props.data_transfer_api;
        // AppFlow's AUTOMATIC rule needs the size of the result, so it is counted first.
        let records = match choice {
            Some(model::SalesforceDataTransferApi::Bulkv2)
            | Some(model::SalesforceDataTransferApi::RestSync) => None,
            _ => Some(source::count(&session, &plan).await?),
        };
        let api = transfer_api(choice, records.unwrap_or(0), self.bulk.source_threshold);
        tracing::info!(
            flow = %request.flow_name,
            object = %props.object,
            fields = plan.fields.len(),
            records,
            api = if api == TransferApi::Bulk { "Bulk API 2.0" } else { "REST" },
            "reading Salesforce"
        );
        if api == TransferApi::Rest {
            return Ok(source::stream_query(session, plan, request.stats.clone()));
        }
        let query = BulkQuery::from_plan(&plan)?;
        let job = bulk::start_query(&session, &query).await?;
        Ok(bulk::stream_query(
            session,
            query,
            job,
            self.bulk.clone(),
            request.stats.clone(),
            request.batch_rows,
        ))
    }

    async fn open_writer(
        &self,
        request: WriteRequest,
    ) -> Result<Box<dyn DestinationWriter>, ConnectorError> {
        let props = request
            .destination
            .destination_connector_properties
            .salesforce
            .clone()
            .ok_or_else(|| {
                ConnectorError::invalid_config("the destination has no Salesforce properties")
            })?;
        let operation = props
            .write_operation_type
            .unwrap_or(model::WriteOperationType::Insert);
        let id_field = props
            .id_field_names
            .as_ref()
            .and_then(|names| names.first())
            .cloned();
        let id_field = match (operation, id_field) {
            (model::WriteOperationType::Upsert, None) => {
                return Err(ConnectorError::invalid_config(
                    "UPSERT to Salesforce needs an external id field in idFieldNames",
                ));
            }
            (_, Some(field)) => field,
            (_, None) => "Id".to_owned(),
        };
        let session = self
            .session(self.profile(request.profile.as_ref())?)
            .await?;
        let settings = SinkSettings {
            object: props.object,
            operation,
            id_field,
            fail_on_first_error: props
                .error_handling_config
                .and_then(|c| c.fail_on_first_destination_error)
                .unwrap_or(false),
            api: props.data_transfer_api,
            bulk: self.bulk.clone(),
        };
        Ok(Box::new(SalesforceWriter::new(
            session,
            settings,
            request.rejected.clone(),
        )))
    }
}
