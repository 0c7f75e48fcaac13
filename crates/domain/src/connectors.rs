//! Facts about connectors: union-key spellings, which need a profile, schedule limits, and
//! which ones Sluice can run ([`Capabilities`]).
//!
//! The "union" structures of the model (`sourceConnectorProperties`,
//! `destinationConnectorProperties`, `connectorProfileProperties`, `connectorProfileCredentials`,
//! `connectorOperator`) have one optional member per connector, keyed by a PascalCase name that
//! differs from the `ConnectorType` spelling for three connectors (`Servicenow` -> `ServiceNow`,
//! `Googleanalytics` -> `GoogleAnalytics`, `Infornexus` -> `InforNexus`). The helpers here list
//! the keys that are set, by field access rather than by serializing, so no credential value is
//! ever copied while checking which member is present.

use chrono::TimeDelta;
use sluice_api_model::{
    ConnectorProfileCredentials, ConnectorProfileProperties, ConnectorType,
    DestinationConnectorProperties, SourceConnectorProperties,
};

use crate::error::{ConnectorRole, DomainError};

/// The union key of a connector, e.g. `ServiceNow` for `ConnectorType::Servicenow`.
pub fn union_key(connector: ConnectorType) -> &'static str {
    match connector {
        ConnectorType::Servicenow => "ServiceNow",
        ConnectorType::Googleanalytics => "GoogleAnalytics",
        ConnectorType::Infornexus => "InforNexus",
        other => other.as_str(),
    }
}

/// The connector a union key stands for (the inverse of [`union_key`]).
pub fn connector_for_union_key(key: &str) -> Option<ConnectorType> {
    ConnectorType::ALL
        .iter()
        .copied()
        .find(|connector| union_key(*connector) == key)
}

/// Whether flows using this connector must name a connector profile. Only the AWS-internal
/// targets (S3, EventBridge, Lookout for Metrics, Upsolver, Customer Profiles) need none.
pub fn requires_profile(connector: ConnectorType) -> bool {
    !matches!(
        connector,
        ConnectorType::S3
            | ConnectorType::EventBridge
            | ConnectorType::LookoutMetrics
            | ConnectorType::Upsolver
            | ConnectorType::CustomerProfiles
    )
}

/// The shortest schedule interval a source allows: once per minute service-wide, once per
/// hour for Marketo, Singular and Trend Micro, once per day for Amplitude and Google Analytics.
pub fn min_schedule_interval(source: ConnectorType) -> TimeDelta {
    match source {
        ConnectorType::Marketo | ConnectorType::Singular | ConnectorType::Trendmicro => {
            TimeDelta::hours(1)
        }
        ConnectorType::Amplitude | ConnectorType::Googleanalytics => TimeDelta::days(1),
        _ => TimeDelta::minutes(1),
    }
}

/// Whether AppFlow itself allows the connector at this end of a flow (it has a member in the
/// source or destination properties union).
pub fn usable_as(connector: ConnectorType, role: ConnectorRole) -> bool {
    let keys = match role {
        ConnectorRole::Source => SOURCE_KEYS,
        ConnectorRole::Destination => DESTINATION_KEYS,
    };
    keys.contains(&union_key(connector))
}

/// Whether AppFlow keeps connector profiles for the connector.
pub fn has_profiles(connector: ConnectorType) -> bool {
    PROFILE_KEYS.contains(&union_key(connector))
}

/// Members of `SourceConnectorProperties` (and `ConnectorOperator`), in model order.
pub(crate) const SOURCE_KEYS: &[&str] = &[
    "Amplitude",
    "CustomConnector",
    "Datadog",
    "Dynatrace",
    "GoogleAnalytics",
    "InforNexus",
    "Marketo",
    "Pardot",
    "S3",
    "SAPOData",
    "Salesforce",
    "ServiceNow",
    "Singular",
    "Slack",
    "Trendmicro",
    "Veeva",
    "Zendesk",
];

