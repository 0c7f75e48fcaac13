//! CSV: a push-based decoder and a writer.
//!
//! # Reading
//! [`CsvDecoder`] parses RFC-4180 CSV (comma separator, `"` quoting with `""` escapes, quoted
//! fields may contain separators and newlines, `\n`, `\r\n` or `\r` line ends) with `csv-core`,
//! the state machine under the `csv` and `arrow-csv` crates. It is driven directly rather than
//! through `arrow_csv::reader::Decoder` because errors must name the *physical* line (records
//! with quoted newlines span several) and the header needs checks arrow-csv does not do.
//!
//! - The first record is the header and is required. Empty (or whitespace-only) and duplicate
//!   names are errors. A UTF-8 byte-order mark is stripped.
//! - Every column is `Utf8`. Empty fields (including a quoted `""`) are null.
//! - A record with the wrong number of fields is an error naming the line:
//!   `in/data.csv line 17: expected 5 fields, found 4`. Blank lines are skipped.
//! - An empty file or a header-only file yields no rows.
//! - Memory is bounded: field bytes go straight into one reusable buffer, batches are cut at
//!   `batch_rows` rows or `batch_bytes` bytes, and a single record larger than
//!   [`MAX_RECORD_BYTES`] (typically an unterminated quote) is an error.
//!
//! # Writing
//! [`CsvWriter`] writes a header of field names and RFC-4180 records through `arrow-csv`.
//! Columns are rendered with [`crate::text`] first, so timestamps are ISO-8601 and every
//! Arrow type with a text form can be written; nulls are empty fields.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_buffer::{Buffer, NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use csv_core::{ReadRecordResult, Reader, ReaderBuilder, Terminator};

use crate::{BatchDecoder, BatchWriter, FormatError, OutputFormat, ReaderOptions};

/// The largest single record accepted. Larger ones are almost always an unterminated quote
/// swallowing the rest of the file, and would otherwise defeat the memory bound.
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
/// Initial size of the field-data buffer; it grows on demand and is reused between batches.
const INITIAL_DATA_CAPACITY: usize = 64 * 1024;

/// Push-based CSV decoder; see the module documentation.
pub struct CsvDecoder {
    file: String,
    reader: Reader,
    batch_rows: usize,
    batch_bytes: usize,
    projection_names: Option<Vec<String>>,
    /// Bytes held back at the start of the file until we know whether they are a BOM.
    bom_probe: Option<Vec<u8>>,
    /// Column count, known after the header.
    columns: Option<usize>,
    /// Output schema and the file columns it selects.
    schema: Option<SchemaRef>,
    projection: Vec<usize>,
    /// Field data of the buffered rows, then of the record being parsed.
    data: Vec<u8>,
    data_len: usize,
    /// Field end offsets into `data`: `columns` per buffered row, then those of the current
    /// record (relative to `row_start` until the record completes).
    ends: Vec<usize>,
    ends_len: usize,
    current_fields: usize,
    row_start: usize,
    /// Physical line on which each buffered row ends.
    row_end_lines: Vec<u64>,
    /// The last input byte consumed, to tell whether the line count already covers a
    /// record's terminator.
    last_byte: u8,
    rows: u64,
    finished: bool,
}

impl CsvDecoder {
    /// A decoder for the file named `file` (used in error messages).
    pub fn new(file: &str, options: &ReaderOptions) -> Self {
        let reader = ReaderBuilder::new()
            .delimiter(b',')
            .quote(b'"')
            .double_quote(true)
            .terminator(Terminator::CRLF)
            .build();
        Self {
            file: file.to_owned(),
            reader,
            batch_rows: options.batch_rows.max(1),
            batch_bytes: options.batch_bytes.clamp(1, i32::MAX as usize / 2),
            projection_names: options.projection.clone(),
            bom_probe: Some(Vec::new()),
            columns: None,
            schema: None,
            projection: Vec::new(),
            data: Vec::new(),
            data_len: 0,
            ends: Vec::new(),
            ends_len: 0,
            current_fields: 0,
            row_start: 0,
            row_end_lines: Vec::new(),
            last_byte: b'\n',
            rows: 0,
            finished: false,
        }
    }

