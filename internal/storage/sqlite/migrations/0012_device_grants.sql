-- Device authorization grants (RFC 8628) the broker polls for, one per
-- pending connection. device_code is vault-sealed; next_poll_at is both the
-- schedule and the claim (a claimer moves it to its lease).
CREATE TABLE device_grants (
    connection_id    TEXT PRIMARY KEY REFERENCES connections (id) ON DELETE CASCADE,
    provider_id      TEXT NOT NULL,
    device_code      BLOB NOT NULL,
    interval_seconds INTEGER NOT NULL,
    next_poll_at     INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    polls            INTEGER NOT NULL DEFAULT 0,
    last_polled_at   INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX device_grants_due ON device_grants (next_poll_at, connection_id);
