//! Benchmark driver for the Salesforce connector against a Salesforce server in another
//! process (the `fake-salesforce` binary); `scripts/bench-salesforce.sh` starts the server and
//! calls it.
//!
//! ```text
//! sf_bench write URL TOKEN RECORDS FIRST
//! sf_bench read URL TOKEN API OUT_DIR [WINDOW_START WINDOW_END]
//! sf_bench drain URL TOKEN API
//! ```
//!
//! `write` sends RECORDS Accounts (numbered from FIRST, every field filled) through the
//! Salesforce destination with `dataTransferApi` `AUTOMATIC`, so Bulk API 2.0 ingest jobs from
//! 1,000 records on. `read` runs a whole flow through the pipeline: Salesforce Account
//! (`Map_all`, `dataTransferApi` API: `BULKV2`, `REST_SYNC` or `AUTOMATIC`, optionally over an
//! incremental window on `LastModifiedDate` given as RFC 3339 instants) to Parquet on S3 — local
//! folders under OUT_DIR, or the server of `SLUICE_TEST_S3_ENDPOINT` (a fresh bucket) when set.
//! `drain` reads every Account through the source alone and drops the batches: the
//! connector's own cost, without the pipeline and the Parquet writer.
//!
//! Both print `records=`, `seconds=` (the transfer alone, from before the first request to the
//! commit), `records_per_second=` and `peak_rss_mib=` (this process only, the server excluded).

use std::sync::Arc;
use std::time::Instant;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use serde_json::json;
use sluice_api_model as model;
use sluice_connector_api::{
    Connector, ConnectorRegistry, IncrementalWindow, NoErrorLocation, Profile, WriteRequest,
};
use sluice_connector_s3::S3Connector;
use sluice_connector_salesforce::{SalesforceConnector, SalesforceSettings};
use sluice_pipeline::{RunProgress, RunSpec, RunStatus, execute};
use sluice_storage::{Storage, StorageConfig};
use sluice_types::Sensitive;
use tokio_util::sync::CancellationToken;

const BUCKET: &str = "sluice-sf-bench";

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

fn profile(url: &str, token: &str) -> Profile {
    Profile {
        name: "bench".into(),
        connector_type: model::ConnectorType::Salesforce,
        connector_label: None,
        properties: json!({"Salesforce": {"instanceUrl": url}}),
        credentials: Sensitive::new(json!({"Salesforce": {"accessToken": token}})),
    }
}

fn salesforce(url: &str) -> Result<SalesforceConnector, Box<dyn std::error::Error>> {
    Ok(SalesforceConnector::new(SalesforceSettings {
        login_url: url.to_owned(),
        ..SalesforceSettings::default()
    })?)
}

fn report(records: u64, seconds: f64) {
    println!("records={records}");
    println!("seconds={seconds:.3}");
    println!("records_per_second={:.0}", records as f64 / seconds);
    println!("peak_rss_mib={:.1}", peak_rss_mib());
}

