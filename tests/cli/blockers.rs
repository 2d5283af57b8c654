//! Who keeps keel waiting: a lock timeout names the sessions it waited for
//! (pid, user, application, state, since when, the start of their query),
//! and the run lock names its holder and gives up after `--lock-wait`.

use crate::common::session::Session;
use crate::common::{Project, stderr};

/// `accounts` with rows, applied, and a pending migration that needs an
/// ACCESS EXCLUSIVE lock on it, giving up after 1 s and not retrying.
fn accounts(p: &Project, toml: &str) {
    p.migration(
        "20250101000001_accounts",
        "CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL);\n",
        Some("DROP TABLE accounts;\n"),
        None,
    );
    p.keel().args(["up", "-q"]).assert().success();
    p.exec("INSERT INTO accounts SELECT i, 'user' || i || '@example.com' FROM generate_series(1, 500) i");
    p.migration(
        "20250101000002_note",
        "ALTER TABLE accounts ADD COLUMN note text;\n",
        Some("ALTER TABLE accounts DROP COLUMN note;\n"),
        Some(&format!("lock_timeout = \"1s\"\nretries = 0\n{toml}")),
    );
}

/// A session of another application, idle in a transaction that wrote to
/// `accounts`: it holds ROW EXCLUSIVE on it until it ends.
fn nightly_report(p: &Project) -> (Session, String) {
    let s = Session::open(&p.url);
    s.exec("SET application_name = 'nightly-report'");
    s.exec("BEGIN; UPDATE accounts SET email = email WHERE id = 1");
    let pid = p
        .scalar("SELECT pid FROM pg_stat_activity WHERE application_name = 'nightly-report' AND datname = current_database()")
        .unwrap();
    (s, pid)
}

