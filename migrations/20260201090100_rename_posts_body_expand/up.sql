-- Expand: posts.content beside posts.body, kept equal by a
-- trigger whichever of the two a writer sets, so that old code (which knows
-- body) and new code (which knows content) can run side by side.
-- Deploy before this migration: nothing; the running code keeps working.
ALTER TABLE posts ADD COLUMN content text;

-- A BEFORE trigger changes only the row being written, so it never fires
-- itself again: no recursion.
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

-- keel:allow trigger-lock reason="brief SHARE ROW EXCLUSIVE lock, bounded by lock_timeout and retried"
CREATE TRIGGER posts_body_content_sync BEFORE INSERT OR UPDATE ON posts
    FOR EACH ROW EXECUTE FUNCTION posts_body_content_sync();
