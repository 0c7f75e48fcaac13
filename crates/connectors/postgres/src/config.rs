//! Profile, source and destination settings of the Postgres connector.
//!
//! A profile is a `CustomConnector` profile labelled `Postgres`:
//!
//! - `connectorProfileProperties.CustomConnector.profileProperties`:
//!   - `host` (required): server name or address; also the name checked against the server
//!     certificate under `sslmode` `verify-full`.
//!   - `hostaddr` (optional): an IP address to connect to instead of resolving `host`, as in
//!     libpq; `host` is still the name the certificate must carry.
//!   - `port` (default `5432`), `database` (required).
//!   - `sslmode`, as in libpq: `disable` (plain TCP), `prefer` (the default: TLS when the
//!     server offers it, else plain; the certificate is not checked), `require` (TLS or fail;
//!     the certificate is not checked unless `sslrootcert` is given, which makes it
//!     `verify-ca`), `verify-ca` (TLS with a certificate signed by a trusted CA) and
//!     `verify-full` (`verify-ca`, and the certificate must name `host`). `allow` is refused.
//!   - `sslrootcert` (optional): the CA certificate(s) to trust for `verify-ca` and
//!     `verify-full`, e.g. the Amazon RDS root CA of the region, as the base64 DER of each
//!     certificate (a PEM body without header lines and line breaks; several separated by
//!     commas), which fits the API's rule of property values without whitespace and of at
//!     most 2048 characters, or as PEM text. Not a file path. Without it the system's
//!     trusted CAs are used.
//! - `connectorProfileCredentials.CustomConnector`: `authenticationType: BASIC` with
//!   `basic.username` and `basic.password`.
//!
//! Flows name a table as `entityName` `schema.table` (or `table`, meaning `public.table`).
//! The source reads `customProperties.parallelism` (1 to 16, default 1): the number of
//! connections that scan page ranges of the table in one shared snapshot.

use std::fmt;
use std::net::IpAddr;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use sluice_api_model as model;
use sluice_connector_api::{ConnectorError, Profile};
use sluice_types::Sensitive;

/// Default server port.
pub const DEFAULT_PORT: u16 = 5432;

/// Most connections one source read may open.
pub const MAX_PARALLELISM: usize = 16;

/// How a connection uses TLS, with libpq's `sslmode` names and meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, plain TCP otherwise; the certificate is not checked.
    Prefer,
    /// TLS or fail; the certificate is not checked.
    Require,
    /// TLS with a certificate chain ending at a trusted CA; the host name is not checked.
    VerifyCa,
    /// `VerifyCa`, and the certificate must be valid for the host name.
    VerifyFull,
}

impl SslMode {
    /// The libpq name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to connect to one database.
#[derive(Clone)]
pub struct ConnectionConfig {
    /// Host name or address; the name TLS verification checks.
    pub host: String,
    /// Address to connect to instead of resolving `host`.
    pub hostaddr: Option<IpAddr>,
    /// TCP port.
    pub port: u16,
    /// Database name.
    pub database: String,
    /// Role to log in as.
    pub user: String,
    /// Password of `user`.
    pub password: Sensitive<String>,
    /// TLS mode.
    pub ssl_mode: SslMode,
    /// CA certificates trusted instead of the system's (`sslrootcert`), DER encoded.
    pub root_certs: Vec<CertificateDer<'static>>,
}

impl fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionConfig")
            .field("host", &self.host)
            .field("hostaddr", &self.hostaddr)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("ssl_mode", &self.ssl_mode)
            .field("root_certs", &self.root_certs.len())
            .finish_non_exhaustive()
    }
}

