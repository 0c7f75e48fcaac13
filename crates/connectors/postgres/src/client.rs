//! Connections, error classification and catalog queries.

use std::time::Duration;

use sluice_connector_api::{ConnectorError, ConnectorErrorKind};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use crate::config::{ConnectionConfig, SslMode, TableName};
use crate::tls::{self, MakeRustlsConnect, TlsError};

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long connecting, the TLS handshake and the login may take together.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens one connection, with TLS as the profile's `sslmode` asks. The session runs in UTC
/// with ISO dates and standard strings, which the SQL this connector builds relies on.
pub async fn connect(config: &ConnectionConfig) -> Result<Client, ConnectorError> {
    let mut pg = tokio_postgres::Config::new();
    pg.host(&config.host)
        .port(config.port)
        .dbname(&config.database)
        .user(&config.user)
        .password(config.password.expose())
        .application_name("sluice")
        .connect_timeout(CONNECT_TIMEOUT)
        .ssl_mode(match config.ssl_mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        })
        .options("-c TimeZone=UTC -c DateStyle=ISO -c standard_conforming_strings=on");
    if let Some(address) = config.hostaddr {
        pg.hostaddr(address);
    }
    let tls = MakeRustlsConnect::new(tls::client_config(config)?, config.ssl_mode);
    // The driver's timeout covers only the TCP connect; a server that accepts the connection
    // and then stalls the TLS handshake or the login must not hang the run either.
    let (client, connection) = tokio::time::timeout(LOGIN_TIMEOUT, pg.connect(tls))
        .await
        .map_err(|_| {
            ConnectorError::unavailable(format!(
                "{}: no answer to the TLS handshake or login within {} s",
                attempt(config),
                LOGIN_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|error| connect_error(&error, config))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "Postgres connection ended with an error");
        }
    });
    Ok(client)
}

/// What a connection attempt tried, for its error messages.
fn attempt(config: &ConnectionConfig) -> String {
    format!(
        "cannot connect to Postgres at {}:{} (database {}, user {}, sslmode {})",
        config.host, config.port, config.database, config.user, config.ssl_mode
    )
}

/// Classifies a failed connection attempt. TLS refusals (an untrusted or misnamed
/// certificate, a server without TLS under `require`) are authentication failures: the
/// server could not be authenticated as the profile demands.
fn connect_error(error: &tokio_postgres::Error, config: &ConnectionConfig) -> ConnectorError {
    let context = attempt(config);
    let source = std::error::Error::source(error);
    if let Some(tls) = source.and_then(|s| s.downcast_ref::<TlsError>()) {
        return match tls {
            TlsError::Refused(reason) => ConnectorError::new(
                ConnectorErrorKind::Authentication,
                format!("{context}: TLS handshake refused: {reason}"),
            ),
            TlsError::Io(io) => {
                ConnectorError::unavailable(format!("{context}: TLS handshake failed: {io}"))
            }
        };
    }
    // The driver's own TLS errors ("server does not support TLS") carry no type to match, only
    // their kind's text.
    if error.as_db_error().is_none() && error.to_string() == "error performing TLS handshake" {
        let reason = source.map(ToString::to_string).unwrap_or_default();
        return ConnectorError::new(
            ConnectorErrorKind::Authentication,
            format!(
                "{context}: {reason}; sslmode {} needs a server that accepts TLS connections",
                config.ssl_mode
            ),
        );
    }
    pg_error(error, &context)
}

