"""Runs that fail or are stopped: malformed input, missing buckets, failed conversions,
cancellation and forced deletion. A failed or cancelled run must leave no output objects."""

from __future__ import annotations

import re
import time
import uuid

import pytest

from support import (
    assert_successful,
    create_and_run,
    map_all,
    map_task,
    projection,
    run_flow,
    wait_for_run,
)

GOOD_CSV = "id,name,amount\n1,a,1\n2,b,2\n"
BAD_CSV = "id,name,amount\n1,a,1\n2,b,2,EXTRA\n3,c,3\n"


def test_malformed_csv_row_fails_the_run_and_names_key_and_line(e2e):
    prefix = e2e.upload({"a-good.csv": GOOD_CSV, "bad.csv": BAD_CSV})
    result = e2e.run([map_all()], source_prefix=prefix, name_prefix="badcsv")
    assert result.record["executionStatus"] == "Error", result.record
    assert f"{prefix}/bad.csv" in result.message, result.message
    assert re.search(r"line\D{0,3}3\b", result.message), result.message
    # The good file was read first, but nothing of the failed run is visible.
    assert result.keys == [], f"a failed run left output: {result.keys}"


def test_line_numbers_count_physical_lines_after_quoted_newlines(e2e):
    content = 'id,note\n1,"two\nlines"\n2,"three\nphysical\nlines"\n3,x,extra\n'
    prefix = e2e.upload({"quoted.csv": content})
    result = e2e.run([map_all()], source_prefix=prefix, name_prefix="qnl")
    assert result.record["executionStatus"] == "Error", result.record
    # Header 1, record 1 on lines 2-3, record 2 on lines 4-6: the bad record is on line 7.
    assert re.search(r"line\D{0,3}7\b", result.message), result.message
    assert result.keys == []


@pytest.mark.parametrize(
    "header", ["id,name,id", "id,,name"], ids=["duplicate-column", "empty-column"]
)
def test_bad_csv_header_fails_the_run(e2e, header):
    prefix = e2e.upload({"h.csv": f"{header}\n1,2,3\n"})
    result = e2e.run([map_all()], source_prefix=prefix, name_prefix="hdr")
    assert result.record["executionStatus"] == "Error", result.record
    assert f"{prefix}/h.csv" in result.message, result.message
    assert result.keys == []


def test_malformed_json_line_fails_the_run(e2e):
    prefix = e2e.upload({"data.jsonl": '{"id": 1}\n{"id": 2\n{"id": 3}\n'})
    result = e2e.run([map_all()], source_prefix=prefix, input_type="JSON", name_prefix="badjson")
    assert result.record["executionStatus"] == "Error", result.record
    assert f"{prefix}/data.jsonl" in result.message, result.message
    assert re.search(r"line\D{0,3}2\b", result.message), result.message
    assert result.keys == []


def test_missing_source_bucket_fails_the_run(e2e):
    bucket = f"no-such-bucket-{uuid.uuid4().hex[:10]}"
    request = e2e.request([map_all()], "in", source_bucket=bucket, name_prefix="nobucket")
    record = create_and_run(e2e.api, request)
    assert record["executionStatus"] == "Error", record
    message = record["executionResult"]["errorInfo"]["executionMessage"]
    assert bucket in message, message
    assert e2e.result(request, record).keys == []


@pytest.mark.parametrize(
    ("value", "target"),
    [("not-a-number", "integer"), ("99999999999999999999", "integer"), ("1.5.2", "double")],
)
def test_failed_type_conversion_fails_the_run(e2e, value, target):
    prefix = e2e.upload({"c.csv": f"id,quantity\n1,7\n2,{value}\n"})
    tasks = [
        projection(["id", "quantity"]),
        map_task("id"),
        map_task("quantity", "quantity", "string", target),
    ]
    result = e2e.run(tasks, source_prefix=prefix, name_prefix="conv")
    assert result.record["executionStatus"] == "Error", result.record
    assert "quantity" in result.message, result.message
    assert result.keys == []