impl ConnectionConfig {
    /// Reads the connection settings of a `Postgres` profile.
    pub fn from_profile(profile: &Profile) -> Result<Self, ConnectorError> {
        let props = profile
            .properties
            .pointer("/CustomConnector/profileProperties")
            .and_then(|v| v.as_object())
            .ok_or_else(|| {
                ConnectorError::invalid_config(format!(
                    "connector profile {} has no \
                     connectorProfileProperties.CustomConnector.profileProperties",
                    profile.name
                ))
            })?;
        let prop = |key: &str| {
            props
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let required = |key: &str| {
            prop(key).map(str::to_owned).ok_or_else(|| {
                ConnectorError::invalid_config(format!(
                    "connector profile {}: profileProperties.{key} is required",
                    profile.name
                ))
            })
        };
        let host = required("host")?;
        let database = required("database")?;
        let port = match prop("port") {
            None => DEFAULT_PORT,
            Some(raw) => raw.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                ConnectorError::invalid_config(format!(
                    "connector profile {}: profileProperties.port must be a port number \
                     (1-65535), not {raw:?}",
                    profile.name
                ))
            })?,
        };
        let hostaddr = match prop("hostaddr") {
            None => None,
            Some(raw) => Some(raw.parse::<IpAddr>().map_err(|_| {
                ConnectorError::invalid_config(format!(
                    "connector profile {}: profileProperties.hostaddr must be an IP address, \
                     not {raw:?}",
                    profile.name
                ))
            })?),
        };
        let ssl_mode = match prop("sslmode").unwrap_or("prefer") {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            "allow" => {
                return Err(ConnectorError::unsupported(format!(
                    "connector profile {}: profileProperties.sslmode allow is not supported; \
                     use prefer (TLS when the server offers it) or disable",
                    profile.name
                )));
            }
            other => {
                return Err(ConnectorError::invalid_config(format!(
                    "connector profile {}: profileProperties.sslmode must be one of disable, \
                     prefer, require, verify-ca, verify-full, not {other:?}",
                    profile.name
                )));
            }
        };
        let root_certs = match props.get("sslrootcert") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::String(text)) if text.trim().is_empty() => Vec::new(),
            Some(serde_json::Value::String(text)) => parse_root_certs(text).map_err(|reason| {
                ConnectorError::invalid_config(format!(
                    "connector profile {}: profileProperties.sslrootcert {reason}",
                    profile.name
                ))
            })?,
            Some(_) => {
                return Err(ConnectorError::invalid_config(format!(
                    "connector profile {}: profileProperties.sslrootcert must be a string",
                    profile.name
                )));
            }
        };
        // As in libpq, a CA given to `require` makes it check the chain.
        let ssl_mode = if ssl_mode == SslMode::Require && !root_certs.is_empty() {
            SslMode::VerifyCa
        } else {
            ssl_mode
        };
        let creds = profile.credentials.expose().get("CustomConnector");
        let auth = creds
            .and_then(|c| c.get("authenticationType"))
            .and_then(|v| v.as_str());
        if auth != Some("BASIC") {
            return Err(ConnectorError::invalid_config(format!(
                "connector profile {}: connectorProfileCredentials.CustomConnector must use \
                 authenticationType BASIC with basic.username and basic.password",
                profile.name
            )));
        }
        let basic = |key: &str| {
            creds
                .and_then(|c| c.pointer(&format!("/basic/{key}")))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .ok_or_else(|| {
                    ConnectorError::invalid_config(format!(
                        "connector profile {}: connectorProfileCredentials.CustomConnector.\
                         basic.{key} is required",
                        profile.name
                    ))
                })
        };
        Ok(Self {
            host,
            hostaddr,
            port,
            database,
            user: basic("username")?,
            password: Sensitive::new(basic("password")?),
            ssl_mode,
            root_certs,
        })
    }
}

