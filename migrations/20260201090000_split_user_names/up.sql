-- Expand: users.first_name and users.last_name beside users.name. Nullable,
-- no default: instant, no rewrite. keel fills them for the existing rows
-- afterwards in batches ([backfill] in migration.toml), outside this
-- transaction. PostgreSQL only (the split uses regexp_replace and split_part).
--
-- Deploy before this migration: application code that writes first_name and
-- last_name (computed the same way) whenever it writes name, so rows written
-- during and after the backfill are split too. Reads stay on name.
ALTER TABLE users ADD COLUMN first_name text;
ALTER TABLE users ADD COLUMN last_name text;
