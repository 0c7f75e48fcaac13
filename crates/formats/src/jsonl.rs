//! JSON Lines: a push-based decoder with schema inference, and a writer.
//!
//! # Reading
//! One JSON object per line (`\n` or `\r\n`); blank lines are skipped and a UTF-8 BOM is
//! stripped. Values are decoded by `arrow-json`'s tape decoder; lines are fed one at a time so a
//! malformed line is reported with its number (`in/events.jsonl line 12: ...`).
//!
//! **Types.** The schema is inferred from the first [`INFER_LINES`] lines of the file: booleans
//! become `Boolean`, integers `Int64`, other numbers (and integers beyond the `i64` range)
//! `Float64`, strings `Utf8`. Mixed types widen: integer + float gives `Float64`, any other mix
//! gives `Utf8` (numbers and booleans then appear as their JSON text). Nested objects and arrays
//! become `Utf8` holding their JSON text. Fields that are only ever `null` become `Utf8`.
//!
//! **Fields that appear later are never lost.** Each batch is first decoded strictly against
//! the current schema. If a line has a field the schema lacks, or a value the schema's type
//! cannot hold, the batch's own lines are inferred, merged into the schema (which only ever
//! widens) and the batch is decoded again. So batches of one file may carry different schemas:
//! a later batch can have more columns or wider types than an earlier one. Consumers that need
//! one schema per output file (CSV, Parquet) start a new file when it changes.
//!
//! # Writing
//! [`JsonLinesWriter`] writes one object per row through `arrow-json`, keeping JSON types
//! (numbers stay numbers, booleans booleans). Nulls are written explicitly as `null`, so every
//! line carries every column. Timestamps and dates are ISO-8601 strings.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_json::reader::{ArrayDecoder, DecoderContext, DecoderFactory, Tape, TapeElement};
use arrow_json::writer::LineDelimited;
use arrow_schema::{ArrowError, DataType, Field, FieldRef, Schema, SchemaRef};
use bytes::Bytes;

use crate::{BatchDecoder, BatchWriter, FormatError, OutputFormat, ReaderOptions};

/// Lines used to infer the initial schema of a file.
pub const INFER_LINES: usize = 1000;
/// The longest line accepted; longer ones would defeat the memory bound.
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// The inferred type of one field, before it becomes an Arrow type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonType {
    /// Only `null` seen so far.
    Null,
    Bool,
    Int,
    Float,
    Text,
}

impl JsonType {
    fn merge(self, other: Self) -> Self {
        match (self, other) {
            (a, b) if a == b => a,
            (Self::Null, x) | (x, Self::Null) => x,
            (Self::Int, Self::Float) | (Self::Float, Self::Int) => Self::Float,
            _ => Self::Text,
        }
    }

    fn data_type(self) -> DataType {
        match self {
            Self::Bool => DataType::Boolean,
            Self::Int => DataType::Int64,
            Self::Float => DataType::Float64,
            Self::Null | Self::Text => DataType::Utf8,
        }
    }
}

/// Why a strict decode of a batch failed.
enum DecodeFailure {
    /// A line is not valid JSON (or not exactly one value).
    Syntax { line: u64, message: String },
    /// The batch does not fit the schema: a new field or a wider type.
    Schema(String),
}

/// Push-based JSON Lines decoder; see the module documentation.
pub struct JsonLinesDecoder {
    file: String,
    batch_rows: usize,
    batch_bytes: usize,
    projection: Option<Vec<String>>,
    /// Bytes of a line not yet terminated.
    partial: Vec<u8>,
    /// Lines consumed so far (the number of the last complete line).
    line: u64,
    /// Pending non-blank lines, concatenated, with their end offsets and line numbers.
    buf: Vec<u8>,
    lines: Vec<(usize, u64)>,
    /// Field types inferred so far, in order of first appearance.
    types: Vec<(String, JsonType)>,
    schema: Option<SchemaRef>,
    rows: u64,
    finished: bool,
}

