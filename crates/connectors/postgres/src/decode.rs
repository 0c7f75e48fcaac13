//! Decoding `COPY … TO STDOUT (FORMAT binary)` output straight into Arrow arrays.
//!
//! Each column is read with one [`Kind`] whose binary wire format is decoded here. Types
//! without a decoder are selected as text (`col::text`, exact for unconstrained `numeric`,
//! `interval`, `inet`, …) and arrays as JSON text (`to_json(col)::text`), so every column
//! type can be read.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use sluice_connector_api::ConnectorError;

use crate::client::Column;
use crate::config::quote_ident;

/// Signature that starts every binary COPY stream.
pub const COPY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Microseconds from the Unix epoch to Postgres' epoch (2000-01-01).
pub const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Days from the Unix epoch to Postgres' epoch.
pub const PG_EPOCH_DAYS: i32 = 10_957;

/// Timezone of `timestamptz` columns in Arrow: an offset, which Arrow handles without a
/// timezone database.
pub const UTC: &str = "+00:00";

/// How one column is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `boolean`.
    Bool,
    /// `smallint`.
    Int2,
    /// `integer`.
    Int4,
    /// `bigint`.
    Int8,
    /// `real`.
    Float4,
    /// `double precision`.
    Float8,
    /// `numeric(p, s)` with `p <= 38`, as `Decimal128(p, s)`.
    Numeric {
        /// Precision.
        precision: u8,
        /// Scale.
        scale: i8,
    },
    /// Text in the client encoding (UTF-8): text types, `json`, and anything cast to text.
    Text,
    /// `jsonb`: a version byte, then text.
    Jsonb,
    /// `uuid`, as its hyphenated text.
    Uuid,
    /// `bytea`.
    Bytea,
    /// `date`.
    Date,
    /// `timestamp`.
    Timestamp,
    /// `timestamptz`, in UTC.
    Timestamptz,
    /// `time`.
    Time,
}

impl Kind {
    /// The Arrow type of the column.
    pub fn data_type(self) -> DataType {
        match self {
            Kind::Bool => DataType::Boolean,
            Kind::Int2 => DataType::Int16,
            Kind::Int4 => DataType::Int32,
            Kind::Int8 => DataType::Int64,
            Kind::Float4 => DataType::Float32,
            Kind::Float8 => DataType::Float64,
            Kind::Numeric { precision, scale } => DataType::Decimal128(precision, scale),
            Kind::Text | Kind::Jsonb | Kind::Uuid => DataType::Utf8,
            Kind::Bytea => DataType::Binary,
            Kind::Date => DataType::Date32,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::Timestamptz => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            Kind::Time => DataType::Time64(TimeUnit::Microsecond),
        }
    }
}

/// One column of a read: what to select and how to decode it.
#[derive(Debug, Clone)]
pub struct ReadColumn {
    /// Column name (also the Arrow field name).
    pub name: String,
    /// Postgres type, for messages.
    pub type_name: String,
    /// Decoder.
    pub kind: Kind,
    /// SQL expression in the `SELECT` list.
    pub select: String,
    /// Whether the column may hold nulls.
    pub nullable: bool,
}

/// Chooses how to read a catalog column.
pub fn read_column(column: &Column) -> ReadColumn {
    let quoted = quote_ident(&column.name);
    let native = |kind| (kind, quoted.clone());
    let as_text = (Kind::Text, format!("{quoted}::text"));
    let (kind, select) = if column.is_array {
        (Kind::Text, format!("to_json({quoted})::text"))
    } else {
        match column.type_oid {
            16 => native(Kind::Bool),
            21 => native(Kind::Int2),
            23 => native(Kind::Int4),
            20 => native(Kind::Int8),
            700 => native(Kind::Float4),
            701 => native(Kind::Float8),
            1700 => match numeric_typmod(column.typmod) {
                Some((precision, scale)) => native(Kind::Numeric { precision, scale }),
                // Unconstrained (or wider than Decimal128) numerics stay exact as text.
                None => as_text,
            },
            // text, varchar, bpchar, name, json: the binary form is the text itself.
            25 | 1043 | 1042 | 19 | 114 => native(Kind::Text),
            3802 => native(Kind::Jsonb),
            2950 => native(Kind::Uuid),
            17 => native(Kind::Bytea),
            1082 => native(Kind::Date),
            1114 => native(Kind::Timestamp),
            1184 => native(Kind::Timestamptz),
            1083 => native(Kind::Time),
            _ => as_text,
        }
    };
    ReadColumn {
        name: column.name.clone(),
        type_name: column.type_name.clone(),
        kind,
        select,
        nullable: !column.not_null,
    }
}

