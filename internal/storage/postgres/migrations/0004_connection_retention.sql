-- Per-agent caps and retention of connections that never became active.
--
-- activated_at is when a connection first became active. It is set by the
-- trigger below, whoever writes the row, and never cleared: a connection
-- that was once active (and may be reconnected under its id) is never
-- taken for a consent that simply failed or ran out.
ALTER TABLE connections ADD COLUMN activated_at timestamptz;

-- Rows from before this migration: anything that shows a token was ever
-- stored counts as once active.
UPDATE connections SET activated_at = COALESCE(last_refresh_at, updated_at, created_at, now())
WHERE status IN ('active', 'expired', 'revoked') OR subject <> '' OR last_refresh_at IS NOT NULL
    OR EXISTS (SELECT 1 FROM tokens t WHERE t.connection_id = connections.id);

CREATE FUNCTION connections_mark_activated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'active' AND NEW.activated_at IS NULL THEN
        NEW.activated_at := COALESCE(NEW.updated_at, now());
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER connections_activated BEFORE INSERT OR UPDATE ON connections
    FOR EACH ROW EXECUTE FUNCTION connections_mark_activated();

-- Counting an agent's pending connections (MAX_PENDING_PER_CLIENT).
CREATE INDEX connections_client_status ON connections (client_name, status);
-- Purging connections that failed before ever being active
-- (CONNECTION_RETENTION). The predicate must match the purge query's.
CREATE INDEX connections_purgeable ON connections (updated_at)
    WHERE status = 'failed' AND activated_at IS NULL;
