//! `transaction = false` migrations: statement by statement, the failed
//! state, and `keel resolve`.

use crate::common::process::wait_until;
use crate::common::session::Session;
use crate::common::{Db, Project, stderr, stdout};
use std::time::Duration;

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
        err.contains("it waited for an ACCESS EXCLUSIVE lock on busy, blocked by")
            && err.contains("pg_terminate_backend("),
        "the error names the blocker and the fix how to end it: {err}"
    );
    // Once the lock is gone the same migration applies.
    p.keel().arg("up").assert().success();
}

const V2: &str = "20250101000002";

/// items with an index built by the migration under test, and notes whose
/// `body` column it drops (so its up takes a backup).
fn index_and_drop(p: &Project, down_middle: &str) {
    p.migration(
        "20250101000001_base",
        "CREATE TABLE items (id bigint PRIMARY KEY, code text);\nCREATE TABLE notes (id bigint PRIMARY KEY, body text);\nINSERT INTO items VALUES (1, 'a'), (2, 'b');\nINSERT INTO notes VALUES (1, 'first'), (2, 'second'), (3, NULL);\n",
        Some("DROP TABLE notes;\nDROP TABLE items;\n"),
        None,
    );
    let (create, drop) = match p.db {
        Db::Postgres => (
            "CREATE INDEX CONCURRENTLY items_code_idx ON items (code)",
            "DROP INDEX CONCURRENTLY items_code_idx",
        ),
        Db::Sqlite => (
            "CREATE INDEX items_code_idx ON items (code)",
            "DROP INDEX items_code_idx",
        ),
    };
    p.migration(
        "20250101000002_index_and_drop",
        &format!("{create};\nALTER TABLE notes DROP COLUMN body;\n"),
        Some(&format!(
            "{drop};\n{down_middle}ALTER TABLE notes ADD COLUMN body text;\n"
        )),
        Some("transaction = false\nlock_timeout = \"60s\"\n"),
    );
    // Two runs: the notes to back up exist before the migration's run.
    p.keel()
        .args(["up", "--to", "20250101000001", "-q"])
        .assert()
        .success();
    p.keel().args(["up", "-q"]).assert().success();
}

fn tracking_state(p: &Project, version: &str) -> Option<String> {
    p.scalar(&format!(
        "SELECT state FROM keel_migrations WHERE version = '{version}'"
    ))
}

fn index_exists(p: &Project) -> bool {
    match p.db {
        Db::Postgres => p
            .scalar("SELECT to_regclass('items_code_idx')::text")
            .is_some(),
        Db::Sqlite => {
            p.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'items_code_idx'")
                .as_deref()
                == Some("1")
        }
    }
}

