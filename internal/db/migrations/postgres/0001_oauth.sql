-- OAuth client state (internal/oauth). Secrets (PKCE verifier, tokens, DPoP
-- private keys) are stored AES-GCM encrypted: 1 version byte, 12-byte nonce,
-- ciphertext+tag, with the row's identity as additional data.
-- Times are Unix milliseconds.

CREATE TABLE oauth_auth_requests (
    state                TEXT PRIMARY KEY,
    auth_server_url      TEXT NOT NULL,
    account_did          TEXT,
    scopes               TEXT NOT NULL,
    request_uri          TEXT NOT NULL,
    token_endpoint       TEXT NOT NULL,
    revocation_endpoint  TEXT NOT NULL DEFAULT '',
    dpop_authserver_nonce TEXT NOT NULL DEFAULT '',
    pkce_verifier        BYTEA NOT NULL,
    dpop_private_key     BYTEA NOT NULL,
    created_at           BIGINT NOT NULL,
    expires_at           BIGINT NOT NULL,
    consumed_at          BIGINT
);

CREATE INDEX oauth_auth_requests_expires_at ON oauth_auth_requests (expires_at);

CREATE TABLE oauth_sessions (
    account_did           TEXT NOT NULL,
    session_id            TEXT NOT NULL,
    host_url              TEXT NOT NULL,
    auth_server_url       TEXT NOT NULL,
    token_endpoint        TEXT NOT NULL,
    revocation_endpoint   TEXT NOT NULL DEFAULT '',
    scopes                TEXT NOT NULL,
    access_token          BYTEA NOT NULL,
    refresh_token         BYTEA NOT NULL,
    dpop_authserver_nonce TEXT NOT NULL DEFAULT '',
    dpop_host_nonce       TEXT NOT NULL DEFAULT '',
    dpop_private_key      BYTEA NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    expires_at            BIGINT NOT NULL,
    PRIMARY KEY (account_did, session_id)
);

CREATE INDEX oauth_sessions_expires_at ON oauth_sessions (expires_at);
