-- Grants still to be revoked at their provider after their connection was
-- deleted: retried with backoff by any broker until give_up_at. sealed
-- holds the vault-sealed tokens to revoke.
CREATE TABLE revocations (
    id               TEXT PRIMARY KEY,
    connection_id    TEXT NOT NULL DEFAULT '',
    provider_id      TEXT NOT NULL,
    sealed           BLOB NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    give_up_at       INTEGER NOT NULL,
    last_error_class TEXT NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX revocations_due ON revocations (next_attempt_at, id);
