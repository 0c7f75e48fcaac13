//! Which task operators each source connector accepts (spec §B.4).
//!
//! `connectorOperator` is a union keyed by the *source* connector, and each key has its own
//! operator enum in the model. [`operators_for`] maps those generated enums onto the shared
//! [`Operator`] enum, in model order.

use std::sync::LazyLock;

use sluice_api_model::{self as model, ConnectorOperator, ConnectorType, Operator};

/// The operators of one per-connector enum (`ALL`, in model order) as shared [`Operator`]s,
/// converted once. Every per-connector spelling is also an `Operator`.
macro_rules! table {
    ($enum:ty) => {{
        static TABLE: LazyLock<Vec<Operator>> = LazyLock::new(|| {
            <$enum>::ALL
                .iter()
                .filter_map(|op| Operator::parse(op.as_str()))
                .collect()
        });
        TABLE.as_slice()
    }};
}

/// The operators a source connector accepts in `connectorOperator`. Connectors that cannot be
/// a source (Redshift, Snowflake, EventBridge, ...) accept none.
pub fn operators_for(source: ConnectorType) -> &'static [Operator] {
    match source {
        ConnectorType::Amplitude => table!(model::AmplitudeConnectorOperator),
        ConnectorType::Googleanalytics => table!(model::GoogleAnalyticsConnectorOperator),
        ConnectorType::Datadog => table!(model::DatadogConnectorOperator),
        ConnectorType::Dynatrace => table!(model::DynatraceConnectorOperator),
        ConnectorType::Infornexus => table!(model::InforNexusConnectorOperator),
        ConnectorType::Marketo => table!(model::MarketoConnectorOperator),
        ConnectorType::Pardot => table!(model::PardotConnectorOperator),
        ConnectorType::S3 => table!(model::S3ConnectorOperator),
        ConnectorType::SAPOData => table!(model::SAPODataConnectorOperator),
        ConnectorType::Servicenow => table!(model::ServiceNowConnectorOperator),
        ConnectorType::Singular => table!(model::SingularConnectorOperator),
        ConnectorType::Trendmicro => table!(model::TrendmicroConnectorOperator),
        ConnectorType::Slack => table!(model::SlackConnectorOperator),
        ConnectorType::Salesforce => table!(model::SalesforceConnectorOperator),
        ConnectorType::Veeva => table!(model::VeevaConnectorOperator),
        ConnectorType::Zendesk => table!(model::ZendeskConnectorOperator),
        // Custom connectors accept every operator, in the shared enum's order.
        ConnectorType::CustomConnector => Operator::ALL,
        ConnectorType::Redshift
        | ConnectorType::Snowflake
        | ConnectorType::EventBridge
        | ConnectorType::LookoutMetrics
        | ConnectorType::Upsolver
        | ConnectorType::Honeycode
        | ConnectorType::CustomerProfiles => &[],
    }
}

/// The members set in a `connectorOperator` union: `(union key, operator)`. Every
/// per-connector operator spelling is also an [`Operator`], so the conversion cannot fail for
/// generated values.
pub(crate) fn operator_entries(value: &ConnectorOperator) -> Vec<(&'static str, Option<Operator>)> {
    let mut entries = Vec::new();
    macro_rules! collect {
        ($($field:ident => $key:literal),* $(,)?) => {
            $(if let Some(op) = &value.$field {
                entries.push(($key, Operator::parse(op.as_str())));
            })*
        };
    }
    collect!(
        amplitude => "Amplitude", custom_connector => "CustomConnector", datadog => "Datadog",
        dynatrace => "Dynatrace", google_analytics => "GoogleAnalytics", infor_nexus => "InforNexus",
        marketo => "Marketo", pardot => "Pardot", s3 => "S3", sapo_data => "SAPOData",
        salesforce => "Salesforce", service_now => "ServiceNow", singular => "Singular",
        slack => "Slack", trendmicro => "Trendmicro", veeva => "Veeva", zendesk => "Zendesk",
    );
    entries
}

#[cfg(test)]
mod tests {
    use sluice_api_model as model;

    use super::*;
    use crate::connectors::union_key;
    use Operator::*;

    fn as_operators(values: &[&str]) -> Vec<Operator> {
        values.iter().map(|v| Operator::parse(v).unwrap()).collect()
    }

    #[test]
    fn tables_match_the_generated_enums() {
        macro_rules! strs {
            ($ty:ty) => {
                <$ty>::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>()
            };
        }
        let cases: Vec<(ConnectorType, Vec<&str>)> = vec![
            (
                ConnectorType::Amplitude,
                strs!(model::AmplitudeConnectorOperator),
            ),
            (
                ConnectorType::Datadog,
                strs!(model::DatadogConnectorOperator),
            ),
            (
                ConnectorType::Dynatrace,
                strs!(model::DynatraceConnectorOperator),
            ),
            (
                ConnectorType::Googleanalytics,
                strs!(model::GoogleAnalyticsConnectorOperator),
            ),
            (
                ConnectorType::Infornexus,
                strs!(model::InforNexusConnectorOperator),
            ),
            (
                ConnectorType::Marketo,
                strs!(model::MarketoConnectorOperator),
            ),
            (ConnectorType::Pardot, strs!(model::PardotConnectorOperator)),
            (ConnectorType::S3, strs!(model::S3ConnectorOperator)),
            (
                ConnectorType::SAPOData,
                strs!(model::SAPODataConnectorOperator),
            ),
            (
                ConnectorType::Salesforce,
                strs!(model::SalesforceConnectorOperator),
            ),
            (
                ConnectorType::Servicenow,
                strs!(model::ServiceNowConnectorOperator),
            ),
            (
                ConnectorType::Singular,
                strs!(model::SingularConnectorOperator),
            ),
            (ConnectorType::Slack, strs!(model::SlackConnectorOperator)),
            (
                ConnectorType::Trendmicro,
                strs!(model::TrendmicroConnectorOperator),
            ),
            (ConnectorType::Veeva, strs!(model::VeevaConnectorOperator)),
            (
                ConnectorType::Zendesk,
                strs!(model::ZendeskConnectorOperator),
            ),
            (ConnectorType::CustomConnector, strs!(model::Operator)),
        ];
        for (connector, values) in cases {
            assert_eq!(
                operators_for(connector),
                as_operators(&values),
                "{connector}"
            );
        }
        assert!(operators_for(ConnectorType::Redshift).is_empty());
        assert!(operators_for(ConnectorType::EventBridge).is_empty());
    }

    #[test]
    fn table_highlights_from_the_spec() {
        assert_eq!(operators_for(ConnectorType::Amplitude), [Between]);
        assert!(!operators_for(ConnectorType::Zendesk).contains(&LessThan));
        assert!(operators_for(ConnectorType::Zendesk).contains(&GreaterThan));
        assert!(!operators_for(ConnectorType::S3).contains(&Contains));
        assert!(operators_for(ConnectorType::Salesforce).contains(&Contains));
        assert!(!operators_for(ConnectorType::Slack).contains(&NotEqualTo));
    }

    #[test]
    fn entries_use_union_keys() {
        let op: ConnectorOperator = serde_json::from_value(serde_json::json!({
            "ServiceNow": "CONTAINS", "GoogleAnalytics": "BETWEEN"
        }))
        .unwrap();
        assert_eq!(
            operator_entries(&op),
            [
                ("GoogleAnalytics", Some(Between)),
                ("ServiceNow", Some(Contains))
            ]
        );
        assert_eq!(union_key(ConnectorType::Servicenow), "ServiceNow");
        assert!(operator_entries(&ConnectorOperator::default()).is_empty());
    }
}
