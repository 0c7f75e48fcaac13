//! Data-driven task semantics: every directory under `tests/cases/` is one case.
//!
//! - `tasks.json`: the flow's `tasks` array, exactly as sent to `CreateFlow`.
//! - `input.jsonl`: one JSON object per row. Column order is the key order of first appearance;
//!   a column's type follows its values: all integers -> `Int64`, numbers -> `Float64`,
//!   booleans -> `Boolean`, anything else -> `Utf8` (objects and arrays as JSON text, as a JSON
//!   source delivers nested values). Write numbers as strings to imitate a CSV source.
//! - `expected.jsonl`: the output rows; key order is the expected column order, and JSON number
//!   spelling is checked (`1` is an `Int64`, `1.0` a `Float64`).
//! - `meta.json` (optional): `source` (connector type, default `S3`), `filtered` (default 0),
//!   `columns` (expected output column names, for empty outputs), `projection`,
//!   `partition_keys`, `apply_error` / `plan_error` (substrings of the expected error message;
//!   no `expected.jsonl` then).

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, RecordBatchOptions,
    StringArray,
};
use arrow_schema::{DataType, Field, Schema};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use sluice_api_model::{ConnectorType, Task};
use sluice_transforms::TaskPlan;

/// A JSON object that remembers its key order.
struct Row(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RowVisitor;
        impl<'de> Visitor<'de> for RowVisitor {
            type Value = Row;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Row, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(Row(entries))
            }
        }
        deserializer.deserialize_map(RowVisitor)
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Meta {
    source: Option<ConnectorType>,
    #[serde(default)]
    filtered: u64,
    columns: Option<Vec<String>>,
    #[serde(default, with = "double_option")]
    projection: Option<Option<Vec<String>>>,
    partition_keys: Option<Vec<String>>,
    apply_error: Option<String>,
    plan_error: Option<String>,
}

/// Distinguishes an absent `projection` (not checked) from `null` (expected `None`).
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}

fn read_rows(path: &Path) -> Result<Vec<Row>, String> {
    let text = fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(number, line)| {
            serde_json::from_str::<Row>(line)
                .map_err(|error| format!("{}:{}: {error}", path.display(), number + 1))
        })
        .collect()
}

