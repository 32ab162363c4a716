CREATE TABLE providers (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    config        BLOB,
    client_secret BLOB,
    created_at    INTEGER,
    updated_at    INTEGER
) STRICT;

-- Every lookup name of a provider, its canonical name included: one primary
-- key keeps names and aliases unique together.
CREATE TABLE provider_aliases (
    alias       TEXT PRIMARY KEY CHECK (alias <> '' AND alias = lower(alias)),
    provider_id TEXT NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
    canonical   INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX provider_aliases_provider_id ON provider_aliases (provider_id);

-- provider_id has no foreign key on purpose: connections outlive a deleted
-- provider for the audit trail. scopes and metadata hold JSON.
CREATE TABLE connections (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL DEFAULT '',
    user_id          TEXT NOT NULL DEFAULT '',
    client_name      TEXT NOT NULL DEFAULT '',
    provider_id      TEXT NOT NULL DEFAULT '',
    provider_name    TEXT NOT NULL DEFAULT '',
    scopes           TEXT,
    return_url       TEXT NOT NULL DEFAULT '',
    metadata         TEXT,
    status           TEXT NOT NULL,
    status_reason    TEXT NOT NULL DEFAULT '',
    nonce            TEXT NOT NULL DEFAULT '',
    pkce_verifier    BLOB,
    subject          TEXT NOT NULL DEFAULT '',
    email            TEXT NOT NULL DEFAULT '',
    issuer           TEXT NOT NULL DEFAULT '',
    last_refresh_at  INTEGER,
    next_refresh_at  INTEGER,
    last_error_class TEXT NOT NULL DEFAULT '',
    created_at       INTEGER,
    updated_at       INTEGER,
    expires_at       INTEGER,
    version          INTEGER NOT NULL DEFAULT 1
) STRICT;
CREATE INDEX connections_workspace_id ON connections (workspace_id);
CREATE INDEX connections_status_expires_at ON connections (status, expires_at);

CREATE TABLE tokens (
    connection_id TEXT PRIMARY KEY REFERENCES connections (id) ON DELETE CASCADE,
    ciphertext    BLOB NOT NULL,
    expires_at    INTEGER,
    created_at    INTEGER,
    updated_at    INTEGER
) STRICT;

-- AUTOINCREMENT so that ids are never reused, even after the newest rows are
-- gone.
CREATE TABLE audit_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at   INTEGER NOT NULL,
    type          TEXT NOT NULL,
    connection_id TEXT NOT NULL DEFAULT '',
    provider_id   TEXT NOT NULL DEFAULT '',
    actor         TEXT NOT NULL DEFAULT '',
    client_ip     TEXT NOT NULL DEFAULT '',
    user_agent    TEXT NOT NULL DEFAULT '',
    detail        TEXT
) STRICT;
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at DESC, id DESC);
CREATE INDEX audit_events_connection_id ON audit_events (connection_id, occurred_at DESC, id DESC);
