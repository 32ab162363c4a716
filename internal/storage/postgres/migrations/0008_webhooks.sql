-- Lifecycle webhooks: endpoints, the outbox of connection lifecycle events
-- (written in the transaction of the state change) and one delivery per
-- event and endpoint. Events and deliveries outlive the connection on
-- purpose: a deletion is itself an event.
CREATE TABLE webhook_endpoints (
    id                    text PRIMARY KEY,
    owner                 text NOT NULL,
    url                   text NOT NULL,
    events                text[] NOT NULL,
    secret                bytea NOT NULL,
    previous_secret       bytea,
    previous_secret_until timestamptz,
    enabled               boolean NOT NULL,
    disabled_reason       text NOT NULL DEFAULT '',
    failing_since         timestamptz,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL
);
CREATE INDEX webhook_endpoints_owner ON webhook_endpoints (owner, created_at);

CREATE TABLE webhook_events (
    id                    text PRIMARY KEY,
    connection_id         text NOT NULL,
    seq                   bigint NOT NULL,
    type                  text NOT NULL,
    workspace_id          text NOT NULL,
    client_name           text NOT NULL,
    user_id               text NOT NULL,
    provider_name         text NOT NULL,
    status                text NOT NULL,
    reason                text NOT NULL,
    scopes                text[] NOT NULL,
    occurred_at           timestamptz NOT NULL,
    connection_created_at timestamptz,
    connection_updated_at timestamptz,
    UNIQUE (connection_id, seq)
);

CREATE TABLE webhook_deliveries (
    id               text PRIMARY KEY,
    endpoint_id      text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id         text NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    connection_id    text NOT NULL,
    seq              bigint NOT NULL,
    state            text NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    lease_until      timestamptz,
    lease_owner      text NOT NULL DEFAULT '',
    last_attempt_at  timestamptz,
    last_status_code integer NOT NULL DEFAULT 0,
    last_latency_ms  bigint NOT NULL DEFAULT 0,
    last_error       text NOT NULL DEFAULT '',
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, connection_id, seq) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at DESC);
