"""End-to-end task semantics: CSV / JSON Lines inputs in moto, a real S3->S3 run through
`sluice serve`, and the exact output read back from moto. One flow per test case."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from datasets import PEOPLE_CSV, people_rows
from support import (
    assert_successful,
    by_id,
    epoch_ms,
    filter_task,
    map_all,
    map_task,
    mask_task,
    normalise,
    parse_jsonl,
    projection,
)


@pytest.fixture(scope="module")
def people(e2e) -> str:
    """The people CSV, uploaded once; returns its prefix."""
    return e2e.upload({"people.csv": PEOPLE_CSV})


def ids_of(e2e, result) -> list[int]:
    assert_successful(result.record)
    return sorted(int(record["id"]) for record in e2e.jsonl(result))


# ---------------------------------------------------------------------------------------------
# Filter: projection and every S3 comparison operator.
# ---------------------------------------------------------------------------------------------

FILTER_CASES = [
    # (field, operator, DATA_TYPE, properties, expected ids)
    ("amount", "LESS_THAN", "double", {"VALUE": "10"}, [2, 4]),
    ("amount", "GREATER_THAN", "double", {"VALUE": "10"}, [1, 3, 5]),
    # Numeric, not lexicographic: "10.50" > "9" only as numbers.
    ("amount", "GREATER_THAN", "double", {"VALUE": "9"}, [1, 3, 5]),
    ("amount", "LESS_THAN_OR_EQUAL_TO", "double", {"VALUE": "0"}, [2, 4]),
    ("amount", "GREATER_THAN_OR_EQUAL_TO", "double", {"VALUE": "42"}, [3, 5]),
    ("amount", "EQUAL_TO", "double", {"VALUE": "42"}, [5]),
    ("amount", "EQUAL_TO", "double", {"VALUES": "0,100"}, [3, 4]),
    ("amount", "NOT_EQUAL_TO", "double", {"VALUE": "0"}, [1, 2, 3, 5]),
    ("amount", "BETWEEN", "double", {"LOWER_BOUND": "0", "UPPER_BOUND": "42"}, [1, 4, 5]),
    ("score", "GREATER_THAN_OR_EQUAL_TO", "integer", {"VALUE": "7"}, [1, 3]),
    ("country", "EQUAL_TO", "string", {"VALUE": "FR"}, [1, 3]),
    ("country", "NOT_EQUAL_TO", "string", {"VALUE": "FR"}, [2, 4, 5]),
    ("country", "EQUAL_TO", "string", {"VALUES": "JP,CN,XX"}, [4, 5]),
    ("name", "LESS_THAN", "string", {"VALUE": "D"}, [1, 2]),
    ("name", "EQUAL_TO", "string", {"VALUE": "Zoë 🚀"}, [4]),
    (
        "created_at",
        "GREATER_THAN",
        "datetime",
        {"VALUE": epoch_ms("2024-02-15T12:30:00Z")},
        [3, 4],
    ),
    (
        "created_at",
        "LESS_THAN",
        "datetime",
        {"VALUE": epoch_ms("2024-01-01T10:00:00Z")},
        [5],
    ),
    (
        # Both bounds inclusive, to the millisecond.
        "created_at",
        "BETWEEN",
        "datetime",
        {
            "LOWER_BOUND": epoch_ms("2024-01-01T10:00:00Z"),
            "UPPER_BOUND": epoch_ms("2024-03-20T08:15:30.500Z"),
        },
        [1, 2, 3],
    ),
    (
        # Row 4 is 2024-04-01T00:00:00+02:00, i.e. 2024-03-31T22:00:00Z.
        "created_at",
        "BETWEEN",
        "datetime",
        {
            "LOWER_BOUND": epoch_ms("2024-03-31T21:00:00Z"),
            "UPPER_BOUND": epoch_ms("2024-03-31T23:00:00Z"),
        },
        [4],
    ),
]


@pytest.mark.parametrize(
    ("field", "operator", "data_type", "properties", "expected"),
    FILTER_CASES,
    ids=[f"{c[0]}-{c[1]}-{'-'.join(c[3].values())}" for c in FILTER_CASES],
)
def test_filter_operator(e2e, people, field, operator, data_type, properties, expected):
    tasks = [
        projection(["id", field]),
        map_task("id"),
        filter_task(field, operator, data_type, **properties),
    ]
    result = e2e.run(tasks, source_prefix=people, name_prefix="filter")
    assert ids_of(e2e, result) == expected
    assert result.record["executionResult"]["recordsProcessed"] == 5


NULLS_JSONL = "".join(
    json.dumps(record) + "\n"
    for record in [
        {"id": 1, "country": "FR", "amount": 5},
        {"id": 2, "country": None, "amount": None},
        {"id": 3, "country": "US", "amount": 50},
        {"id": 4},
    ]
)


@pytest.mark.parametrize(
    ("field", "operator", "data_type", "properties", "expected"),
    [
        ("country", "NOT_EQUAL_TO", "string", {"VALUE": "FR"}, [3]),
        ("country", "EQUAL_TO", "string", {"VALUES": "FR,US"}, [1, 3]),
        ("amount", "LESS_THAN", "double", {"VALUE": "100"}, [1, 3]),
        ("amount", "BETWEEN", "integer", {"LOWER_BOUND": "0", "UPPER_BOUND": "10"}, [1]),
    ],
)
def test_null_values_never_pass_a_filter(e2e, field, operator, data_type, properties, expected):
    tasks = [
        projection(["id", field]),
        map_task("id"),
        filter_task(field, operator, data_type, **properties),
    ]
    result = e2e.run(tasks, {"n.jsonl": NULLS_JSONL}, input_type="JSON", name_prefix="nullf")
    assert ids_of(e2e, result) == expected


def test_json_fields_first_seen_late_are_kept(e2e):
    lines = [json.dumps({"id": i, "a": f"v{i}"}) for i in range(1, 2501)]
    lines.append(json.dumps({"id": 2501, "a": "last", "b": "late field", "n": 1.5}))
    result = e2e.run(
        [map_all()],
        {"late.jsonl": "\n".join(lines) + "\n"},
        input_type="JSON",
        name_prefix="late",
    )
    assert_successful(result.record)
    records = by_id(e2e.jsonl(result))
    assert len(records) == 2501
    assert records[-1]["b"] == "late field"
    assert records[-1]["n"] == 1.5
    assert records[0].get("b") is None


def test_filters_are_anded(e2e, people):
    tasks = [
        projection(["id", "country", "amount"]),
        map_task("id"),
        filter_task("country", "EQUAL_TO", "string", VALUE="FR"),
        filter_task("amount", "GREATER_THAN", "double", VALUE="50"),
    ]
    result = e2e.run(tasks, source_prefix=people, name_prefix="and")
    assert ids_of(e2e, result) == [3]


def test_projection_limits_output_fields(e2e, people):
    fields = ["id", "name", "country"]
    tasks = [projection(fields)] + [map_task(name) for name in fields]
    result = e2e.run(tasks, source_prefix=people, name_prefix="proj")
    assert_successful(result.record)
    records = by_id(e2e.jsonl(result))
    expected = [{name: row[name] for name in fields} for row in people_rows()]
    assert normalise(records, fields) == expected
    for record in records:
        assert set(record) <= set(fields), f"unmapped fields leaked: {record}"


def test_filter_that_matches_nothing_writes_no_records(e2e, people):
    tasks = [
        projection(["id", "country"]),
        map_task("id"),
        filter_task("country", "EQUAL_TO", "string", VALUE="Atlantis"),
    ]
    result = e2e.run(tasks, source_prefix=people, name_prefix="none")
    assert_successful(result.record)
    records = [r for key in result.keys for r in parse_jsonl(e2e.read(key))]
    assert records == []


# ---------------------------------------------------------------------------------------------
# Map, Map_all.
# ---------------------------------------------------------------------------------------------


def parse_instant(text: str) -> dt.datetime:
    assert text.endswith("Z"), f"datetimes are written in UTC with a Z suffix: {text!r}"
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_map_with_type_conversion(e2e, people):
    tasks = [
        projection(["id", "name", "amount", "score", "created_at"]),
        map_task("id", "id", "string", "integer"),
        map_task("name", "full_name", "string", "string"),
        map_task("amount", "amount", "string", "double"),
        map_task("score", "score", "string", "integer"),
        map_task("created_at", "created", "string", "datetime"),
    ]
    result = e2e.run(tasks, source_prefix=people, name_prefix="map")
    assert_successful(result.record)
    records = by_id(e2e.jsonl(result))
    assert [set(r) for r in records] == [{"id", "full_name", "amount", "score", "created"}] * 5

    assert [r["id"] for r in records] == [1, 2, 3, 4, 5]
    assert all(type(r["id"]) is int and type(r["score"]) is int for r in records)
    assert [r["full_name"] for r in records] == ["Alice", "Bob", "Émilie", "Zoë 🚀", "李雷"]
    assert [r["amount"] for r in records] == [10.5, -3.0, 100.0, 0.0, 42.0]
    assert all(isinstance(r["amount"], float) for r in records)
    assert [r["score"] for r in records] == [7, 0, 12, 3, 5]
    utc = dt.timezone.utc
    assert [parse_instant(r["created"]) for r in records] == [
        dt.datetime(2024, 1, 1, 10, 0, 0, tzinfo=utc),
        dt.datetime(2024, 2, 15, 12, 30, 0, tzinfo=utc),
        dt.datetime(2024, 3, 20, 8, 15, 30, 500000, tzinfo=utc),
        dt.datetime(2024, 3, 31, 22, 0, 0, tzinfo=utc),
        dt.datetime(2023, 12, 31, 23, 59, 59, tzinfo=utc),
    ]


def test_map_all_with_exclusions(e2e, people):
    result = e2e.run([map_all(["email", "note"])], source_prefix=people, name_prefix="mapall")
    assert_successful(result.record)
    kept = ["id", "name", "amount", "score", "created_at", "country"]
    records = by_id(e2e.jsonl(result))
    for record in records:
        assert set(record) <= set(kept), f"excluded field present: {record}"
    assert normalise(records, kept) == [{k: row[k] for k in kept} for row in people_rows()]


def test_map_all_without_exclusions_keeps_every_field(e2e, people):
    result = e2e.run([map_all()], source_prefix=people, name_prefix="mapall-all")
    assert_successful(result.record)
    fields = list(people_rows()[0])
    assert normalise(by_id(e2e.jsonl(result)), fields) == people_rows()


def test_map_and_map_all_together(e2e, people):
    tasks = [
        map_all(["email", "note", "created_at"]),
        map_task("amount", "amount_num", "string", "double"),
    ]
    result = e2e.run(tasks, source_prefix=people, name_prefix="mapboth")
    assert_successful(result.record)
    records = by_id(e2e.jsonl(result))
    assert [r["amount_num"] for r in records] == [10.5, -3.0, 100.0, 0.0, 42.0]
    assert [r["country"] for r in records] == ["FR", "US", "FR", "JP", "CN"]


# ---------------------------------------------------------------------------------------------
# Mask, Merge, Truncate, Arithmetic.
# ---------------------------------------------------------------------------------------------


def test_mask_all_first_n_last_n(e2e, people):
    fields = ["id", "name", "email", "country"]
    tasks = (
        [projection(fields)]
        + [map_task(f) for f in fields]
        + [
            mask_task("email", "MASK_ALL", MASK_VALUE="#"),
            mask_task("name", "MASK_FIRST_N", MASK_LENGTH="2"),
            mask_task("country", "MASK_LAST_N", MASK_LENGTH="1", MASK_VALUE="x"),
        ]
    )
    result = e2e.run(tasks, source_prefix=people, name_prefix="mask")
    assert_successful(result.record)
    records = by_id(e2e.jsonl(result))
    assert [r["email"] for r in records] == ["#" * len(row["email"]) for row in people_rows()]
    # Characters, not bytes; a length >= the value masks all of it.
    assert [r["name"] for r in records] == ["**ice", "**b", "**ilie", "**ë 🚀", "**"]
    assert [r["country"] for r in records] == ["Fx", "Ux", "Fx", "Jx", "Cx"]
    assert [int(r["id"]) for r in records] == [1, 2, 3, 4, 5]


def test_merge_with_format_and_separator(e2e, people):
    tasks = [
        projection(["id", "name", "country"]),
        map_task("id"),
        {
            "sourceFields": ["name", "country"],
            "connectorOperator": {"S3": "NO_OP"},
            "destinationField": "name,country",
            "taskType": "Merge",
            "taskProperties": {"CONCAT_FORMAT": "{0} ({1})"},
        },
        {
            "sourceFields": ["country", "id"],
            "connectorOperator": {"S3": "NO_OP"},
            "destinationField": "country,id",
            "taskType": "Merge",
            "taskProperties": {"CONCAT_FORMAT": "-"},
        },
        map_task("name,country", "label"),
        map_task("country,id", "code"),
    ]
    result = e2e.run(tasks, source_prefix=people, name_prefix="merge")
    assert_successful(result.record)
    records = by_id(e2e.jsonl(result))
    assert [r["label"] for r in records] == [
        "Alice (FR)",
        "Bob (US)",
        "Émilie (FR)",
        "Zoë 🚀 (JP)",
        "李雷 (CN)",
    ]
    assert [r["code"] for r in records] == ["FR-1", "US-2", "FR-3", "JP-4", "CN-5"]


def test_truncate(e2e, people):
    fields = ["id", "name", "note"]
    tasks = (
        [projection(fields)]
        + [map_task(f) for f in fields]
        + [
            {
                "sourceFields": ["note"],
                "connectorOperator": {"S3": "NO_OP"},
                "taskType": "Truncate",
                "taskProperties": {"TRUNCATE_LENGTH": "5"},
            },
            {
                "sourceFields": ["name"],
                "connectorOperator": {"S3": "NO_OP"},
                "taskType": "Truncate",
                "taskProperties": {"TRUNCATE_LENGTH": "3"},
            },
        ]
    )
    result = e2e.run(tasks, source_prefix=people, name_prefix="trunc")
    assert_successful(result.record)
    records = by_id(e2e.jsonl(result))
    assert [r["note"] for r in records] == ["hello", "plain", "quote", "multi", 'say "']
    assert [r["name"] for r in records] == ["Ali", "Bob", "Émi", "Zoë", "李雷"]


ARITH_CSV = "id,price,qty\n1,10.5,2\n2,3,0\n3,-4.25,4\n4,,5\n5,1e3,0.5\n"


def arithmetic(operator: str, order: str, destination: str) -> dict:
    return {
        "sourceFields": order.split(","),
        "connectorOperator": {"S3": operator},
        "destinationField": destination,
        "taskType": "Arithmetic",
        "taskProperties": {"MATH_OPERATION_FIELDS_ORDER": order},
    }


def test_arithmetic(e2e):
    tasks = [
        projection(["id", "price", "qty"]),
        map_task("id", "id", "string", "integer"),
        arithmetic("ADDITION", "price,qty", "sum"),
        arithmetic("MULTIPLICATION", "price,qty", "price,qty"),
        arithmetic("SUBTRACTION", "qty,price", "qty,price"),
        arithmetic("DIVISION", "price,qty", "ratio"),
        map_task("sum", "sum", "double", "double"),
        map_task("price,qty", "total", "double", "double"),
        map_task("qty,price", "diff", "double", "double"),
        map_task("ratio", "ratio", "double", "double"),
    ]
    result = e2e.run(tasks, {"prices.csv": ARITH_CSV}, name_prefix="arith")
    assert_successful(result.record)
    fields = ["id", "sum", "total", "diff", "ratio"]
    records = normalise(by_id(e2e.jsonl(result)), fields)
    expected = [
        {"id": 1, "sum": 12.5, "total": 21.0, "diff": -8.5, "ratio": 5.25},
        # Division by zero gives null, not an error.
        {"id": 2, "sum": 3.0, "total": 0.0, "diff": -3.0, "ratio": None},
        {"id": 3, "sum": -0.25, "total": -17.0, "diff": 8.25, "ratio": -1.0625},
        # A missing operand gives null.
        {"id": 4, "sum": None, "total": None, "diff": None, "ratio": None},
        {"id": 5, "sum": 1000.5, "total": 500.0, "diff": -999.5, "ratio": 2000.0},
    ]
    assert records == [
        {k: (pytest.approx(v) if isinstance(v, float) else v) for k, v in row.items()}
        for row in expected
    ]


# ---------------------------------------------------------------------------------------------
# Validate.
# ---------------------------------------------------------------------------------------------

VALIDATE_JSONL = (
    "\n".join(
        json.dumps(record)
        for record in [
            {"id": 1, "qty": 5, "price": 10, "code": "12"},
            {"id": 2, "qty": None, "price": 3, "code": "7"},
            {"id": 3, "qty": 2, "price": -1, "code": "9"},
            {"id": 4, "qty": 0, "price": 4, "code": "1"},
            {"id": 5, "price": 8, "code": "3.5"},
            {"id": 6, "qty": 1, "price": 0, "code": "-2"},
            {"id": 7, "qty": 3, "price": 2, "code": "x1"},
        ]
    )
    + "\n"
)


def validate_task(field: str, operator: str, action: str) -> dict:
    return {
        "sourceFields": [field],
        "connectorOperator": {"S3": operator},
        "taskType": "Validate",
        "taskProperties": {"VALIDATION_ACTION": action},
    }


def test_validate_drop_record(e2e):
    tasks = [
        map_all(),
        validate_task("qty", "VALIDATE_NON_NULL", "DropRecord"),
        validate_task("qty", "VALIDATE_NON_ZERO", "DropRecord"),
        validate_task("price", "VALIDATE_NON_NEGATIVE", "DropRecord"),
        validate_task("code", "VALIDATE_NUMERIC", "DropRecord"),
    ]
    result = e2e.run(tasks, {"v.jsonl": VALIDATE_JSONL}, input_type="JSON", name_prefix="valid")
    assert_successful(result.record)
    records = by_id(e2e.jsonl(result))
    assert [r["id"] for r in records] == [1, 6]
    execution = result.record["executionResult"]
    # Dropped records were read (processed) and are not put failures.
    assert execution["recordsProcessed"] == 7
    assert execution.get("errorInfo", {}).get("putFailuresCount", 0) == 0


@pytest.mark.parametrize("action", ["DropDataset", "TerminateFlow"])
def test_validate_terminate_fails_the_run(e2e, action):
    tasks = [map_all(), validate_task("qty", "VALIDATE_NON_NULL", action)]
    result = e2e.run(tasks, {"v.jsonl": VALIDATE_JSONL}, input_type="JSON", name_prefix="term")
    assert result.record["executionStatus"] == "Error", result.record
    assert "qty" in result.message, result.message
    assert result.keys == [], f"a failed run left output: {result.keys}"