/// `(precision, scale)` of a `numeric` type modifier when it fits `Decimal128`.
pub fn numeric_typmod(typmod: i32) -> Option<(u8, i8)> {
    if typmod < 4 {
        return None;
    }
    let raw = typmod - 4;
    let precision = (raw >> 16) & 0xffff;
    // The scale is an 11-bit signed field since Postgres 15.
    let scale = ((raw & 0x7ff) ^ 1024) - 1024;
    if !(1..=38).contains(&precision) || !(0..=precision).contains(&scale) {
        return None;
    }
    Some((u8::try_from(precision).ok()?, i8::try_from(scale).ok()?))
}

/// The Arrow schema of a read.
pub fn schema(columns: &[ReadColumn]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(&c.name, c.kind.data_type(), c.nullable))
            .collect::<Vec<_>>(),
    ))
}

enum Builder {
    Bool(BooleanBuilder),
    Int2(Int16Builder),
    Int4(Int32Builder),
    Int8(Int64Builder),
    Float4(Float32Builder),
    Float8(Float64Builder),
    Numeric(Decimal128Builder, u8, i8),
    Text(StringBuilder),
    Bytea(BinaryBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder, bool),
    Time(Time64MicrosecondBuilder),
}

impl Builder {
    /// A builder for `rows` values; variable-length kinds reserve `bytes` of value data.
    fn new(kind: Kind, rows: usize, bytes: usize) -> Self {
        match kind {
            Kind::Bool => Builder::Bool(BooleanBuilder::with_capacity(rows)),
            Kind::Int2 => Builder::Int2(Int16Builder::with_capacity(rows)),
            Kind::Int4 => Builder::Int4(Int32Builder::with_capacity(rows)),
            Kind::Int8 => Builder::Int8(Int64Builder::with_capacity(rows)),
            Kind::Float4 => Builder::Float4(Float32Builder::with_capacity(rows)),
            Kind::Float8 => Builder::Float8(Float64Builder::with_capacity(rows)),
            Kind::Numeric { precision, scale } => {
                Builder::Numeric(Decimal128Builder::with_capacity(rows), precision, scale)
            }
            Kind::Text | Kind::Jsonb | Kind::Uuid => {
                Builder::Text(StringBuilder::with_capacity(rows, bytes))
            }
            Kind::Bytea => Builder::Bytea(BinaryBuilder::with_capacity(rows, bytes)),
            Kind::Date => Builder::Date(Date32Builder::with_capacity(rows)),
            Kind::Timestamp => {
                Builder::Timestamp(TimestampMicrosecondBuilder::with_capacity(rows), false)
            }
            Kind::Timestamptz => {
                Builder::Timestamp(TimestampMicrosecondBuilder::with_capacity(rows), true)
            }
            Kind::Time => Builder::Time(Time64MicrosecondBuilder::with_capacity(rows)),
        }
    }

