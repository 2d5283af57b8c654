-- The column comes back; keel restores the original values from its backup.
-- Without that backup, the names are rebuilt from the split (runs of spaces
-- come back as one space).
ALTER TABLE users ADD COLUMN name text;
-- keel:allow backfill-in-migration reason="rollback path: rebuilds name from first_name and last_name"
UPDATE users SET name = CASE WHEN last_name = '' THEN first_name ELSE first_name || ' ' || last_name END;
