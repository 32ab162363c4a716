-- Lifecycle webhooks: endpoints, the outbox of connection lifecycle events
-- (written in the transaction of the state change) and one delivery per
-- event and endpoint. Events and deliveries outlive the connection on
-- purpose: a deletion is itself an event. events and scopes hold JSON lists.
CREATE TABLE webhook_endpoints (
    id                    TEXT PRIMARY KEY,
    owner                 TEXT NOT NULL,
    url                   TEXT NOT NULL,
    events                TEXT,
    secret                BLOB NOT NULL,
    previous_secret       BLOB,
    previous_secret_until INTEGER,
    enabled               INTEGER NOT NULL,
    disabled_reason       TEXT NOT NULL DEFAULT '',
    failing_since         INTEGER,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
) STRICT;
CREATE INDEX webhook_endpoints_owner ON webhook_endpoints (owner, created_at);

CREATE TABLE webhook_events (
    id                    TEXT PRIMARY KEY,
    connection_id         TEXT NOT NULL,
    seq                   INTEGER NOT NULL,
    type                  TEXT NOT NULL,
    workspace_id          TEXT NOT NULL,
    client_name           TEXT NOT NULL,
    user_id               TEXT NOT NULL,
    provider_name         TEXT NOT NULL,
    status                TEXT NOT NULL,
    reason                TEXT NOT NULL,
    scopes                TEXT,
    occurred_at           INTEGER NOT NULL,
    connection_created_at INTEGER,
    connection_updated_at INTEGER,
    UNIQUE (connection_id, seq)
) STRICT;

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    connection_id    TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    lease_until      INTEGER,
    lease_owner      TEXT NOT NULL DEFAULT '',
    last_attempt_at  INTEGER,
    last_status_code INTEGER NOT NULL DEFAULT 0,
    last_latency_ms  INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT NOT NULL DEFAULT '',
    delivered_at     INTEGER,
    created_at       INTEGER NOT NULL,
    UNIQUE (endpoint_id, event_id)
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, connection_id, seq) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at DESC);
