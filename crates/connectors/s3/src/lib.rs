//! Amazon S3 (and S3-compatible) source and destination connector.
//!
//! Buckets come from a [`Storage`]: folders under a local root by default, or an S3-compatible
//! endpoint. The connector needs no profile (as in AppFlow, access is the server's own).
//!
//! - **Source** ([`source`]): every object under `bucketName/bucketPrefix`, in key order,
//!   decoded as CSV (default) or JSON Lines per `s3InputFormatConfig`. An incremental
//!   window in the read request keeps only the rows inside it (module `window`).
//! - **Destination** ([`sink`]): CSV, JSON Lines or Parquet files under the key layout of
//!   [`layout`], partitioned and rolled per `aggregationConfig`, published only on commit.
//! - **Metadata**: `ListConnectorEntities` lists buckets (local mode only), folders and files;
//!   `DescribeConnectorEntity` infers fields from the first file under a prefix.
//! - **Error locations** ([`errors`]): rejected records of any destination, as JSON Lines under
//!   the `errorHandlingConfig` bucket and prefix.

mod config;
pub mod errors;
mod layout;
mod sink;
mod source;
mod window;

use std::sync::Arc;

use async_trait::async_trait;
use object_store::path::Path;
use sluice_api_model as model;
use sluice_connector_api::{
    BatchStream, Connector, ConnectorError, ConnectorErrorKind, DestinationWriter, EntityContext,
    EntityListing, ErrorLocation, ReadRequest, RejectedRecordSink, WriteRequest,
};
use sluice_formats::{InputFormat, ReaderOptions, WriterOptions};
use sluice_storage::{Storage, StorageError};

use crate::config::{DestinationConfig, SourceConfig, split_entity};
use crate::layout::{KeyLayout, LayoutInput};
use crate::sink::{MEMORY_BUDGET, PART_SIZE, S3Writer, SinkSettings};

/// `connectorEntityMap` group of the bucket list (no `entitiesPath`).
pub const BUCKETS_GROUP: &str = "Buckets";

/// At most this many bytes are read from a file to describe its fields.
const DESCRIBE_READ_LIMIT: usize = 8 * 1024 * 1024;

/// The S3 connector.
#[derive(Debug, Clone)]
pub struct S3Connector {
    storage: Arc<Storage>,
}

impl S3Connector {
    /// A connector reading and writing the buckets of `storage`.
    pub fn new(storage: Arc<Storage>) -> Self {
        Self { storage }
    }

    /// The sink writing one run's rejected records to `location` (`errorHandlingConfig`).
    pub fn error_location(
        &self,
        location: &ErrorLocation,
    ) -> Result<Arc<dyn RejectedRecordSink>, ConnectorError> {
        Ok(Arc::new(errors::ErrorRecordWriter::new(
            self.store(&location.bucket)?,
            location,
        )))
    }

    fn store(&self, bucket: &str) -> Result<Arc<dyn object_store::ObjectStore>, ConnectorError> {
        self.storage.bucket(bucket).map_err(storage_error)
    }
}

/// Every operator of AppFlow's `S3ConnectorOperator` enum, as `Operator` values.
fn s3_operators() -> Vec<model::Operator> {
    model::S3ConnectorOperator::ALL
        .iter()
        .filter_map(|op| model::Operator::parse(op.as_str()))
        .collect()
}

#[async_trait]
impl Connector for S3Connector {
    fn connector_type(&self) -> model::ConnectorType {
        model::ConnectorType::S3
    }

    fn configuration(&self) -> model::ConnectorConfiguration {
        model::ConnectorConfiguration {
            can_use_as_source: Some(true),
            can_use_as_destination: Some(true),
            connector_type: Some(model::ConnectorType::S3),
            connector_name: Some("Amazon S3".to_owned()),
            connector_description: Some(format!(
                "Reads CSV and JSON Lines files from, and writes CSV, JSON Lines and Parquet \
                 files to, buckets {}",
                if self.storage.is_local() {
                    "kept in local folders"
                } else {
                    "on an S3-compatible endpoint"
                }
            )),
            connector_owner: Some("Sluice".to_owned()),
            connector_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            connector_metadata: Some(model::ConnectorMetadata {
                s3: Some(model::S3Metadata::default()),
                ..Default::default()
            }),
            is_private_link_enabled: Some(false),
            is_private_link_endpoint_url_required: Some(false),
            supported_destination_connectors: Some(vec![model::ConnectorType::S3]),
            supported_scheduling_frequencies: Some(model::ScheduleFrequencyType::ALL.to_vec()),
            supported_trigger_types: Some(vec![
                model::TriggerType::OnDemand,
                model::TriggerType::Scheduled,
                model::TriggerType::Event,
            ]),
            supported_operators: Some(
                model::S3ConnectorOperator::ALL
                    .iter()
                    .filter_map(|op| model::Operators::parse(op.as_str()))
                    .collect(),
            ),
            supported_data_transfer_types: Some(vec![model::SupportedDataTransferType::Record]),
            ..Default::default()
        }
    }

