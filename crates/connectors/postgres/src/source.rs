//! Reading a table with binary `COPY (SELECT …) TO STDOUT`.
//!
//! The read runs in a `REPEATABLE READ` transaction. With a parallelism above one, that
//! transaction exports its snapshot and the other connections adopt it, each scanning a range
//! of the table's pages (`ctid` range scans), so all of them see one consistent state. Every
//! scan decodes on its own task and hands batches over a small bounded channel, which keeps
//! memory bounded by a few batches per scan.

use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use sluice_api_model as model;
use sluice_connector_api::{
    BatchStream, ConnectorError, IncrementalWindow, PushdownFilter, ReadRequest,
};
use tokio::sync::mpsc;
use tokio_postgres::Client;

use crate::client::{Column, connect, pg_error, table_columns};
use crate::config::{ConnectionConfig, SourceConfig, quote_ident, quote_literal};
use crate::decode::{CopyDecoder, Kind, ReadColumn, read_column};

/// Batches buffered per scan before the scan waits for the consumer.
const CHANNEL_BATCHES: usize = 2;

/// Starts reading `config.table` for one run.
pub async fn read(
    connection: &ConnectionConfig,
    config: &SourceConfig,
    request: ReadRequest,
) -> Result<BatchStream, ConnectorError> {
    let table = &config.table;
    let first = connect(connection).await?;
    first
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(|e| pg_error(&e, "cannot start the read transaction"))?;
    let columns = table_columns(&first, table).await?;
    let selected = project(&columns, request.projection.as_deref(), table)?;
    let read_columns: Vec<ReadColumn> = selected.iter().map(|c| read_column(c)).collect();
    let mut conditions = pushdown(&columns, &request.filters);
    if let Some(window) = &request.window {
        conditions.push(window_condition(&columns, window, table)?);
    }

    let scans = if config.parallelism > 1 {
        parallel_scans(connection, first, table, config.parallelism).await?
    } else {
        vec![(first, None)]
    };
    let select_list = read_columns
        .iter()
        .map(|c| c.select.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let (tx, rx) = mpsc::channel(CHANNEL_BATCHES * scans.len());
    let scan_count = scans.len();
    for (client, range) in scans {
        let mut clauses = conditions.clone();
        clauses.extend(range);
        let where_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "COPY (SELECT {select_list} FROM {}{where_sql}) TO STDOUT (FORMAT binary)",
            table.quoted()
        );
        tracing::debug!(table = %table, %sql, "starting Postgres scan");
        let decoder = CopyDecoder::new(table.to_string(), read_columns.clone(), request.batch_rows);
        let tx = tx.clone();
        let stats = request.stats.clone();
        let table_name = table.to_string();
        tokio::spawn(async move {
            if let Err(error) = scan(&client, &sql, &table_name, decoder, &tx, &stats).await {
                // The receiver may be gone already; then nobody needs the error.
                let _ = tx.send(Err(error)).await;
            }
        });
    }
    drop(tx);
    tracing::info!(table = %table, scans = scan_count, "reading Postgres table");
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok(stream.boxed())
}

async fn scan(
    client: &Client,
    sql: &str,
    table: &str,
    mut decoder: CopyDecoder,
    tx: &mpsc::Sender<Result<arrow_array::RecordBatch, ConnectorError>>,
    stats: &sluice_connector_api::ReadStats,
) -> Result<(), ConnectorError> {
    let context = || format!("cannot read table {table}");
    let stream = client
        .copy_out(sql)
        .await
        .map_err(|e| pg_error(&e, &context()))?;
    let mut stream = std::pin::pin!(stream);
    // Postgres sends one message per row; the shared byte counter is updated per batch.
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| pg_error(&e, &context()))?;
        bytes += chunk.len() as u64;
        decoder.push(&chunk)?;
        if decoder.batch_ready()
            && let Some(batch) = decoder.take_batch()?
        {
            stats.add_bytes(std::mem::take(&mut bytes));
            if tx.send(Ok(batch)).await.is_err() {
                return Ok(());
            }
        }
    }
    stats.add_bytes(bytes);
    decoder.finish()?;
    if let Some(batch) = decoder.take_batch()? {
        let _ = tx.send(Ok(batch)).await;
    }
    Ok(())
}