/// Parses `sslrootcert`: PEM text with one or more `CERTIFICATE` blocks, or, because AppFlow's
/// API refuses whitespace in profile property values, the base64 of each certificate's DER
/// form (a PEM body without its header lines and line breaks), several separated by commas.
/// The error completes a sentence starting with the property name.
pub fn parse_root_certs(value: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    use base64::Engine as _;
    let value = value.trim();
    let certs = if value.contains("-----BEGIN") {
        CertificateDer::pem_slice_iter(value.as_bytes())
            .enumerate()
            .map(|(i, cert)| {
                cert.map_err(|e| {
                    format!("has an unreadable PEM certificate (number {}): {e}", i + 1)
                })
            })
            .collect::<Result<Vec<_>, _>>()?
    } else {
        let base64 = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        value
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .enumerate()
            .map(|(i, part)| {
                base64.decode(part).map(CertificateDer::from).map_err(|e| {
                    format!(
                        "must hold CA certificates as PEM text or as base64 DER \
                         (comma-separated), not a file name or other text: part {} is not \
                         base64 ({e})",
                        i + 1
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    if certs.is_empty() {
        return Err("holds no CERTIFICATE block".to_owned());
    }
    // Every certificate must parse as X.509, so a damaged one fails here rather than at
    // connection time.
    let mut store = rustls::RootCertStore::empty();
    for (i, cert) in certs.iter().enumerate() {
        store
            .add(cert.clone())
            .map_err(|e| format!("has an invalid certificate (number {}): {e}", i + 1))?;
    }
    Ok(certs)
}

/// A table name, `schema.table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    /// Schema (namespace).
    pub schema: String,
    /// Table.
    pub table: String,
}

impl TableName {
    /// Parses `schema.table` or `table` (schema `public`). Names are taken literally (no
    /// case folding), so `Public.Users` names the mixed-case table.
    pub fn parse(entity: &str, field: &str) -> Result<Self, ConnectorError> {
        let entity = entity.trim();
        let (schema, table) = match entity.split_once('.') {
            Some((schema, table)) => (schema, table),
            None => ("public", entity),
        };
        if schema.is_empty() || table.is_empty() || table.contains('.') {
            return Err(ConnectorError::invalid_config(format!(
                "{field} must be a table as schema.table (or table, for schema public), not \
                 {entity:?}"
            )));
        }
        if entity.contains('\0') {
            return Err(ConnectorError::invalid_config(format!(
                "{field} must not contain a NUL character"
            )));
        }
        Ok(Self {
            schema: schema.to_owned(),
            table: table.to_owned(),
        })
    }

    /// The name quoted for SQL.
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.table))
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

/// Quotes an identifier (`"a""b"`).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal (`'it''s'`); the session has `standard_conforming_strings` on.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Settings of one source read.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Table to read.
    pub table: TableName,
    /// Connections scanning the table at once.
    pub parallelism: usize,
}

impl SourceConfig {
    /// Reads `sourceConnectorProperties.CustomConnector`.
    pub fn from_flow(source: &model::SourceFlowConfig) -> Result<Self, ConnectorError> {
        let props = source
            .source_connector_properties
            .custom_connector
            .as_ref()
            .ok_or_else(|| {
                ConnectorError::invalid_config(
                    "sourceConnectorProperties.CustomConnector is required for Postgres",
                )
            })?;
        let table = TableName::parse(
            &props.entity_name,
            "sourceConnectorProperties.CustomConnector.entityName",
        )?;
        let parallelism = match props
            .custom_properties
            .as_ref()
            .and_then(|p| p.get("parallelism"))
        {
            None => 1,
            Some(raw) => raw
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PARALLELISM).contains(n))
                .ok_or_else(|| {
                    ConnectorError::invalid_config(format!(
                        "sourceConnectorProperties.CustomConnector.customProperties.parallelism \
                         must be a whole number from 1 to {MAX_PARALLELISM}, not {raw:?}"
                    ))
                })?,
        };
        Ok(Self { table, parallelism })
    }
}

/// How destination rows are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Append every row.
    Insert,
    /// Update rows whose id fields match, insert the others.
    Upsert,
    /// Update rows whose id fields match; others are ignored.
    Update,
    /// Delete rows whose id fields match.
    Delete,
}

/// Settings of one destination run.
#[derive(Debug, Clone)]
pub struct DestinationConfig {
    /// Target table.
    pub table: TableName,
    /// What to do with each row.
    pub mode: WriteMode,
    /// Match fields for upsert, update and delete.
    pub id_fields: Vec<String>,
    /// Stop at the first rejected row (otherwise count and skip it).
    pub fail_on_first_error: bool,
}

impl DestinationConfig {
    /// Reads `destinationConnectorProperties.CustomConnector`.
    pub fn from_flow(destination: &model::DestinationFlowConfig) -> Result<Self, ConnectorError> {
        const FIELD: &str = "destinationConnectorProperties.CustomConnector";
        let props = destination
            .destination_connector_properties
            .custom_connector
            .as_ref()
            .ok_or_else(|| {
                ConnectorError::invalid_config(format!("{FIELD} is required for Postgres"))
            })?;
        let table = TableName::parse(&props.entity_name, &format!("{FIELD}.entityName"))?;
        let mode = match props.write_operation_type {
            None | Some(model::WriteOperationType::Insert) => WriteMode::Insert,
            Some(model::WriteOperationType::Upsert) => WriteMode::Upsert,
            Some(model::WriteOperationType::Update) => WriteMode::Update,
            Some(model::WriteOperationType::Delete) => WriteMode::Delete,
        };
        let id_fields: Vec<String> = props.id_field_names.clone().unwrap_or_default();
        if mode != WriteMode::Insert && id_fields.is_empty() {
            return Err(ConnectorError::invalid_config(format!(
                "{FIELD}.idFieldNames is required when writeOperationType is {}",
                props
                    .write_operation_type
                    .map(|op| op.as_str())
                    .unwrap_or("INSERT")
            )));
        }
        let fail_on_first_error = props
            .error_handling_config
            .as_ref()
            .and_then(|c| c.fail_on_first_destination_error)
            .unwrap_or(true);
        Ok(Self {
            table,
            mode,
            id_fields,
            fail_on_first_error,
        })
    }
}
