-- Step-ups: a new consent that adds scopes to an active connection, kept
-- apart from the connection so that its current token keeps serving until
-- the new consent completes. scopes and added hold JSON lists.
CREATE TABLE step_ups (
    id            TEXT PRIMARY KEY,
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    scopes        TEXT,
    added         TEXT,
    return_url    TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL,
    status_reason TEXT NOT NULL DEFAULT '',
    nonce         TEXT NOT NULL DEFAULT '',
    pkce_verifier BLOB,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER,
    expires_at    INTEGER
) STRICT;
CREATE INDEX step_ups_connection_expires ON step_ups (connection_id, expires_at DESC);
