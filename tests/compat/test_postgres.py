"""The Postgres connector through the AppFlow API: a `CustomConnector` profile labelled
`Postgres`, entity metadata, and flows Postgres -> S3 and S3 -> Postgres, checked against the
database with `psql`. Needs `SLUICE_TEST_POSTGRES_URL` (a superuser URL; `scripts/test.sh`
starts a throwaway cluster); without it the module is skipped, except under `CI=true`."""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.parse
import uuid

import pytest

from support import (
    ACCOUNT_ID,
    REGION,
    assert_successful,
    by_id,
    create_and_run,
    flow_request,
    normalise,
    run_flow,
    s3_destination,
    s3_source,
    unique,
)

POSTGRES_URL = os.environ.get("SLUICE_TEST_POSTGRES_URL")

if not POSTGRES_URL:
    if os.environ.get("CI") == "true":
        raise RuntimeError(
            "CI must run the Postgres compatibility tests: set SLUICE_TEST_POSTGRES_URL"
        )
    pytest.skip("SLUICE_TEST_POSTGRES_URL is not set", allow_module_level=True)


def psql_binary() -> str:
    found = shutil.which("psql")
    if found:
        return found
    for candidate in sorted(os.listdir("/usr/lib/postgresql"), reverse=True):
        path = f"/usr/lib/postgresql/{candidate}/bin/psql"
        if os.path.exists(path):
            return path
    raise RuntimeError("psql not found")


