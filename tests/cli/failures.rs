//! Unhappy paths: bad SQL, a failure in the middle of a run, edited history,
//! bad files, an unreachable database. Each names what went wrong and where,
//! exits with the contract's code, and leaves nothing half-applied.

use crate::common::process::wait_until;
use crate::common::session::Session;
use crate::common::{Db, Project, stderr};
use std::time::Duration;

fn three_migrations_second_fails(p: &Project) {
    p.migration(
        "20250101000001_first",
        "CREATE TABLE first (id bigint PRIMARY KEY);\n",
        Some("DROP TABLE first;"),
        None,
    );
    p.migration(
        "20250101000002_second",
        "CREATE TABLE second (id bigint PRIMARY KEY);\n\nINSERT INTO second (id)\n  SELECT id FROM no_such_table;\n",
        Some("DROP TABLE second;"),
        None,
    );
    p.migration(
        "20250101000003_third",
        "CREATE TABLE third (id bigint PRIMARY KEY);\n",
        Some("DROP TABLE third;"),
        None,
    );
}

both!(
    failure_in_the_middle_keeps_earlier_and_drops_its_own,
    |p: Project| {
        three_migrations_second_fails(&p);
        let out = p.keel().arg("up").output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        // PostgreSQL points at the missing table itself; SQLite gives no position,
        // so keel names the statement's first line.
        let place = match p.db {
            Db::Postgres => "up.sql:4:18",
            Db::Sqlite => "up.sql:3:1",
        };
        assert!(
            err.contains(&format!(
                "migration 20250101000002_second failed at migrations/20250101000002_second/{place}"
            )),
            "{err}"
        );
        assert!(err.contains("no_such_table"), "{err}");
        // Reported once its commit was known to be on disk, before the error.
        assert!(
            err.find("applied  20250101000001_first")
                .is_some_and(|i| i < err.find("error: ").unwrap()),
            "{err}"
        );
        assert!(
            err.contains(
                "nothing of it was kept; the migrations this run applied before it stay applied"
            ),
            "{err}"
        );
        assert!(p.table_exists("first"));
        assert!(
            !p.table_exists("second"),
            "the failed migration's own statements are rolled back"
        );
        assert!(!p.table_exists("third"));
        assert_eq!(
            p.rows("SELECT version, state FROM keel_migrations ORDER BY version"),
            vec![vec![
                Some("20250101000001".to_string()),
                Some("applied".to_string())
            ]]
        );
    }
);

#[test]
fn postgres_error_position_gives_exact_line_and_column() {
    let p = Project::postgres();
    p.migration(
        "20250101000001_typo",
        "CREATE TABLE a (id bigint);\n\nSELECT id,\n       nope\n  FROM a;\n",
        Some("DROP TABLE a;"),
        None,
    );
    let out = p.keel().arg("up").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("up.sql:4:8"), "{err}");
    assert!(
        err.contains("column \"nope\" does not exist (42703)"),
        "{err}"
    );
}

