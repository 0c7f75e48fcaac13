"""Helpers shared by the compatibility tests: checked API calls, raw signed requests, flow
builders, run polling and output readers.

Everything here talks to real processes over HTTP: boto3 and the aws CLI against `sluice serve`,
boto3 against `moto_server` for S3.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable
from unittest import mock

import botocore.auth
import botocore.session
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
ROOT_ACCESS_KEY_ID = "AKSLCOMPATTEST000001"
ROOT_SECRET_ACCESS_KEY = "compat/test/secret/key/0123456789abcdefghij"

# Status codes of the AppFlow error shapes (spec section A.4).
ERROR_STATUS = {
    "ValidationException": 400,
    "ConnectorServerException": 400,
    "UnsupportedOperationException": 400,
    "ConnectorAuthenticationException": 401,
    "ServiceQuotaExceededException": 402,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ConflictException": 409,
    "ThrottlingException": 429,
    "InternalServerException": 500,
}

TERMINAL_STATUSES = {"Successful", "Error", "Canceled"}

_SERVICE_MODEL = botocore.session.get_session().get_service_model("appflow")


def sluice_env(extra: dict | None = None) -> dict:
    """The environment for a sluice process: no inherited `SLUICE_*`/`AWS_*` settings."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("SLUICE_", "AWS_"))
    }
    env["RUST_LOG"] = os.environ.get("SLUICE_TEST_LOG", "info")
    # Plain log text: the logs are files, shown in failure reports.
    env["NO_COLOR"] = "1"
    env.update(extra or {})
    return env


