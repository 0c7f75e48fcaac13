//! Reading: the object's fields from `describe`, a SOQL query with the projection as its field
//! list and the incremental window and pushable filters as its `WHERE` clause, then the result
//! pages (`query`, or `queryAll` for `includeDeletedRecords`) followed through `nextRecordsUrl`,
//! one Arrow batch per page, so memory is bounded by the page size whatever the result size.
//!
//! Pages are decoded straight into Arrow builders ([`decode_rest_page`]): a `serde` visitor
//! walks the JSON and appends each value to its column, with no `serde_json::Value` tree in
//! between. `Column` holds the typed builders that the Bulk API 2.0 CSV decoder
//! ([`crate::bulk`]) fills too, so both APIs produce the same Arrow types.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use futures::StreamExt;
use reqwest::Method;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use sluice_api_model as model;
use sluice_connector_api::{
    BatchStream, ConnectorError, IncrementalWindow, PushdownFilter, ReadStats,
};

use crate::client::Session;

/// A field of an sObject, from `describe`.
#[derive(Debug, Clone, PartialEq)]
pub struct SfField {
    /// API name.
    pub name: String,
    /// Label.
    pub label: String,
    /// Salesforce type (`string`, `int`, `datetime`, ...).
    pub kind: String,
    /// Whether it may be null.
    pub nillable: bool,
    /// Whether inserts may set it.
    pub createable: bool,
    /// Whether updates may set it.
    pub updateable: bool,
    /// Whether it can appear in `WHERE`.
    pub filterable: bool,
    /// External id (upsert key).
    pub external_id: bool,
    /// Set by Salesforce on create.
    pub defaulted_on_create: bool,
    /// Picklist values.
    pub picklist: Vec<String>,
}

/// Compound and binary types: Bulk 2.0 cannot move them and they are not flat values.
pub fn is_flat(kind: &str) -> bool {
    !matches!(kind, "address" | "location" | "base64" | "complexvalue")
}

/// Fetches an object's fields.
pub async fn describe(session: &Session, object: &str) -> Result<Vec<SfField>, ConnectorError> {
    let path = format!("sobjects/{}/describe", encode(object));
    let (value, _) = session
        .json(
            &format!("describe of {object}"),
            Method::GET,
            &path,
            &[],
            None,
        )
        .await?;
    let fields = value
        .get("fields")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ConnectorError::bad_data(format!("Salesforce describe of {object}: no fields array"))
        })?;
    let flag = |f: &Value, key: &str| f.get(key).and_then(Value::as_bool).unwrap_or(false);
    Ok(fields
        .iter()
        .filter_map(|f| {
            let name = f.get("name")?.as_str()?.to_owned();
            Some(SfField {
                label: f
                    .get("label")
                    .and_then(Value::as_str)
                    .unwrap_or(&name)
                    .to_owned(),
                kind: f
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("string")
                    .to_owned(),
                nillable: flag(f, "nillable"),
                createable: flag(f, "createable"),
                updateable: flag(f, "updateable"),
                filterable: flag(f, "filterable"),
                external_id: flag(f, "externalId"),
                defaulted_on_create: flag(f, "defaultedOnCreate"),
                picklist: f
                    .get("picklistValues")
                    .and_then(Value::as_array)
                    .map(|values| {
                        values
                            .iter()
                            .filter_map(|v| {
                                v.get("value").and_then(Value::as_str).map(str::to_owned)
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                name,
            })
        })
        .collect())
}

/// Percent-encodes one path segment.
pub fn encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The Arrow type of a Salesforce field type.
pub fn arrow_type(kind: &str) -> DataType {
    match kind {
        "boolean" => DataType::Boolean,
        "int" => DataType::Int64,
        "double" | "currency" | "percent" => DataType::Float64,
        "date" => DataType::Date32,
        "datetime" => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        _ => DataType::Utf8,
    }
}

/// Quotes a SOQL string literal.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            other => out.push(other),
        }
    }
    out.push('\'');
    out
}

