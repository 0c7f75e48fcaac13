//! AppFlow resource ARNs: `arn:<partition>:appflow:<region>:<account>:<kind>/<name>`.
//!
//! Built ARNs use the `aws` partition, as the model's ARN patterns (`arn:aws:appflow:...`)
//! require. Parsing accepts any partition so that ARNs copied from other partitions still
//! resolve to a name.

use std::fmt;

/// The kinds of AppFlow resources that have ARNs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// `flow/<flowName>`.
    Flow,
    /// `connectorprofile/<connectorProfileName>`.
    ConnectorProfile,
    /// `connector/<connectorLabel>` (a registered custom connector).
    Connector,
}

impl ResourceKind {
    /// The resource-type segment of the ARN.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Flow => "flow",
            Self::ConnectorProfile => "connectorprofile",
            Self::Connector => "connector",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Flow, Self::ConnectorProfile, Self::Connector]
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The parts of an AppFlow resource ARN.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceArn {
    /// Usually `aws`.
    pub partition: String,
    /// E.g. `us-east-1`.
    pub region: String,
    /// Twelve digits in AWS; any digits are accepted.
    pub account: String,
    /// What the ARN names.
    pub kind: ResourceKind,
    /// The flow name, profile name (which may contain `/`) or connector label.
    pub name: String,
}

impl fmt::Display for ResourceArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:appflow:{}:{}:{}/{}",
            self.partition, self.region, self.account, self.kind, self.name
        )
    }
}

fn build(region: &str, account: &str, kind: ResourceKind, name: &str) -> String {
    format!("arn:aws:appflow:{region}:{account}:{kind}/{name}")
}

/// `arn:aws:appflow:<region>:<account>:flow/<name>`.
pub fn flow(region: &str, account: &str, name: &str) -> String {
    build(region, account, ResourceKind::Flow, name)
}

/// `arn:aws:appflow:<region>:<account>:connectorprofile/<name>`.
pub fn connector_profile(region: &str, account: &str, name: &str) -> String {
    build(region, account, ResourceKind::ConnectorProfile, name)
}

/// `arn:aws:appflow:<region>:<account>:connector/<label>`.
pub fn connector(region: &str, account: &str, label: &str) -> String {
    build(region, account, ResourceKind::Connector, label)
}

/// Splits an AppFlow ARN into its parts; `None` for anything else (other services, unknown
/// resource kinds, empty or non-numeric account, empty name).
pub fn parse(arn: &str) -> Option<ResourceArn> {
    let mut parts = arn.splitn(6, ':');
    let (prefix, partition, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if prefix != "arn" || service != "appflow" || partition.is_empty() || region.is_empty() {
        return None;
    }
    if account.is_empty() || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (kind, name) = resource.split_once('/')?;
    if name.is_empty() {
        return None;
    }
    Some(ResourceArn {
        partition: partition.to_string(),
        region: region.to_string(),
        account: account.to_string(),
        kind: ResourceKind::parse(kind)?,
        name: name.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_documented_formats() {
        assert_eq!(
            flow("us-east-1", "123456789012", "my-flow"),
            "arn:aws:appflow:us-east-1:123456789012:flow/my-flow"
        );
        assert_eq!(
            connector_profile("eu-west-1", "000000000000", "sf/prod"),
            "arn:aws:appflow:eu-west-1:000000000000:connectorprofile/sf/prod"
        );
        assert_eq!(
            connector("us-east-1", "1", "Postgres"),
            "arn:aws:appflow:us-east-1:1:connector/Postgres"
        );
    }

    #[test]
    fn parse_round_trips() {
        for arn in [
            flow("us-east-1", "123456789012", "my-flow"),
            connector_profile("eu-west-1", "000000000000", "a/b/c"),
            connector("ap-southeast-2", "42", "Postgres"),
        ] {
            let parsed = parse(&arn).unwrap();
            assert_eq!(parsed.to_string(), arn);
        }
        let parsed =
            parse("arn:aws:appflow:eu-west-1:000000000000:connectorprofile/a/b:c").unwrap();
        assert_eq!(parsed.kind, ResourceKind::ConnectorProfile);
        assert_eq!(parsed.name, "a/b:c");
        assert_eq!(parsed.region, "eu-west-1");
        let china = parse("arn:aws-cn:appflow:cn-north-1:123456789012:flow/f").unwrap();
        assert_eq!(china.partition, "aws-cn");
    }

    #[test]
    fn parse_rejects_other_arns() {
        for arn in [
            "",
            "arn",
            "flow/my-flow",
            "arn:aws:s3:::bucket/key",
            "arn:aws:appflow:us-east-1:123456789012:flow",
            "arn:aws:appflow:us-east-1:123456789012:flow/",
            "arn:aws:appflow:us-east-1:123456789012:table/x",
            "arn:aws:appflow:us-east-1:12a:flow/x",
            "arn:aws:appflow:us-east-1::flow/x",
            "arn:aws:appflow::123:flow/x",
            "arn::appflow:us-east-1:123:flow/x",
            "urn:aws:appflow:us-east-1:123:flow/x",
            "arn:aws:appflow:us-east-1:١٢٣:flow/x",
        ] {
            assert_eq!(parse(arn), None, "{arn}");
        }
    }
}
