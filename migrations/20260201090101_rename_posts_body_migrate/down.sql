-- Reads must go back to body first: deploy code that reads body.
COMMENT ON COLUMN posts.content IS NULL;
