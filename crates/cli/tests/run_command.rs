//! `sluice run` as a user runs it: the real binary, a flow file and local-folder buckets.

use std::path::Path;
use std::process::{Command, Output};

const FLOW: &str = r#"{
    "flowName": "people-to-json",
    "triggerConfig": {"triggerType": "OnDemand"},
    "sourceFlowConfig": {"connectorType": "S3", "sourceConnectorProperties":
        {"S3": {"bucketName": "src-bkt", "bucketPrefix": "in",
                "s3InputFormatConfig": {"s3InputFileType": "CSV"}}}},
    "destinationFlowConfigList": [{"connectorType": "S3", "destinationConnectorProperties":
        {"S3": {"bucketName": "dst-bkt", "bucketPrefix": "out",
                "s3OutputFormatConfig": {"fileType": "JSON"}}}}],
    "tasks": [{"sourceFields": [], "connectorOperator": {"S3": "NO_OP"},
               "taskType": "Map_all", "taskProperties": {}}]
}"#;

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(input: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let folder = dir.path().join("data/buckets/src-bkt/in");
        std::fs::create_dir_all(&folder).expect("bucket folder");
        std::fs::write(folder.join("people.csv"), input).expect("input");
        std::fs::write(dir.path().join("flow.json"), FLOW).expect("flow");
        Self { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, flow: &Path, extra: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("run")
            .arg("--data-dir")
            .arg(self.path("data"))
            .args(extra)
            .arg(flow)
            .env_remove("SLUICE_S3_ENDPOINT")
            .env_remove("SLUICE_DATA_DIR")
            .env_remove("RUST_LOG")
            .output()
            .expect("sluice runs")
    }

    fn outputs(&self) -> Vec<String> {
        let mut files = Vec::new();
        let mut folders = vec![self.path("data/buckets/dst-bkt")];
        while let Some(folder) = folders.pop() {
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    folders.push(path);
                } else {
                    files.push(std::fs::read_to_string(&path).expect("utf-8 output"));
                }
            }
        }
        files
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const PEOPLE: &str = "id,name\n1,Zoë\n2,\"Smith, J\"\n3,李\n";

#[test]
fn a_successful_run_prints_an_execution_record_and_exits_zero() {
    let setup = Setup::new(PEOPLE);
    let output = setup.run(&setup.path("flow.json"), &["--output", "json"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        text(&output.stderr)
    );

    let record: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON stdout");
    assert_eq!(record["executionStatus"], "Successful");
    assert_eq!(record["executionResult"]["recordsProcessed"], 3);
    assert_eq!(record["executionResult"]["bytesProcessed"], PEOPLE.len());
    assert!(
        record["executionId"]
            .as_str()
            .is_some_and(|id| id.len() == 36)
    );
    assert!(record["startedAt"].as_f64().is_some());

    let outputs = setup.outputs();
    assert_eq!(outputs.len(), 1);
    let written = record["executionResult"]["bytesWritten"]
        .as_u64()
        .expect("bytesWritten");
    assert_eq!(written, outputs[0].len() as u64);
    assert!(
        outputs[0].contains("\"name\":\"Smith, J\""),
        "{}",
        outputs[0]
    );
    assert!(outputs[0].contains("李"), "{}", outputs[0]);
}

#[test]
fn stats_report_throughput_and_peak_memory() {
    let setup = Setup::new(PEOPLE);
    let output = setup.run(&setup.path("flow.json"), &["--stats"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        text(&output.stderr)
    );
    let stdout = text(&output.stdout);
    assert!(
        stdout.starts_with("Successful: flow people-to-json, execution "),
        "{stdout}"
    );
    assert!(stdout.contains("records processed: 3 "), "{stdout}");
    assert!(stdout.contains(" rows/s, "), "{stdout}");
    assert!(stdout.contains("peak RSS: "), "{stdout}");
}

#[test]
fn a_failed_run_says_where_and_exits_one() {
    let setup = Setup::new("id,name\n1,a\n2\n");
    let output = setup.run(&setup.path("flow.json"), &[]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(stdout.starts_with("Error: flow people-to-json"), "{stdout}");
    assert!(
        stdout.contains("S3 source: s3://src-bkt/in/people.csv line 3: expected 2 fields, found 1"),
        "{stdout}"
    );
    assert!(setup.outputs().is_empty(), "a failed run leaves no output");
}

#[test]
fn an_invalid_definition_exits_two_and_names_the_field() {
    let setup = Setup::new(PEOPLE);
    let bad = setup.path("bad.json");
    std::fs::write(
        &bad,
        FLOW.replace(
            "\"S3\", \"sourceConnectorProperties\"",
            "\"Nope\", \"sourceConnectorProperties\"",
        ),
    )
    .expect("write");
    let output = setup.run(&bad, &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        stderr.contains("sourceFlowConfig.connectorType"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn a_missing_flow_file_exits_two() {
    let setup = Setup::new(PEOPLE);
    let output = setup.run(&setup.path("absent.json"), &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("absent.json"));
}
