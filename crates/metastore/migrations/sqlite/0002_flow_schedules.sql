-- What the scheduler and the event triggers persist per scheduled or event-triggered flow, so
-- that schedules and high-water marks survive restarts. Each column is written on its own (the
-- scheduler, the activation and the event poller update different columns); the row goes with
-- its flow.
CREATE TABLE flow_schedules (
    flow_name    TEXT    NOT NULL PRIMARY KEY REFERENCES flows (name) ON DELETE CASCADE,
    -- When StartFlow last activated the flow (microseconds since the epoch), if ever.
    activated_at INTEGER,
    -- The scheduler's state (last tick, watermark, consecutive failures) as JSON.
    state        TEXT,
    -- The event trigger's high-water mark as JSON.
    event_mark   TEXT,
    updated_at   INTEGER NOT NULL
);