impl JsonLinesDecoder {
    /// A decoder for the file named `file` (used in error messages).
    pub fn new(file: &str, options: &ReaderOptions) -> Self {
        Self {
            file: file.to_owned(),
            batch_rows: options.batch_rows.max(1),
            batch_bytes: options.batch_bytes.max(1),
            projection: options.projection.clone(),
            partial: Vec::new(),
            line: 0,
            buf: Vec::new(),
            lines: Vec::new(),
            types: Vec::new(),
            schema: None,
            rows: 0,
            finished: false,
        }
    }

    /// Queues one complete line (without its `\n`).
    fn add_line(&mut self, mut line: &[u8], out: &mut Vec<RecordBatch>) -> Result<(), FormatError> {
        self.line += 1;
        if self.line == 1 {
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        self.buf.extend_from_slice(line);
        self.lines.push((self.buf.len(), self.line));
        if self.lines.len() >= self.batch_rows || self.buf.len() >= self.batch_bytes {
            out.push(self.decode_batch()?);
        }
        Ok(())
    }

    /// The pending lines as (line number, bytes).
    fn pending_lines(&self) -> impl Iterator<Item = (u64, &[u8])> {
        let mut start = 0;
        self.lines.iter().map(move |&(end, number)| {
            let line = &self.buf[start..end];
            start = end;
            (number, line)
        })
    }

    /// Merges the types of the first `limit` pending lines into `self.types`.
    fn infer(&mut self, limit: usize) -> Result<(), FormatError> {
        let mut types = std::mem::take(&mut self.types);
        let mut result = Ok(());
        for (number, line) in self.pending_lines().take(limit) {
            if let Err(message) = infer_line(line, &mut types) {
                result = Err(FormatError::line(&self.file, number, message));
                break;
            }
        }
        self.types = types;
        result
    }

    fn schema_of_types(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .types
            .iter()
            .map(|(name, t)| Field::new(name.as_str(), t.data_type(), true))
            .collect();
        Arc::new(Schema::new(fields))
    }

    fn decode_batch(&mut self) -> Result<RecordBatch, FormatError> {
        if self.schema.is_none() {
            self.infer(INFER_LINES)?;
        }
        let mut schema = self.schema_of_types();
        let batch = match self.decode_with(&schema) {
            Ok(batch) => batch,
            Err(DecodeFailure::Syntax { line, message }) => {
                return Err(FormatError::line(&self.file, line, message));
            }
            Err(DecodeFailure::Schema(_)) => {
                // New fields or wider values: learn this batch's types and decode again.
                self.infer(usize::MAX)?;
                schema = self.schema_of_types();
                match self.decode_with(&schema) {
                    Ok(batch) => batch,
                    Err(DecodeFailure::Syntax { line, message }) => {
                        return Err(FormatError::line(&self.file, line, message));
                    }
                    Err(DecodeFailure::Schema(message)) => {
                        return Err(FormatError::file(&self.file, message));
                    }
                }
            }
        };
        // Once a column has been emitted as text it stays text, so schemas only widen.
        for (_, t) in &mut self.types {
            if *t == JsonType::Null {
                *t = JsonType::Text;
            }
        }
        self.schema = Some(schema);
        self.rows += batch.num_rows() as u64;
        self.buf.clear();
        self.lines.clear();
        self.project(batch)
    }

    /// Decodes the pending lines strictly against `schema`.
    fn decode_with(&self, schema: &SchemaRef) -> Result<RecordBatch, DecodeFailure> {
        let mut decoder = arrow_json::ReaderBuilder::new(Arc::clone(schema))
            .with_batch_size(self.lines.len().max(1))
            .with_strict_mode(true)
            .with_coerce_primitive(true)
            .with_decoder_factory(Arc::new(JsonTextFactory))
            .build_decoder()
            .map_err(|error| DecodeFailure::Schema(crate::arrow_message(&error)))?;
        for (expected, (number, line)) in self.pending_lines().enumerate() {
            let syntax = |message: String| DecodeFailure::Syntax {
                line: number,
                message,
            };
            let consumed = decoder
                .decode(line)
                .map_err(|error| syntax(crate::arrow_message(&error)))?;
            if consumed != line.len() || decoder.has_partial_record() {
                return Err(syntax("incomplete JSON value".to_owned()));
            }
            if decoder.len() != expected + 1 {
                return Err(syntax(
                    "expected exactly one JSON object on the line".to_owned(),
                ));
            }
        }
        match decoder.flush() {
            Ok(Some(batch)) => Ok(batch),
            Ok(None) => Ok(RecordBatch::new_empty(Arc::clone(schema))),
            Err(error) => Err(DecodeFailure::Schema(crate::arrow_message(&error))),
        }
    }

    fn project(&self, batch: RecordBatch) -> Result<RecordBatch, FormatError> {
        let Some(wanted) = &self.projection else {
            return Ok(batch);
        };
        let indices: Vec<usize> = batch
            .schema_ref()
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| wanted.contains(f.name()))
            .map(|(i, _)| i)
            .collect();
        batch
            .project(&indices)
            .map_err(|error| FormatError::file(&self.file, error.to_string()))
    }

