-- Connection metadata holds one JSON value per key, returned to agents as
-- they wrote it. jsonb reorders object members, drops duplicate ones and
-- respells numbers (1e2 becomes 100), so the column becomes json, which
-- keeps the text. No query reads inside it.
ALTER TABLE connections ALTER COLUMN metadata TYPE json USING metadata::json;
