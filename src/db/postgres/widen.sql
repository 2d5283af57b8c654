-- What a migration's named relations ($1, text[]) can change beyond
-- themselves, each with whether a trigger or a rule of its own may write
-- elsewhere, and how far it is reached:
--   'whole': the named relations, the tables of named indexes, their
--            partitions and inheritors and the views on them, at every
--            level, and the sequences they own: any of their objects can
--            change (ALTER TABLE recurses; DROP … CASCADE drops the view);
--   'keys':  the tables whose foreign keys point at one of those: a
--            statement on the table pointed at can drop or rewrite the key
--            (DROP … CASCADE, a renamed or retyped column), and nothing
--            else of theirs;
--   'rows':  the rest of the foreign key chains, down every level, with
--            their partitions, views and sequences: a DELETE cascades down
--            the chain, but no statement on the named relations changes
--            their schema.
WITH RECURSIVE named AS (
    SELECT c.oid, c.relkind FROM pg_class c
    WHERE c.relname = ANY ($1) AND c.relnamespace <> 'pg_catalog'::regnamespace
),
base AS (
    SELECT oid FROM named WHERE relkind <> 'i'
    UNION
    SELECT i.indrelid FROM named n JOIN pg_index i ON i.indexrelid = n.oid
),
-- level: 0 'whole', 1 'keys', 2 'rows'. One recursion with the level
-- carried (two would be planned as far costlier, past jit_above_cost).
tree AS (
    SELECT oid, 0 AS level FROM base
    UNION
    SELECT d.oid, d.level FROM tree t, LATERAL (
        SELECT i.inhrelid AS oid, t.level FROM pg_inherits i WHERE i.inhparent = t.oid
        UNION ALL
        -- pg_constraint has no index on confrelid: a foreign key is found
        -- through its dependency on the table it points at, by index.
        -- (OFFSET 0 keeps each lookup a lookup: flattened into a join, the
        -- planner scanned all of pg_constraint once per relation.)
        SELECT con.conrelid, CASE WHEN t.level = 0 THEN 1 ELSE 2 END
        FROM pg_depend dep, LATERAL (
            SELECT con.conrelid FROM pg_constraint con
            WHERE con.oid = dep.objid AND con.contype = 'f' AND con.confrelid = t.oid
            OFFSET 0) con
        WHERE dep.classid = 'pg_constraint'::regclass AND dep.refclassid = 'pg_class'::regclass
          AND dep.refobjid = t.oid
        UNION ALL
        SELECT rw.ev_class, CASE WHEN t.level = 0 THEN 0 ELSE 2 END
        FROM pg_depend dep JOIN pg_rewrite rw ON rw.oid = dep.objid
        WHERE dep.classid = 'pg_rewrite'::regclass AND dep.refclassid = 'pg_class'::regclass
          AND dep.refobjid = t.oid AND rw.ev_class <> t.oid
    ) d
),
reached AS (
    SELECT oid, min(level) AS level FROM (
        SELECT oid, level FROM tree
        UNION ALL
        SELECT s.objid, CASE WHEN t.level = 0 THEN 0 ELSE 2 END
        FROM tree t, LATERAL (
            SELECT d.objid FROM pg_depend d
            WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = t.oid
              AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
              AND (SELECT relkind FROM pg_class WHERE oid = d.objid) = 'S'
            OFFSET 0) s
    ) r GROUP BY oid
)
SELECT c.relname::text,
       EXISTS (SELECT 1 FROM pg_rewrite rw WHERE rw.ev_class = c.oid AND rw.rulename <> '_RETURN')
       OR EXISTS (SELECT 1 FROM pg_trigger tg WHERE tg.tgrelid = c.oid AND NOT tg.tgisinternal),
       (ARRAY['whole', 'keys', 'rows'])[r.level + 1]
-- By index for each: joined, the estimate of `reached` (200 rows, the
-- default) had pg_class read whole, 5,400 rows at 1,000 migrations.
FROM reached r, LATERAL (SELECT c.oid, c.relname FROM pg_class c WHERE c.oid = r.oid OFFSET 0) c
