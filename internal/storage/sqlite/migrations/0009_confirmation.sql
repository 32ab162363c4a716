-- User confirmation (package confirm): where the browser goes after the
-- exchange when the agent requires its user's confirmation, the digest of
-- the one confirmation value valid now, and when it stops being valid
-- (Unix nanoseconds, like every time here).
ALTER TABLE connections ADD COLUMN confirm_url TEXT NOT NULL DEFAULT '';
ALTER TABLE connections ADD COLUMN confirmation_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE connections ADD COLUMN confirmation_expires_at INTEGER;

-- An agent's listing of one user's connections (GET /v1/connections?user_id=)
-- reads this index in its keyset order instead of sorting the client's rows.
CREATE INDEX connections_client_user_created ON connections (client_name, user_id, created_at, id);

-- Who the agent said should consent (package expectid), as JSON; empty
-- when it said nothing.
ALTER TABLE connections ADD COLUMN expected_identity TEXT NOT NULL DEFAULT '';
