//! Writing batches into a table.
//!
//! A run is one transaction, so nothing is visible before [`DestinationWriter::commit`] and a
//! failed or aborted run leaves the table as it was. Each batch is written under a savepoint.
//! `INSERT` into a plain table whose columns take the sent types as they are is a binary
//! `COPY … FROM STDIN` straight into the target; every other batch is copied into a temporary
//! staging table and merged into the target with casts. When the database rejects a direct
//! copy, the batch is rolled back to its savepoint and staged instead; when it rejects the
//! merge (a constraint, a failed cast), the batch is rolled back again and the failing rows are
//! found by bisection through the staging table: a failed range is retried as two halves under
//! savepoints, left half first, down to single rows, so good halves are written in one load
//! each and the rejected rows are found in row order. The run fails on the first of them, or,
//! with `failOnFirstDestinationError: false`, they are counted as put failures. Either way each
//! rejected row goes to the run's error location ([`WriteRequest::rejected`]) with the
//! SQLSTATE and the database's message, so nothing is dropped silently.
//!
//! [`WriteRequest::rejected`]: sluice_connector_api::WriteRequest::rejected

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use async_trait::async_trait;
use bytes::Bytes;
use futures::SinkExt;
use sluice_connector_api::{
    ConnectorError, ConnectorErrorKind, DestinationWriter, RejectedRecord, RejectedRecordSink,
    WriteSummary,
};
use tokio_postgres::Client;

use crate::client::{Column, connect, pg_error, table_columns, table_exists};
use crate::config::{ConnectionConfig, DestinationConfig, WriteMode, quote_ident};
use crate::encode::{
    StageColumn, StageType, json_arrays_to_literals, prepare, row_json, stage_column, write_header,
    write_row, write_trailer,
};

/// The binary COPY header, which starts every COPY stream.
fn copy_header() -> Bytes {
    let mut header = Vec::with_capacity(19);
    write_header(&mut header);
    Bytes::from(header)
}

/// COPY data is sent in chunks of about this size.
const COPY_CHUNK: usize = 1 << 20;

/// Rejected rows are handed to the error location in chunks of at most this many.
const REJECT_CHUNK: usize = 500;

/// How one batch schema is loaded: staging table and merge statements.
struct Plan {
    stage_table: String,
    stage_columns: Vec<StageColumn>,
    names: Vec<String>,
    copy_sql: String,
    merge_sql: Vec<String>,
    /// `COPY target (columns) FROM STDIN` when batches can be copied straight into the target:
    /// an `INSERT` into a plain table (no rules, no generated or always-identity columns, all
    /// of which `COPY` treats unlike `INSERT`) whose columns take every sent type as it is.
    direct_sql: Option<String>,
    /// Per column: `Some(json_elements)` when text is written to an array column, so JSON
    /// arrays are rewritten as array literals.
    array_literals: Vec<Option<bool>>,
}

/// The rows of a batch encoded for COPY, in one buffer.
struct Encoded<'a> {
    /// The batch row of each encoded row.
    rows: &'a [usize],
    data: &'a Bytes,
    /// Where each encoded row ends in `data`.
    ends: &'a [usize],
}

/// The writer of one run.
pub struct PostgresWriter {
    client: Client,
    config: DestinationConfig,
    plans: HashMap<Vec<(String, String)>, Plan>,
    target: Option<Vec<Column>>,
    summary: WriteSummary,
    rows_seen: u64,
    rejected: Arc<dyn RejectedRecordSink>,
    pending: Vec<RejectedRecord>,
    /// Loads spent finding rejected rows, over the run.
    retry_loads: u64,
}