    /// Runs the parser over `input` (empty input means end of file).
    fn feed(&mut self, mut input: &[u8], out: &mut Vec<RecordBatch>) -> Result<(), FormatError> {
        let eof = input.is_empty();
        loop {
            self.reserve();
            let (result, nin, nout, nend) = self.reader.read_record(
                input,
                &mut self.data[self.data_len..],
                &mut self.ends[self.ends_len + self.current_fields..],
            );
            if nin > 0 {
                self.last_byte = input[nin - 1];
            }
            input = &input[nin..];
            self.data_len += nout;
            self.current_fields += nend;
            match result {
                ReadRecordResult::InputEmpty => {
                    if self.data_len - self.row_start > MAX_RECORD_BYTES {
                        return Err(self.record_too_large());
                    }
                    if input.is_empty() && !eof {
                        return Ok(());
                    }
                }
                ReadRecordResult::OutputFull => {
                    if self.data_len - self.row_start > MAX_RECORD_BYTES {
                        return Err(self.record_too_large());
                    }
                    let grown = (self.data.len() * 2).max(INITIAL_DATA_CAPACITY);
                    self.data.resize(grown, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    // A record with more fields than expected: keep parsing it so the error can
                    // say how many it has. The record-size bound also bounds its field count.
                    let grown = (self.ends.len() * 2).max(64);
                    self.ends.resize(grown, 0);
                }
                ReadRecordResult::Record => self.complete_record(out)?,
                ReadRecordResult::End => return Ok(()),
            }
        }
    }

    /// Makes room for field data and for the current record's end offsets.
    fn reserve(&mut self) {
        if self.data.len() - self.data_len < 1024 {
            let grown = (self.data.len() * 2).max(INITIAL_DATA_CAPACITY);
            self.data.resize(grown, 0);
        }
        // Room for a whole row (plus one) so ordinary records never stop for end offsets.
        let needed = self.ends_len + self.current_fields + self.columns.unwrap_or(0) + 1;
        if self.ends.len() < needed {
            let grown = needed.max(self.ends.len() * 2).max(64);
            self.ends.resize(grown, 0);
        }
    }

    /// The physical line on which the record just completed ends. `csv-core` counts every
    /// `\n` it consumed; when the terminator was `\r` (of `\r\n`) or the end of file, the
    /// record's own line has not been counted yet.
    fn record_end_line(&self) -> u64 {
        let newlines = self.reader.line().saturating_sub(1);
        newlines + u64::from(self.last_byte != b'\n')
    }

    /// The first line of a record ending on `end_line` whose fields hold `data`: quoted
    /// newlines inside fields account for the lines in between.
    fn record_start_line(end_line: u64, data: &[u8]) -> u64 {
        let inner = memchr::memchr_iter(b'\n', data).count() as u64;
        end_line.saturating_sub(inner).max(1)
    }

    fn complete_record(&mut self, out: &mut Vec<RecordBatch>) -> Result<(), FormatError> {
        let fields = std::mem::take(&mut self.current_fields);
        let row_start = self.row_start;
        let record = self.ends_len..self.ends_len + fields;
        for end in &mut self.ends[record.clone()] {
            *end += row_start;
        }
        let end_line = self.record_end_line();
        let Some(columns) = self.columns else {
            return self.take_header(fields, end_line);
        };
        if fields != columns {
            let start_line =
                Self::record_start_line(end_line, &self.data[row_start..self.data_len]);
            return Err(self.line_error(
                start_line,
                format!("expected {columns} fields, found {fields}"),
            ));
        }
        self.ends_len += columns;
        self.row_start = self.data_len;
        self.row_end_lines.push(end_line);
        if self.row_end_lines.len() >= self.batch_rows || self.data_len >= self.batch_bytes {
            out.push(self.build_batch()?);
        }
        Ok(())
    }

    fn take_header(&mut self, fields: usize, end_line: u64) -> Result<(), FormatError> {
        let data = &self.data[..self.data_len];
        let mut names = Vec::with_capacity(fields);
        let mut start = 0;
        for &end in &self.ends[..fields] {
            let raw = &data[start..end];
            start = end;
            let name = std::str::from_utf8(raw).map_err(|_| {
                self.line_error(
                    end_line,
                    format!("header column {} is not valid UTF-8", names.len() + 1),
                )
            })?;
            names.push(name.to_owned());
        }
        let header_line = Self::record_start_line(end_line, data);
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(names.len());
        for (index, name) in names.iter().enumerate() {
            if name.trim().is_empty() {
                return Err(self.line_error(
                    header_line,
                    format!("header column {} has an empty name", index + 1),
                ));
            }
            if let Some(first) = seen.insert(name.as_str(), index) {
                return Err(self.line_error(
                    header_line,
                    format!(
                        "duplicate header name {name:?} (columns {} and {})",
                        first + 1,
                        index + 1
                    ),
                ));
            }
        }
        self.projection = match &self.projection_names {
            None => (0..names.len()).collect(),
            Some(wanted) => (0..names.len())
                .filter(|i| wanted.contains(&names[*i]))
                .collect(),
        };
        let schema_fields: Vec<Field> = self
            .projection
            .iter()
            .map(|&i| Field::new(names[i].as_str(), DataType::Utf8, true))
            .collect();
        self.schema = Some(Arc::new(Schema::new(schema_fields)));
        self.columns = Some(names.len());
        self.data_len = 0;
        self.row_start = 0;
        self.ends_len = 0;
        Ok(())
    }

    /// Turns the buffered rows into a batch and resets the buffers (keeping their memory).
    fn build_batch(&mut self) -> Result<RecordBatch, FormatError> {
        let rows = self.row_end_lines.len();
        let columns = self.columns.unwrap_or(0);
        let schema = match &self.schema {
            Some(schema) => Arc::clone(schema),
            None => {
                return Err(FormatError::file(
                    &self.file,
                    "rows decoded before the header",
                ));
            }
        };
        let data = &self.data[..self.row_start];
        let ends = &self.ends[..self.ends_len];
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.projection.len());
        for &column in &self.projection {
            let mut offsets: Vec<i32> = Vec::with_capacity(rows + 1);
            offsets.push(0);
            let mut values: Vec<u8> = Vec::with_capacity(data.len() / columns.max(1));
            let mut nulls = NullBufferBuilder::new(rows);
            for row in 0..rows {
                let index = row * columns + column;
                let start = if index == 0 { 0 } else { ends[index - 1] };
                let field = &data[start..ends[index]];
                if field.is_empty() {
                    nulls.append_null();
                } else {
                    nulls.append_non_null();
                    values.extend_from_slice(field);
                }
                // Cannot overflow: batches are cut well below i32::MAX bytes.
                offsets.push(values.len() as i32);
            }
            let array = StringArray::try_new(
                OffsetBuffer::new(ScalarBuffer::from(offsets)),
                Buffer::from(values),
                nulls.finish(),
            )
            .map_err(|_| self.utf8_error(column))?;
            arrays.push(Arc::new(array));
        }
        let batch = RecordBatch::try_new(schema, arrays)
            .map_err(|error| FormatError::file(&self.file, crate::arrow_message(&error)))?;
        self.rows += rows as u64;
        self.data_len -= self.row_start;
        // Move a partially parsed record (if any) to the front of the buffer.
        self.data
            .copy_within(self.row_start..self.row_start + self.data_len, 0);
        let partial = self.current_fields;
        self.ends
            .copy_within(self.ends_len..self.ends_len + partial, 0);
        self.row_start = 0;
        self.ends_len = 0;
        self.row_end_lines.clear();
        Ok(batch)
    }

