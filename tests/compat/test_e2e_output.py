"""End-to-end destination behaviour: key layout (`prefixConfig`, partitions), aggregation,
CSV / JSON Lines / Parquet output, `preserveSourceDataTyping`, and run counters."""

from __future__ import annotations

import datetime as dt
import json
import re

import pyarrow as pa
import pytest

from datasets import PEOPLE_CSV, people_rows
from support import (
    assert_successful,
    by_id,
    find_execution,
    map_all,
    map_task,
    normalise,
    parse_csv,
    parse_jsonl,
    parse_parquet,
    projection,
    run_flow,
    wait_for_run,
)


@pytest.fixture(scope="module")
def people(e2e) -> str:
    return e2e.upload({"people.csv": PEOPLE_CSV})


def relative_parts(result, key: str) -> list[str]:
    assert key.startswith(result.output_prefix), (
        f"{key} is outside <bucketPrefix>/<flowName>/ ({result.output_prefix})"
    )
    return key[len(result.output_prefix) :].split("/")


def candidate_times(record: dict) -> list[dt.datetime]:
    """The run start (UTC) and its neighbouring minutes, in case a minute boundary fell between
    the record's `startedAt` and the instant the writer used."""
    started = record["startedAt"].astimezone(dt.timezone.utc)
    return [started + dt.timedelta(minutes=delta) for delta in (-1, 0, 1)]


DEPTH = {"YEAR": 1, "MONTH": 2, "DAY": 3, "HOUR": 4, "MINUTE": 5}


def date_folders(instant: dt.datetime, prefix_format: str) -> list[str]:
    parts = [
        f"{instant.year:04d}",
        f"{instant.month:02d}",
        f"{instant.day:02d}",
        f"{instant.hour:02d}",
        f"{instant.minute:02d}",
    ]
    return parts[: DEPTH[prefix_format]]


def date_in_name_pattern(instant: dt.datetime, prefix_format: str) -> str:
    parts = date_folders(instant, prefix_format)
    return "[-_/T]?".join(parts)


# ---------------------------------------------------------------------------------------------
# Key layout.
# ---------------------------------------------------------------------------------------------


def test_default_layout_is_flow_then_execution_id(e2e, people):
    result = e2e.run([map_all()], source_prefix=people, name_prefix="layout")
    assert_successful(result.record)
    assert result.keys
    for key in result.keys:
        parts = relative_parts(result, key)
        assert len(parts) == 2, key
        assert parts[0] == result.execution_id, key
        assert parts[1], key


@pytest.mark.parametrize("prefix_format", ["YEAR", "MONTH", "DAY", "HOUR", "MINUTE"])
def test_path_prefix_with_date_folders(e2e, people, prefix_format):
    config = {
        "prefixType": "PATH",
        "prefixFormat": prefix_format,
        "pathPrefixHierarchy": ["EXECUTION_ID"],
    }
    result = e2e.run(
        [map_all()],
        source_prefix=people,
        prefix_config=config,
        name_prefix=f"path-{prefix_format.lower()}",
    )
    assert_successful(result.record)
    assert result.keys
    depth = DEPTH[prefix_format]
    options = [date_folders(t, prefix_format) for t in candidate_times(result.record)]
    for key in result.keys:
        parts = relative_parts(result, key)
        assert len(parts) == depth + 2, key
        assert parts[:depth] in options, f"{key}: date folders {parts[:depth]} not in {options}"
        assert parts[depth] == result.execution_id, key


def test_schema_version_and_execution_id_hierarchy(e2e, people):
    config = {
        "prefixType": "PATH",
        "prefixFormat": "DAY",
        "pathPrefixHierarchy": ["SCHEMA_VERSION", "EXECUTION_ID"],
    }
    result = e2e.run([map_all()], source_prefix=people, prefix_config=config, name_prefix="schv")
    assert_successful(result.record)
    options = [date_folders(t, "DAY") for t in candidate_times(result.record)]
    for key in result.keys:
        parts = relative_parts(result, key)
        assert parts[0] == "schemaVersion_1", key
        assert parts[1:4] in options, key
        assert parts[4] == result.execution_id, key
        assert len(parts) == 6, key


