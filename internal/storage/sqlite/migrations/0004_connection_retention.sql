-- Per-agent caps and retention of connections that never became active.
--
-- activated_at is when a connection first became active. It is set by the
-- triggers below, whoever writes the row, and never cleared: a connection
-- that was once active (and may be reconnected under its id) is never
-- taken for a consent that simply failed or ran out.
ALTER TABLE connections ADD COLUMN activated_at INTEGER;

-- Rows from before this migration: anything that shows a token was ever
-- stored counts as once active.
UPDATE connections SET activated_at = COALESCE(last_refresh_at, updated_at, created_at, 0)
WHERE status IN ('active', 'expired', 'revoked') OR subject <> '' OR last_refresh_at IS NOT NULL
    OR EXISTS (SELECT 1 FROM tokens t WHERE t.connection_id = connections.id);

CREATE TRIGGER connections_activated_insert AFTER INSERT ON connections
WHEN NEW.status = 'active' AND NEW.activated_at IS NULL
BEGIN
    UPDATE connections SET activated_at = COALESCE(NEW.updated_at, 0) WHERE id = NEW.id;
END;

CREATE TRIGGER connections_activated_update AFTER UPDATE OF status ON connections
WHEN NEW.status = 'active' AND NEW.activated_at IS NULL
BEGIN
    UPDATE connections SET activated_at = COALESCE(NEW.updated_at, 0) WHERE id = NEW.id;
END;

-- Counting an agent's pending connections (MAX_PENDING_PER_CLIENT).
CREATE INDEX connections_client_status ON connections (client_name, status);
-- Purging connections that failed before ever being active
-- (CONNECTION_RETENTION). The predicate must match the purge query's.
CREATE INDEX connections_purgeable ON connections (updated_at)
    WHERE status = 'failed' AND activated_at IS NULL;
