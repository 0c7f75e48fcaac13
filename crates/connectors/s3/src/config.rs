//! Source and destination properties, parsed out of the AppFlow wire types.

use sluice_api_model as model;
use sluice_connector_api::ConnectorError;
use sluice_formats::{InputFormat, OutputFormat};

/// Files roll at this size when `aggregationConfig` asks for neither a single file nor a
/// target size (AppFlow's `None`).
pub(crate) const DEFAULT_TARGET_FILE_BYTES: u64 = 128 * 1024 * 1024;

const MIB: u64 = 1024 * 1024;

/// Where and what to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceConfig {
    pub bucket: String,
    /// Normalised prefix: no leading, trailing or doubled slashes; empty for the whole bucket.
    pub prefix: String,
    pub format: InputFormat,
}

impl SourceConfig {
    pub(crate) fn from_model(source: &model::SourceFlowConfig) -> Result<Self, ConnectorError> {
        let Some(props) = &source.source_connector_properties.s3 else {
            return Err(ConnectorError::invalid_config(
                "sourceConnectorProperties.S3 is required for an S3 source",
            ));
        };
        let format = match props
            .s3_input_format_config
            .as_ref()
            .and_then(|c| c.s3_input_file_type)
        {
            None | Some(model::S3InputFileType::Csv) => InputFormat::Csv,
            Some(model::S3InputFileType::Json) => InputFormat::JsonLines,
        };
        Ok(Self {
            bucket: props.bucket_name.clone(),
            prefix: normalize_prefix(props.bucket_prefix.as_deref(), "bucketPrefix")?,
            format,
        })
    }
}

/// How output files are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rolling {
    /// One file per partition (`SingleFile`).
    SingleFile,
    /// A new file once the current one reaches about this many bytes.
    AtBytes(u64),
}

/// Where and how to write.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DestinationConfig {
    pub bucket: String,
    pub prefix: String,
    pub format: OutputFormat,
    pub prefix_config: Option<model::PrefixConfig>,
    pub rolling: Rolling,
    pub preserve_types: bool,
}

impl DestinationConfig {
    pub(crate) fn from_model(
        destination: &model::DestinationFlowConfig,
    ) -> Result<Self, ConnectorError> {
        let Some(props) = &destination.destination_connector_properties.s3 else {
            return Err(ConnectorError::invalid_config(
                "destinationConnectorProperties.S3 is required for an S3 destination",
            ));
        };
        let output = props.s3_output_format_config.clone().unwrap_or_default();
        let format = match output.file_type {
            None | Some(model::FileType::Csv) => OutputFormat::Csv,
            Some(model::FileType::Json) => OutputFormat::JsonLines,
            Some(model::FileType::Parquet) => OutputFormat::Parquet,
        };
        let aggregation = output.aggregation_config.unwrap_or_default();
        // A target size means "several files of about this size" whatever the aggregation
        // type says; the API does not tie the two together.
        let rolling = match (aggregation.target_file_size, aggregation.aggregation_type) {
            (Some(mb), _) => {
                let bytes = u64::try_from(mb)
                    .ok()
                    .filter(|mb| *mb > 0)
                    .and_then(|mb| mb.checked_mul(MIB))
                    .ok_or_else(|| {
                        ConnectorError::invalid_config(format!(
                            "aggregationConfig.targetFileSize must be a positive number of MB, got {mb}"
                        ))
                    })?;
                Rolling::AtBytes(bytes)
            }
            (None, Some(model::AggregationType::SingleFile)) => Rolling::SingleFile,
            (None, _) => Rolling::AtBytes(DEFAULT_TARGET_FILE_BYTES),
        };
        Ok(Self {
            bucket: props.bucket_name.clone(),
            prefix: normalize_prefix(props.bucket_prefix.as_deref(), "bucketPrefix")?,
            format,
            prefix_config: output.prefix_config,
            rolling,
            preserve_types: output.preserve_source_data_typing.unwrap_or(false),
        })
    }
}

/// Drops leading, trailing and doubled slashes; rejects `.`/`..` segments and control
/// characters, which no object key should contain.
pub(crate) fn normalize_prefix(
    prefix: Option<&str>,
    field: &str,
) -> Result<String, ConnectorError> {
    let Some(prefix) = prefix else {
        return Ok(String::new());
    };
    let mut segments = Vec::new();
    for segment in prefix.split('/').filter(|s| !s.is_empty()) {
        if segment == "." || segment == ".." {
            return Err(ConnectorError::invalid_config(format!(
                "{field} {prefix:?} must not contain '.' or '..' segments"
            )));
        }
        if segment.chars().any(char::is_control) {
            return Err(ConnectorError::invalid_config(format!(
                "{field} {prefix:?} must not contain control characters"
            )));
        }
        segments.push(segment);
    }
    Ok(segments.join("/"))
}

