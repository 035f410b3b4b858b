-- Crash-safe filing of change requests (internal/projects/intents.go).
-- Before skydm writes a change request to the requester's repository it
-- records the intent here, with the record key it chose and the full
-- record, so that a crash between the repository write and the index
-- leaves something to reconcile: on start (and periodically) every pending
-- intent is checked against the repository (getRecord by rkey) and either
-- finished (indexed + DM queued, in one transaction with state → 'filed')
-- or, when the record is absent, dropped.
-- Times are Unix milliseconds.
CREATE TABLE change_request_intents (
    requester_did    TEXT NOT NULL,
    rkey             TEXT NOT NULL,       -- a TID chosen before the write
    collection       TEXT NOT NULL,       -- the record's NSID
    project_uri      TEXT NOT NULL,
    record           TEXT NOT NULL,       -- the record as written (JSON)
    requester_handle TEXT NOT NULL DEFAULT '', -- for the DM text only
    state            TEXT NOT NULL CHECK (state IN ('pending', 'filed')),
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (requester_did, rkey)
);

CREATE INDEX change_request_intents_pending ON change_request_intents (state, created_at);
