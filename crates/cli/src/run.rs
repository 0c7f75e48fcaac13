//! `sluice run FLOW.json`: run a CreateFlow-shaped definition once, without a server.
//!
//! The file is validated exactly as `CreateFlow` validates a request (the botocore model, then
//! the domain rules), then handed to the same engine the server uses. Only connectors without
//! connector profiles can run here (S3), because profiles and their credentials live in the
//! server's metadata store. Buckets are folders under `<data-dir>/buckets/` unless
//! `SLUICE_S3_ENDPOINT` points at an S3-compatible server.
//!
//! Exit codes: 0 the run succeeded, 1 the run failed, 2 the definition is invalid or cannot
//! be read, 130 the run was interrupted (Ctrl-C).

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use sluice_api_model as model;
use sluice_connector_api::IncrementalWindow;
use sluice_pipeline::{RunOutcome, RunProgress, RunSpec, RunStatus};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Arguments of `sluice run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The flow definition: a JSON object shaped like an AppFlow `CreateFlow` request.
    #[arg(value_name = "FLOW.json")]
    flow: PathBuf,
    /// Data directory; buckets are the folders `<data-dir>/buckets/<bucket>` unless
    /// `SLUICE_S3_ENDPOINT` is set.
    #[arg(
        long,
        value_name = "DIR",
        env = "SLUICE_DATA_DIR",
        default_value = "./sluice-data"
    )]
    data_dir: PathBuf,
    /// Output format of the run's result.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    /// Also print elapsed time, throughput and peak memory.
    #[arg(long)]
    stats: bool,
}

/// How `sluice run` prints the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputFormat {
    /// A short human-readable summary.
    Text,
    /// An AppFlow `ExecutionRecord` object.
    Json,
}

/// A definition that cannot run: printed as `error: ...`, exit code 2.
#[derive(Debug, thiserror::Error)]
enum DefinitionError {
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path}: {errors}")]
    Invalid { path: String, errors: String },
    #[error(
        "{path}: {field} names the connector profile '{profile}', but `sluice run` supports only \
         connectors without profiles (S3); run this flow with `sluice serve` instead"
    )]
    ProfileNamed {
        path: String,
        field: &'static str,
        profile: String,
    },
}

/// Runs one flow definition once.
pub async fn run(args: RunArgs) -> ExitCode {
    init_logging();
    let clock = Instant::now();
    let request = match load_definition(&args.flow) {
        Ok(request) => request,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };

    let storage =
        sluice_storage::Storage::new(sluice_storage::StorageConfig::from_env(&args.data_dir));
    tracing::debug!(storage = %storage.describe(), "storage ready");
    let registry = sluice_connectors::Registry::new(Arc::new(storage));

    let spec = run_spec(request, Utc::now());
    let execution_id = spec.execution_id.clone();
    let flow_name = spec.flow_name.clone();
    let started_at = spec.started_at;
    let progress = Arc::new(RunProgress::default());
    let cancel = CancellationToken::new();
    let interrupt = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: canceling the run");
                cancel.cancel();
            }
        }
    });

    let outcome = sluice_pipeline::execute(&registry, spec, progress, cancel).await;
    interrupt.abort();
    let elapsed = clock.elapsed();
    let finished_at = Utc::now();

    let stats = args.stats.then(|| RunStats::measure(&outcome, elapsed));
    match args.output {
        OutputFormat::Text => {
            print!("{}", text_summary(&flow_name, &execution_id, &outcome));
            if let Some(stats) = &stats {
                print!("{stats}");
            }
        }
        OutputFormat::Json => {
            let record = execution_record(&execution_id, &outcome, started_at, finished_at);
            match serde_json::to_string_pretty(&record) {
                Ok(json) => println!("{json}"),
                Err(error) => eprintln!("error: cannot render the execution record: {error}"),
            }
            // stdout stays a single JSON document; the figures go to stderr.
            if let Some(stats) = &stats {
                eprint!("{stats}");
            }
        }
    }
    match outcome.status {
        RunStatus::Successful => ExitCode::SUCCESS,
        RunStatus::Error => ExitCode::FAILURE,
        RunStatus::Canceled => ExitCode::from(130),
    }
}

fn init_logging() {
    // The run's failure is already the summary's message; the engine's own "run failed" warning
    // (meant for server logs) would only repeat it.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,sluice_pipeline=error"));
    // A second initialisation (tests, embedding) is harmless, so its error is ignored.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// Reads and validates the definition the way `CreateFlow` does.
fn load_definition(path: &Path) -> Result<model::CreateFlowRequest, DefinitionError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|error| DefinitionError::Read {
        path: shown.clone(),
        error,
    })?;
    let request: model::CreateFlowRequest =
        sluice_api_model::validate::parse_request("CreateFlowRequest", &bytes).map_err(
            |errors| DefinitionError::Invalid {
                path: shown.clone(),
                errors: errors.to_string(),
            },
        )?;
    sluice_domain::validate_flow(&request, &sluice_domain::Capabilities::default()).map_err(
        |error| DefinitionError::Invalid {
            path: shown.clone(),
            errors: error.to_string(),
        },
    )?;

    if let Some(profile) = &request.source_flow_config.connector_profile_name {
        return Err(DefinitionError::ProfileNamed {
            path: shown,
            field: "sourceFlowConfig.connectorProfileName",
            profile: profile.clone(),
        });
    }
    for destination in &request.destination_flow_config_list {
        if let Some(profile) = &destination.connector_profile_name {
            return Err(DefinitionError::ProfileNamed {
                path: shown,
                field: "destinationFlowConfigList.connectorProfileName",
                profile: profile.clone(),
            });
        }
    }
    Ok(request)
}

/// Builds the engine's input. Validation guarantees exactly one destination.
fn run_spec(request: model::CreateFlowRequest, now: DateTime<Utc>) -> RunSpec {
    let window = incremental_window(&request, now);
    let model::CreateFlowRequest {
        flow_name,
        source_flow_config,
        mut destination_flow_config_list,
        tasks,
        ..
    } = request;
    let destination = destination_flow_config_list.swap_remove(0);
    RunSpec {
        flow_name,
        execution_id: uuid::Uuid::new_v4().to_string(),
        source: source_flow_config,
        destination,
        tasks,
        source_profile: None,
        destination_profile: None,
        schema_version: 1,
        window,
        started_at: now,
    }
}

/// For an incremental flow this is its first run: AppFlow pulls from `firstExecutionFrom`
/// (default 30 days back) up to now minus `scheduleOffset`.
fn incremental_window(
    request: &model::CreateFlowRequest,
    now: DateTime<Utc>,
) -> Option<IncrementalWindow> {
    let scheduled = request
        .trigger_config
        .trigger_properties
        .as_ref()?
        .scheduled
        .as_ref()?;
    if scheduled.data_pull_mode != Some(model::DataPullMode::Incremental) {
        return None;
    }
    let field = request
        .source_flow_config
        .incremental_pull_config
        .as_ref()?
        .datetime_type_field_name
        .clone()?;
    let offset = TimeDelta::seconds(scheduled.schedule_offset.unwrap_or(0));
    let end = now - offset;
    let start = scheduled
        .first_execution_from
        .map(|from| from.0)
        .unwrap_or_else(|| now - TimeDelta::days(30))
        .min(end);
    Some(IncrementalWindow { field, start, end })
}

fn execution_record(
    execution_id: &str,
    outcome: &RunOutcome,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
) -> model::ExecutionRecord {
    model::ExecutionRecord {
        execution_id: Some(execution_id.to_owned()),
        execution_status: Some(outcome.status.execution_status()),
        execution_result: Some(outcome.execution_result()),
        started_at: Some(started_at.into()),
        last_updated_at: Some(finished_at.into()),
        ..model::ExecutionRecord::default()
    }
}

/// The most output locations listed in the text summary.
const SHOWN_LOCATIONS: usize = 20;

fn text_summary(flow_name: &str, execution_id: &str, outcome: &RunOutcome) -> String {
    let progress = &outcome.progress;
    let mut text = String::new();
    let status = outcome.status.execution_status();
    let _ = writeln!(text, "{status}: flow {flow_name}, execution {execution_id}");
    if let Some(message) = &outcome.message {
        let _ = writeln!(text, "  {message}");
    }
    let _ = writeln!(
        text,
        "  records processed: {} (filtered out: {}, put failures: {})",
        thousands(progress.records_processed),
        thousands(progress.records_filtered),
        thousands(progress.put_failures)
    );
    let _ = writeln!(
        text,
        "  bytes read: {}, bytes written: {}",
        human_bytes(progress.bytes_processed),
        human_bytes(progress.bytes_written)
    );
    for location in outcome.locations.iter().take(SHOWN_LOCATIONS) {
        let _ = writeln!(text, "  wrote {location}");
    }
    if outcome.locations.len() > SHOWN_LOCATIONS {
        let more = outcome.locations.len() - SHOWN_LOCATIONS;
        let _ = writeln!(text, "  ... and {more} more files");
    }
    for location in &outcome.error_locations {
        let _ = writeln!(text, "  rejected records in {location}");
    }
    text
}

/// `--stats` figures.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RunStats {
    elapsed: Duration,
    rows_per_second: f64,
    input_megabytes_per_second: f64,
    peak_rss_bytes: Option<u64>,
}

impl RunStats {
    fn measure(outcome: &RunOutcome, elapsed: Duration) -> Self {
        let seconds = elapsed.as_secs_f64().max(f64::EPSILON);
        Self {
            elapsed,
            rows_per_second: outcome.progress.records_processed as f64 / seconds,
            input_megabytes_per_second: outcome.progress.bytes_processed as f64 / 1e6 / seconds,
            peak_rss_bytes: std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|status| peak_rss_bytes(&status)),
        }
    }
}

impl std::fmt::Display for RunStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "  elapsed: {:.3} s", self.elapsed.as_secs_f64())?;
        writeln!(
            f,
            "  throughput: {} rows/s, {:.1} MB/s of input",
            thousands(self.rows_per_second.round() as u64),
            self.input_megabytes_per_second
        )?;
        match self.peak_rss_bytes {
            Some(bytes) => writeln!(f, "  peak RSS: {:.1} MB", bytes as f64 / 1e6),
            None => writeln!(f, "  peak RSS: unknown (no /proc/self/status)"),
        }
    }
}

/// `VmHWM` (the resident set's high-water mark) from `/proc/self/status`, in bytes.
fn peak_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let mut parts = line["VmHWM:".len()..].split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => value.checked_mul(1024),
        Some(_) => None,
    }
}

/// `1234567` -> `1,234,567`.
fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Decimal units (B, kB, MB, GB), as storage and network tools report sizes.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1_000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1e3;
    let mut unit = 0;
    while value >= 1_000.0 && unit + 1 < UNITS.len() {
        value /= 1e3;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_pipeline::ProgressSnapshot;

    fn definition(json: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut file, json.as_bytes()).expect("write");
        file
    }

    const VALID: &str = r#"{
        "flowName": "csv-to-json",
        "triggerConfig": {"triggerType": "OnDemand"},
        "sourceFlowConfig": {"connectorType": "S3", "sourceConnectorProperties":
            {"S3": {"bucketName": "src-bkt", "bucketPrefix": "in"}}},
        "destinationFlowConfigList": [{"connectorType": "S3", "destinationConnectorProperties":
            {"S3": {"bucketName": "dst-bkt", "s3OutputFormatConfig": {"fileType": "JSON"}}}}],
        "tasks": [{"sourceFields": [], "connectorOperator": {"S3": "NO_OP"},
                   "taskType": "Map_all", "taskProperties": {}}]
    }"#;

    #[test]
    fn a_valid_definition_loads() {
        let file = definition(VALID);
        let request = load_definition(file.path()).expect("valid");
        assert_eq!(request.flow_name, "csv-to-json");
        let spec = run_spec(request, Utc::now());
        assert_eq!(spec.flow_name, "csv-to-json");
        assert_eq!(spec.tasks.len(), 1);
        assert!(spec.window.is_none());
        assert!(uuid::Uuid::parse_str(&spec.execution_id).is_ok());
    }

    #[test]
    fn model_violations_name_the_field_and_file() {
        let file = definition(&VALID.replace("csv-to-json", "bad name"));
        let message = load_definition(file.path())
            .expect_err("invalid")
            .to_string();
        assert!(
            message.starts_with(&file.path().display().to_string()),
            "{message}"
        );
        assert!(message.contains("flowName"), "{message}");
    }

    #[test]
    fn malformed_json_is_a_definition_error() {
        let file = definition("{\"flowName\": ");
        let error = load_definition(file.path()).expect_err("invalid");
        assert!(matches!(error, DefinitionError::Invalid { .. }), "{error}");
    }

    #[test]
    fn missing_file_is_reported() {
        let error = load_definition(Path::new("/nonexistent/flow.json")).expect_err("missing");
        assert!(
            error
                .to_string()
                .starts_with("cannot read /nonexistent/flow.json"),
            "{error}"
        );
    }

    #[test]
    fn domain_rules_apply() {
        // Neither a projection nor Map_all: AppFlow's task validation error.
        let map_only = VALID.replace(
            r#"{"sourceFields": [], "connectorOperator": {"S3": "NO_OP"},
                   "taskType": "Map_all", "taskProperties": {}}"#,
            r#"{"sourceFields": ["id"], "connectorOperator": {"S3": "NO_OP"},
                   "taskType": "Map", "destinationField": "id", "taskProperties": {}}"#,
        );
        assert_ne!(map_only, VALID);
        let file = definition(&map_only);
        let message = load_definition(file.path())
            .expect_err("invalid")
            .to_string();
        assert!(message.to_lowercase().contains("projection"), "{message}");
    }

    #[test]
    fn a_named_profile_is_refused() {
        let with_profile = VALID.replace(
            "\"sourceFlowConfig\": {\"connectorType\": \"S3\",",
            "\"sourceFlowConfig\": {\"connectorType\": \"S3\", \"connectorProfileName\": \"p1\",",
        );
        let file = definition(&with_profile);
        let message = load_definition(file.path())
            .expect_err("refused")
            .to_string();
        assert!(
            message.contains("sourceFlowConfig.connectorProfileName"),
            "{message}"
        );
        assert!(message.contains("'p1'"), "{message}");
    }

    #[test]
    fn incremental_flows_pull_their_first_window() {
        let incremental = VALID
            .replace(
                "\"triggerConfig\": {\"triggerType\": \"OnDemand\"}",
                r#""triggerConfig": {"triggerType": "Scheduled", "triggerProperties": {"Scheduled":
                    {"scheduleExpression": "rate(1hours)", "dataPullMode": "Incremental",
                     "scheduleOffset": 60}}}"#,
            )
            .replace(
                "\"sourceConnectorProperties\"",
                "\"incrementalPullConfig\": {\"datetimeTypeFieldName\": \"updated_at\"}, \
                 \"sourceConnectorProperties\"",
            );
        let request: model::CreateFlowRequest =
            serde_json::from_str(&incremental).expect("valid JSON");
        let now = Utc::now();
        let window = incremental_window(&request, now).expect("incremental");
        assert_eq!(window.field, "updated_at");
        assert_eq!(window.end, now - TimeDelta::seconds(60));
        assert_eq!(window.start, now - TimeDelta::days(30));
    }

    #[test]
    fn peak_rss_parses_vmhwm() {
        let status = "Name:\tsluice\nVmPeak:\t  200000 kB\nVmHWM:\t   151234 kB\nVmRSS:\t 1 kB\n";
        assert_eq!(peak_rss_bytes(status), Some(151_234 * 1024));
        assert_eq!(peak_rss_bytes("VmHWM:\tlots kB\n"), None);
        assert_eq!(peak_rss_bytes("Name:\tx\n"), None);
    }

    #[test]
    fn numbers_are_readable() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(u64::MAX), "18,446,744,073,709,551,615");
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_000), "1.0 kB");
        assert_eq!(human_bytes(350_000_000), "350.0 MB");
        assert_eq!(human_bytes(2_500_000_000), "2.5 GB");
        assert_eq!(human_bytes(u64::MAX), "18446744.1 TB");
    }

    #[test]
    fn json_output_is_an_execution_record() {
        let outcome = RunOutcome {
            status: RunStatus::Error,
            progress: ProgressSnapshot {
                records_processed: 3,
                ..ProgressSnapshot::default()
            },
            message: Some("S3 source: in/a.csv line 2: expected 2 fields, found 1".to_owned()),
            locations: Vec::new(),
            error_locations: Vec::new(),
            source_fields: Vec::new(),
        };
        let started = DateTime::from_timestamp(1_700_000_000, 0).expect("valid");
        let finished = DateTime::from_timestamp_millis(1_700_000_001_500).expect("valid");
        let record = execution_record("e-1", &outcome, started, finished);
        let json = serde_json::to_value(&record).expect("serializable");
        assert_eq!(json["executionId"], "e-1");
        assert_eq!(json["executionStatus"], "Error");
        assert_eq!(json["executionResult"]["recordsProcessed"], 3);
        assert_eq!(
            json["executionResult"]["errorInfo"]["executionMessage"],
            "S3 source: in/a.csv line 2: expected 2 fields, found 1"
        );
        assert_eq!(json["executionResult"]["errorInfo"]["putFailuresCount"], 0);
        assert_eq!(json["startedAt"], 1_700_000_000);
        assert_eq!(json["lastUpdatedAt"], 1_700_000_001.5);
    }

    #[test]
    fn text_summary_reports_failure_and_counts() {
        let outcome = RunOutcome {
            status: RunStatus::Successful,
            progress: ProgressSnapshot {
                records_processed: 1_000_000,
                bytes_processed: 340_000_000,
                ..ProgressSnapshot::default()
            },
            message: None,
            locations: (0..25)
                .map(|index| format!("dst/out/f-{index}.parquet"))
                .collect(),
            error_locations: vec!["s3://err/f/e/error-records-00001.jsonl".to_owned()],
            source_fields: Vec::new(),
        };
        let text = text_summary("f", "e", &outcome);
        assert!(
            text.starts_with("Successful: flow f, execution e\n"),
            "{text}"
        );
        assert!(text.contains("records processed: 1,000,000"), "{text}");
        assert!(text.contains("bytes read: 340.0 MB"), "{text}");
        assert!(text.contains("wrote dst/out/f-19.parquet"), "{text}");
        assert!(!text.contains("f-20.parquet"), "{text}");
        assert!(text.contains("... and 5 more files"), "{text}");
        assert!(
            text.contains("rejected records in s3://err/f/e/error-records-00001.jsonl"),
            "{text}"
        );
    }
}
