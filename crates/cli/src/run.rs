//! `sluice run FLOW.json`.

use std::process::ExitCode;

/// Arguments of `sluice run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {}

/// Runs one flow definition once.
pub async fn run(_args: RunArgs) -> ExitCode {
    ExitCode::SUCCESS
}
