-- Device authorization grants (RFC 8628) the broker polls for, one per
-- pending connection. device_code is vault-sealed; next_poll_at is both the
-- schedule and the claim (a claimer moves it to its lease).
CREATE TABLE device_grants (
    connection_id    text PRIMARY KEY REFERENCES connections (id) ON DELETE CASCADE,
    provider_id      text NOT NULL,
    device_code      bytea NOT NULL,
    interval_seconds integer NOT NULL,
    next_poll_at     timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    polls            integer NOT NULL DEFAULT 0,
    last_polled_at   timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX device_grants_due ON device_grants (next_poll_at, connection_id);