/// Opens `parallelism - 1` more connections on the snapshot of `first` and splits the table's
/// pages among all of them. Views and tables too small to split get one scan.
async fn parallel_scans(
    connection: &ConnectionConfig,
    first: Client,
    table: &crate::config::TableName,
    parallelism: usize,
) -> Result<Vec<(Client, Option<String>)>, ConnectorError> {
    let row = first
        .query_one(
            "SELECT c.relkind::text, pg_relation_size(c.oid) / current_setting('block_size')::int8,
                    pg_export_snapshot()
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&table.schema, &table.table],
        )
        .await
        .map_err(|e| pg_error(&e, &format!("cannot size table {table}")))?;
    let relkind: String = row.get(0);
    let pages: i64 = row.get(1);
    let snapshot: String = row.get(2);
    let pages = u64::try_from(pages).unwrap_or(0);
    let scans = u64::try_from(parallelism).unwrap_or(1).min(pages);
    if !(relkind == "r" || relkind == "m") || scans < 2 {
        return Ok(vec![(first, None)]);
    }
    let per_scan = pages.div_ceil(scans);
    let bounds: Vec<(u64, Option<u64>)> = (0..scans)
        .map(|i| {
            let start = i * per_scan;
            // The last range is open, so the split never misses a page.
            let end = (i + 1 < scans).then_some((i + 1) * per_scan);
            (start, end)
        })
        .collect();
    let mut out = Vec::with_capacity(bounds.len());
    for (i, (start, end)) in bounds.into_iter().enumerate() {
        let mut range = format!("ctid >= '({start},0)'::tid");
        if let Some(end) = end {
            range.push_str(&format!(" AND ctid < '({end},0)'::tid"));
        }
        let client = if i == 0 {
            None
        } else {
            let client = connect(connection).await?;
            client
                .batch_execute(&format!(
                    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
                    quote_literal(&snapshot)
                ))
                .await
                .map_err(|e| pg_error(&e, "cannot share the read snapshot"))?;
            Some(client)
        };
        out.push((client, range));
    }
    // The first connection keeps the snapshot alive, so it is handed out last.
    let mut scans: Vec<(Client, Option<String>)> = Vec::with_capacity(out.len());
    let mut first = Some(first);
    for (client, range) in out {
        match client {
            Some(client) => scans.push((client, Some(range))),
            None => {
                if let Some(first) = first.take() {
                    scans.push((first, Some(range)));
                }
            }
        }
    }
    Ok(scans)
}

/// The columns to read, in projection order (every column without a projection).
fn project<'a>(
    columns: &'a [Column],
    projection: Option<&[String]>,
    table: &crate::config::TableName,
) -> Result<Vec<&'a Column>, ConnectorError> {
    let Some(projection) = projection else {
        return Ok(columns.iter().collect());
    };
    let mut out: Vec<&Column> = Vec::with_capacity(projection.len());
    for field in projection {
        let column = columns.iter().find(|c| &c.name == field).ok_or_else(|| {
            ConnectorError::not_found(format!("field {field} is not a column of table {table}"))
        })?;
        if !out.iter().any(|c| c.name == column.name) {
            out.push(column);
        }
    }
    Ok(out)
}

/// `WHERE` conditions for the filters that can be pushed down exactly. The pipeline filters
/// again, so a condition is only emitted when it can never drop a row the task would keep:
/// numbers, booleans and timestamps with every comparison, text only with equality (ordering
/// depends on the database collation).
fn pushdown(columns: &[Column], filters: &[PushdownFilter]) -> Vec<String> {
    filters
        .iter()
        .filter_map(|filter| {
            let column = columns.iter().find(|c| c.name == filter.field)?;
            let kind = read_column(column).kind;
            let lhs = quote_ident(&column.name);
            let op = match filter.operator {
                model::Operator::EqualTo => "=",
                model::Operator::LessThan => "<",
                model::Operator::LessThanOrEqualTo => "<=",
                model::Operator::GreaterThan => ">",
                model::Operator::GreaterThanOrEqualTo => ">=",
                model::Operator::Between => "BETWEEN",
                _ => return None,
            };
            let native_text = !column.is_array && matches!(column.type_oid, 25 | 1043 | 1042 | 19);
            if kind == Kind::Text && (op != "=" || !native_text) {
                return None;
            }
            let literals = filter
                .values
                .iter()
                .map(|v| literal(kind, v))
                .collect::<Option<Vec<_>>>()?;
            match (op, literals.as_slice()) {
                ("BETWEEN", [low, high]) => Some(format!("{lhs} BETWEEN {low} AND {high}")),
                ("BETWEEN", _) => None,
                (op, [value]) => Some(format!("{lhs} {op} {value}")),
                _ => None,
            }
        })
        .collect()
}