def test_schema_version_folder_follows_updates(e2e, people):
    config = {"pathPrefixHierarchy": ["SCHEMA_VERSION", "EXECUTION_ID"]}
    request = e2e.request(
        project_and_map_people(["id"]), people, prefix_config=config, name_prefix="schv2"
    )
    e2e.api.create_flow(**request)
    update = dict(request)
    update["tasks"] = project_and_map_people(["id", "name"])
    e2e.api.update_flow(**update)
    assert e2e.api.describe_flow(flowName=request["flowName"])["schemaVersion"] == 2
    result = e2e.result(request, run_flow(e2e.api, request["flowName"]))
    assert_successful(result.record)
    for key in result.keys:
        parts = relative_parts(result, key)
        assert parts[0] == "schemaVersion_2", key
        assert parts[1] == result.execution_id, key


def project_and_map_people(fields: list[str]) -> list[dict]:
    return [projection(fields)] + [map_task(f) for f in fields]


@pytest.mark.parametrize("prefix_format", ["DAY", "HOUR"])
def test_filename_prefix_puts_the_date_in_the_file_name(e2e, people, prefix_format):
    config = {
        "prefixType": "FILENAME",
        "prefixFormat": prefix_format,
        "pathPrefixHierarchy": ["EXECUTION_ID"],
    }
    result = e2e.run([map_all()], source_prefix=people, prefix_config=config, name_prefix="fname")
    assert_successful(result.record)
    patterns = [date_in_name_pattern(t, prefix_format) for t in candidate_times(result.record)]
    for key in result.keys:
        parts = relative_parts(result, key)
        assert parts[:-1] == [result.execution_id], f"{key}: no date folders expected"
        assert any(re.search(p, parts[-1]) for p in patterns), (
            f"{key}: file name has no {prefix_format} date ({patterns})"
        )


def test_path_and_filename_prefix(e2e, people):
    config = {
        "prefixType": "PATH_AND_FILENAME",
        "prefixFormat": "DAY",
        "pathPrefixHierarchy": ["EXECUTION_ID"],
    }
    result = e2e.run([map_all()], source_prefix=people, prefix_config=config, name_prefix="pnf")
    assert_successful(result.record)
    times = candidate_times(result.record)
    for key in result.keys:
        parts = relative_parts(result, key)
        assert parts[:3] in [date_folders(t, "DAY") for t in times], key
        assert parts[3] == result.execution_id, key
        assert any(re.search(date_in_name_pattern(t, "DAY"), parts[-1]) for t in times), key


# ---------------------------------------------------------------------------------------------
# Partitions and aggregation.
# ---------------------------------------------------------------------------------------------

PARTITION_JSONL = "".join(
    json.dumps(record) + "\n"
    for record in [
        {"id": 1, "country": "FR", "v": "a"},
        {"id": 2, "country": "US", "v": "b"},
        {"id": 3, "country": "FR", "v": "c"},
        {"id": 4, "country": None, "v": "d"},
        {"id": 5, "country": "a/b", "v": "e"},
        {"id": 6, "country": "US", "v": "f"},
    ]
)


def partition_task(*keys: str) -> dict:
    return {
        "sourceFields": list(keys),
        "connectorOperator": {"S3": "NO_OP"},
        "taskType": "Partition",
        "taskProperties": {"ORDERED_PARTITION_KEYS_LIST": json.dumps(list(keys))},
    }


def test_partition_keys_single_file_per_partition(e2e):
    result = e2e.run(
        [map_all(), partition_task("country")],
        {"p.jsonl": PARTITION_JSONL},
        input_type="JSON",
        aggregation={"aggregationType": "SingleFile"},
        name_prefix="part",
    )
    assert_successful(result.record)
    folders: dict[str, list[str]] = {}
    for key in result.keys:
        parts = relative_parts(result, key)
        assert parts[0] == result.execution_id, key
        # `/` inside a value is encoded, never a deeper folder.
        assert len(parts) == 3, key
        folders.setdefault(parts[1], []).append(key)
    assert {"country=FR", "country=US", "country=null"} <= set(folders), sorted(folders)
    slash = [f for f in folders if f not in {"country=FR", "country=US", "country=null"}]
    assert len(slash) == 1 and slash[0].startswith("country=a") and "%2F" in slash[0].upper(), slash
    assert all(len(keys) == 1 for keys in folders.values()), folders

    def ids(folder: str) -> list[int]:
        [key] = folders[folder]
        return sorted(int(r["id"]) for r in parse_jsonl(e2e.read(key)))

    assert ids("country=FR") == [1, 3]
    assert ids("country=US") == [2, 6]
    assert ids("country=null") == [4]
    assert ids(slash[0]) == [5]


