-- Built without blocking writes (SHARE UPDATE EXCLUSIVE): CONCURRENTLY
-- cannot run in a transaction, hence transaction = false. IF NOT EXISTS
-- makes a re-run a no-op; keel checks pg_index.indisvalid afterwards and
-- drops and rebuilds an INVALID index a failed build left, once.
CREATE INDEX CONCURRENTLY IF NOT EXISTS posts_user_id_idx ON posts (user_id);
