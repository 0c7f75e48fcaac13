//! `fake-salesforce [--port N] [--accounts N]`: starts the fake on loopback, prints one JSON
//! line with its URL and ready-made credentials, and serves until stdin closes or Ctrl-C.
//!
//! The connected app `fake-client-id` / `fake-client-secret` is registered. Tests drive the
//! fake through its `/__admin/` endpoints (records, fields, clock, tokens, authorization codes,
//! faults, counters), on the same port as the Salesforce APIs; the JSON line lists them under
//! `admin`.

use serde_json::{Map, Value, json};
use sluice_fake_salesforce::FakeSalesforce;
use tokio::io::AsyncReadExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut port = 0u16;
    let mut accounts = 0usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--port" => {
                port = value
                    .parse()
                    .map_err(|_| format!("invalid --port {value}"))?
            }
            "--accounts" => {
                accounts = value
                    .parse()
                    .map_err(|_| format!("invalid --accounts {value}"))?
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let fake = FakeSalesforce::start(port).await?;
    fake.register_client("fake-client-id", "fake-client-secret");
    let seeded: Vec<Map<String, Value>> = (0..accounts)
        .filter_map(|i| {
            json!({"Name": format!("Account {i}"), "NumberOfEmployees": i})
                .as_object()
                .cloned()
        })
        .collect();
    fake.insert("Account", seeded);
    let ready = json!({
        "url": fake.url(),
        "access_token": fake.issue_access_token(),
        "refresh_token": fake.issue_refresh_token(),
        "client_id": "fake-client-id",
        "client_secret": "fake-client-secret",
        "admin": format!("{}/__admin", fake.url()),
    });
    println!("{ready}");
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    tokio::select! {
        _ = async { while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {} } => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
