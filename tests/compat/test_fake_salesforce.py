"""The fake Salesforce server, driven by `simple-salesforce` (PyPI), a client written elsewhere.

This checks that the fake's wire shapes (OAuth token responses, describe, query paging with
`nextRecordsUrl`, sObject Collections results, error bodies, `Sforce-Limit-Info`) are the ones a
real Salesforce client expects, not only the ones the Rust connector expects.

The fake binary comes from `FAKE_SALESFORCE_BIN`, else `$CARGO_TARGET_DIR/debug/fake-salesforce`
(built with `cargo build -p sluice-fake-salesforce` when missing).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import requests

simple_salesforce = pytest.importorskip("simple_salesforce")
from simple_salesforce import Salesforce  # noqa: E402
from simple_salesforce.exceptions import (  # noqa: E402
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def fake_binary() -> Path:
    explicit = os.environ.get("FAKE_SALESFORCE_BIN")
    if explicit:
        return Path(explicit)
    target = os.environ.get("CARGO_TARGET_DIR")
    target_dir = Path(target).expanduser() if target else REPO_ROOT / "target"
    binary = target_dir / "debug" / "fake-salesforce"
    if not binary.exists():
        subprocess.run(
            ["cargo", "build", "--quiet", "-p", "sluice-fake-salesforce", "--bin", "fake-salesforce"],
            cwd=REPO_ROOT,
            check=True,
        )
    return binary


class PlainHttpSession(requests.Session):
    """simple-salesforce always builds https:// URLs; the fake listens on plain loopback HTTP."""

    def __init__(self, base: str):
        super().__init__()
        self.host = base.removeprefix("http://")

    def request(self, method, url, *args, **kwargs):
        url = url.replace(f"https://{self.host}", f"http://{self.host}")
        return super().request(method, url, *args, **kwargs)


@pytest.fixture(scope="module")
def fake():
    process = subprocess.Popen(
        [str(fake_binary()), "--accounts", "5"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line, "fake-salesforce exited before printing its address"
        yield json.loads(line)
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def client(fake, token=None) -> Salesforce:
    url = fake["url"]
    return Salesforce(
        instance_url=url,
        session_id=token or fake["access_token"],
        session=PlainHttpSession(url),
        version="58.0",
    )


def test_describe_and_list_objects(fake):
    sf = client(fake)
    names = [o["name"] for o in sf.describe()["sobjects"]]
    assert "Account" in names
    fields = {f["name"]: f for f in sf.Account.describe()["fields"]}
    assert fields["Id"]["type"] == "id"
    assert fields["LastModifiedDate"]["type"] == "datetime"
    assert fields["Name"]["nillable"] is False
    assert fields["External_Id__c"]["externalId"] is True
    assert [v["value"] for v in fields["Industry"]["picklistValues"]][:2] == ["Agriculture", "Banking"]


def test_crud_and_upsert_round_trip(fake):
    sf = client(fake)
    created = sf.Account.create({"Name": "Ünïcode Ltd", "NumberOfEmployees": 12})
    assert created["success"] is True and len(created["id"]) == 18
    record = sf.Account.get(created["id"])
    assert record["Name"] == "Ünïcode Ltd"
    assert record["attributes"]["type"] == "Account"
    assert sf.Account.update(created["id"], {"Phone": "555"}) == 204
    assert sf.Account.get(created["id"])["Phone"] == "555"
    assert sf.Account.upsert("External_Id__c/ext-1", {"Name": "Upserted"}) == 201
    assert sf.Account.upsert("External_Id__c/ext-1", {"Name": "Upserted again"}) == 204
    assert sf.Account.delete(created["id"]) == 204
    with pytest.raises(Exception):
        sf.Account.get(created["id"])


def test_query_all_follows_next_records_url(fake):
    sf = client(fake)
    # 2,200 rows need two pages at Salesforce's default page size of 2,000.
    payload = {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Account"}, "Name": f"Paged {i}"} for i in range(200)
        ],
    }
    for _ in range(11):
        results = sf.restful("composite/sobjects", method="POST", data=json.dumps(payload))
        assert all(r["success"] for r in results)
    first = sf.query("SELECT Id, Name FROM Account WHERE Name LIKE 'Paged%'")
    assert first["done"] is False
    assert first["nextRecordsUrl"].startswith("/services/data/v58.0/query/")
    assert len(first["records"]) == 2000
    everything = sf.query_all("SELECT Id, Name FROM Account WHERE Name LIKE 'Paged%'")
    assert everything["totalSize"] == 2200
    assert len(everything["records"]) == 2200
    assert len({r["Id"] for r in everything["records"]}) == 2200


def test_collections_report_per_record_errors(fake):
    sf = client(fake)
    payload = {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Account"}, "Name": "Good"},
            {"attributes": {"type": "Account"}, "Phone": "no name"},
            {"attributes": {"type": "Account"}, "Name": "Bad", "NumberOfEmployees": "many"},
        ],
    }
    results = sf.restful("composite/sobjects", method="POST", data=json.dumps(payload))
    assert [r["success"] for r in results] == [True, False, False]
    assert results[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert results[1]["errors"][0]["fields"] == ["Name"]
    assert results[2]["errors"][0]["statusCode"] == "INVALID_TYPE_ON_FIELD_IN_RECORD"


def test_malformed_query_and_expired_session(fake):
    sf = client(fake)
    with pytest.raises(SalesforceMalformedRequest) as raised:
        sf.query("SELECT Id FROM Account WHERE Name = 'open")
    assert raised.value.content[0]["errorCode"] == "MALFORMED_QUERY"
    with pytest.raises(SalesforceExpiredSession):
        client(fake, token="not-a-token").query("SELECT Id FROM Account")


def test_oauth_refresh_grant_and_limit_header(fake):
    url = fake["url"]
    response = requests.post(
        f"{url}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": fake["refresh_token"],
            "client_id": fake["client_id"],
            "client_secret": fake["client_secret"],
        },
        timeout=10,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == url
    sf = client(fake, token=body["access_token"])
    sf.query("SELECT Id FROM Account LIMIT 1")
    assert sf.api_usage["api-usage"].total == 15000
    bad = requests.post(
        f"{url}/services/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": "revoked", "client_id": fake["client_id"]},
        timeout=10,
    )
    assert bad.status_code == 400
    assert bad.json() == {"error": "invalid_grant", "error_description": "expired access/refresh token"}
