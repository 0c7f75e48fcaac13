//! Which task operators each source connector accepts (spec §B.4).
//!
//! `connectorOperator` is a union keyed by the *source* connector, and each key has its own
//! operator enum in the model. The tables below are those enums mapped onto the shared
//! [`Operator`] enum, in model order; a test keeps them in step with the generated types.

use sluice_api_model::{ConnectorOperator, ConnectorType, Operator};

use Operator::*;

const AMPLITUDE: &[Operator] = &[Between];
const GOOGLE_ANALYTICS: &[Operator] = &[Projection, Between];
/// Datadog, Dynatrace and Infor Nexus share one operator set.
const DATADOG: &[Operator] = &[
    Projection,
    Between,
    EqualTo,
    Addition,
    Multiplication,
    Division,
    Subtraction,
    MaskAll,
    MaskFirstN,
    MaskLastN,
    ValidateNonNull,
    ValidateNonZero,
    ValidateNonNegative,
    ValidateNumeric,
    NoOp,
];
const MARKETO: &[Operator] = &[
    Projection,
    LessThan,
    GreaterThan,
    Between,
    Addition,
    Multiplication,
    Division,
    Subtraction,
    MaskAll,
    MaskFirstN,
    MaskLastN,
    ValidateNonNull,
    ValidateNonZero,
    ValidateNonNegative,
    ValidateNumeric,
    NoOp,
];
const PARDOT: &[Operator] = &[
    Projection,
    EqualTo,
    NoOp,
    Addition,
    Multiplication,
    Division,
    Subtraction,
    MaskAll,
    MaskFirstN,
    MaskLastN,
    ValidateNonNull,
    ValidateNonZero,
    ValidateNonNegative,
    ValidateNumeric,
];
const S3: &[Operator] = &[
    Projection,
    LessThan,
    GreaterThan,
    Between,
    LessThanOrEqualTo,
    GreaterThanOrEqualTo,
    EqualTo,
    NotEqualTo,
    Addition,
    Multiplication,
    Division,
    Subtraction,
    MaskAll,
    MaskFirstN,
    MaskLastN,
    ValidateNonNull,
    ValidateNonZero,
    ValidateNonNegative,
    ValidateNumeric,
    NoOp,
];
const SAP_ODATA: &[Operator] = &[
    Projection,
    LessThan,
    Contains,
    GreaterThan,
    Between,
    LessThanOrEqualTo,
    GreaterThanOrEqualTo,
    EqualTo,
    NotEqualTo,
    Addition,
    Multiplication,
    Division,
    Subtraction,
    MaskAll,
    MaskFirstN,
    MaskLastN,
    ValidateNonNull,
    ValidateNonZero,
    ValidateNonNegative,
    ValidateNumeric,
    NoOp,
];
const SERVICE_NOW: &[Operator] = &[
    Projection,
    Contains,
    LessThan,
    GreaterThan,
    Between,
    LessThanOrEqualTo,
    GreaterThanOrEqualTo,
    EqualTo,
    NotEqualTo,
    Addition,
    Multiplication,
    Division,
    Subtraction,
    MaskAll,
    MaskFirstN,
    MaskLastN,
    ValidateNonNull,
    ValidateNonZero,
    ValidateNonNegative,
    ValidateNumeric,
    NoOp,
];
/// Singular and Trend Micro share one operator set.
const SINGULAR: &[Operator] = &[
    Projection,
    EqualTo,
    Addition,
    Multiplication,
    Division,
    Subtraction,
    MaskAll,
    MaskFirstN,
    MaskLastN,
    ValidateNonNull,
    ValidateNonZero,
    ValidateNonNegative,
    ValidateNumeric,
    NoOp,
];
const SLACK: &[Operator] = &[
    Projection,
    LessThan,
    GreaterThan,
    Between,
    LessThanOrEqualTo,
    GreaterThanOrEqualTo,
    EqualTo,
    Addition,
    Multiplication,
    Division,
    Subtraction,
    MaskAll,
    MaskFirstN,
    MaskLastN,
    ValidateNonNull,
    ValidateNonZero,
    ValidateNonNegative,
    ValidateNumeric,
    NoOp,
];
/// Salesforce accepts every operator (its enum lists them in its own order).
const SALESFORCE: &[Operator] = &[
    Projection,
    LessThan,
    Contains,
    GreaterThan,
    Between,
    LessThanOrEqualTo,
    GreaterThanOrEqualTo,
    EqualTo,
    NotEqualTo,
    Addition,
    Multiplication,
    Division,
    Subtraction,
    MaskAll,
    MaskFirstN,
    MaskLastN,
    ValidateNonNull,
    ValidateNonZero,
    ValidateNonNegative,
    ValidateNumeric,
    NoOp,
];
/// Veeva and custom connectors accept every operator, in the shared enum's order.
const ALL: &[Operator] = Operator::ALL;
const ZENDESK: &[Operator] = &[
    Projection,
    GreaterThan,
    Addition,
    Multiplication,
    Division,
    Subtraction,
    MaskAll,
    MaskFirstN,
    MaskLastN,
    ValidateNonNull,
    ValidateNonZero,
    ValidateNonNegative,
    ValidateNumeric,
    NoOp,
];

/// The operators a source connector accepts in `connectorOperator`. Connectors that cannot be
/// a source (Redshift, Snowflake, EventBridge, ...) accept none.
pub fn operators_for(source: ConnectorType) -> &'static [Operator] {
    match source {
        ConnectorType::Amplitude => AMPLITUDE,
        ConnectorType::Googleanalytics => GOOGLE_ANALYTICS,
        ConnectorType::Datadog | ConnectorType::Dynatrace | ConnectorType::Infornexus => DATADOG,
        ConnectorType::Marketo => MARKETO,
        ConnectorType::Pardot => PARDOT,
        ConnectorType::S3 => S3,
        ConnectorType::SAPOData => SAP_ODATA,
        ConnectorType::Servicenow => SERVICE_NOW,
        ConnectorType::Singular | ConnectorType::Trendmicro => SINGULAR,
        ConnectorType::Slack => SLACK,
        ConnectorType::Salesforce => SALESFORCE,
        ConnectorType::Veeva | ConnectorType::CustomConnector => ALL,
        ConnectorType::Zendesk => ZENDESK,
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