def test_last_run_details_follow_runs_and_records_page_newest_first(e2e):
    prefix = e2e.upload({"a.csv": GOOD_CSV})
    request = e2e.request([map_all()], prefix, name_prefix="lastrun")
    name = request["flowName"]
    first = create_and_run(e2e.api, request)
    assert_successful(first)
    details = e2e.api.describe_flow(flowName=name)["lastRunExecutionDetails"]
    assert details["mostRecentExecutionStatus"] == "Successful"

    e2e.upload({"b.csv": BAD_CSV}, prefix=prefix)
    second = run_flow(e2e.api, name)
    assert second["executionStatus"] == "Error"
    details = e2e.api.describe_flow(flowName=name)["lastRunExecutionDetails"]
    assert details["mostRecentExecutionStatus"] == "Error"
    assert "b.csv" in details["mostRecentExecutionMessage"], details
    assert details["mostRecentExecutionTime"] >= first["startedAt"]

    records = e2e.api.describe_flow_execution_records(flowName=name)["flowExecutions"]
    assert [r["executionId"] for r in records] == [second["executionId"], first["executionId"]]

    page = e2e.api.describe_flow_execution_records(flowName=name, maxResults=1)
    assert [r["executionId"] for r in page["flowExecutions"]] == [second["executionId"]]
    assert page["nextToken"]
    page = e2e.api.describe_flow_execution_records(
        flowName=name, maxResults=1, nextToken=page["nextToken"]
    )
    assert [r["executionId"] for r in page["flowExecutions"]] == [first["executionId"]]
    assert not page.get("nextToken")

    # The successful run's output is still there; the failed one added nothing.
    keys = e2e.result(request, second).keys
    assert keys and all(f"/{first['executionId']}/" in key for key in keys), keys


def large_csv(rows: int) -> bytes:
    filler = "x" * 60
    lines = ["id,name,amount,text"]
    lines.extend(f"{i},name-{i},{i % 1000}.25,{filler}" for i in range(rows))
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def large_input(e2e) -> str:
    """Enough input that a run is still in progress a moment after it starts."""
    return e2e.upload({f"part-{n}.csv": large_csv(150_000) for n in range(4)})


def test_cancel_a_running_execution(e2e, large_input):
    request = e2e.request([map_all()], large_input, name_prefix="cancel")
    name = request["flowName"]
    e2e.api.create_flow(**request)
    started = e2e.api.start_flow(flowName=name)
    execution_id = started["executionId"]

    response = e2e.api.cancel_flow_executions(flowName=name, executionIds=[execution_id])
    assert response.get("invalidExecutions", []) == [], (
        "the run finished before it could be cancelled; make the input larger"
    )
    record = wait_for_run(e2e.api, name, execution_id, timeout=120)
    assert record["executionStatus"] == "Canceled", record
    assert e2e.result(request, record).keys == [], "a cancelled run left output"
    details = e2e.api.describe_flow(flowName=name)["lastRunExecutionDetails"]
    assert details["mostRecentExecutionStatus"] == "Canceled"

    # A finished run cannot be cancelled again.
    again = e2e.api.cancel_flow_executions(flowName=name, executionIds=[execution_id])
    assert again["invalidExecutions"] == [execution_id]


def test_cancel_without_ids_cancels_every_active_run(e2e, large_input):
    request = e2e.request([map_all()], large_input, name_prefix="cancelall")
    name = request["flowName"]
    e2e.api.create_flow(**request)
    ids = [e2e.api.start_flow(flowName=name)["executionId"] for _ in range(2)]
    response = e2e.api.cancel_flow_executions(flowName=name)
    assert response.get("invalidExecutions", []) == []
    for execution_id in ids:
        record = wait_for_run(e2e.api, name, execution_id, timeout=120)
        assert record["executionStatus"] == "Canceled", record


def test_delete_running_flow_needs_force(e2e, large_input):
    request = e2e.request([map_all()], large_input, name_prefix="forcedel")
    name = request["flowName"]
    e2e.api.create_flow(**request)
    execution_id = e2e.api.start_flow(flowName=name)["executionId"]
    e2e.api.error("ConflictException", "delete_flow", flowName=name)
    e2e.api.delete_flow(flowName=name, forceDelete=True)
    e2e.api.error("ResourceNotFoundException", "describe_flow", flowName=name)
    # The run was stopped with the flow: nothing of it becomes visible.
    time.sleep(2)
    assert e2e.result(request, {"executionId": execution_id}).keys == []
