-- Deploy code that writes both columns (or body only) after this.
ALTER TABLE posts ADD COLUMN body text;

-- The expand migration's function, byte for byte (`keel test` compares
-- the body), so that the schema is the one before the contract.
CREATE FUNCTION posts_body_content_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.content IS NULL THEN
            NEW.content := NEW.body;
        ELSIF NEW.body IS NULL THEN
            NEW.body := NEW.content;
        END IF;
    ELSIF NEW.content IS DISTINCT FROM OLD.content THEN
        -- New code wrote content (it wins when a writer changed both).
        NEW.body := NEW.content;
    ELSIF NEW.body IS DISTINCT FROM OLD.body THEN
        -- Old code wrote body.
        NEW.content := NEW.body;
    END IF;
    RETURN NEW;
END
$$;

-- keel:allow trigger-lock reason="rollback path; brief lock bounded by lock_timeout"
CREATE TRIGGER posts_body_content_sync BEFORE INSERT OR UPDATE ON posts
    FOR EACH ROW EXECUTE FUNCTION posts_body_content_sync();

-- content holds every value: copy it back.
-- keel:allow backfill-in-migration reason="rollback path: restores body from content"
UPDATE posts SET body = content;