/// Members of `DestinationConnectorProperties`, in model order.
pub(crate) const DESTINATION_KEYS: &[&str] = &[
    "CustomConnector",
    "CustomerProfiles",
    "EventBridge",
    "Honeycode",
    "LookoutMetrics",
    "Marketo",
    "Redshift",
    "S3",
    "SAPOData",
    "Salesforce",
    "Snowflake",
    "Upsolver",
    "Zendesk",
];

/// Members of `ConnectorProfileProperties` and `ConnectorProfileCredentials`, in model order.
pub(crate) const PROFILE_KEYS: &[&str] = &[
    "Amplitude",
    "CustomConnector",
    "Datadog",
    "Dynatrace",
    "GoogleAnalytics",
    "Honeycode",
    "InforNexus",
    "Marketo",
    "Pardot",
    "Redshift",
    "SAPOData",
    "Salesforce",
    "ServiceNow",
    "Singular",
    "Slack",
    "Snowflake",
    "Trendmicro",
    "Veeva",
    "Zendesk",
];

/// Lists the union keys whose member is set.
macro_rules! set_keys {
    ($value:expr; $($field:ident => $key:literal),* $(,)?) => {{
        let value = $value;
        let mut keys: Vec<&'static str> = Vec::new();
        $(if value.$field.is_some() { keys.push($key); })*
        keys
    }};
}

pub(crate) fn source_keys(value: &SourceConnectorProperties) -> Vec<&'static str> {
    set_keys!(value;
        amplitude => "Amplitude", custom_connector => "CustomConnector", datadog => "Datadog",
        dynatrace => "Dynatrace", google_analytics => "GoogleAnalytics", infor_nexus => "InforNexus",
        marketo => "Marketo", pardot => "Pardot", s3 => "S3", sapo_data => "SAPOData",
        salesforce => "Salesforce", service_now => "ServiceNow", singular => "Singular",
        slack => "Slack", trendmicro => "Trendmicro", veeva => "Veeva", zendesk => "Zendesk",
    )
}

pub(crate) fn destination_keys(value: &DestinationConnectorProperties) -> Vec<&'static str> {
    set_keys!(value;
        custom_connector => "CustomConnector", customer_profiles => "CustomerProfiles",
        event_bridge => "EventBridge", honeycode => "Honeycode", lookout_metrics => "LookoutMetrics",
        marketo => "Marketo", redshift => "Redshift", s3 => "S3", sapo_data => "SAPOData",
        salesforce => "Salesforce", snowflake => "Snowflake", upsolver => "Upsolver",
        zendesk => "Zendesk",
    )
}

pub(crate) fn profile_property_keys(value: &ConnectorProfileProperties) -> Vec<&'static str> {
    set_keys!(value;
        amplitude => "Amplitude", custom_connector => "CustomConnector", datadog => "Datadog",
        dynatrace => "Dynatrace", google_analytics => "GoogleAnalytics", honeycode => "Honeycode",
        infor_nexus => "InforNexus", marketo => "Marketo", pardot => "Pardot",
        redshift => "Redshift", sapo_data => "SAPOData", salesforce => "Salesforce",
        service_now => "ServiceNow", singular => "Singular", slack => "Slack",
        snowflake => "Snowflake", trendmicro => "Trendmicro", veeva => "Veeva",
        zendesk => "Zendesk",
    )
}

pub(crate) fn profile_credential_keys(value: &ConnectorProfileCredentials) -> Vec<&'static str> {
    set_keys!(value;
        amplitude => "Amplitude", custom_connector => "CustomConnector", datadog => "Datadog",
        dynatrace => "Dynatrace", google_analytics => "GoogleAnalytics", honeycode => "Honeycode",
        infor_nexus => "InforNexus", marketo => "Marketo", pardot => "Pardot",
        redshift => "Redshift", sapo_data => "SAPOData", salesforce => "Salesforce",
        service_now => "ServiceNow", singular => "Singular", slack => "Slack",
        snowflake => "Snowflake", trendmicro => "Trendmicro", veeva => "Veeva",
        zendesk => "Zendesk",
    )
}