/// Classifies a driver error; `context` says what was being done. Server messages never
/// contain the password, so they are safe to pass on.
pub fn pg_error(error: &tokio_postgres::Error, context: &str) -> ConnectorError {
    let Some(db) = error.as_db_error() else {
        // No SQLSTATE: the connection failed or was closed. The driver's text names only the
        // kind of failure; its cause says what happened.
        let message = match std::error::Error::source(error) {
            Some(cause) => format!("{context}: {error}: {cause}"),
            None => format!("{context}: {error}"),
        };
        return ConnectorError::unavailable(message);
    };
    let code = db.code();
    let kind = if *code == SqlState::INVALID_PASSWORD
        || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
    {
        ConnectorErrorKind::Authentication
    } else if *code == SqlState::UNDEFINED_TABLE || *code == SqlState::INVALID_CATALOG_NAME {
        ConnectorErrorKind::NotFound
    } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        ConnectorErrorKind::InvalidConfig
    } else if code.code().starts_with("08")
        || code.code().starts_with("53")
        || code.code().starts_with("57")
    {
        // Connection exceptions, insufficient resources, operator intervention.
        ConnectorErrorKind::Unavailable
    } else {
        ConnectorErrorKind::BadData
    };
    let mut message = format!("{context}: {}", db.message());
    if let Some(detail) = db.detail() {
        message.push_str(&format!(" ({detail})"));
    }
    if let Some(column) = db.column() {
        message.push_str(&format!(" [column {column}]"));
    }
    ConnectorError::new(kind, message)
}

/// One column of a table, as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Type OID.
    pub type_oid: u32,
    /// SQL spelling of the type with modifiers (`numeric(12,2)`).
    pub type_name: String,
    /// SQL spelling of the type without modifiers (`numeric`, `character varying`).
    pub base_type: String,
    /// Type modifier (`-1` when none).
    pub typmod: i32,
    /// Whether `NOT NULL` is declared.
    pub not_null: bool,
    /// Whether the type is an array type.
    pub is_array: bool,
    /// Whether the column is part of the primary key.
    pub primary_key: bool,
}

/// The columns of `table`, in order; `NotFound` when there is no such table or view.
pub async fn table_columns(
    client: &Client,
    table: &TableName,
) -> Result<Vec<Column>, ConnectorError> {
    let rows = client
        .query(
            "SELECT a.attname::text, a.atttypid::int8, format_type(a.atttypid, a.atttypmod),
                    a.atttypmod, a.attnotnull, t.typcategory::text,
                    EXISTS (SELECT 1 FROM pg_index i
                            WHERE i.indrelid = c.oid AND i.indisprimary AND a.attnum = ANY(i.indkey)),
                    format_type(a.atttypid, NULL)
             FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_type t ON t.oid = a.atttypid
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r','p','v','m','f')
               AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum",
            &[&table.schema, &table.table],
        )
        .await
        .map_err(|e| pg_error(&e, &format!("cannot read the columns of table {table}")))?;
    if rows.is_empty() {
        return Err(ConnectorError::not_found(format!(
            "table {table} does not exist (or has no columns) in this database"
        )));
    }
    rows.iter()
        .map(|row| {
            let oid: i64 = row.get(1);
            Ok(Column {
                name: row.get(0),
                type_oid: u32::try_from(oid).map_err(|_| {
                    ConnectorError::internal(format!("type OID {oid} out of range"))
                })?,
                type_name: row.get(2),
                typmod: row.get(3),
                not_null: row.get(4),
                is_array: row.get::<_, String>(5) == "A",
                primary_key: row.get(6),
                base_type: row.get(7),
            })
        })
        .collect()
}

/// Whether `table` exists.
pub async fn table_exists(client: &Client, table: &TableName) -> Result<bool, ConnectorError> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                            WHERE n.nspname = $1 AND c.relname = $2)",
            &[&table.schema, &table.table],
        )
        .await
        .map_err(|e| pg_error(&e, &format!("cannot look up table {table}")))?;
    Ok(row.get(0))
}

/// Tables and views of user schemas (or of `schema` only), as `(schema, table)` in name order.
pub async fn list_tables(
    client: &Client,
    schema: Option<&str>,
) -> Result<Vec<(String, String)>, ConnectorError> {
    let rows = client
        .query(
            "SELECT n.nspname::text, c.relname::text
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r','p','v','m','f')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
               AND ($1::text IS NULL OR n.nspname = $1)
               AND NOT c.relispartition
             ORDER BY 1, 2",
            &[&schema],
        )
        .await
        .map_err(|e| pg_error(&e, "cannot list tables"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
