//! `cargo bench --bench roundtrip`: how long `keel test` takes for a whole
//! history (rows, fingerprint, up, down, fingerprint and digests, up again,
//! per migration) next to the floor, `psql -1` applying the same up files
//! once, on the same throwaway PostgreSQL (default durability), interleaved
//! in a new order each round. Goal: keel test ≤ 4× the floor.
//!
//! Workloads: 1,000 generated migrations (a table with three columns, an
//! index and a row each), the same for 100 (so that memory growth shows),
//! and, with `KEEL_BENCH_HISTORY=DIR`, a real project's history converted to
//! keel's layout: `DIR/migrations/` and `DIR/all.sql` (its up files in order;
//! see the README for the one used).
//!
//! For every workload it also times the limit of any tool that runs a
//! round trip the way keel must: `psql -f trip.sql`, each migration's up,
//! down and up again in a transaction each (commits not waiting for the
//! disk, as keel test's do not; a migration that runs outside a
//! transaction, statement by statement), with no check at all. For the
//! history psql goes on after an error, as keel test does after a down
//! that fails: the transaction rolls back and the next one starts. `KEEL_BENCH_REPS` sets the rounds
//! (default 3). Every ratio is the median of the rounds' paired ratios, and
//! the load average is printed with each round. Goals are reported, not
//! asserted.

#[path = "../tests/cli/common/cluster.rs"]
mod cluster;
#[path = "common/measure.rs"]
mod measure;

use anyhow::{Context, Result, ensure};
use measure::{Samples, ServerCpu, load, measure_client, mib, paired, secs, shuffled, wall};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

