"""TagResource / UntagResource / ListTagsForResource on flow ARNs. The ARN travels as one
percent-encoded path label (`:` and `/` encoded), and SigV4 signs that path encoded a second
time; both rules are exercised through boto3, the raw wire and unusual flow names."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from support import (
    ACCOUNT_ID,
    REGION,
    check_raw_error,
    flow_request,
    project_and_map,
    s3_destination,
    s3_source,
    signed_request,
    unique,
)


@pytest.fixture
def make_flow(api, src_bucket, dst_bucket):
    def create(prefix: str = "tags", **extra) -> str:
        name = unique(prefix)
        request = flow_request(
            name,
            s3_source(src_bucket, "in"),
            s3_destination(dst_bucket, "out"),
            project_and_map(["id"]),
            **extra,
        )
        return api.create_flow(**request)["flowArn"]

    return create


def test_tag_round_trip_with_special_characters(api, make_flow):
    # `@`, `#`, `!` and `.` in the name all need care in the path label.
    arn = make_flow("t@g#flow!v1.x", tags={"created": "yes"})
    assert arn.startswith(f"arn:aws:appflow:{REGION}:{ACCOUNT_ID}:flow/t@g#flow!v1.x-")
    assert api.list_tags_for_resource(resourceArn=arn)["tags"] == {"created": "yes"}

    api.tag_resource(
        resourceArn=arn,
        tags={"team/sub:area": "data eng", "cost.center": "a+b=c:d/e@f", "empty": ""},
    )
    assert api.list_tags_for_resource(resourceArn=arn)["tags"] == {
        "created": "yes",
        "team/sub:area": "data eng",
        "cost.center": "a+b=c:d/e@f",
        "empty": "",
    }

    # Tagging an existing key overwrites its value.
    api.tag_resource(resourceArn=arn, tags={"created": "again"})
    assert api.list_tags_for_resource(resourceArn=arn)["tags"]["created"] == "again"

    api.untag_resource(resourceArn=arn, tagKeys=["team/sub:area", "created"])
    tags = api.list_tags_for_resource(resourceArn=arn)["tags"]
    assert tags == {"cost.center": "a+b=c:d/e@f", "empty": ""}

    name = arn.split(":flow/", 1)[1]
    assert api.describe_flow(flowName=name)["tags"] == tags


def test_untag_missing_key_is_not_an_error(api, make_flow):
    arn = make_flow(tags={"a": "1"})
    api.untag_resource(resourceArn=arn, tagKeys=["not-there"])
    assert api.list_tags_for_resource(resourceArn=arn)["tags"] == {"a": "1"}


def test_untag_everything_leaves_an_empty_map(api, make_flow):
    arn = make_flow(tags={"a": "1", "b": "2"})
    api.untag_resource(resourceArn=arn, tagKeys=["a", "b"])
    assert api.list_tags_for_resource(resourceArn=arn).get("tags", {}) == {}


def test_aws_prefixed_tag_key_is_rejected(api, make_flow):
    arn = make_flow()
    api.error("ValidationException", "tag_resource", resourceArn=arn, tags={"aws:owner": "me"})
    assert api.list_tags_for_resource(resourceArn=arn).get("tags", {}) == {}


def test_more_than_fifty_tags_is_rejected(api, make_flow):
    arn = make_flow()
    tags = {f"k{i}": "v" for i in range(51)}
    api.error("ValidationException", "tag_resource", resourceArn=arn, tags=tags)


def test_fifty_tags_are_accepted(api, make_flow):
    arn = make_flow()
    tags = {f"k{i}": f"v{i}" for i in range(50)}
    api.tag_resource(resourceArn=arn, tags=tags)
    assert api.list_tags_for_resource(resourceArn=arn)["tags"] == tags


def test_tag_value_pattern_is_enforced(api, make_flow):
    arn = make_flow()
    api.error("ValidationException", "tag_resource", resourceArn=arn, tags={"k": "100% sure?"})


def test_tags_on_unknown_flow_are_not_found(api):
    arn = f"arn:aws:appflow:{REGION}:{ACCOUNT_ID}:flow/{unique('ghost')}"
    api.error("ResourceNotFoundException", "list_tags_for_resource", resourceArn=arn)
    api.error("ResourceNotFoundException", "tag_resource", resourceArn=arn, tags={"a": "b"})
    api.error("ResourceNotFoundException", "untag_resource", resourceArn=arn, tagKeys=["a"])


def test_tags_on_a_deleted_flow_are_not_found(api, make_flow):
    arn = make_flow(tags={"a": "b"})
    api.delete_flow(flowName=arn.split(":flow/", 1)[1])
    api.error("ResourceNotFoundException", "list_tags_for_resource", resourceArn=arn)


def test_malformed_arn_is_a_validation_error(api):
    api.error("ValidationException", "list_tags_for_resource", resourceArn="not-an-arn")


def test_raw_paths_fully_encoded_and_partly_encoded(api, endpoint, make_flow):
    arn = make_flow(tags={"k": "v"})
    fully = "/tags/" + urllib.parse.quote(arn, safe="")
    assert "%3A" in fully and "%2F" in fully
    response = signed_request(endpoint, "GET", fully, content_type=None)
    assert response.status_code == 200, response.text
    assert response.json() == {"tags": {"k": "v"}}

    # Hand-written clients often leave `:` alone and only encode `/`.
    partly = "/tags/" + arn.replace("/", "%2F")
    response = signed_request(endpoint, "GET", partly, content_type=None)
    assert response.status_code == 200, response.text
    assert response.json() == {"tags": {"k": "v"}}


def test_raw_untag_with_repeated_query_keys(api, endpoint, make_flow):
    arn = make_flow(tags={"a": "1", "b": "2", "c": "3"})
    path = "/tags/" + urllib.parse.quote(arn, safe="") + "?tagKeys=a&tagKeys=c"
    response = signed_request(endpoint, "DELETE", path, content_type=None)
    assert response.status_code == 200, response.text
    assert api.list_tags_for_resource(resourceArn=arn)["tags"] == {"b": "2"}


def test_raw_tag_resource_with_malformed_body(endpoint, make_flow):
    arn = make_flow()
    path = "/tags/" + urllib.parse.quote(arn, safe="")
    check_raw_error(signed_request(endpoint, "POST", path, b"{oops"), "ValidationException")
    check_raw_error(
        signed_request(endpoint, "POST", path, json.dumps({"tags": "k=v"})), "ValidationException"
    )
    check_raw_error(signed_request(endpoint, "POST", path, b"{}"), "ValidationException")


def test_raw_untag_without_keys_is_a_validation_error(endpoint, make_flow):
    arn = make_flow()
    path = "/tags/" + urllib.parse.quote(arn, safe="")
    check_raw_error(
        signed_request(endpoint, "DELETE", path, content_type=None), "ValidationException"
    )
