-- Migrate: after this statement commits, keel fills {{ to }} for the
-- existing rows in batches ([backfill] in migration.toml); the trigger keeps
-- both columns equal for every write meanwhile.
-- Deploy before this migration: nothing new. Once its backfill has finished
-- (`keel status` shows it applied), deploy code that reads {{ to }}.
COMMENT ON COLUMN {{ table | ident }}.{{ to | ident }} IS '{{ to }}, renamed from {{ column }}: {{ column }} is kept in sync until the contract migration';