both!(
    a_killed_non_transactional_down_is_marked_failed_while_reverting,
    |p: Project| {
        // Each dialect's way of keeping keel in the down's second statement
        // long enough to kill it there: PostgreSQL waits for a lock another
        // session holds; SQLite computes.
        let middle = match p.db {
            Db::Postgres => "",
            Db::Sqlite => {
                "SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000000) SELECT x FROM c);\n"
            }
        };
        index_and_drop(&p, middle);
        let blocker = (p.db == Db::Postgres).then(|| {
            let s = Session::open(&p.url);
            s.exec("BEGIN; LOCK TABLE notes IN ACCESS SHARE MODE");
            s
        });
        let down = p.spawn_keel(&["down"]);
        wait_until(
            "keel inside the down's second statement",
            Duration::from_secs(60),
            || {
                match p.db {
                Db::Postgres => p
                    .scalar(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'ALTER TABLE notes ADD COLUMN%' AND wait_event_type = 'Lock'",
                    )
                    .as_deref()
                    == Some("1"),
                Db::Sqlite => !index_exists(&p),
            }
            },
        );
        let killed = down.kill();
        drop(blocker);
        if p.db == Db::Postgres {
            // The killed run's backend ends (cancelled, or done) and lets
            // the run lock go.
            wait_until(
                "the killed run's backend to end",
                Duration::from_secs(30),
                || {
                    p.scalar(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'ALTER TABLE notes ADD COLUMN%' AND state = 'active'",
                )
                .as_deref()
                    == Some("0")
                },
            );
        }

        // The index is gone: the migration must not look applied.
        assert!(!index_exists(&p), "{}", killed.stderr);
        assert_eq!(tracking_state(&p, V2).as_deref(), Some("failed_down"));
        let status = p.keel().arg("status").output().unwrap();
        let text = stdout(&status);
        assert!(
            text.contains("20250101000002  index_and_drop  failed"),
            "{text}"
        );
        // (How far it got as keel last recorded it: the kill may fall
        // between a statement and that record.)
        assert!(
            text.contains(
                "20250101000002: keel stopped while reverting with down.sql statement by statement, after "
            ),
            "{text}"
        );
        let json = p
            .keel()
            .args(["status", "--format", "json"])
            .output()
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        assert_eq!(json["migrations"][1]["state"], "failed");
        assert_eq!(json["migrations"][1]["failed_direction"], "down");

        for args in [["up"], ["down"]] {
            let refused = p.keel().args(args).output().unwrap();
            assert_eq!(refused.status.code(), Some(4), "{}", stderr(&refused));
            let err = stderr(&refused);
            assert!(
                err.contains(
                    "refusing to run: 20250101000002_index_and_drop (failed while reverting)"
                ),
                "{err}"
            );
            assert!(
                err.contains("finish the revert by hand and run `keel resolve 20250101000002 --reverted`, or redo what down.sql undid and run `keel resolve 20250101000002 --applied`"),
                "{err}"
            );
        }

        // The operator finishes the revert by hand and says so; keel says
        // the backed-up data is not back yet, and how to put it back.
        // (SQLite has no ADD COLUMN IF NOT EXISTS; its down never got there.)
        p.exec(match p.db {
            Db::Postgres => "ALTER TABLE notes ADD COLUMN IF NOT EXISTS body text",
            Db::Sqlite => "ALTER TABLE notes ADD COLUMN body text",
        });
        let resolved = p
            .keel()
            .args(["resolve", V2, "--reverted"])
            .output()
            .unwrap();
        assert!(resolved.status.success(), "{}", stderr(&resolved));
        let said = stderr(&resolved);
        assert!(
            said.contains("migration 20250101000002 recorded as reverted, pending again (it had stopped part-way through down.sql)"),
            "{said}"
        );
        let archive = said
            .split("put it back with `keel restore ")
            .nth(1)
            .and_then(|rest| rest.split('`').next())
            .unwrap_or_else(|| panic!("no restore command in:\n{said}"))
            .to_string();
        assert!(
            archive.starts_with("backups/20250101000002_index_and_drop/"),
            "{said}"
        );
        assert_eq!(tracking_state(&p, V2), None);
        p.keel().args(["restore", &archive]).assert().success();
        assert_eq!(
            p.rows("SELECT id, body FROM notes ORDER BY id"),
            vec![
                vec![Some("1".into()), Some("first".into())],
                vec![Some("2".into()), Some("second".into())],
                vec![Some("3".into()), None],
            ]
        );
        // And the migration applies again.
        p.keel().args(["up", "-q"]).assert().success();
        assert!(index_exists(&p));
        assert_eq!(tracking_state(&p, V2).as_deref(), Some("applied"));
    }
);

