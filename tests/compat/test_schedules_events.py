"""Scheduled and event-triggered flows, end to end. A dedicated server reads "now" from a clock
file (`SLUICE_TEST_CLOCK_FILE`), so schedules are driven by moving that clock instead of
waiting, and polls its event sources every 0.2 s (`SLUICE_EVENT_POLL_SECONDS`)."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config

from servers import ServerProcess, free_port, start_process, wait_until_ready
from support import (
    ACCOUNT_ID,
    E2E,
    REGION,
    ROOT_ACCESS_KEY_ID,
    ROOT_SECRET_ACCESS_KEY,
    TERMINAL_STATUSES,
    Api,
    WireLog,
    assert_successful,
    check_raw_error,
    map_all,
    parse_jsonl,
    signed_request,
    sluice_env,
    unique,
)

UTC = dt.timezone.utc


@dataclass
class ClockFile:
    """The server's clock: an epoch-millisecond integer in a file."""

    path: Path
    now: dt.datetime

    def set(self, instant: dt.datetime) -> None:
        self.now = instant
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(str(int(instant.timestamp() * 1000)))
        tmp.replace(self.path)  # atomic: the server never reads half a number

    def advance(self, delta: dt.timedelta) -> None:
        self.set(self.now + delta)


@dataclass
class ClockedServer:
    server: ServerProcess
    clock: ClockFile
    e2e: E2E


@pytest.fixture(scope="module")
def clocked(sluice_bin, moto, s3, src_bucket, dst_bucket, tmp_path_factory, logs_dir):
    base = tmp_path_factory.mktemp("clocked")
    clock = ClockFile(base / "clock", dt.datetime.now(UTC).replace(second=0, microsecond=0))
    clock.set(clock.now)
    port = free_port()
    env = sluice_env(
        {
            "SLUICE_ROOT_ACCESS_KEY_ID": ROOT_ACCESS_KEY_ID,
            "SLUICE_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET_ACCESS_KEY,
            "SLUICE_ACCOUNT_ID": ACCOUNT_ID,
            "SLUICE_S3_ENDPOINT": moto.url,
            "SLUICE_S3_ACCESS_KEY_ID": "moto-access-key",
            "SLUICE_S3_SECRET_ACCESS_KEY": "moto-secret-key",
            "SLUICE_TEST_CLOCK_FILE": str(clock.path),
            "SLUICE_EVENT_POLL_SECONDS": "0.2",
        }
    )
    server = start_process(
        "sluice-clocked",
        [str(sluice_bin), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(base / "d")],
        env,
        logs_dir / "sluice-clocked.log",
        f"http://127.0.0.1:{port}",
    )
    wait_until_ready(server, "sluice serve (test clock)")
    client = boto3.client(
        "appflow",
        region_name=REGION,
        endpoint_url=server.url,
        aws_access_key_id=ROOT_ACCESS_KEY_ID,
        aws_secret_access_key=ROOT_SECRET_ACCESS_KEY,
        config=Config(retries={"total_max_attempts": 1}),
    )
    wire = WireLog()
    client.meta.events.register("before-parse.appflow.*", wire.record)
    yield ClockedServer(server, clock, E2E(Api(client, wire), s3, src_bucket, dst_bucket))
    server.stop()


def records(api: Api, name: str) -> list[dict]:
    return api.describe_flow_execution_records(flowName=name, maxResults=100)["flowExecutions"]


def wait_for_records(api: Api, name: str, count: int, timeout: float = 30) -> list[dict]:
    """Waits until the flow has `count` finished runs; returns them oldest first."""
    deadline = time.monotonic() + timeout
    found: list[dict] = []
    while time.monotonic() < deadline:
        found = records(api, name)
        if len(found) >= count and all(r["executionStatus"] in TERMINAL_STATUSES for r in found):
            assert len(found) == count, f"expected {count} runs, got {len(found)}: {found}"
            return list(reversed(found))
        time.sleep(0.2)
    raise AssertionError(f"{name}: expected {count} finished runs within {timeout}s, got {found}")


def assert_no_new_runs(api: Api, name: str, count: int, wait: float = 2.0) -> None:
    time.sleep(wait)
    assert len(records(api, name)) == count


def scheduled(expression: str, **properties) -> dict:
    return {
        "triggerType": "Scheduled",
        "triggerProperties": {"Scheduled": {"scheduleExpression": expression, **properties}},
    }