/// Builds a batch from rows, inferring one Arrow type per column.
fn batch_from_rows(rows: &[Row]) -> RecordBatch {
    let mut names: Vec<String> = Vec::new();
    for row in rows {
        for (name, _) in &row.0 {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    let cell = |row: &Row, name: &str| -> Value {
        row.0
            .iter()
            .find(|(key, _)| key == name)
            .map_or(Value::Null, |(_, value)| value.clone())
    };
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for name in &names {
        let values: Vec<Value> = rows.iter().map(|row| cell(row, name)).collect();
        let present = || values.iter().filter(|value| !value.is_null());
        let array: ArrayRef = if present().count() > 0 && present().all(Value::is_boolean) {
            Arc::new(values.iter().map(Value::as_bool).collect::<BooleanArray>())
        } else if present().count() > 0 && present().all(|value| value.is_i64()) {
            Arc::new(values.iter().map(Value::as_i64).collect::<Int64Array>())
        } else if present().count() > 0 && present().all(Value::is_number) {
            Arc::new(values.iter().map(Value::as_f64).collect::<Float64Array>())
        } else {
            Arc::new(
                values
                    .iter()
                    .map(|value| match value {
                        Value::Null => None,
                        Value::String(text) => Some(text.clone()),
                        other => Some(other.to_string()),
                    })
                    .collect::<StringArray>(),
            )
        };
        fields.push(Field::new(name, array.data_type().clone(), true));
        arrays.push(array);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options)
        .expect("valid input batch")
}

/// The output batch as ordered JSON rows.
fn rows_from_batch(batch: &RecordBatch) -> Result<Vec<Vec<(String, Value)>>, String> {
    let schema = batch.schema();
    let mut rows = vec![Vec::new(); batch.num_rows()];
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        for (row, cells) in rows.iter_mut().enumerate() {
            let value = if column.is_null(row) {
                Value::Null
            } else {
                match column.data_type() {
                    DataType::Utf8 => Value::from(column.as_string::<i32>().value(row)),
                    DataType::Int64 => Value::from(column.as_primitive::<Int64Type>().value(row)),
                    DataType::Float64 => {
                        let value = column.as_primitive::<Float64Type>().value(row);
                        serde_json::Number::from_f64(value)
                            .map(Value::Number)
                            .ok_or_else(|| {
                                format!("non-finite output {value} in `{}`", field.name())
                            })?
                    }
                    DataType::Boolean => Value::from(column.as_boolean().value(row)),
                    other => {
                        return Err(format!(
                            "unexpected output type {other} for `{}`",
                            field.name()
                        ));
                    }
                }
            };
            cells.push((field.name().clone(), value));
        }
    }
    Ok(rows)
}

fn run_case(dir: &Path) -> Result<(), String> {
    let read = |name: &str| fs::read_to_string(dir.join(name));
    let tasks_text = read("tasks.json").map_err(|error| format!("tasks.json: {error}"))?;
    let tasks: Vec<Task> =
        serde_json::from_str(&tasks_text).map_err(|error| format!("tasks.json: {error}"))?;
    let meta: Meta = match read("meta.json") {
        Ok(text) => serde_json::from_str(&text).map_err(|error| format!("meta.json: {error}"))?,
        Err(_) => Meta::default(),
    };

    let plan = match TaskPlan::compile(&tasks, meta.source.unwrap_or(ConnectorType::S3)) {
        Ok(plan) => plan,
        Err(error) => {
            return match &meta.plan_error {
                Some(expected) if error.to_string().contains(expected) => Ok(()),
                _ => Err(format!("compile failed: {error}")),
            };
        }
    };
    if let Some(expected) = &meta.plan_error {
        return Err(format!(
            "expected a plan error containing {expected:?}, compile succeeded"
        ));
    }
    if let Some(expected) = &meta.projection
        && &plan.projection() != expected
    {
        return Err(format!(
            "projection {:?}, expected {expected:?}",
            plan.projection()
        ));
    }
    if let Some(expected) = &meta.partition_keys
        && plan.partition_keys() != expected.as_slice()
    {
        return Err(format!(
            "partition keys {:?}, expected {expected:?}",
            plan.partition_keys()
        ));
    }

    let input = batch_from_rows(&read_rows(&dir.join("input.jsonl"))?);
    let output = match plan.apply(&input) {
        Ok(output) => output,
        Err(error) => {
            return match &meta.apply_error {
                Some(expected) if error.to_string().contains(expected) => Ok(()),
                _ => Err(format!("apply failed: {error}")),
            };
        }
    };
    if let Some(expected) = &meta.apply_error {
        return Err(format!(
            "expected an apply error containing {expected:?}, apply succeeded"
        ));
    }

    if output.filtered != meta.filtered {
        return Err(format!(
            "filtered {}, expected {}",
            output.filtered, meta.filtered
        ));
    }
    let names: Vec<String> = output
        .batch
        .schema()
        .fields()
        .iter()
        .map(|field| field.name().clone())
        .collect();
    if let Some(columns) = &meta.columns
        && &names != columns
    {
        return Err(format!("output columns {names:?}, expected {columns:?}"));
    }
    let actual = rows_from_batch(&output.batch)?;
    let expected: Vec<Vec<(String, Value)>> = read_rows(&dir.join("expected.jsonl"))?
        .into_iter()
        .map(|row| row.0)
        .collect();
    if actual.len() != expected.len() {
        return Err(format!(
            "{} output rows, expected {}: {actual:?}",
            actual.len(),
            expected.len()
        ));
    }
    for (index, (actual, expected)) in actual.iter().zip(&expected).enumerate() {
        if actual != expected {
            return Err(format!(
                "row {index}:\n  actual   {actual:?}\n  expected {expected:?}"
            ));
        }
    }
    Ok(())
}

#[test]
fn task_cases() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .expect("tests/cases exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no cases under {}", root.display());
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|dir| {
            let name = dir
                .file_name()
                .map(|name| name.to_string_lossy().into_owned());
            run_case(dir)
                .err()
                .map(|error| format!("{}: {error}", name.unwrap_or_default()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
}
