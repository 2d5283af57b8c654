-- Contract: the old column goes.
-- Deploy before this migration: code that reads and writes only content;
-- nothing may touch body any more. keel backs body up first.
-- keel:allow drop-dependency reason="expand-contract: only the sync between body and content uses it"
DROP TRIGGER posts_body_content_sync ON posts;
-- keel:allow drop-dependency reason="expand-contract: only the sync trigger uses it"
DROP FUNCTION posts_body_content_sync();
-- keel:allow drop-column reason="expand-contract: the deployed code reads and writes content only"
ALTER TABLE posts DROP COLUMN body;
