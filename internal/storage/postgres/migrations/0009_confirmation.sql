-- User confirmation (package confirm): where the browser goes after the
-- exchange when the agent requires its user's confirmation, the digest of
-- the one confirmation value valid now, and when it stops being valid.
ALTER TABLE connections ADD COLUMN confirm_url text NOT NULL DEFAULT '';
ALTER TABLE connections ADD COLUMN confirmation_hash text NOT NULL DEFAULT '';
ALTER TABLE connections ADD COLUMN confirmation_expires_at timestamptz;
