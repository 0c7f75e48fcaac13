//! Code generated from the botocore model by `tools/gen_api_model.py`.
//!
//! `rustfmt::skip` keeps `cargo fmt` from rewriting the generated file, so the CI check that
//! regenerates it and diffs stays meaningful.
#[rustfmt::skip]
pub mod shapes;