    /// Finds the first field of `column` that is not UTF-8 and names its line.
    fn utf8_error(&self, column: usize) -> FormatError {
        let columns = self.columns.unwrap_or(1);
        let name = self
            .schema
            .as_ref()
            .and_then(|s| {
                let position = self.projection.iter().position(|&c| c == column)?;
                Some(s.field(position).name().clone())
            })
            .unwrap_or_default();
        for (row, &end_line) in self.row_end_lines.iter().enumerate() {
            let index = row * columns + column;
            let start = if index == 0 { 0 } else { self.ends[index - 1] };
            if std::str::from_utf8(&self.data[start..self.ends[index]]).is_err() {
                let row_begin = if row == 0 {
                    0
                } else {
                    self.ends[row * columns - 1]
                };
                let row_end = self.ends[row * columns + columns - 1];
                let line = Self::record_start_line(end_line, &self.data[row_begin..row_end]);
                return self.line_error(line, format!("column {name:?} is not valid UTF-8"));
            }
        }
        FormatError::file(&self.file, format!("column {name:?} is not valid UTF-8"))
    }

    fn record_too_large(&self) -> FormatError {
        let line = Self::record_start_line(
            self.reader.line(),
            &self.data[self.row_start..self.data_len],
        );
        self.line_error(
            line,
            format!(
                "record is larger than {} MiB (is a quote left open?)",
                MAX_RECORD_BYTES / (1024 * 1024)
            ),
        )
    }

