-- Migrate: after this statement commits, keel fills content for the
-- existing rows in batches ([backfill] in migration.toml); the trigger keeps
-- both columns equal for every write meanwhile.
-- Deploy before this migration: nothing new. Once its backfill has finished
-- (`keel status` shows it applied), deploy code that reads content.
COMMENT ON COLUMN posts.content IS 'content, renamed from body: body is kept in sync until the contract migration';
