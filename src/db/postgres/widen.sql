-- What a migration's named relations ($1, text[]) can change beyond
-- themselves: the tables of named indexes; partitions and inheritors,
-- views on them, and tables whose foreign keys point at them, at every
-- level (a DROP … CASCADE drops the key and the view, a DELETE cascades
-- down the chain); the sequences they own. Each with whether a trigger or a rule of its own may write
-- elsewhere.
WITH RECURSIVE named AS (
    SELECT c.oid, c.relkind FROM pg_class c
    WHERE c.relname = ANY ($1) AND c.relnamespace <> 'pg_catalog'::regnamespace
),
base AS (
    SELECT oid FROM named WHERE relkind <> 'i'
    UNION
    SELECT i.indrelid FROM named n JOIN pg_index i ON i.indexrelid = n.oid
),
tree AS (
    SELECT oid FROM base
    UNION
    SELECT d.oid FROM tree t, LATERAL (
        SELECT i.inhrelid AS oid FROM pg_inherits i WHERE i.inhparent = t.oid
        UNION ALL
        SELECT con.conrelid FROM pg_constraint con
        WHERE con.contype = 'f' AND con.confrelid = t.oid
        UNION ALL
        SELECT rw.ev_class FROM pg_depend dep JOIN pg_rewrite rw ON rw.oid = dep.objid
        WHERE dep.classid = 'pg_rewrite'::regclass AND dep.refclassid = 'pg_class'::regclass
          AND dep.refobjid = t.oid AND rw.ev_class <> t.oid
    ) d
),
reached AS (
    SELECT oid FROM tree
    UNION
    SELECT d.objid FROM pg_depend d JOIN tree t ON t.oid = d.refobjid
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.deptype IN ('a', 'i')
      AND (SELECT relkind FROM pg_class WHERE oid = d.objid) = 'S'
)
SELECT c.relname::text,
       EXISTS (SELECT 1 FROM pg_rewrite rw WHERE rw.ev_class = c.oid AND rw.rulename <> '_RETURN')
       OR EXISTS (SELECT 1 FROM pg_trigger tg WHERE tg.tgrelid = c.oid AND NOT tg.tgisinternal)
FROM reached r JOIN pg_class c ON c.oid = r.oid
