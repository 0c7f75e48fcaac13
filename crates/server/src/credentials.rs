//! Writes credentials that connectors renewed during runs back to their connector profiles.
//!
//! OAuth connectors renew access tokens while they run, and some providers rotate the refresh
//! token with each renewal. [`ProfileCredentials`] seals the renewed credentials into the
//! profile's record exactly as `CreateConnectorProfile` does, so a restart starts from the
//! newest tokens instead of renewing again, and a rotated refresh token is never lost.
//!
//! The write is a compare-and-swap under the server's profile lock: it happens only while the
//! stored credentials are still those the connector started from, so credentials a user set
//! meanwhile with `UpdateConnectorProfile` always win. The profile handlers take the same lock
//! around their own writes.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use sluice_connector_api::{ConnectorError, CredentialsStore};
use sluice_metastore::secrets::SecretBox;
use sluice_metastore::{MetadataStore, StoreError};
use sluice_types::Sensitive;

use crate::documents::{open_profile, seal_json};

/// The server's [`CredentialsStore`]: the metadata store, sealed with the data directory's key.
#[derive(Debug)]
pub(crate) struct ProfileCredentials {
    pub store: Arc<dyn MetadataStore>,
    pub secrets: Arc<SecretBox>,
    /// Serialises every write of a profile record (handlers and write-backs).
    pub profile_lock: Arc<tokio::sync::Mutex<()>>,
}

#[async_trait]
impl CredentialsStore for ProfileCredentials {
    async fn replace_credentials(
        &self,
        profile: &str,
        previous: &Sensitive<Value>,
        credentials: &Sensitive<Value>,
    ) -> Result<bool, ConnectorError> {
        let failed = |message: String| {
            ConnectorError::internal(format!(
                "the renewed credentials of connector profile {profile} cannot be stored: \
                 {message}"
            ))
        };
        let _guard = self.profile_lock.lock().await;
        let Some(mut record) = self
            .store
            .get_profile(profile)
            .await
            .map_err(|error| failed(error.to_string()))?
        else {
            return Ok(false);
        };
        let current =
            open_profile(&record, &self.secrets).map_err(|error| failed(error.message))?;
        if current.credentials.expose() != previous.expose() {
            return Ok(false);
        }
        record.sealed_credentials = seal_json(credentials, &record.arn, &self.secrets)
            .map_err(|error| failed(error.message))?;
        // The profile's document (and its lastUpdatedAt) is the user's; only the sealed
        // credentials change.
        match self.store.update_profile(&record).await {
            Ok(()) => Ok(true),
            Err(StoreError::NotFound { .. }) => Ok(false),
            Err(error) => Err(failed(error.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sluice_metastore::{ProfileRecord, SqliteStore};

    use super::*;

    const ARN: &str = "arn:aws:appflow:us-east-1:123456789012:connectorprofile/sf";

    async fn setup(dir: &std::path::Path) -> ProfileCredentials {
        let store: Arc<dyn MetadataStore> =
            Arc::new(SqliteStore::open(&dir.join("metadata.sqlite")).unwrap());
        let secrets = Arc::new(SecretBox::load_or_create(&dir.join("master.key")).unwrap());
        let credentials = Sensitive::new(json!({"Salesforce": {"accessToken": "one"}}));
        let now = chrono::Utc::now();
        store
            .insert_profile(&ProfileRecord {
                name: "sf".into(),
                arn: ARN.into(),
                connector_type: "Salesforce".into(),
                connector_label: None,
                document: json!({"connectorType": "Salesforce", "connectorProfileName": "sf"}),
                sealed_credentials: seal_json(&credentials, ARN, &secrets).unwrap(),
                created_at: now,
                updated_at: now,
            })
            .await
            .unwrap();
        ProfileCredentials {
            store,
            secrets,
            profile_lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    async fn stored(writer: &ProfileCredentials) -> Value {
        let record = writer.store.get_profile("sf").await.unwrap().unwrap();
        open_profile(&record, &writer.secrets)
            .unwrap()
            .credentials
            .into_inner()
    }

    #[tokio::test]
    async fn writes_only_over_the_credentials_it_started_from() {
        let dir = tempfile::tempdir().unwrap();
        let writer = setup(dir.path()).await;
        let one = Sensitive::new(json!({"Salesforce": {"accessToken": "one"}}));
        let two =
            Sensitive::new(json!({"Salesforce": {"accessToken": "two", "refreshToken": "ü"}}));
        let before = writer.store.get_profile("sf").await.unwrap().unwrap();
        assert!(writer.replace_credentials("sf", &one, &two).await.unwrap());
        assert_eq!(stored(&writer).await, *two.expose());
        // The document and its times are the user's; only the credentials changed.
        let after = writer.store.get_profile("sf").await.unwrap().unwrap();
        assert_eq!(after.document, before.document);
        assert_eq!(after.updated_at, before.updated_at);
        assert_ne!(after.sealed_credentials, before.sealed_credentials);

        // Tokens renewed from "one" lose against the "two" stored meanwhile.
        let stale = Sensitive::new(json!({"Salesforce": {"accessToken": "three"}}));
        assert!(
            !writer
                .replace_credentials("sf", &one, &stale)
                .await
                .unwrap()
        );
        assert_eq!(stored(&writer).await, *two.expose());
        // A profile that is gone is not recreated.
        assert!(
            !writer
                .replace_credentials("ghost", &one, &stale)
                .await
                .unwrap()
        );
        assert!(writer.store.get_profile("ghost").await.unwrap().is_none());
    }
}
