-- Token refresh: a cross-process lease on each connection, and where a
-- token's expiry came from.
ALTER TABLE connections ADD COLUMN refresh_lease_until INTEGER;
ALTER TABLE connections ADD COLUMN refresh_lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN expiry_source TEXT NOT NULL DEFAULT '';

-- DueForRefresh runs as two index range scans, one per reason a connection
-- is due: its token expires soon, or it has not been refreshed for long.
-- The second index must repeat the query's expression and predicate
-- verbatim for the planner to use it.
CREATE INDEX tokens_expires_at ON tokens (expires_at);
CREATE INDEX connections_active_last_touched ON connections (COALESCE(last_refresh_at, created_at))
    WHERE status = 'active';
