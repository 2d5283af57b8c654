use super::*;
use crate::analysis::operation::{ActionKind, Lock, Tri};

fn ops(sql: &str) -> Vec<Operation> {
    classify(sql, &mut Schema::new(Some("15".parse().unwrap())), true).ops
}

#[test]
fn one_operation_per_statement_with_positions() {
    let o = ops(
        "-- head\nCREATE TABLE a (id bigint);\n\n  ALTER TABLE b\n    ADD COLUMN c int,\n    DROP COLUMN d;",
    );
    assert_eq!(o.len(), 2);
    assert_eq!((o[1].line, o[1].column), (4, 3));
    assert_eq!(o[1].kind, "ALTER TABLE");
    let a = &o[1].actions;
    assert_eq!((a[0].line, a[0].column_no), (5, 5));
    assert_eq!((a[1].line, a[1].column_no), (6, 5));
    assert_eq!(o[1].lock(), Some(Lock::AccessExclusive));
}

#[test]
fn tables_created_earlier_are_new() {
    let o = ops(
        "CREATE TABLE a (id bigint);\nCREATE INDEX a_id ON a (id);\nCREATE INDEX b_id ON b (id);",
    );
    assert!(o[1].actions[0].new_table);
    assert!(!o[2].actions[0].new_table);
}

#[test]
fn explicit_transactions_are_tracked() {
    let mut schema = Schema::default();
    let o = classify("BEGIN;\nSELECT 1;\nCOMMIT;\nSELECT 2;", &mut schema, false).ops;
    let tx: Vec<bool> = o.iter().map(|o| o.in_transaction).collect();
    assert_eq!(tx, [false, true, true, false]);
}

#[test]
fn function_bodies_are_opaque_and_do_blocks_are_read() {
    let o = ops(
        "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $x$ BEGIN DROP TABLE users; END $x$;\nDO $$ BEGIN TRUNCATE users; END $$;",
    );
    // The function runs when called; the DO block's TRUNCATE runs now, on
    // line 2, inside the DO block's own transaction.
    assert_eq!(o.len(), 3);
    assert!(!o[0].destroys() && !o[1].destroys());
    assert!(o[2].destroys());
    assert_eq!((o[2].line, o[2].column), (2, 13));
    assert!(o[2].in_transaction);
}

#[test]
fn known_column_types_decide_rewrites() {
    let o = ops(
        "CREATE TABLE n (body varchar(10), qty int);\nALTER TABLE n ALTER COLUMN body TYPE text, ALTER COLUMN qty TYPE bigint;",
    );
    let a = &o[1].actions;
    assert_eq!(a[0].rewrite, Tri::No);
    assert_eq!(a[1].rewrite, Tri::Yes);
}

#[test]
fn validated_not_null_check_skips_the_scan() {
    let o = ops(
        "ALTER TABLE u ADD CONSTRAINT c CHECK (e IS NOT NULL) NOT VALID;\nALTER TABLE u VALIDATE CONSTRAINT c;\nALTER TABLE u ALTER COLUMN e SET NOT NULL;",
    );
    assert_eq!(o[2].actions[0].scan, Tri::No);
    let o = ops("ALTER TABLE u ALTER COLUMN e SET NOT NULL;");
    assert_eq!(o[0].actions[0].scan, Tri::Yes);
}

#[test]
fn drop_index_finds_its_table() {
    let o = ops("CREATE INDEX ix ON t (a);\nDROP INDEX ix;");
    assert_eq!(o[1].actions[0].table.as_deref(), Some("t"));
    assert!(matches!(o[1].actions[0].kind, ActionKind::DropIndex { .. }));
}

#[test]
fn syntax_errors_have_positions_and_do_not_panic() {
    let c = classify(
        "SELECT 1;\nALTER TABLE t ADD COLUMN;\n$$ unterminated",
        &mut Schema::default(),
        true,
    );
    assert_eq!(c.syntax[0].line, 2);
    for junk in [
        "(((",
        "ALTER TABLE",
        ";;;",
        "CREATE INDEX ON",
        "\u{0}\u{feff}é",
        "$a$",
        "'",
        "\"",
    ] {
        let _ = classify(junk, &mut Schema::default(), true);
    }
}

#[test]
fn schema_qualified_names_match_unqualified() {
    let o = ops(
        "CREATE TABLE public.a (id bigint);\nALTER TABLE a ADD COLUMN b int;\nALTER TABLE \"A\" ADD COLUMN b int;",
    );
    assert!(o[1].actions[0].new_table);
    assert!(!o[2].actions[0].new_table, "quoted \"A\" is another table");
}

#[test]
fn psql_meta_commands_are_not_sql() {
    let sql = "/* contrib/x */\n\\echo Use \"ALTER EXTENSION x\" to load this file. \\quit\n\nDROP TABLE users;\n\\set ON_ERROR_STOP on\nSELECT $$\n\\not a command$$;";
    let c = classify(sql, &mut Schema::default(), true);
    assert!(c.syntax.is_empty(), "{:?}", c.syntax);
    assert_eq!(c.ops.len(), 2);
    assert_eq!((c.ops[0].line, c.ops[0].kind.as_str()), (4, "DROP TABLE"));
    assert!(c.ops[1].sql.contains("\\not a command"));
}

