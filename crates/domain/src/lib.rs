//! AppFlow's semantic rules for flows and connector profiles, schedules, ARNs and connector
//! capabilities.
//!
//! The model validator in `sluice-api-model` guarantees that a request has the right JSON
//! shape, lengths, patterns and enum values. This crate checks what the model cannot express:
//! unions with exactly one member keyed by the right connector, a single destination, the
//! projection-or-`Map_all` task rule, operators allowed for the source, per-task property
//! rules, the schedule grammar, and whether Sluice can run the connectors at all
//! ([`Capabilities`]). Every rule is a pure function without IO, and every rejection is a
//! [`DomainError`] naming the offending field, which the server reports as a
//! `ValidationException`.
//!
//! Field paths use the model validator's convention: members joined with `.`, list elements as
//! `<list>.<n>.member` counted from 1 (`tasks.2.member.taskProperties.MASK_LENGTH`).
//!
//! ```
//! use sluice_api_model::CreateFlowRequest;
//! use sluice_domain::{Capabilities, validate_flow};
//!
//! let request: CreateFlowRequest = serde_json::from_str(r#"{
//!     "flowName": "f1",
//!     "triggerConfig": {"triggerType": "Scheduled",
//!         "triggerProperties": {"Scheduled": {"scheduleExpression": "rate(5 minutes)"}}},
//!     "sourceFlowConfig": {"connectorType": "S3",
//!         "sourceConnectorProperties": {"S3": {"bucketName": "src"}}},
//!     "destinationFlowConfigList": [{"connectorType": "S3",
//!         "destinationConnectorProperties": {"S3": {"bucketName": "dst"}}}],
//!     "tasks": [{"taskType": "Map_all", "sourceFields": [], "connectorOperator": {"S3": "NO_OP"}}]
//! }"#).unwrap();
//! let flow = validate_flow(&request, &Capabilities::default()).unwrap();
//! assert_eq!(flow.schedule_expression.as_deref(), Some("rate(5minutes)"));
//! ```

pub mod arn;
mod connectors;
mod error;
mod flow;
mod operators;
mod profile;
pub mod schedule;
mod tasks;

pub use connectors::{
    Capabilities, ConnectorCapability, Support, connector_for_union_key, has_profiles,
    min_schedule_interval, requires_profile, union_key, usable_as,
};
pub use error::{ConnectorRole, DomainError, FlowOperation};
pub use flow::{
    FlowDefinitionRef, FlowEndpoint, ValidatedFlow, schema_version_changed, validate_flow,
};
pub use operators::operators_for;
pub use profile::{validate_connector_profile, validate_profile_config};
pub use schedule::Schedule;
pub use sluice_api_model::{ConnectorType, Operator};
pub use tasks::{MAX_PARTITION_KEYS, VALIDATION_ACTIONS};
