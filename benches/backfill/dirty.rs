//! Part 4 of the backfill benchmark: the same backfill on clean data and on
//! dirty data (one row in every 5,000 that the expression cannot convert),
//! in fresh copies of one table, interleaved clean, dirty, clean, dirty, …
//! so that both see the same machine; the figure is the median of the
//! paired ratios dirty / clean. Goal: ≤ 1.3×, every bad row skipped and
//! logged, every good row done.
//!
//! `readings (id bigint PRIMARY KEY, raw text)`; the migration adds
//! `value bigint` and fills it with `raw::bigint` in batches of 1000 with
//! no delay. The dirty table's bad rows hold `n/a` (an invalid input for
//! bigint, SQLSTATE 22P02). `KEEL_BENCH_DIRTY_ROWS` changes the row count
//! (default 200000), `KEEL_BENCH_PAIRS` the number of pairs (default 7).

use super::{Cluster, autovacuum_during_backfill, keel_bin};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const BAD_EVERY: u64 = 5000;
const CREATE: &str = "20250101000001_create_readings";
const PARSE: &str = "20250101000002_parse_readings";

pub(crate) fn run(cluster: &Cluster) {
    let rows: u64 = env_or("KEEL_BENCH_DIRTY_ROWS", 200_000);
    let pairs: usize = env_or("KEEL_BENCH_PAIRS", 7);
    let bad = rows / BAD_EVERY;
    println!(
        "\n4. dirty data: {rows} rows, one bad row in every {BAD_EVERY} ({bad}), vs the same backfill on clean data; \
         {pairs} interleaved pairs, batches of 1000, no delay"
    );
    println!("   load before: {}", loadavg());
    let dir = tempfile::Builder::new()
        .prefix("keel-bench-dirty-")
        .tempdir()
        .unwrap();
    write_migrations(dir.path());
    for (db, dirty) in [("readings_clean", false), ("readings_dirty", true)] {
        cluster.sql("postgres", &format!("DROP DATABASE IF EXISTS {db}"));
        cluster.sql("postgres", &format!("CREATE DATABASE {db}"));
        keel(
            dir.path(),
            cluster,
            db,
            &["up", "-q", "--to", "20250101000001"],
        );
        // The same rows, the same layout; only the bad rows' text differs.
        let raw = if dirty {
            format!(
                "CASE WHEN i % {BAD_EVERY} = {} THEN 'n/a' ELSE i::text END",
                BAD_EVERY / 2
            )
        } else {
            "i::text".to_string()
        };
        cluster.sql(
            db,
            &format!(
                "INSERT INTO readings SELECT i, {raw} FROM generate_series(1, {rows}) i; \
                 VACUUM ANALYZE readings; CHECKPOINT"
            ),
        );
    }
    let mut ratios = Vec::new();
    for pair in 0..pairs {
        let clean = backfill(dir.path(), cluster, "readings_clean", rows, 0);
        let dirty = backfill(dir.path(), cluster, "readings_dirty", rows, bad);
        let ratio = dirty.time.as_secs_f64() / clean.time.as_secs_f64();
        println!(
            "   pair {}: clean {:>6.2} s ({} statements{}), dirty {:>6.2} s ({} statements, {} skipped{}): {ratio:.2}x",
            pair + 1,
            clean.time.as_secs_f64(),
            clean.statements,
            clean.autovacuum,
            dirty.time.as_secs_f64(),
            dirty.statements,
            dirty.skipped,
            dirty.autovacuum
        );
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!(
        "   dirty / clean: median of {pairs} paired ratios {median:.2}x (min {:.2}x, max {:.2}x)  (goal <= 1.30x: {})",
        ratios[0],
        ratios[ratios.len() - 1],
        if median <= 1.3 { "met" } else { "NOT met" }
    );
    println!("   load after: {}", loadavg());
    for db in ["readings_clean", "readings_dirty"] {
        cluster.drop_db(db);
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The machine's load averages over 1, 5 and 15 minutes.
pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn write_migrations(dir: &Path) {
    let write = |name: &str, file: &str, text: &str| {
        let d = dir.join("migrations").join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(file), text).unwrap();
    };
    write(
        CREATE,
        "up.sql",
        "CREATE TABLE readings (id bigint PRIMARY KEY, raw text NOT NULL);\n",
    );
    write(CREATE, "down.sql", "DROP TABLE readings;\n");
    write(
        PARSE,
        "up.sql",
        "ALTER TABLE readings ADD COLUMN value bigint;\n",
    );
    write(
        PARSE,
        "down.sql",
        "ALTER TABLE readings DROP COLUMN value;\n",
    );
    write(
        PARSE,
        "migration.toml",
        "description = \"readings.value parsed from raw, in batches\"\n\n[backfill]\n\
         table = \"readings\"\nkey = \"id\"\nset = { value = \"raw::bigint\" }\n\
         where = \"value IS NULL\"\nbatch_size = 1000\ndelay_ms = 0\n",
    );
}

fn keel(dir: &Path, cluster: &Cluster, db: &str, args: &[&str]) -> std::process::Output {
    Command::new(keel_bin())
        .args(args)
        .current_dir(dir)
        .env("DATABASE_URL", cluster.url(db))
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

struct Run {
    time: Duration,
    statements: String,
    skipped: i64,
    /// ", autovacuum" when it worked on the table during the run.
    autovacuum: &'static str,
}

/// `keel up -v` on a fresh copy of `template`: the backfill's own time from
/// keel_backfills (started_at to finished_at: batches only, no schema
/// change, no validation), the statements its batches sent (`-v`; "?" for
/// a build that does not print them), and the rows it skipped.
fn backfill(dir: &Path, cluster: &Cluster, template: &str, rows: u64, bad: u64) -> Run {
    let db = cluster.copy(template, "readings_run");
    // Cleared per run: backfills/<migration>/failures.csv of the last one.
    let _ = std::fs::remove_dir_all(dir.join("backfills"));
    let out = keel(dir, cluster, &db, &["up", "-v"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let expected = if bad == 0 { 0 } else { 3 };
    assert_eq!(out.status.code(), Some(expected), "keel up: {err}");
    let ms: f64 = cluster
        .query(
            &db,
            "SELECT extract(epoch FROM finished_at::timestamptz - started_at::timestamptz) * 1000 FROM keel_backfills",
        )
        .parse()
        .unwrap();
    let skipped: i64 = cluster
        .query(&db, "SELECT count(*) FROM keel_backfill_failures")
        .parse()
        .unwrap();
    assert_eq!(skipped, bad as i64, "every bad row skipped and logged");
    let done: u64 = cluster
        .query(&db, "SELECT count(*) FROM readings WHERE value IS NOT NULL")
        .parse()
        .unwrap();
    assert_eq!(done + bad, rows, "every good row done");
    let statements = err
        .lines()
        .find_map(|l| l.split("this run sent ").nth(1))
        .and_then(|s| s.split(' ').next())
        .unwrap_or("?")
        .to_string();
    let autovacuum = match autovacuum_during_backfill(cluster, &db, "readings") {
        "yes" => ", autovacuum",
        _ => "",
    };
    cluster.drop_db(&db);
    Run {
        time: Duration::from_secs_f64(ms / 1000.0),
        statements,
        skipped,
        autovacuum,
    }
}
