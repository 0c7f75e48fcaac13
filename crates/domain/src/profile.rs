//! Connector profile rules: the properties and credentials unions must match the connector,
//! and only custom connectors carry a `connectorLabel`.
//!
//! Messages name union keys and fields only; no credential value is ever read or echoed.

use sluice_api_model::{
    AuthenticationType, ConnectorProfileConfig, ConnectorType, CreateConnectorProfileRequest,
    CustomConnectorProfileCredentials,
};

use crate::connectors::{
    check_union, has_profiles, profile_credential_keys, profile_property_keys,
};
use crate::error::DomainError;

const PROPERTIES: &str = "connectorProfileConfig.connectorProfileProperties";
const CREDENTIALS: &str = "connectorProfileConfig.connectorProfileCredentials";

/// Applies the `CreateConnectorProfile` rules.
///
/// # Errors
///
/// The first rule broken, as a [`DomainError`] naming the field.
pub fn validate_connector_profile(
    request: &CreateConnectorProfileRequest,
) -> Result<(), DomainError> {
    let connector = request.connector_type;
    let label = request.connector_label.as_deref().map(str::trim);
    match (connector, label) {
        (ConnectorType::CustomConnector, Some(label)) if !label.is_empty() => {}
        (ConnectorType::CustomConnector, _) => {
            return Err(DomainError::invalid(
                "connectorLabel",
                "is required when connectorType is CustomConnector",
            ));
        }
        (_, Some(_)) => {
            return Err(DomainError::invalid(
                "connectorLabel",
                format!("is only allowed when connectorType is CustomConnector, not {connector}"),
            ));
        }
        (_, None) => {}
    }
    validate_profile_config(connector, &request.connector_profile_config)
}

/// Checks a `connectorProfileConfig` against the profile's connector type (also what
/// `UpdateConnectorProfile` needs, with the type of the stored profile).
///
/// # Errors
///
/// A [`DomainError`] naming the offending union or member.
pub fn validate_profile_config(
    connector: ConnectorType,
    config: &ConnectorProfileConfig,
) -> Result<(), DomainError> {
    if !has_profiles(connector) {
        return Err(DomainError::invalid(
            "connectorType",
            format!("{connector} does not use connector profiles"),
        ));
    }
    check_union(
        PROPERTIES,
        &profile_property_keys(&config.connector_profile_properties),
        connector,
        "connectorType",
    )?;
    // Credentials may be left out, e.g. to keep the stored ones on update.
    let Some(credentials) = &config.connector_profile_credentials else {
        return Ok(());
    };
    check_union(
        CREDENTIALS,
        &profile_credential_keys(credentials),
        connector,
        "connectorType",
    )?;
    if let Some(custom) = &credentials.custom_connector {
        check_custom_credentials(custom)?;
    }
    Ok(())
}

