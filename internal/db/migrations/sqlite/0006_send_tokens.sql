-- The spent one-time tokens of the send form (internal/sendtokens).
-- A row is inserted when a send claims its token (INSERT … ON CONFLICT DO
-- NOTHING: of instances claiming one token at once, one inserts it and
-- sends), updated to 'sent' with the message id when the send succeeded,
-- and deleted when it failed (the form may then be sent again). A replay
-- finds the row and is answered from it. Rows are collected once the
-- token has expired (expires_at, Unix milliseconds).
CREATE TABLE send_tokens (
    nonce      BLOB NOT NULL PRIMARY KEY, -- the token's random nonce
    state      TEXT NOT NULL CHECK (state IN ('sending', 'sent')),
    message_id TEXT NOT NULL DEFAULT '',
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX send_tokens_expires ON send_tokens (expires_at);