fn datetime_literal(time: DateTime<Utc>) -> String {
    // SOQL date-time literals have whole seconds.
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A filter value as a SOQL literal of the field's type; `None` when it cannot be expressed
/// (the pipeline still applies the filter, so it is only left out of the query).
fn literal(field: &SfField, value: &str) -> Option<String> {
    let value = value.trim();
    match field.kind.as_str() {
        "boolean" => value.parse::<bool>().ok().map(|b| b.to_string()),
        "int" => value.parse::<i64>().ok().map(|n| n.to_string()),
        "double" | "currency" | "percent" => value
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| f.to_string()),
        "datetime" => {
            // AppFlow passes date-time filter bounds as epoch milliseconds.
            let millis = value.parse::<i64>().ok()?;
            DateTime::<Utc>::from_timestamp_millis(millis).map(datetime_literal)
        }
        "date" => {
            let millis = value.parse::<i64>().ok()?;
            DateTime::<Utc>::from_timestamp_millis(millis).map(|t| t.format("%Y-%m-%d").to_string())
        }
        _ => Some(quote(value)),
    }
}

fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

fn filter_clause(field: &SfField, filter: &PushdownFilter) -> Option<String> {
    if !field.filterable {
        return None;
    }
    let name = &field.name;
    let one = |op: &str| {
        let value = filter.values.first()?;
        Some(format!("{name} {op} {}", literal(field, value)?))
    };
    match filter.operator {
        model::Operator::EqualTo => one("="),
        model::Operator::NotEqualTo => one("!="),
        model::Operator::LessThan => one("<"),
        model::Operator::LessThanOrEqualTo => one("<="),
        model::Operator::GreaterThan => one(">"),
        model::Operator::GreaterThanOrEqualTo => one(">="),
        model::Operator::Between => {
            let (low, high) = (filter.values.first()?, filter.values.get(1)?);
            Some(format!(
                "({name} >= {} AND {name} <= {})",
                literal(field, low)?,
                literal(field, high)?
            ))
        }
        model::Operator::Contains if arrow_type(&field.kind) == DataType::Utf8 => {
            let value = filter.values.first()?;
            Some(format!(
                "{name} LIKE {}",
                quote(&format!("%{}%", like_escape(value)))
            ))
        }
        _ => None,
    }
}

/// What to read.
#[derive(Debug, Clone)]
pub struct QueryPlan {
    /// The sObject read.
    pub object: String,
    /// Fields selected, in output order.
    pub fields: Vec<SfField>,
    /// The SOQL text.
    pub soql: String,
    /// The `WHERE` condition (window and pushed-down filters), without the keyword.
    pub condition: Option<String>,
    /// `queryAll` (deleted and archived records too).
    pub include_deleted: bool,
}

impl QueryPlan {
    /// `SELECT <fields> FROM <object> [WHERE <condition>]`.
    pub fn soql_for<'a>(&self, fields: impl IntoIterator<Item = &'a SfField>) -> String {
        let names: Vec<&str> = fields.into_iter().map(|f| f.name.as_str()).collect();
        self.with_condition(format!("SELECT {} FROM {}", names.join(", "), self.object))
    }

    /// `SELECT COUNT() FROM <object> [WHERE <condition>]`: how many records the plan reads.
    pub fn count_soql(&self) -> String {
        self.with_condition(format!("SELECT COUNT() FROM {}", self.object))
    }

    fn with_condition(&self, mut soql: String) -> String {
        if let Some(condition) = &self.condition {
            soql.push_str(" WHERE ");
            soql.push_str(condition);
        }
        soql
    }

    /// The output schema: one nullable column per selected field.
    pub fn schema(&self) -> SchemaRef {
        schema_of(&self.fields)
    }
}

/// One nullable column per field, typed by [`arrow_type`].
pub fn schema_of(fields: &[SfField]) -> SchemaRef {
    Arc::new(Schema::new(
        fields
            .iter()
            .map(|f| Field::new(&f.name, arrow_type(&f.kind), true))
            .collect::<Vec<_>>(),
    ))
}