/// Checks that a union sets exactly one member and that it is `connector`'s.
///
/// `field` is the union's path and `connector_field` the path of the `connectorType` it must
/// agree with.
pub(crate) fn check_union(
    field: &str,
    keys: &[&str],
    connector: ConnectorType,
    connector_field: &str,
) -> Result<(), DomainError> {
    let expected = union_key(connector);
    match keys {
        [] => Err(DomainError::invalid(
            field,
            format!("must set exactly one connector, but none is set (expected {expected})"),
        )),
        [key] if *key == expected => Ok(()),
        [key] => Err(DomainError::invalid(
            field,
            format!(
                "sets {key}, which does not match {connector_field} {connector} (expected {expected})"
            ),
        )),
        many => Err(DomainError::invalid(
            field,
            format!(
                "must set exactly one connector, but {} are set: {} (expected {expected})",
                many.len(),
                many.join(", ")
            ),
        )),
    }
}

/// How far Sluice's support for a connector goes at one end of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Support {
    /// Flows can use it.
    Enabled,
    /// Announced (listed) but flows using it are rejected.
    Planned,
}

/// One connector Sluice knows about, and how far it supports it as source and destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorCapability {
    /// The AppFlow connector type.
    pub connector_type: ConnectorType,
    /// For `CustomConnector`, the connector label (e.g. `Postgres`); `None` otherwise.
    pub label: Option<String>,
    /// Support as a source; `None` when it cannot be a source at all.
    pub as_source: Option<Support>,
    /// Support as a destination; `None` when it cannot be a destination at all.
    pub as_destination: Option<Support>,
}

impl ConnectorCapability {
    /// Support at `role`.
    pub fn support(&self, role: ConnectorRole) -> Option<Support> {
        match role {
            ConnectorRole::Source => self.as_source,
            ConnectorRole::Destination => self.as_destination,
        }
    }
}

/// Which connectors Sluice can run, as sources and as destinations.
///
/// [`Capabilities::sluice`] (also the `Default`) is what this release ships: Amazon S3 and a
/// `CustomConnector` labelled `Postgres`, both ways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    entries: Vec<ConnectorCapability>,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self::sluice()
    }
}

impl Capabilities {
    /// The connectors of this release.
    pub fn sluice() -> Self {
        Self::empty()
            .with(ConnectorCapability {
                connector_type: ConnectorType::S3,
                label: None,
                as_source: Some(Support::Enabled),
                as_destination: Some(Support::Enabled),
            })
            .with(ConnectorCapability {
                connector_type: ConnectorType::CustomConnector,
                label: Some("Postgres".to_string()),
                as_source: Some(Support::Enabled),
                as_destination: Some(Support::Enabled),
            })
    }

    /// No connectors at all.
    pub fn empty() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Adds (or replaces) the entry for a connector type and label.
    pub fn with(mut self, entry: ConnectorCapability) -> Self {
        self.entries
            .retain(|e| !(e.connector_type == entry.connector_type && e.label == entry.label));
        self.entries.push(entry);
        self
    }

    /// Every known connector.
    pub fn entries(&self) -> &[ConnectorCapability] {
        &self.entries
    }

    /// The entry for a connector. Labels only distinguish `CustomConnector` entries.
    pub fn get(
        &self,
        connector: ConnectorType,
        label: Option<&str>,
    ) -> Option<&ConnectorCapability> {
        self.entries.iter().find(|entry| {
            entry.connector_type == connector
                && (connector != ConnectorType::CustomConnector || entry.label.as_deref() == label)
        })
    }

    /// Whether flows may use the connector at `role` today.
    pub fn supports(
        &self,
        connector: ConnectorType,
        label: Option<&str>,
        role: ConnectorRole,
    ) -> bool {
        self.get(connector, label)
            .and_then(|entry| entry.support(role))
            == Some(Support::Enabled)
    }