/// A typed SQL literal for `value`, when it parses as the column's kind.
fn literal(kind: Kind, value: &str) -> Option<String> {
    let value = value.trim();
    match kind {
        Kind::Int2 | Kind::Int4 | Kind::Int8 => value.parse::<i64>().ok().map(|v| v.to_string()),
        Kind::Float4 | Kind::Float8 | Kind::Numeric { .. } => value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            // The text is kept, so no precision is lost to f64.
            .map(|_| format!("{}::numeric", quote_literal(value))),
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            "true" => Some("true".to_owned()),
            "false" => Some("false".to_owned()),
            _ => None,
        },
        Kind::Text => Some(format!("{}::text", quote_literal(value))),
        Kind::Date | Kind::Timestamp | Kind::Timestamptz => {
            let instant = match value.parse::<i64>() {
                // AppFlow passes datetimes as epoch milliseconds.
                Ok(millis) => DateTime::<Utc>::from_timestamp_millis(millis)?,
                Err(_) => DateTime::parse_from_rfc3339(value)
                    .ok()?
                    .with_timezone(&Utc),
            };
            Some(timestamp_literal(kind, instant))
        }
        _ => None,
    }
}

/// A timestamp literal comparable with a column of `kind` (the session runs in UTC).
fn timestamp_literal(kind: Kind, instant: DateTime<Utc>) -> String {
    let text = quote_literal(&instant.to_rfc3339_opts(SecondsFormat::Micros, true));
    match kind {
        Kind::Timestamp => format!("{text}::timestamptz::timestamp"),
        _ => format!("{text}::timestamptz"),
    }
}

fn window_condition(
    columns: &[Column],
    window: &IncrementalWindow,
    table: &crate::config::TableName,
) -> Result<String, ConnectorError> {
    let column = columns
        .iter()
        .find(|c| c.name == window.field)
        .ok_or_else(|| {
            ConnectorError::invalid_config(format!(
                "incremental field {} is not a column of table {table}",
                window.field
            ))
        })?;
    let kind = read_column(column).kind;
    if !matches!(kind, Kind::Date | Kind::Timestamp | Kind::Timestamptz) {
        return Err(ConnectorError::invalid_config(format!(
            "incremental field {} of table {table} has type {}; it must be a date, timestamp \
             or timestamptz column",
            window.field, column.type_name
        )));
    }
    let lhs = quote_ident(&column.name);
    Ok(format!(
        "{lhs} >= {} AND {lhs} < {}",
        timestamp_literal(kind, window.start),
        timestamp_literal(kind, window.end)
    ))
}

#[cfg(test)]
pub(crate) mod pushdown_tests {
    use super::*;

    fn col(name: &str, oid: u32) -> Column {
        Column {
            name: name.into(),
            type_oid: oid,
            type_name: String::new(),
            base_type: String::new(),
            typmod: -1,
            not_null: false,
            is_array: false,
            primary_key: false,
        }
    }

    fn filter(field: &str, operator: model::Operator, values: &[&str]) -> PushdownFilter {
        PushdownFilter {
            field: field.into(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
            data_type: None,
        }
    }

    #[test]
    fn pushes_down_only_exact_conditions() {
        let columns = [col("id", 20), col("name", 25), col("at", 1184)];
        let conditions = pushdown(
            &columns,
            &[
                filter("id", model::Operator::GreaterThan, &["10"]),
                filter("id", model::Operator::EqualTo, &["ten"]),
                filter("name", model::Operator::EqualTo, &["O'Brien"]),
                filter("name", model::Operator::LessThan, &["m"]),
                filter("at", model::Operator::Between, &["0", "1000"]),
                filter("missing", model::Operator::EqualTo, &["1"]),
                filter("id", model::Operator::NotEqualTo, &["1"]),
            ],
        );
        assert_eq!(
            conditions,
            vec![
                "\"id\" > 10".to_owned(),
                "\"name\" = 'O''Brien'::text".to_owned(),
                "\"at\" BETWEEN '1970-01-01T00:00:00.000000Z'::timestamptz AND \
                 '1970-01-01T00:00:01.000000Z'::timestamptz"
                    .to_owned(),
            ]
        );
    }

    #[test]
    fn window_requires_a_timestamp_column() {
        let table = crate::config::TableName::parse("public.t", "entityName").unwrap();
        let columns = [col("name", 25), col("updated", 1114)];
        let window = |field: &str| IncrementalWindow {
            field: field.into(),
            start: DateTime::from_timestamp(0, 0).unwrap(),
            end: DateTime::from_timestamp(60, 0).unwrap(),
        };
        let sql = window_condition(&columns, &window("updated"), &table).unwrap();
        assert_eq!(
            sql,
            "\"updated\" >= '1970-01-01T00:00:00.000000Z'::timestamptz::timestamp AND \
             \"updated\" < '1970-01-01T00:01:00.000000Z'::timestamptz::timestamp"
        );
        let err = window_condition(&columns, &window("name"), &table).unwrap_err();
        assert!(
            err.to_string()
                .contains("incremental field name of table public.t has type")
        );
        let err = window_condition(&columns, &window("nope"), &table).unwrap_err();
        assert!(err.to_string().contains("nope is not a column"));
    }
}
