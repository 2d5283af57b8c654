//! `keel lint` in live mode: with a database named, rules read the live
//! schema (current column types, function volatility, the session TimeZone,
//! valid CHECK constraints) and each finding says how big the table is and
//! how long its lock is expected to be held.

use crate::common::{Project, stderr, stdout};

/// A table big enough that rewriting it holds the lock for a while.
fn big_users(p: &Project) {
    p.exec(
        "CREATE TABLE users (id bigint PRIMARY KEY, email text, name varchar(100), seen timestamp);
         INSERT INTO users SELECT g, 'u' || g || '@example.com', 'user ' || g, now()
           FROM generate_series(1, 300000) g;
         ANALYZE users;",
    );
}

fn lint_sql(p: &Project, sql: &str) -> (Option<i32>, String) {
    std::fs::write(p.path().join("change.sql"), sql).unwrap();
    let out = p.keel().args(["lint", "change.sql"]).output().unwrap();
    (out.status.code(), stdout(&out) + &stderr(&out))
}

#[test]
fn a_rewrite_of_a_large_table_is_an_error_with_its_size_and_lock_time() {
    let p = Project::postgres();
    big_users(&p);
    let (code, text) = lint_sql(&p, "ALTER TABLE users ALTER COLUMN id TYPE text;\n");
    assert_eq!(code, Some(3), "{text}");
    assert!(
        text.contains("error[change-column-type] changing users.id from bigint to text rewrites"),
        "{text}"
    );
    assert!(text.contains("(users: 300k rows, "), "{text}");
    assert!(text.contains("; ACCESS EXCLUSIVE held ~"), "{text}");
    assert!(text.contains(" for the rewrite)"), "{text}");
}

#[test]
fn live_types_resolve_what_the_files_cannot_show() {
    let p = Project::postgres();
    big_users(&p);
    // Statically both "may rewrite"; the live types say neither does.
    let sql = "ALTER TABLE users ALTER COLUMN name TYPE varchar(200);\n\
               ALTER TABLE users ALTER COLUMN name TYPE text;\n";
    std::fs::write(p.path().join("change.sql"), sql).unwrap();
    let out = p
        .keel()
        .env_remove("DATABASE_URL")
        .args(["lint", "change.sql"])
        .output()
        .unwrap();
    assert!(stdout(&out).contains("warning[change-column-type]"));
    let (code, text) = lint_sql(&p, sql);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(text, "no findings in 1 file\n");
}

#[test]
fn timestamp_to_timestamptz_follows_the_session_timezone_keel_runs_with() {
    let p = Project::postgres();
    big_users(&p);
    // The database's default zone is not UTC, but keel's own sessions (the
    // ones that run migrations) always are: sqlx sends TimeZone=UTC at
    // startup, so under keel this conversion is a catalog change only.
    p.exec("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET TimeZone = %L', current_database(), 'Europe/Berlin'); END $$");
    assert_eq!(
        p.scalar("SELECT current_setting('TimeZone')").as_deref(),
        Some("UTC"),
        "the harness connects through sqlx too"
    );
    let sql = "ALTER TABLE users ALTER COLUMN seen TYPE timestamptz;\n";
    assert_eq!(
        lint_sql(&p, sql),
        (Some(0), "no findings in 1 file\n".into())
    );
}

#[test]
fn function_volatility_decides_whether_a_default_rewrites() {
    let p = Project::postgres();
    big_users(&p);
    p.exec(
        "CREATE FUNCTION region() RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'eu' $$;
         CREATE FUNCTION ticket() RETURNS bigint LANGUAGE sql VOLATILE AS $$ SELECT 1::bigint $$;",
    );
    let (code, text) = lint_sql(
        &p,
        "ALTER TABLE users ADD COLUMN region text DEFAULT region();\n",
    );
    assert_eq!((code, text.as_str()), (Some(0), "no findings in 1 file\n"));
    let (code, text) = lint_sql(
        &p,
        "ALTER TABLE users ADD COLUMN t bigint DEFAULT ticket();\n",
    );
    assert_eq!(code, Some(3), "{text}");
    assert!(
        text.contains("error[add-column-rewrite] adding users.t with a default of ticket()"),
        "{text}"
    );
    assert!(!text.contains("depends on"), "{text}");
}

