-- Expand: {{ table }}.{{ to }} beside {{ table }}.{{ column }}, kept equal by a
-- trigger whichever of the two a writer sets, so that old code (which knows
-- {{ column }}) and new code (which knows {{ to }}) can run side by side.
-- Deploy before this migration: nothing; the running code keeps working.
ALTER TABLE {{ table | ident }} ADD COLUMN {{ to | ident }} {{ type }};

-- A BEFORE trigger changes only the row being written, so it never fires
-- itself again: no recursion.
CREATE FUNCTION {{ function | ident }}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.{{ to | ident }} IS NULL THEN
            NEW.{{ to | ident }} := NEW.{{ column | ident }};
        ELSIF NEW.{{ column | ident }} IS NULL THEN
            NEW.{{ column | ident }} := NEW.{{ to | ident }};
        END IF;
    ELSIF NEW.{{ to | ident }} IS DISTINCT FROM OLD.{{ to | ident }} THEN
        -- New code wrote {{ to }} (it wins when a writer changed both).
        NEW.{{ column | ident }} := NEW.{{ to | ident }};
    ELSIF NEW.{{ column | ident }} IS DISTINCT FROM OLD.{{ column | ident }} THEN
        -- Old code wrote {{ column }}.
        NEW.{{ to | ident }} := NEW.{{ column | ident }};
    END IF;
    RETURN NEW;
END
$$;

-- keel:allow trigger-lock reason="brief SHARE ROW EXCLUSIVE lock, bounded by lock_timeout and retried"
CREATE TRIGGER {{ trigger | ident }} BEFORE INSERT OR UPDATE ON {{ table | ident }}
    FOR EACH ROW EXECUTE FUNCTION {{ function | ident }}();