#[test]
fn one_syntax_error_per_broken_statement() {
    let c = classify(
        "ALTER TABLE x ADD COLUM y int;\nSELECT 1;\nCREATE TABLE (;",
        &mut Schema::default(),
        true,
    );
    let lines: Vec<usize> = c.syntax.iter().map(|p| p.line).collect();
    assert_eq!(lines, [1, 3], "{:?}", c.syntax);
}

#[test]
fn an_index_keeps_what_follows_its_table_as_written() {
    let shape = |sql: &str| match &ops(sql)[0].actions[0].kind {
        ActionKind::CreateIndex { shape, .. } => shape.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        shape(
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS ix ON app.t USING btree (lower(a) DESC, b text_pattern_ops) INCLUDE (c) WHERE d IS NULL;"
        ),
        Some("USING btree (lower(a) DESC, b text_pattern_ops) INCLUDE (c) WHERE d IS NULL".into())
    );
    assert_eq!(shape("CREATE INDEX ix ON \"T\" (a)"), Some("(a)".into()));
}

#[test]
fn a_comment_names_the_relation_it_describes_and_blocks_neither_reads_nor_writes() {
    use Lock::{AccessShare as As, ShareUpdateExclusive as Sue};
    let cases = [
        ("COMMENT ON TABLE app.t IS 'x';", Some(("app.t", Sue))),
        ("comment on column t.c is 'x';", Some(("t", Sue))),
        ("COMMENT ON COLUMN public.t.c IS NULL;", Some(("t", Sue))),
        ("COMMENT ON VIEW v IS 'x';", Some(("v", Sue))),
        ("COMMENT ON MATERIALIZED VIEW mv IS 'x';", Some(("mv", Sue))),
        ("COMMENT ON SEQUENCE s IS 'x';", Some(("s", Sue))),
        ("COMMENT ON INDEX i IS 'x';", Some(("i", Sue))),
        ("COMMENT ON CONSTRAINT k ON t IS 'x';", Some(("t", As))),
        ("COMMENT ON TRIGGER tg ON t IS 'x';", Some(("t", As))),
        ("COMMENT ON POLICY p ON t IS 'x';", Some(("t", As))),
        ("COMMENT ON RULE r ON t IS 'x';", Some(("t", As))),
        ("COMMENT ON FUNCTION f(int) IS 'x';", None),
        ("COMMENT ON TYPE mood IS 'x';", None),
    ];
    for (sql, expected) in cases {
        let o = ops(sql);
        let a = &o[0].actions[0];
        assert_eq!(a.table.as_deref(), expected.map(|(t, _)| t), "{sql}");
        assert_eq!(o[0].lock(), expected.map(|(_, l)| l), "{sql}");
    }
}

#[test]
fn extended_statistics_lock_their_table_to_create_and_drop_but_not_to_alter() {
    let create =
        ops("CREATE STATISTICS IF NOT EXISTS app.s (dependencies) ON a, (b + 1) FROM app.t;");
    assert_eq!(create[0].actions[0].table.as_deref(), Some("app.t"));
    assert_eq!(create[0].lock(), Some(Lock::ShareUpdateExclusive));
    // DROP does not name the table the server locks: the lock is on the
    // statistics' names, as an unknown index's, and no table is claimed.
    let drop = ops("DROP STATISTICS IF EXISTS s, app.s2;");
    assert_eq!(drop[0].actions[0].table, None);
    let locked: Vec<_> = drop[0].actions[0]
        .locks
        .iter()
        .map(|l| (l.table.as_str(), l.lock))
        .collect();
    assert_eq!(
        locked,
        [
            ("s", Lock::ShareUpdateExclusive),
            ("app.s2", Lock::ShareUpdateExclusive)
        ]
    );
    assert_eq!(ops("ALTER STATISTICS s SET STATISTICS 50;")[0].lock(), None);
}

#[test]
fn a_data_change_inside_a_with_clause_is_an_action_of_its_own() {
    let o = ops(
        "WITH gone AS (DELETE FROM a RETURNING *), kept AS (SELECT 1)\n\
         INSERT INTO b SELECT * FROM gone;\n\
         WITH u AS (UPDATE c SET v = 1 WHERE id IN (SELECT id FROM kept) RETURNING id)\n\
         SELECT count(*) FROM u;",
    );
    let kinds: Vec<(&ActionKind, Option<&str>)> = o
        .iter()
        .flat_map(|o| &o.actions)
        .map(|a| (&a.kind, a.table.as_deref()))
        .collect();
    assert!(
        kinds.contains(&(&ActionKind::Delete { has_where: false }, Some("a"))),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(&ActionKind::Insert, Some("b"))),
        "{kinds:?}"
    );
    let update = o[1]
        .actions
        .iter()
        .find(|a| a.table.as_deref() == Some("c"))
        .unwrap();
    assert!(matches!(
        update.kind,
        ActionKind::Update {
            has_where: true,
            ..
        }
    ));
    // Its WHERE reads the clause's other queries: the whole table is backed up.
    assert!(update.rows.is_none() && update.destroys);
    assert_eq!(o[1].lock(), Some(Lock::RowExclusive));
}