def psql(url: str, sql: str) -> list[list[str]]:
    """Runs SQL and returns the rows as lists of text (NULL as None)."""
    completed = subprocess.run(
        [
            psql_binary(),
            url,
            "-X",
            "-q",
            "-A",
            "-t",
            "-F",
            "\t",
            "-P",
            "null=<NULL>",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    rows = []
    for line in completed.stdout.splitlines():
        if line:
            rows.append([None if value == "<NULL>" else value for value in line.split("\t")])
    return rows


@pytest.fixture(scope="module")
def database() -> dict:
    """A fresh database with a `crm.accounts` table; dropped at the end."""
    parsed = urllib.parse.urlparse(POSTGRES_URL)
    name = f"sluice_compat_{uuid.uuid4().hex[:8]}"
    psql(POSTGRES_URL, f"CREATE DATABASE {name}")
    url = parsed._replace(path=f"/{name}").geturl()
    psql(
        url,
        """
        CREATE SCHEMA crm;
        CREATE TABLE crm.accounts (
            id integer PRIMARY KEY,
            name text NOT NULL,
            revenue numeric(12, 2),
            active boolean,
            updated_at timestamptz
        );
        INSERT INTO crm.accounts VALUES
            (1, 'Acme', 1200.50, true, '2024-01-01T10:00:00Z'),
            (2, 'Émile & Fils', NULL, false, '2024-02-01T10:00:00Z'),
            (3, '東京商事', 98000.00, true, NULL),
            (4, 'Zero Ltd', 0.00, NULL, '2024-03-01T10:00:00Z');
        CREATE TABLE public.plain (k text);
        """,
    )
    info = {
        "url": url,
        "name": name,
        "host": parsed.hostname,
        "port": str(parsed.port),
        "user": urllib.parse.unquote(parsed.username or ""),
        "password": urllib.parse.unquote(parsed.password or ""),
    }
    yield info
    psql(POSTGRES_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def profile_request(name: str, db: dict, password: str | None = None) -> dict:
    return {
        "connectorProfileName": name,
        "connectorType": "CustomConnector",
        "connectorLabel": "Postgres",
        "connectionMode": "Public",
        "connectorProfileConfig": {
            "connectorProfileProperties": {
                "CustomConnector": {
                    "profileProperties": {
                        "host": db["host"],
                        "port": db["port"],
                        "database": db["name"],
                        "sslmode": "disable",
                    }
                }
            },
            "connectorProfileCredentials": {
                "CustomConnector": {
                    "authenticationType": "BASIC",
                    "basic": {
                        "username": db["user"],
                        "password": password if password is not None else db["password"],
                    },
                }
            },
        },
    }


@pytest.fixture(scope="module")
def profile(api, database) -> str:
    name = unique("pg-profile")
    response = api.create_connector_profile(**profile_request(name, database))
    assert response["connectorProfileArn"] == (
        f"arn:aws:appflow:{REGION}:{ACCOUNT_ID}:connectorprofile/{name}"
    )
    return name


def custom_operator(operator: str) -> dict:
    return {"CustomConnector": operator}


def pg_source(profile_name: str, entity: str) -> dict:
    return {
        "connectorType": "CustomConnector",
        "connectorProfileName": profile_name,
        "sourceConnectorProperties": {"CustomConnector": {"entityName": entity}},
    }


def pg_destination(
    profile_name: str, entity: str, operation: str = "INSERT", id_fields: list[str] | None = None
) -> dict:
    properties = {"entityName": entity, "writeOperationType": operation}
    if id_fields is not None:
        properties["idFieldNames"] = id_fields
    return {
        "connectorType": "CustomConnector",
        "connectorProfileName": profile_name,
        "destinationConnectorProperties": {"CustomConnector": properties},
    }


def pg_tasks(fields: list[str]) -> list[dict]:
    tasks = [
        {
            "sourceFields": fields,
            "connectorOperator": custom_operator("PROJECTION"),
            "taskType": "Filter",
            "taskProperties": {},
        }
    ]
    for field in fields:
        tasks.append(
            {
                "sourceFields": [field],
                "connectorOperator": custom_operator("NO_OP"),
                "destinationField": field,
                "taskType": "Map",
                "taskProperties": {},
            }
        )
    return tasks


def test_wrong_password_is_a_connector_authentication_error(api, database):
    request = profile_request(unique("pg-bad"), database, password="not-the-password")
    api.error("ConnectorAuthenticationException", "create_connector_profile", **request)


def test_describe_the_postgres_connector(api):
    configuration = api.describe_connector(
        connectorType="CustomConnector", connectorLabel="Postgres"
    )["connectorConfiguration"]
    assert configuration["canUseAsSource"] is True
    assert configuration["canUseAsDestination"] is True


def test_list_and_describe_tables(api, profile):
    listing = api.list_connector_entities(
        connectorType="CustomConnector", connectorProfileName=profile
    )["connectorEntityMap"]
    names = {entity["name"] for entities in listing.values() for entity in entities}
    assert {"crm.accounts", "public.plain"} <= names, names

    only_crm = api.list_connector_entities(
        connectorType="CustomConnector", connectorProfileName=profile, entitiesPath="crm"
    )["connectorEntityMap"]
    assert {e["name"] for es in only_crm.values() for e in es} == {"crm.accounts"}

    fields = api.describe_connector_entity(
        connectorType="CustomConnector",
        connectorProfileName=profile,
        connectorEntityName="crm.accounts",
    )["connectorEntityFields"]
    by_name = {f["identifier"]: f for f in fields}
    assert list(by_name) == ["id", "name", "revenue", "active", "updated_at"]
    assert by_name["id"].get("isPrimaryKey") is True
    assert not by_name["name"].get("isPrimaryKey", False)


def test_postgres_to_s3(e2e, api, profile):
    tasks = pg_tasks(["id", "name", "revenue", "active"]) + [
        {
            "sourceFields": ["revenue"],
            "connectorOperator": custom_operator("GREATER_THAN"),
            "taskType": "Filter",
            "taskProperties": {"DATA_TYPE": "double", "VALUE": "100"},
        }
    ]
    name = unique("pg-to-s3")
    request = flow_request(
        name,
        pg_source(profile, "crm.accounts"),
        s3_destination(e2e.dst_bucket, f"out-{name}", "JSON"),
        tasks,
    )
    record = create_and_run(api, request)
    assert_successful(record)
    rows = normalise(by_id(e2e.jsonl(e2e.result(request, record))), ["id", "name", "active"])
    assert rows == [
        {"id": 1, "name": "Acme", "active": True},
        {"id": 3, "name": "東京商事", "active": True},
    ]


def test_s3_to_postgres_insert_then_upsert(e2e, api, profile, database):
    table = f"crm.copy_{uuid.uuid4().hex[:6]}"
    prefix = e2e.upload({"a.csv": "id,name,score\n1,Ann,10\n2,Bob,20\n"})
    tasks = [
        {
            "sourceFields": ["id", "name", "score"],
            "connectorOperator": {"S3": "PROJECTION"},
            "taskType": "Filter",
            "taskProperties": {},
        },
        {
            "sourceFields": ["id"],
            "connectorOperator": {"S3": "NO_OP"},
            "destinationField": "id",
            "taskType": "Map",
            "taskProperties": {"SOURCE_DATA_TYPE": "string", "DESTINATION_DATA_TYPE": "integer"},
        },
        {
            "sourceFields": ["name"],
            "connectorOperator": {"S3": "NO_OP"},
            "destinationField": "name",
            "taskType": "Map",
            "taskProperties": {},
        },
        {
            "sourceFields": ["score"],
            "connectorOperator": {"S3": "NO_OP"},
            "destinationField": "score",
            "taskType": "Map",
            "taskProperties": {"SOURCE_DATA_TYPE": "string", "DESTINATION_DATA_TYPE": "integer"},
        },
    ]
    insert = flow_request(
        unique("s3-to-pg"),
        s3_source(e2e.src_bucket, prefix),
        pg_destination(profile, table),
        tasks,
    )
    assert_successful(create_and_run(api, insert))
    assert psql(database["url"], f"SELECT id, name, score FROM {table} ORDER BY id") == [
        ["1", "Ann", "10"],
        ["2", "Bob", "20"],
    ]

    e2e.upload({"b.csv": "id,name,score\n2,Bobby,25\n3,Cy,30\n"}, prefix=prefix + "-upd")
    upsert = flow_request(
        unique("s3-upsert-pg"),
        s3_source(e2e.src_bucket, prefix + "-upd"),
        pg_destination(profile, table, "UPSERT", ["id"]),
        tasks,
    )
    assert_successful(create_and_run(api, upsert))
    assert psql(database["url"], f"SELECT id, name, score FROM {table} ORDER BY id") == [
        ["1", "Ann", "10"],
        ["2", "Bobby", "25"],
        ["3", "Cy", "30"],
    ]

    # Running the insert flow again violates the primary key: the run fails and, being one
    # transaction, changes nothing.
    psql(database["url"], f"ALTER TABLE {table} ADD PRIMARY KEY (id)")
    failed = run_flow(api, insert["flowName"])
    assert failed["executionStatus"] == "Error", failed
    assert psql(database["url"], f"SELECT count(*) FROM {table}") == [["3"]]


def test_profile_in_use_cannot_be_deleted_without_force(api, database):
    name = unique("pg-inuse")
    api.create_connector_profile(**profile_request(name, database))
    request = flow_request(
        unique("pg-user"),
        pg_source(name, "crm.accounts"),
        s3_destination("some-bucket", "out"),
        pg_tasks(["id"]),
    )
    api.create_flow(**request)
    api.error("ConflictException", "delete_connector_profile", connectorProfileName=name)
    api.delete_connector_profile(connectorProfileName=name, forceDelete=True)
    assert (
        api.describe_connector_profiles(connectorProfileNames=[name])["connectorProfileDetails"]
        == []
    )


def test_flow_with_unknown_profile_is_rejected(api):
    request = flow_request(
        unique("pg-noprofile"),
        pg_source(unique("missing"), "crm.accounts"),
        s3_destination("some-bucket", "out"),
        pg_tasks(["id"]),
    )
    api.error({"ResourceNotFoundException", "ValidationException"}, "create_flow", **request)