    /// Fails with [`DomainError::UnsupportedConnector`] unless the connector is enabled at
    /// `role`.
    pub(crate) fn require(
        &self,
        connector: ConnectorType,
        label: Option<&str>,
        role: ConnectorRole,
        field: &str,
    ) -> Result<(), DomainError> {
        if self.supports(connector, label, role) {
            return Ok(());
        }
        let connector = match (connector, label) {
            (ConnectorType::CustomConnector, Some(label)) => format!("CustomConnector ({label})"),
            (other, _) => other.to_string(),
        };
        Err(DomainError::UnsupportedConnector {
            field: field.to_string(),
            connector,
            role,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn model_members(shape: &str) -> Vec<String> {
        let model: Value = serde_json::from_str(sluice_api_model::SERVICE_MODEL_JSON).unwrap();
        let mut members: Vec<String> = model["shapes"][shape]["members"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        members.sort();
        members
    }

    fn sorted(keys: &[&str]) -> Vec<String> {
        let mut keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        keys.sort();
        keys
    }

    #[test]
    fn key_tables_match_the_model_unions() {
        assert_eq!(
            sorted(SOURCE_KEYS),
            model_members("SourceConnectorProperties")
        );
        assert_eq!(sorted(SOURCE_KEYS), model_members("ConnectorOperator"));
        assert_eq!(
            sorted(DESTINATION_KEYS),
            model_members("DestinationConnectorProperties")
        );
        assert_eq!(
            sorted(PROFILE_KEYS),
            model_members("ConnectorProfileProperties")
        );
        assert_eq!(
            sorted(PROFILE_KEYS),
            model_members("ConnectorProfileCredentials")
        );
    }

    #[test]
    fn every_union_key_names_a_connector_type() {
        for key in SOURCE_KEYS
            .iter()
            .chain(DESTINATION_KEYS)
            .chain(PROFILE_KEYS)
        {
            let connector = connector_for_union_key(key)
                .unwrap_or_else(|| panic!("{key} has no connector type"));
            assert_eq!(union_key(connector), *key);
        }
    }

    #[test]
    fn the_three_odd_spellings() {
        assert_eq!(union_key(ConnectorType::Servicenow), "ServiceNow");
        assert_eq!(union_key(ConnectorType::Googleanalytics), "GoogleAnalytics");
        assert_eq!(union_key(ConnectorType::Infornexus), "InforNexus");
        assert_eq!(union_key(ConnectorType::SAPOData), "SAPOData");
        assert_eq!(union_key(ConnectorType::CustomConnector), "CustomConnector");
        assert_eq!(connector_for_union_key("Servicenow"), None);
        assert_eq!(
            connector_for_union_key("ServiceNow"),
            Some(ConnectorType::Servicenow)
        );
    }

    #[test]
    fn set_keys_follow_the_wire_names() {
        let source: SourceConnectorProperties = serde_json::from_value(serde_json::json!({
            "ServiceNow": {"object": "incident"}, "SAPOData": {}, "InforNexus": {"object": "x"}
        }))
        .unwrap();
        assert_eq!(
            source_keys(&source),
            ["InforNexus", "SAPOData", "ServiceNow"]
        );
        let destination: DestinationConnectorProperties = serde_json::from_value(serde_json::json!({
            "LookoutMetrics": {}, "EventBridge": {"object": "bus"}, "CustomerProfiles": {"domainName": "d"}
        }))
        .unwrap();
        assert_eq!(
            destination_keys(&destination),
            ["CustomerProfiles", "EventBridge", "LookoutMetrics"]
        );
        let properties: ConnectorProfileProperties = serde_json::from_value(serde_json::json!({
            "GoogleAnalytics": {}, "Honeycode": {}
        }))
        .unwrap();
        assert_eq!(
            profile_property_keys(&properties),
            ["GoogleAnalytics", "Honeycode"]
        );
        let credentials: ConnectorProfileCredentials = serde_json::from_value(serde_json::json!({
            "Singular": {"apiKey": "k"}
        }))
        .unwrap();
        assert_eq!(profile_credential_keys(&credentials), ["Singular"]);
    }

    #[test]
    fn profiles_are_required_except_for_aws_targets() {
        let without: Vec<ConnectorType> = ConnectorType::ALL
            .iter()
            .copied()
            .filter(|c| !requires_profile(*c))
            .collect();
        assert_eq!(
            without,
            [
                ConnectorType::S3,
                ConnectorType::EventBridge,
                ConnectorType::LookoutMetrics,
                ConnectorType::Upsolver,
                ConnectorType::CustomerProfiles
            ]
        );
        // Connectors without profiles have no profile union member either.
        for connector in without {
            assert!(!has_profiles(connector), "{connector}");
        }
    }

    #[test]
    fn capabilities_of_this_release() {
        let caps = Capabilities::default();
        assert!(caps.supports(ConnectorType::S3, None, ConnectorRole::Source));
        assert!(caps.supports(ConnectorType::S3, None, ConnectorRole::Destination));
        // Labels do not matter for AWS-vended connectors.
        assert!(caps.supports(ConnectorType::S3, Some("x"), ConnectorRole::Source));
        assert!(!caps.supports(ConnectorType::Salesforce, None, ConnectorRole::Source));
        let postgres = caps
            .get(ConnectorType::CustomConnector, Some("Postgres"))
            .unwrap();
        assert_eq!(postgres.as_source, Some(Support::Enabled));
        assert_eq!(postgres.as_destination, Some(Support::Enabled));
        assert!(caps.supports(
            ConnectorType::CustomConnector,
            Some("Postgres"),
            ConnectorRole::Source
        ));
        assert!(
            caps.get(ConnectorType::CustomConnector, Some("postgres"))
                .is_none()
        );
        assert!(caps.get(ConnectorType::CustomConnector, None).is_none());

        let planned = caps.clone().with(ConnectorCapability {
            connector_type: ConnectorType::CustomConnector,
            label: Some("Postgres".into()),
            as_source: Some(Support::Planned),
            as_destination: Some(Support::Planned),
        });
        let error = planned
            .require(
                ConnectorType::CustomConnector,
                Some("Postgres"),
                ConnectorRole::Destination,
                "f",
            )
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "Sluice does not support connector CustomConnector (Postgres) as a destination yet (f)"
        );

        let enabled = caps.with(ConnectorCapability {
            connector_type: ConnectorType::CustomConnector,
            label: Some("Postgres".into()),
            as_source: Some(Support::Enabled),
            as_destination: None,
        });
        assert_eq!(enabled.entries().len(), 2);
        assert!(enabled.supports(
            ConnectorType::CustomConnector,
            Some("Postgres"),
            ConnectorRole::Source
        ));
        assert!(!enabled.supports(
            ConnectorType::CustomConnector,
            Some("Postgres"),
            ConnectorRole::Destination
        ));
    }

    #[test]
    fn schedule_limits_per_source() {
        assert_eq!(
            min_schedule_interval(ConnectorType::S3),
            TimeDelta::minutes(1)
        );
        assert_eq!(
            min_schedule_interval(ConnectorType::Marketo),
            TimeDelta::hours(1)
        );
        assert_eq!(
            min_schedule_interval(ConnectorType::Googleanalytics),
            TimeDelta::days(1)
        );
    }

    #[test]
    fn union_check_messages() {
        let check = |keys: &[&str]| {
            check_union("p", keys, ConnectorType::Servicenow, "c").map_err(|e| e.to_string())
        };
        assert_eq!(check(&["ServiceNow"]), Ok(()));
        assert_eq!(
            check(&[]).unwrap_err(),
            "p must set exactly one connector, but none is set (expected ServiceNow)"
        );
        assert_eq!(
            check(&["Servicenow"]).unwrap_err(),
            "p sets Servicenow, which does not match c Servicenow (expected ServiceNow)"
        );
        assert_eq!(
            check(&["S3", "ServiceNow"]).unwrap_err(),
            "p must set exactly one connector, but 2 are set: S3, ServiceNow (expected ServiceNow)"
        );
    }
}