const KEEL: &str = env!("CARGO_BIN_EXE_keel");
const GOAL: f64 = 4.0;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("benchmark failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `n` generated migrations in keel's layout, their up files as `all.sql`,
/// and up, down and up again, each in its transaction, as `trip.sql`.
fn write_project(dir: &Path, n: usize) -> Result<()> {
    let mut all = String::new();
    let mut trip = String::from("SET synchronous_commit = off;\n");
    for i in 1..=n {
        let up = format!(
            "CREATE TABLE t_{i} (id bigint PRIMARY KEY, v text NOT NULL DEFAULT '', n int);\n\
             CREATE INDEX t_{i}_v_idx ON t_{i} (v);\n\
             INSERT INTO t_{i} (id, v, n) VALUES (1, 'x', 1);\n"
        );
        let down = format!("DROP TABLE t_{i};\n");
        let version = format!("20240101{:02}{:02}{:02}", i / 3600, i / 60 % 60, i % 60);
        let m = dir
            .join("migrations")
            .join(format!("{version}_create_t_{i}"));
        std::fs::create_dir_all(&m)?;
        std::fs::write(m.join("up.sql"), &up)?;
        std::fs::write(m.join("down.sql"), &down)?;
        all.push_str(&up);
        for sql in [&up, &down, &up] {
            trip.push_str("BEGIN;\n");
            trip.push_str(sql);
            trip.push_str("COMMIT;\n");
        }
    }
    std::fs::write(dir.join("all.sql"), all)?;
    std::fs::write(dir.join("trip.sql"), trip)?;
    Ok(())
}

struct Workload {
    label: String,
    dir: PathBuf,
    /// `keel test --rows`: a real history was written for an empty
    /// database (one of crates.io's ups adds a NOT NULL column without a
    /// default), so it runs on empty tables.
    rows: u32,
    floor: Samples,
    test: Samples,
    /// `psql -f trip.sql`.
    limit: Samples,
    /// The limit's script, and whether psql goes on after an error.
    trip: (PathBuf, bool),
}

/// The limit's script for a history: each migration's up, down and up,
/// in a transaction each unless its migration.toml says `transaction =
/// false`.
fn write_history_trip(history: &Path, trip: &Path) -> Result<()> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(history.join("migrations"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    dirs.retain(|d| d.join("up.sql").exists());
    dirs.sort();
    let mut out = String::from("SET synchronous_commit = off;\n");
    for d in dirs {
        let up = std::fs::read_to_string(d.join("up.sql"))?;
        let down = std::fs::read_to_string(d.join("down.sql")).ok();
        let in_tx = !std::fs::read_to_string(d.join("migration.toml"))
            .unwrap_or_default()
            .lines()
            .any(|l| l.split_whitespace().collect::<String>() == "transaction=false");
        for sql in [Some(&up), down.as_ref(), Some(&up)].into_iter().flatten() {
            if in_tx {
                out.push_str("BEGIN;\n");
            }
            out.push_str(sql);
            out.push_str(if in_tx { "\n;\nCOMMIT;\n" } else { "\n;\n" });
        }
    }
    std::fs::write(trip, out)?;
    Ok(())
}

fn psql(cluster: &cluster::Cluster, db: &str) -> Command {
    let mut c = Command::new("psql");
    c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(cluster.url(db));
    c
}

fn sql(cluster: &cluster::Cluster, statement: &str) -> Result<()> {
    let out = psql(cluster, "postgres").args(["-c", statement]).output()?;
    ensure!(
        out.status.success(),
        "{statement}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// One round of a workload, in the order given (0: the floor, 1: `keel
/// test`, which makes its own database, 2: the limit, when there is one),
/// each on a fresh database.
fn round(cluster: &cluster::Cluster, w: &mut Workload, logs: &Path, order: &[usize]) -> Result<()> {
    for &which in order {
        sql(cluster, "DROP DATABASE IF EXISTS bench_floor")?;
        sql(cluster, "CREATE DATABASE bench_floor")?;
        sql(cluster, "CHECKPOINT")?;
        std::thread::sleep(Duration::from_millis(200));
        if which == 0 {
            let mut c = psql(cluster, "bench_floor");
            c.arg("-1").arg("-f").arg(w.dir.join("all.sql"));
            w.floor.0.push(measure_client(&mut c, logs, "floor", &[0])?);
        } else if which == 2 {
            let mut c = psql(cluster, "bench_floor");
            if w.trip.1 {
                c.args(["-v", "ON_ERROR_STOP=0"]);
            }
            c.arg("-f").arg(&w.trip.0);
            w.limit.0.push(measure_client(&mut c, logs, "limit", &[0])?);
        } else {
            let mut c = Command::new(KEEL);
            c.current_dir(&w.dir)
                .env("NO_COLOR", "1")
                .args([
                    "test",
                    "-q",
                    "--rows",
                    &w.rows.to_string(),
                    "--database-url",
                ])
                .arg(cluster.url("postgres"));
            // 3: a migration failed its round trip; still a measured run.
            w.test
                .0
                .push(measure_client(&mut c, logs, "test", &[0, 3])?);
        }
    }
    Ok(())
}

fn run() -> Result<()> {
    let reps: usize = match std::env::var("KEEL_BENCH_REPS") {
        Ok(v) => v.parse().context("KEEL_BENCH_REPS is a number")?,
        Err(_) => 3,
    };
    let work = tempfile::Builder::new()
        .prefix("keel-bench-rt-")
        .tempdir()?;
    let logs = work.path().join("logs");
    std::fs::create_dir_all(&logs)?;
    let mut workloads = Vec::new();
    for n in [1000, 100] {
        let dir = work.path().join(format!("p{n}"));
        write_project(&dir, n)?;
        workloads.push(Workload {
            label: format!("{n} generated migrations"),
            rows: 3,
            floor: Samples::default(),
            test: Samples::default(),
            limit: Samples::default(),
            trip: (dir.join("trip.sql"), false),
            dir,
        });
    }
    if let Ok(dir) = std::env::var("KEEL_BENCH_HISTORY") {
        let dir = PathBuf::from(dir);
        ensure!(
            dir.join("all.sql").exists() && dir.join("migrations").exists(),
            "KEEL_BENCH_HISTORY={}: expected migrations/ and all.sql there",
            dir.display()
        );
        let trip = work.path().join("history-trip.sql");
        write_history_trip(&dir, &trip)?;
        workloads.push(Workload {
            label: format!("history of {}", dir.display()),
            dir,
            rows: 0,
            floor: Samples::default(),
            test: Samples::default(),
            limit: Samples::default(),
            trip: (trip, true),
        });
    }
    eprintln!("starting a PostgreSQL cluster (default durability: fsync on) …");
    let pg = cluster::start(cluster::Durability::Default);
    let _ = ServerCpu::unread();
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut loads = vec![load()];
    for rep in 0..reps {
        for w in &mut workloads {
            round(&pg, w, &logs, &shuffled(3, &mut rng))?;
            let (f, t) = (w.floor.0.last().unwrap(), w.test.0.last().unwrap());
            let limit = w.limit.0.last().map_or(String::new(), |l| {
                format!(
                    ", limit {} ({:.2}×)",
                    secs(l.wall),
                    l.wall.as_secs_f64() / f.wall.as_secs_f64()
                )
            });
            eprintln!(
                "  round {}/{reps}: {:<28} floor {:>9}, keel test {:>9} ({:.2}×), {}{limit}",
                rep + 1,
                w.label,
                secs(f.wall),
                secs(t.wall),
                t.wall.as_secs_f64() / f.wall.as_secs_f64(),
                mib(t.max_rss_kib)
            );
        }
        loads.push(load());
        eprintln!(
            "  round {}/{reps} done, load average {:.2}",
            rep + 1,
            load()
        );
    }
    println!(
        "keel test against psql -1 applying the same up files once ({reps} rounds, interleaved):"
    );
    for w in &workloads {
        let ratio = paired(&w.test, &w.floor, wall);
        println!(
            "  {:<28} floor {:>9}, keel test {:>9}: {ratio:.2}× (goal ≤ {GOAL:.0}×: {}), max RSS {}",
            w.label,
            secs(w.floor.wall()),
            secs(w.test.wall()),
            if ratio <= GOAL { "met" } else { "NOT met" },
            mib(w.test.max_rss())
        );
        println!(
            "  {:<28} limit (psql: up, down, up, a transaction each) {:>9}: {:.2}× the floor; keel test {:.2}× the limit",
            "",
            secs(w.limit.wall()),
            paired(&w.limit, &w.floor, wall),
            paired(&w.test, &w.limit, wall)
        );
    }
    println!(
        "  load average over the run: {}",
        loads
            .iter()
            .map(|l| format!("{l:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
