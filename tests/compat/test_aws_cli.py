"""The real `aws appflow` CLI (awscli v1) against sluice: the commands a data engineer types."""

from __future__ import annotations

import datetime as dt
import json
import time

from datasets import PEOPLE_CSV
from support import (
    map_task,
    mask_task,
    parse_parquet,
    projection,
    s3_destination,
    s3_source,
    unique,
)


def flow_document(name: str, src_bucket: str, src_prefix: str, dst_bucket: str) -> dict:
    return {
        "flowName": name,
        "description": "People export from the CLI",
        "triggerConfig": {"triggerType": "OnDemand"},
        "sourceFlowConfig": s3_source(src_bucket, src_prefix),
        "destinationFlowConfigList": [
            s3_destination(dst_bucket, "cli-out", "PARQUET", preserve_types=False)
        ],
        "tasks": [
            projection(["id", "name", "email", "country"]),
            map_task("id"),
            map_task("name"),
            map_task("email"),
            map_task("country"),
            mask_task("email", "MASK_ALL"),
            {
                "sourceFields": ["country"],
                "connectorOperator": {"S3": "EQUAL_TO"},
                "taskType": "Filter",
                "taskProperties": {"DATA_TYPE": "string", "VALUE": "FR"},
            },
        ],
        "tags": {"origin": "cli"},
    }


def wait_with_cli(aws_cli, name: str, execution_id: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = aws_cli("describe-flow-execution-records", "--flow-name", name).json
        for record in records["flowExecutions"]:
            if record["executionId"] == execution_id and record["executionStatus"] not in (
                "InProgress",
                "CancelStarted",
            ):
                return record
        time.sleep(0.3)
    raise AssertionError(f"run {execution_id} did not finish in {timeout}s")


def list_flow_names(aws_cli) -> list[str]:
    names = []
    token = None
    while True:
        args = ["list-flows", "--max-results", "100"]
        if token:
            args += ["--next-token", token]
        page = aws_cli(*args).json
        names.extend(flow["flowName"] for flow in page["flows"])
        token = page.get("nextToken")
        if not token:
            return names


def test_cli_flow_lifecycle(aws_cli, s3, src_bucket, dst_bucket, tmp_path):
    prefix = f"cli-in-{unique('p')}"
    s3.put_object(Bucket=src_bucket, Key=f"{prefix}/people.csv", Body=PEOPLE_CSV.encode())
    name = unique("cli-flow")
    flow_file = tmp_path / "flow.json"
    flow_file.write_text(json.dumps(flow_document(name, src_bucket, prefix, dst_bucket)))

    created = aws_cli("create-flow", "--cli-input-json", f"file://{flow_file}").json
    assert created["flowStatus"] == "Active"
    arn = created["flowArn"]
    assert arn.endswith(f":flow/{name}")

    described = aws_cli("describe-flow", "--flow-name", name).json
    assert described["flowName"] == name
    assert described["tags"] == {"origin": "cli"}
    # awscli v1 prints timestamps as received on the wire: epoch seconds.
    created = dt.datetime.fromtimestamp(described["createdAt"], dt.timezone.utc)
    assert abs((dt.datetime.now(dt.timezone.utc) - created).total_seconds()) < 300

    started = aws_cli("start-flow", "--flow-name", name).json
    record = wait_with_cli(aws_cli, name, started["executionId"])
    assert record["executionStatus"] == "Successful", record
    assert record["executionResult"]["recordsProcessed"] == 5

    keys = [
        item["Key"]
        for item in s3.list_objects_v2(Bucket=dst_bucket, Prefix=f"cli-out/{name}/").get(
            "Contents", []
        )
    ]
    assert keys, "the CLI-started run wrote nothing"
    rows = []
    for key in keys:
        body = s3.get_object(Bucket=dst_bucket, Key=key)["Body"].read()
        rows.extend(parse_parquet(body).to_pylist())
    rows.sort(key=lambda row: int(row["id"]))
    assert rows == [
        {"id": "1", "name": "Alice", "email": "*" * len("alice@example.com"), "country": "FR"},
        {"id": "3", "name": "Émilie", "email": "*" * len("emilie@example.com"), "country": "FR"},
    ]

    assert name in list_flow_names(aws_cli)

    tagged = aws_cli("tag-resource", "--resource-arn", arn, "--tags", "team=data,env=dev")
    assert tagged.stdout.strip() == ""
    tags = aws_cli("list-tags-for-resource", "--resource-arn", arn).json["tags"]
    assert tags == {"origin": "cli", "team": "data", "env": "dev"}
    aws_cli("untag-resource", "--resource-arn", arn, "--tag-keys", "env", "origin")
    assert aws_cli("list-tags-for-resource", "--resource-arn", arn).json["tags"] == {"team": "data"}

    aws_cli("delete-flow", "--flow-name", name)
    missing = aws_cli("describe-flow", "--flow-name", name, check=False)
    assert missing.returncode != 0
    assert "ResourceNotFoundException" in missing.stderr, missing.stderr
    assert name not in list_flow_names(aws_cli)


def test_cli_endpoint_from_environment(aws_cli):
    result = aws_cli("list-flows", endpoint_from_env=True)
    assert isinstance(result.json["flows"], list)


def test_cli_reports_validation_errors(aws_cli, src_bucket, dst_bucket, tmp_path):
    document = flow_document(unique("cli-bad"), src_bucket, "in", dst_bucket)
    document["tasks"] = [map_task("id")]
    flow_file = tmp_path / "bad.json"
    flow_file.write_text(json.dumps(document))
    result = aws_cli("create-flow", "--cli-input-json", f"file://{flow_file}", check=False)
    assert result.returncode != 0
    assert "ValidationException" in result.stderr, result.stderr
    assert "You must specify a projection task or a MAP_ALL task" in result.stderr


def test_cli_stop_on_demand_flow(aws_cli, src_bucket, dst_bucket, tmp_path):
    document = flow_document(unique("cli-stop"), src_bucket, "in", dst_bucket)
    flow_file = tmp_path / "flow.json"
    flow_file.write_text(json.dumps(document))
    aws_cli("create-flow", "--cli-input-json", f"file://{flow_file}")
    result = aws_cli("stop-flow", "--flow-name", document["flowName"], check=False)
    assert result.returncode != 0
    assert "UnsupportedOperationException" in result.stderr, result.stderr
