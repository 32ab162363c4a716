-- Connection metadata holds one JSON value per key (PostgreSQL moves the
-- column from jsonb to json in its migration 0003). SQLite already keeps the
-- TEXT as written, so nothing changes here; the step keeps both backends'
-- migration versions in step.
SELECT 1;
