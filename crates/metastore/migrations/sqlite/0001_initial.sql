-- Initial schema. Timestamps are INTEGER microseconds since the Unix epoch (UTC), documents are
-- JSON text owned by the server. Names compare with SQLite's default BINARY collation, i.e. in
-- UTF-8 byte order, which is the order every list operation pages in.

CREATE TABLE flows (
    name         TEXT    NOT NULL PRIMARY KEY,
    arn          TEXT    NOT NULL UNIQUE,
    status       TEXT    NOT NULL,
    trigger_type TEXT    NOT NULL,
    document     TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- The scheduler asks for every flow in a given status (e.g. all Active flows at start-up).
CREATE INDEX flows_by_status ON flows (status, name);

CREATE TABLE connector_profiles (
    name               TEXT    NOT NULL PRIMARY KEY,
    arn                TEXT    NOT NULL UNIQUE,
    connector_type     TEXT    NOT NULL,
    connector_label    TEXT,
    document           TEXT    NOT NULL,
    sealed_credentials BLOB    NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);

CREATE TABLE runs (
    flow_name    TEXT    NOT NULL REFERENCES flows (name) ON DELETE CASCADE,
    execution_id TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    started_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    document     TEXT    NOT NULL,
    PRIMARY KEY (flow_name, execution_id)
);

-- Execution records are listed newest first per flow, paged by (started_at, execution_id).
CREATE INDEX runs_by_flow_started ON runs (flow_name, started_at DESC, execution_id DESC);
-- Restart recovery looks for runs left InProgress / CancelStarted.
CREATE INDEX runs_by_status ON runs (status, started_at);

CREATE TABLE idempotency_tokens (
    operation    TEXT    NOT NULL,
    token        TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    response     TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (operation, token)
);

-- Expired tokens are purged by age.
CREATE INDEX idempotency_tokens_by_created ON idempotency_tokens (created_at);

CREATE TABLE registered_connectors (
    label      TEXT    NOT NULL PRIMARY KEY,
    arn        TEXT    NOT NULL UNIQUE,
    document   TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
    access_key_id TEXT    NOT NULL PRIMARY KEY,
    sealed_secret BLOB    NOT NULL,
    description   TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    disabled      INTEGER NOT NULL CHECK (disabled IN (0, 1))
);

-- AUTOINCREMENT so that an id is never reused: readers page through the log by id.
CREATE TABLE audit_log (
    id                 INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    time               INTEGER NOT NULL,
    request_id         TEXT    NOT NULL,
    operation          TEXT    NOT NULL,
    access_key_id      TEXT,
    source_ip          TEXT,
    user_agent         TEXT,
    status             INTEGER NOT NULL,
    error_code         TEXT,
    resource           TEXT,
    request_parameters TEXT    NOT NULL
);

-- The audit log is evidence: rows can be added, never changed or removed.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE is not allowed');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: DELETE is not allowed');
END;
