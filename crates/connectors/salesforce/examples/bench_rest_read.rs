//! Throughput of a REST read from the fake Salesforce server on loopback:
//! `cargo run --release -p sluice-connector-salesforce --example bench_rest_read -- 100000`.
//! Prints records/s and the process's peak RSS (server and connector share the process).

use std::sync::Arc;
use std::time::Instant;

use futures::TryStreamExt;
use serde_json::json;
use sluice_connector_api::{Connector, Profile, ReadRequest, ReadStats};
use sluice_connector_salesforce::{SalesforceConnector, SalesforceSettings};
use sluice_fake_salesforce::FakeSalesforce;
use sluice_types::Sensitive;

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let records: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let fake = FakeSalesforce::start(0).await?;
    let rows = (0..records)
        .filter_map(|i| {
            json!({"Name": format!("Account {i}"), "NumberOfEmployees": i, "AnnualRevenue": i as f64 * 1.5,
                   "Industry": "Banking", "Phone": "+1 555 0100"})
            .as_object()
            .cloned()
        })
        .collect();
    fake.insert("Account", rows);
    let rss_loaded = peak_rss_kib().unwrap_or(0);
    let token = fake.issue_access_token();
    // Baseline: the fake alone (query, paging, HTTP), bodies fetched but not parsed.
    let http = reqwest::Client::new();
    let baseline = Instant::now();
    let mut next = Some("/services/data/v58.0/query?q=SELECT+Id,IsDeleted,Name,Industry,AnnualRevenue,NumberOfEmployees,Phone,Description,IsActive__c,SLAExpirationDate__c,External_Id__c,CreatedDate,LastModifiedDate,SystemModstamp+FROM+Account".to_owned());
    let mut bytes = 0usize;
    while let Some(path) = next.take() {
        let body = http
            .get(format!("{}{path}", fake.url()))
            .bearer_auth(&token)
            .send()
            .await?
            .bytes()
            .await?;
        bytes += body.len();
        // Only the locator is needed; it sits near the start of each page.
        let text = String::from_utf8_lossy(&body[..body.len().min(400)]).into_owned();
        next = text
            .split("\"nextRecordsUrl\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_owned);
    }
    let baseline = baseline.elapsed();
    println!(
        "fake server alone: {} MiB of pages in {:.2} s ({:.0} records/s)",
        bytes / (1 << 20),
        baseline.as_secs_f64(),
        records as f64 / baseline.as_secs_f64()
    );
    let connector = SalesforceConnector::new(SalesforceSettings {
        login_url: fake.url(),
        ..Default::default()
    })?;
    let profile = Profile {
        name: "bench".into(),
        connector_type: sluice_api_model::ConnectorType::Salesforce,
        connector_label: None,
        properties: json!({"Salesforce": {"instanceUrl": fake.url()}}),
        credentials: Sensitive::new(
            json!({"Salesforce": {"accessToken": fake.issue_access_token()}}),
        ),
    };
    let request = ReadRequest {
        flow_name: "bench".into(),
        execution_id: "bench".into(),
        source: serde_json::from_value(json!({"connectorType": "Salesforce",
            "sourceConnectorProperties": {"Salesforce": {"object": "Account"}}}))?,
        profile: Some(profile),
        projection: None,
        filters: Vec::new(),
        window: None,
        batch_rows: 2000,
        stats: Arc::new(ReadStats::default()),
    };
    let started = Instant::now();
    let stream = connector.read(request).await?;
    let (rows, batches) = stream
        .try_fold((0usize, 0usize), |(rows, batches), batch| async move {
            Ok((rows + batch.num_rows(), batches + 1))
        })
        .await?;
    let elapsed = started.elapsed();
    println!(
        "{rows} records in {batches} batches, {:.2} s, {:.0} records/s; peak RSS {} MiB ({} MiB after loading the fake)",
        elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64(),
        peak_rss_kib().unwrap_or(0) / 1024,
        rss_loaded / 1024
    );
    Ok(())
}