    fn check_partial(&self) -> Result<(), FormatError> {
        if self.partial.len() > MAX_LINE_BYTES {
            return Err(FormatError::line(
                &self.file,
                self.line + 1,
                format!("line is longer than {} MiB", MAX_LINE_BYTES / (1024 * 1024)),
            ));
        }
        Ok(())
    }
}

/// Merges the field types of one line into `types`, keeping fields in order of first
/// appearance. Values are visited with serde without building a `serde_json::Value` tree.
fn infer_line(line: &[u8], types: &mut Vec<(String, JsonType)>) -> Result<(), String> {
    let first = line.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let found = match first {
        Some(b'{') => None,
        Some(b'[') => Some("an array"),
        Some(b'"') => Some("a string"),
        Some(b't' | b'f') => Some("a boolean"),
        Some(b'n') => Some("null"),
        Some(b'-' | b'0'..=b'9') => Some("a number"),
        _ => None,
    };
    if let Some(found) = found {
        return Err(format!("expected a JSON object, found {found}"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(line);
    serde::de::Deserializer::deserialize_map(&mut deserializer, RowVisitor { types })
        .and_then(|()| deserializer.end())
        .map_err(|error| {
            // serde_json positions are relative to the line; keep only the column.
            let text = error.to_string();
            let message = text.split(" at line ").next().unwrap_or(&text);
            format!("invalid JSON: {message} (column {})", error.column())
        })
}

/// Visits one JSON object, recording each member's type.
struct RowVisitor<'a> {
    types: &'a mut Vec<(String, JsonType)>,
}

impl<'de> serde::de::Visitor<'de> for RowVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let found = map.next_value::<TypeOf>()?.0;
            match self
                .types
                .iter_mut()
                .find(|(n, _)| n.as_str() == name.as_ref())
            {
                Some((_, known)) => *known = known.merge(found),
                None => self.types.push((name.into_owned(), found)),
            }
        }
        Ok(())
    }
}

/// The [`JsonType`] of one JSON value; nested values are skipped, not built.
struct TypeOf(JsonType);

impl<'de> serde::Deserialize<'de> for TypeOf {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TypeVisitor)
    }
}

struct TypeVisitor;

impl<'de> serde::de::Visitor<'de> for TypeVisitor {
    type Value = TypeOf;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<TypeOf, E> {
        Ok(TypeOf(JsonType::Null))
    }

    fn visit_bool<E>(self, _: bool) -> Result<TypeOf, E> {
        Ok(TypeOf(JsonType::Bool))
    }

    fn visit_i64<E>(self, _: i64) -> Result<TypeOf, E> {
        Ok(TypeOf(JsonType::Int))
    }

