"""Pagination (`maxResults` / `nextToken`, default page size 20) and `clientToken` idempotency."""

from __future__ import annotations

import uuid

import pytest

from support import (
    flow_request,
    project_and_map,
    s3_destination,
    s3_source,
    unique,
)


@pytest.fixture
def flow_def(src_bucket, dst_bucket):
    def build(name: str, **extra) -> dict:
        return flow_request(
            name,
            s3_source(src_bucket, "in"),
            s3_destination(dst_bucket, "out"),
            project_and_map(["id"]),
            **extra,
        )

    return build


def list_all_flows(api, **params) -> list[list[dict]]:
    pages = []
    token = None
    for _ in range(1000):
        call = dict(params)
        if token:
            call["nextToken"] = token
        page = api.list_flows(**call)
        pages.append(page["flows"])
        token = page.get("nextToken")
        if not token:
            return pages
    raise AssertionError("list_flows never stopped returning nextToken")


def test_list_flows_pages_over_more_than_twenty_flows(api, flow_def):
    batch = f"page{uuid.uuid4().hex[:8]}"
    names = {f"{batch}-{i:02d}" for i in range(23)}
    for name in sorted(names):
        api.create_flow(**flow_def(name))

    # Default page size is 20, and there are more than 20 flows in total.
    first = api.list_flows()
    assert len(first["flows"]) == 20
    assert first["nextToken"]

    pages = list_all_flows(api, maxResults=7)
    assert all(1 <= len(page) <= 7 for page in pages[:-1]), [len(p) for p in pages]
    assert len(pages[-1]) <= 7
    listed = [flow["flowName"] for page in pages for flow in page]
    assert len(listed) == len(set(listed)), "a flow was listed twice across pages"
    assert names <= set(listed), f"missing: {sorted(names - set(listed))}"

    # The same set, whatever the page size.
    everything = [flow["flowName"] for page in list_all_flows(api, maxResults=100) for flow in page]
    assert sorted(everything) == sorted(listed)

    one_by_one = [flow["flowName"] for page in list_all_flows(api, maxResults=1) for flow in page]
    assert sorted(one_by_one) == sorted(listed)


def test_deleted_flows_disappear_from_listings(api, flow_def):
    name = unique("gone")
    api.create_flow(**flow_def(name))
    api.delete_flow(flowName=name)
    listed = [flow["flowName"] for page in list_all_flows(api, maxResults=100) for flow in page]
    assert name not in listed


def test_next_token_from_another_operation_is_not_accepted_blindly(api, flow_def):
    # A token is opaque, but it must not crash the server when replayed elsewhere.
    for i in range(3):
        api.create_flow(**flow_def(unique(f"tok{i}")))
    token = api.list_flows(maxResults=1)["nextToken"]
    name = unique("tokflow")
    api.create_flow(**flow_def(name))
    try:
        response = api.describe_flow_execution_records(flowName=name, nextToken=token)
    except Exception as error:  # noqa: BLE001 - only the error code matters here
        assert error.response["Error"]["Code"] == "ValidationException"
    else:
        assert response["flowExecutions"] == []


def test_create_flow_replay_with_same_token(api, flow_def):
    name = unique("idem")
    token = str(uuid.uuid4())
    first = api.create_flow(**flow_def(name, clientToken=token))
    second = api.create_flow(**flow_def(name, clientToken=token))
    assert second["flowArn"] == first["flowArn"]
    assert second["flowStatus"] == first["flowStatus"]
    listed = [flow["flowName"] for page in list_all_flows(api, maxResults=100) for flow in page]
    assert listed.count(name) == 1


def test_create_flow_same_token_different_parameters_conflicts(api, flow_def):
    name = unique("idemconf")
    token = str(uuid.uuid4())
    api.create_flow(**flow_def(name, clientToken=token, description="one"))
    error = api.error(
        "ConflictException", "create_flow", **flow_def(name, clientToken=token, description="two")
    )
    assert error.response["Error"]["Message"]
    assert api.describe_flow(flowName=name)["description"] == "one"


def test_create_flow_new_token_same_name_conflicts(api, flow_def):
    name = unique("idemname")
    api.create_flow(**flow_def(name, clientToken=str(uuid.uuid4())))
    api.error("ConflictException", "create_flow", **flow_def(name, clientToken=str(uuid.uuid4())))


def test_start_flow_replay_with_same_token(api, flow_def):
    name = unique("idemstart")
    api.create_flow(**flow_def(name))
    token = str(uuid.uuid4())
    first = api.start_flow(flowName=name, clientToken=token)
    second = api.start_flow(flowName=name, clientToken=token)
    assert second["executionId"] == first["executionId"]
    records = api.describe_flow_execution_records(flowName=name)["flowExecutions"]
    assert [record["executionId"] for record in records] == [first["executionId"]]

    third = api.start_flow(flowName=name, clientToken=str(uuid.uuid4()))
    assert third["executionId"] != first["executionId"]


def test_update_flow_replay_with_same_token(api, flow_def):
    name = unique("idemupd")
    api.create_flow(**flow_def(name))
    token = str(uuid.uuid4())
    update = flow_def(name, description="updated", clientToken=token)
    assert api.update_flow(**update)["flowStatus"] == "Active"
    assert api.update_flow(**update)["flowStatus"] == "Active"
    changed = flow_def(name, description="changed again", clientToken=token)
    api.error("ConflictException", "update_flow", **changed)
    assert api.describe_flow(flowName=name)["description"] == "updated"
