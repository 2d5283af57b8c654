//! `CREATE INDEX CONCURRENTLY IF NOT EXISTS` in a `transaction = false`
//! migration: idempotent, checked with pg_index.indisvalid, an INVALID
//! leftover dropped and rebuilt, and a build that fails twice leaves no
//! INVALID index behind and says why.

use crate::common::process::wait_until;
use crate::common::session::Session;
use crate::common::{Project, block_on, stderr};
use std::time::Duration;

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
    // Down drops the index that was there before up: keel reverts, and
    // says so (exit 3). Up again builds it.
    let out = p.keel().args(["down", "-q"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .lines()
            .any(|l| l.starts_with("- index") && l.contains("accounts_email_key")),
        "{}",
        stderr(&out)
    );
    p.keel().args(["up", "-q"]).assert().success();
    assert_eq!(invalid_indexes(&p), 0);
}

/// An index of the same name on other columns is not the index asked for:
/// IF NOT EXISTS would skip the build and leave it in its place. keel says
/// what differs and leaves both the index and the migration as they were.
#[test]
fn another_index_of_the_same_name_fails_saying_what_differs() {
    let p = Project::postgres();
    accounts(&p);
    p.exec("CREATE INDEX accounts_email_key ON accounts (id) WHERE id > 10");
    let oid = p.scalar("SELECT 'accounts_email_key'::regclass::oid::bigint");
    p.test(["up"])
        .code(1)
        .stderr_contains("accounts_email_key already exists and is not the index this statement builds, so IF NOT EXISTS would skip the build and leave the other one in its place: it is not UNIQUE, the statement's is; its columns are (id), the statement's (email); it has WHERE (id > 10), the statement's no WHERE clause (42P07)")
        .stderr_contains("there now: CREATE INDEX accounts_email_key ON accounts USING btree (id) WHERE (id > 10)")
        .stderr_contains("asked for: CREATE UNIQUE INDEX accounts_email_key ON accounts USING btree (email)")
        .stderr_contains("its first statement failed and left nothing behind; the migration stays pending")
        .stderr_contains("fix: keep the other index under another name (`ALTER INDEX accounts_email_key RENAME TO …`) or drop it (`DROP INDEX CONCURRENTLY accounts_email_key`), or give the new index another name in the migration; then run `keel up` again")
        .run();
    assert_eq!(
        p.scalar("SELECT 'accounts_email_key'::regclass::oid::bigint"),
        oid,
        "the other index is still there, untouched"
    );
    assert_eq!(
        p.scalar("SELECT count(*) FROM keel_migrations WHERE version = '20250101000002'"),
        Some("0".into()),
        "the migration stays pending"
    );
    assert_eq!(
        p.scalar("SELECT count(*) FROM accounts"),
        Some("500".into())
    );

    // Renamed out of the way, the migration builds the index it asks for.
    p.exec("ALTER INDEX accounts_email_key RENAME TO accounts_id_partial");
    p.keel().args(["up", "-q"]).assert().success();
    assert_eq!(
        p.scalar("SELECT pg_get_indexdef('accounts_email_key'::regclass)"),
        Some(
            "CREATE UNIQUE INDEX accounts_email_key ON public.accounts USING btree (email)".into()
        )
    );
}

/// Method, operator class and order count too, and a table of that name is
/// not an index at all.
#[test]
fn an_index_differing_in_method_order_or_kind_is_not_taken_for_the_one_asked() {
    let p = Project::postgres();
    accounts(&p);
    p.exec("CREATE UNIQUE INDEX accounts_email_key ON accounts (email DESC)");
    p.test(["up"])
        .code(1)
        .stderr_contains(
            "its operator classes, sort order, collations or storage parameters differ",
        )
        .run();
    p.exec("DROP INDEX accounts_email_key; CREATE INDEX accounts_email_key ON accounts USING hash (email)");
    p.test(["up"])
        .code(1)
        .stderr_contains("it uses hash, the statement's btree")
        .run();
    p.exec("DROP INDEX accounts_email_key; CREATE TABLE accounts_email_key (id int)");
    p.test(["up"])
        .code(1)
        .stderr_contains("it is a table, not an index")
        .run();
    assert!(p.table_exists("accounts_email_key"));
}

