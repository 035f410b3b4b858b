-- One getLog poller per user across instances (internal/livepg).
-- live_leases: the instance (holder) that polls a user until expires_at,
-- renewed every tick, and the getLog cursor after its last published
-- answer, where other instances' new pages start (NULL until the current
-- holder's first answer; a new holder continues from its own cursor, the
-- last it read from here).
-- live_events: the entries the holder published, read by the other
-- instances for their pages (after a NOTIFY on skydm_live), pruned after
-- a few minutes. Revs compare bytewise (COLLATE "C"), as in Go.
CREATE TABLE live_leases (
    user_did   TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    log_cursor TEXT COLLATE "C"
);

CREATE TABLE live_events (
    user_did   TEXT NOT NULL,
    rev        TEXT COLLATE "C" NOT NULL,
    payload    TEXT NOT NULL,                        -- the log entry as JSON, with $type
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_did, rev)
);

CREATE INDEX live_events_created ON live_events (created_at);