fn names_the_blocker(p: &Project, toml: &str) {
    accounts(p, toml);
    let (report, pid) = nightly_report(p);
    let user = p.scalar("SELECT current_user::text").unwrap();
    let out = p.keel().arg("up").output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for expected in [
        "canceling statement due to lock timeout (55P03)".to_string(),
        "it waited for an ACCESS EXCLUSIVE lock on accounts, blocked by".to_string(),
        format!("pid {pid} (user {user}, application nightly-report, "),
        ", idle in transaction, transaction open since ".to_string(),
        "ago): BEGIN; UPDATE accounts SET email = email WHERE id = 1".to_string(),
        format!(
            "fix: session {pid} (above) held the lock it needs longer than lock_timeout on the last try; let it finish, or end it with `SELECT pg_terminate_backend({pid})` if it is stuck"
        ),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
    assert!(!err.contains("postgres://"), "{err}");
    // Nothing of the migration took effect; the blocker's work is intact.
    assert_eq!(
        p.scalar("SELECT count(*) FROM information_schema.columns WHERE table_name = 'accounts' AND column_name = 'note'"),
        Some("0".into())
    );
    assert_eq!(
        p.scalar("SELECT count(*) FROM keel_migrations WHERE version = '20250101000002'"),
        Some("0".into())
    );
    report.exec("COMMIT");
    p.keel().args(["up", "-q"]).assert().success();
    assert_eq!(
        p.scalar("SELECT count(*) FROM accounts"),
        Some("500".into())
    );
}

#[test]
fn a_lock_timeout_names_the_session_it_waited_for() {
    names_the_blocker(&Project::postgres(), "");
}

#[test]
fn a_lock_timeout_statement_by_statement_names_the_session_too() {
    names_the_blocker(&Project::postgres(), "transaction = false\n");
}

/// The runbook's query for "who blocks whom", pasted as it stands, names
/// the blocker of a waiting session.
#[test]
fn the_runbooks_watch_query_shows_who_blocks_whom() {
    let p = Project::postgres();
    accounts(&p, "");
    p.keel()
        .args(["runbook", "20250101000002"])
        .assert()
        .success();
    let runbook =
        std::fs::read_to_string(p.path().join("runbooks/20250101000002_note.md")).unwrap();
    let start = runbook
        .find("-- who waits for a lock")
        .expect("the watch query");
    let query = &runbook[start..start + runbook[start..].find(';').unwrap()];
    let (report, pid) = nightly_report(&p);
    let waiter = Session::open(&p.url);
    let waiting = std::thread::spawn(move || {
        let r = waiter
            .try_exec("SET lock_timeout = '5s'; LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE");
        (waiter, r)
    });
    crate::common::process::wait_until(
        "the waiter to wait",
        std::time::Duration::from_secs(10),
        || !p.rows(query).is_empty(),
    );
    let rows = p.rows(query);
    assert_eq!(rows.len(), 1, "only this database's waiter: {rows:?}");
    assert_eq!(rows[0][2].as_deref(), Some(pid.as_str()), "{rows:?}");
    assert_eq!(rows[0][4].as_deref(), Some("nightly-report"), "{rows:?}");
    assert_eq!(
        rows[0][6].as_deref(),
        Some("idle in transaction"),
        "{rows:?}"
    );
    report.exec("COMMIT");
    let (_waiter, locked) = waiting.join().unwrap();
    assert!(locked.is_ok(), "{locked:?}");
    assert_eq!(
        p.scalar("SELECT count(*) FROM accounts"),
        Some("500".into())
    );
}

/// A session of another deploy holds keel's run lock (the advisory lock,
/// taken here by hand): keel up says who holds it and for how long it
/// waits, gives up after `--run-lock-wait` (or keel.toml's
/// `run_lock_wait`) with exit 4, and applies nothing.
#[test]
fn a_held_run_lock_is_named_and_given_up_on_with_exit_4() {
    let p = Project::postgres();
    accounts(&p, "");
    let deploy = Session::open(&p.url);
    deploy.exec("SET application_name = 'deploy-7'");
    deploy.exec(&format!(
        "SELECT pg_advisory_lock({})",
        crate::execute::RUN_LOCK_KEY
    ));
    let pid = p
        .scalar("SELECT pid FROM pg_stat_activity WHERE application_name = 'deploy-7' AND datname = current_database()")
        .unwrap();
    p.test(["up", "--run-lock-wait", "700ms"])
        .code(4)
        .stderr_contains("waiting for another keel run on this database to finish (for at most 700ms): the run lock is held by PostgreSQL backend pid ")
        .stderr_contains(&format!(
            "error: another keel run still held the run lock on this database after 700ms, so this run did nothing: the lock is held by PostgreSQL backend pid {pid} (application deploy-7, client local socket, idle, statement started "
        ))
        .stderr_contains(&format!("to end it now: SELECT pg_terminate_backend({pid})"))
        .stderr_contains("fix: let that run finish and run this command again, or wait longer with --run-lock-wait DURATION (run_lock_wait in keel.toml)")
        .run();
    std::fs::write(p.path().join("keel.toml"), "run_lock_wait = \"300ms\"\n").unwrap();
    p.test(["up"])
        .code(4)
        .stderr_contains("after 300ms, so this run did nothing")
        .run();
    assert_eq!(
        p.scalar("SELECT count(*) FROM keel_migrations WHERE version = '20250101000002'"),
        Some("0".into()),
        "nothing applied"
    );
    assert_eq!(
        p.scalar("SELECT count(*) FROM information_schema.columns WHERE table_name = 'accounts' AND column_name = 'note'"),
        Some("0".into())
    );
    // Once the other run is done, the same command goes through.
    deploy.exec(&format!(
        "SELECT pg_advisory_unlock({})",
        crate::execute::RUN_LOCK_KEY
    ));
    p.test(["up", "-q", "--run-lock-wait", "700ms"]).run();
    assert_eq!(
        p.scalar("SELECT count(*) FROM accounts"),
        Some("500".into())
    );
}

/// On SQLite the run lock is a lock file beside the database: a run that
/// finds it held names the keel process, host and start the file records,
/// and gives up the same way.
#[test]
fn a_held_sqlite_run_lock_is_named_and_given_up_on_with_exit_4() {
    let p = Project::sqlite();
    p.migration(
        "20250101000001_accounts",
        "CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL);\n",
        Some("DROP TABLE accounts;\n"),
        None,
    );
    let lock_path = p.path().join("keel.db.lock");
    let mut lock = std::fs::File::create(&lock_path).unwrap();
    lock.lock().unwrap();
    use std::io::Write;
    write!(
        lock,
        "pid=4242\nhost=ci-runner-3\nsince=2026-12-03T09:00:00+00:00\n"
    )
    .unwrap();
    p.test(["up", "--run-lock-wait", "500ms"])
        .code(4)
        .stderr_contains("waiting for another keel run on this database to finish (for at most 500ms): the run lock is held by keel process 4242 (on ci-runner-3, since 2026-12-03 09:00:00 UTC")
        .stderr_contains("error: another keel run still held the run lock on this database after 500ms, so this run did nothing: the lock is held by keel process 4242 (on ci-runner-3")
        .run();
    assert!(!p.table_exists("accounts"), "nothing applied");
    drop(lock);
    p.test(["up", "-q"]).run();
    assert!(p.table_exists("accounts"));
}

/// A session of another application holding ACCESS EXCLUSIVE on
/// `accounts`: even the reads of its catalog (the schema fingerprint's
/// `pg_get_indexdef`) wait for it.
fn exclusive_holder(p: &Project) -> (Session, String) {
    let s = Session::open(&p.url);
    s.exec("SET application_name = 'table-rewrite'");
    s.exec("BEGIN; LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE");
    let pid = p
        .scalar("SELECT pid FROM pg_stat_activity WHERE application_name = 'table-rewrite' AND datname = current_database()")
        .unwrap();
    (s, pid)
}

/// The schema `keel up` keeps for a migration is read before the
/// migration's transaction: under the migration's lock timeout, so a lock
/// held elsewhere ends the run with the blocker named instead of hanging
/// it (it used to wait as long as the holder did).
#[test]
fn the_schema_read_before_a_migration_gives_up_after_the_lock_timeout() {
    let p = Project::postgres();
    accounts(&p, "");
    let (holder, pid) = exclusive_holder(&p);
    let out = p
        .keel()
        .arg("up")
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for expected in [
        "canceling statement due to lock timeout (55P03)".to_string(),
        "it waited for an ACCESS SHARE lock on accounts, blocked by".to_string(),
        format!("pid {pid} (user "),
        "application table-rewrite".to_string(),
        format!(
            "fix: keel's read of the database waited for a lock: session {pid} (above) held the lock it needs longer than lock_timeout"
        ),
        "or raise lock_timeout in keel.toml".to_string(),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
    assert_eq!(
        p.scalar("SELECT count(*) FROM keel_migrations WHERE version = '20250101000002'"),
        Some("0".into())
    );
    holder.exec("ROLLBACK");
    p.keel().args(["up", "-q"]).assert().success();
}

/// `keel inspect --schema` and `--digest` read under the project's lock
/// timeout too: an operator's look at the schema never hangs.
#[test]
fn inspect_gives_up_after_the_lock_timeout_and_names_the_holder() {
    let p = Project::postgres();
    accounts(&p, "");
    // An index and a default: describing them takes a share lock.
    p.exec("CREATE INDEX accounts_email ON accounts (email); ALTER TABLE accounts ALTER email SET DEFAULT ''");
    std::fs::write(p.path().join("keel.toml"), "lock_timeout = \"1s\"\n").unwrap();
    let (holder, pid) = exclusive_holder(&p);
    for flag in ["--schema", "--digest"] {
        let out = p
            .keel()
            .args(["inspect", flag])
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{flag}: {err}");
        assert!(err.contains("lock timeout"), "{flag}: {err}");
        assert!(
            err.contains("fix: keel's read of the database waited"),
            "{err}"
        );
        if flag == "--schema" {
            assert!(err.contains(&format!("pid {pid} (user ")), "{err}");
        }
    }
    holder.exec("ROLLBACK");
    p.keel()
        .args(["inspect", "--schema"])
        .assert()
        .success()
        .stdout(predicates::str::contains("public.accounts"));
}
