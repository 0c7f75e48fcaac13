//! Parquet writer with bounded row groups.
//!
//! A Parquet file's row group is assembled in memory before it is written, so an unbounded
//! row group would hold a whole file in memory. [`ParquetWriter`] closes a row group at
//! [`DEFAULT_ROW_GROUP_ROWS`] rows or about [`DEFAULT_ROW_GROUP_BYTES`] encoded bytes, whichever
//! comes first; the closed row group's bytes are then ready for
//! [`BatchWriter::take_flushed`](crate::BatchWriter::take_flushed), which lets the caller
//! upload while writing. Pages are Snappy-compressed.
//!
//! With `preserve_source_data_typing` false (AppFlow's default) every column is written as a
//! string, rendered by [`crate::text`]; with it true the Arrow types are kept.
//!
//! Dictionary encoding is chosen per column from the first batch: string and fixed-width
//! columns whose sampled values are mostly distinct (ids, e-mails, free text, amounts,
//! timestamps) are written plain. For such columns a dictionary is about as large as the
//! values themselves, or the encoder fills it up to its page limit and falls back to plain
//! encoding anyway; either way it only spends CPU on hashing and keeps a dictionary page per
//! column and row group in memory. Repetitive columns (countries, statuses) keep their
//! dictionaries.

use std::collections::HashSet;
use std::sync::Arc;

use ::parquet::arrow::ArrowWriter;
use ::parquet::basic::Compression;
use ::parquet::file::properties::{EnabledStatistics, WriterProperties};
use ::parquet::schema::types::ColumnPath;
use arrow_array::{Array, RecordBatch, StringArray};
use arrow_schema::{Field, Schema, SchemaRef};
use bytes::Bytes;

use crate::{BatchWriter, FormatError, OutputFormat, WriterOptions};

/// Rows per row group. A row group is assembled in memory, so this bounds the writer's memory;
/// 64k rows keeps wide text rows well under 64 MB while still giving readers large groups.
pub const DEFAULT_ROW_GROUP_ROWS: usize = 64 * 1024;

/// Rows of the first batch sampled to choose dictionary encoding per column.
const DICTIONARY_SAMPLE_ROWS: usize = 1024;
/// Non-null sampled values needed before a column may be judged too distinct for a dictionary.
const DICTIONARY_MIN_SAMPLE: usize = 64;
/// Approximate encoded bytes per row group.
pub const DEFAULT_ROW_GROUP_BYTES: usize = 64 * 1024 * 1024;

/// Parquet writer; see the module documentation.
pub struct ParquetWriter {
    preserve_types: bool,
    properties: WriterProperties,
    /// Created with the first batch, whose schema fixes the file's schema.
    writer: Option<ArrowWriter<Vec<u8>>>,
    schema: Option<SchemaRef>,
    rows: u64,
}

impl std::fmt::Debug for ParquetWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetWriter")
            .field("preserve_types", &self.preserve_types)
            .field("schema", &self.schema)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl ParquetWriter {
    /// A writer configured by `options`.
    pub fn new(options: &WriterOptions) -> Self {
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(options.row_group_rows.max(1)))
            .set_max_row_group_bytes(Some(options.row_group_bytes.max(1)))
            // Column-chunk statistics are what readers use for pruning; page-level ones cost
            // CPU on every page for little benefit in these files.
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .build();
        Self {
            preserve_types: options.preserve_source_data_typing,
            properties,
            writer: None,
            schema: None,
            rows: 0,
        }
    }

    /// The file schema a batch with `schema` would get: nullable fields without metadata, and
    /// all strings unless types are preserved.
    fn file_schema(&self, schema: &Schema) -> SchemaRef {
        if !self.preserve_types {
            return crate::text::text_schema(schema);
        }
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), f.data_type().clone(), true))
            .collect();
        Arc::new(Schema::new(fields))
    }

    fn error(error: impl std::fmt::Display) -> FormatError {
        FormatError::encode(OutputFormat::Parquet, error)
    }
}