    fn line_error(&self, line: u64, message: String) -> FormatError {
        FormatError::line(&self.file, line, message)
    }
}

impl BatchDecoder for CsvDecoder {
    fn push(&mut self, chunk: &[u8]) -> Result<Vec<RecordBatch>, FormatError> {
        if self.finished {
            return Err(FormatError::file(
                &self.file,
                "data pushed after the end of the file",
            ));
        }
        let mut out = Vec::new();
        if chunk.is_empty() {
            return Ok(out);
        }
        if let Some(mut probe) = self.bom_probe.take() {
            probe.extend_from_slice(chunk);
            if probe.len() < UTF8_BOM.len() && UTF8_BOM.starts_with(&probe) {
                // Could still become a BOM; wait for more bytes.
                self.bom_probe = Some(probe);
                return Ok(out);
            }
            let body = probe.strip_prefix(UTF8_BOM).unwrap_or(&probe);
            self.feed(body, &mut out)?;
            return Ok(out);
        }
        self.feed(chunk, &mut out)?;
        Ok(out)
    }

    fn finish(&mut self) -> Result<Vec<RecordBatch>, FormatError> {
        let mut out = Vec::new();
        if self.finished {
            return Ok(out);
        }
        if let Some(probe) = self.bom_probe.take() {
            let body = probe.strip_prefix(UTF8_BOM).unwrap_or(&probe);
            if !body.is_empty() {
                self.feed(body, &mut out)?;
            }
        }
        self.feed(&[], &mut out)?;
        self.finished = true;
        if !self.row_end_lines.is_empty() {
            out.push(self.build_batch()?);
        }
        Ok(out)
    }

    fn schema(&self) -> Option<SchemaRef> {
        self.schema.clone()
    }

    fn rows(&self) -> u64 {
        self.rows
    }
}

/// CSV writer; see the module documentation.
#[derive(Debug, Default)]
pub struct CsvWriter {
    schema: Option<SchemaRef>,
    out: Vec<u8>,
    rows: u64,
}

impl CsvWriter {
    /// A writer whose header comes from the first batch.
    pub fn new() -> Self {
        Self::default()
    }
}

impl BatchWriter for CsvWriter {
    fn accepts(&self, schema: &Schema) -> bool {
        self.schema
            .as_ref()
            .is_none_or(|own| crate::same_names(own, schema))
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), FormatError> {
        if !self.accepts(batch.schema_ref()) {
            return Err(FormatError::encode(
                OutputFormat::Csv,
                "batch columns differ from the file header",
            ));
        }
        if batch.num_rows() == 0 && self.schema.is_some() {
            return Ok(());
        }
        let text = crate::text::batch_to_text(batch).map_err(|error| {
            FormatError::encode(OutputFormat::Csv, crate::arrow_message(&error))
        })?;
        let header = self.schema.is_none();
        // arrow-csv writes the header with the first batch of each writer, and its writer
        // cannot be drained in place, so each batch gets a short-lived writer over our buffer.
        let mut writer = arrow_csv::WriterBuilder::new()
            .with_header(header)
            .build(std::mem::take(&mut self.out));
        let written = writer.write(&text);
        self.out = writer.into_inner();
        written.map_err(|error| {
            FormatError::encode(OutputFormat::Csv, crate::arrow_message(&error))
        })?;
        if header {
            self.schema = Some(batch.schema());
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), FormatError> {
        Ok(())
    }

    fn take_flushed(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.out))
    }

    fn buffered_bytes(&self) -> usize {
        self.out.len()
    }

    fn rows_written(&self) -> u64 {
        self.rows
    }

    fn finish(self: Box<Self>) -> Result<Bytes, FormatError> {
        Ok(Bytes::from(self.out))
    }
}

#[cfg(test)]
#[path = "csv_tests.rs"]
mod tests;
