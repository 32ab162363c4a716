-- Grants still to be revoked at their provider after their connection was
-- deleted: retried with backoff by any broker until give_up_at. sealed
-- holds the vault-sealed tokens to revoke.
CREATE TABLE revocations (
    id               text PRIMARY KEY,
    connection_id    text NOT NULL DEFAULT '',
    provider_id      text NOT NULL,
    sealed           bytea NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    give_up_at       timestamptz NOT NULL,
    last_error_class text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX revocations_due ON revocations (next_attempt_at, id);