/// Splits an entity name `bucket[/prefix]` into the bucket and the normalised prefix.
pub(crate) fn split_entity(entity: &str) -> Result<(String, String), ConnectorError> {
    let trimmed = entity.trim_start_matches('/');
    let trimmed = trimmed.strip_prefix("s3://").unwrap_or(trimmed);
    let (bucket, prefix) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    if bucket.is_empty() {
        return Err(ConnectorError::invalid_config(format!(
            "entity {entity:?} must be a bucket name, optionally followed by /prefix"
        )));
    }
    Ok((bucket.to_owned(), normalize_prefix(Some(prefix), "entity")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(json: serde_json::Value) -> Result<SourceConfig, ConnectorError> {
        let config: model::SourceFlowConfig = serde_json::from_value(json).unwrap();
        SourceConfig::from_model(&config)
    }

    fn destination(json: serde_json::Value) -> Result<DestinationConfig, ConnectorError> {
        let config: model::DestinationFlowConfig = serde_json::from_value(json).unwrap();
        DestinationConfig::from_model(&config)
    }

    #[test]
    fn source_defaults_to_csv_and_normalises_the_prefix() {
        let config = source(serde_json::json!({
            "connectorType": "S3",
            "sourceConnectorProperties": {"S3": {"bucketName": "src", "bucketPrefix": "/in//2024/"}}
        }))
        .unwrap();
        assert_eq!(config.bucket, "src");
        assert_eq!(config.prefix, "in/2024");
        assert_eq!(config.format, InputFormat::Csv);

        let json = source(serde_json::json!({
            "connectorType": "S3",
            "sourceConnectorProperties": {"S3": {
                "bucketName": "src", "s3InputFormatConfig": {"s3InputFileType": "JSON"}}}
        }))
        .unwrap();
        assert_eq!(json.format, InputFormat::JsonLines);
        assert_eq!(json.prefix, "");
    }

    #[test]
    fn missing_properties_and_traversal_are_config_errors() {
        let error = source(serde_json::json!({
            "connectorType": "S3",
            "sourceConnectorProperties": {"Salesforce": {"object": "Account"}}
        }))
        .unwrap_err();
        assert!(
            error.message.contains("sourceConnectorProperties.S3"),
            "{error}"
        );
        let error = source(serde_json::json!({
            "connectorType": "S3",
            "sourceConnectorProperties": {"S3": {"bucketName": "b", "bucketPrefix": "a/../etc"}}
        }))
        .unwrap_err();
        assert!(error.message.contains("'..'"), "{error}");
    }

    #[test]
    fn destination_formats_and_rolling() {
        let base = |output: serde_json::Value| {
            serde_json::json!({
                "connectorType": "S3",
                "destinationConnectorProperties": {"S3": {
                    "bucketName": "dst", "bucketPrefix": "out", "s3OutputFormatConfig": output}}
            })
        };
        let config = destination(base(serde_json::json!({}))).unwrap();
        assert_eq!(config.format, OutputFormat::Csv);
        assert_eq!(config.rolling, Rolling::AtBytes(DEFAULT_TARGET_FILE_BYTES));
        assert!(!config.preserve_types);

        let config = destination(base(serde_json::json!({
            "fileType": "PARQUET", "preserveSourceDataTyping": true,
            "aggregationConfig": {"aggregationType": "SingleFile"}
        })))
        .unwrap();
        assert_eq!(config.format, OutputFormat::Parquet);
        assert_eq!(config.rolling, Rolling::SingleFile);
        assert!(config.preserve_types);

        let config = destination(base(serde_json::json!({
            "fileType": "JSON", "aggregationConfig": {"aggregationType": "SingleFile", "targetFileSize": 5}
        })))
        .unwrap();
        assert_eq!(config.format, OutputFormat::JsonLines);
        assert_eq!(config.rolling, Rolling::AtBytes(5 * MIB));

        for bad in [0, -3, i64::MAX] {
            let error = destination(base(serde_json::json!({
                "aggregationConfig": {"targetFileSize": bad}
            })))
            .unwrap_err();
            assert!(error.message.contains("targetFileSize"), "{bad}: {error}");
        }
    }

    #[test]
    fn entities_split_into_bucket_and_prefix() {
        assert_eq!(split_entity("b").unwrap(), ("b".to_owned(), String::new()));
        assert_eq!(
            split_entity("b/in/x/").unwrap(),
            ("b".to_owned(), "in/x".to_owned())
        );
        assert_eq!(
            split_entity("s3://b/in").unwrap(),
            ("b".to_owned(), "in".to_owned())
        );
        assert!(split_entity("/").is_err());
        assert!(split_entity("b/../c").is_err());
    }
}