    async fn list_entities(&self, ctx: &EntityContext) -> Result<EntityListing, ConnectorError> {
        let mut listing = EntityListing::new();
        let path = ctx
            .entities_path
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty());
        let Some(path) = path else {
            if !self.storage.is_local() {
                return Err(ConnectorError::invalid_config(
                    "listing buckets is not possible with an S3 endpoint; pass entitiesPath \
                     (a bucket name, optionally followed by /prefix)",
                ));
            }
            let buckets = self.storage.list_buckets().map_err(storage_error)?;
            let entities = buckets
                .into_iter()
                .map(|name| model::ConnectorEntity {
                    label: Some(name.clone()),
                    name,
                    has_nested_entities: Some(true),
                })
                .collect();
            listing.insert(BUCKETS_GROUP.to_owned(), entities);
            return Ok(listing);
        };
        let (bucket, prefix) = split_entity(path)?;
        let store = self.store(&bucket)?;
        let location = object_path(&bucket, &prefix)?;
        let listed = store
            .list_with_delimiter((!prefix.is_empty()).then_some(&location))
            .await
            .map_err(|error| object_error(&s3_uri(&bucket, &prefix), "list objects", error))?;
        let mut entities = Vec::new();
        for folder in &listed.common_prefixes {
            entities.push(entity(&bucket, folder, true));
        }
        for object in listed.objects.iter().filter(|o| o.size > 0) {
            entities.push(entity(&bucket, &object.location, false));
        }
        entities.sort_by(|a, b| a.name.cmp(&b.name));
        let group = if prefix.is_empty() {
            bucket
        } else {
            format!("{bucket}/{prefix}")
        };
        listing.insert(group, entities);
        Ok(listing)
    }

    async fn describe_entity(
        &self,
        _ctx: &EntityContext,
        entity: &str,
    ) -> Result<Vec<model::ConnectorEntityField>, ConnectorError> {
        let (bucket, prefix) = split_entity(entity)?;
        let store = self.store(&bucket)?;
        let objects = source::list_objects(store.as_ref(), &bucket, &prefix).await?;
        let Some(first) = objects.first() else {
            return Err(ConnectorError::not_found(format!(
                "no files under {} to describe",
                s3_uri(&bucket, &prefix)
            )));
        };
        let format = guess_format(first.location.as_ref());
        let schema = source::sniff_schema(
            store.as_ref(),
            &bucket,
            &first.location,
            format,
            DESCRIBE_READ_LIMIT,
        )
        .await?;
        let Some(schema) = schema else {
            return Ok(Vec::new());
        };
        let operators = s3_operators();
        Ok(schema
            .fields()
            .iter()
            .map(|field| model::ConnectorEntityField {
                identifier: field.name().clone(),
                label: Some(field.name().clone()),
                supported_field_type_details: Some(model::SupportedFieldTypeDetails {
                    v1: model::FieldTypeDetails {
                        field_type: field_type(field.data_type()).to_owned(),
                        filter_operators: operators.clone(),
                        ..Default::default()
                    },
                }),
                source_properties: Some(model::SourceFieldProperties {
                    is_queryable: Some(true),
                    is_retrievable: Some(true),
                    is_timestamp_field_for_incremental_queries: Some(false),
                }),
                destination_properties: Some(model::DestinationFieldProperties {
                    is_creatable: Some(true),
                    is_nullable: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect())
    }

    async fn read(&self, request: ReadRequest) -> Result<BatchStream, ConnectorError> {
        let config = SourceConfig::from_model(&request.source)?;
        let store = self.store(&config.bucket)?;
        let objects = source::list_objects(store.as_ref(), &config.bucket, &config.prefix).await?;
        tracing::info!(
            flow = %request.flow_name,
            source = %s3_uri(&config.bucket, &config.prefix),
            objects = objects.len(),
            format = %config.format,
            "reading S3 source"
        );
        // The window's field is read even when the projection leaves it out, and dropped
        // again once the window is applied.
        let mut projection = request.projection.clone();
        let drop_field = match (&request.window, &mut projection) {
            (Some(window), Some(fields)) if !fields.contains(&window.field) => {
                fields.push(window.field.clone());
                true
            }
            _ => false,
        };
        let options = ReaderOptions {
            batch_rows: request.batch_rows.max(1),
            projection,
            ..ReaderOptions::default()
        };
        let uri = s3_uri(&config.bucket, &config.prefix);
        let stream = source::read_objects(
            store,
            config.bucket,
            objects,
            config.format,
            options,
            request.stats,
        );
        Ok(match request.window {
            Some(window) => {
                tracing::info!(
                    field = %window.field,
                    start = %window.start,
                    end = %window.end,
                    "applying the incremental window"
                );
                window::apply(stream, window, drop_field, uri)
            }
            None => stream,
        })
    }

    async fn open_writer(
        &self,
        request: WriteRequest,
    ) -> Result<Box<dyn DestinationWriter>, ConnectorError> {
        let config = DestinationConfig::from_model(&request.destination)?;
        // In the embedded local-folder mode a destination bucket is just a folder: create it, as a
        // user of the quick start would expect. S3 endpoints keep AppFlow's rule that the bucket
        // must exist.
        if self.storage.is_local() {
            self.storage
                .create_bucket(&config.bucket)
                .map_err(|error| ConnectorError::invalid_config(error.to_string()))?;
        }
        let store = self.store(&config.bucket)?;
        // Fail before any work when the bucket is missing or unreachable (an S3 endpoint only
        // says so on first use).
        if !self.storage.is_local() {
            let probe = object_path(&config.bucket, &config.prefix)?;
            store
                .list_with_delimiter((!config.prefix.is_empty()).then_some(&probe))
                .await
                .map_err(|error| {
                    object_error(
                        &s3_uri(&config.bucket, &config.prefix),
                        "open destination",
                        error,
                    )
                })?;
        }
        let layout = KeyLayout::new(&LayoutInput {
            bucket_prefix: &config.prefix,
            flow_name: &request.flow_name,
            execution_id: &request.execution_id,
            schema_version: request.schema_version,
            run_started_at: request.run_started_at,
            prefix_config: config.prefix_config.as_ref(),
            extension: config.format.extension(),
        });
        let settings = SinkSettings {
            bucket: config.bucket.clone(),
            layout,
            format: config.format,
            writer_options: WriterOptions {
                preserve_source_data_typing: config.preserve_types,
                ..WriterOptions::default()
            },
            rolling: config.rolling,
            partition_keys: request.partition_keys,
            part_size: PART_SIZE,
            memory_budget: MEMORY_BUDGET,
            local_bucket_dir: self
                .storage
                .is_local()
                .then(|| self.storage.config().local_root.join(&config.bucket)),
        };
        Ok(Box::new(S3Writer::new(store, settings)))
    }
}

fn entity(bucket: &str, location: &Path, nested: bool) -> model::ConnectorEntity {
    let name = format!("{bucket}/{location}");
    let label = location.filename().unwrap_or(location.as_ref()).to_owned();
    model::ConnectorEntity {
        name,
        label: Some(label),
        has_nested_entities: Some(nested),
    }
}

/// JSON Lines for `.json`, `.jsonl` and `.ndjson` files, CSV otherwise.
fn guess_format(key: &str) -> InputFormat {
    let lower = key.to_ascii_lowercase();
    if [".json", ".jsonl", ".ndjson"]
        .iter()
        .any(|ext| lower.ends_with(ext))
    {
        InputFormat::JsonLines
    } else {
        InputFormat::Csv
    }
}

/// The AppFlow-style field type of an Arrow type.
fn field_type(data_type: &arrow_schema::DataType) -> &'static str {
    use arrow_schema::DataType;
    match data_type {
        DataType::Boolean => "boolean",
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => "integer",
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => "integer",
        DataType::Float16 | DataType::Float32 | DataType::Float64 => "double",
        DataType::Date32 | DataType::Date64 => "date",
        DataType::Timestamp(..) => "datetime",
        _ => "string",
    }
}

/// `s3://bucket/key`, for messages.
pub(crate) fn s3_uri(bucket: &str, key: &str) -> String {
    if key.is_empty() {
        format!("s3://{bucket}")
    } else {
        format!("s3://{bucket}/{key}")
    }
}

/// An object-store path for `key`, or a configuration error naming it.
pub(crate) fn object_path(bucket: &str, key: &str) -> Result<Path, ConnectorError> {
    Path::parse(key).map_err(|error| {
        ConnectorError::invalid_config(format!(
            "invalid object key {}: {error}",
            s3_uri(bucket, key)
        ))
    })
}

/// Classifies an object-store error and names the object it concerns.
pub(crate) fn object_error(uri: &str, action: &str, error: object_store::Error) -> ConnectorError {
    let text = error.to_string();
    let kind = match &error {
        object_store::Error::NotFound { .. } => ConnectorErrorKind::NotFound,
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => ConnectorErrorKind::Authentication,
        object_store::Error::InvalidPath { .. } => ConnectorErrorKind::InvalidConfig,
        _ if text.contains("NoSuchBucket") => ConnectorErrorKind::NotFound,
        _ => ConnectorErrorKind::Unavailable,
    };
    if text.contains("NoSuchBucket") {
        let bucket = uri
            .trim_start_matches("s3://")
            .split('/')
            .next()
            .unwrap_or_default();
        return ConnectorError::new(kind, format!("bucket {bucket:?} does not exist"));
    }
    ConnectorError::new(kind, format!("{uri}: cannot {action}: {text}"))
}

/// Classifies a storage error.
pub(crate) fn storage_error(error: StorageError) -> ConnectorError {
    let message = error.to_string();
    match error {
        StorageError::InvalidBucketName { .. } | StorageError::InvalidConfig(_) => {
            ConnectorError::invalid_config(message)
        }
        StorageError::BucketNotFound { .. } => ConnectorError::not_found(message),
        StorageError::Unsupported(_) => ConnectorError::unsupported(message),
        StorageError::ObjectStore { source, .. } => {
            let classified = object_error("", "", source);
            ConnectorError::new(classified.kind, message)
        }
        StorageError::Io { .. } | StorageError::Closed { .. } => ConnectorError::internal(message),
        _ => ConnectorError::internal(message),
    }
}

#[cfg(test)]
mod tests;
