//! The explicit registry of connectors compiled into Sluice.
//!
//! Connectors are listed one per line in [`Registry::new`]; there is no plug-in discovery.
//! AppFlow's `ConnectorType` is a closed enum, and an explicit list is easy to grep and review.

use std::sync::Arc;

use sluice_api_model as model;
use sluice_connector_api::{
    Connector, ConnectorError, ConnectorRegistry, CredentialsStore, ErrorLocation,
    RejectedRecordSink,
};
pub use sluice_connector_salesforce::SalesforceSettings;
use sluice_storage::Storage;

/// Settings of the connectors that need more than bucket storage.
#[derive(Debug, Clone, Default)]
pub struct ConnectorSettings {
    /// Salesforce login hosts, connected app and API version.
    pub salesforce: SalesforceSettings,
    /// Where connectors write back credentials they renewed (rotated OAuth tokens), so the
    /// next run and the next start use them; the server provides it over its metadata store.
    pub credentials_store: Option<Arc<dyn CredentialsStore>>,
}

impl ConnectorSettings {
    /// Settings from the environment (`SLUICE_SALESFORCE_*`, see
    /// [`SalesforceSettings::from_env`]), without a credentials store.
    pub fn from_env() -> Self {
        Self {
            salesforce: SalesforceSettings::from_env(),
            credentials_store: None,
        }
    }
}

/// Every compiled-in connector.
#[derive(Debug, Clone)]
pub struct Registry {
    connectors: Vec<Arc<dyn Connector>>,
    /// Writes error locations (`errorHandlingConfig` buckets) for every destination.
    error_locations: sluice_connector_s3::S3Connector,
}

impl Registry {
    /// The registry of all connectors; object-store connectors use `storage` for buckets and
    /// the others take their settings from the environment ([`ConnectorSettings::from_env`]).
    pub fn new(storage: Arc<Storage>) -> Self {
        Self::with_settings(storage, ConnectorSettings::from_env())
    }

    /// The registry of all connectors, configured by `settings`.
    pub fn with_settings(storage: Arc<Storage>, settings: ConnectorSettings) -> Self {
        let mut connectors: Vec<Arc<dyn Connector>> = vec![
            Arc::new(sluice_connector_s3::S3Connector::new(Arc::clone(&storage))),
            Arc::new(sluice_connector_postgres::PostgresConnector::new()),
        ];
        let mut salesforce = settings.salesforce;
        if let Some(store) = settings.credentials_store {
            salesforce.credentials_store = Some(store);
        }
        match sluice_connector_salesforce::SalesforceConnector::new(salesforce) {
            Ok(connector) => connectors.push(Arc::new(connector)),
            // Only the HTTP client's TLS setup can fail; the other connectors still work.
            Err(error) => tracing::error!(%error, "the Salesforce connector is unavailable"),
        }
        Self {
            connectors,
            error_locations: sluice_connector_s3::S3Connector::new(storage),
        }
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

    fn error_location(
        &self,
        location: &ErrorLocation,
    ) -> Result<Arc<dyn RejectedRecordSink>, ConnectorError> {
        self.error_locations.error_location(location)
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
    fn finds_s3_postgres_and_salesforce_and_nothing_else() {
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
        let salesforce = registry
            .get(model::ConnectorType::Salesforce, None)
            .expect("Salesforce is registered");
        let configuration = salesforce.configuration();
        assert_eq!(configuration.can_use_as_source, Some(true));
        assert_eq!(configuration.can_use_as_destination, Some(true));
        assert!(registry.get(model::ConnectorType::Zendesk, None).is_none());
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
        assert!(types.contains(&model::ConnectorType::Salesforce));
    }

    #[test]
    fn salesforce_settings_come_from_the_environment_variables() {
        let vars = [
            ("SLUICE_SALESFORCE_LOGIN_URL", "http://127.0.0.1:9/"),
            ("SLUICE_SALESFORCE_CLIENT_ID", "app"),
            ("SLUICE_SALESFORCE_CLIENT_SECRET", "s3cret"),
            ("SLUICE_SALESFORCE_JWT_KEY_FILE", "/keys/app.pem"),
            ("SLUICE_SALESFORCE_API_VERSION", " "),
        ];
        let settings = SalesforceSettings::from_vars(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        });
        assert_eq!(
            settings.token_url(false),
            "http://127.0.0.1:9/services/oauth2/token"
        );
        assert_eq!(
            settings.token_url(true),
            "https://test.salesforce.com/services/oauth2/token"
        );
        assert_eq!(settings.client_id.as_deref(), Some("app"));
        assert_eq!(
            settings.client_secret.as_ref().map(|s| s.expose().as_str()),
            Some("s3cret")
        );
        assert_eq!(
            settings.jwt_key_file.as_deref(),
            Some(std::path::Path::new("/keys/app.pem"))
        );
        // Blank values keep the default.
        assert_eq!(settings.api_version, "58.0");
        assert!(!format!("{settings:?}").contains("s3cret"));
        let registry = Registry::with_settings(
            Arc::new(Storage::new(StorageConfig::local("/nonexistent"))),
            ConnectorSettings {
                salesforce: settings,
                credentials_store: None,
            },
        );
        assert!(
            registry
                .get(model::ConnectorType::Salesforce, None)
                .is_some()
        );
    }
}
