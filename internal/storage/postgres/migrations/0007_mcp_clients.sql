-- OAuth clients the broker holds at authorization servers of MCP servers:
-- one per issuer, registered once and reused by every connection.
CREATE TABLE mcp_clients (
    issuer      text PRIMARY KEY,
    client_id   text NOT NULL,
    credentials bytea,
    auth_method text NOT NULL,
    source      text NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
