-- Refresh ahead of what is used: when a connection's token was last read
-- (written in batches, at most about once a minute per connection), and the
-- indexes that let the background worker's queries grow with the connections
-- in use rather than with the table.
ALTER TABLE connections ADD COLUMN last_read_at INTEGER;
-- A refresh-ahead pass claims the connections it will work on until this
-- time, so that other replicas' passes take others instead of racing.
ALTER TABLE connections ADD COLUMN refresh_claim_until INTEGER;

-- The refresh-ahead arm of DueForRefresh range-scans connections read (or,
-- never read, created) recently: the hot set, however large the table.
CREATE INDEX connections_active_last_used ON connections (COALESCE(last_read_at, created_at))
    WHERE status = 'active';
-- The keep-alive arm runs per provider whose refresh tokens lapse when idle.
CREATE INDEX connections_active_provider_touched ON connections (provider_id, COALESCE(last_refresh_at, created_at))
    WHERE status = 'active';
-- The old keep-alive index served one global keep-alive for every provider.
DROP INDEX connections_active_last_touched;

-- Per-provider budget of token endpoint calls (refreshes), counted here so
-- that every replica shares it: calls in the current one-minute window, and
-- until when a provider's 429 keeps background refreshes away.
CREATE TABLE provider_budgets (
    provider_id     TEXT PRIMARY KEY,
    window_start    INTEGER NOT NULL,
    calls           INTEGER NOT NULL DEFAULT 0,
    throttled_until INTEGER
);
