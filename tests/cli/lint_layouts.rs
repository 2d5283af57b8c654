//! `keel lint` on other tools' files runs each the way its tool does: in
//! one transaction (sqlx, golang-migrate, goose, dbmate, Prisma, Flyway,
//! ory/pop) unless the tool's own marker says otherwise, and a one-file
//! layout's down section as a down. The two rules that only fire inside a
//! transaction show it: `validate-with-lock` (a VALIDATE in the
//! transaction that added the constraint) and `concurrently-in-transaction`.

use crate::common::{Project, stdout};

const VALIDATE: &str = "\
ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk;
";
const CONCURRENTLY: &str = "CREATE INDEX CONCURRENTLY orders_user_idx ON orders (user_id);\n";
const IN_TX: [&str; 2] = ["validate-with-lock", "concurrently-in-transaction"];

/// The rules `keel lint` reports for the files (relative path, text),
/// by (file, line, rule); `layout` for `--layout`.
pub(crate) fn lint(files: &[(&str, &str)], layout: Option<&str>) -> Vec<(String, u64, String)> {
    let p = Project::sqlite();
    for (path, text) in files {
        let path = p.path().join("theirs").join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let mut args = vec!["theirs"];
    if let Some(l) = layout {
        args.extend(["--layout", l]);
    }
    p.lint_findings(&args)
        .iter()
        .map(|f| {
            (
                f["file"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("theirs/")
                    .to_string(),
                f["line"].as_u64().unwrap(),
                f["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `keel lint FILE`'s text output for one file `name` holding `text`.
fn lint_text(name: &str, text: &str) -> String {
    let p = Project::sqlite();
    std::fs::write(p.path().join(name), text).unwrap();
    let out = p
        .keel()
        .env_remove("DATABASE_URL")
        .args(["lint", name])
        .output()
        .unwrap();
    stdout(&out)
}

fn rules(found: &[(String, u64, String)]) -> Vec<&str> {
    let mut r: Vec<&str> = found
        .iter()
        .map(|(_, _, rule)| rule.as_str())
        .filter(|r| IN_TX.contains(r))
        .collect();
    r.sort();
    r.dedup();
    r
}

fn both_fire(found: &[(String, u64, String)]) {
    assert_eq!(
        rules(found),
        ["concurrently-in-transaction", "validate-with-lock"],
        "{found:?}"
    );
}

fn none_fire(found: &[(String, u64, String)]) {
    assert_eq!(rules(found), Vec::<&str>::new(), "{found:?}");
}

fn sql() -> String {
    format!("{VALIDATE}{CONCURRENTLY}")
}

#[test]
fn sqlx_runs_each_file_in_a_transaction_unless_no_transaction() {
    both_fire(&lint(
        &[
            ("20240101000001_fk.up.sql", &sql()),
            ("20240101000001_fk.down.sql", "SELECT 1;\n"),
        ],
        None,
    ));
    both_fire(&lint(&[("20240101000001_fk.sql", &sql())], None));
    none_fire(&lint(
        &[(
            "20240101000001_fk.sql",
            &format!("-- no-transaction\n{}", sql()),
        )],
        None,
    ));
}

#[test]
fn golang_migrate_runs_the_file_as_one_transaction_whatever_its_comments() {
    let text = format!("-- no-transaction\n{}", sql());
    both_fire(&lint(
        &[("000001_fk.up.sql", &text)],
        Some("golang-migrate"),
    ));
}

#[test]
fn goose_sections_and_no_transaction() {
    let up_down = format!(
        "-- +goose Up\nCREATE TABLE audit (id bigint PRIMARY KEY);\n{}-- +goose Down\nDROP TABLE audit;\n",
        sql()
    );
    let found = lint(&[("20240101000001_fk.sql", &up_down)], None);
    both_fire(&found);
    // The fix is goose's own, not keel's migration.toml.
    let text = lint_text("20240101000001_fk.sql", &up_down);
    assert!(
        text.contains(
            "fix: move it to a migration file of its own with `-- +goose NO TRANSACTION` at the top"
        ),
        "{text}"
    );
    assert!(!text.contains("migration.toml"), "{text}");
    // The down section drops what the up created: the down policy, no
    // finding; the up's findings keep the file's line numbers.
    assert!(
        !found.iter().any(|(_, _, r)| r == "drop-table"),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|(_, line, r)| r == "validate-with-lock" && *line == 4),
        "{found:?}"
    );
    none_fire(&lint(
        &[(
            "20240101000001_fk.sql",
            &format!("-- +goose NO TRANSACTION\n{up_down}"),
        )],
        None,
    ));
}

#[test]
fn dbmate_sections_and_transaction_false() {
    both_fire(&lint(
        &[(
            "20240101000001_fk.sql",
            &format!("-- migrate:up\n{}\n-- migrate:down\nSELECT 1;\n", sql()),
        )],
        None,
    ));
    none_fire(&lint(
        &[(
            "20240101000001_fk.sql",
            &format!("-- migrate:up transaction:false\n{}", sql()),
        )],
        None,
    ));
}

#[test]
fn prisma_runs_migration_sql_in_a_transaction() {
    both_fire(&lint(&[("20240101000001_fk/migration.sql", &sql())], None));
}

#[test]
fn flyway_detects_statements_that_cannot_run_in_a_transaction() {
    // Only the VALIDATE: one transaction, as Flyway runs it.
    let found = lint(&[("V1__fk.sql", VALIDATE)], None);
    assert_eq!(rules(&found), ["validate-with-lock"], "{found:?}");
    // With a CONCURRENTLY, Flyway runs the whole file outside one.
    none_fire(&lint(&[("V1_1__fk.sql", &sql())], None));
    none_fire(&lint(
        &[
            ("V2__fk.sql", VALIDATE),
            ("V2__fk.sql.conf", "executeInTransaction=false\n"),
        ],
        None,
    ));
}

#[test]
fn pop_autocommit_files_run_outside_a_transaction() {
    both_fire(&lint(
        &[("20240101000001_fk.postgres.up.sql", &sql())],
        None,
    ));
    none_fire(&lint(
        &[("20240101000001_fk.autocommit.up.sql", &sql())],
        None,
    ));
}

#[test]
fn a_file_no_tool_runs_is_not_assumed_in_a_transaction() {
    let found = lint(&[("schema.sql", &sql())], None);
    none_fire(&found);
    // Unless it is said to be some tool's.
    both_fire(&lint(&[("schema.sql", &sql())], Some("prisma")));
}

/// The other classes, on minimal files: `WHERE new_column IS NULL` right
/// after adding it is every row; a new column whose default a foreign key
/// checks scans both tables; dropping NOT NULL is information, not a
/// warning that code breaks.
#[test]
fn every_row_filters_defaulted_foreign_keys_and_relaxations() {
    let found = lint(
        &[(
            "20240101000001_active.up.sql",
            "ALTER TABLE users ADD COLUMN active boolean;\n\
             UPDATE users SET active = true WHERE active IS NULL;\n\
             ALTER TABLE posts ADD COLUMN owner_id bigint DEFAULT 1 REFERENCES users (id);\n\
             ALTER TABLE users ALTER COLUMN email DROP NOT NULL;\n",
        )],
        None,
    );
    let got: Vec<(u64, &str)> = found.iter().map(|(_, l, r)| (*l, r.as_str())).collect();
    assert!(got.contains(&(2, "backfill-in-migration")), "{got:?}");
    assert!(got.contains(&(3, "add-foreign-key")), "{got:?}");
    assert!(got.contains(&(4, "drop-not-null")), "{got:?}");
    assert!(!got.contains(&(4, "drop-dependency")), "{got:?}");
}

/// Fixes name tables, indexes and constraints as SQL must spell them:
/// `ALTER TABLE User …` is a syntax error and `ON Document` names
/// `document`, so case-sensitive and reserved names are quoted.
#[test]
fn fixes_quote_the_names_that_need_it() {
    let text = lint_text(
        "migration.sql",
        "CREATE INDEX \"User_email_idx\" ON \"User\" (\"email\");\n\
         ALTER TABLE \"User\" ADD CONSTRAINT \"User_org_fkey\" FOREIGN KEY (\"orgId\") REFERENCES \"Org\" (\"id\");\n\
         ALTER TABLE \"Document\" ADD CONSTRAINT \"Document_key\" UNIQUE (\"slug\");\n\
         ALTER TABLE orders ALTER COLUMN \"shippedAt\" SET NOT NULL;\n",
    );
    for expected in [
        // The statement as written, made safe: its own columns.
        "`CREATE INDEX CONCURRENTLY IF NOT EXISTS \"User_email_idx\" ON \"User\" (\"email\")`",
        "`ALTER TABLE \"User\" ADD CONSTRAINT \"User_org_fkey\" FOREIGN KEY (\"orgId\") REFERENCES \"Org\" (\"id\") NOT VALID`",
        "`ALTER TABLE \"User\" VALIDATE CONSTRAINT \"User_org_fkey\"`",
        "`CREATE UNIQUE INDEX CONCURRENTLY \"Document_key\" ON \"Document\" (\"slug\")`",
        "CHECK (\"shippedAt\" IS NOT NULL)",
    ] {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }
}

/// A DO block's body is read: the statements it runs are judged where
/// they stand in the file, through `IF NOT EXISTS` guards and `EXECUTE
/// 'literal'`; a CONCURRENTLY in it cannot run at all, and a LOOP of
/// UPDATEs in it is one transaction, not a batched backfill. In keel's own
/// folders as in other tools' files.
/// PL/pgSQL's own syntax inside a DO block (`RETURNING … INTO var`, an
/// assignment) is no syntax error: PostgreSQL accepts the file. The SQL
/// before the INTO is still read (harbor's migrations hold 14 of these).
#[test]
fn plpgsql_inside_a_do_block_is_no_syntax_error() {
    let body = "DO $$\n\
        DECLARE x integer;\n\
        BEGIN\n\
        \x20 INSERT INTO orders (user_id) VALUES (1) RETURNING id INTO x;\n\
        \x20 x := x + 1;\n\
        \x20 SELECT count(*) INTO x FROM orders;\n\
        \x20 CREATE INDEX orders_user_idx ON orders (user_id);\n\
        END\n\
        $$;\n";
    let found = lint(&[("20240101000001_orders.up.sql", body)], None);
    assert!(!rules(&found).contains(&"syntax-error"), "{found:?}");
    assert!(
        found
            .iter()
            .any(|(_, line, r)| *line == 7 && r == "create-index-blocking"),
        "{found:?}"
    );
}

#[test]
fn do_blocks_are_read() {
    let body = "DO $$\n\
        BEGIN\n\
        \x20 IF NOT EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'orders_user_idx') THEN\n\
        \x20   CREATE INDEX orders_user_idx ON orders (user_id);\n\
        \x20 END IF;\n\
        \x20 EXECUTE 'ALTER TABLE orders RENAME COLUMN total TO amount';\n\
        \x20 CREATE INDEX CONCURRENTLY orders_at_idx ON orders (created_at);\n\
        \x20 LOOP\n\
        \x20   UPDATE orders SET amount = 0 WHERE id IN (SELECT id FROM orders WHERE amount IS NULL LIMIT 1000);\n\
        \x20   EXIT WHEN NOT FOUND;\n\
        \x20 END LOOP;\n\
        END\n\
        $$;\n";
    let expected = [
        (4, "create-index-blocking"),
        (6, "rename-column"),
        (7, "concurrently-in-transaction"),
        (9, "backfill-in-migration"),
    ];
    for (files, layout) in [
        (vec![("20240101000001_orders.up.sql", body)], None),
        (vec![("schema.sql", body)], None),
        (
            vec![
                ("20240101000001_orders/up.sql", body),
                (
                    "20240101000001_orders/migration.toml",
                    "transaction = false\n",
                ),
            ],
            None,
        ),
    ] {
        let found = lint(&files, layout);
        let got: Vec<(u64, &str)> = found.iter().map(|(_, l, r)| (*l, r.as_str())).collect();
        for e in expected {
            assert!(got.contains(&e), "missing {e:?} in {got:?} ({files:?})");
        }
    }
    // What the messages say, and that PostgreSQL agrees about CONCURRENTLY.
    let text = lint_text("schema.sql", body);
    assert!(text.contains("cannot run inside a DO block"), "{text}");
    assert!(
        text.contains("UPDATE in a LOOP of a DO block is not batched"),
        "{text}"
    );
    let pg = Project::postgres();
    pg.exec("CREATE TABLE orders (id bigint PRIMARY KEY, created_at timestamptz)");
    let err = crate::common::session::Session::open(&pg.url)
        .try_exec(
            "DO $$ BEGIN CREATE INDEX CONCURRENTLY orders_at_idx ON orders (created_at); END $$",
        )
        .unwrap_err();
    assert!(err.contains("cannot be executed from a function"), "{err}");
}

/// A fix for another tool's file says how to do its step with that tool:
/// never keel's `[backfill]`, migration.toml, `keel new` or keel's backups,
/// which a project on sqlx or goose does not have.
#[test]
fn fixes_for_other_tools_name_their_means_not_keels() {
    let sql = "\
UPDATE orders SET status = 'new';
CREATE INDEX orders_user_idx ON orders (user_id);
ALTER TABLE orders RENAME COLUMN total TO amount;
ALTER TABLE orders ADD COLUMN token uuid DEFAULT gen_random_uuid();
ALTER TABLE orders ALTER COLUMN note TYPE integer USING note::integer;
TRUNCATE audit_log;
DROP INDEX orders_old_idx;
ALTER TABLE orders ADD CONSTRAINT orders_code_key UNIQUE (code);
ALTER TABLE orders DROP COLUMN legacy;
DROP TABLE old_orders;
";
    let keel_only = [
        "[backfill]",
        "migration.toml",
        "keel new",
        "keel's backup",
        "keel drops",
        "keel backs",
        "`transaction = false`",
    ];
    // A diesel folder is keel's shape: told by its name, or by diesel's
    // first migration beside it.
    let diesel_setup = "00000000000000_diesel_initial_setup/up.sql";
    for (name, text, own) in [
        (
            "20240101000000_orders.up.sql",
            sql.to_string(),
            "`-- no-transaction`",
        ),
        (
            "20240101000000_orders.sql",
            format!("-- +goose Up\n{sql}"),
            "`-- +goose NO TRANSACTION`",
        ),
        (
            "migrations/2024-01-01-000000_orders/up.sql",
            sql.to_string(),
            "`run_in_transaction = false`",
        ),
        (
            "migrations/20240101000000_orders/up.sql",
            sql.to_string(),
            "`run_in_transaction = false`",
        ),
    ] {
        let p = Project::sqlite();
        let path = p.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        if name.ends_with("20240101000000_orders/up.sql") {
            let setup = p.path().join("migrations").join(diesel_setup);
            std::fs::create_dir_all(setup.parent().unwrap()).unwrap();
            std::fs::write(setup, "SELECT 1;\n").unwrap();
        }
        let findings = p.lint_findings(&[name]);
        let fixes: Vec<(&str, &str)> = findings
            .iter()
            .map(|f| {
                (
                    f["rule"].as_str().unwrap(),
                    f["suggestion"].as_str().unwrap_or(""),
                )
            })
            .collect();
        for rule in [
            "backfill-in-migration",
            "create-index-blocking",
            "rename-column",
            "add-column-rewrite",
            "change-column-type",
            "truncate",
            "drop-index-blocking",
            "add-unique",
            "drop-column",
            "drop-table",
        ] {
            assert!(
                fixes.iter().any(|(r, _)| *r == rule),
                "{name}: no {rule} in {fixes:#?}"
            );
        }
        for (rule, fix) in &fixes {
            for word in keel_only {
                assert!(
                    !fix.contains(word),
                    "{name}: {rule}'s fix says {word}: {fix}"
                );
            }
        }
        let index = fixes
            .iter()
            .find(|(r, _)| *r == "create-index-blocking")
            .unwrap()
            .1;
        assert!(index.contains(own), "{name}: {index}");
        let batched = fixes
            .iter()
            .find(|(r, _)| *r == "backfill-in-migration")
            .unwrap()
            .1;
        assert!(
            batched.contains("a batched update run after the migration"),
            "{name}: {batched}"
        );
    }
}

/// A keel migration folder (no diesel name, file or first migration
/// beside it) keeps keel's own means in its fixes.
#[test]
fn a_keel_folder_keeps_keels_means() {
    let p = Project::sqlite();
    let dir = p.path().join("migrations/20240101000000_orders");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("up.sql"),
        "CREATE INDEX CONCURRENTLY orders_user_idx ON orders (user_id);\n",
    )
    .unwrap();
    let findings = p.lint_findings(&["migrations/20240101000000_orders/up.sql"]);
    let fix = findings
        .iter()
        .find(|f| f["rule"] == "concurrently-in-transaction")
        .and_then(|f| f["suggestion"].as_str())
        .unwrap_or_else(|| panic!("{findings:#?}"));
    assert!(fix.contains("migration.toml"), "{fix}");
    assert!(!fix.contains("metadata.toml"), "{fix}");
}

/// diesel's `metadata.toml` with `run_in_transaction = false` runs the
/// folder's up.sql and down.sql outside a transaction, so CONCURRENTLY
/// there is no `concurrently-in-transaction`; without it, it is.
#[test]
fn diesel_metadata_toml_runs_a_folder_outside_a_transaction() {
    let up = ("2024-01-01-000001_idx/up.sql", CONCURRENTLY);
    let down = (
        "2024-01-01-000001_idx/down.sql",
        "DROP INDEX CONCURRENTLY orders_user_idx;\n",
    );
    let outside = lint(
        &[
            up,
            down,
            (
                "2024-01-01-000001_idx/metadata.toml",
                "run_in_transaction = false # CONCURRENTLY\n",
            ),
        ],
        None,
    );
    assert!(
        !rules(&outside).contains(&"concurrently-in-transaction"),
        "{outside:?}"
    );
    let inside = lint(&[up, down], None);
    let flagged: Vec<&str> = inside
        .iter()
        .filter(|(_, _, r)| r == "concurrently-in-transaction")
        .map(|(f, _, _)| f.as_str())
        .collect();
    assert_eq!(
        flagged,
        [
            "2024-01-01-000001_idx/down.sql",
            "2024-01-01-000001_idx/up.sql"
        ],
        "{inside:?}"
    );
}

/// `DROP INDEX i; CREATE INDEX i …` rebuilds an index an earlier
/// migration made: the DROP locks the live table (only a drop after the
/// file's own CREATE is the file's own index).
#[test]
fn a_drop_before_the_files_own_create_of_that_name_is_reported() {
    let found = lint(
        &[(
            "20240101000001_rebuild.up.sql",
            "DROP INDEX orders_user_idx;\n\
             CREATE INDEX orders_user_idx ON orders (user_id, created_at);\n\
             CREATE INDEX orders_day_idx ON orders (created_at);\n\
             DROP INDEX orders_day_idx;\n",
        )],
        None,
    );
    let got: Vec<(u64, &str)> = found.iter().map(|(_, l, r)| (*l, r.as_str())).collect();
    assert!(got.contains(&(1, "drop-index-blocking")), "{got:?}");
    assert!(!got.contains(&(4, "drop-index-blocking")), "{got:?}");
}

/// Read as a history, `DROP INDEX i; CREATE INDEX IF NOT EXISTS i …` of an
/// index an earlier file made builds i again on the live table: it is no
/// no-op, and the build blocks writes.
#[test]
fn an_index_dropped_and_built_again_in_a_history_is_a_build() {
    let found = lint(
        &[
            (
                "V1__orders.sql",
                "CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint);\n\
                 CREATE INDEX IF NOT EXISTS orders_user_idx ON orders (user_id);\n",
            ),
            (
                "V2__rebuild.sql",
                "DROP INDEX IF EXISTS orders_user_idx;\n\
                 CREATE INDEX IF NOT EXISTS orders_user_idx ON orders (user_id, id);\n",
            ),
            (
                "V3__again.sql",
                "CREATE INDEX IF NOT EXISTS orders_user_idx ON orders (user_id, id);\n",
            ),
        ],
        None,
    );
    let got: Vec<(&str, u64, &str)> = found
        .iter()
        .map(|(f, l, r)| (f.as_str(), *l, r.as_str()))
        .collect();
    assert!(
        got.contains(&("V2__rebuild.sql", 1, "drop-index-blocking")),
        "{got:?}"
    );
    assert!(
        got.contains(&("V2__rebuild.sql", 2, "create-index-blocking")),
        "{got:?}"
    );
    // V3's is a no-op: V2 built it.
    assert!(
        !got.contains(&("V3__again.sql", 1, "create-index-blocking")),
        "{got:?}"
    );
}

/// A diesel project's folders carry diesel's names (`2024-01-01-000001_x`,
/// `00000000000000_diesel_initial_setup`): not keel's to rename, so no
/// `file-name`; a folder named neither way still gets one.
#[test]
fn diesel_folder_names_are_not_file_name_errors() {
    let up = "CREATE TABLE t (id bigint PRIMARY KEY);\n";
    let found = lint(
        &[
            ("00000000000000_diesel_initial_setup/up.sql", up),
            ("2024-01-01-000001_create_t/up.sql", up),
            ("2024-01-02-000001-0000_create_u/up.sql", up),
            ("create_v/up.sql", up),
        ],
        None,
    );
    let named: Vec<&str> = found
        .iter()
        .filter(|(_, _, r)| r == "file-name")
        .map(|(f, _, _)| f.as_str())
        .collect();
    assert_eq!(named, ["create_v"], "{found:?}");
}
