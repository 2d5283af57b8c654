//! `transaction = false` migrations: statement by statement, the failed
//! state, and `keel resolve`.

use crate::common::{Project, stderr, stdout};

const NO_TX: &str = "transaction = false\n";

#[test]
fn failure_after_a_statement_took_effect_marks_failed_and_blocks_runs() {
    let p = Project::postgres();
    p.migration("20250101000001_base", "CREATE TABLE items (id bigint PRIMARY KEY, code text);\nINSERT INTO items VALUES (1, 'a'), (2, 'a');\n", Some("DROP TABLE items;"), None);
    p.migration(
        "20250101000002_indexes",
        "CREATE INDEX CONCURRENTLY items_id_idx ON items (id);\nCREATE UNIQUE INDEX CONCURRENTLY items_code_idx ON items (code);\n",
        Some("DROP INDEX CONCURRENTLY IF EXISTS items_code_idx;\nDROP INDEX CONCURRENTLY IF EXISTS items_id_idx;\n"),
        Some(NO_TX),
    );
    p.migration(
        "20250101000003_after",
        "CREATE TABLE after_it (id bigint);\n",
        Some("DROP TABLE after_it;"),
        None,
    );

    let out = p.keel().arg("up").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("up.sql:2:"), "{err}");
    assert!(err.contains("could not create unique index"), "{err}");
    assert!(
        err.contains(
            "1 of 2 statements took effect (transaction = false); the migration is marked failed"
        ),
        "{err}"
    );
    assert!(
        err.contains("keel resolve 20250101000002 --applied"),
        "{err}"
    );
    assert!(
        err.contains("dropped INVALID index"),
        "the failed concurrent build leaves no INVALID index: {err}"
    );
    assert_eq!(
        p.scalar("SELECT count(*) FROM pg_index WHERE NOT indisvalid")
            .as_deref(),
        Some("0")
    );
    assert!(!p.table_exists("after_it"));

    let status = p.keel().arg("status").output().unwrap();
    let text = stdout(&status);
    assert!(text.contains("20250101000002  indexes  failed"), "{text}");
    assert!(text.contains("statement 2 of 2 failed at line 2"), "{text}");

    let refused = p.keel().arg("up").output().unwrap();
    assert_eq!(refused.status.code(), Some(4));
    assert!(
        stderr(&refused).contains("refusing to run: 20250101000002_indexes (failed)"),
        "{}",
        stderr(&refused)
    );

    // The operator undoes the first statement by hand and says so.
    p.exec("DROP INDEX items_id_idx; UPDATE items SET code = 'b' WHERE id = 2;");
    p.keel()
        .args(["resolve", "20250101000002", "--reverted"])
        .assert()
        .success();
    p.keel().arg("up").assert().success();
    assert!(p.table_exists("after_it"));
    assert_eq!(
        p.scalar("SELECT state FROM keel_migrations WHERE version = '20250101000002'")
            .as_deref(),
        Some("applied")
    );
}

#[test]
fn failure_on_the_first_statement_stays_pending() {
    let p = Project::postgres();
    p.migration("20250101000001_base", "CREATE TABLE items (id bigint PRIMARY KEY, code text);\nINSERT INTO items VALUES (1, 'a'), (2, 'a');\n", Some("DROP TABLE items;"), None);
    p.migration(
        "20250101000002_unique",
        "CREATE UNIQUE INDEX CONCURRENTLY items_code_idx ON items (code);\n",
        Some("DROP INDEX CONCURRENTLY IF EXISTS items_code_idx;\n"),
        Some(NO_TX),
    );
    let out = p.keel().arg("up").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "its first statement failed and left nothing behind; the migration stays pending"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        p.scalar("SELECT count(*) FROM pg_index WHERE NOT indisvalid")
            .as_deref(),
        Some("0")
    );
    assert_eq!(
        p.scalar("SELECT count(*) FROM keel_migrations WHERE version = '20250101000002'")
            .as_deref(),
        Some("0")
    );
    // Fix the data; the same migration now applies.
    p.exec("UPDATE items SET code = 'b' WHERE id = 2;");
    p.keel().arg("up").assert().success();
    assert_eq!(
        p.scalar(
            "SELECT indisvalid::text FROM pg_index WHERE indexrelid = 'items_code_idx'::regclass"
        )
        .as_deref(),
        Some("true")
    );
}

#[test]
fn resolve_applied_after_finishing_by_hand() {
    let p = Project::sqlite();
    p.migration(
        "20250101000001_two_steps",
        "CREATE TABLE a (id bigint);\nINSERT INTO missing VALUES (1);\n",
        Some("DROP TABLE a;"),
        Some(NO_TX),
    );
    assert_eq!(p.keel().arg("up").output().unwrap().status.code(), Some(1));
    assert_eq!(
        p.scalar("SELECT state FROM keel_migrations").as_deref(),
        Some("failed")
    );
    let not_failed = p
        .keel()
        .args(["resolve", "20250101000009", "--applied"])
        .output()
        .unwrap();
    assert_eq!(not_failed.status.code(), Some(4));
    p.keel()
        .args(["resolve", "20250101000001", "--applied"])
        .assert()
        .success();
    assert_eq!(
        p.scalar("SELECT state FROM keel_migrations").as_deref(),
        Some("applied")
    );
    // Needs exactly one of --applied / --reverted.
    assert_eq!(
        p.keel()
            .args(["resolve", "20250101000001"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn lock_timeout_is_retried_with_back_off_then_reported() {
    let p = Project::postgres();
    p.migration(
        "20250101000001_base",
        "CREATE TABLE busy (id bigint);\n",
        Some("DROP TABLE busy;"),
        None,
    );
    p.keel().arg("up").assert().success();
    p.migration(
        "20250101000002_alter",
        "ALTER TABLE busy ADD COLUMN note text;\n",
        Some("ALTER TABLE busy DROP COLUMN note;"),
        Some("lock_timeout = \"100ms\"\nretries = 2\n"),
    );
    // Another session holds a lock on the table for the whole attempt.
    let url = p.url.clone();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        crate::common::block_on(async move {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::raw_sql("BEGIN; LOCK TABLE busy IN ACCESS SHARE MODE;")
                .execute(&mut c)
                .await
                .unwrap();
            locked_tx.send(()).unwrap();
            let _ = tokio::task::spawn_blocking(move || release_rx.recv()).await;
            sqlx::raw_sql("ROLLBACK").execute(&mut c).await.unwrap();
        })
    });
    locked_rx.recv().unwrap();
    let out = p.keel().arg("up").output().unwrap();
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("lock timeout in 20250101000002_alter: retry 1 of 2 in 500 ms"),
        "{err}"
    );
    assert!(err.contains("retry 2 of 2 in 1.0 s"), "{err}");
    assert!(
        err.contains("canceling statement due to lock timeout (55P03)"),
        "{err}"
    );
    assert!(
        err.contains("pg_stat_activity"),
        "the fix says how to find the blocker: {err}"
    );
    // Once the lock is gone the same migration applies.
    p.keel().arg("up").assert().success();
}