def test_rate_schedule_runs_at_activation_and_every_period(clocked):
    e2e, clock = clocked.e2e, clocked.clock
    prefix = e2e.upload({"a.csv": "id,v\n1,a\n2,b\n"})
    request = e2e.request([map_all()], prefix, name_prefix="rate")
    request["triggerConfig"] = scheduled("rate(5minutes)", dataPullMode="Complete")
    name = request["flowName"]
    assert e2e.api.create_flow(**request)["flowStatus"] == "Draft"
    assert_no_new_runs(e2e.api, name, 0, wait=1.0)

    # Activation fires right away, then every five minutes of the server's clock.
    assert e2e.api.start_flow(flowName=name)["flowStatus"] == "Active"
    [first] = wait_for_records(e2e.api, name, 1)
    assert_successful(first)
    assert first["executionResult"]["recordsProcessed"] == 2

    clock.advance(dt.timedelta(minutes=2))
    assert_no_new_runs(e2e.api, name, 1)
    clock.advance(dt.timedelta(minutes=3, seconds=1))
    runs = wait_for_records(e2e.api, name, 2)
    assert_successful(runs[1])

    # A suspended flow does not run, whatever the clock says.
    assert e2e.api.stop_flow(flowName=name)["flowStatus"] == "Suspended"
    clock.advance(dt.timedelta(minutes=20))
    assert_no_new_runs(e2e.api, name, 2)
    details = e2e.api.describe_flow(flowName=name)["lastRunExecutionDetails"]
    assert details["mostRecentExecutionStatus"] == "Successful"


def test_incremental_schedule_reads_consecutive_windows(clocked):
    e2e, clock = clocked.e2e, clocked.clock
    t0 = clock.now

    def iso(instant: dt.datetime) -> str:
        return instant.strftime("%Y-%m-%dT%H:%M:%SZ")

    rows = [
        (1, t0 - dt.timedelta(days=2)),  # before firstExecutionFrom
        (2, t0 - dt.timedelta(hours=1)),  # first window
        (3, t0 - dt.timedelta(seconds=1)),  # first window, just before its end
        (4, t0),  # second window: the first one ends before t0
        (5, t0 + dt.timedelta(minutes=59)),  # second window
        (6, t0 + dt.timedelta(hours=2)),  # later still
    ]
    csv_text = "id,updated_at\n" + "".join(f"{i},{iso(t)}\n" for i, t in rows)
    prefix = e2e.upload({"rows.csv": csv_text})
    request = e2e.request([map_all()], prefix, name_prefix="incr")
    request["sourceFlowConfig"]["incrementalPullConfig"] = {"datetimeTypeFieldName": "updated_at"}
    request["triggerConfig"] = scheduled(
        "rate(1hours)",
        dataPullMode="Incremental",
        firstExecutionFrom=t0 - dt.timedelta(days=1),
    )
    name = request["flowName"]
    e2e.api.create_flow(**request)
    e2e.api.start_flow(flowName=name)

    [first] = wait_for_records(e2e.api, name, 1)
    assert_successful(first)
    assert first["dataPullStartTime"] == t0 - dt.timedelta(days=1)
    assert first["dataPullEndTime"] == t0

    clock.advance(dt.timedelta(hours=1))
    runs = wait_for_records(e2e.api, name, 2)
    second = runs[1]
    assert_successful(second)
    assert second["dataPullStartTime"] == t0
    assert second["dataPullEndTime"] == t0 + dt.timedelta(hours=1)

    result = e2e.result(request, second)

    def ids(execution_id: str) -> list[int]:
        keys = [k for k in result.keys if f"/{execution_id}/" in k]
        return sorted(int(r["id"]) for k in keys for r in parse_jsonl(e2e.read(k)))

    assert ids(first["executionId"]) == [2, 3]
    assert ids(second["executionId"]) == [4, 5]
    e2e.api.stop_flow(flowName=name)


def test_schedule_window_respects_start_and_end_times(clocked):
    e2e, clock = clocked.e2e, clocked.clock
    start = clock.now + dt.timedelta(minutes=10)
    prefix = e2e.upload({"a.csv": "id\n1\n"})
    request = e2e.request([map_all()], prefix, name_prefix="window")
    request["triggerConfig"] = scheduled(
        "rate(10minutes)",
        scheduleStartTime=start,
        scheduleEndTime=start + dt.timedelta(minutes=15),
    )
    name = request["flowName"]
    e2e.api.create_flow(**request)
    e2e.api.start_flow(flowName=name)
    assert_no_new_runs(e2e.api, name, 0, wait=1.5)

    clock.set(start)
    wait_for_records(e2e.api, name, 1)
    clock.set(start + dt.timedelta(minutes=10))
    wait_for_records(e2e.api, name, 2)
    # The next tick (start + 20 min) is after scheduleEndTime.
    clock.set(start + dt.timedelta(minutes=21))
    assert_no_new_runs(e2e.api, name, 2)


