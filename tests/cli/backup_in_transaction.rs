//! The backup of a `DELETE … WHERE` / `UPDATE … WHERE` is taken inside the
//! migration's own transaction, its table locked against writes: a row
//! another session writes while the migration waits cannot be destroyed
//! without being in the archive. The race is made certain: a session holds
//! a table the migration's first statement writes, and a third session
//! writes a matching row while keel waits for it.

use crate::common::process::wait_until;
use crate::common::session::Session;
use crate::common::{Db, Project};
use std::time::Duration;

const ITEMS: &str = "20260101000000_items";
const PURGE: &str = "20260201000000_purge_stale";
const ALL: &str = "SELECT CAST(id AS TEXT), status, CAST(n AS TEXT) FROM items ORDER BY id";

/// `items` (1,000 rows, 10 `stale`) and `gate`, which the migration writes
/// first; then the migration that deletes (or overwrites) the stale rows.
fn setup(p: &Project, change: &str) {
    p.migration(
        ITEMS,
        "CREATE TABLE items (id bigint PRIMARY KEY, status text, n bigint);\nCREATE TABLE gate (id bigint);\n",
        Some("DROP TABLE gate;\nDROP TABLE items;\n"),
        None,
    );
    p.test(["up"]).run();
    let series = match p.db {
        Db::Postgres => "SELECT i FROM generate_series(1, 1000) AS g (i)",
        Db::Sqlite => {
            "WITH RECURSIVE g (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < 1000) SELECT i FROM g"
        }
    };
    p.exec(&format!(
        "INSERT INTO items (id, status, n) SELECT i, CASE WHEN i % 100 = 0 THEN 'stale' ELSE 'live' END, i FROM ({series}) AS s"
    ));
    p.migration(
        PURGE,
        &format!("INSERT INTO gate VALUES (1);\n{change}\n"),
        Some("SELECT 1;\n"),
        Some("reversibility = \"partial\"\nlock_timeout = \"60s\"\n"),
    );
}

/// Runs `keel up` while `gate` is held, and has another session insert a
/// stale row once keel waits for it. Returns keel's stderr once the
/// insert and the migration both finished.
fn up_racing_an_insert(p: &Project) -> String {
    let holder = Session::open(&p.url);
    // SHARE: keel may read the table's size while it plans, not write it.
    holder.exec("BEGIN; LOCK TABLE gate IN SHARE MODE");
    let run = p.spawn_keel(&["up"]);
    let waiting = |table: &str| {
        p.scalar(&format!(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = '{table}'::regclass"
        ))
        .as_deref()
            != Some("0")
    };
    wait_until("keel waiting for gate", Duration::from_secs(30), || {
        waiting("gate")
    });
    // The row is written while the migration waits: before its DELETE runs.
    let writer = Session::open(&p.url);
    let insert = std::thread::spawn(move || {
        writer.exec("INSERT INTO items VALUES (5000, 'stale', 5000)");
    });
    wait_until(
        "the insert done, or waiting for keel's lock",
        Duration::from_secs(30),
        || insert.is_finished() || waiting("items"),
    );
    holder.exec("COMMIT");
    let out = run.finish();
    insert.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    out.stderr
}

/// The table holds the rows of `before` and the one written during the
/// migration, nothing else: the differences are what fails.
fn back_with_the_new_row(p: &Project, before: Vec<Vec<Option<String>>>) {
    let mut expected = before;
    expected.push(vec![
        Some("5000".into()),
        Some("stale".into()),
        Some("5000".into()),
    ]);
    let now = p.rows(ALL);
    let missing: Vec<_> = expected.iter().filter(|r| !now.contains(r)).collect();
    let extra: Vec<_> = now.iter().filter(|r| !expected.contains(r)).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && now.len() == expected.len(),
        "missing after down: {missing:?}; not expected: {extra:?}"
    );
}

/// The CSV rows of `PURGE`'s one archive, read with `unzip`.
fn archived_rows(p: &Project) -> Vec<String> {
    let dir = p.path().join("backups").join(PURGE);
    let zips: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "zip"))
        .collect();
    assert_eq!(zips.len(), 1, "{zips:?}");
    let out = std::process::Command::new("unzip")
        .arg("-p")
        .arg(&zips[0])
        .arg("items.csv")
        .output()
        .expect("unzip is installed");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(String::from)
        .collect()
}

