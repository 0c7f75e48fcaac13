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

use std::sync::Arc;

use ::parquet::arrow::ArrowWriter;
use ::parquet::basic::Compression;
use ::parquet::file::properties::{EnabledStatistics, WriterProperties};
use arrow_array::RecordBatch;
use arrow_schema::{Field, Schema, SchemaRef};
use bytes::Bytes;

use crate::{BatchWriter, FormatError, OutputFormat, WriterOptions};

/// Rows per row group.
pub const DEFAULT_ROW_GROUP_ROWS: usize = 128 * 1024;
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
                Some(self.properties.clone()),
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

#[cfg(test)]
#[path = "parquet_tests.rs"]
mod tests;
