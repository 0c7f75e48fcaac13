//! AppFlow tasks (`Filter`, `Map`, `Mask`, ...) compiled into a plan and applied to Arrow batches.
//!
//! A flow's `tasks` are compiled once by [`TaskPlan::compile`], which validates every task and
//! parses its properties; [`TaskPlan::apply`] then runs the plan on each [`RecordBatch`] a source
//! produces. Everything here is pure and synchronous: no IO, no async, no shared state, so a
//! plan can be applied from any thread.
//!
//! # Order of evaluation
//!
//! AppFlow treats `tasks` as a set. A plan evaluates them in this order (tasks of one kind run in
//! array order):
//!
//! 1. **Projection**: with a `PROJECTION` filter, only the projected fields are kept; a projected
//!    field the batch lacks becomes an all-null column (files of one run may differ). Without
//!    one (`Map_all` only), every column of the batch is a source field.
//! 2. **Filters**: comparison `Filter` tasks, ANDed.
//! 3. **Mask / Truncate** on source fields, in place (a later `Map` sees the edited value).
//! 4. **Merge / Arithmetic**, adding intermediate fields named by `destinationField`.
//! 5. **Validate**: `DropRecord` removes rows, a terminating action fails the batch.
//! 6. **Map / Passthrough / Map_all**: build the output. Explicit outputs come first in task
//!    order, then the `Map_all` fields in source order, skipping excluded fields and names an
//!    explicit output already wrote.
//! 7. **Partition**: partition keys are checked to be output fields (a `Map_all` key missing from
//!    a batch is added as an all-null column) and exposed through [`TaskPlan::partition_keys`].
//!
//! Only mapped fields reach the output batch; intermediate fields must be mapped to appear. A
//! flow with a projection and no mapping task at all outputs the projected fields unchanged. A
//! field missing from a batch reads as null everywhere, it is never an error.
//!
//! # Semantics
//!
//! - **Filter**: `DATA_TYPE` picks the comparison: text (lexicographic), numbers (`integer`,
//!   `double`, `currency`, ...; compared as `f64`, exactly as `i64` for integer columns against
//!   integer operands), booleans, or instants (`date`/`datetime`/`timestamp`: operands are epoch
//!   milliseconds or ISO-8601; values may be ISO-8601 text with or without zone, epoch
//!   milliseconds, or Arrow timestamps/dates). Without a known `DATA_TYPE` the column's Arrow
//!   type decides. Null, missing and unparseable values never pass. `VALUE` and the
//!   comma-separated `VALUES` are ORed; `NOT_EQUAL_TO` keeps rows equal to none of them (SQL
//!   `NOT IN`). `BETWEEN` is inclusive. `CONTAINS` is a case-sensitive substring test.
//! - **Map**: `DESTINATION_DATA_TYPE` converts to `Utf8` (text types), `Int64`
//!   (`integer`/`int`/`long`), `Float64` (`double`/`float`/`decimal`/`currency`/`percent`),
//!   `Boolean`, or ISO-8601 UTC text `2024-01-02T03:04:05.123Z` (`date`/`datetime`/`timestamp`).
//!   Blank text becomes null; a value that does not convert (`"abc"` or `1.5` to integer,
//!   overflow) is a [`TransformError::Conversion`]. Unknown type names keep the column as is,
//!   and so does `Passthrough`.
//! - **Mask / Truncate** count Unicode scalar values, not bytes; nulls stay null; non-text
//!   values are edited in their text form.
//! - **Merge**: `CONCAT_FORMAT` with `{0}`, `{1}`, ... placeholders is a template, otherwise it is
//!   the separator (default none); nulls read as empty strings.
//! - **Arithmetic** computes in `Float64` in `MATH_OPERATION_FIELDS_ORDER` order; non-numeric or
//!   null operands, division by zero and other non-finite results give null, so one bad record
//!   does not stop a run (a `Validate` task can reject the nulls).
//! - **Validate**: zero and negativity checks ignore null and non-numeric values (combine with
//!   `VALIDATE_NON_NULL` / `VALIDATE_NUMERIC`). A missing `VALIDATION_ACTION` means
//!   `DropRecord`. Terminating checks (`DropDataset`, `TerminateFlow`) only see rows that no
//!   `DropRecord` check removed.
//!
//! # Design
//!
//! Work is vectorised with Arrow kernels (`arrow-ord` comparisons against scalars, `arrow-arith`,
//! `arrow-select` filtering, `arrow-string` substring and `contains`). Per-row loops remain only
//! where no kernel fits: parsing text, masking and merging. Typed columns (JSON and Parquet
//! sources, including dictionary-encoded ones) and all-text columns (CSV sources) are accepted
//! everywhere: each task reads a column in the form it needs (text, numbers, booleans, epoch
//! milliseconds), so the same plan works on every file of a run.

