-- The schema fingerprint: one (key, line) row per object, in one query.
-- $1: keel's own tables (text[]), left out wherever they are.
-- $2: the relations in scope by name (text[]; NULL: all); fingerprint.rs
-- makes a second text of this query without the NULL case, whose plan
-- finds the names by index. $3: whether objects other than relations
-- (schemas, extensions, types, functions) are in scope. $4: relations of
-- which only the foreign keys are in scope (text[]; see widen.sql's
-- 'keys'): rel's `whole` is false for them, and every line but a foreign
-- key's asks for it.
-- Objects an extension owns (pg_depend deptype 'e') are left out: the
-- extension's own line covers them. No OIDs: names, and what the server
-- prints (format_type, pg_get_*def), which names rather than numbers.
WITH ext AS (
    SELECT classid, objid FROM pg_depend
    WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
),
ns AS NOT MATERIALIZED (
    SELECT n.oid, quote_ident(n.nspname) AS q, n.nspowner, n.nspacl
    FROM pg_namespace n
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
      AND n.nspname NOT LIKE 'keel\_calibrate\_%'
      AND (n.oid) NOT IN (SELECT objid FROM ext WHERE classid = 'pg_namespace'::regclass)
),
rel AS MATERIALIZED (
    SELECT c.oid, c.relname, c.relkind, c.relpersistence, c.relowner, c.relacl, c.reloptions,
           c.relrowsecurity, c.relforcerowsecurity, c.relispartition, c.relreplident,
           c.relispopulated, c.relpartbound, ns.q || '.' || quote_ident(c.relname) AS q,
           ($2::text[] IS NULL OR c.relname = ANY ($2)) AS whole
    FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
      AND c.relname <> ALL ($1)
      AND ($2::text[] IS NULL OR c.relname = ANY ($2 || $4::text[]))
      AND c.oid NOT IN (SELECT objid FROM ext WHERE classid = 'pg_class'::regclass)
),
typ AS NOT MATERIALIZED (
    SELECT t.oid, t.typtype, t.typrelid, t.typbasetype, t.typtypmod, t.typnotnull, t.typdefault,
           t.typcollation, t.typowner, t.typacl, ns.q || '.' || quote_ident(t.typname) AS q,
           coalesce(' COMMENT ' || (SELECT quote_literal(d.description) FROM pg_description d
                  WHERE d.objoid = t.oid AND d.classoid = 'pg_type'::regclass AND d.objsubid = 0), '') AS cmt
    FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
    -- initdb's own objects have OIDs below 16384 (FirstNormalObjectId),
    -- and every other object at least that: read by index from there, a
    -- few hundred rows instead of every system type and function.
    WHERE $3 AND t.oid >= 16384 AND (t.typtype IN ('e', 'd', 'r')
           OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
      AND t.oid NOT IN (SELECT objid FROM ext WHERE classid = 'pg_type'::regclass)
),
fn AS (
    SELECT p.*, ns.q || '.' || quote_ident(p.proname)
               || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS q,
           CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate'
                          ELSE 'function' END AS kind
    FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
    WHERE $3 AND p.oid >= 16384 AND p.oid NOT IN (SELECT objid FROM ext WHERE classid = 'pg_proc'::regclass)
      -- A range type's constructors come and go with it.
      AND p.oid NOT IN (SELECT objid FROM pg_depend
                        WHERE classid = 'pg_proc'::regclass AND deptype = 'i')
),
-- Privileges: each object's ACL next to the one it would have had without
-- GRANT or REVOKE, so that only what a migration granted or revoked shows.
acl AS (
    SELECT CASE r.relkind WHEN 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END || r.q AS target,
           r.relacl AS acl, acldefault(CASE r.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", r.relowner) AS dflt
    FROM rel r WHERE r.whole AND r.relacl IS NOT NULL
    UNION ALL
    SELECT 'COLUMN ' || r.q || '.' || quote_ident(a.attname), a.attacl, NULL
    FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid
    WHERE r.whole AND a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT upper(f.kind) || ' ' || f.q, f.proacl, acldefault('f'::"char", f.proowner)
    FROM fn f WHERE f.proacl IS NOT NULL
    UNION ALL
    SELECT 'SCHEMA ' || ns.q, ns.nspacl, acldefault('n'::"char", ns.nspowner) FROM ns WHERE $3 AND ns.nspacl IS NOT NULL
    UNION ALL
    SELECT 'TYPE ' || t.q, t.typacl, acldefault('T'::"char", t.typowner) FROM typ t WHERE t.typacl IS NOT NULL
),
granted AS (
    SELECT a.target, e.grantee, e.privilege_type, e.is_grantable FROM acl a, aclexplode(a.acl) e
    EXCEPT
    SELECT a.target, e.grantee, e.privilege_type, e.is_grantable FROM acl a, aclexplode(a.dflt) e
),
revoked AS (
    SELECT a.target, e.grantee, e.privilege_type, e.is_grantable FROM acl a, aclexplode(a.dflt) e
    EXCEPT
    SELECT a.target, e.grantee, e.privilege_type, e.is_grantable FROM acl a, aclexplode(a.acl) e
),
privilege AS (
    SELECT 'grant' AS verb, ' TO ' AS word, * FROM granted
    UNION ALL
    SELECT 'revoke', ' FROM ', * FROM revoked
),
objects (key, line) AS (
    -- A comment on anything but a table or column ends its object's line
    -- (` COMMENT '…'`), found by index: a down that drops and makes one
    -- again loses its comment as silently as a table's. (Lines of their
    -- own, joined, made a fingerprint about a quarter slower in pgbench.)
    SELECT 'schema ' || q, 'schema ' || q
           || coalesce(' COMMENT ' || (SELECT quote_literal(d.description) FROM pg_description d
                  WHERE d.objoid = ns.oid AND d.classoid = 'pg_namespace'::regclass AND d.objsubid = 0), '')
    FROM ns WHERE $3

    UNION ALL
    SELECT 'extension ' || quote_ident(e.extname),
           'extension ' || quote_ident(e.extname) || ' VERSION ' || quote_literal(e.extversion)
           || ' SCHEMA ' || quote_ident(n.nspname)
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE $3

    UNION ALL
    SELECT 'table ' || r.q,
           'table ' || r.q
           || CASE r.relpersistence WHEN 'u' THEN ' UNLOGGED' ELSE '' END
           || CASE WHEN r.relkind = 'f' THEN ' FOREIGN SERVER ' || (
                  SELECT quote_ident(s.srvname) FROM pg_foreign_table ft
                  JOIN pg_foreign_server s ON s.oid = ft.ftserver WHERE ft.ftrelid = r.oid)
                  ELSE '' END
           || CASE WHEN r.relispartition THEN ' PARTITION OF ' || (
                  SELECT p.q FROM pg_inherits i JOIN rel p ON p.oid = i.inhparent WHERE i.inhrelid = r.oid)
                  || ' ' || pg_get_expr(r.relpartbound, r.oid)
                  ELSE coalesce(' INHERITS (' || (
                  SELECT string_agg(p.q, ', ' ORDER BY i.inhseqno) FROM pg_inherits i
                  JOIN rel p ON p.oid = i.inhparent WHERE i.inhrelid = r.oid) || ')', '') END
           || CASE WHEN r.relkind = 'p' THEN ' PARTITION BY ' || pg_get_partkeydef(r.oid) ELSE '' END
           || coalesce(' WITH (' || array_to_string(r.reloptions, ', ') || ')', '')
           || CASE WHEN r.relrowsecurity THEN ' ROW LEVEL SECURITY' ELSE '' END
           || CASE WHEN r.relforcerowsecurity THEN ' FORCE ROW LEVEL SECURITY' ELSE '' END
           || CASE r.relreplident WHEN 'f' THEN ' REPLICA IDENTITY FULL'
                  WHEN 'n' THEN ' REPLICA IDENTITY NOTHING'
                  WHEN 'i' THEN ' REPLICA IDENTITY USING INDEX ' || (
                      SELECT quote_ident(ic.relname) FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid
                      WHERE x.indrelid = r.oid AND x.indisreplident)
                  ELSE '' END
    FROM rel r WHERE r.whole AND r.relkind IN ('r', 'p', 'f')

    UNION ALL
    SELECT CASE r.relkind WHEN 'v' THEN 'view ' ELSE 'materialized view ' END || r.q,
           CASE r.relkind WHEN 'v' THEN 'view ' ELSE 'materialized view ' END || r.q
           || coalesce(' WITH (' || array_to_string(r.reloptions, ', ') || ')', '')
           || ' AS ' || rtrim(btrim(regexp_replace(pg_get_viewdef(r.oid), '\s+', ' ', 'g')), ';')
           || CASE WHEN r.relkind = 'm' AND NOT r.relispopulated THEN ' WITH NO DATA' ELSE '' END
    FROM rel r WHERE r.whole AND r.relkind IN ('v', 'm')

    UNION ALL
    SELECT 'column ' || r.q || '.' || quote_ident(a.attname),
           'column ' || r.q || '.' || quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attcollation <> t.typcollation THEN ' COLLATE ' || quote_ident(co.collname) ELSE '' END
           || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
           || CASE WHEN a.attgenerated = 's' THEN ' GENERATED ALWAYS AS (' || pg_get_expr(d.adbin, d.adrelid) || ') STORED'
                   WHEN d.adbin IS NOT NULL THEN ' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid)
                   ELSE '' END
           || CASE a.attidentity WHEN 'a' THEN ' GENERATED ALWAYS AS IDENTITY'
                   WHEN 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY' ELSE '' END
    FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    LEFT JOIN pg_collation co ON co.oid = a.attcollation
    WHERE r.whole AND r.relkind IN ('r', 'p', 'f')

    UNION ALL
    SELECT 'constraint ' || r.q || '.' || quote_ident(con.conname),
           'constraint ' || r.q || '.' || quote_ident(con.conname) || ' ' || pg_get_constraintdef(con.oid)
           || coalesce(' COMMENT ' || (SELECT quote_literal(d.description) FROM pg_description d
                  WHERE d.objoid = con.oid AND d.classoid = 'pg_constraint'::regclass AND d.objsubid = 0), '')
           -- Its index has no line of its own (see the indexes below).
           || CASE WHEN con.contype IN ('p', 'u', 'x') THEN coalesce(' INDEX COMMENT ' || (SELECT quote_literal(d.description) FROM pg_description d
                  WHERE d.objoid = con.conindid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0), '') ELSE '' END
    FROM pg_constraint con JOIN rel r ON r.oid = con.conrelid
    WHERE con.contype <> 'n' AND (r.whole OR con.contype = 'f')
      -- A foreign key to a partitioned table repeats itself once per
      -- partition on the same table: the first says it all.
      AND NOT EXISTS (SELECT 1 FROM pg_constraint p
                      WHERE p.oid = con.conparentid AND p.conrelid = con.conrelid)

    UNION ALL
    SELECT 'constraint ' || t.q || '.' || quote_ident(con.conname),
           'constraint ' || t.q || '.' || quote_ident(con.conname) || ' ' || pg_get_constraintdef(con.oid)
           || coalesce(' COMMENT ' || (SELECT quote_literal(d.description) FROM pg_description d
                  WHERE d.objoid = con.oid AND d.classoid = 'pg_constraint'::regclass AND d.objsubid = 0), '')
    FROM pg_constraint con JOIN typ t ON t.oid = con.contypid

    UNION ALL
    SELECT 'index ' || ns.q || '.' || quote_ident(ic.relname),
           'index ' || ns.q || '.' || quote_ident(ic.relname) || ' '
           || CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END
           || substr(pg_get_indexdef(i.indexrelid),
                     length(CASE WHEN i.indisunique THEN 'CREATE UNIQUE INDEX ' ELSE 'CREATE INDEX ' END)
                     + length(quote_ident(ic.relname)) + 2)
           || CASE WHEN NOT i.indisvalid THEN ' INVALID' ELSE '' END
           || coalesce(' COMMENT ' || (SELECT quote_literal(d.description) FROM pg_description d
                  WHERE d.objoid = i.indexrelid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0), '')
    FROM pg_index i JOIN rel r ON r.oid = i.indrelid AND r.whole
    JOIN pg_class ic ON ic.oid = i.indexrelid JOIN ns ON ns.oid = ic.relnamespace
    -- The index of a primary key, unique or exclusion constraint is that
    -- constraint's line (pg_get_constraintdef shows its columns, INCLUDE
    -- and storage): listed once, and a third cheaper on a large schema.
    -- Looked up by the table's constraints (NOT IN read all of
    -- pg_constraint at each fingerprint: 0.44 ms of 0.8 at 1,000 tables).
    WHERE NOT EXISTS (SELECT 1 FROM pg_constraint pc
                      WHERE pc.conrelid = i.indrelid AND pc.conindid = i.indexrelid
                        AND pc.contype IN ('p', 'u', 'x'))

    UNION ALL
    SELECT 'trigger ' || r.q || '.' || quote_ident(tg.tgname),
           'trigger ' || r.q || '.' || quote_ident(tg.tgname) || ' '
           || CASE WHEN tg.tgconstraint <> 0 THEN 'CONSTRAINT ' ELSE '' END
           || substr(pg_get_triggerdef(tg.oid),
                     length(CASE WHEN tg.tgconstraint <> 0 THEN 'CREATE CONSTRAINT TRIGGER ' ELSE 'CREATE TRIGGER ' END)
                     + length(quote_ident(tg.tgname)) + 2)
           || CASE tg.tgenabled WHEN 'D' THEN ' DISABLED' WHEN 'R' THEN ' ENABLE REPLICA'
                  WHEN 'A' THEN ' ENABLE ALWAYS' ELSE '' END
           || coalesce(' COMMENT ' || (SELECT quote_literal(d.description) FROM pg_description d
                  WHERE d.objoid = tg.oid AND d.classoid = 'pg_trigger'::regclass AND d.objsubid = 0), '')
    FROM pg_trigger tg JOIN rel r ON r.oid = tg.tgrelid
    WHERE r.whole AND NOT tg.tgisinternal

    UNION ALL
    SELECT 'rule ' || r.q || '.' || quote_ident(rw.rulename),
           'rule ' || r.q || '.' || quote_ident(rw.rulename) || ' '
           || rtrim(btrim(regexp_replace(pg_get_ruledef(rw.oid), '\s+', ' ', 'g')), ';')
           || coalesce(' COMMENT ' || (SELECT quote_literal(d.description) FROM pg_description d
                  WHERE d.objoid = rw.oid AND d.classoid = 'pg_rewrite'::regclass AND d.objsubid = 0), '')
    FROM pg_rewrite rw JOIN rel r ON r.oid = rw.ev_class
    WHERE r.whole AND rw.rulename <> '_RETURN'

    UNION ALL
    SELECT 'policy ' || r.q || '.' || quote_ident(pol.polname),
           'policy ' || r.q || '.' || quote_ident(pol.polname)
           || CASE WHEN pol.polpermissive THEN '' ELSE ' AS RESTRICTIVE' END
           || ' FOR ' || CASE pol.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT'
                  WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END
           || ' TO ' || (SELECT string_agg(g.name, ', ' ORDER BY g.name) FROM (
                  SELECT CASE WHEN rid = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(rid)) END AS name
                  FROM unnest(pol.polroles) AS rid) g)
           || coalesce(' USING (' || pg_get_expr(pol.polqual, pol.polrelid) || ')', '')
           || coalesce(' WITH CHECK (' || pg_get_expr(pol.polwithcheck, pol.polrelid) || ')', '')
           || coalesce(' COMMENT ' || (SELECT quote_literal(d.description) FROM pg_description d
                  WHERE d.objoid = pol.oid AND d.classoid = 'pg_policy'::regclass AND d.objsubid = 0), '')
    FROM pg_policy pol JOIN rel r ON r.oid = pol.polrelid AND r.whole

    UNION ALL
    SELECT 'sequence ' || r.q,
           'sequence ' || r.q || ' AS ' || format_type(s.seqtypid, NULL)
           || ' START ' || s.seqstart || ' INCREMENT ' || s.seqincrement
           || ' MINVALUE ' || s.seqmin || ' MAXVALUE ' || s.seqmax || ' CACHE ' || s.seqcache
           || CASE WHEN s.seqcycle THEN ' CYCLE' ELSE '' END
           || coalesce(' OWNED BY ' || owner.q, '')
    FROM rel r JOIN pg_sequence s ON s.seqrelid = r.oid AND r.whole
    LEFT JOIN LATERAL (
        SELECT quote_ident(n.nspname) || '.' || quote_ident(oc.relname) || '.' || quote_ident(a.attname) AS q,
               oc.relname
        FROM pg_depend d JOIN pg_class oc ON oc.oid = d.refobjid
        JOIN pg_namespace n ON n.oid = oc.relnamespace
        JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        WHERE d.classid = 'pg_class'::regclass AND d.objid = r.oid
          AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
        LIMIT 1) owner ON true
    WHERE owner.relname IS NULL OR owner.relname <> ALL ($1)

    UNION ALL
    SELECT 'type ' || t.q, 'type ' || t.q || ' AS ENUM ('
           || coalesce((SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
                        FROM pg_enum e WHERE e.enumtypid = t.oid), '') || ')' || t.cmt
    FROM typ t WHERE t.typtype = 'e'

    UNION ALL
    SELECT 'type ' || t.q, 'type ' || t.q || ' AS (' || coalesce((
               SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
                                 || CASE WHEN a.attcollation <> at.typcollation
                                         THEN ' COLLATE ' || quote_ident(co.collname) ELSE '' END,
                                 ', ' ORDER BY a.attnum)
               FROM pg_attribute a JOIN pg_type at ON at.oid = a.atttypid
               LEFT JOIN pg_collation co ON co.oid = a.attcollation
               WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), '') || ')' || t.cmt
    FROM typ t WHERE t.typtype = 'c'

    UNION ALL
    SELECT 'type ' || t.q, 'type ' || t.q || ' AS RANGE (SUBTYPE = ' || format_type(rg.rngsubtype, NULL) || ')'
           || t.cmt
    FROM typ t JOIN pg_range rg ON rg.rngtypid = t.oid WHERE t.typtype = 'r'

    UNION ALL
    SELECT 'domain ' || t.q, 'domain ' || t.q || ' AS ' || format_type(t.typbasetype, t.typtypmod)
           || CASE WHEN t.typcollation <> bt.typcollation
                   THEN ' COLLATE ' || (SELECT quote_ident(collname) FROM pg_collation WHERE oid = t.typcollation)
                   ELSE '' END
           || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END
           || coalesce(' DEFAULT ' || t.typdefault, '') || t.cmt
    FROM typ t JOIN pg_type bt ON bt.oid = t.typbasetype WHERE t.typtype = 'd'

    UNION ALL
    SELECT f.kind || ' ' || f.q,
           f.kind || ' ' || f.q
           || CASE WHEN f.prokind <> 'p' THEN ' RETURNS ' || pg_get_function_result(f.oid) ELSE '' END
           || ' LANGUAGE ' || (SELECT quote_ident(lanname) FROM pg_language WHERE oid = f.prolang)
           || CASE WHEN f.prokind = 'p' THEN ''
                   ELSE CASE f.provolatile WHEN 'i' THEN ' IMMUTABLE' WHEN 's' THEN ' STABLE' ELSE ' VOLATILE' END END
           || CASE WHEN f.proisstrict THEN ' STRICT' ELSE '' END
           || CASE WHEN f.prosecdef THEN ' SECURITY DEFINER' ELSE '' END
           || CASE WHEN f.proleakproof THEN ' LEAKPROOF' ELSE '' END
           || CASE f.proparallel WHEN 's' THEN ' PARALLEL SAFE' WHEN 'r' THEN ' PARALLEL RESTRICTED' ELSE '' END
           || coalesce((SELECT string_agg(' SET ' || c, '' ORDER BY c) FROM unnest(f.proconfig) AS c), '')
           || CASE WHEN f.prokind = 'a' THEN ''
                   -- Runs of whitespace count as one space: a body re-created
                   -- with other indentation is the same function.
                   ELSE ' BODY md5:' || left(md5(regexp_replace(btrim(
                            CASE WHEN f.prosrc IS NULL OR f.prosrc = ''
                                 THEN pg_get_functiondef(f.oid) ELSE f.prosrc END), '\s+', ' ', 'g')), 12) END
           || coalesce(' COMMENT ' || (SELECT quote_literal(d.description) FROM pg_description d
                  WHERE d.objoid = f.oid AND d.classoid = 'pg_proc'::regclass AND d.objsubid = 0), '')
    FROM fn f

    UNION ALL
    -- Extended statistics (CREATE STATISTICS): a down that forgets one
    -- leaves the planner with other estimates. pg_get_statisticsobjdef
    -- always qualifies the name; the per-object target (-1, or NULL from
    -- PostgreSQL 17, when unset) is read by name, as PostgreSQL 12 has none.
    SELECT 'statistics ' || ns.q || '.' || quote_ident(s.stxname),
           'statistics ' || ns.q || '.' || quote_ident(s.stxname) || ' '
           || substr(pg_get_statisticsobjdef(s.oid),
                     length('CREATE STATISTICS ' || ns.q || '.' || quote_ident(s.stxname)) + 2)
           || coalesce(' STATISTICS ' || nullif((to_jsonb(s) ->> 'stxstattarget')::int, -1), '')
           || coalesce(' COMMENT ' || (SELECT quote_literal(d.description) FROM pg_description d
                  WHERE d.objoid = s.oid AND d.classoid = 'pg_statistic_ext'::regclass AND d.objsubid = 0), '')
    FROM pg_statistic_ext s JOIN rel r ON r.oid = s.stxrelid AND r.whole
    JOIN ns ON ns.oid = s.stxnamespace

    UNION ALL
    SELECT 'comment ' || r.q || coalesce('.' || quote_ident(a.attname), ''),
           'comment ' || r.q || coalesce('.' || quote_ident(a.attname), '') || ' IS ' || quote_literal(d.description)
    FROM pg_description d JOIN rel r ON r.oid = d.objoid AND r.whole
    LEFT JOIN pg_attribute a ON a.attrelid = d.objoid AND a.attnum = d.objsubid AND d.objsubid > 0
    WHERE d.classoid = 'pg_class'::regclass

    UNION ALL
    SELECT p.verb || ' ' || p.target || p.word || g.name,
           p.verb || ' ' || string_agg(p.privilege_type || CASE WHEN p.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END,
                                    ', ' ORDER BY p.privilege_type)
           || ' ON ' || p.target || p.word || g.name
    FROM privilege p,
         LATERAL (SELECT CASE WHEN p.grantee = 0 THEN 'PUBLIC'
                              ELSE quote_ident(pg_get_userbyid(p.grantee)) END AS name) g
    GROUP BY p.verb, p.target, p.word, g.name
)
SELECT key, line FROM objects ORDER BY key, line
