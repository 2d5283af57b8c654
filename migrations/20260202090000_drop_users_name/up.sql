-- Contract of the name split, in its own migration after the split's
-- backfill was validated (keel applies nothing after a backfill that has not
-- finished and validated; `keel status` shows split_user_names applied).
-- Deploy before this migration: code that reads and writes first_name and
-- last_name only. keel backs users.name up before the drop.
-- keel:allow drop-column reason="split into first_name and last_name by 20260201090000; no deployed code reads name"
ALTER TABLE users DROP COLUMN name;