impl BatchWriter for ParquetWriter {
    fn accepts(&self, schema: &Schema) -> bool {
        match &self.schema {
            None => true,
            Some(own) => {
                let wanted = self.file_schema(schema);
                own.fields().len() == wanted.fields().len()
                    && own
                        .fields()
                        .iter()
                        .zip(wanted.fields())
                        .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type())
            }
        }
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), FormatError> {
        if !self.accepts(batch.schema_ref()) {
            return Err(Self::error("batch schema differs from the file schema"));
        }
        if batch.num_columns() == 0 {
            return Err(Self::error("a batch without columns cannot be written"));
        }
        let schema = match &self.schema {
            Some(schema) => Arc::clone(schema),
            None => self.file_schema(batch.schema_ref()),
        };
        let columns = if self.preserve_types {
            batch.columns().to_vec()
        } else {
            crate::text::batch_to_text(batch)
                .map_err(|error| Self::error(crate::arrow_message(&error)))?
                .columns()
                .to_vec()
        };
        // Re-labelled with the file schema: nullable, no metadata.
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns).map_err(Self::error)?;
        if self.writer.is_none() {
            let writer = ArrowWriter::try_new(
                Vec::new(),
                Arc::clone(&schema),
                Some(dictionary_by_column(self.properties.clone(), &batch)),
            )
            .map_err(Self::error)?;
            self.writer = Some(writer);
            self.schema = Some(schema);
        }
        if let Some(writer) = &mut self.writer {
            writer.write(&batch).map_err(Self::error)?;
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), FormatError> {
        match &mut self.writer {
            Some(writer) => writer.flush().map_err(Self::error),
            None => Ok(()),
        }
    }

    fn take_flushed(&mut self) -> Bytes {
        match &mut self.writer {
            // Draining bytes the writer has already emitted is safe: it tracks file offsets
            // itself and never reads them back.
            Some(writer) => Bytes::from(std::mem::take(writer.inner_mut())),
            None => Bytes::new(),
        }
    }

    fn buffered_bytes(&self) -> usize {
        match &self.writer {
            Some(writer) => writer.inner().len() + writer.memory_size(),
            None => 0,
        }
    }

    fn rows_written(&self) -> u64 {
        self.rows
    }

    fn finish(mut self: Box<Self>) -> Result<Bytes, FormatError> {
        let Some(mut writer) = self.writer.take() else {
            return Ok(Bytes::new());
        };
        writer.finish().map_err(Self::error)?;
        Ok(Bytes::from(std::mem::take(writer.inner_mut())))
    }
}

/// Disables dictionary encoding for the columns of `batch` whose sampled values are mostly
/// distinct; see the module documentation.
fn dictionary_by_column(properties: WriterProperties, batch: &RecordBatch) -> WriterProperties {
    let mut builder = properties.into_builder();
    for (field, column) in batch.schema_ref().fields().iter().zip(batch.columns()) {
        if mostly_distinct(column.as_ref()) {
            builder = builder
                .set_column_dictionary_enabled(ColumnPath::from(field.name().as_str()), false);
        }
    }
    builder.build()
}

/// Whether more than half of the sampled non-null values of a string or fixed-width column
/// (integers, decimals, floats, dates, times, timestamps) are distinct. Other types keep the
/// encoder's default.
fn mostly_distinct(column: &dyn Array) -> bool {
    let sample = column.len().min(DICTIONARY_SAMPLE_ROWS);
    if let Some(strings) = column.as_any().downcast_ref::<StringArray>() {
        return mostly_distinct_values(
            (0..sample)
                .filter(|row| strings.is_valid(*row))
                .map(|row| strings.value(row).as_bytes()),
        );
    }
    let Some(width) = column.data_type().primitive_width() else {
        return false;
    };
    // A fixed-width array's values are one buffer of `width`-byte values, starting at the
    // array's offset; comparing those bytes compares the values (floats by bit pattern).
    let data = column.to_data();
    let start = data.offset() * width;
    let Some(bytes) = data
        .buffers()
        .first()
        .and_then(|buffer| buffer.as_slice().get(start..start + sample * width))
    else {
        return false;
    };
    mostly_distinct_values(
        bytes
            .chunks_exact(width)
            .enumerate()
            .filter(|(row, _)| column.is_valid(*row))
            .map(|(_, value)| value),
    )
}

/// Whether enough `values` were sampled and more than half of them are distinct.
fn mostly_distinct_values<'a>(values: impl Iterator<Item = &'a [u8]>) -> bool {
    let mut distinct = HashSet::with_capacity(DICTIONARY_SAMPLE_ROWS);
    let mut count = 0;
    for value in values {
        count += 1;
        distinct.insert(value);
    }
    count >= DICTIONARY_MIN_SAMPLE && distinct.len() * 2 > count
}

#[cfg(test)]
#[path = "parquet_tests.rs"]
mod tests;
