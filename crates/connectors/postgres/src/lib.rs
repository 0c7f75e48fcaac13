//! PostgreSQL (and Aurora PostgreSQL) source and destination connector.
//!
//! In the AppFlow API this is a `CustomConnector` with `connectorLabel` `Postgres`; the
//! profile keys are documented in [`config`].
//!
//! - **Metadata**: `ListConnectorEntities` groups tables and views by schema (an
//!   `entitiesPath` restricts it to one schema); `DescribeConnectorEntity` gives each column's
//!   type, nullability and primary-key membership, and flags date and timestamp columns for
//!   incremental pulls.
//! - **Source** ([`source`]): binary `COPY` decoded straight into Arrow ([`decode`]), filters
//!   and the incremental window pushed down as `WHERE` conditions, optional parallel page-range
//!   scans in one snapshot.
//! - **Destination** ([`sink`]): binary `COPY` straight into the target for `INSERT` (when
//!   the table's columns take the sent types as they are), otherwise into a staging table and
//!   a merge (`UPSERT`, `UPDATE`, `DELETE`), all in the run's one transaction; the target
//!   table is created from the first batch's schema when missing. Rows the database rejects
//!   are handed to the run's error location with their SQLSTATE and message.
//! - **TLS** ([`tls`]): libpq's `sslmode`s with rustls, a profile-supplied CA
//!   (`sslrootcert`) and SCRAM channel binding.

pub mod client;
pub mod config;
pub mod decode;
pub mod encode;
pub mod sink;
pub mod source;
pub mod tls;

#[cfg(test)]
mod tests;

use async_trait::async_trait;
use sluice_api_model as model;
use sluice_connector_api::{
    BatchStream, Connector, ConnectorError, DestinationWriter, EntityContext, EntityListing,
    Profile, ReadRequest, WriteRequest,
};

use crate::config::{ConnectionConfig, DestinationConfig, SourceConfig, TableName};
use crate::decode::{Kind, read_column};

/// The connector label of Postgres profiles and flows.
pub const LABEL: &str = "Postgres";

/// The Postgres connector.
#[derive(Debug, Clone, Default)]
pub struct PostgresConnector;

impl PostgresConnector {
    /// The connector.
    pub fn new() -> Self {
        Self
    }
}

fn require_profile<'a>(
    profile: Option<&'a Profile>,
    what: &str,
) -> Result<&'a Profile, ConnectorError> {
    profile.ok_or_else(|| {
        ConnectorError::invalid_config(format!(
            "{what} needs a connector profile (connectorProfileName) for Postgres"
        ))
    })
}

/// Operators the source can push down (the pipeline applies the others itself).
fn operators() -> Vec<model::Operators> {
    [
        "PROJECTION",
        "EQUAL_TO",
        "NOT_EQUAL_TO",
        "LESS_THAN",
        "LESS_THAN_OR_EQUAL_TO",
        "GREATER_THAN",
        "GREATER_THAN_OR_EQUAL_TO",
        "BETWEEN",
        "CONTAINS",
        "NO_OP",
    ]
    .iter()
    .filter_map(|op| model::Operators::parse(op))
    .collect()
}

/// AppFlow-style field type of a column kind.
fn field_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Bool => "boolean",
        Kind::Int2 | Kind::Int4 | Kind::Int8 => "integer",
        Kind::Float4 | Kind::Float8 => "double",
        Kind::Numeric { .. } => "decimal",
        Kind::Text | Kind::Jsonb | Kind::Uuid => "string",
        Kind::Bytea => "binary",
        Kind::Date => "date",
        Kind::Timestamp | Kind::Timestamptz => "datetime",
        Kind::Time => "time",
    }
}

#[async_trait]
impl Connector for PostgresConnector {
    fn connector_type(&self) -> model::ConnectorType {
        model::ConnectorType::CustomConnector
    }

