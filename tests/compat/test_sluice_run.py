"""`sluice run FLOW.json`: one run of a CreateFlow-shaped definition, no server, buckets as
folders under `<data-dir>/buckets/`. Exit codes: 0 Successful, 1 Error, 2 invalid definition."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from datasets import PEOPLE_CSV
from support import (
    filter_task,
    flow_request,
    map_all,
    map_task,
    parse_jsonl,
    projection,
    s3_destination,
    s3_source,
    sluice_env,
    unique,
)


def run_sluice(binary: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(binary), "run", *args],
        cwd=cwd,
        env=sluice_env({"RUST_LOG": "warn"}),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def write_input(data_dir: Path, bucket: str, key: str, content: str) -> None:
    path = data_dir / "buckets" / bucket / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")


def people_flow(name: str, tasks: list[dict] | None = None) -> dict:
    return flow_request(
        name,
        s3_source("src", "in"),
        s3_destination("dst", "out"),
        tasks
        if tasks is not None
        else [
            projection(["id", "name", "country"]),
            map_task("id", "id", "string", "integer"),
            map_task("name"),
            filter_task("country", "EQUAL_TO", "string", VALUE="FR"),
        ],
    )


def output_files(data_dir: Path, name: str) -> list[Path]:
    root = data_dir / "buckets" / "dst" / "out" / name
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def workspace(tmp_path) -> Path:
    data_dir = tmp_path / "data"
    write_input(data_dir, "src", "in/people.csv", PEOPLE_CSV)
    (data_dir / "buckets" / "dst").mkdir(parents=True)
    return tmp_path


def test_run_json_output_and_local_files(sluice_bin, workspace):
    name = unique("local")
    flow_file = workspace / "flow.json"
    flow_file.write_text(json.dumps(people_flow(name)))
    data_dir = workspace / "data"

    completed = run_sluice(
        sluice_bin,
        str(flow_file),
        "--data-dir",
        str(data_dir),
        "--output",
        "json",
        cwd=workspace,
    )
    assert completed.returncode == 0, completed.stderr
    record = json.loads(completed.stdout)
    assert record["executionStatus"] == "Successful", record
    assert record["executionId"]
    assert record["executionResult"]["recordsProcessed"] == 5
    assert record["executionResult"]["bytesProcessed"] == len(PEOPLE_CSV.encode())

    files = output_files(data_dir, name)
    assert files, "no output written"
    assert all(record["executionId"] in file.parts for file in files), files
    rows = [row for file in files for row in parse_jsonl(file.read_bytes())]
    rows.sort(key=lambda row: row["id"])
    assert rows == [{"id": 1, "name": "Alice"}, {"id": 3, "name": "Émilie"}]
    assert record["executionResult"]["bytesWritten"] == sum(f.stat().st_size for f in files)


def test_run_text_output_and_stats(sluice_bin, workspace):
    flow_file = workspace / "flow.json"
    flow_file.write_text(json.dumps(people_flow(unique("text"))))
    completed = run_sluice(
        sluice_bin,
        str(flow_file),
        "--data-dir",
        str(workspace / "data"),
        "--stats",
        cwd=workspace,
    )
    assert completed.returncode == 0, completed.stderr
    output = completed.stdout + completed.stderr
    assert "Successful" in output, output
    assert "rows/s" in output, output


def test_run_text_summary_counts_dropped_records_as_filtered(sluice_bin, workspace):
    data_dir = workspace / "data"
    rows = [{"id": i, "qty": (None if i % 3 == 0 else i)} for i in range(1, 11)]
    write_input(data_dir, "src", "v/rows.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    validate = {
        "sourceFields": ["qty"],
        "connectorOperator": {"S3": "VALIDATE_NON_NULL"},
        "taskType": "Validate",
        "taskProperties": {"VALIDATION_ACTION": "DropRecord"},
    }
    name = unique("dropped")
    request = flow_request(
        name, s3_source("src", "v", "JSON"), s3_destination("dst", "out"), [map_all(), validate]
    )
    flow_file = workspace / "flow.json"
    flow_file.write_text(json.dumps(request))
    completed = run_sluice(sluice_bin, str(flow_file), "--data-dir", str(data_dir), cwd=workspace)
    assert completed.returncode == 0, completed.stderr
    # 3, 6 and 9 have no qty: dropped and counted as filtered, not as put failures.
    assert re.search(
        r"records processed: 10\b.*filtered out: 3\b.*put failures: 0\b", completed.stdout
    ), completed.stdout
    rows_out = [r for f in output_files(data_dir, name) for r in parse_jsonl(f.read_bytes())]
    assert sorted(r["id"] for r in rows_out) == [1, 2, 4, 5, 7, 8, 10]


def test_run_default_data_dir_is_relative_to_the_working_directory(sluice_bin, tmp_path):
    write_input(tmp_path / "sluice-data", "src", "in/people.csv", PEOPLE_CSV)
    (tmp_path / "sluice-data" / "buckets" / "dst").mkdir()
    name = unique("defaultdir")
    flow_file = tmp_path / "flow.json"
    flow_file.write_text(json.dumps(people_flow(name, [map_all()])))
    completed = run_sluice(sluice_bin, "flow.json", "--output", "json", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["executionResult"]["recordsProcessed"] == 5
    assert output_files(tmp_path / "sluice-data", name)


def test_run_invalid_definition_exits_2(sluice_bin, workspace):
    flow_file = workspace / "flow.json"
    flow_file.write_text(json.dumps(people_flow(unique("invalid"), [map_task("id")])))
    completed = run_sluice(
        sluice_bin, str(flow_file), "--data-dir", str(workspace / "data"), cwd=workspace
    )
    assert completed.returncode == 2, (completed.returncode, completed.stdout, completed.stderr)
    output = completed.stdout + completed.stderr
    assert "You must specify a projection task or a MAP_ALL task" in output, output


@pytest.mark.parametrize(
    "content",
    ['{"flowName": "x1", ', "[]", '{"flowName": 7}', ""],
    ids=["truncated", "array", "wrong-type", "empty"],
)
def test_run_malformed_definition_exits_2(sluice_bin, workspace, content):
    flow_file = workspace / "broken.json"
    flow_file.write_text(content)
    completed = run_sluice(
        sluice_bin, str(flow_file), "--data-dir", str(workspace / "data"), cwd=workspace
    )
    assert completed.returncode == 2, (completed.returncode, completed.stdout, completed.stderr)
    assert "panicked" not in completed.stderr


def test_run_missing_definition_file(sluice_bin, workspace):
    completed = run_sluice(
        sluice_bin,
        str(workspace / "nope.json"),
        "--data-dir",
        str(workspace / "data"),
        cwd=workspace,
    )
    assert completed.returncode not in (0, 1), completed
    assert "nope.json" in completed.stdout + completed.stderr
    assert "panicked" not in completed.stderr


def test_run_failure_exits_1_and_leaves_no_output(sluice_bin, workspace):
    data_dir = workspace / "data"
    write_input(data_dir, "src", "bad/rows.csv", "id,name\n1,a\n2,b,c\n")
    name = unique("failing")
    request = flow_request(name, s3_source("src", "bad"), s3_destination("dst", "out"), [map_all()])
    flow_file = workspace / "flow.json"
    flow_file.write_text(json.dumps(request))
    completed = run_sluice(
        sluice_bin,
        str(flow_file),
        "--data-dir",
        str(data_dir),
        "--output",
        "json",
        cwd=workspace,
    )
    assert completed.returncode == 1, (completed.stdout, completed.stderr)
    record = json.loads(completed.stdout)
    assert record["executionStatus"] == "Error"
    message = record["executionResult"]["errorInfo"]["executionMessage"]
    assert "bad/rows.csv" in message, message
    assert re.search(r"line\D{0,3}3\b", message), message
    assert output_files(data_dir, name) == []


def test_run_missing_source_bucket_exits_1(sluice_bin, workspace):
    request = flow_request(
        unique("nobucket"), s3_source("absent", "in"), s3_destination("dst", "out"), [map_all()]
    )
    flow_file = workspace / "flow.json"
    flow_file.write_text(json.dumps(request))
    completed = run_sluice(
        sluice_bin,
        str(flow_file),
        "--data-dir",
        str(workspace / "data"),
        "--output",
        "json",
        cwd=workspace,
    )
    assert completed.returncode == 1, (completed.stdout, completed.stderr)
    record = json.loads(completed.stdout)
    assert "absent" in record["executionResult"]["errorInfo"]["executionMessage"]
