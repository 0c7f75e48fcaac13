//! `sluice serve`.

use std::process::ExitCode;

/// Arguments of `sluice serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {}

/// Runs the server until it is stopped.
pub async fn run(_args: ServeArgs) -> ExitCode {
    ExitCode::SUCCESS
}
