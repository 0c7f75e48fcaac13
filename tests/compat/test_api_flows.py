"""Flow operations through boto3: CreateFlow, DescribeFlow, UpdateFlow, ListFlows, DeleteFlow,
StartFlow, StopFlow, CancelFlowExecutions, DescribeFlowExecutionRecords — success and error
paths, with every response checked against botocore's model."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from support import (
    ACCOUNT_ID,
    REGION,
    flow_request,
    map_task,
    project_and_map,
    projection,
    s3_destination,
    s3_source,
    unique,
)


@pytest.fixture
def basic_flow(src_bucket, dst_bucket):
    def build(name: str, **extra) -> dict:
        return flow_request(
            name,
            s3_source(src_bucket, "in"),
            s3_destination(dst_bucket, "out"),
            project_and_map(["id", "name"]),
            **extra,
        )

    return build


def flow_arn(name: str) -> str:
    return f"arn:aws:appflow:{REGION}:{ACCOUNT_ID}:flow/{name}"


def test_create_flow_returns_arn_and_active_status(api, basic_flow):
    name = unique("create")
    response = api.create_flow(**basic_flow(name))
    assert response["flowArn"] == flow_arn(name)
    assert response["flowStatus"] == "Active"


def test_describe_flow_echoes_the_definition(api, basic_flow):
    name = unique("describe")
    request = basic_flow(
        name, description="Orders export, nightly", tags={"team": "data", "env": "test"}
    )
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    api.create_flow(**request)
    flow = api.describe_flow(flowName=name)

    assert flow["flowName"] == name
    assert flow["flowArn"] == flow_arn(name)
    assert flow["flowStatus"] == "Active"
    assert flow["description"] == "Orders export, nightly"
    assert flow["tags"] == {"team": "data", "env": "test"}
    assert flow["triggerConfig"]["triggerType"] == "OnDemand"
    assert flow["sourceFlowConfig"] == request["sourceFlowConfig"]
    assert flow["destinationFlowConfigList"] == request["destinationFlowConfigList"]
    assert len(flow["tasks"]) == len(request["tasks"])
    for sent in request["tasks"]:
        assert sent in flow["tasks"], f"task {sent} was not echoed"
    assert before <= flow["createdAt"] <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5)
    assert flow["lastUpdatedAt"] >= flow["createdAt"]
    assert flow["createdBy"].startswith(f"arn:aws:iam::{ACCOUNT_ID}:"), flow["createdBy"]
    assert flow["schemaVersion"] == 1


def test_kms_arn_is_echoed(api, basic_flow):
    name = unique("kms")
    kms = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    api.create_flow(**basic_flow(name, kmsArn=kms))
    assert api.describe_flow(flowName=name)["kmsArn"] == kms


def test_bad_kms_arn_is_rejected(api, basic_flow):
    api.error("ValidationException", "create_flow", **basic_flow(unique("kms"), kmsArn="key-1" * 5))


def test_glue_catalog_is_rejected_clearly(api, basic_flow):
    catalog = {
        "glueDataCatalog": {
            "roleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/glue",
            "databaseName": "analytics",
            "tablePrefix": "sluice",
        }
    }
    request = basic_flow(unique("glue"), metadataCatalogConfig=catalog)
    error = api.error("ValidationException", "create_flow", **request)
    assert "Glue" in error.response["Error"]["Message"]


def test_deleted_flow_name_starts_with_no_history(api, basic_flow):
    name = unique("reborn")
    api.create_flow(**basic_flow(name))
    api.start_flow(flowName=name)
    api.delete_flow(flowName=name, forceDelete=True)
    api.create_flow(**basic_flow(name))
    assert api.describe_flow_execution_records(flowName=name)["flowExecutions"] == []
    details = api.describe_flow(flowName=name).get("lastRunExecutionDetails", {})
    assert "mostRecentExecutionStatus" not in details, details


def test_create_flow_duplicate_name_conflicts(api, basic_flow):
    name = unique("dup")
    api.create_flow(**basic_flow(name))
    api.error("ConflictException", "create_flow", **basic_flow(name))


@pytest.mark.parametrize(
    "bad_name",
    # `\w` in AWS's patterns is ASCII-only (Java/ECMAScript semantics).
    ["my flow", "-leading-dash", "a", "flow/with/slash", "ünïcode-flow", "flow-ünïcode", "x" * 257],
)
def test_create_flow_invalid_name_is_a_validation_error(api, basic_flow, bad_name):
    api.error("ValidationException", "create_flow", **basic_flow(bad_name))


def test_flow_name_accepts_all_allowed_punctuation(api, basic_flow):
    name = unique("Ok_name.with@all#chars!")
    response = api.create_flow(**basic_flow(name))
    assert response["flowArn"] == flow_arn(name)
    assert api.describe_flow(flowName=name)["flowName"] == name


def test_missing_projection_task_uses_aws_message(api, src_bucket, dst_bucket):
    request = flow_request(
        unique("noproj"),
        s3_source(src_bucket, "in"),
        s3_destination(dst_bucket, "out"),
        [map_task("id")],
    )
    error = api.error("ValidationException", "create_flow", **request)
    # AWS's own wording, as real AppFlow returns it.
    assert (
        "Create Flow request failed: [Task Validation Error: You must specify a projection task "
        "or a MAP_ALL task]" in error.response["Error"]["Message"]
    )


def test_operator_not_supported_by_the_source_is_rejected(api, src_bucket, dst_bucket):
    # CONTAINS is not in the S3 operator set (spec B.4).
    tasks = project_and_map(["id", "name"]) + [
        {
            "sourceFields": ["name"],
            "connectorOperator": {"S3": "CONTAINS"},
            "taskType": "Filter",
            "taskProperties": {"DATA_TYPE": "string", "VALUE": "a"},
        }
    ]
    request = flow_request(
        unique("contains"), s3_source(src_bucket, "in"), s3_destination(dst_bucket, "out"), tasks
    )
    api.error("ValidationException", "create_flow", **request)


def test_connector_operator_keyed_by_another_connector_is_rejected(api, src_bucket, dst_bucket):
    tasks = [
        {
            "sourceFields": ["id"],
            "connectorOperator": {"Salesforce": "PROJECTION"},
            "taskType": "Filter",
            "taskProperties": {},
        },
        map_task("id"),
    ]
    request = flow_request(
        unique("wrongop"), s3_source(src_bucket, "in"), s3_destination(dst_bucket, "out"), tasks
    )
    api.error("ValidationException", "create_flow", **request)


def test_two_destinations_are_rejected(api, src_bucket, dst_bucket):
    request = flow_request(
        unique("twodest"),
        s3_source(src_bucket, "in"),
        s3_destination(dst_bucket, "out"),
        project_and_map(["id"]),
    )
    request["destinationFlowConfigList"].append(s3_destination(dst_bucket, "out2"))
    api.error("ValidationException", "create_flow", **request)


def test_source_properties_must_match_connector_type(api, src_bucket, dst_bucket):
    source = s3_source(src_bucket, "in")
    source["connectorType"] = "Salesforce"
    request = flow_request(
        unique("mismatch"), source, s3_destination(dst_bucket, "out"), project_and_map(["id"])
    )
    api.error("ValidationException", "create_flow", **request)


@pytest.mark.parametrize(
    "expression",
    [
        "rate(0minutes)",
        "rate(30seconds)",
        "every day",
        "cron(0 6 * * * *)",
        "cron(61 6 ? * MON *)",
        "",
    ],
)
def test_bad_schedule_expression_is_a_validation_error(api, basic_flow, expression):
    trigger = {
        "triggerType": "Scheduled",
        "triggerProperties": {"Scheduled": {"scheduleExpression": expression}},
    }
    request = basic_flow(unique("badsched"), triggerConfig=trigger)
    api.error("ValidationException", "create_flow", **request)


def test_scheduled_trigger_without_properties_is_rejected(api, basic_flow):
    request = basic_flow(unique("nosched"), triggerConfig={"triggerType": "Scheduled"})
    api.error("ValidationException", "create_flow", **request)


def test_describe_unknown_flow_is_not_found(api):
    api.error("ResourceNotFoundException", "describe_flow", flowName=unique("ghost"))


def test_update_flow_replaces_the_definition(api, basic_flow, src_bucket, dst_bucket):
    name = unique("update")
    api.create_flow(**basic_flow(name, description="first"))
    created = api.describe_flow(flowName=name)

    # Only the description changes: the schema version must not move.
    update = basic_flow(name, description="second")
    update.pop("tags", None)
    response = api.update_flow(**update)
    assert response["flowStatus"] == "Active"
    flow = api.describe_flow(flowName=name)
    assert flow["description"] == "second"
    assert flow["schemaVersion"] == created["schemaVersion"]
    assert flow["lastUpdatedAt"] >= created["lastUpdatedAt"]
    assert flow["createdAt"] == created["createdAt"]

    # A new mapped field changes the schema: schemaVersion increments.
    update["tasks"] = project_and_map(["id", "name", "email"])
    api.update_flow(**update)
    flow = api.describe_flow(flowName=name)
    assert flow["schemaVersion"] == created["schemaVersion"] + 1
    assert {
        "sourceFields": ["email"],
        "connectorOperator": {"S3": "NO_OP"},
        "destinationField": "email",
        "taskType": "Map",
        "taskProperties": {"SOURCE_DATA_TYPE": "string", "DESTINATION_DATA_TYPE": "string"},
    } in flow["tasks"]


def test_update_flow_cannot_change_the_source_connector(api, basic_flow):
    name = unique("updsrc")
    api.create_flow(**basic_flow(name))
    update = basic_flow(name)
    update["sourceFlowConfig"] = {
        "connectorType": "Salesforce",
        "sourceConnectorProperties": {"Salesforce": {"object": "Account"}},
    }
    update["tasks"] = [
        {
            "sourceFields": ["Id"],
            "connectorOperator": {"Salesforce": "PROJECTION"},
            "taskType": "Filter",
            "taskProperties": {},
        },
        {
            "sourceFields": ["Id"],
            "connectorOperator": {"Salesforce": "NO_OP"},
            "destinationField": "Id",
            "taskType": "Map",
            "taskProperties": {},
        },
    ]
    api.error("ValidationException", "update_flow", **update)
    assert api.describe_flow(flowName=name)["sourceFlowConfig"]["connectorType"] == "S3"


def test_update_unknown_flow_is_not_found(api, basic_flow):
    api.error("ResourceNotFoundException", "update_flow", **basic_flow(unique("ghost")))


def test_delete_flow(api, basic_flow):
    name = unique("delete")
    api.create_flow(**basic_flow(name))
    assert set(api.delete_flow(flowName=name)) == {"ResponseMetadata"}
    api.error("ResourceNotFoundException", "describe_flow", flowName=name)
    api.error("ResourceNotFoundException", "delete_flow", flowName=name)
    # The name is free again.
    assert api.create_flow(**basic_flow(name))["flowStatus"] == "Active"


def test_list_flows_reports_flow_definitions(api, basic_flow):
    name = unique("listed")
    api.create_flow(**basic_flow(name, description="listed flow", tags={"k": "v"}))
    found = None
    token = None
    while found is None:
        page = api.list_flows(**({"nextToken": token} if token else {}))
        found = next((f for f in page["flows"] if f["flowName"] == name), None)
        token = page.get("nextToken")
        if not token:
            break
    assert found is not None, f"{name} not listed"
    assert found["flowArn"] == flow_arn(name)
    assert found["flowStatus"] == "Active"
    assert found["description"] == "listed flow"
    assert found["sourceConnectorType"] == "S3"
    assert found["destinationConnectorType"] == "S3"
    assert found["triggerType"] == "OnDemand"
    assert found["tags"] == {"k": "v"}
    assert isinstance(found["createdAt"], dt.datetime)


def test_start_flow_returns_an_execution_id(api, basic_flow):
    name = unique("start")
    api.create_flow(**basic_flow(name))
    response = api.start_flow(flowName=name)
    assert response["flowArn"] == flow_arn(name)
    assert response["flowStatus"] == "Active"
    assert re.fullmatch(r"\S{1,256}", response["executionId"])
    records = api.describe_flow_execution_records(flowName=name)["flowExecutions"]
    assert response["executionId"] in [r["executionId"] for r in records]


def test_start_unknown_flow_is_not_found(api):
    api.error("ResourceNotFoundException", "start_flow", flowName=unique("ghost"))


def test_stop_on_demand_flow_is_unsupported(api, basic_flow):
    name = unique("stopod")
    api.create_flow(**basic_flow(name))
    api.error("UnsupportedOperationException", "stop_flow", flowName=name)


def test_stop_unknown_flow_is_not_found(api):
    api.error("ResourceNotFoundException", "stop_flow", flowName=unique("ghost"))


def test_scheduled_flow_lifecycle(api, basic_flow):
    name = unique("sched")
    start = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)
    trigger = {
        "triggerType": "Scheduled",
        "triggerProperties": {
            "Scheduled": {
                "scheduleExpression": "rate(1hours)",
                "dataPullMode": "Complete",
                "scheduleStartTime": start,
            }
        },
    }
    created = api.create_flow(**basic_flow(name, triggerConfig=trigger))
    assert created["flowStatus"] == "Draft"
    flow = api.describe_flow(flowName=name)
    scheduled = flow["triggerConfig"]["triggerProperties"]["Scheduled"]
    assert scheduled["scheduleExpression"] == "rate(1hours)"
    assert abs((scheduled["scheduleStartTime"] - start).total_seconds()) < 1

    started = api.start_flow(flowName=name)
    assert started["flowStatus"] == "Active"
    assert api.describe_flow(flowName=name)["flowStatus"] == "Active"

    stopped = api.stop_flow(flowName=name)
    assert stopped["flowArn"] == flow_arn(name)
    assert stopped["flowStatus"] == "Suspended"
    assert api.describe_flow(flowName=name)["flowStatus"] == "Suspended"

    assert api.start_flow(flowName=name)["flowStatus"] == "Active"
    api.delete_flow(flowName=name)


def test_schedule_expression_is_echoed_in_canonical_form(api, basic_flow):
    name = unique("canon")
    trigger = {
        "triggerType": "Scheduled",
        "triggerProperties": {"Scheduled": {"scheduleExpression": "rate(5 minutes)"}},
    }
    api.create_flow(**basic_flow(name, triggerConfig=trigger))
    flow = api.describe_flow(flowName=name)
    assert flow["triggerConfig"]["triggerProperties"]["Scheduled"]["scheduleExpression"] == (
        "rate(5minutes)"
    )


def test_describe_execution_records_of_a_new_flow_is_empty(api, basic_flow):
    name = unique("norecords")
    api.create_flow(**basic_flow(name))
    response = api.describe_flow_execution_records(flowName=name)
    assert response["flowExecutions"] == []
    assert "nextToken" not in response


def test_describe_execution_records_unknown_flow_is_not_found(api):
    api.error(
        "ResourceNotFoundException", "describe_flow_execution_records", flowName=unique("ghost")
    )


def test_cancel_unknown_execution_is_reported_invalid(api, basic_flow):
    name = unique("cancelbad")
    api.create_flow(**basic_flow(name))
    response = api.cancel_flow_executions(flowName=name, executionIds=["no-such-execution"])
    assert response["invalidExecutions"] == ["no-such-execution"]


def test_cancel_without_ids_on_an_idle_flow(api, basic_flow):
    name = unique("cancelidle")
    api.create_flow(**basic_flow(name))
    response = api.cancel_flow_executions(flowName=name)
    assert response.get("invalidExecutions", []) == []


def test_cancel_unknown_flow_is_not_found(api):
    api.error("ResourceNotFoundException", "cancel_flow_executions", flowName=unique("ghost"))


def test_description_pattern_is_enforced(api, basic_flow):
    # `[\w!@#\-.?,\s]*`: a `$` is not allowed.
    request = basic_flow(unique("desc"), description="costs $5")
    api.error("ValidationException", "create_flow", **request)


def test_description_with_every_allowed_character_is_echoed(api, basic_flow):
    name = unique("desc-ok")
    description = "Line one.\nTabs\tand @#!-_.?, all fine " + "y" * 1900
    api.create_flow(**basic_flow(name, description=description))
    assert api.describe_flow(flowName=name)["description"] == description


def test_projection_only_field_list_round_trips(api, src_bucket, dst_bucket):
    # `sourceFields` of a projection with many fields, some unicode.
    fields = ["id", "名前", "émail", "a b"]
    name = unique("fields")
    request = flow_request(
        name,
        s3_source(src_bucket, "in"),
        s3_destination(dst_bucket, "out"),
        [projection(fields)] + [map_task(f) for f in fields],
    )
    api.create_flow(**request)
    tasks = api.describe_flow(flowName=name)["tasks"]
    assert projection(fields) in tasks
