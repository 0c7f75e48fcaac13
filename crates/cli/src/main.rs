//! The `sluice` binary.
//!
//! - `sluice serve` runs the AppFlow-compatible API server with the embedded defaults.
//! - `sluice run FLOW.json` runs a CreateFlow-shaped definition once, without a server.

mod run;
mod serve;

use clap::{Parser, Subcommand};

/// Sluice: self-hosted, AppFlow-compatible data flows.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API server.
    Serve(serve::ServeArgs),
    /// Run a CreateFlow-shaped flow definition once and print the run's result.
    Run(run::RunArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Run(args) => run::run(args).await,
        }
    })
}
