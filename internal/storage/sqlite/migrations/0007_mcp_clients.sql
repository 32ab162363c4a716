-- OAuth clients the broker holds at authorization servers of MCP servers:
-- one per issuer, registered once and reused by every connection.
CREATE TABLE mcp_clients (
    issuer      TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL,
    credentials BLOB,
    auth_method TEXT NOT NULL,
    source      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
