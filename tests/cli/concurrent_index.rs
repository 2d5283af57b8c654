//! `CREATE INDEX CONCURRENTLY IF NOT EXISTS` in a `transaction = false`
//! migration: idempotent, checked with pg_index.indisvalid, an INVALID
//! leftover dropped and rebuilt, and a build that fails twice leaves no
//! INVALID index behind and says why.

use crate::common::{Project, block_on, stderr};

const UP: &str =
    "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS accounts_email_key ON accounts (email);\n";

fn accounts(p: &Project) {
    p.migration(
        "20250101000001_accounts",
        "CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL);\n",
        Some("DROP TABLE accounts;\n"),
        None,
    );
    p.keel().args(["up", "-q"]).assert().success();
    p.exec("INSERT INTO accounts SELECT i, 'user' || i || '@example.com' FROM generate_series(1, 500) i");
    p.migration(
        "20250101000002_unique_email",
        UP,
        Some("DROP INDEX CONCURRENTLY IF EXISTS accounts_email_key;\n"),
        Some("transaction = false\n"),
    );
}

fn invalid_indexes(p: &Project) -> i64 {
    p.scalar("SELECT count(*) FROM pg_index WHERE NOT indisvalid")
        .unwrap()
        .parse()
        .unwrap()
}

/// Runs SQL that is expected to fail, outside keel.
fn try_exec(p: &Project, sql: &str) -> Result<(), String> {
    let (url, sql) = (p.url.clone(), sql.to_string());
    block_on(async move {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(&sql)
            .execute(&mut c)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

#[test]
fn duplicates_fail_twice_leave_nothing_invalid_and_say_why() {
    let p = Project::postgres();
    accounts(&p);
    p.exec("UPDATE accounts SET email = 'dup@example.com' WHERE id IN (7, 8)");
    let out = p.keel().arg("up").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    for expected in [
        "dropped INVALID index accounts_email_key left by the failed build",
        "index accounts_email_key of 20250101000002_unique_email was left INVALID (could not create unique index \"accounts_email_key\"); dropped it, building it once more",
        "Key (email)=(dup@example.com) is duplicated.",
        "the table has duplicate keys for unique index accounts_email_key",
        "its first statement failed and left nothing behind; the migration stays pending",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    assert_eq!(invalid_indexes(&p), 0, "no INVALID index stays behind");
    assert!(
        p.scalar("SELECT to_regclass('accounts_email_key')::text")
            .is_none()
    );

    // Fixed data: the same migration builds a valid index.
    p.exec("UPDATE accounts SET email = 'seven@example.com' WHERE id = 7");
    p.keel().args(["up", "-q"]).assert().success();
    assert_eq!(
        p.scalar(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'accounts_email_key'::regclass"
        ),
        Some("true".into())
    );
}

#[test]
fn an_invalid_leftover_is_dropped_and_rebuilt_instead_of_skipped() {
    let p = Project::postgres();
    accounts(&p);
    // A build that failed before keel ran (or was killed) leaves an INVALID
    // index of the same name, which IF NOT EXISTS alone would skip.
    p.exec("INSERT INTO accounts VALUES (501, 'user1@example.com')");
    let failed = try_exec(&p, UP);
    assert!(failed.is_err());
    assert_eq!(invalid_indexes(&p), 1);
    p.exec("DELETE FROM accounts WHERE id = 501");

    let out = p.keel().arg("up").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("dropped INVALID index accounts_email_key"),
        "{}",
        stderr(&out)
    );
    assert_eq!(invalid_indexes(&p), 0);
    assert_eq!(
        p.scalar(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'accounts_email_key'::regclass"
        ),
        Some("true".into())
    );
}

#[test]
fn an_existing_valid_index_makes_the_migration_a_no_op() {
    let p = Project::postgres();
    accounts(&p);
    p.exec("CREATE UNIQUE INDEX accounts_email_key ON accounts (email)");
    let oid = p.scalar("SELECT 'accounts_email_key'::regclass::oid::bigint");
    p.keel().args(["up", "-q"]).assert().success();
    assert_eq!(
        p.scalar("SELECT 'accounts_email_key'::regclass::oid::bigint"),
        oid,
        "the index was not rebuilt"
    );
    // And down/up again is clean.
    p.keel().args(["down", "-q"]).assert().success();
    p.keel().args(["up", "-q"]).assert().success();
    assert_eq!(invalid_indexes(&p), 0);
}