impl PostgresWriter {
    /// Connects and starts the run's transaction. Rejected rows go to `rejected`.
    pub async fn open(
        connection: &ConnectionConfig,
        config: DestinationConfig,
        rejected: Arc<dyn RejectedRecordSink>,
    ) -> Result<Self, ConnectorError> {
        let client = connect(connection).await?;
        client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| pg_error(&e, "cannot start the write transaction"))?;
        let target = if table_exists(&client, &config.table).await? {
            Some(table_columns(&client, &config.table).await?)
        } else if config.mode != WriteMode::Insert && config.mode != WriteMode::Upsert {
            return Err(ConnectorError::not_found(format!(
                "destination table {} does not exist",
                config.table
            )));
        } else {
            None
        };
        Ok(Self {
            client,
            summary: WriteSummary {
                locations: vec![config.table.to_string()],
                ..WriteSummary::default()
            },
            config,
            plans: HashMap::new(),
            target,
            rows_seen: 0,
            rejected,
            pending: Vec::new(),
            retry_loads: 0,
        })
    }

    /// Creates the target table from the first batch's schema.
    async fn create_table(&mut self, schema: &Schema) -> Result<Vec<Column>, ConnectorError> {
        let columns = schema
            .fields()
            .iter()
            .map(|f| {
                let sql_type = stage_column(f.data_type()).sql_type;
                let not_null = if f.is_nullable() { "" } else { " NOT NULL" };
                format!("{} {sql_type}{not_null}", quote_ident(f.name()))
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("CREATE TABLE {} ({columns})", self.config.table.quoted());
        tracing::info!(table = %self.config.table, "creating destination table");
        self.client
            .batch_execute(&sql)
            .await
            .map_err(|e| pg_error(&e, &format!("cannot create table {}", self.config.table)))?;
        table_columns(&self.client, &self.config.table).await
    }

    /// Builds (once per batch schema) the staging table and merge statements.
    async fn plan(&mut self, schema: &Schema) -> Result<Vec<(String, String)>, ConnectorError> {
        let key: Vec<(String, String)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string()))
            .collect();
        if self.plans.contains_key(&key) {
            return Ok(key);
        }
        let table = self.config.table.clone();
        let target = match &self.target {
            Some(target) => target.clone(),
            None => {
                let created = self.create_table(schema).await?;
                self.target = Some(created.clone());
                created
            }
        };
        let mut pairs: Vec<(&Column, StageColumn)> = Vec::new();
        for field in schema.fields() {
            let column = target
                .iter()
                .find(|c| &c.name == field.name())
                .ok_or_else(|| {
                    ConnectorError::bad_data(format!(
                        "field {} has no column in destination table {table}",
                        field.name()
                    ))
                })?;
            pairs.push((column, stage_column(field.data_type())));
        }
        for id in &self.config.id_fields {
            if !pairs.iter().any(|(c, _)| &c.name == id) {
                return Err(ConnectorError::invalid_config(format!(
                    "idFieldNames names {id}, which is not a field written to table {table}"
                )));
            }
        }
        // Check every conversion up front so a mismatch names its column and both types.
        for ((column, stage), field) in pairs.iter().zip(schema.fields()) {
            let probe = format!(
                "SELECT CAST(NULL::{} AS {})",
                stage.sql_type, column.base_type
            );
            if let Err(error) = self.client.batch_execute(&probe).await {
                let reason = error
                    .as_db_error()
                    .map(|db| db.message().to_owned())
                    .unwrap_or_else(|| error.to_string());
                return Err(ConnectorError::bad_data(format!(
                    "field {} has Arrow type {} (sent as {}), which cannot be written to \
                     column {} of table {table} of type {}: {reason}",
                    field.name(),
                    field.data_type(),
                    stage.sql_type,
                    column.name,
                    column.type_name
                )));
            }
        }
        let stage_table = format!("sluice_stage_{}", self.plans.len());
        let stage_defs = pairs
            .iter()
            .map(|(c, s)| format!("{} {}", quote_ident(&c.name), s.sql_type))
            .collect::<Vec<_>>()
            .join(", ");
        self.client
            .batch_execute(&format!(
                "CREATE TEMP TABLE {stage_table} ({stage_defs}) ON COMMIT DROP"
            ))
            .await
            .map_err(|e| pg_error(&e, "cannot create the staging table"))?;
        let names: Vec<String> = pairs.iter().map(|(c, _)| c.name.clone()).collect();
        let array_literals = pairs
            .iter()
            .map(|(c, s)| {
                (c.is_array && s.stage == StageType::Text)
                    .then_some(matches!(c.base_type.as_str(), "json[]" | "jsonb[]"))
            })
            .collect();
        let merge_sql = merge_statements(
            &self.config,
            &stage_table,
            &pairs.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        );
        let direct_sql = if self.config.mode == WriteMode::Insert
            && pairs
                .iter()
                .all(|(c, s)| !c.is_array && s.stage.loads_into(c.type_oid))
            && self.copies_like_insert(&names).await?
        {
            let columns = names
                .iter()
                .map(|n| quote_ident(n))
                .collect::<Vec<_>>()
                .join(", ");
            Some(format!(
                "COPY {} ({columns}) FROM STDIN (FORMAT binary)",
                table.quoted()
            ))
        } else {
            None
        };
        let plan = Plan {
            direct_sql,
            copy_sql: format!("COPY {stage_table} FROM STDIN (FORMAT binary)"),
            stage_table,
            stage_columns: pairs.into_iter().map(|(_, s)| s).collect(),
            names,
            merge_sql,
            array_literals,
        };
        self.plans.insert(key.clone(), plan);
        Ok(key)
    }

    /// Whether `COPY` into the target writes `columns` exactly as `INSERT` would: the target
    /// is a table or partitioned table without rules (which `COPY` ignores), and none of the
    /// columns is generated or `GENERATED ALWAYS AS IDENTITY` (which `COPY` overrides).
    async fn copies_like_insert(&self, columns: &[String]) -> Result<bool, ConnectorError> {
        let table = &self.config.table;
        let row = self
            .client
            .query_one(
                "SELECT c.relkind IN ('r', 'p') AND NOT c.relhasrules
                        AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                                        WHERE a.attrelid = c.oid AND a.attname = ANY($3)
                                          AND (a.attidentity = 'a' OR a.attgenerated <> ''))
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = $1 AND c.relname = $2",
                &[&table.schema, &table.table, &columns],
            )
            .await
            .map_err(|e| pg_error(&e, &format!("cannot look up table {table}")))?;
        Ok(row.get(0))
    }

    /// Sends `rows` (encoded COPY tuples) through `copy_sql`, in chunks of about
    /// [`COPY_CHUNK`] cut at row boundaries; `ends` are the rows' end offsets in `data`.
    async fn copy(
        &self,
        copy_sql: &str,
        data: &Bytes,
        ends: &[usize],
        rows: std::ops::Range<usize>,
    ) -> Result<(), tokio_postgres::Error> {
        let sink = self.client.copy_in::<_, Bytes>(copy_sql).await?;
        let mut sink = std::pin::pin!(sink);
        sink.feed(copy_header()).await?;
        let start = |row: usize| if row == 0 { 0 } else { ends[row - 1] };
        let mut from = start(rows.start);
        let end = start(rows.end);
        while from < end {
            // The first row end at least a chunk further on, or the last row.
            let next = ends[rows.clone()].partition_point(|&e| e < from + COPY_CHUNK);
            let to = ends.get(rows.start + next).copied().unwrap_or(end).min(end);
            sink.send(data.slice(from..to)).await?;
            from = to;
        }
        let mut trailer = Vec::with_capacity(2);
        write_trailer(&mut trailer);
        sink.feed(Bytes::from(trailer)).await?;
        sink.as_mut().finish().await?;
        Ok(())
    }

    /// Loads `rows` of the encoded batch into the staging table and merges them.
    async fn load(
        &self,
        plan: &Plan,
        data: &Bytes,
        ends: &[usize],
        rows: std::ops::Range<usize>,
    ) -> Result<(), tokio_postgres::Error> {
        self.client
            .batch_execute(&format!("TRUNCATE {}", plan.stage_table))
            .await?;
        self.copy(&plan.copy_sql, data, ends, rows).await?;
        for sql in &plan.merge_sql {
            self.client.execute(sql.as_str(), &[]).await?;
        }
        Ok(())
    }

    /// Records a rejected row: hands it to the error location, then fails the run or counts
    /// it, per `errorHandlingConfig`. `row` indexes `batch`; `row_number` counts from the start
    /// of the run.
    async fn reject(
        &mut self,
        batch: &RecordBatch,
        row: usize,
        row_number: u64,
        code: Option<String>,
        reason: String,
    ) -> Result<(), ConnectorError> {
        self.pending.push(RejectedRecord {
            record: row_json(batch, row),
            code,
            message: reason.clone(),
        });
        let table = &self.config.table;
        if self.config.fail_on_first_error {
            let mut message = format!("table {table} rejected row {row_number}: {reason}");
            // The failing row is stored before the run stops.
            if let Err(error) = self.flush_rejected().await {
                message.push_str(&format!(
                    "; the rejected row could not be stored in the error location: {error}"
                ));
            }
            return Err(ConnectorError::bad_data(message));
        }
        tracing::warn!(table = %table, row = row_number, reason, "destination rejected a row");
        self.summary.put_failures += 1;
        if self.pending.len() >= REJECT_CHUNK {
            self.flush_rejected().await?;
        }
        Ok(())
    }

    /// Hands the pending rejected rows to the error location.
    async fn flush_rejected(&mut self) -> Result<(), ConnectorError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let records = std::mem::take(&mut self.pending);
        self.rejected.put(records).await
    }
}

