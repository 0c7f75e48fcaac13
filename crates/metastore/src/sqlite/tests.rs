use std::sync::Arc;

use rusqlite::Connection;

use super::migrate::MIGRATIONS;
use super::*;
use crate::test_util::TempDir;
use crate::testsuite;

/// Runs each contract function on a fresh in-memory store and on a fresh on-disk store.
macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod in_memory {
            $(
                #[tokio::test]
                async fn $name() {
                    let store = super::SqliteStore::open_in_memory().unwrap();
                    crate::testsuite::$name(&store).await;
                }
            )*
        }
        mod on_disk {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = crate::test_util::TempDir::new();
                    let store = super::SqliteStore::open(&dir.path().join("meta.sqlite")).unwrap();
                    crate::testsuite::$name(&store).await;
                }
            )*
        }
    };
}

contract_tests!(
    flows_crud,
    flow_pagination,
    profiles_crud,
    runs,
    timestamps,
    documents_round_trip,
    idempotency,
    connectors,
    api_keys,
    schedules,
    audit_log,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_use_in_memory() {
    testsuite::concurrent_use(Arc::new(SqliteStore::open_in_memory().unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_use_on_disk() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.path().join("meta.sqlite")).unwrap();
    testsuite::concurrent_use(Arc::new(store)).await;
}

fn raw(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.busy_timeout(BUSY_TIMEOUT).unwrap();
    conn
}

#[tokio::test]
async fn data_and_schema_survive_reopening() {
    let dir = TempDir::new();
    let path = dir.path().join("data/nested/meta.sqlite");
    let latest = MIGRATIONS.last().unwrap().version;
    {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version().await.unwrap(), latest);
        store
            .insert_flow(&testsuite::flow("kept", "Active"))
            .await
            .unwrap();
        store
            .insert_run(&testsuite::run("kept", "e1", 3, "Successful"))
            .await
            .unwrap();
        store
            .insert_profile(&testsuite::profile("p"))
            .await
            .unwrap();
        store
            .append_audit(&testsuite::audit("r1", "CreateFlow", 200))
            .await
            .unwrap();
    }
    for _ in 0..2 {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version().await.unwrap(), latest);
        assert_eq!(
            store.get_flow("kept").await.unwrap(),
            Some(testsuite::flow("kept", "Active"))
        );
        assert_eq!(
            store.get_run("kept", "e1").await.unwrap(),
            Some(testsuite::run("kept", "e1", 3, "Successful"))
        );
        assert_eq!(
            store.get_profile("p").await.unwrap(),
            Some(testsuite::profile("p"))
        );
        assert_eq!(store.list_audit(None, 10).await.unwrap().len(), 1);
    }
    let recorded: i64 = raw(&path)
        .query_row("SELECT COUNT(*) FROM schema_migrations", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(
        recorded,
        MIGRATIONS.len() as i64,
        "reopening must not re-apply migrations"
    );
}

#[tokio::test]
async fn on_disk_database_uses_wal_and_foreign_keys() {
    let dir = TempDir::new();
    let path = dir.path().join("meta.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    let mode: String = raw(&path)
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    let foreign_keys: bool = store
        .call(|conn| {
            conn.query_row("PRAGMA foreign_keys", [], |row| row.get(0))
                .map_err(backend)
        })
        .await
        .unwrap();
    assert!(foreign_keys);
}

#[tokio::test]
async fn audit_rows_cannot_be_updated_or_deleted() {
    let dir = TempDir::new();
    let path = dir.path().join("meta.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    let entry = testsuite::audit("req-1", "DeleteFlow", 200);
    store.append_audit(&entry).await.unwrap();

    let conn = raw(&path);
    let update = conn
        .execute("UPDATE audit_log SET status = 500", [])
        .unwrap_err();
    assert!(
        update.to_string().contains("append-only: UPDATE"),
        "{update}"
    );
    let delete = conn.execute("DELETE FROM audit_log", []).unwrap_err();
    assert!(
        delete.to_string().contains("append-only: DELETE"),
        "{delete}"
    );
    // The same holds on the store's own connection.
    let own = store
        .call(|conn| {
            conn.execute("UPDATE audit_log SET operation = 'x'", [])
                .map_err(backend)
        })
        .await
        .unwrap_err();
    assert!(own.to_string().contains("append-only"), "{own}");

    let listed = store.list_audit(None, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].1, entry);
}

#[tokio::test]
async fn corrupt_rows_are_reported_with_their_key() {
    let store = SqliteStore::open_in_memory().unwrap();
    store
        .insert_flow(&testsuite::flow("bad-json", "Active"))
        .await
        .unwrap();
    store
        .insert_flow(&testsuite::flow("bad-time", "Active"))
        .await
        .unwrap();
    store
        .call(|conn| {
            conn.execute(
                "UPDATE flows SET document = '{\"a\":' WHERE name = 'bad-json'",
                [],
            )
            .map_err(backend)?;
            conn.execute(
                "UPDATE flows SET created_at = 'yesterday' WHERE name = 'bad-time'",
                [],
            )
            .map_err(backend)?;
            conn.execute(
                "INSERT INTO audit_log (time, request_id, operation, status, request_parameters) \
                 VALUES (0, 'r', 'Op', 70000, '{}')",
                [],
            )
            .map_err(backend)
        })
        .await
        .unwrap();

    let error = store.get_flow("bad-json").await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)));
    assert!(
        error.to_string().contains("flow bad-json: column document"),
        "{error}"
    );
    let error = store.get_flow("bad-time").await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("flow bad-time: column created_at"),
        "{error}"
    );
    // One bad row fails the listing rather than silently disappearing from it.
    assert!(matches!(
        store.list_flows(None, 10).await,
        Err(StoreError::Corrupt(_))
    ));
    let error = store.list_audit(None, 10).await.unwrap_err();
    assert!(
        error.to_string().contains("70000 is not an HTTP status"),
        "{error}"
    );
}

