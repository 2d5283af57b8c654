-- Deploy code that writes both columns (or {{ column }} only) after this.
ALTER TABLE {{ table | ident }} ADD COLUMN {{ column | ident }} {{ type }};

-- The function exactly as expand made it (comments too: they are part of
-- its body, which `keel down` and `keel test` compare).
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

-- keel:allow trigger-lock reason="rollback path; brief lock bounded by lock_timeout"
CREATE TRIGGER {{ trigger | ident }} BEFORE INSERT OR UPDATE ON {{ table | ident }}
    FOR EACH ROW EXECUTE FUNCTION {{ function | ident }}();

-- {{ to }} holds every value: copy it back.
-- keel:allow backfill-in-migration reason="rollback path: restores {{ column }} from {{ to }}"
UPDATE {{ table | ident }} SET {{ column | ident }} = {{ to | ident }};