#[cfg(test)]
impl PostgresWriter {
    /// How many of the batch schemas seen so far are copied straight into the target.
    pub(crate) fn direct_plans(&self) -> usize {
        self.plans
            .values()
            .filter(|p| p.direct_sql.is_some())
            .count()
    }

    /// How many loads (each under its own savepoint) finding rejected rows took so far.
    pub(crate) fn retry_loads(&self) -> u64 {
        self.retry_loads
    }
}

/// The SQLSTATE and message of a rejection, with the column when the database names it.
fn rejection(error: &tokio_postgres::Error) -> (Option<String>, String) {
    match error.as_db_error() {
        None => (None, error.to_string()),
        Some(db) => {
            let mut message = db.message().to_owned();
            if let Some(column) = db.column() {
                message.push_str(&format!(" (column {column})"));
            }
            if let Some(detail) = db.detail() {
                message.push_str(&format!(": {detail}"));
            }
            (Some(db.code().code().to_owned()), message)
        }
    }
}

/// Whether a failure is the database refusing data (retry rows) rather than the connection.
fn is_rejection(error: &tokio_postgres::Error) -> bool {
    match error.as_db_error() {
        None => false,
        Some(db) => {
            let code = db.code().code();
            !(code.starts_with("08") || code.starts_with("53") || code.starts_with("57"))
        }
    }
}

