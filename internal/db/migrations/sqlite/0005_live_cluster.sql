-- One getLog poller per user across instances (internal/livepg): used on
-- Postgres only, where several instances share the database. A SQLite
-- database has one instance, which polls for itself; the tables are here
-- to keep the two migration sets alike.
CREATE TABLE live_leases (
    user_did   TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    log_cursor TEXT
);

CREATE TABLE live_events (
    user_did   TEXT NOT NULL,
    rev        TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_did, rev)
);

CREATE INDEX live_events_created ON live_events (created_at);
