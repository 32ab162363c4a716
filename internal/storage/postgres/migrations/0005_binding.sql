-- Cryptographic binding: which additional data each ciphertext was sealed
-- with (1: the row id only, as before; 2: also the fields an edit of the
-- row could abuse), and the provider endpoints an operator confirmed.
-- Existing rows keep version 1 until the broker re-seals them.
ALTER TABLE providers ADD COLUMN secret_aad_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE providers ADD COLUMN endpoints BYTEA;
ALTER TABLE tokens ADD COLUMN aad_version INTEGER NOT NULL DEFAULT 1;