/// The statements merging the staging table into the target.
fn merge_statements(config: &DestinationConfig, stage: &str, columns: &[&Column]) -> Vec<String> {
    let target = config.table.quoted();
    // Casting to the base type leaves the type modifier to assignment, which refuses a value
    // too long for varchar(n) where an explicit cast would silently cut it.
    let cast = |c: &Column| format!("CAST(s.{} AS {})", quote_ident(&c.name), c.base_type);
    let names = columns
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let values = columns
        .iter()
        .map(|c| cast(c))
        .collect::<Vec<_>>()
        .join(", ");
    let matches = config
        .id_fields
        .iter()
        .filter_map(|id| columns.iter().find(|c| &c.name == id))
        .map(|c| format!("t.{} = {}", quote_ident(&c.name), cast(c)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let sets = columns
        .iter()
        .filter(|c| !config.id_fields.contains(&c.name))
        .map(|c| format!("{} = {}", quote_ident(&c.name), cast(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let insert = format!("INSERT INTO {target} ({names}) SELECT {values} FROM {stage} s");
    let update = format!("UPDATE {target} t SET {sets} FROM {stage} s WHERE {matches}");
    let insert_missing =
        format!("{insert} WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {matches})");
    match config.mode {
        WriteMode::Insert => vec![insert],
        // With only id fields there is nothing to update.
        WriteMode::Upsert if sets.is_empty() => vec![insert_missing],
        WriteMode::Upsert => vec![update, insert_missing],
        WriteMode::Update if sets.is_empty() => Vec::new(),
        WriteMode::Update => vec![update],
        WriteMode::Delete => vec![format!(
            "DELETE FROM {target} t USING {stage} s WHERE {matches}"
        )],
    }
}

#[async_trait]
impl DestinationWriter for PostgresWriter {
    async fn write(&mut self, batch: RecordBatch) -> Result<(), ConnectorError> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(());
        }
        let first_row = self.rows_seen + 1;
        self.rows_seen += rows as u64;
        let key = self.plan(batch.schema().as_ref()).await?;
        let mut plan = self
            .plans
            .remove(&key)
            .ok_or_else(|| ConnectorError::internal("batch plan vanished"))?;
        let result = self.write_planned(&mut plan, &batch, first_row).await;
        self.plans.insert(key, plan);
        // Rows rejected before a failure are still handed over.
        let flushed = self.flush_rejected().await;
        result.and(flushed)
    }

    async fn commit(self: Box<Self>) -> Result<WriteSummary, ConnectorError> {
        self.client.batch_execute("COMMIT").await.map_err(|e| {
            pg_error(
                &e,
                &format!("cannot commit writes to {}", self.config.table),
            )
        })?;
        Ok(self.summary)
    }

    async fn abort(self: Box<Self>) {
        if let Err(error) = self.client.batch_execute("ROLLBACK").await {
            tracing::debug!(%error, "rollback of an aborted Postgres write failed");
        }
    }
}

impl PostgresWriter {
    async fn write_planned(
        &mut self,
        plan: &mut Plan,
        batch: &RecordBatch,
        first_row: u64,
    ) -> Result<(), ConnectorError> {
        let (mut arrays, stages) = prepare(batch.columns(), &plan.stage_columns, &plan.names)
            .map_err(ConnectorError::bad_data)?;
        for (array, literal) in arrays.iter_mut().zip(&plan.array_literals) {
            if let Some(json_elements) = literal {
                *array = json_arrays_to_literals(array, *json_elements);
            }
        }
        // Every row is encoded once, up front: values Postgres cannot hold (out-of-range
        // dates) are found before anything is sent, and a retry resends the same bytes.
        let mut data = Vec::new();
        let mut good = Vec::with_capacity(batch.num_rows());
        let mut ends = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            let start = data.len();
            match write_row(&mut data, &arrays, &stages, row) {
                Ok(()) => {
                    good.push(row);
                    ends.push(data.len());
                }
                Err((field, reason)) => {
                    data.truncate(start);
                    let reason = match plan.names.get(field) {
                        Some(name) => format!("{reason} (column {name})"),
                        None => reason,
                    };
                    self.reject(batch, row, first_row + row as u64, None, reason)
                        .await?;
                }
            }
        }
        if good.is_empty() {
            return Ok(());
        }
        let data = Bytes::from(data);
        let all = 0..good.len();
        let table = self.config.table.to_string();
        let write_error = |error: &tokio_postgres::Error| {
            pg_error(error, &format!("cannot write to table {table}"))
        };
        self.savepoint("SAVEPOINT sluice_batch").await?;
        let mut direct_failed = false;
        if let Some(direct_sql) = &plan.direct_sql {
            match self.copy(direct_sql, &data, &ends, all.clone()).await {
                Ok(()) => return self.batch_written(good.len(), data.len()).await,
                Err(error) if is_rejection(&error) => {
                    tracing::info!(table = %table, %error, "direct copy rejected; staging the batch");
                    self.savepoint("ROLLBACK TO SAVEPOINT sluice_batch").await?;
                    direct_failed = true;
                }
                Err(error) => return Err(write_error(&error)),
            }
        }
        let error = match self.load(plan, &data, &ends, all).await {
            Ok(()) => {
                if direct_failed {
                    // The target takes through a cast what it refused to copy (a type it
                    // reads unlike its input, a policy COPY does not support): stage from now on.
                    tracing::info!(table = %table, "staged batch accepted; no more direct copies");
                    plan.direct_sql = None;
                }
                return self.batch_written(good.len(), data.len()).await;
            }
            Err(error) if is_rejection(&error) => {
                tracing::info!(table = %table, %error, "batch rejected; bisecting it");
                self.savepoint("ROLLBACK TO SAVEPOINT sluice_batch").await?;
                error
            }
            Err(error) => return Err(write_error(&error)),
        };
        let encoded = Encoded {
            rows: &good,
            data: &data,
            ends: &ends,
        };
        self.bisect(plan, batch, first_row, encoded, error).await?;
        self.savepoint("RELEASE SAVEPOINT sluice_batch").await?;
        Ok(())
    }

    /// Finds the rejected rows of a batch whose load failed with `error` by bisection: a
    /// failed range of rows is split in two and each half is loaded in one go under its own
    /// savepoint, left half first, so rejected rows are found in row order and a batch with
    /// `k` bad rows of `n` takes about `2k·log2(n/k)` loads rather than `n`. A single row that
    /// fails is rejected.
    async fn bisect(
        &mut self,
        plan: &Plan,
        batch: &RecordBatch,
        first_row: u64,
        encoded: Encoded<'_>,
        error: tokio_postgres::Error,
    ) -> Result<(), ConnectorError> {
        let Encoded {
            rows: good,
            data,
            ends,
        } = encoded;
        let start = |row: usize| if row == 0 { 0 } else { ends[row - 1] };
        let mut loads = 0_u64;
        let mut rejected = 0_u64;
        // Ranges still to try, the next on top, each with the rejection it is known to get.
        let mut todo = vec![(0..good.len(), Some(error))];
        while let Some((rows, known)) = todo.pop() {
            let error = match known {
                Some(error) => error,
                None => {
                    self.savepoint("SAVEPOINT sluice_part").await?;
                    loads += 1;
                    self.retry_loads += 1;
                    match self.load(plan, data, ends, rows.clone()).await {
                        Ok(()) => {
                            self.savepoint("RELEASE SAVEPOINT sluice_part").await?;
                            self.summary.records_written += rows.len() as u64;
                            self.summary.bytes_written +=
                                (start(rows.end) - start(rows.start)) as u64;
                            continue;
                        }
                        Err(error) if is_rejection(&error) => {
                            // Released too, so savepoints do not pile up as the search goes on.
                            self.savepoint(
                                "ROLLBACK TO SAVEPOINT sluice_part; RELEASE SAVEPOINT sluice_part",
                            )
                            .await?;
                            error
                        }
                        Err(error) => {
                            return Err(pg_error(
                                &error,
                                &format!("cannot write to table {}", self.config.table),
                            ));
                        }
                    }
                }
            };
            if rows.len() == 1 {
                let row = good[rows.start];
                let (code, reason) = rejection(&error);
                rejected += 1;
                self.reject(batch, row, first_row + row as u64, code, reason)
                    .await?;
            } else {
                let middle = rows.start + rows.len() / 2;
                todo.push((middle..rows.end, None));
                todo.push((rows.start..middle, None));
            }
        }
        tracing::info!(
            table = %self.config.table,
            rows = good.len(),
            rejected,
            loads,
            "rejected rows of a batch found"
        );
        Ok(())
    }

    /// Releases the batch savepoint and counts the batch's rows and bytes (COPY encoding).
    async fn batch_written(&mut self, rows: usize, bytes: usize) -> Result<(), ConnectorError> {
        self.savepoint("RELEASE SAVEPOINT sluice_batch").await?;
        self.summary.records_written += rows as u64;
        self.summary.bytes_written += bytes as u64;
        Ok(())
    }

    async fn savepoint(&self, sql: &str) -> Result<(), ConnectorError> {
        self.client.batch_execute(sql).await.map_err(|e| {
            let mut error = pg_error(&e, &format!("cannot write to table {}", self.config.table));
            if error.kind == ConnectorErrorKind::BadData {
                error.kind = ConnectorErrorKind::Internal;
            }
            error
        })
    }
}