both!(
    a_failed_non_transactional_down_resolved_as_applied,
    |p: Project| {
        index_and_drop(&p, "INSERT INTO no_such_table VALUES (1);\n");
        let applied_at = p.scalar(&format!(
            "SELECT applied_at FROM keel_migrations WHERE version = '{V2}'"
        ));
        let out = p.keel().arg("down").output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("down.sql:2:"), "{err}");
        assert!(
            err.contains(
                "1 of 3 statements took effect (transaction = false); the migration is marked failed while reverting"
            ),
            "{err}"
        );
        assert!(!err.contains("correct down.sql"), "{err}");
        assert_eq!(tracking_state(&p, V2).as_deref(), Some("failed_down"));

        // The operator puts the index back instead: the migration is applied.
        p.exec("CREATE INDEX items_code_idx ON items (code)");
        let resolved = p
            .keel()
            .args(["resolve", V2, "--applied"])
            .output()
            .unwrap();
        assert!(resolved.status.success(), "{}", stderr(&resolved));
        assert!(
            stderr(&resolved).contains(
                "migration 20250101000002 recorded as applied (it had stopped part-way through down.sql)"
            ),
            "{}",
            stderr(&resolved)
        );
        assert!(
            !stderr(&resolved).contains("keel restore"),
            "{}",
            stderr(&resolved)
        );
        assert_eq!(tracking_state(&p, V2).as_deref(), Some("applied"));
        // Still the record of when it was applied, not of the resolution.
        assert_eq!(
            p.scalar(&format!(
                "SELECT applied_at FROM keel_migrations WHERE version = '{V2}'"
            )),
            applied_at
        );
        p.keel().args(["up", "-q"]).assert().success();
    }
);

/// Runs `keel up` on a migration that updates `a` then `b` while another
/// session, holding `b`'s row, goes for `a`: a deadlock that PostgreSQL
/// breaks by rolling keel's transaction back. keel backs up the old values
/// inside its transaction, so it waits on `LOCK TABLE a, b IN SHARE MODE`
/// (holding `a`, waiting for `b`) rather than on the UPDATE of `b`: the
/// same cycle.
fn deadlocked_up(p: &Project) -> crate::common::process::Finished {
    let other = Session::open(&p.url);
    other.exec("BEGIN; UPDATE b SET v = v + 1 WHERE id = 1");
    let run = p.spawn_keel(&["up"]);
    wait_until("keel waiting for b", Duration::from_secs(30), || {
        p.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND (query LIKE '%UPDATE b SET v = 10%' OR query LIKE 'LOCK TABLE %') AND wait_event_type = 'Lock'",
        )
        .as_deref()
            == Some("1")
    });
    // keel has waited longest, so its deadlock check (after
    // deadlock_timeout, 1 s) finds the cycle and ends its transaction;
    // this update then goes through.
    other.exec("UPDATE a SET v = v + 1 WHERE id = 1");
    other.exec("COMMIT");
    run.finish()
}

#[test]
fn a_deadlock_is_retried_and_when_it_persists_is_not_blamed_on_the_sql() {
    let p = Project::postgres();
    p.migration(
        "20250101000001_base",
        "CREATE TABLE a (id bigint PRIMARY KEY, v int);\nCREATE TABLE b (id bigint PRIMARY KEY, v int);\nINSERT INTO a VALUES (1, 0);\nINSERT INTO b VALUES (1, 0);\n",
        Some("DROP TABLE a;\nDROP TABLE b;\n"),
        None,
    );
    p.keel().args(["up", "-q"]).assert().success();
    let dir = p.migration(
        "20250101000002_touch_both",
        "UPDATE a SET v = 10 WHERE id = 1;\nUPDATE b SET v = 10 WHERE id = 1;\n",
        Some("SELECT 1;\n"),
        Some("lock_timeout = \"30s\"\nretries = 0\n"),
    );

    // No retries left: the error says what happened and what to do about
    // the other sessions, not to correct the SQL.
    let out = deadlocked_up(&p);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("deadlock detected (40P01)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("fix: its SQL is not at fault: on every try a concurrent transaction won"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("then run `keel up` again"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("correct the SQL"), "{}", out.stderr);
    assert_eq!(p.scalar("SELECT v::text FROM a"), Some("1".into()));
    assert_eq!(tracking_state(&p, V2), None);

    // With a retry it goes through once the other session is done.
    std::fs::write(
        dir.join("migration.toml"),
        "lock_timeout = \"30s\"\nretries = 1\n",
    )
    .unwrap();
    let out = deadlocked_up(&p);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("deadlock in 20250101000002_touch_both: retry 1 of 1 in 500 ms"),
        "{}",
        out.stderr
    );
    assert_eq!(p.scalar("SELECT v::text FROM a"), Some("10".into()));
    assert_eq!(p.scalar("SELECT v::text FROM b"), Some("10".into()));
    assert_eq!(tracking_state(&p, V2).as_deref(), Some("applied"));
}
