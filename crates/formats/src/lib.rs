//! CSV, JSON Lines and Parquet readers and writers for Arrow record batches.
//!
//! Everything here streams with bounded memory, so a multi-gigabyte object never has to fit in
//! memory:
//!
//! - **Readers** are push-based [`BatchDecoder`]s: the caller feeds byte chunks as they arrive
//!   from an object stream and receives record batches of at most `batch_rows` rows (and about
//!   `batch_bytes` bytes). Errors name the file and the line.
//! - **Writers** implement [`BatchWriter`]: encoded bytes accumulate inside the writer and are
//!   drained with [`BatchWriter::take_flushed`], so the caller can upload parts while it keeps
//!   writing. Parquet row groups are closed at a row or byte bound for the same reason.
//!
//! Formats are kept apart from transports: nothing here knows about buckets or object stores.
//!
//! Text rendering is shared by all writers ([`text`]): timestamps and dates become ISO-8601,
//! nulls become empty CSV fields, JSON `null` or Parquet nulls.

pub mod csv;
pub mod jsonl;
pub mod parquet;
pub mod text;

use std::fmt;

use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, Schema, SchemaRef};
use bytes::Bytes;

/// Rows per batch when the caller does not say.
pub const DEFAULT_BATCH_ROWS: usize = 32 * 1024;
/// Approximate upper bound of decoded field data per batch.
pub const DEFAULT_BATCH_BYTES: usize = 32 * 1024 * 1024;

/// A format failure. Reader errors name the file (and the line when there is one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Bad data at a known line of an input file.
    #[error("{file} line {line}: {message}")]
    Line {
        /// The file, as the caller named it (e.g. `bucket/in/data.csv`).
        file: String,
        /// 1-based physical line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// Bad data in an input file, not attributable to one line.
    #[error("{file}: {message}")]
    File {
        /// The file, as the caller named it.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A batch could not be encoded.
    #[error("cannot write {format}: {message}")]
    Encode {
        /// The output format.
        format: OutputFormat,
        /// What went wrong.
        message: String,
    },
}

impl FormatError {
    pub(crate) fn line(file: &str, line: u64, message: impl Into<String>) -> Self {
        Self::Line {
            file: file.to_owned(),
            line,
            message: message.into(),
        }
    }

    pub(crate) fn file(file: &str, message: impl Into<String>) -> Self {
        Self::File {
            file: file.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn encode(format: OutputFormat, error: impl fmt::Display) -> Self {
        Self::Encode {
            format,
            message: error.to_string(),
        }
    }
}

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputFormat {
    /// Comma-separated values with a header row; every column is read as `Utf8`.
    Csv,
    /// JSON Lines: one object per line, types inferred.
    JsonLines,
}

impl fmt::Display for InputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Csv => "CSV",
            Self::JsonLines => "JSON Lines",
        })
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    /// RFC-4180 CSV with a header row.
    Csv,
    /// JSON Lines.
    JsonLines,
    /// Parquet, Snappy-compressed.
    Parquet,
}

impl OutputFormat {
    /// The file extension, without the dot: `csv`, `jsonl` or `parquet`.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::JsonLines => "jsonl",
            Self::Parquet => "parquet",
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Csv => "CSV",
            Self::JsonLines => "JSON Lines",
            Self::Parquet => "Parquet",
        })
    }
}

/// Reader settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderOptions {
    /// Maximum rows per batch.
    pub batch_rows: usize,
    /// Approximate maximum bytes of field data per batch.
    pub batch_bytes: usize,
    /// Columns to keep, by name; `None` keeps all. Names absent from a file are ignored. Only
    /// CSV skips unprojected columns while decoding; JSON Lines drops them after decoding.
    pub projection: Option<Vec<String>>,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        Self {
            batch_rows: DEFAULT_BATCH_ROWS,
            batch_bytes: DEFAULT_BATCH_BYTES,
            projection: None,
        }
    }
}

/// A push-based decoder of one input file.
///
/// # Contract
/// Feed every chunk with [`push`](Self::push), in order, then call [`finish`](Self::finish)
/// once. Each call returns the batches completed so far (often none). Batches of one file may
/// carry different schemas when the format infers types (JSON Lines); see [`jsonl`].
pub trait BatchDecoder: Send {
    /// Decodes `chunk`, returning completed batches.
    ///
    /// # Errors
    /// [`FormatError::Line`] or [`FormatError::File`] naming the file and line.
    fn push(&mut self, chunk: &[u8]) -> Result<Vec<RecordBatch>, FormatError>;

