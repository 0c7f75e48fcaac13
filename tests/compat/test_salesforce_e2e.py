"""Salesforce end to end: `sluice serve` with its Salesforce connector pointed at the
`fake-salesforce` binary, moto as S3, the real aws CLI and boto3 as clients, and the test clock
(`SLUICE_TEST_CLOCK_FILE`) driving schedules.

Covers the seed flow `stackflow-salesforce-accounts-sync` run as written (hourly, Account ->
S3, `enableDynamicFieldUpdate`), an hourly incremental Account -> S3 flow across new, changed
and deleted records (`includeDeletedRecords`, each change delivered exactly once), a write-back
S3 -> Salesforce UPSERT with rejected records (`putFailuresCount`, the error bucket), an access
token expiring in the middle of a run (renewed, persisted, unused after a restart), connector
profiles from an authorization code (and a bad code refused with
`ConnectorAuthenticationException`), and `schemaVersion` following a field added in Salesforce.

Each test gets its own fake Salesforce and server, so counters and records are its own.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest

from conftest import CLIENT_CONFIG, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, tool
from salesforce_fake import FakeSalesforce
from servers import ServerProcess, free_port, start_process, wait_until_ready
from support import (
    ACCOUNT_ID,
    REGION,
    ROOT_ACCESS_KEY_ID,
    ROOT_SECRET_ACCESS_KEY,
    list_keys,
    parse_csv,
    sluice_env,
    unique,
)

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
REDIRECT_URI = "https://console.example/oauth/callback"
SEED_FLOW = "stackflow-salesforce-accounts-sync"
SEED_PROFILE = "stackflow-salesforce"
SEED_BUCKET = "stackflow-appflow-data"


class FileClock:
    """The file the server reads "now" from, in epoch milliseconds."""

    def __init__(self, path: Path, now: dt.datetime):
        self.path = path
        self.set(now)

    def set(self, now: dt.datetime) -> None:
        partial = self.path.with_suffix(".partial")
        partial.write_text(str(int(now.timestamp() * 1000)))
        os.replace(partial, self.path)


class Stack:
    """A fake Salesforce, a sluice server on the test clock, and the clients to drive them."""

    def __init__(self, sluice_bin: Path, moto, tmp_path: Path):
        self.sluice_bin = sluice_bin
        self.moto = moto
        self.tmp_path = tmp_path
        self.fake = FakeSalesforce()
        self.clock = FileClock(tmp_path / "now.ms", T0)
        self.data_dir = tmp_path / "data"
        self.starts = 0
        self.server = self.start()

    def start(self) -> ServerProcess:
        self.starts += 1
        port = free_port()
        env = sluice_env(
            {
                "SLUICE_ROOT_ACCESS_KEY_ID": ROOT_ACCESS_KEY_ID,
                "SLUICE_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET_ACCESS_KEY,
                "SLUICE_ACCOUNT_ID": ACCOUNT_ID,
                "SLUICE_REGION": REGION,
                "SLUICE_S3_ENDPOINT": self.moto.url,
                "SLUICE_S3_REGION": REGION,
                "SLUICE_S3_ACCESS_KEY_ID": S3_ACCESS_KEY_ID,
                "SLUICE_S3_SECRET_ACCESS_KEY": S3_SECRET_ACCESS_KEY,
                "SLUICE_TEST_CLOCK_FILE": str(self.clock.path),
                "SLUICE_SALESFORCE_LOGIN_URL": self.fake.url,
                "SLUICE_SALESFORCE_SANDBOX_LOGIN_URL": self.fake.url,
                "SLUICE_SALESFORCE_CLIENT_ID": self.fake.client_id,
                "SLUICE_SALESFORCE_CLIENT_SECRET": self.fake.client_secret,
            }
        )
        self.log = self.tmp_path / f"sluice-{self.starts}.log"
        server = start_process(
            f"sluice-salesforce-{self.tmp_path.name}-{self.starts}",
            [
                str(self.sluice_bin),
                "serve",
                "--listen",
                f"127.0.0.1:{port}",
                "--data-dir",
                str(self.data_dir),
            ],
            env,
            self.log,
            f"http://127.0.0.1:{port}",
        )
        wait_until_ready(server, "sluice serve (Salesforce)")
        return server

    def restart(self) -> None:
        self.server.stop()
        self.server = self.start()

    def stop(self) -> None:
        self.server.stop()
        self.fake.stop()

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
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
            [tool("aws"), "appflow", *args, "--endpoint-url", self.server.url, "--output", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        if check:
            assert completed.returncode == 0, (
                f"aws appflow {args[0]} failed:\n{completed.stderr}\n{self.server.log_tail()}"
            )
        return completed

    def json(self, *args: str) -> dict:
        out = self.cli(*args).stdout
        return json.loads(out) if out.strip() else {}

    def api(self):
        return boto3.client(
            "appflow",
            region_name=REGION,
            endpoint_url=self.server.url,
            aws_access_key_id=ROOT_ACCESS_KEY_ID,
            aws_secret_access_key=ROOT_SECRET_ACCESS_KEY,
            config=CLIENT_CONFIG,
        )

    def token_profile(self, name: str) -> str:
        """A profile with an access and a refresh token; returns the refresh token."""
        refresh = self.fake.issue_token("refresh")
        access = self.fake.issue_token("access")
        config = {
            "connectorProfileProperties": {"Salesforce": {"instanceUrl": self.fake.url}},
            "connectorProfileCredentials": {
                "Salesforce": {"accessToken": access, "refreshToken": refresh}
            },
        }
        self.cli(
            "create-connector-profile",
            "--connector-profile-name",
            name,
            "--connector-type",
            "Salesforce",
            "--connection-mode",
            "Public",
            "--connector-profile-config",
            json.dumps(config),
        )
        return refresh

    def runs(self, flow: str, count: int, timeout: float = 90) -> list[dict]:
        """Waits until the flow has `count` finished runs; returns them oldest first."""
        deadline = time.monotonic() + timeout
        runs: list[dict] = []
        while time.monotonic() < deadline:
            runs = self.json("describe-flow-execution-records", "--flow-name", flow)[
                "flowExecutions"
            ]
            assert len(runs) <= count, f"more runs than expected: {runs}"
            if len(runs) == count and all(
                run["executionStatus"] not in ("InProgress", "CancelStarted") for run in runs
            ):
                return sorted(runs, key=lambda run: instant(run["startedAt"]))
            time.sleep(0.2)
        raise AssertionError(
            f"{flow}: expected {count} finished runs, have {runs}\n{self.server.log_tail()}"
        )

    def run_on_demand(self, flow: str) -> dict:
        started = self.json("start-flow", "--flow-name", flow)
        execution_id = started["executionId"]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            for run in self.json("describe-flow-execution-records", "--flow-name", flow)[
                "flowExecutions"
            ]:
                if run["executionId"] == execution_id and run["executionStatus"] not in (
                    "InProgress",
                    "CancelStarted",
                ):
                    return run
            time.sleep(0.2)
        raise AssertionError(f"run {execution_id} of {flow} did not finish")


def instant(value) -> dt.datetime:
    # CLI v1 prints epoch seconds, v2 ISO-8601 strings.
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return dt.datetime.fromtimestamp(value, tz=dt.timezone.utc)


def message(run: dict) -> str:
    return run.get("executionResult", {}).get("errorInfo", {}).get("executionMessage") or ""


def assert_successful(run: dict) -> None:
    assert run["executionStatus"] == "Successful", f"run failed: {message(run)!r}"


def parse_sf_time(text: str) -> dt.datetime:
    """Salesforce (`+0000`), ISO `Z` and `+00:00` forms alike."""
    text = text.strip().replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"
    return dt.datetime.fromisoformat(text)


@pytest.fixture
def stack(sluice_bin, moto, tmp_path):
    stack = Stack(sluice_bin, moto, tmp_path)
    yield stack
    stack.stop()


@pytest.fixture
def bucket(s3) -> str:
    name = f"sluice-sf-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    return name


def run_keys(s3, bucket: str, prefix: str, execution_id: str) -> list[str]:
    return [key for key in list_keys(s3, bucket, prefix) if f"/{execution_id}/" in key]


def read_parquet(s3, bucket: str, keys: list[str]) -> list[dict]:
    rows: list[dict] = []
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        rows.extend(pq.read_table(io.BytesIO(body)).to_pylist())
    return rows


def projection_tasks(fields: dict[str, str]) -> list[dict]:
    """A console-style projection: one PROJECTION task and one Map per field (name -> type)."""
    tasks = [
        {
            "sourceFields": list(fields),
            "connectorOperator": {"Salesforce": "PROJECTION"},
            "taskType": "Filter",
            "taskProperties": {},
        }
    ]
    for name, kind in fields.items():
        tasks.append(
            {
                "sourceFields": [name],
                "connectorOperator": {"Salesforce": "NO_OP"},
                "destinationField": name,
                "taskType": "Map",
                "taskProperties": {"SOURCE_DATA_TYPE": kind, "DESTINATION_DATA_TYPE": kind},
            }
        )
    return tasks


# ---------------------------------------------------------------------------------------------
# (a) The seed flow, as written.
# ---------------------------------------------------------------------------------------------

SEED_FIELDS = {
    "Id": "id",
    "Name": "string",
    "Industry": "picklist",
    "AnnualRevenue": "currency",
    "NumberOfEmployees": "int",
    "LastModifiedDate": "datetime",
}


def test_the_seed_flow_runs_hourly_as_written(stack, s3):
    fake = stack.fake
    try:
        s3.create_bucket(Bucket=SEED_BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    created_at = T0 - dt.timedelta(hours=2)
    fake.set_now(created_at)
    accounts = [
        {"Name": "Acme Ünïcode", "Industry": "Technology", "AnnualRevenue": 1250000.5,
         "NumberOfEmployees": 42},
        {"Name": "Globex", "Industry": "Energy", "NumberOfEmployees": 7},
        {"Name": "Initech", "AnnualRevenue": 0},
    ]
    ids = fake.insert("Account", accounts)
    stack.token_profile(SEED_PROFILE)

    # The command of the seed document, with a projection in place of its elided tasks.
    created = stack.json(
        "create-flow",
        "--flow-name",
        SEED_FLOW,
        "--source-flow-config",
        json.dumps(
            {
                "connectorType": "Salesforce",
                "connectorProfileName": SEED_PROFILE,
                "sourceConnectorProperties": {
                    "Salesforce": {"object": "Account", "enableDynamicFieldUpdate": True}
                },
            }
        ),
        "--destination-flow-config-list",
        json.dumps(
            [
                {
                    "connectorType": "S3",
                    "destinationConnectorProperties": {
                        "S3": {"bucketName": SEED_BUCKET, "bucketPrefix": "salesforce/accounts/"}
                    },
                }
            ]
        ),
        "--tasks",
        json.dumps(projection_tasks(SEED_FIELDS)),
        "--trigger-config",
        json.dumps(
            {
                "triggerType": "Scheduled",
                "triggerProperties": {"Scheduled": {"scheduleExpression": "rate(1 hour)"}},
            }
        ),
        "--region",
        "us-east-1",
    )
    assert created["flowStatus"] == "Draft"
    described = stack.json("describe-flow", "--flow-name", SEED_FLOW)
    assert described["sourceFlowConfig"]["sourceConnectorProperties"]["Salesforce"] == {
        "object": "Account",
        "enableDynamicFieldUpdate": True,
    }
    assert described["schemaVersion"] == 1

    assert stack.json("start-flow", "--flow-name", SEED_FLOW)["flowStatus"] == "Active"
    (first,) = stack.runs(SEED_FLOW, 1)
    assert_successful(first)
    assert first["executionResult"]["recordsProcessed"] == 3

    # No format configured: CSV, under the prefix, the flow name and the execution id.
    keys = run_keys(s3, SEED_BUCKET, "salesforce/accounts/", first["executionId"])
    assert keys, list_keys(s3, SEED_BUCKET, "salesforce/accounts/")
    assert all(key.startswith(f"salesforce/accounts/{SEED_FLOW}/") for key in keys), keys
    rows = []
    for key in keys:
        header, records = parse_csv(s3.get_object(Bucket=SEED_BUCKET, Key=key)["Body"].read())
        assert header == list(SEED_FIELDS), header
        rows.extend(records)
    by_id = {row["Id"]: row for row in rows}
    assert sorted(by_id) == sorted(ids)
    acme = by_id[ids[0]]
    assert acme["Name"] == "Acme Ünïcode"
    assert acme["Industry"] == "Technology"
    assert float(acme["AnnualRevenue"]) == 1250000.5
    assert acme["NumberOfEmployees"] == "42"
    assert parse_sf_time(acme["LastModifiedDate"]) == created_at
    assert by_id[ids[2]]["Industry"] == ""

    # An hour later the schedule fires again; a complete pull includes a record added since.
    fake.set_now(T0 + dt.timedelta(minutes=20))
    (late,) = fake.insert("Account", [{"Name": "Hooli"}])
    stack.clock.set(T0 + dt.timedelta(hours=1))
    second = stack.runs(SEED_FLOW, 2)[1]
    assert_successful(second)
    assert second["executionResult"]["recordsProcessed"] == 4
    rows = []
    for key in run_keys(s3, SEED_BUCKET, "salesforce/accounts/", second["executionId"]):
        rows.extend(parse_csv(s3.get_object(Bucket=SEED_BUCKET, Key=key)["Body"].read())[1])
    assert sorted(row["Id"] for row in rows) == sorted([*ids, late])
    assert stack.json("stop-flow", "--flow-name", SEED_FLOW)["flowStatus"] == "Suspended"


# ---------------------------------------------------------------------------------------------
# (b) Hourly incremental pulls: each change exactly once.
# ---------------------------------------------------------------------------------------------


def test_hourly_incremental_pulls_deliver_each_change_once(stack, s3, bucket):
    fake = stack.fake
    fake.set_page_size(2)
    fake.set_now(T0 - dt.timedelta(minutes=30))
    a, b, c = fake.insert("Account", [{"Name": "A"}, {"Name": "B"}, {"Name": "C"}])
    stack.token_profile("sf-incremental")
    flow = unique("sf-incr")
    fields = {"Id": "id", "Name": "string", "IsDeleted": "boolean", "LastModifiedDate": "datetime"}
    stack.cli(
        "create-flow",
        "--flow-name",
        flow,
        "--source-flow-config",
        json.dumps(
            {
                "connectorType": "Salesforce",
                "connectorProfileName": "sf-incremental",
                "sourceConnectorProperties": {
                    "Salesforce": {"object": "Account", "includeDeletedRecords": True}
                },
                "incrementalPullConfig": {"datetimeTypeFieldName": "LastModifiedDate"},
            }
        ),
        "--destination-flow-config-list",
        json.dumps(
            [
                {
                    "connectorType": "S3",
                    "destinationConnectorProperties": {
                        "S3": {
                            "bucketName": bucket,
                            "bucketPrefix": "accounts",
                            "s3OutputFormatConfig": {
                                "fileType": "PARQUET",
                                "preserveSourceDataTyping": True,
                            },
                        }
                    },
                }
            ]
        ),
        "--tasks",
        json.dumps(projection_tasks(fields)),
        "--trigger-config",
        json.dumps(
            {
                "triggerType": "Scheduled",
                "triggerProperties": {
                    "Scheduled": {
                        "scheduleExpression": "rate(1hours)",
                        "dataPullMode": "Incremental",
                        "firstExecutionFrom": (T0 - dt.timedelta(days=1)).timestamp(),
                    }
                },
            }
        ),
    )
    stack.cli("start-flow", "--flow-name", flow)
    (first,) = stack.runs(flow, 1)
    assert_successful(first)
    assert instant(first["dataPullEndTime"]) == T0

    # Between the first and the second pull: one new, one changed, one deleted record.
    changed_at = T0 + dt.timedelta(minutes=10)
    fake.set_now(changed_at)
    (d,) = fake.insert("Account", [{"Name": "D"}])
    fake.update("Account", b, {"Name": "B, renamed"})
    fake.delete("Account", c)
    stack.clock.set(T0 + dt.timedelta(hours=1))
    second = stack.runs(flow, 2)[1]
    assert_successful(second)
    assert (instant(second["dataPullStartTime"]), instant(second["dataPullEndTime"])) == (
        T0,
        T0 + dt.timedelta(hours=1),
    )
    # Nothing changed in the third hour.
    stack.clock.set(T0 + dt.timedelta(hours=2))
    third = stack.runs(flow, 3)[2]
    assert_successful(third)
    assert third["executionResult"]["recordsProcessed"] == 0
    stack.cli("stop-flow", "--flow-name", flow)

    delivered = {
        run["executionId"]: read_parquet(
            s3, bucket, run_keys(s3, bucket, "accounts/", run["executionId"])
        )
        for run in (first, second, third)
    }
    initial = delivered[first["executionId"]]
    assert sorted(row["Id"] for row in initial) == sorted([a, b, c])
    assert all(row["IsDeleted"] is False for row in initial)
    changes = {row["Id"]: row for row in delivered[second["executionId"]]}
    assert sorted(changes) == sorted([b, c, d])
    assert changes[b]["Name"] == "B, renamed"
    assert changes[c]["IsDeleted"] is True
    assert changes[d]["IsDeleted"] is False
    for row in changes.values():
        assert parse_sf_time(row["LastModifiedDate"]) == changed_at
    assert delivered[third["executionId"]] == []
    # Exactly once: no (record, version) pair appears twice across the runs.
    versions = [
        (row["Id"], row["LastModifiedDate"]) for rows in delivered.values() for row in rows
    ]
    assert len(versions) == len(set(versions)) == 6


# ---------------------------------------------------------------------------------------------
# (c) Write-back: S3 -> Salesforce UPSERT with rejected records.
# ---------------------------------------------------------------------------------------------


def test_write_back_upserts_and_reports_rejected_records(stack, s3, bucket):
    fake = stack.fake
    (existing,) = fake.insert("Account", [{"Name": "Old Globex", "External_Id__c": "ext-2"}])
    stack.token_profile("sf-writeback")
    rows = [
        "External_Id__c,Name,NumberOfEmployees,Industry",
        "ext-1,Acme Ünïcode,10,Banking",
        "ext-2,Globex,20,Energy",
        "ext-3,Bad Count,many,Energy",
        "ext-4,Bad Industry,5,Piracy",
        "ext-5,Fine,,",
    ]
    s3.put_object(Bucket=bucket, Key="in/accounts.csv", Body="\n".join(rows).encode() + b"\n")
    flow = unique("sf-upsert")
    fields = ["External_Id__c", "Name", "NumberOfEmployees", "Industry"]
    tasks = [
        {"sourceFields": fields, "connectorOperator": {"S3": "PROJECTION"}, "taskType": "Filter"}
    ] + [
        {
            "sourceFields": [name],
            "connectorOperator": {"S3": "NO_OP"},
            "destinationField": name,
            "taskType": "Map",
            "taskProperties": {"SOURCE_DATA_TYPE": "string", "DESTINATION_DATA_TYPE": "string"},
        }
        for name in fields
    ]
    stack.cli(
        "create-flow",
        "--flow-name",
        flow,
        "--trigger-config",
        json.dumps({"triggerType": "OnDemand"}),
        "--source-flow-config",
        json.dumps(
            {
                "connectorType": "S3",
                "sourceConnectorProperties": {
                    "S3": {
                        "bucketName": bucket,
                        "bucketPrefix": "in",
                        "s3InputFormatConfig": {"s3InputFileType": "CSV"},
                    }
                },
            }
        ),
        "--destination-flow-config-list",
        json.dumps(
            [
                {
                    "connectorType": "Salesforce",
                    "connectorProfileName": "sf-writeback",
                    "destinationConnectorProperties": {
                        "Salesforce": {
                            "object": "Account",
                            "writeOperationType": "UPSERT",
                            "idFieldNames": ["External_Id__c"],
                            "errorHandlingConfig": {
                                "failOnFirstDestinationError": False,
                                "bucketName": bucket,
                                "bucketPrefix": "rejected",
                            },
                        }
                    },
                }
            ]
        ),
        "--tasks",
        json.dumps(tasks),
    )
    run = stack.run_on_demand(flow)
    assert_successful(run)
    result = run["executionResult"]
    assert result["recordsProcessed"] == 5
    assert result["errorInfo"]["putFailuresCount"] == 2

    by_external = {record["External_Id__c"]: record for record in fake.records("Account")}
    assert sorted(by_external) == ["ext-1", "ext-2", "ext-5"]
    assert by_external["ext-1"]["Name"] == "Acme Ünïcode"
    assert by_external["ext-1"]["NumberOfEmployees"] == 10
    # Upserted by external id: the existing record changed, no duplicate was created.
    assert by_external["ext-2"]["Id"] == existing
    assert by_external["ext-2"]["Name"] == "Globex"

    keys = list_keys(s3, bucket, f"rejected/{flow}/{run['executionId']}/")
    assert keys, list_keys(s3, bucket, "rejected/")
    rejected = []
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        rejected.extend(json.loads(line) for line in body.splitlines() if line.strip())
    by_record = {entry["record"]["External_Id__c"]: entry for entry in rejected}
    assert sorted(by_record) == ["ext-3", "ext-4"]
    for entry in by_record.values():
        assert entry["errorCode"] == "INVALID_TYPE_ON_FIELD_IN_RECORD", entry
        assert entry["errorMessage"], entry
    assert "NumberOfEmployees" in by_record["ext-3"]["errorMessage"]
    assert "Industry" in by_record["ext-4"]["errorMessage"]


# ---------------------------------------------------------------------------------------------
# (d) An access token expiring in the middle of a run.
# ---------------------------------------------------------------------------------------------


def test_a_token_expiring_mid_run_is_renewed_stored_and_reused_after_a_restart(
    stack, s3, bucket
):
    fake = stack.fake
    fake.set_page_size(5)
    fake.insert("Account", [{"Name": f"Account {i:03}"} for i in range(200)])
    refresh = stack.token_profile("sf-expiry")
    flow = unique("sf-expiry")
    stack.cli(
        "create-flow",
        "--flow-name",
        flow,
        "--trigger-config",
        json.dumps({"triggerType": "OnDemand"}),
        "--source-flow-config",
        json.dumps(
            {
                "connectorType": "Salesforce",
                "connectorProfileName": "sf-expiry",
                "sourceConnectorProperties": {"Salesforce": {"object": "Account"}},
            }
        ),
        "--destination-flow-config-list",
        json.dumps(
            [
                {
                    "connectorType": "S3",
                    "destinationConnectorProperties": {
                        "S3": {
                            "bucketName": bucket,
                            "bucketPrefix": "expiry",
                            "s3OutputFormatConfig": {"fileType": "PARQUET"},
                        }
                    },
                }
            ]
        ),
        "--tasks",
        json.dumps(projection_tasks({"Id": "id", "Name": "string"})),
    )
    # 200 records in pages of 5 are 40 query requests: the token dies after a few of them.
    fake.expire_tokens(after_requests=6)
    run = stack.run_on_demand(flow)
    assert_successful(run)
    assert run["executionResult"]["recordsProcessed"] == 200
    rows = read_parquet(s3, bucket, run_keys(s3, bucket, "expiry/", run["executionId"]))
    assert len({row["Id"] for row in rows}) == 200
    stats = fake.stats()
    assert stats["unauthorized"] >= 1, stats
    assert fake.grants("refresh_token") == 1
    unauthorized = stats["unauthorized"]

    # The renewed token was written back: after a restart, the next run uses it directly.
    stack.restart()
    again = stack.run_on_demand(flow)
    assert_successful(again)
    assert again["executionResult"]["recordsProcessed"] == 200
    assert fake.grants("refresh_token") == 1
    assert fake.stats()["unauthorized"] == unauthorized

    # Once the refresh token is revoked, the next renewal fails the run with a request to
    # re-authorise the profile, and the token itself is not quoted.
    fake.revoke(refresh)
    fake.expire_tokens()
    failed = stack.run_on_demand(flow)
    assert failed["executionStatus"] == "Error"
    assert "re-authorise the connector profile sf-expiry" in message(failed), failed
    assert refresh not in message(failed)


# ---------------------------------------------------------------------------------------------
# (e) Connector profiles from an authorization code.
# ---------------------------------------------------------------------------------------------


def profile_config(credentials: dict, properties: dict | None = None) -> str:
    return json.dumps(
        {
            "connectorProfileProperties": {"Salesforce": properties or {}},
            "connectorProfileCredentials": {"Salesforce": credentials},
        }
    )


def test_authorization_code_profiles_and_bad_codes(stack, s3, bucket):
    fake = stack.fake
    fake.insert("Account", [{"Name": "Via Code"}])
    code = fake.issue_auth_code(REDIRECT_URI)
    oauth = {
        "oAuth2GrantType": "AUTHORIZATION_CODE",
        "oAuthRequest": {"authCode": code, "redirectUri": REDIRECT_URI},
    }
    created = stack.json(
        "create-connector-profile",
        "--connector-profile-name",
        "sf-code",
        "--connector-type",
        "Salesforce",
        "--connection-mode",
        "Public",
        "--connector-profile-config",
        profile_config(oauth),
    )
    assert created["connectorProfileArn"].endswith(":connectorprofile/sf-code")
    assert fake.grants("authorization_code") == 1
    described = stack.json(
        "describe-connector-profiles", "--connector-profile-names", "sf-code"
    )["connectorProfileDetails"][0]
    assert described["connectorProfileProperties"]["Salesforce"]["instanceUrl"] == fake.url
    assert "connectorProfileCredentials" not in described
    assert code not in json.dumps(described)

    # The code is spent: a second profile with it is refused, with Salesforce's reason.
    refused = stack.cli(
        "create-connector-profile",
        "--connector-profile-name",
        "sf-code-again",
        "--connector-type",
        "Salesforce",
        "--connection-mode",
        "Public",
        "--connector-profile-config",
        profile_config(oauth),
        check=False,
    )
    assert refused.returncode != 0
    assert "ConnectorAuthenticationException" in refused.stderr, refused.stderr
    assert "invalid authorization code" in refused.stderr, refused.stderr
    assert code not in refused.stderr
    listed = stack.json("describe-connector-profiles", "--connector-profile-names", "sf-code-again")
    assert listed["connectorProfileDetails"] == []

    # The exchanged tokens serve runs.
    flow = unique("sf-code")
    stack.cli(
        "create-flow",
        "--flow-name",
        flow,
        "--trigger-config",
        json.dumps({"triggerType": "OnDemand"}),
        "--source-flow-config",
        json.dumps(
            {
                "connectorType": "Salesforce",
                "connectorProfileName": "sf-code",
                "sourceConnectorProperties": {"Salesforce": {"object": "Account"}},
            }
        ),
        "--destination-flow-config-list",
        json.dumps(
            [
                {
                    "connectorType": "S3",
                    "destinationConnectorProperties": {
                        "S3": {"bucketName": bucket, "bucketPrefix": "code"}
                    },
                }
            ]
        ),
        "--tasks",
        json.dumps(projection_tasks({"Id": "id", "Name": "string"})),
    )
    run = stack.run_on_demand(flow)
    assert_successful(run)
    assert run["executionResult"]["recordsProcessed"] == 1

    # No code or token the fake issued ever reaches the log or a file in the clear.
    log = stack.log.read_text(errors="replace")
    assert code not in log
    for marker in ("00Daccess!", "00Drefresh!", "00Dcode!"):
        assert marker not in log, f"{marker} in the server log"
    for path in stack.data_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for marker in (b"00Daccess!", b"00Drefresh!", code.encode()):
                assert marker not in content, f"{marker!r} stored in clear in {path}"


# ---------------------------------------------------------------------------------------------
# (f) schemaVersion follows a field added in Salesforce.
# ---------------------------------------------------------------------------------------------


def test_a_new_salesforce_field_raises_the_schema_version(stack, s3, bucket):
    fake = stack.fake
    (first_id, _) = fake.insert("Account", [{"Name": "First"}, {"Name": "Second"}])
    stack.token_profile("sf-dynamic")
    flow = unique("sf-dynamic")
    stack.cli(
        "create-flow",
        "--flow-name",
        flow,
        "--trigger-config",
        json.dumps({"triggerType": "OnDemand"}),
        "--source-flow-config",
        json.dumps(
            {
                "connectorType": "Salesforce",
                "connectorProfileName": "sf-dynamic",
                "sourceConnectorProperties": {
                    "Salesforce": {"object": "Account", "enableDynamicFieldUpdate": True}
                },
            }
        ),
        "--destination-flow-config-list",
        json.dumps(
            [
                {
                    "connectorType": "S3",
                    "destinationConnectorProperties": {
                        "S3": {
                            "bucketName": bucket,
                            "bucketPrefix": "dynamic",
                            "s3OutputFormatConfig": {
                                "fileType": "PARQUET",
                                "prefixConfig": {
                                    "pathPrefixHierarchy": ["SCHEMA_VERSION", "EXECUTION_ID"]
                                },
                            },
                        }
                    },
                }
            ]
        ),
        "--tasks",
        json.dumps(
            [
                {
                    "sourceFields": [],
                    "connectorOperator": {"Salesforce": "NO_OP"},
                    "taskType": "Map_all",
                    "taskProperties": {},
                }
            ]
        ),
    )

    def run_and_read(version: int) -> list[dict]:
        run = stack.run_on_demand(flow)
        assert_successful(run)
        prefix = f"dynamic/{flow}/schemaVersion_{version}/{run['executionId']}/"
        keys = list_keys(s3, bucket, prefix)
        assert keys, list_keys(s3, bucket, f"dynamic/{flow}/")
        return read_parquet(s3, bucket, keys)

    rows = run_and_read(1)
    assert len(rows) == 2
    assert "Region__c" not in rows[0]
    assert stack.json("describe-flow", "--flow-name", flow)["schemaVersion"] == 1

    fake.add_field("Account", "Region__c", "string")
    fake.update("Account", first_id, {"Region__c": "Île-de-France"})
    rows = run_and_read(2)
    assert stack.json("describe-flow", "--flow-name", flow)["schemaVersion"] == 2
    regions = {row["Id"]: row["Region__c"] for row in rows}
    assert regions[first_id] == "Île-de-France"
    assert sum(value is None for value in regions.values()) == 1

    # Nothing new: the version stays where it is.
    run_and_read(2)
    assert stack.json("describe-flow", "--flow-name", flow)["schemaVersion"] == 2


# ---------------------------------------------------------------------------------------------
# Connector metadata, checked against botocore's model by the `api` wrapper.
# ---------------------------------------------------------------------------------------------


def test_salesforce_is_advertised_like_appflow(api):
    configurations = api.describe_connectors()["connectorConfigurations"]
    salesforce = configurations["Salesforce"]
    assert salesforce["canUseAsSource"] is True
    assert salesforce["canUseAsDestination"] is True
    metadata = salesforce["connectorMetadata"]["Salesforce"]
    assert set(metadata["oauth2GrantTypesSupported"]) == {
        "AUTHORIZATION_CODE",
        "JWT_BEARER",
        "CLIENT_CREDENTIALS",
    }
    assert {"UPSERT", "INSERT", "UPDATE", "DELETE"} <= set(salesforce["supportedWriteOperations"])
    assert "S3" in salesforce["supportedDestinationConnectors"]
    one = api.describe_connector(connectorType="Salesforce")["connectorConfiguration"]
    assert one["connectorType"] == "Salesforce"
    assert {"PROJECTION", "BETWEEN", "CONTAINS"} <= set(one["supportedOperators"])