/// Accounts `first..first + count`, every field of the fake's Account filled but the external
/// id, with deterministic values.
fn accounts(first: u64, count: usize) -> Result<RecordBatch, Box<dyn std::error::Error>> {
    const INDUSTRIES: [&str; 4] = ["Agriculture", "Banking", "Energy", "Technology"];
    let mut name = StringBuilder::new();
    let mut industry = StringBuilder::new();
    let mut revenue = Float64Builder::new();
    let mut employees = Int64Builder::new();
    let mut phone = StringBuilder::new();
    let mut description = StringBuilder::new();
    let mut active = BooleanBuilder::new();
    let mut sla = Date32Builder::new();
    for n in first..first + count as u64 {
        name.append_value(format!("Account {n}, \"Ünïcode\" Ltd"));
        industry.append_value(INDUSTRIES[(n % 4) as usize]);
        revenue.append_value((n % 100_000) as f64 * 1234.5);
        employees.append_value(i64::try_from(n % 50_000)?);
        phone.append_value(format!("+1-555-{:07}", n % 10_000_000));
        description.append_value(format!("Customer since {}; tier {}", 1990 + n % 35, n % 3));
        active.append_value(n % 3 != 0);
        sla.append_value(19_000 + i32::try_from(n % 2_000)?);
    }
    let columns: Vec<(&str, DataType, ArrayRef)> = vec![
        ("Name", DataType::Utf8, Arc::new(name.finish())),
        ("Industry", DataType::Utf8, Arc::new(industry.finish())),
        (
            "AnnualRevenue",
            DataType::Float64,
            Arc::new(revenue.finish()),
        ),
        (
            "NumberOfEmployees",
            DataType::Int64,
            Arc::new(employees.finish()),
        ),
        ("Phone", DataType::Utf8, Arc::new(phone.finish())),
        (
            "Description",
            DataType::Utf8,
            Arc::new(description.finish()),
        ),
        ("IsActive__c", DataType::Boolean, Arc::new(active.finish())),
        (
            "SLAExpirationDate__c",
            DataType::Date32,
            Arc::new(sla.finish()),
        ),
    ];
    let schema = Schema::new(
        columns
            .iter()
            .map(|(name, kind, _)| Field::new(*name, kind.clone(), true))
            .collect::<Vec<_>>(),
    );
    Ok(RecordBatch::try_new(
        Arc::new(schema),
        columns.into_iter().map(|(_, _, array)| array).collect(),
    )?)
}

async fn write(
    url: &str,
    token: &str,
    records: u64,
    first: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let connector = salesforce(url)?;
    let request = WriteRequest {
        flow_name: "bench-write".into(),
        execution_id: "bench".into(),
        destination: serde_json::from_value(json!({
            "connectorType": "Salesforce",
            "connectorProfileName": "bench",
            "destinationConnectorProperties": {"Salesforce": {"object": "Account"}},
        }))?,
        profile: Some(profile(url, token)),
        schema_version: 1,
        run_started_at: chrono::Utc::now(),
        partition_keys: Vec::new(),
        rejected: Arc::new(NoErrorLocation),
    };
    let started = Instant::now();
    let mut writer = connector.open_writer(request).await?;
    let mut sent = 0u64;
    while sent < records {
        let count = (records - sent).min(16_384);
        writer
            .write(accounts(first + sent, usize::try_from(count)?)?)
            .await?;
        sent += count;
    }
    let summary = writer.commit().await?;
    if summary.records_written != records || summary.put_failures != 0 {
        return Err(format!(
            "wrote {} records with {} failures, expected {records}",
            summary.records_written, summary.put_failures
        )
        .into());
    }
    report(records, started.elapsed().as_secs_f64());
    Ok(())
}

#[derive(Debug)]
struct Registry(Vec<Arc<dyn Connector>>);

impl ConnectorRegistry for Registry {
    fn get(
        &self,
        connector_type: model::ConnectorType,
        _: Option<&str>,
    ) -> Option<Arc<dyn Connector>> {
        self.0
            .iter()
            .find(|c| c.connector_type() == connector_type)
            .cloned()
    }

    fn all(&self) -> Vec<Arc<dyn Connector>> {
        self.0.clone()
    }
}

