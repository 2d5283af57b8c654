//! `[backfill]` is checked before anything runs: each `set` value and the
//! `where` filter must be exactly one SQL expression (keel pastes them into
//! its UPDATE inside parentheses), `batch_size` must be at least 1, and the
//! table, key and columns must exist in the live schema. A refused backfill
//! changes nothing: no row, no column, no tracking row.

use crate::common::{Db, Project, stderr, stdout};

const V: &str = "20250101000002";

/// `items (id, v)` with three rows, applied.
fn items(p: &Project) {
    p.migration(
        "20250101000001_items",
        "CREATE TABLE items (id bigint PRIMARY KEY, v text);\n",
        Some("DROP TABLE items;\n"),
        None,
    );
    p.keel().args(["up", "-q"]).assert().success();
    p.exec("INSERT INTO items VALUES (1, 'one'), (2, 'two'), (3, 'three');");
}

/// Migration V: adds `w` and backfills it as `[backfill]` (after table/key) says.
fn fill_w(p: &Project, table: &str, key: &str, rest: &str) {
    p.migration(
        &format!("{V}_fill_w"),
        "ALTER TABLE items ADD COLUMN w text;\n",
        Some("ALTER TABLE items DROP COLUMN w;\n"),
        Some(&format!(
            "description = \"w from v\"\n\n[backfill]\ntable = \"{table}\"\nkey = \"{key}\"\n{rest}"
        )),
    );
}

fn items_unchanged(p: &Project) {
    assert_eq!(
        p.rows("SELECT id, v FROM items ORDER BY id"),
        vec![
            vec![Some("1".into()), Some("one".into())],
            vec![Some("2".into()), Some("two".into())],
            vec![Some("3".into()), Some("three".into())],
        ]
    );
    let w = match p.db {
        Db::Postgres => p.scalar(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'w'",
        ),
        Db::Sqlite => p.scalar("SELECT count(*) FROM pragma_table_info('items') WHERE name = 'w'"),
    };
    assert_eq!(w.as_deref(), Some("0"), "column w was added");
    assert_eq!(
        p.scalar(&format!(
            "SELECT count(*) FROM keel_migrations WHERE version = '{V}'"
        ))
        .as_deref(),
        Some("0"),
        "migration {V} has a tracking row"
    );
}

fn production(p: &Project) {
    std::fs::write(
        p.path().join("keel.toml"),
        "[environments.production]\ndatabase_url_env = \"DATABASE_URL\"\nconfirm = \"auto\"\n",
    )
    .unwrap();
}

const TOML: &str = "migrations/20250101000002_fill_w/migration.toml";

both!(
    a_set_value_that_closes_its_parenthesis_is_refused_everywhere,
    |p: Project| {
        items(&p);
        // The exploit of issue 10: `w = (upper(v)), v = ('overwritten')`.
        fill_w(
            &p,
            "items",
            "id",
            "set = { w = \"upper(v)), v = ('overwritten'\" }\nbatch_size = 10\n",
        );
        production(&p);
        let expected = format!(
            "{TOML}:6:13: [backfill] set: the expression for \"w\" is not one SQL expression: \
         its `)` at character 9 closes the parenthesis keel puts around it, so \
         `, v = ('overwritten'` would run as SQL of its own\n    \
         fix: write one expression per column, e.g. \"upper(name)\"; to fill another column, give it its own key in `set`\n"
        );
        for args in [
            vec!["up"],
            vec!["up", "--dry-run"],
            vec!["validate"],
            vec!["plan", V],
            vec!["runbook", V],
            vec!["backfill", V],
            vec!["execute", V, "--env", "production", "--yes"],
        ] {
            let out = p.keel().args(&args).output().unwrap();
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
            assert!(
                stderr(&out).contains(&expected),
                "{args:?}: {}",
                stderr(&out)
            );
            items_unchanged(&p);
        }
        let out = p.keel().args(["lint", "migrations"]).output().unwrap();
        assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
        assert!(
            stdout(&out).contains(&format!("{TOML}:6:13"))
                && stdout(&out).contains("is not one SQL expression"),
            "{}",
            stdout(&out)
        );
    }
);

both!(a_filter_that_widens_itself_is_refused, |p: Project| {
    items(&p);
    // The exploit of issue 10: `AND (true) OR (true)` matches every row.
    fill_w(
        &p,
        "items",
        "id",
        "set = { w = \"upper(v)\" }\nwhere = \"true) OR (true\"\n",
    );
    let out = p.keel().arg("up").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{TOML}:7:9: [backfill] where is not one SQL condition: its `)` at character 5 closes \
             the parenthesis keel puts around it, so `OR (true` would run as SQL of its own\n    fix: "
        )),
        "{}",
        stderr(&out)
    );
    items_unchanged(&p);
});

