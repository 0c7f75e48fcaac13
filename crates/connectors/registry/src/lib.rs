//! The explicit registry of connectors compiled into Sluice.
//!
//! Connectors are listed one per line in [`Registry::new`]; there is no plug-in discovery.
//! AppFlow's `ConnectorType` is a closed enum, and an explicit list is easy to grep and review.

use std::sync::Arc;

use sluice_api_model as model;
use sluice_connector_api::{Connector, ConnectorRegistry};
use sluice_storage::Storage;

/// Every compiled-in connector.
#[derive(Debug, Clone)]
pub struct Registry {
    connectors: Vec<Arc<dyn Connector>>,
}

impl Registry {
    /// The registry of all connectors; object-store connectors use `storage` for buckets.
    pub fn new(storage: Arc<Storage>) -> Self {
        let connectors: Vec<Arc<dyn Connector>> = vec![
            Arc::new(sluice_connector_s3::S3Connector::new(storage)),
            Arc::new(sluice_connector_postgres::PostgresConnector::new()),
        ];
        Self { connectors }
    }
}

impl ConnectorRegistry for Registry {
    fn get(
        &self,
        connector_type: model::ConnectorType,
        label: Option<&str>,
    ) -> Option<Arc<dyn Connector>> {
        self.connectors
            .iter()
            .find(|c| {
                c.connector_type() == connector_type
                    // Custom connectors are told apart by label; the others have none.
                    && (connector_type != model::ConnectorType::CustomConnector
                        || c.connector_label() == label)
            })
            .cloned()
    }

    fn all(&self) -> Vec<Arc<dyn Connector>> {
        self.connectors.clone()
    }
}

#[cfg(test)]
mod tests {
    use sluice_storage::StorageConfig;

    use super::*;

    fn registry() -> Registry {
        Registry::new(Arc::new(Storage::new(StorageConfig::local("/nonexistent"))))
    }

    #[test]
    fn finds_s3_and_postgres_and_nothing_else() {
        let registry = registry();
        let s3 = registry
            .get(model::ConnectorType::S3, None)
            .expect("S3 is registered");
        assert_eq!(s3.connector_type(), model::ConnectorType::S3);
        // A label is irrelevant for AWS-vended connectors.
        assert!(
            registry
                .get(model::ConnectorType::S3, Some("anything"))
                .is_some()
        );
        assert!(
            registry
                .get(model::ConnectorType::Salesforce, None)
                .is_none()
        );
        assert!(
            registry
                .get(model::ConnectorType::CustomConnector, Some("S3"))
                .is_none()
        );
        let postgres = registry
            .get(model::ConnectorType::CustomConnector, Some("Postgres"))
            .expect("Postgres is registered");
        assert_eq!(postgres.connector_label(), Some("Postgres"));
        assert!(
            registry
                .get(model::ConnectorType::CustomConnector, None)
                .is_none()
        );
    }

    #[test]
    fn all_lists_each_connector_once_with_distinct_types() {
        let all = registry().all();
        let mut types: Vec<_> = all.iter().map(|c| c.connector_type()).collect();
        let count = types.len();
        types.sort();
        types.dedup();
        assert_eq!(types.len(), count);
        assert!(types.contains(&model::ConnectorType::S3));
    }
}