/// Builds the SOQL query for an object.
pub fn plan_query(
    object: &str,
    described: &[SfField],
    projection: Option<&[String]>,
    filters: &[PushdownFilter],
    window: Option<&IncrementalWindow>,
    include_deleted: bool,
) -> Result<QueryPlan, ConnectorError> {
    let find = |name: &str| described.iter().find(|f| f.name.eq_ignore_ascii_case(name));
    let fields: Vec<SfField> = match projection {
        Some(names) => names
            .iter()
            .map(|name| {
                find(name).cloned().ok_or_else(|| {
                    ConnectorError::invalid_config(format!(
                        "field {name} does not exist on Salesforce object {object}"
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
        // Every field the object has now, so fields added later appear without editing the flow.
        None => described
            .iter()
            .filter(|f| is_flat(&f.kind))
            .cloned()
            .collect(),
    };
    if fields.is_empty() {
        return Err(ConnectorError::invalid_config(format!(
            "no readable fields selected on Salesforce object {object}"
        )));
    }
    let mut clauses = Vec::new();
    if let Some(window) = window {
        let field = find(&window.field).ok_or_else(|| {
            ConnectorError::invalid_config(format!(
                "incremental field {} does not exist on Salesforce object {object}",
                window.field
            ))
        })?;
        clauses.push(format!(
            "{0} >= {1} AND {0} < {2}",
            field.name,
            datetime_literal(window.start),
            datetime_literal(window.end)
        ));
    }
    for filter in filters {
        if let Some(clause) = find(&filter.field).and_then(|field| filter_clause(field, filter)) {
            clauses.push(clause);
        }
    }
    let mut plan = QueryPlan {
        object: object.to_owned(),
        fields,
        soql: String::new(),
        condition: (!clauses.is_empty()).then(|| clauses.join(" AND ")),
        include_deleted,
    };
    plan.soql = plan.soql_for(&plan.fields);
    Ok(plan)
}

/// How many records `plan` reads, from `SELECT COUNT()` with the same condition.
pub async fn count(session: &Session, plan: &QueryPlan) -> Result<u64, ConnectorError> {
    let endpoint = if plan.include_deleted {
        "queryAll"
    } else {
        "query"
    };
    let what = format!("record count of {}", plan.object);
    let (answer, _) = session
        .json(
            &what,
            Method::GET,
            endpoint,
            &[("q", plan.count_soql())],
            None,
        )
        .await?;
    answer
        .get("totalSize")
        .and_then(Value::as_u64)
        .ok_or_else(|| ConnectorError::bad_data(format!("Salesforce {what}: no totalSize")))
}

/// `f` as an `i64` when it is a whole number in range (no silent saturation).
pub(crate) fn whole_i64(f: f64) -> Option<i64> {
    // 2^63 is exactly representable; every whole f64 below it fits.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f)).then_some(f as i64)
}

fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date, `None` when the date does not exist.
fn days_from_civil(year: i64, month: u32, day: u32) -> Option<i64> {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > month_days {
        return None;
    }
    // Howard Hinnant's days_from_civil: years start in March so leap days come last.
    let (month, day) = (i64::from(month), i64::from(day));
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

/// `YYYY-MM-DD` at the start of `b`, as days since the epoch.
fn date_prefix_days(b: &[u8]) -> Option<i64> {
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    days_from_civil(
        i64::from(digits(&b[..4])?),
        digits(&b[5..7])?,
        digits(&b[8..10])?,
    )
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
pub(crate) fn parse_date_days(text: &str) -> Option<i32> {
    let b = text.as_bytes();
    let days = if b.len() == 10 {
        date_prefix_days(b)?
    } else {
        let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
        const EPOCH_FROM_CE: i64 = 719_163;
        i64::from(date.num_days_from_ce()) - EPOCH_FROM_CE
    };
    i32::try_from(days).ok()
}

/// The fixed-width UTC forms both APIs use: `2024-04-16T19:00:00.000Z` (Bulk API 2.0) and
/// `2024-04-16T19:00:00.000+0000` (REST), without a general date-time parser.
fn fixed_utc_millis(b: &[u8]) -> Option<i64> {
    let utc = match b.len() {
        24 => b[23] == b'Z',
        28 => &b[23..] == b"+0000",
        _ => false,
    };
    if !utc || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'.' {
        return None;
    }
    let (hour, minute, second) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let seconds = date_prefix_days(b)? * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    Some(seconds * 1000 + i64::from(digits(&b[20..23])?))
}

/// Milliseconds since the epoch of a Salesforce date-time: `2024-04-16T19:00:00.000Z` (Bulk API
/// 2.0), `2024-04-16T19:00:00.000+0000` (REST), or any RFC 3339 form.
pub(crate) fn parse_timestamp_millis(text: &str) -> Option<i64> {
    fixed_utc_millis(text.as_bytes()).or_else(|| {
        DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z")
            .or_else(|_| DateTime::parse_from_rfc3339(text))
            .ok()
            .map(|t| t.timestamp_millis())
    })
}

/// A plain decimal integer (`-12`), without the general parser; `None` for anything else.
fn plain_i64(b: &[u8]) -> Option<i64> {
    let (negative, body) = match b.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, b),
    };
    // Up to 18 digits cannot overflow.
    if body.is_empty() || body.len() > 18 {
        return None;
    }
    let mut n = 0i64;
    for &d in body {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(d - b'0');
    }
    Some(if negative { -n } else { n })
}

/// One output column being built, typed by the Salesforce field type.
pub(crate) enum Column {
    Boolean(BooleanBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Date(Date32Builder),
    Timestamp(TimestampMillisecondBuilder),
    Text(StringBuilder),
}

impl Column {
    /// An empty column for a field of Salesforce type `kind`.
    pub(crate) fn new(kind: &str, rows: usize) -> Self {
        match arrow_type(kind) {
            DataType::Boolean => Column::Boolean(BooleanBuilder::with_capacity(rows)),
            DataType::Int64 => Column::Int(Int64Builder::with_capacity(rows)),
            DataType::Float64 => Column::Float(Float64Builder::with_capacity(rows)),
            DataType::Date32 => Column::Date(Date32Builder::with_capacity(rows)),
            DataType::Timestamp(_, _) => Column::Timestamp(
                TimestampMillisecondBuilder::with_capacity(rows).with_timezone("UTC"),
            ),
            _ => Column::Text(StringBuilder::with_capacity(rows, rows * 16)),
        }
    }

    pub(crate) fn append_null(&mut self) {
        match self {
            Column::Boolean(b) => b.append_null(),
            Column::Int(b) => b.append_null(),
            Column::Float(b) => b.append_null(),
            Column::Date(b) => b.append_null(),
            Column::Timestamp(b) => b.append_null(),
            Column::Text(b) => b.append_null(),
        }
    }

    /// `append_text` for raw CSV bytes: numbers, dates and date-times in their usual forms are
    /// parsed from the bytes; text is checked to be UTF-8.
    pub(crate) fn append_bytes(&mut self, bytes: &[u8]) -> bool {
        fn put<T>(value: Option<T>, append: impl FnOnce(T)) -> bool {
            value.map(append).is_some()
        }
        let done = match self {
            Column::Int(b) => put(plain_i64(bytes), |n| b.append_value(n)),
            Column::Date(b) => put(
                (bytes.len() == 10)
                    .then(|| date_prefix_days(bytes))
                    .flatten()
                    .and_then(|days| i32::try_from(days).ok()),
                |days| b.append_value(days),
            ),
            Column::Timestamp(b) => put(fixed_utc_millis(bytes), |millis| b.append_value(millis)),
            Column::Boolean(b) => {
                let value = match bytes {
                    b"true" => Some(true),
                    b"false" => Some(false),
                    _ => None,
                };
                put(value, |v| b.append_value(v))
            }
            _ => false,
        };
        done || std::str::from_utf8(bytes).is_ok_and(|text| self.append_text(text))
    }

    /// Appends a value written as text (Bulk API 2.0 CSV); `false` when it is not one of the
    /// column's type.
    pub(crate) fn append_text(&mut self, text: &str) -> bool {
        match self {
            Column::Boolean(b) => match text {
                "true" => b.append_value(true),
                "false" => b.append_value(false),
                _ => return false,
            },
            Column::Int(b) => {
                match text
                    .parse::<i64>()
                    .ok()
                    .or_else(|| text.parse::<f64>().ok().and_then(whole_i64))
                {
                    Some(n) => b.append_value(n),
                    None => return false,
                }
            }
            Column::Float(b) => match text.parse::<f64>() {
                Ok(f) => b.append_value(f),
                Err(_) => return false,
            },
            Column::Date(b) => match parse_date_days(text) {
                Some(days) => b.append_value(days),
                None => return false,
            },
            Column::Timestamp(b) => match parse_timestamp_millis(text) {
                Some(millis) => b.append_value(millis),
                None => return false,
            },
            Column::Text(b) => b.append_value(text),
        }
        true
    }

    /// Appends a JSON string (REST); text, dates and date-times take strings.
    fn append_json_str(&mut self, text: &str) -> bool {
        match self {
            Column::Text(_) | Column::Date(_) | Column::Timestamp(_) => self.append_text(text),
            _ => false,
        }
    }

    fn append_bool(&mut self, value: bool) -> bool {
        match self {
            Column::Boolean(b) => b.append_value(value),
            Column::Text(b) => b.append_value(if value { "true" } else { "false" }),
            _ => return false,
        }
        true
    }

    fn append_i64(&mut self, value: i64) -> bool {
        match self {
            Column::Int(b) => b.append_value(value),
            // Whole numbers in double fields; precision beyond 2^53 is what the field holds.
            Column::Float(b) => b.append_value(value as f64),
            Column::Text(b) => b.append_value(value.to_string()),
            _ => return false,
        }
        true
    }

    fn append_u64(&mut self, value: u64) -> bool {
        match i64::try_from(value) {
            Ok(n) => self.append_i64(n),
            Err(_) => match self {
                Column::Float(b) => {
                    b.append_value(value as f64);
                    true
                }
                Column::Text(b) => {
                    b.append_value(value.to_string());
                    true
                }
                _ => false,
            },
        }
    }

    fn append_f64(&mut self, value: f64) -> bool {
        match self {
            Column::Float(b) => b.append_value(value),
            Column::Int(b) => match whole_i64(value) {
                Some(n) => b.append_value(n),
                None => return false,
            },
            Column::Text(b) => b.append_value(value.to_string()),
            _ => return false,
        }
        true
    }

    pub(crate) fn len(&self) -> usize {
        use arrow_array::builder::ArrayBuilder;
        match self {
            Column::Boolean(b) => b.len(),
            Column::Int(b) => b.len(),
            Column::Float(b) => b.len(),
            Column::Date(b) => b.len(),
            Column::Timestamp(b) => b.len(),
            Column::Text(b) => b.len(),
        }
    }

    pub(crate) fn finish(&mut self) -> ArrayRef {
        match self {
            Column::Boolean(b) => Arc::new(b.finish()),
            Column::Int(b) => Arc::new(b.finish()),
            Column::Float(b) => Arc::new(b.finish()),
            Column::Date(b) => Arc::new(b.finish()),
            Column::Timestamp(b) => Arc::new(b.finish()),
            Column::Text(b) => Arc::new(b.finish()),
        }
    }
}

/// Finishes `columns` into a batch of `schema`.
pub(crate) fn finish_batch(
    object: &str,
    schema: &SchemaRef,
    columns: &mut [Column],
) -> Result<RecordBatch, ConnectorError> {
    let arrays: Vec<ArrayRef> = columns.iter_mut().map(Column::finish).collect();
    RecordBatch::try_new(schema.clone(), arrays).map_err(|error| {
        ConnectorError::internal(format!(
            "Salesforce {object}: building a batch failed: {error}"
        ))
    })
}

/// One REST query page: its records as a batch, and where the next page is.
#[derive(Debug)]
pub struct RestPage {
    /// The page's records.
    pub batch: RecordBatch,
    /// `totalSize`: records of the whole query.
    pub total_size: Option<u64>,
    /// `done`: whether this is the last page.
    pub done: bool,
    /// `nextRecordsUrl`.
    pub next: Option<String>,
}

/// Decodes a REST `query` page (`{totalSize, done, nextRecordsUrl, records: [...]}`) into a
/// batch of `fields`, appending every value straight to its column. A value of the wrong type
/// is an error naming the record (its `Id` when selected), the field and the value.
pub fn decode_rest_page(
    object: &str,
    fields: &[SfField],
    schema: &SchemaRef,
    body: &[u8],
) -> Result<RestPage, ConnectorError> {
    let index: HashMap<&str, usize> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name.as_str(), i))
        .collect();
    let mut page = PageDecoder {
        object,
        fields,
        index,
        id_column: fields.iter().position(|f| f.name == "Id"),
        columns: fields.iter().map(|f| Column::new(&f.kind, 2000)).collect(),
        filled: vec![0; fields.len()],
        rows: 0,
        total_size: None,
        done: None,
        next: None,
    };
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    PageSeed(&mut page)
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end())
        .map_err(|error| {
            ConnectorError::bad_data(format!("Salesforce query page of {object}: {error}"))
        })?;
    let batch = finish_batch(object, schema, &mut page.columns)?;
    Ok(RestPage {
        batch,
        total_size: page.total_size,
        done: page.done.unwrap_or(true),
        next: page.next,
    })
}

struct PageDecoder<'a> {
    object: &'a str,
    fields: &'a [SfField],
    index: HashMap<&'a str, usize>,
    id_column: Option<usize>,
    columns: Vec<Column>,
    /// Per column, 1 + the last row given a value (so 0 means none yet).
    filled: Vec<usize>,
    rows: usize,
    total_size: Option<u64>,
    done: Option<bool>,
    next: Option<String>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum PageKey {
    TotalSize,
    Done,
    NextRecordsUrl,
    Records,
    #[serde(other)]
    Other,
}

struct PageSeed<'p, 'a>(&'p mut PageDecoder<'a>);

impl<'de> DeserializeSeed<'de> for PageSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PageSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a query result object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let page = self.0;
        while let Some(key) = map.next_key::<PageKey>()? {
            match key {
                PageKey::TotalSize => page.total_size = map.next_value()?,
                PageKey::Done => page.done = map.next_value()?,
                PageKey::NextRecordsUrl => page.next = map.next_value()?,
                PageKey::Records => map.next_value_seed(RecordsSeed(&mut *page))?,
                PageKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct RecordsSeed<'p, 'a>(&'p mut PageDecoder<'a>);

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(RecordSeed(&mut *self.0))?.is_some() {}
        Ok(())
    }
}

struct RecordSeed<'p, 'a>(&'p mut PageDecoder<'a>);

impl<'de> DeserializeSeed<'de> for RecordSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let page = self.0;
        let row = page.rows + 1;
        let mut problem: Option<String> = None;
        while let Some(column) = map.next_key_seed(KeySeed(&page.index))? {
            let Some(i) = column else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            if page.filled[i] == row {
                // A repeated key: keep the first value.
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let wrong = map.next_value_seed(ValueSeed(&mut page.columns[i]))?;
            page.filled[i] = row;
            if let Some(value) = wrong
                && problem.is_none()
            {
                let field = &page.fields[i];
                problem = Some(format!(
                    "field {} ({}) has an unexpected value {value}",
                    field.name, field.kind
                ));
            }
        }
        for (i, column) in page.columns.iter_mut().enumerate() {
            if page.filled[i] != row {
                column.append_null();
                page.filled[i] = row;
            }
        }
        page.rows = row;
        if let Some(problem) = problem {
            let id = page
                .id_column
                .and_then(|c| match &page.columns[c] {
                    Column::Text(b) => {
                        let offsets = b.offsets_slice();
                        let end = usize::try_from(*offsets.last()?).ok()?;
                        let start = usize::try_from(offsets[offsets.len().checked_sub(2)?]).ok()?;
                        std::str::from_utf8(b.values_slice().get(start..end)?)
                            .ok()
                            .map(str::to_owned)
                    }
                    _ => None,
                })
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| format!("number {row} of the page"));
            return Err(de::Error::custom(format!(
                "Salesforce {} record {id}: {problem}",
                page.object
            )));
        }
        Ok(())
    }
}

/// A record key: the column it fills, or `None` (`attributes`, fields not selected).
struct KeySeed<'p, 'a>(&'p HashMap<&'a str, usize>);

impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_> {
    type Value = Option<usize>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_, '_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.get(key).copied())
    }
}

/// Appends one value to its column. Yields the value's text when its type does not fit the
/// column (a null is appended then), so the record can be named in the error.
struct ValueSeed<'p>(&'p mut Column);

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Option<String>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl ValueSeed<'_> {
    fn outcome(self, fits: bool, text: impl FnOnce() -> String) -> Option<String> {
        if fits {
            return None;
        }
        self.0.append_null();
        Some(text())
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.append_null();
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        let fits = self.0.append_bool(v);
        Ok(self.outcome(fits, || v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        let fits = self.0.append_i64(v);
        Ok(self.outcome(fits, || v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        let fits = self.0.append_u64(v);
        Ok(self.outcome(fits, || v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        let fits = self.0.append_f64(v);
        Ok(self.outcome(fits, || v.to_string()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let fits = self.0.append_json_str(v);
        Ok(self.outcome(fits, || Value::from(v).to_string()))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        // Relationship and compound values: JSON text in a text column.
        let value = Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        self.nested(value)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let value = Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        self.nested(value)
    }
}

impl ValueSeed<'_> {
    fn nested<E: de::Error>(self, value: Value) -> Result<Option<String>, E> {
        let text = value.to_string();
        match self.0 {
            Column::Text(b) => {
                b.append_value(&text);
                Ok(None)
            }
            _ => Ok(self.outcome(false, || text)),
        }
    }
}

struct PageState {
    session: Arc<Session>,
    next: Option<String>,
    first: bool,
    pages: u64,
    records: u64,
    total: Option<u64>,
}

/// Streams the query's result pages as batches.
pub fn stream_query(session: Arc<Session>, plan: QueryPlan, stats: Arc<ReadStats>) -> BatchStream {
    let endpoint = if plan.include_deleted {
        "queryAll"
    } else {
        "query"
    };
    let state = PageState {
        session,
        next: Some(String::new()),
        first: true,
        pages: 0,
        records: 0,
        total: None,
    };
    let schema = plan.schema();
    let plan = Arc::new(plan);
    futures::stream::try_unfold(state, move |mut state| {
        let plan = plan.clone();
        let schema = schema.clone();
        let stats = stats.clone();
        async move {
            let Some(next) = state.next.take() else {
                return Ok(None);
            };
            let object = &plan.object;
            let what = format!("query of {object} (page {})", state.pages + 1);
            let response = if state.first {
                state.first = false;
                state
                    .session
                    .call(
                        &what,
                        Method::GET,
                        endpoint,
                        &[("q", plan.soql.clone())],
                        None,
                    )
                    .await?
            } else {
                state
                    .session
                    .call(&what, Method::GET, &next, &[], None)
                    .await?
            };
            stats.add_bytes(response.body.len() as u64);
            state.pages += 1;
            let page = decode_rest_page(object, &plan.fields, &schema, &response.body)?;
            state.total = page.total_size.or(state.total);
            state.records += page.batch.num_rows() as u64;
            state.next = page.next;
            if !page.done && state.next.is_none() {
                return Err(ConnectorError::bad_data(format!(
                    "Salesforce {what}: the page is not the last one but has no nextRecordsUrl"
                )));
            }
            if page.done {
                state.next = None;
                // A run never silently stops early: the pages must add up to totalSize.
                if let Some(total) = state.total
                    && total != state.records
                {
                    return Err(ConnectorError::unavailable(format!(
                        "Salesforce query of {object} returned {} records but announced {total}",
                        state.records
                    )));
                }
            }
            Ok(Some((page.batch, state)))
        }
    })
    .boxed()
}