def unique(prefix: str) -> str:
    """A flow/profile name that is unique per call and valid for `[a-zA-Z0-9][\\w!@#.-]+`."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# --------------------------------------------------------------------------------------------
# Shape checks against botocore's own service model.
# --------------------------------------------------------------------------------------------


def check_parsed(value: Any, shape, path: str = "$") -> None:
    """Checks a botocore-parsed value against a model shape: member names, required members,
    Python types and enum values."""
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(value, dict), f"{path}: expected an object, got {value!r}"
        members = shape.members
        for name in shape.required_members:
            assert name in value, f"{path}: required member {name!r} is missing"
        for name, item in value.items():
            if name == "ResponseMetadata" and path == "$":
                continue
            assert name in members, f"{path}: unknown member {name!r}"
            check_parsed(item, members[name], f"{path}.{name}")
        if shape.metadata.get("union"):
            assert len(value) == 1, (
                f"{path}: a union must have exactly one member, got {list(value)}"
            )
    elif kind == "list":
        assert isinstance(value, list), f"{path}: expected a list, got {value!r}"
        for index, item in enumerate(value):
            check_parsed(item, shape.member, f"{path}[{index}]")
    elif kind == "map":
        assert isinstance(value, dict), f"{path}: expected a map, got {value!r}"
        for key, item in value.items():
            assert isinstance(key, str), f"{path}: map key {key!r} is not a string"
            check_parsed(item, shape.value, f"{path}[{key!r}]")
    elif kind == "string":
        assert isinstance(value, str), f"{path}: expected a string, got {value!r}"
        if shape.enum:
            assert value in shape.enum, f"{path}: {value!r} is not one of {shape.enum}"
    elif kind in ("integer", "long"):
        assert isinstance(value, int) and not isinstance(value, bool), (
            f"{path}: expected an integer, got {value!r}"
        )
    elif kind in ("double", "float"):
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (
            f"{path}: expected a number, got {value!r}"
        )
    elif kind == "boolean":
        assert isinstance(value, bool), f"{path}: expected a boolean, got {value!r}"
    elif kind == "timestamp":
        assert isinstance(value, dt.datetime) and value.tzinfo is not None, (
            f"{path}: expected an aware datetime, got {value!r}"
        )
    else:  # pragma: no cover - the AppFlow model has no other kinds
        raise AssertionError(f"{path}: unexpected shape kind {kind}")


def check_wire(value: Any, shape, path: str = "$") -> None:
    """Checks the raw JSON of a response: exact wire member names (botocore silently drops
    unknown ones), no explicit nulls, epoch-second numbers for timestamps."""
    kind = shape.type_name
    assert value is not None, f"{path}: null members must be omitted, not sent as null"
    if kind == "structure":
        assert isinstance(value, dict), f"{path}: expected an object, got {value!r}"
        members = shape.members
        for name, item in value.items():
            assert name in members, (
                f"{path}: unknown wire member {name!r} (known: {sorted(members)})"
            )
            check_wire(item, members[name], f"{path}.{name}")
    elif kind == "list":
        assert isinstance(value, list), f"{path}: expected a list, got {value!r}"
        for index, item in enumerate(value):
            check_wire(item, shape.member, f"{path}[{index}]")
    elif kind == "map":
        assert isinstance(value, dict), f"{path}: expected a map, got {value!r}"
        for key, item in value.items():
            check_wire(item, shape.value, f"{path}[{key!r}]")
    elif kind == "string":
        assert isinstance(value, str), f"{path}: expected a JSON string, got {value!r}"
    elif kind in ("integer", "long"):
        assert isinstance(value, int) and not isinstance(value, bool), (
            f"{path}: expected a JSON integer, got {value!r}"
        )
    elif kind in ("double", "float"):
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (
            f"{path}: expected a JSON number, got {value!r}"
        )
    elif kind == "boolean":
        assert isinstance(value, bool), f"{path}: expected a JSON boolean, got {value!r}"
    elif kind == "timestamp":
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (
            f"{path}: timestamps travel as epoch seconds, got {value!r}"
        )
        # Seconds, not milliseconds: anything after the year 2286 is a unit mistake.
        assert 0 < value < 10_000_000_000, f"{path}: {value!r} does not look like epoch seconds"


# --------------------------------------------------------------------------------------------
# boto3 wrapper that checks every response.
# --------------------------------------------------------------------------------------------


@dataclass
class WireResponse:
    """One HTTP response as botocore received it, before parsing."""

    operation: str
    status: int
    headers: dict
    body: bytes


@dataclass
class WireLog:
    """Every raw response a client received (botocore `before-parse` hook)."""

    responses: list[WireResponse] = field(default_factory=list)

    def record(self, operation_model, response_dict, **_kwargs) -> None:
        body = response_dict.get("body") or b""
        if isinstance(body, str):
            body = body.encode()
        self.responses.append(
            WireResponse(
                operation=operation_model.name,
                status=response_dict.get("status_code"),
                headers={k.lower(): v for k, v in dict(response_dict.get("headers", {})).items()},
                body=bytes(body),
            )
        )

    def last(self, operation: str) -> WireResponse:
        for response in reversed(self.responses):
            if response.operation == operation:
                return response
        raise AssertionError(f"no {operation} response was recorded")


def _operation_name(method: str) -> str:
    return "".join(part.capitalize() for part in method.split("_"))


class Api:
    """Calls AppFlow operations through a boto3 client and checks each response against the
    botocore model, both as parsed and as sent on the wire."""

    def __init__(self, client, wire: WireLog):
        self.client = client
        self.wire = wire

    def call(self, method: str, **params) -> dict:
        operation = _operation_name(method)
        response = getattr(self.client, method)(**params)
        model = _SERVICE_MODEL.operation_model(operation)
        check_parsed(response, model.output_shape)
        raw = self.wire.last(operation)
        assert raw.status == 200, f"{operation}: HTTP {raw.status}"
        assert raw.headers.get("x-amzn-requestid"), f"{operation}: no x-amzn-RequestId header"
        assert response["ResponseMetadata"]["RequestId"] == raw.headers["x-amzn-requestid"]
        assert raw.headers.get("content-type", "").startswith("application/json"), (
            f"{operation}: Content-Type is {raw.headers.get('content-type')!r}"
        )
        body = json.loads(raw.body or b"{}")
        check_wire(body, model.output_shape)
        return response

    def __getattr__(self, method: str) -> Callable[..., dict]:
        if method.startswith("_"):
            raise AttributeError(method)
        return lambda **params: self.call(method, **params)

    def error(self, code: str | set[str], method: str, **params) -> ClientError:
        """Calls an operation that must fail with `code` (or one of a set of codes where AWS's
        choice is not documented); checks status, header and body."""
        operation = _operation_name(method)
        codes = {code} if isinstance(code, str) else set(code)
        with pytest.raises(ClientError) as info:
            getattr(self.client, method)(**params)
        error = info.value
        actual = error.response["Error"]["Code"]
        assert actual in codes, (
            f"{operation}: expected {sorted(codes)}, got {error.response['Error']} "
            f"(HTTP {error.response['ResponseMetadata'].get('HTTPStatusCode')})"
        )
        check_error_response(self.wire.last(operation), actual)
        assert error.response["Error"].get("Message"), f"{operation}: empty error message"
        return error


def check_error_response(raw: WireResponse, code: str) -> None:
    """An AppFlow error: status from the table, `x-amzn-ErrorType`, `{"__type","message"}`."""
    if code in ERROR_STATUS:
        assert raw.status == ERROR_STATUS[code], f"{code}: HTTP {raw.status}"
    assert raw.headers.get("x-amzn-errortype", "").split(":")[0] == code, raw.headers
    assert raw.headers.get("x-amzn-requestid"), "errors must carry x-amzn-RequestId too"
    body = json.loads(raw.body)
    assert body.get("__type", "").split("#")[-1] == code, body
    assert isinstance(body.get("message"), str) and body["message"], body


# --------------------------------------------------------------------------------------------
# Raw signed requests (for inputs botocore refuses to send).
# --------------------------------------------------------------------------------------------


def signed_request(
    endpoint: str,
    method: str,
    path: str,
    body: bytes | str | None = None,
    *,
    access_key: str = ROOT_ACCESS_KEY_ID,
    secret_key: str = ROOT_SECRET_ACCESS_KEY,
    content_type: str | None = "application/json",
    region: str = REGION,
    service: str = "appflow",
    signed_at: dt.datetime | None = None,
    tamper: Callable[[dict], None] | None = None,
) -> requests.Response:
    """Sends `method path` with a real SigV4 signature (botocore's signer). `path` is sent as
    given, so it may carry percent-encoding and a query string. `signed_at` signs as of another
    time (clock-skew tests); `tamper` edits the headers after signing."""
    if isinstance(body, str):
        body = body.encode()
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    request = AWSRequest(method=method, url=endpoint + path, data=body or b"", headers=headers)
    signer = SigV4Auth(Credentials(access_key, secret_key), service, region)
    if signed_at is None:
        signer.add_auth(request)
    else:
        with mock.patch.object(botocore.auth, "get_current_datetime", lambda: signed_at):
            signer.add_auth(request)
    prepared = request.prepare()
    sent_headers = dict(prepared.headers)
    if tamper is not None:
        tamper(sent_headers)
    return requests.request(
        method, prepared.url, headers=sent_headers, data=body or b"", timeout=30
    )


def check_raw_error(response: requests.Response, code: str, status: int | None = None) -> dict:
    """Checks a raw HTTP error response and returns its JSON body."""
    expected_status = status if status is not None else ERROR_STATUS[code]
    assert response.status_code == expected_status, (
        f"expected HTTP {expected_status} {code}, got {response.status_code}: {response.text[:500]}"
    )
    assert response.headers.get("x-amzn-ErrorType", "").split(":")[0] == code, (
        dict(response.headers),
        response.text[:500],
    )
    assert response.headers.get("x-amzn-RequestId"), "errors must carry x-amzn-RequestId"
    body = response.json()
    assert body.get("__type", "").split("#")[-1] == code, body
    assert isinstance(body.get("message"), str) and body["message"], body
    return body


# --------------------------------------------------------------------------------------------
# Flow definitions.
# --------------------------------------------------------------------------------------------


def s3_source(bucket: str, prefix: str, file_type: str = "CSV") -> dict:
    return {
        "connectorType": "S3",
        "sourceConnectorProperties": {
            "S3": {
                "bucketName": bucket,
                "bucketPrefix": prefix,
                "s3InputFormatConfig": {"s3InputFileType": file_type},
            }
        },
    }


def s3_destination(
    bucket: str,
    prefix: str,
    file_type: str = "JSON",
    *,
    prefix_config: dict | None = None,
    aggregation: dict | None = None,
    preserve_types: bool | None = None,
) -> dict:
    output: dict[str, Any] = {"fileType": file_type}
    if prefix_config is not None:
        output["prefixConfig"] = prefix_config
    if aggregation is not None:
        output["aggregationConfig"] = aggregation
    if preserve_types is not None:
        output["preserveSourceDataTyping"] = preserve_types
    return {
        "connectorType": "S3",
        "destinationConnectorProperties": {
            "S3": {"bucketName": bucket, "bucketPrefix": prefix, "s3OutputFormatConfig": output}
        },
    }


def projection(fields: Iterable[str]) -> dict:
    return {
        "sourceFields": list(fields),
        "connectorOperator": {"S3": "PROJECTION"},
        "taskType": "Filter",
        "taskProperties": {},
    }


def map_task(
    source: str, destination: str | None = None, src_type: str = "string", dst_type: str = "string"
) -> dict:
    return {
        "sourceFields": [source],
        "connectorOperator": {"S3": "NO_OP"},
        "destinationField": destination if destination is not None else source,
        "taskType": "Map",
        "taskProperties": {"SOURCE_DATA_TYPE": src_type, "DESTINATION_DATA_TYPE": dst_type},
    }


def map_all(exclude: list[str] | None = None) -> dict:
    properties = {}
    if exclude is not None:
        properties["EXCLUDE_SOURCE_FIELDS_LIST"] = json.dumps(exclude)
    return {
        "sourceFields": [],
        "connectorOperator": {"S3": "NO_OP"},
        "taskType": "Map_all",
        "taskProperties": properties,
    }


def project_and_map(fields: Iterable[str]) -> list[dict]:
    """The usual console output: one PROJECTION task plus one identity Map per field."""
    fields = list(fields)
    return [projection(fields)] + [map_task(name) for name in fields]


def filter_task(field_name: str, operator: str, data_type: str, **properties: str) -> dict:
    task_properties = {"DATA_TYPE": data_type}
    task_properties.update(properties)
    return {
        "sourceFields": [field_name],
        "connectorOperator": {"S3": operator},
        "taskType": "Filter",
        "taskProperties": task_properties,
    }


def mask_task(field_name: str, operator: str, **properties: str) -> dict:
    return {
        "sourceFields": [field_name],
        "connectorOperator": {"S3": operator},
        "taskType": "Mask",
        "taskProperties": properties,
    }


def flow_request(name: str, source: dict, destination: dict, tasks: list[dict], **extra) -> dict:
    request = {
        "flowName": name,
        "triggerConfig": {"triggerType": "OnDemand"},
        "sourceFlowConfig": source,
        "destinationFlowConfigList": [destination],
        "tasks": tasks,
    }
    request.update(extra)
    return request


def epoch_ms(text: str) -> str:
    """ISO-8601 text -> epoch milliseconds as a string (the AppFlow datetime filter format)."""
    instant = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return str(int(round(instant.timestamp() * 1000)))


# --------------------------------------------------------------------------------------------
# Runs and outputs.
# --------------------------------------------------------------------------------------------


def wait_for_run(api: Api, flow_name: str, execution_id: str, timeout: float = 90.0) -> dict:
    """Polls DescribeFlowExecutionRecords until the run reaches a terminal status."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        record = find_execution(api, flow_name, execution_id)
        if record is not None:
            last = record
            if record["executionStatus"] in TERMINAL_STATUSES:
                return record
        time.sleep(0.2)
    raise AssertionError(f"run {execution_id} of {flow_name} did not finish in {timeout}s: {last}")


def find_execution(api: Api, flow_name: str, execution_id: str) -> dict | None:
    token = None
    while True:
        params = {"flowName": flow_name, "maxResults": 100}
        if token:
            params["nextToken"] = token
        page = api.describe_flow_execution_records(**params)
        for record in page.get("flowExecutions", []):
            if record.get("executionId") == execution_id:
                return record
        token = page.get("nextToken")
        if not token:
            return None


def run_flow(api: Api, flow_name: str, timeout: float = 90.0) -> dict:
    started = api.start_flow(flowName=flow_name)
    assert started["executionId"], started
    return wait_for_run(api, flow_name, started["executionId"], timeout)


def create_and_run(api: Api, request: dict, timeout: float = 90.0) -> dict:
    api.create_flow(**request)
    return run_flow(api, request["flowName"], timeout)


def assert_successful(record: dict) -> None:
    message = record.get("executionResult", {}).get("errorInfo", {}).get("executionMessage")
    assert record["executionStatus"] == "Successful", f"run failed: {message!r} ({record})"


def list_keys(s3, bucket: str, prefix: str) -> list[str]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return sorted(keys)


def get_bytes(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def parse_jsonl(data: bytes) -> list[dict]:
    text = data.decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def parse_csv(data: bytes) -> tuple[list[str], list[dict]]:
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    rows = list(reader)
    assert rows, "a CSV output file must at least have a header row"
    header = rows[0]
    return header, [dict(zip(header, row, strict=True)) for row in rows[1:]]


def parse_parquet(data: bytes):
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(data))


def read_jsonl_output(s3, bucket: str, prefix: str) -> list[dict]:
    keys = list_keys(s3, bucket, prefix)
    assert keys, f"no output under s3://{bucket}/{prefix}"
    records = []
    for key in keys:
        records.extend(parse_jsonl(get_bytes(s3, bucket, key)))
    return records


def normalise(records: list[dict], fields: Iterable[str]) -> list[dict]:
    """JSON Lines writers may omit null members or write them as null: compare both alike."""
    fields = list(fields)
    return [{name: record.get(name) for name in fields} for record in records]


def by_id(records: list[dict], key: str = "id") -> list[dict]:
    return sorted(records, key=lambda record: int(record[key]))


# --------------------------------------------------------------------------------------------
# End-to-end runs: inputs in S3, one flow per test, outputs read back from S3.
# --------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """A finished run and where its output went."""

    flow_name: str
    record: dict
    output_prefix: str
    keys: list[str]

    @property
    def execution_id(self) -> str:
        return self.record["executionId"]

    @property
    def message(self) -> str:
        return (
            self.record.get("executionResult", {}).get("errorInfo", {}).get("executionMessage")
            or ""
        )


class E2E:
    """Uploads inputs, creates and runs S3->S3 flows, and reads their outputs."""

    def __init__(self, api: Api, s3, src_bucket: str, dst_bucket: str):
        self.api = api
        self.s3 = s3
        self.src_bucket = src_bucket
        self.dst_bucket = dst_bucket

    def upload(self, files: dict[str, bytes | str], prefix: str | None = None) -> str:
        """Puts `files` (relative name -> content) under a fresh prefix; returns the prefix."""
        prefix = prefix or f"in-{uuid.uuid4().hex[:10]}"
        for name, content in files.items():
            body = content.encode("utf-8") if isinstance(content, str) else content
            self.s3.put_object(Bucket=self.src_bucket, Key=f"{prefix}/{name}", Body=body)
        return prefix

    def request(
        self,
        tasks: list[dict],
        source_prefix: str,
        *,
        input_type: str = "CSV",
        file_type: str = "JSON",
        prefix_config: dict | None = None,
        aggregation: dict | None = None,
        preserve_types: bool | None = None,
        name_prefix: str = "e2e",
        source_bucket: str | None = None,
    ) -> dict:
        name = unique(name_prefix)
        return flow_request(
            name,
            s3_source(source_bucket or self.src_bucket, source_prefix, input_type),
            s3_destination(
                self.dst_bucket,
                f"out-{name}",
                file_type,
                prefix_config=prefix_config,
                aggregation=aggregation,
                preserve_types=preserve_types,
            ),
            tasks,
        )

    def run(
        self,
        tasks: list[dict],
        files: dict[str, bytes | str] | None = None,
        source_prefix: str | None = None,
        timeout: float = 90.0,
        **options,
    ) -> RunResult:
        if source_prefix is None:
            source_prefix = self.upload(files or {})
        request = self.request(tasks, source_prefix, **options)
        record = create_and_run(self.api, request, timeout)
        return self.result(request, record)

    def result(self, request: dict, record: dict) -> RunResult:
        s3_props = request["destinationFlowConfigList"][0]["destinationConnectorProperties"]["S3"]
        output_prefix = f"{s3_props['bucketPrefix']}/{request['flowName']}/"
        return RunResult(
            flow_name=request["flowName"],
            record=record,
            output_prefix=output_prefix,
            keys=list_keys(self.s3, self.dst_bucket, s3_props["bucketPrefix"] + "/"),
        )

    def read(self, key: str) -> bytes:
        return get_bytes(self.s3, self.dst_bucket, key)

    def jsonl(self, result: RunResult) -> list[dict]:
        assert result.keys, f"no output objects for {result.flow_name}"
        records = []
        for key in result.keys:
            records.extend(parse_jsonl(self.read(key)))
        return records