# ---------------------------------------------------------------------------------------------
# Event-triggered flows.
# ---------------------------------------------------------------------------------------------


def event_flow(e2e: E2E, prefix: str, name_prefix: str) -> dict:
    request = e2e.request([map_all()], prefix, name_prefix=name_prefix)
    request["triggerConfig"] = {"triggerType": "Event"}
    e2e.api.create_flow(**request)
    return request


def test_webhook_starts_a_run_of_an_active_event_flow(clocked):
    e2e = clocked.e2e
    prefix = e2e.upload({"a.csv": "id\n1\n2\n3\n"})
    request = event_flow(e2e, prefix, "webhook")
    name = request["flowName"]
    path = f"/webhooks/flows/{name}"

    # Not active yet: the event is refused.
    check_raw_error(signed_request(clocked.server.url, "POST", path, b"{}"), "ConflictException")

    assert e2e.api.start_flow(flowName=name)["flowStatus"] == "Active"
    response = signed_request(clocked.server.url, "POST", path, b'{"any": "payload"}')
    assert response.status_code == 200, response.text
    execution_id = response.json()["executionId"]
    [record] = wait_for_records(e2e.api, name, 1)
    assert record["executionId"] == execution_id
    assert_successful(record)
    assert record["executionResult"]["recordsProcessed"] == 3

    # Unsigned calls are refused like any API call.
    unsigned = requests.post(clocked.server.url + path, data=b"{}", timeout=10)
    assert unsigned.status_code == 403


def test_webhook_for_on_demand_or_unknown_flows(clocked):
    e2e = clocked.e2e
    request = e2e.request([map_all()], "in", name_prefix="ondemand")
    e2e.api.create_flow(**request)
    response = signed_request(
        clocked.server.url, "POST", f"/webhooks/flows/{request['flowName']}", b"{}"
    )
    check_raw_error(response, "ValidationException")
    response = signed_request(
        clocked.server.url, "POST", f"/webhooks/flows/{unique('ghost')}", b"{}"
    )
    check_raw_error(response, "ResourceNotFoundException")


def test_new_s3_objects_trigger_runs_that_read_only_them(clocked):
    e2e = clocked.e2e
    prefix = e2e.upload({"existing.csv": "id\n1\n2\n"})
    request = event_flow(e2e, prefix, "s3event")
    name = request["flowName"]
    e2e.api.start_flow(flowName=name)
    # Objects that existed at activation are not events.
    assert_no_new_runs(e2e.api, name, 0, wait=1.5)

    e2e.upload({"new-1.csv": "id\n10\n11\n12\n"}, prefix=prefix)
    [first] = wait_for_records(e2e.api, name, 1)
    assert_successful(first)
    assert first["executionResult"]["recordsProcessed"] == 3

    e2e.upload({"new-2.csv": "id\n20\n"}, prefix=prefix)
    runs = wait_for_records(e2e.api, name, 2)
    assert_successful(runs[1])
    assert runs[1]["executionResult"]["recordsProcessed"] == 1

    result = e2e.result(request, runs[1])
    rows = [
        int(r["id"])
        for k in result.keys
        if f"/{runs[1]['executionId']}/" in k
        for r in parse_jsonl(e2e.read(k))
    ]
    assert rows == [20]

    # After StopFlow, new objects start nothing.
    e2e.api.stop_flow(flowName=name)
    e2e.upload({"new-3.csv": "id\n30\n"}, prefix=prefix)
    assert_no_new_runs(e2e.api, name, 2)


def test_event_flow_is_created_as_draft(clocked):
    e2e = clocked.e2e
    request = event_flow(e2e, f"in-{uuid.uuid4().hex[:6]}", "evdesc")
    flow = e2e.api.describe_flow(flowName=request["flowName"])
    assert flow["flowStatus"] == "Draft"
    assert flow["triggerConfig"] == {"triggerType": "Event"}
    assert flow["sourceFlowConfig"] == request["sourceFlowConfig"]