mod columns;
mod compile;
mod derive;
mod edit;
mod error;
mod filter;
mod map;
mod types;
mod validate;
mod values;

use std::collections::HashSet;
use std::sync::Arc;

use arrow_arith::boolean::{and, and_not, or};
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions};
use arrow_schema::{Field, Schema};
use sluice_api_model::{ConnectorType, Task};
use sluice_connector_api::PushdownFilter;

use crate::columns::Columns;
use crate::derive::Derivation;
use crate::edit::EditStep;
use crate::error::BATCH;
use crate::filter::FilterStep;
use crate::map::OutputStep;
use crate::validate::{Action, ValidateStep};
use crate::values::{display_value, missing_column};

pub use crate::error::{PlanError, TransformError};
pub use crate::values::parse_datetime_ms;

/// A flow's tasks, validated and compiled, ready to apply to batches.
#[derive(Debug, Clone)]
pub struct TaskPlan {
    /// Union of the `PROJECTION` fields in first-seen order; `None` without a projection task.
    projection: Option<Vec<String>>,
    projection_set: HashSet<String>,
    filters: Vec<FilterStep>,
    edits: Vec<EditStep>,
    derivations: Vec<Derivation>,
    validations: Vec<ValidateStep>,
    outputs: Vec<OutputStep>,
    map_all: Option<MapAll>,
    partition_keys: Vec<String>,
}

/// The `Map_all` task.
#[derive(Debug, Clone, Default)]
struct MapAll {
    /// `EXCLUDE_SOURCE_FIELDS_LIST`.
    exclude: HashSet<String>,
}

/// The result of applying a plan to one batch.
#[derive(Debug, Clone)]
pub struct TaskOutput {
    /// The output batch: only mapped fields.
    pub batch: RecordBatch,
    /// Rows removed by `Filter` conditions and by `DropRecord` validations.
    pub filtered: u64,
}

impl TaskPlan {
    /// Compiles the `tasks` of a flow whose source connector is `source`.
    ///
    /// # Errors
    ///
    /// A [`PlanError`] naming the task (`tasks[i]`) and the offending field or property when a
    /// task is malformed: a missing or invalid property, an operator that does not fit the task
    /// type or is keyed by another connector than `source`, a wrong number of source fields, a
    /// field read but not projected, two tasks writing one destination field, a partition key
    /// that is not an output field, or neither a `PROJECTION` nor a `Map_all` task.
    pub fn compile(tasks: &[Task], source: ConnectorType) -> Result<Self, PlanError> {
        compile::compile(tasks, source)
    }

    /// Source fields to read (union of PROJECTION task fields), or None when only Map_all is
    /// used (read everything).
    pub fn projection(&self) -> Option<Vec<String>> {
        self.projection.clone()
    }

    /// Comparison filters, for push-down hints to sources (the plan still applies them itself).
    pub fn filters(&self) -> Vec<PushdownFilter> {
        self.filters
            .iter()
            .map(|filter| filter.pushdown.clone())
            .collect()
    }

    /// Destination fields used as partition keys, in order (Partition task).
    pub fn partition_keys(&self) -> &[String] {
        &self.partition_keys
    }

    /// Applies every task to one batch.
    ///
    /// # Errors
    ///
    /// [`TransformError::Conversion`] when a `Map` cannot convert a value to its destination
    /// type, [`TransformError::Validation`] when a `Validate` task with a terminating
    /// `VALIDATION_ACTION` finds a bad record, [`TransformError::Arrow`] when a kernel fails.
    /// Rows are reported by their 0-based position in `batch`.
    pub fn apply(&self, batch: &RecordBatch) -> Result<TaskOutput, TransformError> {
        let projection = self
            .projection
            .as_deref()
            .map(|fields| (fields, &self.projection_set));
        let mut columns = Columns::from_batch(batch, projection);
        let mut filtered = 0;

        if !self.filters.is_empty() {
            let keep = self.filter_mask(&columns)?;
            filtered += columns.retain(&keep)?;
        }
        for edit in &self.edits {
            // Without a projection a field may be absent from this batch: nothing to edit.
            if let Some(column) = columns.get(edit.field()) {
                let edited = edit.apply(column.as_ref())?;
                columns.set(edit.field(), edited);
            }
        }
        for derivation in &self.derivations {
            let inputs: Vec<Option<&ArrayRef>> = derivation
                .inputs()
                .into_iter()
                .map(|field| columns.get(field))
                .collect();
            let derived = derivation.compute(&inputs, columns.rows())?;
            columns.set(derivation.destination(), derived);
        }
        if !self.validations.is_empty() {
            filtered += self.validate(&mut columns)?;
        }
        let batch = self.output(&columns)?;
        Ok(TaskOutput { batch, filtered })
    }

