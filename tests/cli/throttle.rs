//! A backfill throttles itself on a real streaming replica: while the
//! replica's replay is paused (`pg_wal_replay_pause()`), the backfill
//! stops making progress once the lag passes `max_replica_lag`, says so,
//! and finishes on its own after replay resumes, every row done once.

use crate::common::cluster::{self, Durability};
use crate::common::{Db, Project};
use std::io::BufRead;
use std::time::{Duration, Instant};

const ROWS: i64 = 40_000;

/// A handle on database `postgres` of `url`'s cluster, in a folder of its own.
fn on(url: String) -> Project {
    let dir = tempfile::Builder::new()
        .prefix("keel-test-")
        .tempdir()
        .unwrap();
    Project {
        dir,
        url,
        db: Db::Postgres,
    }
}

fn count(p: &Project, sql: &str) -> i64 {
    p.scalar(sql).unwrap().parse().unwrap()
}

/// Waits until `check` holds, or panics saying `what` after 60 s.
fn until(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what}: not after 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_backfill_waits_for_a_replica_whose_replay_is_paused_and_finishes_after() {
    let primary = cluster::start(Durability::Off);
    let replica_cluster = primary.replica("replica_one");
    let p = on(primary.url("postgres"));
    let replica = on(replica_cluster.url("postgres"));
    until("the replica streams", || {
        count(
            &p,
            "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'replica_one' AND state = 'streaming'",
        ) == 1
    });
    p.migration(
        "20260501000001_items",
        &format!(
            "CREATE TABLE items (id bigint PRIMARY KEY, v integer NOT NULL, w integer);\n\
             INSERT INTO items (id, v) SELECT g, g % 1000 FROM generate_series(1, {ROWS}) g;\n"
        ),
        Some("DROP TABLE items;\n"),
        None,
    );
    p.migration(
        "20260501000002_fill_w",
        "COMMENT ON COLUMN items.w IS 'v doubled';\n",
        Some("COMMENT ON COLUMN items.w IS NULL;\n"),
        Some(
            "[backfill]\ntable = \"items\"\nkey = \"id\"\nset = { w = \"v * 2\" }\n\
             batch_size = 1000\ndelay_ms = 100\nmax_replica_lag = \"1s\"\n",
        ),
    );
    p.keel()
        .args(["up", "-q", "--to", "20260501000001"])
        .assert()
        .success();
    until("the replica has the table", || {
        replica
            .scalar("SELECT count(*) FROM pg_class WHERE relname = 'items'")
            .as_deref()
            == Some("1")
    });
    until("the replica has the rows", || {
        replica.scalar("SELECT count(*) FROM items").as_deref() == Some(&ROWS.to_string()[..])
    });
    replica.exec("SELECT pg_wal_replay_pause()");

    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("keel"))
        .arg("up")
        .current_dir(p.path())
        .env("DATABASE_URL", &p.url)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref().map_while(Result::ok) {
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("paused") {
            break;
        }
    }
    assert!(
        seen.contains("backfill 20260501000002_fill_w: paused: replica replica_one is ")
            && seen.contains("behind (max_replica_lag 1s); going on by itself once it clears"),
        "{seen}"
    );
    // No progress while replay stays paused.
    let done = "SELECT count(*) FROM items WHERE w IS NOT NULL";
    let before = count(&p, done);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(count(&p, done), before, "{seen}");
    assert!(before < ROWS, "the backfill had not finished: {before}");

    replica.exec("SELECT pg_wal_replay_resume()");
    for line in lines.map_while(Result::ok) {
        seen.push_str(&line);
        seen.push('\n');
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{seen}");
    assert!(
        seen.contains(&format!(
            "backfill 20260501000002_fill_w: {ROWS} rows visited, {ROWS} updated, 0 skipped"
        )),
        "every row once: {seen}"
    );
    assert!(seen.contains("  paused 1 time(s), "), "{seen}");
    assert_eq!(
        count(&p, "SELECT count(*) FROM items WHERE w = v * 2"),
        ROWS
    );
}
