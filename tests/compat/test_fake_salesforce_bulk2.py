"""The fake Salesforce server's Bulk API 2.0, driven by `simple-salesforce`'s `bulk2` client.

simple-salesforce creates and polls jobs, pages query results by `Sforce-Locator`, uploads CSV,
closes ingest jobs and reads `successfulResults` / `failedResults` the way it does against a
real org; these tests check the fake answers in the shapes that client expects. The fake itself
and its fixtures come from `test_fake_salesforce.py`.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
import requests

pytest.importorskip("simple_salesforce")
from simple_salesforce.exceptions import (  # noqa: E402
    SalesforceMalformedRequest,
    SalesforceOperationError,
    SalesforceResourceNotFound,
)

from test_fake_salesforce import client, fake  # noqa: E402,F401  (fake is a fixture)


def rows(pages) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for page in pages:
        out.extend(csv.DictReader(io.StringIO(page)))
    return out


def jobs_url(fake, kind: str) -> str:
    return f"{fake['url']}/services/data/v58.0/jobs/{kind}"


def auth(fake) -> dict[str, str]:
    return {"Authorization": f"Bearer {fake['access_token']}"}


def test_query_pages_by_locator(fake):
    sf = client(fake)
    inserted = sf.bulk2.Account.insert(
        records=[{"Name": f"Bulk {i:02d}", "AnnualRevenue": 1.5e7, "Description": 'say "hi", bye'}
                 for i in range(25)],
        wait=0,
    )
    assert inserted[0]["numberRecordsProcessed"] == 25
    assert inserted[0]["numberRecordsFailed"] == 0
    pages = list(
        sf.bulk2.Account.query(
            "SELECT Id, Name, AnnualRevenue, Description, CreatedDate FROM Account "
            "WHERE Name LIKE 'Bulk%' ORDER BY Name",
            max_records=10,
            wait=0,
        )
    )
    # 25 records at 10 per page: three pages, each with the header row.
    assert len(pages) == 3
    assert all(page.startswith('"Id","Name","AnnualRevenue","Description","CreatedDate"')
               for page in pages)
    records = rows(pages)
    assert [r["Name"] for r in records] == [f"Bulk {i:02d}" for i in range(25)]
    assert len({r["Id"] for r in records}) == 25
    assert records[0]["AnnualRevenue"] == "1.5E7"
    assert records[0]["Description"] == 'say "hi", bye'
    # Bulk API 2.0 writes date-times with a Z, unlike the REST API's +0000.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", records[0]["CreatedDate"])


def test_query_all_sees_deleted_records(fake):
    sf = client(fake)
    created = sf.Account.create({"Name": "Soon deleted"})
    sf.Account.delete(created["id"])
    query = "SELECT Id, IsDeleted FROM Account WHERE Name = 'Soon deleted'"
    assert rows(sf.bulk2.Account.query(query, wait=0)) == []
    assert rows(sf.bulk2.Account.query_all(query, wait=0)) == [
        {"Id": created["id"], "IsDeleted": "true"}
    ]


def test_upsert_update_delete_and_failed_results(fake):
    sf = client(fake)
    results = sf.bulk2.Account.upsert(
        records=[
            {"External_Id__c": "b2-1", "Name": "First"},
            {"External_Id__c": "b2-2", "Name": "Second"},
            {"External_Id__c": "b2-3", "Name": ""},  # empty: no Name on insert
            {"External_Id__c": "b2-4", "Name": "Twin A"},
            {"External_Id__c": "b2-4", "Name": "Twin B"},
        ],
        external_id_field="External_Id__c",
        wait=0,
    )
    job = results[0]
    assert (job["numberRecordsProcessed"], job["numberRecordsFailed"]) == (5, 3)
    failed = list(csv.DictReader(io.StringIO(sf.bulk2.Account.get_failed_records(job["job_id"]))))
    errors = sorted(r["sf__Error"].split(":", 1)[0] for r in failed)
    assert errors == ["DUPLICATE_EXTERNAL_ID", "DUPLICATE_EXTERNAL_ID", "REQUIRED_FIELD_MISSING"]
    missing = next(r for r in failed if r["External_Id__c"] == "b2-3")
    assert missing["sf__Error"] == (
        "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --"
    )
    succeeded = list(
        csv.DictReader(io.StringIO(sf.bulk2.Account.get_successful_records(job["job_id"])))
    )
    assert sorted(r["External_Id__c"] for r in succeeded) == ["b2-1", "b2-2"]
    assert all(r["sf__Created"] == "true" and len(r["sf__Id"]) == 18 for r in succeeded)

    first_id = next(r["sf__Id"] for r in succeeded if r["External_Id__c"] == "b2-1")
    updated = sf.bulk2.Account.update(
        records=[{"Id": first_id, "Phone": "555"}, {"Id": "001999999999999AAA", "Phone": "1"}],
        wait=0,
    )
    assert (updated[0]["numberRecordsProcessed"], updated[0]["numberRecordsFailed"]) == (2, 1)
    assert sf.Account.get(first_id)["Phone"] == "555"

    # A second upsert of an existing key updates it: sf__Created is false.
    again = sf.bulk2.Account.upsert(
        records=[{"External_Id__c": "b2-1", "Name": "First v2"}],
        external_id_field="External_Id__c",
        wait=0,
    )
    succeeded = list(
        csv.DictReader(io.StringIO(sf.bulk2.Account.get_successful_records(again[0]["job_id"])))
    )
    assert [(r["sf__Id"], r["sf__Created"]) for r in succeeded] == [(first_id, "false")]

    deleted = sf.bulk2.Account.delete(records=[{"Id": first_id}], wait=0)
    assert deleted[0]["numberRecordsFailed"] == 0
    hard = sf.bulk2.Account.hard_delete(records=[{"Id": first_id}], wait=0)
    assert hard[0]["numberRecordsFailed"] == 0
    everything = rows(sf.bulk2.Account.query_all(
        "SELECT Id FROM Account WHERE External_Id__c = 'b2-1'", wait=0))
    assert everything == []


def test_job_errors_and_lifecycle(fake):
    sf = client(fake)
    with pytest.raises(SalesforceMalformedRequest) as raised:
        list(sf.bulk2.Account.query("SELECT Id FROM Account WHERE", wait=0))
    assert raised.value.content[0]["errorCode"] == "MALFORMED_QUERY"
    # An unknown column in the upload fails the job, as in Salesforce.
    with pytest.raises(SalesforceOperationError) as failed:
        sf.bulk2.Account.insert(records=[{"Name": "x", "Nope__c": "y"}], wait=0)
    assert "Field name not found : Nope__c" in str(failed.value)

    # Create, upload once, abort, delete; a second upload is refused.
    created = requests.post(jobs_url(fake, "ingest"), headers=auth(fake), timeout=10,
                            json={"object": "Account", "operation": "insert",
                                  "contentType": "CSV", "lineEnding": "LF"}).json()
    assert created["state"] == "Open" and created["id"].startswith("750")
    upload = f"{jobs_url(fake, 'ingest')}/{created['id']}/batches"
    csv_headers = {**auth(fake), "Content-Type": "text/csv"}
    assert requests.put(upload, data=b"Name\nA\n", headers=csv_headers, timeout=10).status_code == 201
    second = requests.put(upload, data=b"Name\nB\n", headers=csv_headers, timeout=10)
    assert second.status_code == 400
    assert second.json()[0]["errorCode"] == "BULK_API_ERROR"
    aborted = requests.patch(f"{jobs_url(fake, 'ingest')}/{created['id']}", headers=auth(fake),
                             json={"state": "Aborted"}, timeout=10).json()
    assert aborted["state"] == "Aborted"
    gone = requests.delete(f"{jobs_url(fake, 'ingest')}/{created['id']}", headers=auth(fake),
                           timeout=10)
    assert gone.status_code == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.bulk2.Account._client.get_job(created["id"], False)
    listed = requests.get(jobs_url(fake, "query"), headers=auth(fake), timeout=10).json()
    assert listed["done"] is True and all(j["jobType"] == "V2Query" for j in listed["records"])
