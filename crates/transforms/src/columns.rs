//! The working set of one batch while tasks run: source columns (projected), then intermediate
//! fields added by derivations, plus the input position of every row still present.

use std::collections::{HashMap, HashSet};

use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt64Array};
use arrow_select::filter::FilterBuilder;

use crate::error::{BATCH, TransformError};
use crate::values::missing_column;

pub(crate) struct Columns {
    names: Vec<String>,
    arrays: Vec<ArrayRef>,
    index: HashMap<String, usize>,
    /// The first `source_count` columns are source fields; the rest are intermediate fields.
    source_count: usize,
    rows: usize,
    /// Input row of each current row, once some rows were removed.
    origin: Option<UInt64Array>,
}

impl Columns {
    /// The batch's columns; with a projection, only projected fields, and projected fields the
    /// batch lacks become all-null columns. A repeated column name keeps its first column.
    pub(crate) fn from_batch(
        batch: &RecordBatch,
        projection: Option<(&[String], &HashSet<String>)>,
    ) -> Self {
        let rows = batch.num_rows();
        let mut columns = Self {
            names: Vec::with_capacity(batch.num_columns()),
            arrays: Vec::with_capacity(batch.num_columns()),
            index: HashMap::with_capacity(batch.num_columns()),
            source_count: 0,
            rows,
            origin: None,
        };
        let schema = batch.schema_ref();
        for (field, array) in schema.fields().iter().zip(batch.columns()) {
            let wanted = projection.is_none_or(|(_, set)| set.contains(field.name()));
            if wanted && !columns.index.contains_key(field.name()) {
                columns.push(field.name(), array.clone());
            }
        }
        if let Some((fields, _)) = projection {
            for field in fields {
                if !columns.index.contains_key(field) {
                    columns.push(field, missing_column(rows));
                }
            }
        }
        columns.source_count = columns.names.len();
        columns
    }

    fn push(&mut self, name: &str, array: ArrayRef) {
        self.index.insert(name.to_owned(), self.names.len());
        self.names.push(name.to_owned());
        self.arrays.push(array);
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    pub(crate) fn get(&self, name: &str) -> Option<&ArrayRef> {
        self.index.get(name).map(|&position| &self.arrays[position])
    }

    /// Replaces a column in place, or adds it as an intermediate field.
    pub(crate) fn set(&mut self, name: &str, array: ArrayRef) {
        debug_assert_eq!(array.len(), self.rows);
        match self.index.get(name) {
            Some(&position) => self.arrays[position] = array,
            None => self.push(name, array),
        }
    }

    /// Source fields in batch order.
    pub(crate) fn source_fields(&self) -> impl Iterator<Item = (&str, &ArrayRef)> {
        self.names[..self.source_count]
            .iter()
            .map(String::as_str)
            .zip(&self.arrays[..self.source_count])
    }

    /// Keeps the rows where `keep` is true (`keep` has no nulls); returns how many were removed.
    pub(crate) fn retain(&mut self, keep: &BooleanArray) -> Result<u64, TransformError> {
        let kept = keep.true_count();
        let removed = self.rows - kept;
        if removed == 0 {
            return Ok(0);
        }
        let predicate = FilterBuilder::new(keep).optimize().build();
        let filter = |name: &str, array: &ArrayRef| {
            predicate
                .filter(array.as_ref())
                .map_err(|error| TransformError::arrow(name, "removing filtered rows", error))
        };
        for (name, array) in self.names.iter().zip(self.arrays.iter_mut()) {
            *array = filter(name, array)?;
        }
        let origin = match self.origin.take() {
            Some(origin) => origin,
            None => UInt64Array::from_iter_values(0..self.rows as u64),
        };
        let origin = predicate
            .filter(&origin)
            .map_err(|error| TransformError::arrow(BATCH, "tracking row numbers", error))?;
        self.origin = Some(arrow_array::cast::AsArray::as_primitive(origin.as_ref()).clone());
        self.rows = kept;
        Ok(removed as u64)
    }

    /// The input row of current row `row`.
    pub(crate) fn input_row(&self, row: usize) -> usize {
        match &self.origin {
            Some(origin) if row < origin.len() => origin.value(row) as usize,
            _ => row,
        }
    }
}
