//! Schema migrations for the SQLite backend.
//!
//! Migrations are SQL files under `migrations/sqlite/NNNN_name.sql`, compiled in with
//! `include_str!` so a binary always carries the schema it expects. They are applied in version
//! order, all pending ones in one `BEGIN IMMEDIATE` transaction (two processes opening the same
//! file cannot both migrate it, and a failed migration leaves the database untouched), and
//! recorded in `schema_migrations`. Applied migrations must never be edited: add a new file.

use chrono::Utc;
use rusqlite::{Connection, TransactionBehavior, params};

use super::backend;
use crate::StoreError;

/// One migration: its version (the `NNNN` prefix), name and SQL.
#[derive(Debug, Clone, Copy)]
pub(super) struct Migration {
    pub(super) version: i64,
    pub(super) name: &'static str,
    pub(super) sql: &'static str,
}

/// Every migration, in version order. A test checks this matches the files on disk.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../../migrations/sqlite/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "flow_schedules",
        sql: include_str!("../../migrations/sqlite/0002_flow_schedules.sql"),
    },
];

const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
)";

/// Brings the schema up to date; returns the resulting version.
///
/// # Errors
///
/// [`StoreError::Corrupt`] if the database was migrated by a newer build or its recorded
/// history does not match this build's migrations; [`StoreError::Backend`] if SQL fails.
pub(super) fn migrate(conn: &mut Connection) -> Result<i64, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    tx.execute(CREATE_MIGRATIONS_TABLE, []).map_err(backend)?;

    let applied: Vec<(i64, String)> = {
        let mut stmt = tx
            .prepare("SELECT version, name FROM schema_migrations ORDER BY version")
            .map_err(backend)?;
        let rows = stmt
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)?
    };
    check_history(&applied)?;

    let current = applied.last().map_or(0, |(version, _)| *version);
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.execute_batch(migration.sql).map_err(|error| {
            StoreError::Backend(format!(
                "migration {:04}_{} failed: {error}",
                migration.version, migration.name
            ))
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![
                migration.version,
                migration.name,
                Utc::now().timestamp_micros()
            ],
        )
        .map_err(backend)?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applied metadata schema migration"
        );
    }
    tx.commit().map_err(backend)?;
    // `check_history` guarantees `current` is one of ours, so the latest known one is now applied.
    Ok(MIGRATIONS.last().map_or(current, |m| m.version))
}

/// The highest applied version, 0 for an empty database.
pub(super) fn current_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("SELECT MAX(version) FROM schema_migrations", [], |row| {
        row.get::<_, Option<i64>>(0)
    })
    .map(|version| version.unwrap_or(0))
    .map_err(backend)
}

/// Refuses a database whose applied migrations are not a prefix of ours: it was written by a
/// newer build (downgrade) or by a build with a different migration history.
fn check_history(applied: &[(i64, String)]) -> Result<(), StoreError> {
    for (index, (version, name)) in applied.iter().enumerate() {
        let Some(known) = MIGRATIONS.get(index) else {
            return Err(StoreError::Corrupt(format!(
                "database schema version {version} ({name}) is newer than this build supports \
                 (latest known: {})",
                MIGRATIONS.last().map_or(0, |m| m.version)
            )));
        };
        if known.version != *version || known.name != name {
            return Err(StoreError::Corrupt(format!(
                "database records migration {version:04}_{name} where this build expects \
                 {:04}_{}",
                known.version, known.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Every `migrations/sqlite/*.sql` file is registered, in order, with a matching name.
    #[test]
    fn registered_migrations_match_the_files() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".sql"))
            .collect();
        files.sort();
        let registered: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{:04}_{}.sql", m.version, m.name))
            .collect();
        assert_eq!(files, registered);
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(
                migration.version,
                index as i64 + 1,
                "versions must be contiguous"
            );
            let on_disk = std::fs::read_to_string(dir.join(&registered[index])).unwrap();
            assert_eq!(on_disk, migration.sql);
        }
    }

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        let latest = MIGRATIONS.last().unwrap().version;
        assert_eq!(migrate(&mut conn).unwrap(), latest);
        assert_eq!(migrate(&mut conn).unwrap(), latest);
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, MIGRATIONS.len() as i64);
        assert_eq!(current_version(&conn).unwrap(), latest);
    }

    #[test]
    fn newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)",
            [],
        )
        .unwrap();
        let error = migrate(&mut conn).unwrap_err();
        assert!(matches!(error, StoreError::Corrupt(_)));
        assert!(
            error.to_string().contains("9999 (future) is newer"),
            "{error}"
        );
    }

    #[test]
    fn renamed_history_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        conn.execute(
            "UPDATE schema_migrations SET name = 'other' WHERE version = 1",
            [],
        )
        .unwrap();
        let error = migrate(&mut conn).unwrap_err();
        assert!(error.to_string().contains("0001_other"), "{error}");
    }

    #[test]
    fn failed_migration_leaves_nothing_behind() {
        let mut conn = Connection::open_in_memory().unwrap();
        // A table the initial migration wants to create makes it fail half-way.
        conn.execute_batch("CREATE TABLE runs (x INTEGER)").unwrap();
        let error = migrate(&mut conn).unwrap_err();
        assert!(
            error.to_string().contains("migration 0001_initial failed"),
            "{error}"
        );
        let flows_tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('flows', 'schema_migrations')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            flows_tables, 0,
            "the transaction must have been rolled back"
        );
    }
}