    fn append_null(&mut self) {
        match self {
            Builder::Bool(b) => b.append_null(),
            Builder::Int2(b) => b.append_null(),
            Builder::Int4(b) => b.append_null(),
            Builder::Int8(b) => b.append_null(),
            Builder::Float4(b) => b.append_null(),
            Builder::Float8(b) => b.append_null(),
            Builder::Numeric(b, ..) => b.append_null(),
            Builder::Text(b) => b.append_null(),
            Builder::Bytea(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Timestamp(b, _) => b.append_null(),
            Builder::Time(b) => b.append_null(),
        }
    }

    /// Appends one non-null value in binary wire format.
    fn append(&mut self, kind: Kind, v: &[u8]) -> Result<(), String> {
        match self {
            Builder::Bool(b) => b.append_value(fixed::<1>(v)?[0] != 0),
            Builder::Int2(b) => b.append_value(i16::from_be_bytes(fixed(v)?)),
            Builder::Int4(b) => b.append_value(i32::from_be_bytes(fixed(v)?)),
            Builder::Int8(b) => b.append_value(i64::from_be_bytes(fixed(v)?)),
            Builder::Float4(b) => b.append_value(f32::from_be_bytes(fixed(v)?)),
            Builder::Float8(b) => b.append_value(f64::from_be_bytes(fixed(v)?)),
            Builder::Numeric(b, precision, scale) => {
                b.append_value(numeric_to_i128(v, *precision, *scale)?)
            }
            Builder::Text(b) => match kind {
                Kind::Jsonb => match v.split_first() {
                    Some((1, text)) => b.append_value(utf8(text)?),
                    _ => return Err("unsupported jsonb binary version".to_owned()),
                },
                Kind::Uuid => b.append_value(format_uuid(&fixed::<16>(v)?)),
                _ => b.append_value(utf8(v)?),
            },
            Builder::Bytea(b) => b.append_value(v),
            Builder::Date(b) => {
                let days = i32::from_be_bytes(fixed(v)?);
                if days == i32::MAX || days == i32::MIN {
                    return Err("date infinity cannot be represented".to_owned());
                }
                let days = days
                    .checked_add(PG_EPOCH_DAYS)
                    .ok_or_else(|| "date out of range".to_owned())?;
                b.append_value(days)
            }
            Builder::Timestamp(b, _) => {
                let micros = i64::from_be_bytes(fixed(v)?);
                if micros == i64::MAX || micros == i64::MIN {
                    return Err("timestamp infinity cannot be represented".to_owned());
                }
                let micros = micros
                    .checked_add(PG_EPOCH_MICROS)
                    .ok_or_else(|| "timestamp out of range".to_owned())?;
                b.append_value(micros)
            }
            Builder::Time(b) => b.append_value(i64::from_be_bytes(fixed(v)?)),
        }
        Ok(())
    }

    /// Bytes of value data held by a variable-length builder (zero for the others).
    fn value_bytes(&self) -> usize {
        match self {
            Builder::Text(b) => b.values_slice().len(),
            Builder::Bytea(b) => b.values_slice().len(),
            _ => 0,
        }
    }

    fn finish(&mut self) -> Result<ArrayRef, ConnectorError> {
        let array: ArrayRef = match self {
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Int2(b) => Arc::new(b.finish()),
            Builder::Int4(b) => Arc::new(b.finish()),
            Builder::Int8(b) => Arc::new(b.finish()),
            Builder::Float4(b) => Arc::new(b.finish()),
            Builder::Float8(b) => Arc::new(b.finish()),
            Builder::Numeric(b, precision, scale) => Arc::new(
                b.finish()
                    .with_precision_and_scale(*precision, *scale)
                    .map_err(|e| ConnectorError::internal(e.to_string()))?,
            ),
            Builder::Text(b) => Arc::new(b.finish()),
            Builder::Bytea(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Timestamp(b, true) => Arc::new(b.finish().with_timezone(UTC)),
            Builder::Timestamp(b, false) => Arc::new(b.finish()),
            Builder::Time(b) => Arc::new(b.finish()),
        };
        Ok(array)
    }
}

fn fixed<const N: usize>(v: &[u8]) -> Result<[u8; N], String> {
    v.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", v.len()))
}

fn utf8(v: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(v).map_err(|e| format!("text is not valid UTF-8 ({e})"))
}

fn format_uuid(b: &[u8; 16]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Powers of ten that fit an `i128`: `POW10[n] == 10^n` for `n <= 38`.
const POW10: [i128; 39] = {
    let mut table = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// `10^e` when it fits an `i128`.
fn pow10(e: i32) -> Option<i128> {
    usize::try_from(e).ok().and_then(|e| POW10.get(e)).copied()
}

/// Decodes a binary `numeric` into an integer at `scale`, checking it fits `precision`.
///
/// The wire form is a digit count, the weight (power of 10000 of the first digit), the sign,
/// the display scale, then base-10000 digits.
pub fn numeric_to_i128(v: &[u8], precision: u8, scale: i8) -> Result<i128, String> {
    let header = v
        .get(..8)
        .ok_or_else(|| "numeric value is truncated".to_owned())?;
    let ndigits = i16::from_be_bytes([header[0], header[1]]);
    let weight = i16::from_be_bytes([header[2], header[3]]);
    let sign = u16::from_be_bytes([header[4], header[5]]);
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Err("NaN cannot be represented as a decimal".to_owned()),
        0xD000 | 0xF000 => return Err("infinity cannot be represented as a decimal".to_owned()),
        other => return Err(format!("invalid numeric sign {other:#x}")),
    }
    let ndigits = usize::try_from(ndigits).map_err(|_| "negative numeric digit count")?;
    let digits = v
        .get(8..8 + 2 * ndigits)
        .ok_or_else(|| "numeric value is truncated".to_owned())?;
    let overflow = || format!("value does not fit numeric({precision},{scale})");
    // Power of ten of the last digit's unit; trailing zeros of the last base-10000 digit are
    // dropped first, so a value of full precision 38 never overflows while accumulating.
    let ndigits_i32 = i32::try_from(ndigits).map_err(|_| overflow())?;
    let mut exp = 4 * (i32::from(weight) - ndigits_i32 + 1);
    // Digits are gathered in a u64 (up to four at a time: below 10^16) and only then folded
    // into the i128, which keeps the common short values out of 128-bit arithmetic.
    let mut acc: i128 = 0;
    let mut part: u64 = 0;
    let mut part_scale: u64 = 1;
    let count = digits.len() / 2;
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        let mut digit = u16::from_be_bytes([pair[0], pair[1]]);
        if digit > 9999 {
            return Err(format!("invalid numeric digit {digit}"));
        }
        let mut unit = 10_000u64;
        if i + 1 == count {
            while digit != 0 && digit % 10 == 0 {
                digit /= 10;
                unit /= 10;
                exp += 1;
            }
        }
        part = part * unit + u64::from(digit);
        part_scale *= unit;
        if part_scale >= 10_000_000_000_000_000 || i + 1 == count {
            acc = acc
                .checked_mul(i128::from(part_scale))
                .and_then(|a| a.checked_add(i128::from(part)))
                .ok_or_else(overflow)?;
            part = 0;
            part_scale = 1;
        }
    }
    if acc != 0 {
        // acc is the value times 10^-exp; rescale to 10^scale.
        let exp = exp + i32::from(scale);
        if exp >= 0 {
            acc = pow10(exp)
                .and_then(|p| acc.checked_mul(p))
                .ok_or_else(overflow)?;
        } else {
            let divisor = pow10(-exp).ok_or_else(overflow)?;
            if acc % divisor != 0 {
                return Err(format!("value has more than {scale} decimal places"));
            }
            acc /= divisor;
        }
    }
    if acc >= POW10[usize::from(precision.min(38))] {
        return Err(overflow());
    }
    Ok(if sign == 0x4000 { -acc } else { acc })
}

/// Field bytes after which a batch is complete even below its row count, so batches of wide
/// rows stay small.
pub const MAX_BATCH_BYTES: usize = 32 * 1024 * 1024;

/// Value bytes reserved per row for a variable-length column before a batch has shown its
/// real width.
const FIRST_BATCH_BYTES_PER_ROW: usize = 16;

/// Turns a binary COPY stream into record batches.
pub struct CopyDecoder {
    table: String,
    columns: Vec<ReadColumn>,
    schema: SchemaRef,
    builders: Vec<Builder>,
    batch_rows: usize,
    rows: usize,
    /// Field bytes of the buffered rows.
    bytes: usize,
    rows_total: u64,
    pending: Vec<u8>,
    header_seen: bool,
    trailer_seen: bool,
}

impl CopyDecoder {
    /// A decoder for `columns` of `table` (named in messages) emitting batches of `batch_rows`
    /// rows, or fewer once they hold [`MAX_BATCH_BYTES`].
    pub fn new(table: impl Into<String>, columns: Vec<ReadColumn>, batch_rows: usize) -> Self {
        let batch_rows = batch_rows.max(1);
        let builders = columns
            .iter()
            .map(|c| {
                let bytes = batch_rows.saturating_mul(FIRST_BATCH_BYTES_PER_ROW);
                Builder::new(c.kind, batch_rows, bytes.min(MAX_BATCH_BYTES))
            })
            .collect();
        Self {
            table: table.into(),
            schema: schema(&columns),
            columns,
            builders,
            batch_rows,
            rows: 0,
            bytes: 0,
            rows_total: 0,
            pending: Vec::new(),
            header_seen: false,
            trailer_seen: false,
        }
    }

    /// The schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Rows buffered for the next batch.
    pub fn buffered_rows(&self) -> usize {
        self.rows
    }

    /// Whether a full batch is buffered: `batch_rows` rows or [`MAX_BATCH_BYTES`] of fields.
    pub fn batch_ready(&self) -> bool {
        self.rows >= self.batch_rows || self.bytes >= MAX_BATCH_BYTES
    }

    /// Decodes a chunk of the COPY stream; rows may span chunks.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), ConnectorError> {
        if self.pending.is_empty() {
            let used = self.decode(chunk)?;
            self.pending.extend_from_slice(&chunk[used..]);
        } else {
            let mut pending = std::mem::take(&mut self.pending);
            pending.extend_from_slice(chunk);
            let used = self.decode(&pending)?;
            pending.drain(..used);
            self.pending = pending;
        }
        Ok(())
    }

    /// The rows buffered so far as a batch (`None` when there are none).
    pub fn take_batch(&mut self) -> Result<Option<RecordBatch>, ConnectorError> {
        if self.rows == 0 {
            return Ok(None);
        }
        let mut arrays = Vec::with_capacity(self.builders.len());
        for (builder, column) in self.builders.iter_mut().zip(&self.columns) {
            // A finished builder starts again from empty buffers, which would then grow by
            // doubling and copying; a fresh one sized from this batch's width avoids that.
            let per_row = builder.value_bytes().div_ceil(self.rows);
            let reserve = (per_row + per_row / 8)
                .saturating_mul(self.batch_rows)
                .min(MAX_BATCH_BYTES);
            let mut full =
                std::mem::replace(builder, Builder::new(column.kind, self.batch_rows, reserve));
            arrays.push(full.finish()?);
        }
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(self.schema.clone(), arrays)
            .map(Some)
            .map_err(|e| ConnectorError::internal(format!("table {}: {e}", self.table)))
    }

    /// Checks that the stream ended with its trailer and nothing after it.
    pub fn finish(&self) -> Result<(), ConnectorError> {
        if !self.trailer_seen || !self.pending.is_empty() {
            return Err(ConnectorError::unavailable(format!(
                "table {}: the COPY stream ended early, after {} rows",
                self.table, self.rows_total
            )));
        }
        Ok(())
    }

    fn bad(&self, message: impl std::fmt::Display) -> ConnectorError {
        ConnectorError::bad_data(format!(
            "table {}, row {}: {message}",
            self.table,
            self.rows_total + 1
        ))
    }

    /// Decodes whole rows from `data`; returns the bytes used.
    fn decode(&mut self, data: &[u8]) -> Result<usize, ConnectorError> {
        let mut pos = 0;
        if !self.header_seen {
            // Signature, flags, extension length, extension.
            let Some(fixed_part) = data.get(..19) else {
                return Ok(0);
            };
            if &fixed_part[..11] != COPY_SIGNATURE {
                return Err(self.bad("the COPY stream does not start with the binary signature"));
            }
            let ext = u32::from_be_bytes([data[15], data[16], data[17], data[18]]) as usize;
            if data.len() < 19 + ext {
                return Ok(0);
            }
            pos = 19 + ext;
            self.header_seen = true;
        }
        let ncols = self.columns.len();
        while !self.trailer_seen {
            let Some(count) = data.get(pos..pos + 2) else {
                break;
            };
            let count = i16::from_be_bytes([count[0], count[1]]);
            if count == -1 {
                self.trailer_seen = true;
                pos += 2;
                break;
            }
            if usize::try_from(count).ok() != Some(ncols) {
                return Err(self.bad(format!("row has {count} fields, expected {ncols}")));
            }
            // Find the end of the row before decoding, so a split row is decoded once.
            let mut end = pos + 2;
            let mut complete = true;
            for _ in 0..ncols {
                let Some(len) = data.get(end..end + 4) else {
                    complete = false;
                    break;
                };
                let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
                if len < -1 {
                    return Err(self.bad(format!("field has invalid length {len}")));
                }
                end += 4 + usize::try_from(len).unwrap_or(0);
                if end > data.len() {
                    complete = false;
                    break;
                }
            }
            if !complete {
                break;
            }
            let mut at = pos + 2;
            for i in 0..ncols {
                let len = i32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
                at += 4;
                if len < 0 {
                    self.builders[i].append_null();
                    continue;
                }
                let value = &data[at..at + len as usize];
                at += len as usize;
                self.bytes += value.len();
                let kind = self.columns[i].kind;
                if let Err(message) = self.builders[i].append(kind, value) {
                    let column = &self.columns[i];
                    return Err(self.bad(format!(
                        "column {} ({}): {message}",
                        column.name, column.type_name
                    )));
                }
            }
            pos = end;
            self.rows += 1;
            self.rows_total += 1;
        }
        Ok(pos)
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Decimal128Type;

    use super::*;
    use crate::encode::{encode_numeric, write_header, write_trailer};

    fn columns(kinds: &[(&str, Kind)]) -> Vec<ReadColumn> {
        kinds
            .iter()
            .map(|(name, kind)| ReadColumn {
                name: (*name).to_owned(),
                type_name: format!("{kind:?}"),
                kind: *kind,
                select: String::new(),
                nullable: true,
            })
            .collect()
    }

    /// One COPY row of raw field values (`None` is NULL).
    fn row(out: &mut Vec<u8>, fields: &[Option<&[u8]>]) {
        out.extend_from_slice(&i16::try_from(fields.len()).unwrap().to_be_bytes());
        for field in fields {
            match field {
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(value) => {
                    out.extend_from_slice(&i32::try_from(value.len()).unwrap().to_be_bytes());
                    out.extend_from_slice(value);
                }
            }
        }
    }

    /// A binary numeric from its base-10000 digits.
    fn numeric(digits: &[u16], weight: i16, negative: bool, dscale: u16) -> Vec<u8> {
        let mut out = i16::try_from(digits.len()).unwrap().to_be_bytes().to_vec();
        out.extend_from_slice(&weight.to_be_bytes());
        out.extend_from_slice(&(if negative { 0x4000u16 } else { 0 }).to_be_bytes());
        out.extend_from_slice(&dscale.to_be_bytes());
        for digit in digits {
            out.extend_from_slice(&digit.to_be_bytes());
        }
        out
    }

    #[test]
    fn numerics_longer_than_sixteen_digits_are_exact() {
        // 12345678901234567890: five base-10000 digits, folded into the i128 in two parts.
        let bytes = numeric(&[1234, 5678, 9012, 3456, 7890], 4, false, 0);
        assert_eq!(
            numeric_to_i128(&bytes, 20, 0).unwrap(),
            12_345_678_901_234_567_890
        );
        assert_eq!(
            numeric_to_i128(&bytes, 38, 18).unwrap(),
            12_345_678_901_234_567_890 * 10i128.pow(18)
        );
        assert!(
            numeric_to_i128(&bytes, 19, 0)
                .unwrap_err()
                .contains("does not fit numeric(19,0)")
        );
        // -0.0001 at scale 4, and 1.5 widened to scale 4.
        let tiny = numeric(&[1], -1, true, 4);
        assert_eq!(numeric_to_i128(&tiny, 10, 4).unwrap(), -1);
        let one_and_a_half = numeric(&[1, 5000], 0, false, 1);
        assert_eq!(numeric_to_i128(&one_and_a_half, 10, 4).unwrap(), 15_000);
        // Every length from 1 to 38 digits, both signs, round trips at several scales.
        for digits in 1..=38u32 {
            let magnitude = (1..=digits).fold(0i128, |acc, d| acc * 10 + i128::from(d % 10));
            for scale in [0i8, 2, 9, 37] {
                let precision = u8::try_from(digits.max(u32::try_from(scale).unwrap())).unwrap();
                for value in [magnitude, -magnitude] {
                    let mut bytes = Vec::new();
                    encode_numeric(&mut bytes, value, scale);
                    assert_eq!(
                        numeric_to_i128(&bytes, precision.max(1), scale).unwrap(),
                        value,
                        "{value} at scale {scale}"
                    );
                }
            }
        }
    }

    #[test]
    fn numeric_digits_above_9999_are_rejected() {
        let bytes = numeric(&[10_000], 0, false, 0);
        assert!(
            numeric_to_i128(&bytes, 10, 0)
                .unwrap_err()
                .contains("invalid numeric digit 10000")
        );
    }

    #[test]
    fn batches_of_wide_rows_are_cut_by_bytes() {
        let wide = "é".repeat(512 * 1024); // 1 MiB of UTF-8
        let mut decoder = CopyDecoder::new("t", columns(&[("notes", Kind::Text)]), 1_000);
        let mut data = Vec::new();
        write_header(&mut data);
        decoder.push(&data).unwrap();
        let mut cut_after = None;
        for n in 1..=40 {
            let mut one = Vec::new();
            row(&mut one, &[Some(wide.as_bytes())]);
            decoder.push(&one).unwrap();
            if decoder.batch_ready() {
                cut_after = Some(n);
                break;
            }
        }
        assert_eq!(cut_after, Some(MAX_BATCH_BYTES / wide.len()));
        let batch = decoder.take_batch().unwrap().unwrap();
        assert_eq!(batch.num_rows(), 32);
        assert!(!decoder.batch_ready(), "the byte count restarts");
        assert_eq!(batch.column(0).as_string::<i32>().value(31), wide);
    }

    #[test]
    fn batches_of_changing_width_keep_every_value() {
        // Narrow rows first, so later batches outgrow the capacity the first ones suggest.
        let texts: Vec<Option<String>> = (0..50)
            .map(|i| match i % 7 {
                0 => None,
                1 => Some(String::new()),
                _ if i < 20 => Some(format!("{i}")),
                _ => Some(format!("ünïcode ✓ {}", "x".repeat(i * 37))),
            })
            .collect();
        let mut data = Vec::new();
        write_header(&mut data);
        for (i, text) in texts.iter().enumerate() {
            let id = i64::try_from(i).unwrap().to_be_bytes();
            let bytes = vec![0xffu8; i];
            let amount = numeric(&[u16::try_from(i).unwrap(), 5000], 0, i % 2 == 1, 2);
            row(
                &mut data,
                &[
                    Some(&id),
                    text.as_deref().map(str::as_bytes),
                    (!i.is_multiple_of(5)).then_some(bytes.as_slice()),
                    Some(&amount),
                ],
            );
        }
        write_trailer(&mut data);
        let kinds = [
            ("id", Kind::Int8),
            ("text", Kind::Text),
            ("bin", Kind::Bytea),
            (
                "amount",
                Kind::Numeric {
                    precision: 10,
                    scale: 2,
                },
            ),
        ];
        let mut decoder = CopyDecoder::new("t", columns(&kinds), 4);
        let mut batches = Vec::new();
        for chunk in data.chunks(97) {
            decoder.push(chunk).unwrap();
            while decoder.batch_ready() {
                batches.extend(decoder.take_batch().unwrap());
            }
        }
        decoder.finish().unwrap();
        batches.extend(decoder.take_batch().unwrap());
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 50);
        let mut i = 0usize;
        for batch in &batches {
            let ids = batch
                .column(0)
                .as_primitive::<arrow_array::types::Int64Type>();
            let text = batch.column(1).as_string::<i32>();
            let bin = batch.column(2).as_binary::<i32>();
            let amount = batch.column(3).as_primitive::<Decimal128Type>();
            for r in 0..batch.num_rows() {
                assert_eq!(ids.value(r), i64::try_from(i).unwrap());
                assert_eq!(text.is_valid(r).then(|| text.value(r)), texts[i].as_deref());
                let expected_bin = vec![0xffu8; i];
                assert_eq!(
                    bin.is_valid(r).then(|| bin.value(r)),
                    (!i.is_multiple_of(5)).then_some(expected_bin.as_slice())
                );
                let cents = i128::try_from(i).unwrap() * 100 + 50;
                assert_eq!(amount.value(r), if i % 2 == 1 { -cents } else { cents });
                i += 1;
            }
        }
    }
}
