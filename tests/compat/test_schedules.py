"""Scheduled incremental flows driven through the real `aws appflow` CLI against `sluice serve`
on a test clock (`SLUICE_TEST_CLOCK_FILE`: "now" in epoch milliseconds, re-read by the
scheduler), with local-folder buckets. Time moves by rewriting the file, so no test waits for
real minutes. Covers: a tick starting a run, the incremental window recorded on the run and
applied to the data (edges, offsets, sub-millisecond digits), Terraform's lowercase
`dataPullMode`, a stop and restart of the server between two scheduled runs with the catch-up
window covering the downtime, StopFlow, and event flows started by the signed webhook and by a
new object under the source prefix."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
from pathlib import Path

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import tool
from servers import ServerProcess, free_port, start_process, wait_until_ready
from support import REGION, ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, sluice_env, unique

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)


def ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


class FileClock:
    """The file the server reads its time from."""

    def __init__(self, path: Path, now: dt.datetime):
        self.path = path
        self.set(now)

    def set(self, now: dt.datetime) -> None:
        # Written then renamed, so the server never reads half a number.
        partial = self.path.with_suffix(".partial")
        partial.write_text(str(ms(now)))
        os.replace(partial, self.path)


def start_server(sluice_bin: Path, data_dir: Path, clock: FileClock, log: Path) -> ServerProcess:
    port = free_port()
    env = sluice_env(
        {
            "SLUICE_ROOT_ACCESS_KEY_ID": ROOT_ACCESS_KEY_ID,
            "SLUICE_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET_ACCESS_KEY,
            "SLUICE_TEST_CLOCK_FILE": str(clock.path),
            "SLUICE_EVENT_POLL_SECONDS": "0.2",
        }
    )
    server = start_process(
        f"sluice-schedules-{log.stem}",
        [str(sluice_bin), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data_dir)],
        env,
        log,
        f"http://127.0.0.1:{port}",
    )
    server.data_dir = data_dir
    wait_until_ready(server, "sluice serve (test clock)")
    return server


def cli(server: ServerProcess, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": ROOT_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": ROOT_SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_PAGER": "",
        }
    )
    completed = subprocess.run(
        [tool("aws"), "appflow", *args, "--endpoint-url", server.url, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    if check:
        assert completed.returncode == 0, (
            f"aws appflow {' '.join(args)} failed:\n{completed.stderr}\n{server.log_tail()}"
        )
    return completed


def cli_json(server: ServerProcess, *args: str) -> dict:
    out = cli(server, *args).stdout
    return json.loads(out) if out.strip() else {}


def write_source(data_dir: Path, name: str, rows: list[tuple[str, str]]) -> None:
    folder = data_dir / "buckets" / "src" / "in"
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["id,updated"] + [f"{row_id},{updated}" for row_id, updated in rows]
    (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def delivered(data_dir: Path, flow: str, execution_id: str) -> list[str]:
    folder = data_dir / "buckets" / "dst" / "out" / flow / execution_id
    ids = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    ids.append(json.loads(line)["id"])
    return sorted(ids)


def finished_runs(server: ServerProcess, flow: str, count: int, timeout: float = 60) -> list[dict]:
    """Waits until the flow has `count` runs, none in progress; returns them oldest first."""
    deadline = time.monotonic() + timeout
    runs: list[dict] = []
    while time.monotonic() < deadline:
        runs = cli_json(server, "describe-flow-execution-records", "--flow-name", flow)[
            "flowExecutions"
        ]
        assert len(runs) <= count, f"more runs than expected: {runs}"
        if len(runs) == count and all(
            run["executionStatus"] not in ("InProgress", "CancelStarted") for run in runs
        ):
            return sorted(runs, key=lambda run: instant(run["startedAt"]))
        time.sleep(0.2)
    raise AssertionError(f"{flow}: expected {count} finished runs, have {runs}")


def instant(value: float | str) -> dt.datetime:
    # CLI v1 prints epoch seconds, v2 ISO-8601 strings.
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return dt.datetime.fromtimestamp(value, tz=dt.timezone.utc)


def window_of(run: dict) -> tuple[dt.datetime, dt.datetime]:
    return instant(run["dataPullStartTime"]), instant(run["dataPullEndTime"])


def flow_definition(name: str) -> list[str]:
    trigger = {
        "triggerType": "Scheduled",
        "triggerProperties": {
            "Scheduled": {
                "scheduleExpression": "rate(5minutes)",
                # What Terraform sends; echoed back canonical.
                "dataPullMode": "incremental",
                "firstExecutionFrom": (T0 - dt.timedelta(hours=1)).timestamp(),
            }
        },
    }
    source = {
        "connectorType": "S3",
        "sourceConnectorProperties": {
            "S3": {
                "bucketName": "src",
                "bucketPrefix": "in",
                "s3InputFormatConfig": {"s3InputFileType": "CSV"},
            }
        },
        "incrementalPullConfig": {"datetimeTypeFieldName": "updated"},
    }
    destination = [
        {
            "connectorType": "S3",
            "destinationConnectorProperties": {
                "S3": {
                    "bucketName": "dst",
                    "bucketPrefix": "out",
                    "s3OutputFormatConfig": {"fileType": "JSON"},
                }
            },
        }
    ]
    tasks = [
        {"sourceFields": ["id"], "connectorOperator": {"S3": "PROJECTION"}, "taskType": "Filter"},
        {
            "sourceFields": ["id"],
            "connectorOperator": {"S3": "NO_OP"},
            "destinationField": "id",
            "taskType": "Map",
            "taskProperties": {"SOURCE_DATA_TYPE": "string", "DESTINATION_DATA_TYPE": "string"},
        },
    ]
    return [
        "--flow-name",
        name,
        "--trigger-config",
        json.dumps(trigger),
        "--source-flow-config",
        json.dumps(source),
        "--destination-flow-config-list",
        json.dumps(destination),
        "--tasks",
        json.dumps(tasks),
    ]


def test_scheduled_incremental_flow_survives_a_restart(sluice_bin, tmp_path):
    data_dir = tmp_path / "data"
    clock = FileClock(tmp_path / "now.ms", T0)
    flow = unique("sched")
    write_source(
        data_dir,
        "a.csv",
        [
            ("older-than-first-window", "2029-12-31T22:59:59.999Z"),
            ("first-window", "2029-12-31T23:59:59.9999999Z"),
            ("at-edge", "2030-01-01T00:00:00Z"),
            ("offset-form", "2030-01-01T01:04:59.999+01:00"),
            ("at-catch-up-edge", "2030-01-01T00:10:00Z"),
        ],
    )
    server = start_server(sluice_bin, data_dir, clock, tmp_path / "first.log")
    try:
        created = cli_json(server, "create-flow", *flow_definition(flow))
        assert created["flowStatus"] == "Draft"
        described = cli_json(server, "describe-flow", "--flow-name", flow)
        scheduled = described["triggerConfig"]["triggerProperties"]["Scheduled"]
        assert scheduled["dataPullMode"] == "Incremental"
        assert scheduled["scheduleExpression"] == "rate(5minutes)"

        started = cli_json(server, "start-flow", "--flow-name", flow)
        assert started["flowStatus"] == "Active"
        # A rate fires at its activation: [firstExecutionFrom, T0).
        (first,) = finished_runs(server, flow, 1)
        assert first["executionStatus"] == "Successful", first
        start, end = window_of(first)
        assert (start, end) == (T0 - dt.timedelta(hours=1), T0)
        assert delivered(data_dir, flow, first["executionId"]) == ["first-window"]
    finally:
        server.stop()

    # Down across two ticks (T0+5m, T0+10m): the restarted server runs once, for the latest.
    clock.set(T0 + dt.timedelta(minutes=11))
    server = start_server(sluice_bin, data_dir, clock, tmp_path / "second.log")
    try:
        runs = finished_runs(server, flow, 2)
        time.sleep(1)
        assert len(finished_runs(server, flow, 2)) == 2, "one catch-up run only"
        second = runs[1]
        assert second["executionStatus"] == "Successful", second
        assert window_of(second) == (T0, T0 + dt.timedelta(minutes=10))
        assert delivered(data_dir, flow, second["executionId"]) == ["at-edge", "offset-form"]

        clock.set(T0 + dt.timedelta(minutes=15))
        third = finished_runs(server, flow, 3)[2]
        assert delivered(data_dir, flow, third["executionId"]) == ["at-catch-up-edge"]

        stopped = cli_json(server, "stop-flow", "--flow-name", flow)
        assert stopped["flowStatus"] == "Suspended"
        clock.set(T0 + dt.timedelta(minutes=30))
        time.sleep(1)
        assert len(finished_runs(server, flow, 3)) == 3
    finally:
        server.stop()


def signed_post(url: str, body: bytes) -> requests.Response:
    request = AWSRequest(
        method="POST", url=url, data=body, headers={"Content-Type": "application/json"}
    )
    credentials = Credentials(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY)
    SigV4Auth(credentials, "appflow", REGION).add_auth(request)
    return requests.post(url, data=body, headers=dict(request.headers), timeout=30)


def test_webhooks_and_new_objects_start_event_flow_runs(sluice_bin, tmp_path):
    data_dir = tmp_path / "data"
    clock = FileClock(tmp_path / "now.ms", T0)
    flow = unique("event")
    write_source(data_dir, "a.csv", [("e1", "2030-01-01T00:00:00Z")])
    server = start_server(sluice_bin, data_dir, clock, tmp_path / "event.log")
    try:
        arguments = flow_definition(flow)
        arguments[arguments.index("--trigger-config") + 1] = json.dumps({"triggerType": "Event"})
        cli_json(server, "create-flow", *arguments)
        cli_json(server, "start-flow", "--flow-name", flow)
        url = f"{server.url}/webhooks/flows/{flow}"
        assert requests.post(url, data=b"{}", timeout=30).status_code == 403
        fired = signed_post(url, b'{"source": "ci"}')
        assert fired.status_code == 200, fired.text
        execution_id = fired.json()["executionId"]
        (run,) = finished_runs(server, flow, 1)
        assert run["executionId"] == execution_id
        assert run["executionStatus"] == "Successful", run
        assert delivered(data_dir, flow, execution_id) == ["e1"]

        # A new object under the source prefix starts a run that reads only it.
        write_source(data_dir, "new.csv", [("n1", "2030-01-01T00:00:00Z")])
        runs = finished_runs(server, flow, 2)
        (by_object,) = [run for run in runs if run["executionId"] != execution_id]
        assert by_object["executionStatus"] == "Successful", by_object
        assert delivered(data_dir, flow, by_object["executionId"]) == ["n1"]
    finally:
        server.stop()