/// A run reads the volatility of the functions its files call, not the
/// thousands of the server's: named, it gets those (user's and server's
/// alike) and no others; for every function, all of them.
#[test]
fn a_run_reads_the_volatility_of_the_functions_its_files_call() {
    use keel::analysis::live::{LiveSchema, called_names};
    use keel::db::Scope;
    let p = Project::postgres();
    p.exec(
        "CREATE FUNCTION ticket() RETURNS bigint LANGUAGE sql VOLATILE AS $$ SELECT 1::bigint $$;",
    );
    let url = p.url.clone();
    let (named, all) = crate::common::block_on(async move {
        let mut db = keel::db::connect(&url).await.unwrap();
        let mut called = std::collections::BTreeSet::new();
        called_names(
            "ALTER TABLE t ADD COLUMN a bigint DEFAULT public.ticket();\n\
             ALTER TABLE t ADD COLUMN b text DEFAULT md5('x');",
            &mut called,
        );
        let named = LiveSchema::load_calling(db.as_mut(), &Scope::All, Some(called))
            .await
            .unwrap()
            .unwrap();
        let all = loaded(db.as_mut(), &Scope::All).await;
        (named, all)
    });
    for (f, want) in [("ticket", Some('v')), ("md5", Some('i')), ("now", None)] {
        assert_eq!(named.volatility(f), want, "named: {f}");
    }
    for (f, want) in [
        ("ticket", Some('v')),
        ("md5", Some('i')),
        ("now", Some('s')),
    ] {
        assert_eq!(all.volatility(f), want, "every function: {f}");
    }
}

#[test]
fn a_valid_check_already_in_the_database_proves_not_null() {
    let p = Project::postgres();
    big_users(&p);
    let sql = "ALTER TABLE users ALTER COLUMN email SET NOT NULL;\n";
    p.exec("ALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) NOT VALID");
    let (_, text) = lint_sql(&p, sql);
    assert!(
        text.contains("[set-not-null]"),
        "a NOT VALID check proves nothing: {text}"
    );
    p.exec("ALTER TABLE users VALIDATE CONSTRAINT users_email_nn");
    assert_eq!(
        lint_sql(&p, sql),
        (Some(0), "no findings in 1 file\n".into())
    );
}

#[test]
fn on_a_small_table_a_blocking_step_is_a_warning_that_says_why() {
    let p = Project::postgres();
    p.exec(
        "CREATE TABLE tags (id bigint PRIMARY KEY, label text);
         INSERT INTO tags SELECT g, 't' || g FROM generate_series(1, 200) g; ANALYZE tags;",
    );
    let (code, text) = lint_sql(&p, "CREATE INDEX tags_label_idx ON tags (label);\n");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("warning[create-index-blocking]"), "{text}");
    assert!(text.contains("(tags: 200 rows, "), "{text}");
    assert!(text.contains(" kB; SHARE held ~"), "{text}");
    assert!(
        text.contains("the table is small enough that the lock is brief"),
        "{text}"
    );
}

#[test]
fn a_database_url_that_does_not_answer_leaves_lint_to_the_files() {
    let p = Project::sqlite();
    std::fs::write(
        p.path().join("change.sql"),
        "ALTER TABLE users DROP COLUMN bio;\n",
    )
    .unwrap();
    let out = p
        .keel()
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .args(["lint", "change.sql"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("note: $DATABASE_URL did not answer"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("error[drop-column]"));
    // Named on the command line, it must answer.
    let out = p
        .keel()
        .args([
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
            "lint",
            "change.sql",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

/// The live facts of a table that estimates start from: the width the
/// planner guesses before ANALYZE (fixed-length types by their length,
/// others 32 bytes) and which index keys are text (they sort by collation,
/// slower), for a table named and for every table.
#[test]
fn a_tables_row_width_and_text_index_keys_are_read() {
    use keel::db::Scope;
    let p = Project::postgres();
    p.exec(
        "CREATE TABLE widths (id bigint PRIMARY KEY, name text, n int, at timestamptz, v varchar(9));\n\
         CREATE INDEX widths_name ON widths (name);\n\
         CREATE INDEX widths_n_v ON widths (n, v);\n\
         CREATE INDEX widths_at ON widths (at, n);",
    );
    let url = p.url.clone();
    let (named, all) = crate::common::block_on(async move {
        let mut db = keel::db::connect(&url).await.unwrap();
        let mut scope = Scope::none();
        scope.add("widths");
        (
            loaded(db.as_mut(), &scope).await,
            loaded(db.as_mut(), &Scope::All).await,
        )
    });
    for live in [named, all] {
        let t = live.table("widths").expect("widths is read");
        // bigint 8, text 32, int 4, timestamptz 8, varchar 32.
        assert_eq!(t.stats.row_width, 84);
        let text: Vec<(&str, bool)> = t
            .indexes()
            .iter()
            .map(|i| (i.name.as_str(), i.text_key))
            .collect();
        assert_eq!(
            text,
            [
                ("widths_at", false),
                ("widths_n_v", true),
                ("widths_name", true),
                ("widths_pkey", false)
            ]
        );
    }
}

/// The live schema of `scope`, as a run reads it.
async fn loaded(
    db: &mut dyn keel::db::Database,
    scope: &keel::db::Scope,
) -> keel::analysis::live::LiveSchema {
    keel::analysis::live::LiveSchema::load(db, scope)
        .await
        .unwrap()
        .unwrap()
}