    fn visit_u64<E>(self, value: u64) -> Result<TypeOf, E> {
        // Beyond i64 an integer cannot be an Int64 column; JSON numbers are doubles anyway.
        Ok(TypeOf(if i64::try_from(value).is_ok() {
            JsonType::Int
        } else {
            JsonType::Float
        }))
    }

    fn visit_f64<E>(self, _: f64) -> Result<TypeOf, E> {
        Ok(TypeOf(JsonType::Float))
    }

    fn visit_str<E>(self, _: &str) -> Result<TypeOf, E> {
        Ok(TypeOf(JsonType::Text))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<TypeOf, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(TypeOf(JsonType::Text))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<TypeOf, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(TypeOf(JsonType::Text))
    }
}

impl BatchDecoder for JsonLinesDecoder {
    fn push(&mut self, chunk: &[u8]) -> Result<Vec<RecordBatch>, FormatError> {
        if self.finished {
            return Err(FormatError::file(
                &self.file,
                "data pushed after the end of the file",
            ));
        }
        let mut out = Vec::new();
        let mut rest = chunk;
        while let Some(newline) = memchr::memchr(b'\n', rest) {
            let (line, tail) = rest.split_at(newline);
            rest = &tail[1..];
            if self.partial.is_empty() {
                self.add_line(line, &mut out)?;
            } else {
                let mut joined = std::mem::take(&mut self.partial);
                joined.extend_from_slice(line);
                self.add_line(&joined, &mut out)?;
                // Keep the allocation for the next partial line.
                joined.clear();
                self.partial = joined;
            }
        }
        self.partial.extend_from_slice(rest);
        self.check_partial()?;
        Ok(out)
    }

