"""`sluice serve` on its embedded defaults: no root key in the environment (one is generated,
stored in the data dir and printed as `export` lines), no S3 endpoint (bucket `b` is the folder
`<data-dir>/buckets/b`), state that survives a restart."""

from __future__ import annotations

import re
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from datasets import PEOPLE_CSV
from servers import ServerProcess, free_port, start_process, wait_until_ready
from support import (
    REGION,
    Api,
    WireLog,
    assert_successful,
    create_and_run,
    find_execution,
    flow_request,
    map_all,
    parse_jsonl,
    s3_destination,
    s3_source,
    sluice_env,
    unique,
)

EXPORT = re.compile(r"export\s+(AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY)=['\"]?([^'\"\s]+)")


def printed_keys(server: ServerProcess, timeout: float = 10) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = dict(EXPORT.findall(server.log_path.read_text(errors="replace")))
        if len(found) == 2:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no export lines printed:\n{server.log_tail()}")


def start_default_server(sluice_bin: Path, data_dir: Path, log_path: Path) -> ServerProcess:
    port = free_port()
    server = start_process(
        "sluice-defaults",
        [str(sluice_bin), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data_dir)],
        sluice_env(),
        log_path,
        f"http://127.0.0.1:{port}",
    )
    server.data_dir = data_dir
    wait_until_ready(server, "sluice serve (defaults)")
    return server


def client_for(server: ServerProcess, keys: dict[str, str], wire: WireLog | None = None) -> Api:
    client = boto3.client(
        "appflow",
        region_name=REGION,
        endpoint_url=server.url,
        aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
        config=Config(retries={"total_max_attempts": 1}),
    )
    wire = wire or WireLog()
    client.meta.events.register("before-parse.appflow.*", wire.record)
    return Api(client, wire)


def test_generated_keys_local_buckets_and_restart(sluice_bin, tmp_path):
    data_dir = tmp_path / "sluice-data"
    server = start_default_server(sluice_bin, data_dir, tmp_path / "first.log")
    try:
        keys = printed_keys(server)
        assert re.fullmatch(r"[A-Z0-9]{16,128}", keys["AWS_ACCESS_KEY_ID"]), keys
        assert len(keys["AWS_SECRET_ACCESS_KEY"]) >= 32
        api = client_for(server, keys)
        assert isinstance(api.list_flows()["flows"], list)

        wrong = dict(keys, AWS_SECRET_ACCESS_KEY="x" * 40)
        with pytest.raises(ClientError) as info:
            client_for(server, wrong).client.list_flows()
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

        # Local-folder mode: buckets are folders in the data dir.
        source = data_dir / "buckets" / "quickstart-src" / "in"
        source.mkdir(parents=True)
        (source / "people.csv").write_text(PEOPLE_CSV, encoding="utf-8")
        (data_dir / "buckets" / "quickstart-dst").mkdir(parents=True)
        name = unique("local")
        request = flow_request(
            name,
            s3_source("quickstart-src", "in"),
            s3_destination("quickstart-dst", "out"),
            [map_all(["email"])],
        )
        record = create_and_run(api, request)
        assert_successful(record)
        out_root = data_dir / "buckets" / "quickstart-dst" / "out" / name / record["executionId"]
        files = [p for p in out_root.rglob("*") if p.is_file()]
        assert files, f"nothing under {out_root}"
        rows = [row for file in files for row in parse_jsonl(file.read_bytes())]
        assert sorted(row["id"] for row in rows) == ["1", "2", "3", "4", "5"]
        assert all("email" not in row for row in rows)
    finally:
        server.stop()
    assert server.process.returncode == 0, f"unclean shutdown:\n{server.log_tail()}"

    # A restart reuses the stored key and keeps flows and run records.
    server = start_default_server(sluice_bin, data_dir, tmp_path / "second.log")
    try:
        api = client_for(server, keys)
        flow = api.describe_flow(flowName=name)
        assert flow["lastRunExecutionDetails"]["mostRecentExecutionStatus"] == "Successful"
        records = api.describe_flow_execution_records(flowName=name)["flowExecutions"]
        assert [r["executionId"] for r in records] == [record["executionId"]]
        assert records[0]["executionResult"]["recordsProcessed"] == 5
    finally:
        server.stop()


def local_big_input(data_dir: Path, bucket: str, prefix: str, files: int, rows: int) -> None:
    folder = data_dir / "buckets" / bucket / prefix
    folder.mkdir(parents=True)
    filler = "y" * 80
    for n in range(files):
        lines = ["id,text"] + [f"{i},{filler}" for i in range(rows)]
        (folder / f"part-{n}.csv").write_text("\n".join(lines) + "\n")


def completed_outputs(data_dir: Path, bucket: str) -> list[Path]:
    root = data_dir / "buckets" / bucket
    return [
        p for p in root.rglob("*") if p.is_file() and p.suffix in {".jsonl", ".csv", ".parquet"}
    ]


@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
def test_runs_interrupted_by_the_server_stopping(sluice_bin, tmp_path, stop):
    data_dir = tmp_path / "sluice-data"
    server = start_default_server(sluice_bin, data_dir, tmp_path / "first.log")
    try:
        keys = printed_keys(server)
        api = client_for(server, keys)
        local_big_input(data_dir, "big-src", "in", files=4, rows=150_000)
        (data_dir / "buckets" / "big-dst").mkdir(parents=True)
        name = unique(f"stop-{stop}")
        request = flow_request(
            name, s3_source("big-src", "in"), s3_destination("big-dst", "out"), [map_all()]
        )
        api.create_flow(**request)
        execution_id = api.start_flow(flowName=name)["executionId"]
        assert find_execution(api, name, execution_id)["executionStatus"] == "InProgress"
    finally:
        if stop == "sigkill":
            server.process.kill()
            server.process.wait(timeout=10)
        else:
            server.stop()
    if stop == "sigterm":
        assert server.process.returncode == 0, server.log_tail()

    server = start_default_server(sluice_bin, data_dir, tmp_path / "second.log")
    try:
        api = client_for(server, keys)
        record = find_execution(api, name, execution_id)
        message = record["executionResult"]["errorInfo"]["executionMessage"]
        if stop == "sigterm":
            # A graceful shutdown cancels the run and records it.
            assert record["executionStatus"] == "Canceled", record
        else:
            # A run found in progress at start was interrupted.
            assert record["executionStatus"] == "Error", record
            assert "interrupted" in message, message
        details = api.describe_flow(flowName=name)["lastRunExecutionDetails"]
        assert details["mostRecentExecutionStatus"] == record["executionStatus"]
        assert completed_outputs(data_dir, "big-dst") == []
    finally:
        server.stop()