def test_partitions_nest_under_date_and_execution_folders(e2e):
    config = {
        "prefixType": "PATH",
        "prefixFormat": "MONTH",
        "pathPrefixHierarchy": ["EXECUTION_ID"],
    }
    result = e2e.run(
        [map_all(), partition_task("country", "v")],
        {"p.jsonl": PARTITION_JSONL},
        input_type="JSON",
        prefix_config=config,
        name_prefix="partdate",
    )
    assert_successful(result.record)
    options = [date_folders(t, "MONTH") for t in candidate_times(result.record)]
    seen = set()
    for key in result.keys:
        parts = relative_parts(result, key)
        assert parts[:2] in options, key
        assert parts[2] == result.execution_id, key
        assert parts[3].startswith("country=") and parts[4].startswith("v="), key
        seen.add((parts[3], parts[4]))
    assert ("country=FR", "v=a") in seen and ("country=US", "v=f") in seen, seen
    assert len(seen) == 6


def big_csv(rows: int) -> str:
    lines = ["id,name,text"]
    for i in range(rows):
        lines.append(f"{i},name-{i:06d},{'lorem ipsum dolor sit amet ' * 4}{i}")
    return "\n".join(lines) + "\n"


def test_single_file_aggregation_combines_inputs(e2e):
    files = {f"part-{n}.csv": big_csv(50) for n in range(3)}
    result = e2e.run(
        [map_all()], files, aggregation={"aggregationType": "SingleFile"}, name_prefix="single"
    )
    assert_successful(result.record)
    assert len(result.keys) == 1, result.keys
    assert len(parse_jsonl(e2e.read(result.keys[0]))) == 150
    assert result.record["executionResult"]["recordsProcessed"] == 150


def test_target_file_size_splits_output(e2e):
    rows = 30_000
    result = e2e.run(
        [map_all()],
        {"big.csv": big_csv(rows)},
        aggregation={"aggregationType": "None", "targetFileSize": 1},
        file_type="CSV",
        name_prefix="target",
        timeout=180,
    )
    assert_successful(result.record)
    assert len(result.keys) >= 3, f"expected several ~1 MB files, got {result.keys}"
    seen = []
    sizes = []
    for key in result.keys:
        data = e2e.read(key)
        sizes.append(len(data))
        header, records = parse_csv(data)
        assert header == ["id", "name", "text"], key
        seen.extend(int(r["id"]) for r in records)
    assert sorted(seen) == list(range(rows))
    # Roughly the target: no file is far above 1 MB.
    assert max(sizes) < 3 * 1024 * 1024, sizes


# ---------------------------------------------------------------------------------------------
# Output formats.
# ---------------------------------------------------------------------------------------------


def test_csv_output_round_trips_quotes_newlines_and_unicode(e2e, people):
    result = e2e.run([map_all()], source_prefix=people, file_type="CSV", name_prefix="csvout")
    assert_successful(result.record)
    rows = []
    for key in result.keys:
        header, records = parse_csv(e2e.read(key))
        assert set(header) == set(people_rows()[0]), header
        rows.extend(records)
    assert by_id(rows) == people_rows()


def string_type(kind) -> bool:
    return (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or (pa.types.is_dictionary(kind) and pa.types.is_string(kind.value_type))
    )


CONVERTING_TASKS = [
    projection(["id", "name", "amount"]),
    map_task("id", "id", "string", "integer"),
    map_task("name", "name", "string", "string"),
    map_task("amount", "amount", "string", "double"),
]


def read_parquet(e2e, result):
    assert result.keys, "no output"
    return pa.concat_tables([parse_parquet(e2e.read(key)) for key in result.keys])