    fn finish(&mut self) -> Result<Vec<RecordBatch>, FormatError> {
        let mut out = Vec::new();
        if self.finished {
            return Ok(out);
        }
        self.finished = true;
        if !self.partial.is_empty() {
            let last = std::mem::take(&mut self.partial);
            self.add_line(&last, &mut out)?;
        }
        if !self.lines.is_empty() {
            out.push(self.decode_batch()?);
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

/// Makes `Utf8` columns accept any JSON value: strings as themselves, numbers and booleans as
/// their JSON text, objects and arrays serialized back to JSON.
#[derive(Debug)]
struct JsonTextFactory;

impl DecoderFactory for JsonTextFactory {
    fn make_default_decoder(
        &self,
        _ctx: &DecoderContext,
        field: &FieldRef,
        _is_nullable: bool,
    ) -> Result<Option<Box<dyn ArrayDecoder>>, ArrowError> {
        Ok((field.data_type() == &DataType::Utf8)
            .then(|| Box::new(JsonTextDecoder) as Box<dyn ArrayDecoder>))
    }
}

struct JsonTextDecoder;

impl ArrayDecoder for JsonTextDecoder {
    fn decode(&mut self, tape: &Tape<'_>, pos: &[u32]) -> Result<ArrayRef, ArrowError> {
        let mut builder = StringBuilder::with_capacity(pos.len(), pos.len() * 8);
        let mut scratch = String::new();
        for &p in pos {
            match tape.get(p) {
                TapeElement::Null => builder.append_null(),
                TapeElement::String(idx) | TapeElement::Number(idx) => {
                    builder.append_value(tape.get_string(idx));
                }
                TapeElement::True => builder.append_value("true"),
                TapeElement::False => builder.append_value("false"),
                _ => {
                    scratch.clear();
                    write_json(tape, p, &mut scratch)?;
                    builder.append_value(&scratch);
                }
            }
        }
        Ok(Arc::new(builder.finish()))
    }
}

/// Writes the value at tape index `idx` as compact JSON, returning the index after it.
fn write_json(tape: &Tape<'_>, idx: u32, out: &mut String) -> Result<u32, ArrowError> {
    let next = match tape.get(idx) {
        TapeElement::StartObject(end) => {
            out.push('{');
            let mut cur = idx + 1;
            let mut first = true;
            while cur < end {
                if !first {
                    out.push(',');
                }
                first = false;
                cur = write_json(tape, cur, out)?;
                out.push(':');
                cur = write_json(tape, cur, out)?;
            }
            out.push('}');
            end + 1
        }
        TapeElement::StartList(end) => {
            out.push('[');
            let mut cur = idx + 1;
            let mut first = true;
            while cur < end {
                if !first {
                    out.push(',');
                }
                first = false;
                cur = write_json(tape, cur, out)?;
            }
            out.push(']');
            end + 1
        }
        TapeElement::String(s) => {
            escape_json_string(tape.get_string(s), out);
            idx + 1
        }
        TapeElement::Number(n) => {
            out.push_str(tape.get_string(n));
            idx + 1
        }
        TapeElement::True => {
            out.push_str("true");
            idx + 1
        }
        TapeElement::False => {
            out.push_str("false");
            idx + 1
        }
        TapeElement::Null => {
            out.push_str("null");
            idx + 1
        }
        TapeElement::I32(v) => {
            let _ = write!(out, "{v}");
            idx + 1
        }
        TapeElement::F32(v) => {
            let _ = write!(out, "{}", f32::from_bits(v));
            idx + 1
        }
        TapeElement::I64(high) => {
            let TapeElement::I32(low) = tape.get(idx + 1) else {
                return Err(ArrowError::JsonError(
                    "malformed 64-bit integer on tape".into(),
                ));
            };
            let _ = write!(out, "{}", (i64::from(high) << 32) | i64::from(low as u32));
            idx + 2
        }
        TapeElement::F64(high) => {
            let TapeElement::F32(low) = tape.get(idx + 1) else {
                return Err(ArrowError::JsonError(
                    "malformed 64-bit float on tape".into(),
                ));
            };
            let _ = write!(
                out,
                "{}",
                f64::from_bits((u64::from(high) << 32) | u64::from(low))
            );
            idx + 2
        }
        other => {
            return Err(ArrowError::JsonError(format!(
                "unexpected {other:?} on tape"
            )));
        }
    };
    Ok(next)
}

/// Appends `s` as a JSON string literal.
fn escape_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// JSON Lines writer; see the module documentation.
pub struct JsonLinesWriter {
    writer: arrow_json::Writer<Vec<u8>, LineDelimited>,
    rows: u64,
}

impl std::fmt::Debug for JsonLinesWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesWriter")
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl JsonLinesWriter {
    /// A writer with explicit nulls.
    pub fn new() -> Self {
        let writer = arrow_json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, LineDelimited>(Vec::new());
        Self { writer, rows: 0 }
    }
}

impl Default for JsonLinesWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchWriter for JsonLinesWriter {
    fn accepts(&self, _schema: &Schema) -> bool {
        // Every line names its own fields, so one file can hold any mix of schemas.
        true
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), FormatError> {
        let batch = crate::text::with_utc_offsets(batch).map_err(|error| {
            FormatError::encode(OutputFormat::JsonLines, crate::arrow_message(&error))
        })?;
        self.writer.write(&batch).map_err(|error| {
            FormatError::encode(OutputFormat::JsonLines, crate::arrow_message(&error))
        })?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), FormatError> {
        Ok(())
    }

    fn take_flushed(&mut self) -> Bytes {
        Bytes::from(std::mem::take(self.writer.get_mut()))
    }

    fn buffered_bytes(&self) -> usize {
        self.writer.get_ref().len()
    }

    fn rows_written(&self) -> u64 {
        self.rows
    }

    fn finish(mut self: Box<Self>) -> Result<Bytes, FormatError> {
        self.writer.finish().map_err(|error| {
            FormatError::encode(OutputFormat::JsonLines, crate::arrow_message(&error))
        })?;
        Ok(self.take_flushed())
    }
}

#[cfg(test)]
#[path = "jsonl_tests.rs"]
mod tests;
