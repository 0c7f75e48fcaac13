//! Salesforce source and destination connector.
//!
//! - **Profiles** ([`config`]): AppFlow's `Salesforce` profile properties and credentials.
//!   Access tokens come from an authorization code (with PKCE), a refresh token, a JWT bearer
//!   assertion or client credentials, exchanged at the configurable login host
//!   ([`SalesforceSettings`]); they are renewed on `401` by one shared
//!   [`TokenManager`](sluice_connector_http_util::TokenManager) per profile, so concurrent runs
//!   never renew twice, and reported to the settings' token store.
//! - **Source** ([`source`]): SOQL over REST (`query`/`queryAll`) with the projection as the
//!   field list, the incremental window and pushable filters as the `WHERE` clause, and the
//!   result followed through `nextRecordsUrl`. Without a projection (`Map_all`), every field the
//!   object has at run time is read, so fields added in Salesforce appear by themselves.
//! - **Destination** ([`sink`]): INSERT, UPSERT, UPDATE and DELETE through sObject Collections,
//!   200 records per call, with per-record results counted as put failures.
//! - **Metadata**: `ListConnectorEntities` and `DescribeConnectorEntity` from the describe API.
//!
//! Bulk API 2.0 is not implemented: `dataTransferApi: BULKV2` is refused with a clear error and
//! `AUTOMATIC` uses REST at every size.

mod client;
pub mod config;
pub mod sink;
pub mod source;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sluice_api_model as model;
use sluice_connector_api::{
    BatchStream, Connector, ConnectorError, DestinationWriter, EntityContext, EntityListing,
    Profile, ReadRequest, WriteRequest,
};
use sluice_connector_http_util::{HttpClient, OAuth2Client, TokenManager};

use crate::client::{Session, oauth_error};
pub use crate::config::SalesforceSettings;
use crate::config::{ProfileConfig, TransferApi, transfer_api};
use crate::sink::{SalesforceWriter, SinkSettings};

/// `connectorEntityMap` group of the object list.
pub const OBJECTS_GROUP: &str = "Objects";

/// `AUTOMATIC` reads switch to Bulk API 2.0 at this many records (AppFlow's rule).
pub const SOURCE_BULK_THRESHOLD: u64 = 1_000_000;

/// The Salesforce connector.
#[derive(Debug)]
pub struct SalesforceConnector {
    settings: SalesforceSettings,
    http: HttpClient,
    /// One token manager per profile and credential set, shared by concurrent runs.
    managers: Mutex<HashMap<(String, u64), Arc<TokenManager>>>,
}

fn credential_fingerprint(profile: &Profile) -> u64 {
    let mut hasher = DefaultHasher::new();
    profile.credentials.expose().to_string().hash(&mut hasher);
    profile.properties.to_string().hash(&mut hasher);
    hasher.finish()
}

impl SalesforceConnector {
    /// A connector using `settings`.
    pub fn new(settings: SalesforceSettings) -> Result<Self, ConnectorError> {
        let http = HttpClient::new(settings.retry.clone())
            .map_err(|error| ConnectorError::internal(error.to_string()))?;
        Ok(Self {
            settings,
            http,
            managers: Mutex::new(HashMap::new()),
        })
    }

    fn profile<'a>(&self, profile: Option<&'a Profile>) -> Result<&'a Profile, ConnectorError> {
        profile.ok_or_else(|| {
            ConnectorError::invalid_config(
                "Salesforce needs a connector profile (connectorProfileName)",
            )
        })
    }

    async fn session(&self, profile: &Profile) -> Result<Arc<Session>, ConnectorError> {
        let config = ProfileConfig::from_profile(profile)?;
        let key = (profile.name.clone(), credential_fingerprint(profile));
        let existing = self
            .managers
            .lock()
            .map_err(|_| ConnectorError::internal("Salesforce token cache is poisoned"))?
            .get(&key)
            .cloned();
        let manager = match existing {
            Some(manager) => manager,
            None => {
                let oauth = OAuth2Client::new(
                    self.http.clone(),
                    self.settings.token_url(config.sandbox),
                    self.settings.client_id.clone(),
                    self.settings.client_secret.clone(),
                );
                let mut tokens = config.tokens.clone();
                if let Some(grant) = &config.initial_grant {
                    let fresh = oauth
                        .exchange(grant, chrono::Utc::now())
                        .await
                        .map_err(oauth_error)?;
                    tokens = sluice_connector_http_util::TokenSet {
                        refresh_token: fresh.refresh_token.clone().or(tokens.refresh_token),
                        ..fresh
                    };
                    if let Some(store) = &self.settings.token_store
                        && let Err(error) = store.save(&tokens).await
                    {
                        tracing::warn!(profile = %profile.name, %error, "could not persist Salesforce tokens");
                    }
                }
                let mut manager = TokenManager::new(oauth, tokens, config.renewal.clone());
                if let Some(store) = &self.settings.token_store {
                    manager = manager.with_store(store.clone());
                }
                let manager = Arc::new(manager);
                let mut cache = self
                    .managers
                    .lock()
                    .map_err(|_| ConnectorError::internal("Salesforce token cache is poisoned"))?;
                // Another run may have raced us here; keep the first manager.
                cache.entry(key).or_insert(manager).clone()
            }
        };
        let instance_url = manager
            .tokens()
            .await
            .instance_url
            .or(config.instance_url)
            .ok_or_else(|| {
                ConnectorError::invalid_config(format!(
                    "connector profile {}: instanceUrl is required",
                    profile.name
                ))
            })?;
        Ok(Arc::new(Session::new(
            self.http.clone(),
            manager,
            instance_url.trim_end_matches('/').to_owned(),
            self.settings.api_version.clone(),
        )))
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
                "Reads Salesforce objects with SOQL over REST and writes them through sObject \
                 Collections"
                    .to_owned(),
            ),
            connector_owner: Some("Sluice".to_owned()),
            connector_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            connector_metadata: Some(model::ConnectorMetadata {
                salesforce: Some(model::SalesforceMetadata {
                    data_transfer_apis: Some(vec![
                        model::SalesforceDataTransferApi::Automatic,
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
        let session = self.session(profile).await?;
        session
            .json(
                "credential check",
                reqwest::Method::GET,
                "sobjects",
                &[],
                None,
            )
            .await
            .map(|_| ())
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
        if transfer_api(props.data_transfer_api, 0, SOURCE_BULK_THRESHOLD) == TransferApi::Bulk {
            return Err(ConnectorError::unsupported(
                "dataTransferApi BULKV2 is not supported yet for Salesforce sources; use \
                 AUTOMATIC or REST_SYNC",
            ));
        }
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
        tracing::info!(flow = %request.flow_name, object = %props.object, fields = plan.fields.len(), "reading Salesforce");
        Ok(source::stream_query(
            session,
            props.object,
            plan,
            request.stats.clone(),
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
        if props.data_transfer_api == Some(model::SalesforceDataTransferApi::Bulkv2) {
            return Err(ConnectorError::unsupported(
                "dataTransferApi BULKV2 is not supported yet for Salesforce destinations; use \
                 AUTOMATIC or REST_SYNC",
            ));
        }
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
        };
        Ok(Box::new(SalesforceWriter::new(session, settings)))
    }
}