/// The retry path drops an INVALID index of the same name only when it is
/// the one asked for: an INVALID index of another definition (another
/// session's failed build) stays, and the run says why it stops.
#[test]
fn an_invalid_index_of_another_definition_is_never_dropped() {
    let p = Project::postgres();
    accounts(&p);
    p.exec("UPDATE accounts SET email = 'dup@example.com' WHERE id IN (1, 2)");
    // Unique on (email, id) would succeed; on (lower(email)) it fails on the
    // duplicate and stays INVALID.
    let failed = try_exec(
        &p,
        "CREATE UNIQUE INDEX CONCURRENTLY accounts_email_key ON accounts (lower(email))",
    );
    assert!(failed.is_err());
    assert_eq!(invalid_indexes(&p), 1);
    p.exec("UPDATE accounts SET email = 'user1@example.com' WHERE id = 1");
    p.test(["up"])
        .code(1)
        .stderr_contains("its columns are (lower(email)), the statement's (email)")
        .run();
    assert_eq!(
        invalid_indexes(&p),
        1,
        "the other INVALID index is still there"
    );
    assert_eq!(
        p.scalar("SELECT pg_get_indexdef('accounts_email_key'::regclass)"),
        Some(
            "CREATE UNIQUE INDEX accounts_email_key ON public.accounts USING btree (lower(email))"
                .into()
        )
    );
}

/// How many sessions are running `query_prefix` and waiting for a lock.
fn waiting(p: &Project, query_prefix: &str) -> bool {
    p.scalar(&format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '{query_prefix}%' \
         AND wait_event_type = 'Lock'"
    ))
    .as_deref()
        != Some("0")
}

/// A second `keel up` while the first builds an index concurrently waits for
/// the run lock, then applies only what is still pending. Waiting inside one
/// long statement would hold a snapshot that the build's last phase waits
/// for, while the build's session holds the lock the waiter wants: a
/// deadlock that PostgreSQL breaks by killing one of them.
#[test]
fn a_second_run_waits_for_a_concurrent_build_instead_of_deadlocking() {
    let p = Project::postgres();
    accounts(&p);
    p.migration(
        "20250101000003_after",
        "CREATE TABLE after_index (id bigint);\n",
        Some("DROP TABLE after_index;\n"),
        None,
    );
    // An open write keeps the build waiting (for writers of the table)
    // until the second run has started waiting too.
    let writer = Session::open(&p.url);
    writer.exec("BEGIN; INSERT INTO accounts VALUES (1000, 'writer@example.com')");
    let first = p.spawn_keel(&["up"]);
    wait_until(
        "the build to wait for the writer",
        Duration::from_secs(30),
        || waiting(&p, "CREATE UNIQUE INDEX CONCURRENTLY"),
    );
    let mut second = p.spawn_keel(&["up"]);
    second.wait_for(
        "waiting for another keel run on this database to finish",
        Duration::from_secs(30),
    );
    // Long enough for a waiter to be inside its wait, whatever its kind.
    std::thread::sleep(Duration::from_millis(500));
    writer.exec("COMMIT");

    let first = first.finish();
    let second = second.finish();
    assert!(first.status.success(), "first run:\n{}", first.stderr);
    assert!(second.status.success(), "second run:\n{}", second.stderr);
    assert!(!first.stderr.contains("deadlock"), "{}", first.stderr);
    // The waiter says who holds the lock: the build, in the first run's session.
    for expected in [
        "held by PostgreSQL backend pid ",
        "application keel",
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS accounts_email_key",
    ] {
        assert!(
            second.stderr.contains(expected),
            "missing {expected:?} in:\n{}",
            second.stderr
        );
    }
    assert!(
        second
            .stderr
            .contains("nothing to apply: the database is up to date"),
        "{}",
        second.stderr
    );
    assert_eq!(
        p.rows("SELECT version, state FROM keel_migrations ORDER BY version")
            .into_iter()
            .map(|r| r[1].clone().unwrap())
            .collect::<Vec<_>>(),
        ["applied", "applied", "applied"]
    );
    assert_eq!(invalid_indexes(&p), 0);
    assert!(p.table_exists("after_index"));
}

