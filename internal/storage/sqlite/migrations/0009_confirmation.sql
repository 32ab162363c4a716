-- User confirmation (package confirm): where the browser goes after the
-- exchange when the agent requires its user's confirmation, the digest of
-- the one confirmation value valid now, and when it stops being valid
-- (Unix nanoseconds, like every time here).
ALTER TABLE connections ADD COLUMN confirm_url TEXT NOT NULL DEFAULT '';
ALTER TABLE connections ADD COLUMN confirmation_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE connections ADD COLUMN confirmation_expires_at INTEGER;
