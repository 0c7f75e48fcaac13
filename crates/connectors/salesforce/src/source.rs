//! Reading: the object's fields from `describe`, a SOQL query with the projection as its field
//! list and the incremental window and pushable filters as its `WHERE` clause, then the result
//! pages (`query`, or `queryAll` for `includeDeletedRecords`) followed through `nextRecordsUrl`,
//! one Arrow batch per page, so memory is bounded by the page size whatever the result size.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use reqwest::Method;
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
    /// Fields selected, in output order.
    pub fields: Vec<SfField>,
    /// The SOQL text.
    pub soql: String,
    /// `queryAll` (deleted and archived records too).
    pub include_deleted: bool,
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
    let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    let mut soql = format!("SELECT {} FROM {object}", names.join(", "));
    if !clauses.is_empty() {
        soql.push_str(" WHERE ");
        soql.push_str(&clauses.join(" AND "));
    }
    Ok(QueryPlan {
        fields,
        soql,
        include_deleted,
    })
}

/// `f` as an `i64` when it is a whole number in range (no silent saturation).
fn whole_i64(f: f64) -> Option<i64> {
    // 2^63 is exactly representable; every whole f64 below it fits.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f)).then_some(f as i64)
}

/// Turns one page of records into a batch of `fields`.
pub fn records_to_batch(
    object: &str,
    fields: &[SfField],
    records: &[Value],
) -> Result<RecordBatch, ConnectorError> {
    let schema = Arc::new(Schema::new(
        fields
            .iter()
            .map(|f| Field::new(&f.name, arrow_type(&f.kind), true))
            .collect::<Vec<_>>(),
    ));
    let record_id = |r: &Value| {
        r.get("Id")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned()
    };
    let bad = |field: &SfField, record: &Value, value: &Value| {
        ConnectorError::bad_data(format!(
            "Salesforce {object} record {}: field {} ({}) has an unexpected value {value}",
            record_id(record),
            field.name,
            field.kind
        ))
    };
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(fields.len());
    for field in fields {
        let values = records
            .iter()
            .map(|r| (r, r.get(&field.name).unwrap_or(&Value::Null)));
        let column: ArrayRef = match arrow_type(&field.kind) {
            DataType::Boolean => {
                let mut b = BooleanBuilder::with_capacity(records.len());
                for (r, v) in values {
                    match v {
                        Value::Null => b.append_null(),
                        Value::Bool(x) => b.append_value(*x),
                        other => return Err(bad(field, r, other)),
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Int64 => {
                let mut b = Int64Builder::with_capacity(records.len());
                for (r, v) in values {
                    match v {
                        Value::Null => b.append_null(),
                        other => b.append_value(
                            other
                                .as_i64()
                                .or_else(|| other.as_f64().and_then(whole_i64))
                                .ok_or_else(|| bad(field, r, other))?,
                        ),
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Float64 => {
                let mut b = Float64Builder::with_capacity(records.len());
                for (r, v) in values {
                    match v {
                        Value::Null => b.append_null(),
                        other => {
                            b.append_value(other.as_f64().ok_or_else(|| bad(field, r, other))?)
                        }
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Date32 => {
                let mut b = Date32Builder::with_capacity(records.len());
                let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
                for (r, v) in values {
                    match v {
                        Value::Null => b.append_null(),
                        Value::String(s) => {
                            let date = NaiveDate::parse_from_str(s, "%Y-%m-%d")
                                .map_err(|_| bad(field, r, v))?;
                            let days = i32::try_from((date - epoch).num_days())
                                .map_err(|_| bad(field, r, v))?;
                            b.append_value(days);
                        }
                        other => return Err(bad(field, r, other)),
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Timestamp(_, _) => {
                let mut b =
                    TimestampMillisecondBuilder::with_capacity(records.len()).with_timezone("UTC");
                for (r, v) in values {
                    match v {
                        Value::Null => b.append_null(),
                        Value::String(s) => {
                            let time = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
                                .or_else(|_| DateTime::parse_from_rfc3339(s))
                                .map_err(|_| bad(field, r, v))?;
                            b.append_value(time.timestamp_millis());
                        }
                        other => return Err(bad(field, r, other)),
                    }
                }
                Arc::new(b.finish())
            }
            _ => {
                let mut b = StringBuilder::with_capacity(records.len(), records.len() * 16);
                for (_, v) in values {
                    match v {
                        Value::Null => b.append_null(),
                        Value::String(s) => b.append_value(s),
                        // Numbers in text fields, or nested relationship objects, as JSON text.
                        other => b.append_value(other.to_string()),
                    }
                }
                Arc::new(b.finish())
            }
        };
        columns.push(column);
    }
    RecordBatch::try_new(schema, columns).map_err(|error| {
        ConnectorError::internal(format!(
            "Salesforce {object}: building a batch failed: {error}"
        ))
    })
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
pub fn stream_query(
    session: Arc<Session>,
    object: String,
    plan: QueryPlan,
    stats: Arc<ReadStats>,
) -> BatchStream {
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
    let fields = Arc::new(plan.fields);
    let soql = plan.soql;
    futures::stream::try_unfold(state, move |mut state| {
        let fields = fields.clone();
        let soql = soql.clone();
        let object = object.clone();
        let stats = stats.clone();
        async move {
            let Some(next) = state.next.take() else {
                return Ok(None);
            };
            let what = format!("query of {object} (page {})", state.pages + 1);
            let (page, bytes) = if state.first {
                state.first = false;
                state
                    .session
                    .json(&what, Method::GET, endpoint, &[("q", soql.clone())], None)
                    .await?
            } else {
                state
                    .session
                    .json(&what, Method::GET, &next, &[], None)
                    .await?
            };
            stats.add_bytes(bytes);
            state.pages += 1;
            let records = page
                .get("records")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    ConnectorError::bad_data(format!(
                        "Salesforce {what}: the answer has no records array"
                    ))
                })?;
            state.total = page
                .get("totalSize")
                .and_then(Value::as_u64)
                .or(state.total);
            state.records += records.len() as u64;
            let done = page.get("done").and_then(Value::as_bool).unwrap_or(true);
            state.next = page
                .get("nextRecordsUrl")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if !done && state.next.is_none() {
                return Err(ConnectorError::bad_data(format!(
                    "Salesforce {what}: the page is not the last one but has no nextRecordsUrl"
                )));
            }
            if done {
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
            let batch = records_to_batch(&object, &fields, records)?;
            Ok(Some((batch, state)))
        }
    })
    .boxed()
}
