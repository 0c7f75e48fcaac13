//! AppFlow `2020-08-23` wire types, exactly as botocore spells them.
//!
//! The structs and enums in [`codegen::shapes`] are generated from the vendored
//! `model/service-2.json` (botocore's service model) by `tools/gen_api_model.py`, so member
//! names, optionality and enum spellings cannot drift from what the AWS SDKs send and parse.
//! Validation of raw request JSON against the same model (lengths, patterns, enums, types,
//! required members) lives in [`validate`]; it runs before deserialization so that every
//! malformed request becomes a `ValidationException` naming the offending field.

pub mod codegen;
mod timestamp;
pub mod validate;

pub use codegen::shapes::*;
pub use timestamp::Timestamp;

/// The botocore service model this crate was generated from.
pub const SERVICE_MODEL_JSON: &str = include_str!("../model/service-2.json");