both!(
    comments_lists_and_statements_are_not_one_expression,
    |p: Project| {
        items(&p);
        fill_w(
            &p,
            "items",
            "id",
            "set = { w = \"v -- trailing\", id = \"id + 1\", v = \"a, b\" }\n\
         where = \"1); DELETE FROM items; SELECT (1\"\n",
        );
        let out = p.keel().arg("up").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| !l.trim_start().starts_with("fix:"))
            .collect();
        assert_eq!(
            lines,
            [
                "error: 4 problems in the migration files:",
                "  migrations/20250101000002_fill_w/migration.toml:6:13: [backfill] set: the expression for \"w\" is not one SQL expression: \
             it holds a `--` comment, which would swallow the `)` keel writes after it; write comments as /* … */",
                "  migrations/20250101000002_fill_w/migration.toml:6:30: [backfill] set changes the key column \"id\", which the batches walk by: \
             rows would move between batches, be missed or done twice",
                "  migrations/20250101000002_fill_w/migration.toml:6:49: [backfill] set: the expression for \"v\" is not one SQL expression: \
             it is a list of expressions separated by commas, not one",
                "  migrations/20250101000002_fill_w/migration.toml:7:9: [backfill] where is not one SQL condition: \
             it holds 3 statements: a `;` ends the expression",
            ]
        );
        items_unchanged(&p);
    }
);

both!(batch_size_zero_is_a_usage_error, |p: Project| {
    items(&p);
    fill_w(
        &p,
        "items",
        "id",
        "set = { w = \"upper(v)\" }\nbatch_size = 0\n",
    );
    let out = p.keel().arg("up").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{TOML}:7:14: [backfill] batch_size = 0: a batch of no rows never gets through the table\n    \
             fix: set batch_size to 1 or more (the default is 1000), or leave it out\n"
        )),
        "{}",
        stderr(&out)
    );
    items_unchanged(&p);
    std::fs::write(
        p.path().join(TOML),
        "[backfill]\ntable = \"items\"\nkey = \"id\"\nset = { w = \"upper(v)\" }\n",
    )
    .unwrap();
    let out = p.keel().args(["up", "--batch-size", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("--batch-size 0: a batch of no rows never gets through the table\n  fix: "),
        "{}",
        stderr(&out)
    );
    items_unchanged(&p);
});

both!(a_missing_table_names_the_backfill_line, |p: Project| {
    items(&p);
    fill_w(&p, "nope", "id", "set = { w = \"upper(v)\" }\n");
    let out = p.keel().arg("up").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let said = match p.db {
        Db::Postgres => "relation \"nope\" does not exist (42P01)",
        Db::Sqlite => "no such table: nope (1)",
    };
    assert!(
        stderr(&out).contains(&format!(
            "error: the backfill of {V}_fill_w cannot run: {TOML}:4:9: [backfill] table = \"nope\" cannot be read: {said}"
        )) && stderr(&out).contains(
            "\n  nothing of the migration was kept; it is still pending\n  fix: correct `table` in [backfill]"
        ),
        "{}",
        stderr(&out)
    );
    items_unchanged(&p);
});

both!(
    a_missing_key_or_column_or_a_broken_expression_names_its_line,
    |p: Project| {
        items(&p);
        fill_w(&p, "items", "ID", "set = { w = \"upper(v)\" }\n");
        let out = p.keel().arg("up").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
        stderr(&out).contains(&format!(
            "{TOML}:5:7: [backfill] key: table \"items\" has no column \"ID\" (its columns: id, v, w); \
             it has \"id\", which differs in case (a quoted name keeps its case)"
        )),
        "{}",
        stderr(&out)
    );
        items_unchanged(&p);

        // A column name is quoted, so SQL in it is only a name that is not there.
        fill_w(
            &p,
            "items",
            "id",
            "set = { w = \"upper(v)\", \"v = 1, w\" = \"1\" }\n",
        );
        let out = p.keel().arg("up").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
        stderr(&out).contains(&format!(
            "{TOML}:6:25: [backfill] set: table \"items\" has no column \"v = 1, w\" (its columns: id, v, w)"
        )),
        "{}",
        stderr(&out)
    );
        items_unchanged(&p);

        fill_w(&p, "items", "id", "set = { w = \"upper(nope)\" }\n");
        let out = p.keel().arg("up").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let said = match p.db {
            Db::Postgres => "column \"nope\" does not exist (42703)",
            Db::Sqlite => "no such column: nope (1)",
        };
        assert!(
        stderr(&out).contains(&format!(
            "{TOML}:6:13: [backfill] set: the expression for \"w\" does not work on \"items\": {said}"
        )),
        "{}",
        stderr(&out)
    );
        items_unchanged(&p);
    }
);

both!(
    a_backfill_outside_the_migration_transaction_is_checked_before_its_batches,
    |p: Project| {
        items(&p);
        p.migration(
        &format!("{V}_fill_w"),
        "ALTER TABLE items ADD COLUMN w text;\n",
        Some("ALTER TABLE items DROP COLUMN w;\n"),
        Some("transaction = false\n\n[backfill]\ntable = \"items\"\nkey = \"id\"\nset = { w = \"upper(nope)\" }\n"),
    );
        let out = p.keel().arg("up").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
        stderr(&out).contains(&format!(
            "{TOML}:6:13: [backfill] set: the expression for \"w\" does not work on \"items\""
        )) && stderr(&out).contains(
            "\n  no batch ran; the migration stays backfilling\n  fix: `keel down` reverts the migration; correct the expression in migration.toml, then run `keel up` again"
        ),
        "{}",
        stderr(&out)
    );
        assert_eq!(
            p.scalar("SELECT count(*) FROM items WHERE w IS NOT NULL")
                .as_deref(),
            Some("0")
        );
    }
);