    fn connector_label(&self) -> Option<&'static str> {
        Some(LABEL)
    }

    fn configuration(&self) -> model::ConnectorConfiguration {
        model::ConnectorConfiguration {
            can_use_as_source: Some(true),
            can_use_as_destination: Some(true),
            connector_type: Some(model::ConnectorType::CustomConnector),
            connector_label: Some(LABEL.to_owned()),
            connector_name: Some("PostgreSQL".to_owned()),
            connector_description: Some(
                "Reads tables from, and writes tables to, PostgreSQL and Aurora PostgreSQL \
                 databases with binary COPY"
                    .to_owned(),
            ),
            connector_owner: Some("Sluice".to_owned()),
            connector_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            is_private_link_enabled: Some(false),
            is_private_link_endpoint_url_required: Some(false),
            supported_destination_connectors: Some(vec![
                model::ConnectorType::S3,
                model::ConnectorType::CustomConnector,
            ]),
            supported_scheduling_frequencies: Some(model::ScheduleFrequencyType::ALL.to_vec()),
            supported_trigger_types: Some(vec![
                model::TriggerType::OnDemand,
                model::TriggerType::Scheduled,
            ]),
            supported_operators: Some(operators()),
            supported_write_operations: Some(model::WriteOperationType::ALL.to_vec()),
            supported_data_transfer_types: Some(vec![model::SupportedDataTransferType::Record]),
            ..Default::default()
        }
    }

    async fn validate_profile(&self, profile: &Profile) -> Result<(), ConnectorError> {
        let connection = ConnectionConfig::from_profile(profile)?;
        let client = client::connect(&connection).await?;
        client
            .batch_execute("SELECT 1")
            .await
            .map_err(|e| client::pg_error(&e, "cannot query the database"))
    }

    async fn list_entities(&self, ctx: &EntityContext) -> Result<EntityListing, ConnectorError> {
        let profile = require_profile(ctx.profile.as_ref(), "ListConnectorEntities")?;
        let connection = ConnectionConfig::from_profile(profile)?;
        let client = client::connect(&connection).await?;
        let schema = ctx
            .entities_path
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty());
        let tables = client::list_tables(&client, schema).await?;
        let mut listing = EntityListing::new();
        for (schema, table) in tables {
            let name = format!("{schema}.{table}");
            listing
                .entry(schema)
                .or_default()
                .push(model::ConnectorEntity {
                    label: Some(table),
                    name,
                    has_nested_entities: Some(false),
                });
        }
        Ok(listing)
    }

    async fn describe_entity(
        &self,
        ctx: &EntityContext,
        entity: &str,
    ) -> Result<Vec<model::ConnectorEntityField>, ConnectorError> {
        let profile = require_profile(ctx.profile.as_ref(), "DescribeConnectorEntity")?;
        let connection = ConnectionConfig::from_profile(profile)?;
        let table = TableName::parse(entity, "connectorEntityName")?;
        let client = client::connect(&connection).await?;
        let columns = client::table_columns(&client, &table).await?;
        Ok(columns
            .iter()
            .map(|column| {
                let kind = read_column(column).kind;
                let incremental = matches!(kind, Kind::Date | Kind::Timestamp | Kind::Timestamptz);
                model::ConnectorEntityField {
                    identifier: column.name.clone(),
                    label: Some(column.name.clone()),
                    description: Some(column.type_name.clone()),
                    is_primary_key: Some(column.primary_key),
                    supported_field_type_details: Some(model::SupportedFieldTypeDetails {
                        v1: model::FieldTypeDetails {
                            field_type: field_type(kind).to_owned(),
                            filter_operators: operators()
                                .iter()
                                .filter_map(|op| model::Operator::parse(op.as_str()))
                                .collect(),
                            ..Default::default()
                        },
                    }),
                    source_properties: Some(model::SourceFieldProperties {
                        is_queryable: Some(true),
                        is_retrievable: Some(true),
                        is_timestamp_field_for_incremental_queries: Some(incremental),
                    }),
                    destination_properties: Some(model::DestinationFieldProperties {
                        is_creatable: Some(true),
                        is_nullable: Some(!column.not_null),
                        is_updatable: Some(!column.primary_key),
                        is_upsertable: Some(true),
                        is_defaulted_on_create: None,
                        supported_write_operations: Some(model::WriteOperationType::ALL.to_vec()),
                    }),
                    ..Default::default()
                }
            })
            .collect())
    }

    async fn read(&self, request: ReadRequest) -> Result<BatchStream, ConnectorError> {
        let profile = require_profile(request.profile.as_ref(), "a Postgres source")?;
        let connection = ConnectionConfig::from_profile(profile)?;
        let config = SourceConfig::from_flow(&request.source)?;
        source::read(&connection, &config, request).await
    }

    async fn open_writer(
        &self,
        request: WriteRequest,
    ) -> Result<Box<dyn DestinationWriter>, ConnectorError> {
        let profile = require_profile(request.profile.as_ref(), "a Postgres destination")?;
        let connection = ConnectionConfig::from_profile(profile)?;
        let config = DestinationConfig::from_flow(&request.destination)?;
        Ok(Box::new(
            sink::PostgresWriter::open(&connection, config, request.rejected).await?,
        ))
    }
}
