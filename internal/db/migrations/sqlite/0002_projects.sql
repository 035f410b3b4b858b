-- Projects, change requests (internal/projects) and the DM outbox
-- (internal/notify). The records themselves live in their authors' atproto
-- repositories; these tables are skydm's index of them.
-- Times are Unix milliseconds.

CREATE TABLE projects (
    uri         TEXT PRIMARY KEY,          -- at://<owner_did>/<collection>/<rkey>
    cid         TEXT NOT NULL,             -- CID of the record version indexed
    owner_did   TEXT NOT NULL,
    rkey        TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,          -- the record's createdAt
    indexed_at  INTEGER NOT NULL,
    UNIQUE (owner_did, rkey)
) STRICT;

CREATE INDEX projects_created ON projects (created_at, uri);
CREATE INDEX projects_owner_created ON projects (owner_did, created_at);

CREATE TABLE change_requests (
    uri           TEXT PRIMARY KEY,        -- at://<requester_did>/<collection>/<rkey>
    cid           TEXT NOT NULL,
    requester_did TEXT NOT NULL,
    rkey          TEXT NOT NULL,
    project_uri   TEXT NOT NULL REFERENCES projects (uri) ON DELETE CASCADE,
    project_cid   TEXT NOT NULL,           -- the strongRef's CID
    owner_did     TEXT NOT NULL,           -- the project's owner (denormalised for the incoming list)
    title         TEXT NOT NULL,
    body          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,        -- the record's createdAt
    indexed_at    INTEGER NOT NULL,
    state         TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed')),
    UNIQUE (requester_did, rkey)
) STRICT;

CREATE INDEX change_requests_project ON change_requests (project_uri, created_at);
CREATE INDEX change_requests_requester ON change_requests (requester_did, created_at);
CREATE INDEX change_requests_owner ON change_requests (owner_did, created_at);

-- One row per DM to deliver. Idempotency key: (subject_uri, recipient_did),
-- i.e. change request × recipient. The outbox does not reference
-- change_requests so that other kinds of notice can use it later.
--
-- States: queued → sending (leased) → sent | not_delivered | parked_auth |
-- given_up; queued again after a transient failure, a Retry or a Resume.
-- While leased, next_attempt_at = lease_until, so an expired lease is simply
-- a due row (one index serves both).
CREATE TABLE outbox (
    id                INTEGER PRIMARY KEY,
    kind              TEXT NOT NULL DEFAULT 'change_request',
    subject_uri       TEXT NOT NULL,       -- the change request's URI
    recipient_did     TEXT NOT NULL,       -- the project's owner
    sender_did        TEXT NOT NULL,       -- the requester, or the configured notifier account
    requester_did     TEXT NOT NULL,       -- may Retry (as may the recipient)
    text              TEXT NOT NULL,       -- the DM, marker included
    link_url          TEXT NOT NULL,
    link_start        INTEGER NOT NULL,    -- UTF-8 byte offsets of the link in text
    link_end          INTEGER NOT NULL,
    marker            TEXT NOT NULL,       -- e.g. "(skydm #k3f9q2zd)", unique per delivery
    state             TEXT NOT NULL CHECK (state IN
                        ('queued', 'sending', 'sent', 'not_delivered', 'parked_auth', 'given_up')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   INTEGER NOT NULL,
    lease_owner       TEXT,
    lease_until       INTEGER,
    send_started_at   INTEGER,             -- set just before sendMessage: the DM may exist from then on
    reason_code       TEXT NOT NULL DEFAULT '',  -- machine reason, e.g. NotFollowedBySender
    last_error_reason TEXT NOT NULL DEFAULT '',  -- human reason
    fix               TEXT NOT NULL DEFAULT '',  -- human: what would let it through
    convo_id          TEXT NOT NULL DEFAULT '',
    sent_message_id   TEXT NOT NULL DEFAULT '',
    sent_at           INTEGER,
    created_at        INTEGER NOT NULL,
    queued_at         INTEGER NOT NULL,    -- start of the current delivery window (enqueue, Retry, Resume)
    updated_at        INTEGER NOT NULL,
    UNIQUE (subject_uri, recipient_did)
) STRICT;

CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_sender_state ON outbox (sender_did, state);