/// `authenticationType` names which of `basic`, `oauth2`, `apiKey`, `custom` carries the
/// credentials; that member must be present.
fn check_custom_credentials(
    credentials: &CustomConnectorProfileCredentials,
) -> Result<(), DomainError> {
    let (member, present) = match credentials.authentication_type {
        AuthenticationType::Basic => ("basic", credentials.basic.is_some()),
        AuthenticationType::Oauth2 => ("oauth2", credentials.oauth2.is_some()),
        AuthenticationType::Apikey => ("apiKey", credentials.api_key.is_some()),
        AuthenticationType::Custom => ("custom", credentials.custom.is_some()),
    };
    if present {
        Ok(())
    } else {
        Err(DomainError::invalid(
            format!("{CREDENTIALS}.CustomConnector.{member}"),
            format!(
                "is required when authenticationType is {}",
                credentials.authentication_type
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn request(body: Value) -> CreateConnectorProfileRequest {
        serde_json::from_value(body).unwrap()
    }

    fn profile(
        connector: &str,
        label: Option<&str>,
        config: Value,
    ) -> CreateConnectorProfileRequest {
        let mut body = json!({
            "connectorProfileName": "prof",
            "connectorType": connector,
            "connectionMode": "Public",
            "connectorProfileConfig": config,
        });
        if let Some(label) = label {
            body["connectorLabel"] = json!(label);
        }
        request(body)
    }

    fn error(request: &CreateConnectorProfileRequest) -> String {
        validate_connector_profile(request).unwrap_err().to_string()
    }

    #[test]
    fn valid_profiles() {
        let cases = [
            profile(
                "Salesforce",
                None,
                json!({"connectorProfileProperties": {"Salesforce": {"instanceUrl": "https://x.my.salesforce.com"}},
                       "connectorProfileCredentials": {"Salesforce": {"accessToken": "t"}}}),
            ),
            profile(
                "Servicenow",
                None,
                json!({"connectorProfileProperties": {"ServiceNow": {"instanceUrl": "https://x.service-now.com"}},
                       "connectorProfileCredentials": {"ServiceNow": {"username": "u", "password": "p"}}}),
            ),
            // Properties without credentials (kept from before, or supplied later).
            profile(
                "Googleanalytics",
                None,
                json!({"connectorProfileProperties": {"GoogleAnalytics": {}}}),
            ),
            profile(
                "Infornexus",
                None,
                json!({"connectorProfileProperties": {"InforNexus": {"instanceUrl": "https://nexus"}}}),
            ),
            profile(
                "CustomConnector",
                Some("Postgres"),
                json!({"connectorProfileProperties": {"CustomConnector": {"profileProperties": {"host": "db"}}},
                       "connectorProfileCredentials": {"CustomConnector": {"authenticationType": "BASIC",
                            "basic": {"username": "u", "password": "p"}}}}),
            ),
        ];
        for case in &cases {
            validate_connector_profile(case).unwrap_or_else(|e| panic!("{case:?}: {e}"));
        }
    }

    #[test]
    fn labels_only_for_custom_connectors() {
        let custom = |label: Option<&str>| {
            profile(
                "CustomConnector",
                label,
                json!({"connectorProfileProperties": {"CustomConnector": {}}}),
            )
        };
        assert_eq!(
            error(&custom(None)),
            "connectorLabel is required when connectorType is CustomConnector"
        );
        assert_eq!(
            error(&custom(Some("  "))),
            "connectorLabel is required when connectorType is CustomConnector"
        );
        let slack = profile(
            "Slack",
            Some("Postgres"),
            json!({"connectorProfileProperties": {"Slack": {"instanceUrl": "https://x.slack.com"}}}),
        );
        assert_eq!(
            error(&slack),
            "connectorLabel is only allowed when connectorType is CustomConnector, not Slack"
        );
    }

    #[test]
    fn properties_must_match_the_connector() {
        let mismatch = profile(
            "Servicenow",
            None,
            json!({"connectorProfileProperties": {"Slack": {"instanceUrl": "https://x"}}}),
        );
        assert_eq!(
            error(&mismatch),
            "connectorProfileConfig.connectorProfileProperties sets Slack, which does not match connectorType Servicenow (expected ServiceNow)"
        );
        let none = profile("Amplitude", None, json!({"connectorProfileProperties": {}}));
        assert_eq!(
            error(&none),
            "connectorProfileConfig.connectorProfileProperties must set exactly one connector, but none is set (expected Amplitude)"
        );
        let two = profile(
            "Amplitude",
            None,
            json!({"connectorProfileProperties": {"Amplitude": {}, "Singular": {}}}),
        );
        assert!(error(&two).contains("but 2 are set: Amplitude, Singular"));
    }

    #[test]
    fn credentials_must_match_the_connector_and_never_leak() {
        let wrong = profile(
            "Amplitude",
            None,
            json!({"connectorProfileProperties": {"Amplitude": {}},
                   "connectorProfileCredentials": {"Singular": {"apiKey": "super-secret-key"}}}),
        );
        let message = error(&wrong);
        assert_eq!(
            message,
            "connectorProfileConfig.connectorProfileCredentials sets Singular, which does not match connectorType Amplitude (expected Amplitude)"
        );
        assert!(!message.contains("super-secret-key"));
        let empty = profile(
            "Amplitude",
            None,
            json!({"connectorProfileProperties": {"Amplitude": {}}, "connectorProfileCredentials": {}}),
        );
        assert!(error(&empty).starts_with(
            "connectorProfileConfig.connectorProfileCredentials must set exactly one"
        ));
    }

    #[test]
    fn connectors_without_profiles_are_rejected() {
        let s3 = profile("S3", None, json!({"connectorProfileProperties": {}}));
        assert_eq!(
            error(&s3),
            "connectorType S3 does not use connector profiles"
        );
        let bridge = profile(
            "EventBridge",
            None,
            json!({"connectorProfileProperties": {}}),
        );
        assert_eq!(
            error(&bridge),
            "connectorType EventBridge does not use connector profiles"
        );
    }

    #[test]
    fn custom_credentials_need_the_member_their_type_names() {
        let custom = |credentials: Value| {
            profile(
                "CustomConnector",
                Some("Postgres"),
                json!({"connectorProfileProperties": {"CustomConnector": {}},
                       "connectorProfileCredentials": {"CustomConnector": credentials}}),
            )
        };
        assert_eq!(
            error(&custom(
                json!({"authenticationType": "OAUTH2", "basic": {"username": "u", "password": "p"}})
            )),
            "connectorProfileConfig.connectorProfileCredentials.CustomConnector.oauth2 is required when authenticationType is OAUTH2"
        );
        assert!(
            error(&custom(json!({"authenticationType": "APIKEY"}))).contains(".apiKey is required")
        );
        assert!(
            error(&custom(json!({"authenticationType": "CUSTOM"}))).contains(".custom is required")
        );
        validate_connector_profile(&custom(
            json!({"authenticationType": "APIKEY", "apiKey": {"apiKey": "k"}}),
        ))
        .unwrap();
        validate_connector_profile(&custom(json!({"authenticationType": "CUSTOM",
            "custom": {"customAuthenticationType": "pg"}})))
        .unwrap();
    }

    #[test]
    fn update_configs_are_checked_against_the_stored_type() {
        let config: ConnectorProfileConfig = serde_json::from_value(json!({
            "connectorProfileProperties": {"Snowflake": {"warehouse": "w", "stage": "s", "bucketName": "b"}}
        }))
        .unwrap();
        validate_profile_config(ConnectorType::Snowflake, &config).unwrap();
        let error = validate_profile_config(ConnectorType::Redshift, &config).unwrap_err();
        assert_eq!(error.field(), PROPERTIES);
    }
}
