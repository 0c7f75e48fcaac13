//! `sluice serve`: runs the AppFlow-compatible API server.
//!
//! The root access key comes from `SLUICE_ROOT_ACCESS_KEY_ID` / `SLUICE_ROOT_SECRET_ACCESS_KEY`,
//! else from `<data-dir>/root-credentials.json`, else it is generated into that file (mode
//! 0600) and the `export` lines a user needs are printed once. Ctrl-C or SIGTERM stops the
//! server gracefully: in-flight requests finish and running flow runs are canceled.
//!
//! Connector settings come from the environment too: `SLUICE_S3_*` for buckets,
//! `SLUICE_SALESFORCE_*` for Salesforce (connected app, login hosts, JWT signing key; see the
//! Salesforce connector's README).
//!
//! Scheduled flows follow the system clock. For end-to-end tests, `SLUICE_TEST_CLOCK_FILE`
//! names a file holding "now" in epoch milliseconds: the scheduler reads its time from it
//! (re-read a few times a second), so a test moves time by rewriting the file.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use sluice_server::{RootCredentials, Server, ServerConfig};

/// Arguments of `sluice serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SLUICE_LISTEN", default_value = "127.0.0.1:8455")]
    listen: SocketAddr,
    /// Directory for the metadata database, encryption keys and (without an S3 endpoint)
    /// bucket data.
    #[arg(long, env = "SLUICE_DATA_DIR", default_value = "./sluice-data")]
    data_dir: PathBuf,
}

/// Runs the server until it is stopped.
pub async fn run(args: ServeArgs) -> ExitCode {
    init_tracing();
    match serve(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    std::fs::create_dir_all(&args.data_dir).map_err(|error| {
        format!(
            "cannot create the data directory {}: {error}",
            args.data_dir.display()
        )
    })?;
    let mut config =
        ServerConfig::from_env(args.listen, &args.data_dir).map_err(|error| error.to_string())?;
    let mut generated = None;
    if config.root_credentials.is_none() {
        let path = args.data_dir.join("root-credentials.json");
        let (credentials, created) =
            RootCredentials::load_or_generate(&path).map_err(|error| error.to_string())?;
        if created {
            generated = Some((credentials.clone(), path));
        }
        config.root_credentials = Some(credentials);
    }
    let region = config.region.clone();
    let data_dir = config.data_dir.clone();
    let server = Server::bind(config)
        .await
        .map_err(|error| error.to_string())?;
    let address = server.local_addr();

    println!(
        "sluice listening on http://{address} (data dir: {}, storage: {})",
        data_dir.display(),
        server.storage_description()
    );
    if let Some((credentials, path)) = generated {
        println!();
        println!("Generated a root access key, stored in {}:", path.display());
        println!("  export AWS_ACCESS_KEY_ID={}", credentials.access_key_id);
        println!(
            "  export AWS_SECRET_ACCESS_KEY={}",
            credentials.secret_access_key.expose()
        );
        println!("  export AWS_ENDPOINT_URL_APPFLOW=http://{address}");
        println!("  export AWS_DEFAULT_REGION={region}");
        println!();
    }
    server
        .run(shutdown_signal())
        .await
        .map_err(|error| error.to_string())
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A subscriber may already be installed (tests); keeping it is fine.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("received Ctrl-C, shutting down"),
        () = terminate => tracing::info!("received SIGTERM, shutting down"),
    }
}