both!(edited_applied_migration_is_refused_by_name, |p: Project| {
    let dir = p.migration(
        "20250101000001_first",
        "CREATE TABLE first (id bigint PRIMARY KEY);\n",
        Some("DROP TABLE first;"),
        None,
    );
    p.keel().arg("up").assert().success();
    std::fs::write(
        dir.join("up.sql"),
        "CREATE TABLE first (id bigint PRIMARY KEY, extra text);\n",
    )
    .unwrap();
    p.migration(
        "20250101000002_next",
        "CREATE TABLE next (id bigint);\n",
        Some("DROP TABLE next;"),
        None,
    );
    let out = p.keel().arg("up").output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = stderr(&out);
    assert!(
        err.contains("refusing to run: 20250101000001_first (modified)"),
        "{err}"
    );
    assert!(err.contains("write a new migration"), "{err}");
    assert!(!p.table_exists("next"), "nothing runs after a refusal");
    let status = p
        .keel()
        .args(["status", "--format", "json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["migrations"][0]["state"], "modified");
});

both!(bad_files_are_all_reported_with_fixes, |p: Project| {
    p.migration("2025_add_things", "SELECT 1;", None, None);
    p.migration("20250101000001-AddUsers", "SELECT 1;", None, None);
    p.migration("20250101000002_one", "SELECT 1;", Some(""), None);
    p.migration("20250101000002_two", "SELECT 1;", Some(""), None);
    p.migration(
        "20250101000003_meta",
        "SELECT 1;",
        Some(""),
        Some("description = \"x\"\nlock_timout = \"2s\"\n"),
    );
    let out = p.keel().arg("up").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("4 problems in the migration files"), "{err}");
    assert!(
        err.contains("migrations/2025_add_things: `2025_add_things` is not named <version>_<name>"),
        "{err}"
    );
    assert!(
        err.contains("rename the folder to `20250101000001_add_users`"),
        "{err}"
    );
    assert!(
        err.contains("version 20250101000002 is used twice"),
        "{err}"
    );
    assert!(
        err.contains(
            "migrations/20250101000003_meta/migration.toml:2:1: unknown field `lock_timout`"
        ),
        "{err}"
    );
    assert!(
        err.contains("valid keys: description, reversibility, transaction, lock_timeout"),
        "{err}"
    );
    assert!(
        !p.table_exists("keel_migrations"),
        "nothing touched the database"
    );
});

#[test]
fn unreachable_database_is_a_clear_error_without_the_password() {
    let p = Project::sqlite();
    p.sample();
    let out = p
        .keel()
        .args([
            "status",
            "--database-url",
            "postgres://app:s3cret@127.0.0.1:1/prod",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: cannot reach the database at postgres://app:***@127.0.0.1:1/prod"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// The files are read while the connection is made (on threads of their
/// own): a problem in them is still the error reported, whatever the
/// database says, for every command that reads both.
#[test]
fn a_problem_in_the_files_is_reported_before_an_unreachable_database() {
    let p = Project::sqlite();
    p.sample();
    let bad = p.path().join("migrations/20250101000009_bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("up.sql"), [b'S', 0xff, b';']).unwrap();
    for command in [&["status"][..], &["up"], &["down"]] {
        let out = p
            .keel()
            .args(command)
            .args(["--database-url", "postgres://app:s3cret@127.0.0.1:1/prod"])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{command:?}: {err}");
        assert!(
            err.contains("1 problem in the migration files:")
                && err.contains("20250101000009_bad/up.sql: not valid UTF-8 (byte 1)"),
            "{command:?}: {err}"
        );
        assert!(!err.contains("cannot reach"), "{command:?}: {err}");
        assert!(!err.contains("s3cret"), "{command:?}: {err}");
    }
}

#[test]
fn unknown_database_scheme_is_a_usage_error() {
    let p = Project::sqlite();
    let out = p
        .keel()
        .args(["status", "--database-url", "mysql://root:pw@localhost/x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr(&out).contains(":pw@"), "{}", stderr(&out));
}

both!(down_without_down_sql_is_refused, |p: Project| {
    p.migration(
        "20250101000001_first",
        "CREATE TABLE first (id bigint);\n",
        None,
        None,
    );
    p.keel().arg("up").assert().success();
    let out = p.keel().arg("down").output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr(&out).contains("has no down.sql"), "{}", stderr(&out));
    assert!(p.table_exists("first"));
});

both!(
    two_runs_at_once_apply_each_migration_exactly_once,
    |p: Project| {
        p.migration(
            "20250101000000_log",
            "CREATE TABLE runs (migration text NOT NULL);\n",
            Some("DROP TABLE runs;"),
            None,
        );
        // Slow enough that the two runs overlap.
        let slow = match p.db {
            Db::Postgres => "SELECT pg_sleep(0.3);",
            Db::Sqlite => {
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) SELECT count(*) FROM c;"
            }
        };
        for i in 1..=4 {
            p.migration(
                &format!("2025010100000{i}_m{i}"),
                &format!("{slow}\nINSERT INTO runs (migration) VALUES ('m{i}');\n"),
                Some(&format!("DELETE FROM runs WHERE migration = 'm{i}';")),
                None,
            );
        }
        let spawn = || {
            let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("keel"));
            cmd.current_dir(p.path())
                .env("DATABASE_URL", &p.url)
                .arg("up");
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        assert!(a.status.success(), "{}", stderr(&a));
        assert!(b.status.success(), "{}", stderr(&b));
        // The one that waited says who it waits for.
        let holder = match p.db {
            Db::Postgres => "held by PostgreSQL backend pid ",
            Db::Sqlite => "held by keel process ",
        };
        let said = format!("{}{}", stderr(&a), stderr(&b));
        assert!(
            said.contains(&format!(
                "waiting for another keel run on this database to finish (for at most 10m): the run lock is {holder}"
            )),
            "{said}"
        );
        assert_eq!(
            p.rows("SELECT migration, count(*) FROM runs GROUP BY migration ORDER BY migration")
                .len(),
            4
        );
        assert_eq!(
            p.scalar("SELECT count(*) FROM runs").as_deref(),
            Some("4"),
            "each migration ran exactly once"
        );
        assert_eq!(
            p.scalar("SELECT count(*) FROM keel_migrations").as_deref(),
            Some("5")
        );
    }
);

both!(
    status_says_a_run_holds_the_lock_until_its_session_has_ended,
    |p: Project| {
        // Long enough to look while it runs; on PostgreSQL the server goes
        // on with the statement after keel is killed.
        let slow = match p.db {
            Db::Postgres => "SELECT pg_sleep(2);",
            Db::Sqlite => {
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 8000000) SELECT count(*) FROM c;"
            }
        };
        p.migration(
            "20250101000000_slow",
            &format!("CREATE TABLE t (id int);\n{slow}\n"),
            Some("DROP TABLE t;"),
            None,
        );
        let running = || {
            let json = p.status_json(&[]);
            (
                json["running"].clone(),
                json["migrations"][0]["state"].clone(),
            )
        };
        assert_eq!(running().0, serde_json::Value::Null, "no run yet");
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("keel"))
            .current_dir(p.path())
            .env("DATABASE_URL", &p.url)
            .arg("up")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut seen = serde_json::Value::Null;
        wait_until("status to see the run", Duration::from_secs(20), || {
            seen = running().0;
            !seen.is_null()
        });
        let holder = match p.db {
            Db::Postgres => "held by PostgreSQL backend pid ",
            Db::Sqlite => "held by keel process ",
        };
        assert!(seen["said"].as_str().unwrap().contains(holder), "{seen}");
        let text = p.keel().arg("status").output().unwrap();
        assert!(
            String::from_utf8_lossy(&text.stdout)
                .contains(&format!("running: the run lock is {holder}")),
            "{}",
            String::from_utf8_lossy(&text.stdout)
        );
        // Killed mid-statement: SQLite's lock goes with the process, and
        // PostgreSQL's with the backend once it finds its client gone.
        child.kill().unwrap();
        child.wait().unwrap();
        wait_until("the run lock to go", Duration::from_secs(20), || {
            running().0.is_null()
        });
        assert_eq!(running().1, "pending", "the killed run kept nothing");
        assert!(!p.table_exists("t"));
    }
);

/// PostgreSQL gets a migration's statements in one round trip; the error
/// still names the statement that failed, by its position or, when the
/// server gives none, by how many statements finished before it.
#[test]
fn postgres_batched_statements_still_name_the_failing_line() {
    let cases = [
        // No position from the server: the second statement's first line.
        (
            "CREATE TABLE a (id bigint);\n-- again\nCREATE TABLE a (id bigint);\n",
            "up.sql:3:1",
            "already exists",
        ),
        // A syntax error in the last statement: the server rejects the whole
        // string before running any of it, and points into that statement.
        (
            "CREATE TABLE a (id bigint);\nINSERT INTO a VALUES (1);\nSELECT 'é' FROM a WHERE id =;\n",
            "up.sql:3:29",
            "syntax error",
        ),
        // A trailing line comment before the semicolon, and text with
        // multi-byte characters before the error (positions count characters).
        (
            "CREATE TABLE a (v text DEFAULT 'ünï') -- note\n;\nSELECT v,\n  nope FROM a;\n",
            "up.sql:4:3",
            "column \"nope\" does not exist",
        ),
    ];
    for (up, place, message) in cases {
        let p = Project::postgres();
        p.migration("20250101000001_bad", up, Some("DROP TABLE a;"), None);
        let out = p.keel().arg("up").output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(place), "{up}\nexpected {place}:\n{err}");
        assert!(err.contains(message), "{err}");
        assert!(!p.table_exists("a"), "nothing of it was kept");
    }
}

/// An administrator ends keel's session (57P01) while a migration waits
/// for a lock: a connection error that says what this run committed, not
/// an SQL error.
#[test]
fn a_terminated_session_is_a_connection_error_not_an_sql_error() {
    let p = Project::postgres();
    p.migration(
        "20250101000001_first",
        "CREATE TABLE first (id bigint PRIMARY KEY);\n",
        Some("DROP TABLE first;"),
        None,
    );
    p.keel().args(["up", "-q"]).assert().success();
    p.migration(
        "20250101000002_early",
        "CREATE TABLE early (id bigint);\n",
        Some("DROP TABLE early;"),
        None,
    );
    p.migration(
        "20250101000003_waits",
        "ALTER TABLE first ADD COLUMN note text;\n",
        Some("ALTER TABLE first DROP COLUMN note;"),
        Some("lock_timeout = \"60s\"\n"),
    );
    p.migration(
        "20250101000004_late",
        "CREATE TABLE late (id bigint);\n",
        Some("DROP TABLE late;"),
        None,
    );
    let holder = Session::open(&p.url);
    holder.exec("BEGIN; LOCK TABLE first IN ACCESS SHARE MODE");
    let run = p.spawn_keel(&["up"]);
    let keel_backend = || {
        p.scalar(
            "SELECT pid::text FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%ALTER TABLE first ADD COLUMN note%' AND wait_event_type = 'Lock'",
        )
    };
    wait_until("keel waiting for the lock", Duration::from_secs(30), || {
        keel_backend().is_some()
    });
    let pid = keel_backend().unwrap();
    p.exec(&format!("SELECT pg_terminate_backend({pid})"));
    let out = run.finish();
    drop(holder);
    let err = &out.stderr;
    assert_eq!(out.status.code(), Some(1), "{err}");
    for expected in [
        "lost the connection to the database while applying 20250101000003_waits (migrations/20250101000003_waits/up.sql:1)",
        "terminating connection due to administrator command (57P01)",
        "20250101000003_waits: its transaction had not committed and ended with the connection: nothing of it was kept",
        "fix: this is not a problem with the SQL; once the server is back, `keel status` shows what is applied; then run `keel up` again",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    // The migration this run committed before is listed, as on disk or
    // (its commit did not wait for the flush) as not confirmed.
    assert!(
        err.contains("applied by this run and on disk: 20250101000002_early")
            || err.contains("(after a server crash they are pending again): 20250101000002_early"),
        "{err}"
    );
    assert!(!err.contains("correct the SQL"), "{err}");
    assert!(p.table_exists("early"));
    assert!(!p.table_exists("late"));
    assert_eq!(
        p.scalar("SELECT count(*) FROM keel_migrations").as_deref(),
        Some("2")
    );
}
