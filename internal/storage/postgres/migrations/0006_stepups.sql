-- Step-ups: a new consent that adds scopes to an active connection, kept
-- apart from the connection so that its current token keeps serving until
-- the new consent completes.
CREATE TABLE step_ups (
    id            text PRIMARY KEY,
    connection_id text NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    scopes        text[] NOT NULL DEFAULT '{}',
    added         text[] NOT NULL DEFAULT '{}',
    return_url    text NOT NULL DEFAULT '',
    status        text NOT NULL,
    status_reason text NOT NULL DEFAULT '',
    nonce         text NOT NULL DEFAULT '',
    pkce_verifier bytea,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz,
    expires_at    timestamptz
);
CREATE INDEX step_ups_connection_expires ON step_ups (connection_id, expires_at DESC);