async fn read(
    url: &str,
    token: &str,
    api: &str,
    out_dir: &str,
    window: Option<IncrementalWindow>,
) -> Result<(), Box<dyn std::error::Error>> {
    let (storage, bucket) = match std::env::var("SLUICE_TEST_S3_ENDPOINT")
        .ok()
        .filter(|e| !e.trim().is_empty())
    {
        Some(endpoint) => {
            let bucket = sluice_storage::testing::unique_bucket_name(BUCKET);
            sluice_storage::testing::create_s3_bucket(&endpoint, &bucket).await;
            (sluice_storage::testing::s3_storage(&endpoint), bucket)
        }
        None => (
            Storage::new(StorageConfig::local(out_dir)),
            BUCKET.to_owned(),
        ),
    };
    let registry = Registry(vec![
        Arc::new(S3Connector::new(Arc::new(storage))),
        Arc::new(salesforce(url)?),
    ]);
    let mut source = json!({
        "connectorType": "Salesforce",
        "connectorProfileName": "bench",
        "sourceConnectorProperties": {"Salesforce": {"object": "Account", "dataTransferApi": api}},
    });
    if window.is_some() {
        source["incrementalPullConfig"] = json!({"datetimeTypeFieldName": "LastModifiedDate"});
    }
    let spec = RunSpec {
        flow_name: "salesforce-accounts-bench".into(),
        execution_id: uuid_like(),
        source: serde_json::from_value(source)?,
        destination: serde_json::from_value(json!({
            "connectorType": "S3",
            "destinationConnectorProperties": {"S3": {"bucketName": bucket, "bucketPrefix": "accounts",
                "s3OutputFormatConfig": {"fileType": "PARQUET"}}},
        }))?,
        tasks: serde_json::from_value(json!([
            {"sourceFields": [], "connectorOperator": {"Salesforce": "NO_OP"},
             "taskType": "Map_all", "taskProperties": {}},
        ]))?,
        source_profile: Some(profile(url, token)),
        destination_profile: None,
        schema_version: 1,
        window,
        started_at: chrono::Utc::now(),
    };
    let started = Instant::now();
    let outcome = execute(
        &registry,
        spec,
        Arc::new(RunProgress::default()),
        CancellationToken::new(),
    )
    .await;
    let seconds = started.elapsed().as_secs_f64();
    if outcome.status != RunStatus::Successful {
        return Err(format!("the run failed: {:?}", outcome.message).into());
    }
    println!("files={}", outcome.locations.len());
    report(outcome.progress.records_processed, seconds);
    Ok(())
}

async fn drain(url: &str, token: &str, api: &str) -> Result<(), Box<dyn std::error::Error>> {
    use futures::TryStreamExt;
    let connector = salesforce(url)?;
    let request = sluice_connector_api::ReadRequest {
        flow_name: "bench-drain".into(),
        execution_id: "bench".into(),
        source: serde_json::from_value(json!({
            "connectorType": "Salesforce",
            "connectorProfileName": "bench",
            "sourceConnectorProperties": {"Salesforce": {"object": "Account", "dataTransferApi": api}},
        }))?,
        profile: Some(profile(url, token)),
        projection: None,
        filters: Vec::new(),
        window: None,
        batch_rows: 16 * 1024,
        stats: Arc::new(sluice_connector_api::ReadStats::default()),
    };
    let started = Instant::now();
    let records = connector
        .read(request)
        .await?
        .try_fold(
            0u64,
            |n, batch| async move { Ok(n + batch.num_rows() as u64) },
        )
        .await?;
    report(records, started.elapsed().as_secs_f64());
    Ok(())
}

/// An execution id unique enough for output paths.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("00000000-0000-4000-8000-{:012x}", nanos % (1 << 48))
}

fn instant(text: &str) -> Result<chrono::DateTime<chrono::Utc>, Box<dyn std::error::Error>> {
    Ok(chrono::DateTime::parse_from_rfc3339(text)?.with_timezone(&chrono::Utc))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: sf_bench write URL TOKEN RECORDS FIRST | \
                 sf_bench read URL TOKEN API OUT_DIR [WINDOW_START WINDOW_END] | \
                 sf_bench drain URL TOKEN API";
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [_, "write", url, token, records, first] => {
            write(url, token, records.parse()?, first.parse()?).await
        }
        [_, "read", url, token, api, out_dir] => read(url, token, api, out_dir, None).await,
        [_, "drain", url, token, api] => drain(url, token, api).await,
        [_, "read", url, token, api, out_dir, start, end] => {
            let window = IncrementalWindow {
                field: "LastModifiedDate".into(),
                start: instant(start)?,
                end: instant(end)?,
            };
            read(url, token, api, out_dir, Some(window)).await
        }
        _ => Err(usage.into()),
    }
}
