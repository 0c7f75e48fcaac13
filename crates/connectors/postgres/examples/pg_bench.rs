//! Benchmark driver: reads a table through the Postgres connector and writes it either to a
//! Parquet file on local disk (with the Parquet writer of S3 destinations, source types kept)
//! or into a table of another database, then prints rows, seconds and peak RSS. `scripts/bench-postgres.sh` prepares the data and calls it.
//!
//! ```text
//! pg_bench parquet HOST PORT USER PASSWORD DATABASE TABLE PARALLELISM OUT.parquet
//! pg_bench postgres HOST PORT USER PASSWORD DATABASE TABLE PARALLELISM TARGET_DATABASE
//! pg_bench null HOST PORT USER PASSWORD DATABASE TABLE PARALLELISM -
//! ```

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use sluice_api_model as model;
use sluice_connector_api::{Connector, Profile, ReadRequest, ReadStats, WriteRequest};
use sluice_connector_postgres::PostgresConnector;
use sluice_types::Sensitive;

fn profile(host: &str, port: &str, user: &str, password: &str, database: &str) -> Profile {
    Profile {
        name: "bench".into(),
        connector_type: model::ConnectorType::CustomConnector,
        connector_label: Some("Postgres".into()),
        properties: serde_json::json!({"CustomConnector": {"profileProperties":
            {"host": host, "port": port, "database": database, "sslmode": "disable"}}}),
        credentials: Sensitive::new(serde_json::json!({"CustomConnector": {
            "authenticationType": "BASIC", "basic": {"username": user, "password": password}}})),
    }
}

/// Peak resident set size of this process, in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [
        _,
        mode,
        host,
        port,
        user,
        password,
        database,
        table,
        parallelism,
        target,
    ] = args.as_slice()
    else {
        return Err(
            "usage: pg_bench parquet|postgres|null HOST PORT USER PASSWORD DATABASE TABLE \
                    PARALLELISM OUT.parquet|TARGET_DATABASE"
                .into(),
        );
    };
    let source = profile(host, port, user, password, database);
    let request = ReadRequest {
        flow_name: "bench".into(),
        execution_id: "bench".into(),
        source: serde_json::from_value(serde_json::json!({
            "connectorType": "CustomConnector",
            "sourceConnectorProperties": {"CustomConnector": {"entityName": table,
                "customProperties": {"parallelism": parallelism}}}
        }))?,
        profile: Some(source),
        projection: None,
        filters: Vec::new(),
        window: None,
        batch_rows: 16_384,
        stats: Arc::new(ReadStats::default()),
    };
    let started = Instant::now();
    let mut stream = PostgresConnector.read(request).await?;
    let mut rows = 0usize;
    match mode.as_str() {
        // The Parquet writer of S3 destinations with `preserveSourceDataTyping: true`; its
        // encoded row groups are drained to the file as they close, as uploads drain them.
        "parquet" => {
            let mut file = std::io::BufWriter::new(std::fs::File::create(target)?);
            let mut writer = sluice_formats::new_writer(
                sluice_formats::OutputFormat::Parquet,
                &sluice_formats::WriterOptions {
                    preserve_source_data_typing: true,
                    ..sluice_formats::WriterOptions::default()
                },
            );
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows();
                writer.write(&batch)?;
                file.write_all(&writer.take_flushed())?;
            }
            file.write_all(&writer.finish()?)?;
            file.flush()?;
        }
        // Reads and drops the batches: the cost of the source alone.
        "null" => {
            while let Some(batch) = stream.next().await {
                rows += batch?.num_rows();
            }
        }
        "postgres" => {
            let destination = profile(host, port, user, password, target);
            let mut sink = PostgresConnector
                .open_writer(WriteRequest {
                    flow_name: "bench".into(),
                    execution_id: "bench".into(),
                    destination: serde_json::from_value(serde_json::json!({
                        "connectorType": "CustomConnector",
                        "destinationConnectorProperties": {"CustomConnector": {"entityName": table}}
                    }))?,
                    profile: Some(destination),
                    schema_version: 1,
                    run_started_at: chrono::Utc::now(),
                    partition_keys: Vec::new(),
                    rejected: std::sync::Arc::new(sluice_connector_api::NoErrorLocation),
                })
                .await?;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                rows += batch.num_rows();
                sink.write(batch).await?;
            }
            sink.commit().await?;
        }
        other => return Err(format!("unknown mode {other}").into()),
    }
    println!(
        "mode={mode} rows={rows} seconds={:.3} peak_rss_mib={:.1}",
        started.elapsed().as_secs_f64(),
        peak_rss_mib()
    );
    Ok(())
}