    /// Signals the end of the file, returning the remaining batches.
    ///
    /// # Errors
    /// As for [`push`](Self::push), e.g. for a truncated last record.
    fn finish(&mut self) -> Result<Vec<RecordBatch>, FormatError>;

    /// The schema known so far (after the CSV header, or after the first JSON batch).
    fn schema(&self) -> Option<SchemaRef>;

    /// Rows decoded so far.
    fn rows(&self) -> u64;
}

/// Creates the decoder for `format`; `file` names the input in error messages.
pub fn new_decoder(
    format: InputFormat,
    file: &str,
    options: &ReaderOptions,
) -> Box<dyn BatchDecoder> {
    match format {
        InputFormat::Csv => Box::new(csv::CsvDecoder::new(file, options)),
        InputFormat::JsonLines => Box::new(jsonl::JsonLinesDecoder::new(file, options)),
    }
}

/// Writer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterOptions {
    /// Parquet only: keep source types. When false every column is written as a string, as
    /// AppFlow does with `preserveSourceDataTyping: false`. CSV is text anyway and JSON Lines
    /// always keeps JSON types.
    pub preserve_source_data_typing: bool,
    /// Parquet row groups are closed at this many rows.
    pub row_group_rows: usize,
    /// Parquet row groups are closed when their encoded size reaches about this many bytes.
    pub row_group_bytes: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            preserve_source_data_typing: false,
            row_group_rows: parquet::DEFAULT_ROW_GROUP_ROWS,
            row_group_bytes: parquet::DEFAULT_ROW_GROUP_BYTES,
        }
    }
}

/// An encoder of record batches into one output file.
///
/// # Contract
/// - The first written batch fixes the file's columns; [`accepts`](Self::accepts) says whether
///   a later batch fits. A caller must start a new file for a batch that does not fit;
///   [`write`](Self::write) rejects it.
/// - Encoded bytes accumulate until [`take_flushed`](Self::take_flushed) drains them. The
///   concatenation of every drained chunk and the bytes returned by [`finish`](Self::finish)
///   is the complete file.
pub trait BatchWriter: Send {
    /// Whether a batch with `schema` can be appended to this file.
    fn accepts(&self, schema: &Schema) -> bool;

    /// Encodes one batch.
    ///
    /// # Errors
    /// [`FormatError::Encode`] when the batch does not fit the file or cannot be encoded.
    fn write(&mut self, batch: &RecordBatch) -> Result<(), FormatError>;

    /// Encodes everything buffered (Parquet closes the current row group), so that
    /// [`take_flushed`](Self::take_flushed) can release it.
    ///
    /// # Errors
    /// [`FormatError::Encode`].
    fn flush(&mut self) -> Result<(), FormatError>;

    /// Removes and returns the encoded bytes that are ready.
    fn take_flushed(&mut self) -> Bytes;

    /// Bytes held in memory: encoded-but-not-taken output plus work in progress.
    fn buffered_bytes(&self) -> usize;

    /// Rows written so far.
    fn rows_written(&self) -> u64;

    /// Completes the file (Parquet writes its footer) and returns the bytes not yet taken.
    ///
    /// # Errors
    /// [`FormatError::Encode`].
    fn finish(self: Box<Self>) -> Result<Bytes, FormatError>;
}

/// Creates a writer for `format`.
pub fn new_writer(format: OutputFormat, options: &WriterOptions) -> Box<dyn BatchWriter> {
    match format {
        OutputFormat::Csv => Box::new(csv::CsvWriter::new()),
        OutputFormat::JsonLines => Box::new(jsonl::JsonLinesWriter::new()),
        OutputFormat::Parquet => Box::new(parquet::ParquetWriter::new(options)),
    }
}

/// Field names of `schema`, for comparing column layouts.
pub(crate) fn same_names(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields())
            .all(|(x, y)| x.name() == y.name())
}

pub(crate) fn arrow_message(error: &ArrowError) -> String {
    // Arrow prefixes messages with the error kind ("Json error: ..."), which reads badly
    // after our own "file line N:" prefix.
    let text = error.to_string();
    for prefix in [
        "Json error: ",
        "Csv error: ",
        "Parser error: ",
        "Invalid argument error: ",
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return rest.to_owned();
        }
    }
    text
}
