//! Metadata store: flows, profiles, runs, tags, idempotency tokens; SQLite today, Postgres-ready trait.