    /// Rows passing every filter.
    fn filter_mask(&self, columns: &Columns) -> Result<BooleanArray, TransformError> {
        let mut keep: Option<BooleanArray> = None;
        for filter in &self.filters {
            let passed = filter.evaluate(columns.get(&filter.field), columns.rows())?;
            keep = Some(match keep {
                Some(previous) => and(&previous, &passed).map_err(|error| {
                    TransformError::arrow(&filter.field, "combining filters", error)
                })?,
                None => passed,
            });
        }
        Ok(keep.unwrap_or_else(|| BooleanArray::from(vec![true; columns.rows()])))
    }

    /// Runs the validations: drops `DropRecord` failures, then fails on the first record a
    /// terminating validation rejects among the remaining ones. Returns the rows dropped.
    fn validate(&self, columns: &mut Columns) -> Result<u64, TransformError> {
        let rows = columns.rows();
        let mut dropped: Option<BooleanArray> = None;
        for step in self
            .validations
            .iter()
            .filter(|step| step.action == Action::DropRecord)
        {
            let bad = step.failures(columns.get(&step.field), rows)?;
            dropped = Some(match dropped {
                Some(previous) => or(&previous, &bad).map_err(|error| {
                    TransformError::arrow(&step.field, "combining validations", error)
                })?,
                None => bad,
            });
        }
        for step in &self.validations {
            let Action::Terminate(action) = &step.action else {
                continue;
            };
            let column = columns.get(&step.field);
            let mut bad = step.failures(column, rows)?;
            if let Some(dropped) = &dropped {
                bad = and_not(&bad, dropped).map_err(|error| {
                    TransformError::arrow(&step.field, "combining validations", error)
                })?;
            }
            if let Some(row) = bad.values().set_indices().next() {
                return Err(TransformError::Validation {
                    task: step.task,
                    field: step.field.clone(),
                    check: step.check.operator(),
                    row: columns.input_row(row),
                    value: column.map_or_else(
                        || "null".to_owned(),
                        |column| display_value(column.as_ref(), row),
                    ),
                    action: action.clone(),
                });
            }
        }
        match dropped {
            Some(dropped) => {
                let keep = arrow_arith::boolean::not(&dropped).map_err(|error| {
                    TransformError::arrow(BATCH, "combining validations", error)
                })?;
                columns.retain(&keep)
            }
            None => Ok(0),
        }
    }

    /// Builds the output batch from the mapped fields.
    fn output(&self, columns: &Columns) -> Result<RecordBatch, TransformError> {
        let rows = columns.rows();
        let capacity =
            self.outputs.len() + columns.source_fields().count() + self.partition_keys.len();
        let mut fields: Vec<Field> = Vec::with_capacity(capacity);
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(capacity);
        let mut written: HashSet<&str> = HashSet::with_capacity(capacity);
        let push =
            |name: &str, array: ArrayRef, fields: &mut Vec<Field>, arrays: &mut Vec<ArrayRef>| {
                fields.push(Field::new(name, array.data_type().clone(), true));
                arrays.push(array);
            };

        for step in &self.outputs {
            let column = match columns.get(&step.source) {
                Some(column) => column.clone(),
                None => missing_column(rows),
            };
            let converted = step
                .convert(&column)
                .map_err(|error| error.map_row(|row| columns.input_row(row)))?;
            push(&step.destination, converted, &mut fields, &mut arrays);
            written.insert(&step.destination);
        }
        if let Some(map_all) = &self.map_all {
            for (name, column) in columns.source_fields() {
                if !map_all.exclude.contains(name) && written.insert(name) {
                    push(name, column.clone(), &mut fields, &mut arrays);
                }
            }
        }
        for key in &self.partition_keys {
            if written.insert(key) {
                push(key, missing_column(rows), &mut fields, &mut arrays);
            }
        }

        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options)
            .map_err(|error| TransformError::arrow(BATCH, "assembling the output batch", error))
    }
}
