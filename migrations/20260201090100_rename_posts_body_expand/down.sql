DROP TRIGGER posts_body_content_sync ON posts;
DROP FUNCTION posts_body_content_sync();
-- body holds every value: the trigger kept it equal to content.
ALTER TABLE posts DROP COLUMN content;