#[tokio::test]
async fn out_of_range_timestamp_is_corrupt() {
    let store = SqliteStore::open_in_memory().unwrap();
    store
        .insert_flow(&testsuite::flow("f", "Active"))
        .await
        .unwrap();
    store
        .call(|conn| {
            conn.execute("UPDATE flows SET updated_at = ?1", [i64::MAX])
                .map_err(backend)
        })
        .await
        .unwrap();
    let error = store.get_flow("f").await.unwrap_err();
    assert!(
        error.to_string().contains("column updated_at: timestamp"),
        "{error}"
    );
}

#[test]
fn a_file_that_is_not_a_database_is_refused_with_its_path() {
    let dir = TempDir::new();
    let path = dir.path().join("meta.sqlite");
    std::fs::write(
        &path,
        b"this is certainly not a SQLite database, just some text.....",
    )
    .unwrap();
    let error = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(error, StoreError::Backend(_)));
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
}

#[test]
fn a_directory_in_the_way_is_refused_with_its_path() {
    let dir = TempDir::new();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"").unwrap();
    // The parent "directory" is a regular file.
    let path = blocker.join("meta.sqlite");
    let error = SqliteStore::open(&path).unwrap_err();
    assert!(
        error.to_string().contains(&blocker.display().to_string()),
        "{error}"
    );
}

#[test]
fn a_database_from_a_newer_build_is_refused() {
    let dir = TempDir::new();
    let path = dir.path().join("meta.sqlite");
    drop(SqliteStore::open(&path).unwrap());
    raw(&path)
        .execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (4242, 'future', 0)",
            [],
        )
        .unwrap();
    let error = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)));
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("4242"), "{message}");
}

#[tokio::test]
async fn a_panic_inside_a_call_does_not_wedge_the_store() {
    let store = SqliteStore::open_in_memory().unwrap();
    let error = store
        .call(|_| -> Result<(), StoreError> { panic!("boom") })
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Backend(_)));
    store
        .insert_flow(&testsuite::flow("after", "Active"))
        .await
        .unwrap();
    assert!(store.get_flow("after").await.unwrap().is_some());
}

#[test]
fn debug_shows_the_location_only() {
    let store = SqliteStore::open_in_memory().unwrap();
    assert_eq!(
        format!("{store:?}"),
        r#"SqliteStore { location: ":memory:", .. }"#
    );
}

#[tokio::test]
async fn in_memory_stores_are_independent() {
    let first = SqliteStore::open_in_memory().unwrap();
    let second = SqliteStore::open_in_memory().unwrap();
    first
        .insert_flow(&testsuite::flow("only-here", "Active"))
        .await
        .unwrap();
    assert_eq!(second.get_flow("only-here").await.unwrap(), None);
}
