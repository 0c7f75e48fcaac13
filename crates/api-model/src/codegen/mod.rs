//! Code generated from the botocore model by `tools/gen_api_model.py`.
pub mod shapes;
