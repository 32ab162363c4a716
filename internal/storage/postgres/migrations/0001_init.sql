CREATE TABLE providers (
    id            text PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    config        bytea,
    client_secret bytea,
    created_at    timestamptz,
    updated_at    timestamptz
);

-- Every lookup name of a provider, its canonical name included: one primary
-- key keeps names and aliases unique together, even across transactions that
-- run at the same time.
CREATE TABLE provider_aliases (
    alias       text PRIMARY KEY CHECK (alias <> '' AND alias = lower(alias)),
    provider_id text NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
    canonical   boolean NOT NULL DEFAULT false
);
CREATE INDEX provider_aliases_provider_id ON provider_aliases (provider_id);

-- provider_id has no foreign key on purpose: connections outlive a deleted
-- provider for the audit trail.
CREATE TABLE connections (
    id               text PRIMARY KEY,
    workspace_id     text NOT NULL DEFAULT '',
    user_id          text NOT NULL DEFAULT '',
    client_name      text NOT NULL DEFAULT '',
    provider_id      text NOT NULL DEFAULT '',
    provider_name    text NOT NULL DEFAULT '',
    scopes           text[] NOT NULL DEFAULT '{}',
    return_url       text NOT NULL DEFAULT '',
    metadata         jsonb,
    status           text NOT NULL,
    status_reason    text NOT NULL DEFAULT '',
    nonce            text NOT NULL DEFAULT '',
    pkce_verifier    bytea,
    subject          text NOT NULL DEFAULT '',
    email            text NOT NULL DEFAULT '',
    issuer           text NOT NULL DEFAULT '',
    last_refresh_at  timestamptz,
    next_refresh_at  timestamptz,
    last_error_class text NOT NULL DEFAULT '',
    created_at       timestamptz,
    updated_at       timestamptz,
    expires_at       timestamptz,
    version          bigint NOT NULL DEFAULT 1
);
CREATE INDEX connections_workspace_id ON connections (workspace_id);
CREATE INDEX connections_status_expires_at ON connections (status, expires_at);

CREATE TABLE tokens (
    connection_id text PRIMARY KEY REFERENCES connections (id) ON DELETE CASCADE,
    ciphertext    bytea NOT NULL,
    expires_at    timestamptz,
    created_at    timestamptz,
    updated_at    timestamptz
);

CREATE TABLE audit_events (
    id            bigserial PRIMARY KEY,
    occurred_at   timestamptz NOT NULL,
    type          text NOT NULL,
    connection_id text NOT NULL DEFAULT '',
    provider_id   text NOT NULL DEFAULT '',
    actor         text NOT NULL DEFAULT '',
    client_ip     text NOT NULL DEFAULT '',
    user_agent    text NOT NULL DEFAULT '',
    detail        jsonb
);
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at DESC, id DESC);
CREATE INDEX audit_events_connection_id ON audit_events (connection_id, occurred_at DESC, id DESC);