def test_parquet_output_is_all_strings_by_default(e2e, people):
    result = e2e.run(
        CONVERTING_TASKS,
        source_prefix=people,
        file_type="PARQUET",
        name_prefix="pq-str",
        preserve_types=False,
    )
    assert_successful(result.record)
    table = read_parquet(e2e, result)
    assert set(table.column_names) == {"id", "name", "amount"}
    for column in table.schema:
        assert string_type(column.type), f"{column.name} is {column.type}"
    rows = by_id(table.to_pylist())
    assert [r["id"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert [r["name"] for r in rows] == ["Alice", "Bob", "Émilie", "Zoë 🚀", "李雷"]
    assert [float(r["amount"]) for r in rows] == [10.5, -3.0, 100.0, 0.0, 42.0]


def test_parquet_preserve_source_data_typing(e2e, people):
    result = e2e.run(
        CONVERTING_TASKS,
        source_prefix=people,
        file_type="PARQUET",
        name_prefix="pq-typed",
        preserve_types=True,
    )
    assert_successful(result.record)
    table = read_parquet(e2e, result)
    schema = {column.name: column.type for column in table.schema}
    assert pa.types.is_integer(schema["id"]), schema
    assert pa.types.is_floating(schema["amount"]), schema
    assert string_type(schema["name"]), schema
    rows = sorted(table.to_pylist(), key=lambda r: r["id"])
    assert [r["id"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["amount"] for r in rows] == [10.5, -3.0, 100.0, 0.0, 42.0]


TYPED_JSONL = "".join(
    json.dumps(record, ensure_ascii=False) + "\n"
    for record in [
        {"id": 1, "price": 9.99, "active": True, "label": "ünï", "qty": 3},
        {"id": 2, "price": 0.5, "active": False, "label": None, "qty": None},
        {"id": 3, "price": 12, "active": None, "label": "🚀", "qty": -7},
    ]
)


def test_json_source_to_parquet_keeps_types(e2e):
    result = e2e.run(
        [map_all()],
        {"typed.jsonl": TYPED_JSONL},
        input_type="JSON",
        file_type="PARQUET",
        preserve_types=True,
        name_prefix="pq-json",
    )
    assert_successful(result.record)
    table = read_parquet(e2e, result)
    schema = {column.name: column.type for column in table.schema}
    assert pa.types.is_integer(schema["id"]), schema
    assert pa.types.is_floating(schema["price"]), schema
    assert pa.types.is_boolean(schema["active"]), schema
    assert pa.types.is_integer(schema["qty"]), schema
    assert string_type(schema["label"]), schema
    rows = sorted(table.to_pylist(), key=lambda r: r["id"])
    assert rows == [
        {"id": 1, "price": 9.99, "active": True, "label": "ünï", "qty": 3},
        {"id": 2, "price": 0.5, "active": False, "label": None, "qty": None},
        {"id": 3, "price": 12.0, "active": None, "label": "🚀", "qty": -7},
    ]


def test_json_source_to_json_output_keeps_json_types(e2e):
    result = e2e.run(
        [map_all()],
        {"typed.jsonl": TYPED_JSONL},
        input_type="JSON",
        file_type="JSON",
        name_prefix="json-json",
    )
    assert_successful(result.record)
    fields = ["id", "price", "active", "label", "qty"]
    rows = normalise(by_id(e2e.jsonl(result)), fields)
    assert rows == [
        {"id": 1, "price": 9.99, "active": True, "label": "ünï", "qty": 3},
        {"id": 2, "price": 0.5, "active": False, "label": None, "qty": None},
        {"id": 3, "price": 12.0, "active": None, "label": "🚀", "qty": -7},
    ]
    assert all(type(r["id"]) is int and type(r["active"]) in (bool, type(None)) for r in rows)


# ---------------------------------------------------------------------------------------------
# Counters and run records.
# ---------------------------------------------------------------------------------------------


def test_execution_record_counters(e2e, people):
    result = e2e.run([map_all()], source_prefix=people, name_prefix="counters")
    assert_successful(result.record)
    execution = result.record["executionResult"]
    assert execution["recordsProcessed"] == 5
    assert execution["bytesProcessed"] == len(PEOPLE_CSV.encode("utf-8"))
    written = sum(len(e2e.read(key)) for key in result.keys)
    assert execution["bytesWritten"] == written
    assert execution.get("errorInfo", {}).get("putFailuresCount", 0) == 0
    assert result.record["startedAt"] <= result.record["lastUpdatedAt"]

    flow = e2e.api.describe_flow(flowName=result.flow_name)
    details = flow["lastRunExecutionDetails"]
    assert details["mostRecentExecutionStatus"] == "Successful"
    assert (
        abs((details["mostRecentExecutionTime"] - result.record["startedAt"]).total_seconds()) < 120
    )


def test_list_flows_reports_the_last_run(e2e, people):
    result = e2e.run([map_all()], source_prefix=people, name_prefix="listrun")
    assert_successful(result.record)
    token = None
    while True:
        page = e2e.api.list_flows(maxResults=100, **({"nextToken": token} if token else {}))
        match = [f for f in page["flows"] if f["flowName"] == result.flow_name]
        if match:
            break
        token = page.get("nextToken")
        assert token, f"{result.flow_name} not listed"
    details = match[0]["lastRunExecutionDetails"]
    assert details["mostRecentExecutionStatus"] == "Successful"


def test_concurrent_runs_of_one_flow(e2e, people):
    request = e2e.request([map_all()], people, name_prefix="twice")
    e2e.api.create_flow(**request)
    ids = [e2e.api.start_flow(flowName=request["flowName"])["executionId"] for _ in range(3)]
    assert len(set(ids)) == 3
    records = [wait_for_run(e2e.api, request["flowName"], i) for i in ids]
    for record in records:
        assert_successful(record)
    keys = e2e.result(request, records[0]).keys
    for execution_id in ids:
        mine = [k for k in keys if f"/{execution_id}/" in k]
        assert mine, f"no output for {execution_id}"
        rows = [r for k in mine for r in parse_jsonl(e2e.read(k))]
        assert sorted(int(r["id"]) for r in rows) == [1, 2, 3, 4, 5]


def test_progress_is_reported_while_a_run_is_in_progress(e2e):
    rows = 200_000
    prefix = e2e.upload({f"p{n}.csv": big_csv(rows) for n in range(2)})
    request = e2e.request([map_all()], prefix, name_prefix="progress")
    e2e.api.create_flow(**request)
    execution_id = e2e.api.start_flow(flowName=request["flowName"])["executionId"]
    record = find_execution(e2e.api, request["flowName"], execution_id)
    assert record["executionStatus"] == "InProgress", record
    assert record["startedAt"] <= record["lastUpdatedAt"]
    final = wait_for_run(e2e.api, request["flowName"], execution_id, timeout=180)
    assert_successful(final)
    assert final["executionResult"]["recordsProcessed"] == 2 * rows
    assert final["lastUpdatedAt"] >= record["lastUpdatedAt"]


def test_empty_input_prefix_is_a_successful_empty_run(e2e):
    result = e2e.run([map_all()], source_prefix="prefix-with-no-objects", name_prefix="empty")
    assert_successful(result.record)
    assert result.record["executionResult"]["recordsProcessed"] == 0
    records = [r for key in result.keys for r in parse_jsonl(e2e.read(key))]
    assert records == []


def test_header_only_csv_gives_zero_records(e2e):
    result = e2e.run([map_all()], {"empty.csv": "id,name\n", "blank.csv": ""}, name_prefix="hdr")
    assert_successful(result.record)
    assert result.record["executionResult"]["recordsProcessed"] == 0


def test_multiple_input_files_are_all_read(e2e):
    files = {
        "a/1.csv": "id,v\n1,a\n2,b\n",
        "a/2.csv": "id,v\n3,c\n",
        "b.csv": "\ufeffid,v\n4,d\n",
    }
    result = e2e.run([map_all()], files, name_prefix="multi")
    assert_successful(result.record)
    assert normalise(by_id(e2e.jsonl(result)), ["id", "v"]) == [
        {"id": "1", "v": "a"},
        {"id": "2", "v": "b"},
        {"id": "3", "v": "c"},
        {"id": "4", "v": "d"},
    ]
