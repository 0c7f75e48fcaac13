"""The restJson1 wire contract below the SDK: malformed bodies and wrong JSON types that botocore
would refuse to send, SigV4 failures, routing, request ids. Requests are signed with botocore's
own SigV4 signer and sent with `requests`."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from support import (
    REGION,
    ROOT_ACCESS_KEY_ID,
    ROOT_SECRET_ACCESS_KEY,
    check_raw_error,
    flow_request,
    project_and_map,
    s3_destination,
    s3_source,
    signed_request,
    unique,
)


@pytest.fixture
def valid_flow(src_bucket, dst_bucket):
    def build(name: str | None = None) -> dict:
        return flow_request(
            name or unique("wire"),
            s3_source(src_bucket, "in"),
            s3_destination(dst_bucket, "out"),
            project_and_map(["id"]),
        )

    return build


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"not json at all",
        b'{"flowName": "x1",}',
        b"[]",
        b'"a string"',
        b"42",
        b"null",
        b"",
        b'{"flowName": "\xff\xfe"}',
        b'{"flowName": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
    ids=[
        "truncated",
        "not-json",
        "trailing-comma",
        "array",
        "string",
        "number",
        "null",
        "empty",
        "invalid-utf8",
        "deep-nesting",
    ],
)
def test_malformed_create_flow_body_is_a_validation_error(endpoint, body):
    response = signed_request(endpoint, "POST", "/create-flow", body)
    check_raw_error(response, "ValidationException")


def mutate(request: dict, path: str, value) -> dict:
    """Sets `value` at a dotted path (list indexes as numbers)."""
    target = request
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    last = parts[-1]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return request


@pytest.mark.parametrize(
    ("path", "value", "field_name"),
    [
        ("flowName", 123, "flowName"),
        ("flowName", None, "flowName"),
        ("flowName", ["x"], "flowName"),
        ("tasks", "not-a-list", "tasks"),
        ("tasks", {"0": "x"}, "tasks"),
        ("tasks.0.sourceFields", "id", "sourceFields"),
        ("tasks.0.taskType", "Explode", "taskType"),
        ("tasks.0.taskProperties", {"NOT_A_PROPERTY_KEY": "x"}, "taskProperties"),
        ("tasks.0.taskProperties", ["DATA_TYPE"], "taskProperties"),
        ("triggerConfig", "OnDemand", "triggerConfig"),
        ("triggerConfig.triggerType", "Sometimes", "triggerType"),
        ("triggerConfig.triggerType", True, "triggerType"),
        ("sourceFlowConfig.connectorType", "NotAConnector", "connectorType"),
        ("sourceFlowConfig.sourceConnectorProperties.S3.bucketName", 5, "bucketName"),
        ("sourceFlowConfig.sourceConnectorProperties.S3.bucketName", "ab", "bucketName"),
        ("sourceFlowConfig.sourceConnectorProperties", {}, "sourceConnectorProperties"),
        ("destinationFlowConfigList", [], "destinationFlowConfigList"),
        ("destinationFlowConfigList", {"S3": {}}, "destinationFlowConfigList"),
        (
            "destinationFlowConfigList.0.destinationConnectorProperties.S3.s3OutputFormatConfig"
            ".fileType",
            "XML",
            "fileType",
        ),
        (
            "destinationFlowConfigList.0.destinationConnectorProperties.S3.s3OutputFormatConfig"
            ".aggregationConfig",
            {"targetFileSize": "big"},
            "targetFileSize",
        ),
        ("description", 3.5, "description"),
        ("tags", ["a", "b"], "tags"),
        ("tags", {"k": 1}, "tags"),
        ("clientToken", "", "clientToken"),
    ],
)
def test_wrong_types_and_values_are_validation_errors(
    endpoint, valid_flow, path, value, field_name
):
    request = mutate(valid_flow(), path, value)
    response = signed_request(endpoint, "POST", "/create-flow", json.dumps(request))
    body = check_raw_error(response, "ValidationException")
    assert field_name in body["message"], f"message does not name {field_name}: {body['message']}"


def test_missing_required_member_names_it(endpoint, valid_flow):
    request = valid_flow()
    del request["triggerConfig"]
    response = signed_request(endpoint, "POST", "/create-flow", json.dumps(request))
    body = check_raw_error(response, "ValidationException")
    assert "triggerConfig" in body["message"]


def test_bad_schedule_timestamp_is_a_validation_error(endpoint, valid_flow):
    request = valid_flow()
    request["triggerConfig"] = {
        "triggerType": "Scheduled",
        "triggerProperties": {
            "Scheduled": {"scheduleExpression": "rate(1hours)", "scheduleStartTime": "soon"}
        },
    }
    response = signed_request(endpoint, "POST", "/create-flow", json.dumps(request))
    body = check_raw_error(response, "ValidationException")
    assert "scheduleStartTime" in body["message"]


def test_unknown_members_are_ignored(endpoint, valid_flow):
    request = valid_flow()
    request["someFutureMember"] = {"x": 1}
    request["tasks"][0]["anotherUnknown"] = True
    response = signed_request(endpoint, "POST", "/create-flow", json.dumps(request))
    assert response.status_code == 200, response.text
    assert response.json()["flowStatus"] == "Active"


@pytest.mark.parametrize(
    "body",
    [
        {"maxResults": 0},
        {"maxResults": 101},
        {"maxResults": "10"},
        {"maxResults": 2.5},
        {"nextToken": "definitely-not-a-token"},
        {"nextToken": "has spaces"},
        {"nextToken": ""},
    ],
)
def test_bad_pagination_parameters(endpoint, body):
    response = signed_request(endpoint, "POST", "/list-flows", json.dumps(body))
    check_raw_error(response, "ValidationException")


def test_list_flows_with_empty_object_body(endpoint):
    response = signed_request(endpoint, "POST", "/list-flows", b"{}")
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["flows"], list)


def test_describe_flow_with_null_name(endpoint):
    response = signed_request(endpoint, "POST", "/describe-flow", b'{"flowName": null}')
    check_raw_error(response, "ValidationException")


def test_too_many_execution_ids(endpoint, valid_flow, api):
    request = valid_flow()
    api.create_flow(**request)
    body = {"flowName": request["flowName"], "executionIds": [f"id-{i}" for i in range(101)]}
    response = signed_request(endpoint, "POST", "/cancel-flow-executions", json.dumps(body))
    check_raw_error(response, "ValidationException")


def test_every_operation_rejects_malformed_json(endpoint):
    paths = [
        "/cancel-flow-executions",
        "/create-connector-profile",
        "/create-flow",
        "/delete-connector-profile",
        "/delete-flow",
        "/describe-connector",
        "/describe-connector-entity",
        "/describe-connector-profiles",
        "/describe-connectors",
        "/describe-flow",
        "/describe-flow-execution-records",
        "/list-connector-entities",
        "/list-connectors",
        "/list-flows",
        "/register-connector",
        "/reset-connector-metadata-cache",
        "/start-flow",
        "/stop-flow",
        "/unregister-connector",
        "/update-connector-profile",
        "/update-connector-registration",
        "/update-flow",
    ]
    for path in paths:
        response = signed_request(endpoint, "POST", path, b'{"broken": ')
        assert response.status_code == 400, f"{path}: HTTP {response.status_code} {response.text}"
        check_raw_error(response, "ValidationException")


# ---------------------------------------------------------------------------------------------
# Authentication.
# ---------------------------------------------------------------------------------------------


def appflow_with(endpoint: str, access_key: str, secret_key: str, region: str = REGION):
    return boto3.client(
        "appflow",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(retries={"total_max_attempts": 1}),
    )


def test_wrong_secret_is_rejected_with_403(endpoint):
    client = appflow_with(endpoint, ROOT_ACCESS_KEY_ID, "wrong-secret-key")
    with pytest.raises(ClientError) as info:
        client.list_flows()
    error = info.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Code"] == "InvalidSignatureException"


def test_unknown_access_key_is_rejected_with_403(endpoint):
    client = appflow_with(endpoint, "AKSLUNKNOWNKEY000000", ROOT_SECRET_ACCESS_KEY)
    with pytest.raises(ClientError) as info:
        client.list_flows()
    error = info.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Code"] == "UnrecognizedClientException"


def test_missing_authorization_is_rejected(endpoint):
    response = requests.post(
        endpoint + "/list-flows",
        data=b"{}",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    check_raw_error(response, "MissingAuthenticationTokenException", status=403)


def test_garbled_authorization_header_is_rejected(endpoint):
    def garble(headers):
        headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=garbage"

    response = signed_request(endpoint, "POST", "/list-flows", b"{}", tamper=garble)
    assert response.status_code == 403, response.text
    assert response.headers.get("x-amzn-ErrorType", "").split(":")[0] in {
        "IncompleteSignatureException",
        "InvalidSignatureException",
    }


def test_body_changed_after_signing_is_rejected(endpoint):
    request = AWSRequest(
        method="POST",
        url=endpoint + "/list-flows",
        data=b'{"maxResults": 5}',
        headers={"Content-Type": "application/json"},
    )
    SigV4Auth(Credentials(ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY), "appflow", REGION).add_auth(
        request
    )
    headers = dict(request.prepare().headers)
    response = requests.post(
        endpoint + "/list-flows", data=b'{"maxResults": 6}', headers=headers, timeout=10
    )
    check_raw_error(response, "InvalidSignatureException", status=403)


def test_stale_signature_is_rejected(endpoint):
    an_hour_ago = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(hours=1)
    response = signed_request(endpoint, "POST", "/list-flows", b"{}", signed_at=an_hour_ago)
    body = check_raw_error(response, "InvalidSignatureException", status=403)
    assert "expired" in body["message"].lower()


def test_signature_for_another_service_is_rejected(endpoint):
    response = signed_request(endpoint, "POST", "/list-flows", b"{}", service="s3")
    assert response.status_code == 403, response.text


def test_region_comes_from_the_credential_scope(endpoint):
    client = appflow_with(endpoint, ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, region="eu-west-1")
    assert isinstance(client.list_flows()["flows"], list)


def test_auth_errors_never_return_data(endpoint):
    response = signed_request(endpoint, "POST", "/list-flows", b"{}", secret_key="not-the-secret")
    assert response.status_code == 403
    assert "flows" not in response.json()


# ---------------------------------------------------------------------------------------------
# Routing and headers.
# ---------------------------------------------------------------------------------------------


def test_unknown_operation_is_404_json(endpoint):
    response = signed_request(endpoint, "POST", "/no-such-operation", b"{}")
    check_raw_error(response, "UnknownOperationException", status=404)


def test_request_ids_are_unique_and_on_every_response(endpoint):
    ids = set()
    for body, path in [(b"{}", "/list-flows"), (b"{", "/list-flows"), (b"{}", "/nope")]:
        response = signed_request(endpoint, "POST", path, body)
        request_id = response.headers.get("x-amzn-RequestId")
        assert request_id, f"{path} HTTP {response.status_code}: no x-amzn-RequestId"
        ids.add(request_id)
    assert len(ids) == 3