/// `keel resolve` after the run building an index was killed: the build's
/// backend may still hold the run lock; resolve waits for it (or for the
/// server to stop the orphaned build) instead of deadlocking with it.
#[test]
fn resolve_after_a_killed_build_waits_instead_of_deadlocking() {
    let p = Project::postgres();
    accounts(&p);
    let writer = Session::open(&p.url);
    writer.exec("BEGIN; INSERT INTO accounts VALUES (1000, 'writer@example.com')");
    let first = p.spawn_keel(&["up"]);
    wait_until(
        "the build to wait for the writer",
        Duration::from_secs(30),
        || waiting(&p, "CREATE UNIQUE INDEX CONCURRENTLY"),
    );
    first.kill();
    let resolve = p.spawn_keel(&["resolve", "20250101000002", "--reverted"]);
    std::thread::sleep(Duration::from_millis(500));
    writer.exec("COMMIT");
    let resolve = resolve.finish();
    assert!(resolve.status.success(), "{}", resolve.stderr);
    assert!(!resolve.stderr.contains("deadlock"), "{}", resolve.stderr);
    assert!(
        resolve
            .stderr
            .contains("migration 20250101000002 recorded as reverted"),
        "{}",
        resolve.stderr
    );
    // Whatever the orphaned build left (nothing, an INVALID or a valid
    // index), the next run ends with one valid index.
    let up = p.keel().arg("up").output().unwrap();
    assert!(up.status.success(), "{}", stderr(&up));
    assert_eq!(invalid_indexes(&p), 0);
    assert_eq!(
        p.scalar(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'accounts_email_key'::regclass"
        ),
        Some("true".into())
    );
}

/// A killed keel's index build does not run on unwatched, holding the run
/// lock: PostgreSQL 14+ checks keel's socket while the statement runs and
/// cancels it; the next run drops the INVALID index it left and builds it.
#[test]
fn a_killed_runs_build_stops_with_it() {
    let p = Project::postgres();
    let version: u32 = p
        .scalar("SHOW server_version_num")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if version < 140_000 {
        eprintln!("skipped: client_connection_check_interval needs PostgreSQL 14");
        return;
    }
    accounts(&p);
    // Long enough that the build would not give up on its own.
    std::fs::write(
        p.path()
            .join("migrations/20250101000002_unique_email/migration.toml"),
        "transaction = false\nlock_timeout = \"120s\"\n",
    )
    .unwrap();
    let writer = Session::open(&p.url);
    writer.exec("BEGIN; INSERT INTO accounts VALUES (1000, 'writer@example.com')");
    let first = p.spawn_keel(&["up"]);
    wait_until(
        "the build to wait for the writer",
        Duration::from_secs(30),
        || waiting(&p, "CREATE UNIQUE INDEX CONCURRENTLY"),
    );
    let killed = first.kill();
    // The writer is still open, so the build cannot have finished: it was
    // cancelled.
    wait_until(
        "the killed run's build to stop",
        Duration::from_secs(10),
        || !waiting(&p, "CREATE UNIQUE INDEX CONCURRENTLY"),
    );
    let resolve = p
        .keel()
        .args(["resolve", "20250101000002", "--reverted"])
        .output()
        .unwrap();
    assert!(
        resolve.status.success(),
        "{}\nKILLED: {}\nROWS: {:?}",
        stderr(&resolve),
        killed.stderr,
        p.rows("SELECT version, state, error FROM keel_migrations")
    );
    assert!(
        !stderr(&resolve).contains("waiting for another keel run"),
        "the run lock went with the build: {}",
        stderr(&resolve)
    );
    assert_eq!(invalid_indexes(&p), 1, "the cancelled build's leftover");
    writer.exec("COMMIT");
    let up = p.keel().arg("up").output().unwrap();
    assert!(up.status.success(), "{}", stderr(&up));
    assert!(
        stderr(&up).contains("dropped INVALID index accounts_email_key"),
        "{}",
        stderr(&up)
    );
    assert_eq!(invalid_indexes(&p), 0);
}