#[test]
fn a_row_written_while_the_delete_waits_is_never_lost() {
    let p = Project::new(Db::Postgres);
    setup(&p, "DELETE FROM items WHERE status = 'stale';");
    let before = p.rows(ALL);
    let err = up_racing_an_insert(&p);
    // Every stale row that is gone is in the archive, and nothing else.
    let left = p.rows("SELECT CAST(id AS TEXT) FROM items WHERE status = 'stale'");
    // The insert waited for the SHARE lock keel took on items for its
    // backup, until the migration committed: the DELETE never saw it.
    assert_eq!(left, vec![vec![Some("5000".to_string())]], "{err}");
    let gone: Vec<u64> = (1..=10).map(|i| i * 100).collect();
    let mut ids: Vec<u64> = archived_rows(&p)
        .iter()
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, gone, "{err}");
    assert!(
        err.contains("archive verified (taken in its transaction, items locked against writes until it commits)"),
        "{err}"
    );
    // After down, every row is there: the ones before, and the one written
    // while the migration waited.
    p.test(["down"]).run();
    back_with_the_new_row(&p, before);
}

#[test]
fn a_row_written_while_the_update_waits_gets_its_old_value_back() {
    let p = Project::new(Db::Postgres);
    setup(&p, "UPDATE items SET n = -1 WHERE status = 'stale';");
    let before = p.rows(ALL);
    up_racing_an_insert(&p);
    p.test(["down"]).run();
    back_with_the_new_row(&p, before);
}

// The archive is written in the migration's transaction: when that rolls
// back, no tracking row points to it, and it goes.
both!(
    a_migration_that_fails_after_its_backup_leaves_no_archive,
    |p: Project| {
        setup(
            &p,
            "DELETE FROM items WHERE status = 'stale';\nINSERT INTO nowhere VALUES (1);",
        );
        let before = p.rows(ALL);
        p.test(["up"])
            .code(1)
            .stderr_contains("nowhere")
            .stderr_contains("its transaction rolled back, so nothing it holds was destroyed")
            .run();
        let dir = p.path().join("backups").join(PURGE);
        let left: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{left:?}");
        assert_eq!(p.rows(ALL), before);
    }
);

// Before it runs, keel says which lock the backup takes, for how long, and
// what it blocks: in the dry run, the plan (text and JSON) and the runbook.
#[test]
fn the_backup_lock_is_shown_before_the_run() {
    let p = Project::new(Db::Postgres);
    setup(&p, "DELETE FROM items WHERE status = 'stale';");
    p.test(["up", "--dry-run"])
        .stdout_contains("--   before line 1, in the migration's transaction: SHARE lock on items for the backup, held until COMMIT (reads go on, writes wait)")
        .run();
    let plan = p.test(["plan", "20260201000000"]).run();
    for expected in [
        "backups needed, taken inside the migration's transaction before its first statement, under a SHARE lock on items held until COMMIT (reads go on, writes wait)",
        "locks held (one transaction: each until COMMIT)",
    ] {
        assert!(
            plan.stdout.contains(expected),
            "{expected}:\n{}",
            plan.stdout
        );
    }
    let held: Vec<&str> = plan
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("items "))
        .collect();
    assert!(
        held.iter()
            .any(|l| l.contains("SHARE ") && l.contains("blocks writes")),
        "{}",
        plan.stdout
    );
    let json = p
        .test(["plan", "20260201000000", "--format", "json"])
        .run()
        .json();
    let plan = if json.is_array() { &json[0] } else { &json };
    assert_eq!(
        plan["backup_locks"],
        serde_json::json!([{"table": "items", "lock": "SHARE"}]),
        "{plan:#}"
    );
    p.test(["runbook", "-q", "20260201000000"]).run();
    let rb = std::fs::read_to_string(p.path().join(format!("runbooks/{PURGE}.md"))).unwrap();
    assert!(
        rb.contains("Each table below is locked in SHARE mode from the backup to the COMMIT: reads go on, INSERT, UPDATE and DELETE wait"),
        "{rb}"
    );
}

// A writer holds items when the migration starts: the backup's SHARE lock
// times out (lock_timeout), the whole transaction is retried, and the
// backup is taken again; only the archive of the try that committed stays.
#[test]
fn a_lock_timeout_on_the_backup_lock_is_retried_with_a_new_backup() {
    let p = Project::new(Db::Postgres);
    setup(&p, "DELETE FROM items WHERE status = 'stale';");
    std::fs::write(
        p.path().join(format!("migrations/{PURGE}/migration.toml")),
        "reversibility = \"partial\"\nlock_timeout = \"200ms\"\nretries = 20\n",
    )
    .unwrap();
    let before = p.rows(ALL);
    let writer = Session::open(&p.url);
    writer.exec("BEGIN; UPDATE items SET n = n WHERE id = 1");
    let mut run = p.spawn_keel(&["up"]);
    run.wait_for(
        &format!("lock timeout in {PURGE}: retry 1 of 20"),
        Duration::from_secs(30),
    );
    writer.exec("COMMIT");
    let out = run.finish();
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert_eq!(archived_rows(&p).len(), 10, "{}", out.stderr);
    p.test(["down"]).run();
    assert_eq!(p.rows(ALL), before);
}
