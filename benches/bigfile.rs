//! `cargo bench --bench bigfile`: one very large migration (50 MB of
//! INSERTs by default) through `keel up` and `keel lint`, next to
//! `psql -1 -f` applying the same file (the floor: one transaction, the
//! server's own parser, a round trip per statement).
//!
//! It starts a throwaway PostgreSQL cluster (default durability, fsync on),
//! writes a project with that one migration, and times, interleaved in each
//! round and each on a fresh database: `psql -1 -f up.sql`, the release
//! `keel up`, `keel lint` of the migration folder, `keel plan` of it, and
//! `keel up` / `keel lint` of a file a tenth the size (to show the time grows linearly). It
//! prints the medians, the medians of the per-round ratios to psql, keel's
//! peak memory (max RSS) as a multiple of the file size, and
//! /proc/loadavg before and after every round, since other work on the
//! machine moves every figure. Goals are reported, not asserted: the exit
//! code is non-zero only when a command fails or leaves the wrong result.
//!
//! Environment: `KEEL_BENCH_MB` (default 50) sets the file size,
//! `KEEL_BENCH_REPS` (default 3) the rounds.

#[path = "../tests/cli/common/cluster.rs"]
mod cluster;
#[path = "common/measure.rs"]
mod measure;

use anyhow::{Context, Result, ensure};
use measure::Cost;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

const KEEL: &str = env!("CARGO_BIN_EXE_keel");
const MIGRATION: &str = "20250101000000_load_items";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("benchmark failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `cmd` to completion, output to `logs/<name>.{out,err}`; wall time,
/// CPU and max RSS of this child alone (wait4). Exit codes other than
/// `ok_codes` are errors quoting the end of stderr.
fn measure(cmd: &mut Command, logs: &Path, name: &str, ok_codes: &[i32]) -> Result<Cost> {
    measure::measure_client(cmd, logs, name, ok_codes)
}

/// A project whose one migration creates `items` and inserts rows until
/// up.sql holds `bytes`; returns the number of rows.
fn write_project(dir: &Path, bytes: u64) -> Result<u64> {
    let m = dir.join("migrations").join(MIGRATION);
    std::fs::create_dir_all(&m)?;
    std::fs::write(m.join("down.sql"), "DROP TABLE items;\n")?;
    let mut up = std::io::BufWriter::new(File::create(m.join("up.sql"))?);
    let head = "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, note text);\n";
    up.write_all(head.as_bytes())?;
    let (mut written, mut rows) = (head.len() as u64, 0u64);
    while written < bytes {
        rows += 1;
        let line = format!(
            "INSERT INTO items (id, name, note) VALUES ({rows}, 'item {rows}', 'a note; with a semicolon, for row {rows}');\n"
        );
        up.write_all(line.as_bytes())?;
        written += line.len() as u64;
    }
    up.flush()?;
    Ok(rows)
}

struct Pg {
    cluster: cluster::Cluster,
}

impl Pg {
    fn psql(&self, db: &str) -> Command {
        let mut c = Command::new("psql");
        c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.cluster.url(db))
            .env_remove("PGOPTIONS");
        c
    }

    fn query(&self, db: &str, sql: &str) -> Result<String> {
        let out = self.psql(db).args(["-tA", "-c", sql]).output()?;
        ensure!(
            out.status.success(),
            "psql -c {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// A new, empty database after a checkpoint and a sync, so every timed
    /// run starts from the same quiet server.
    fn fresh(&self, db: &str) -> Result<String> {
        self.query("postgres", &format!("DROP DATABASE IF EXISTS {db}"))?;
        self.query("postgres", &format!("CREATE DATABASE {db}"))?;
        self.query("postgres", "CHECKPOINT")?;
        // SAFETY: sync has no preconditions.
        unsafe { libc::sync() };
        std::thread::sleep(Duration::from_millis(300));
        Ok(self.cluster.url(db))
    }

    fn rows(&self, db: &str) -> Result<u64> {
        self.query(db, "SELECT count(*) FROM items")?
            .parse()
            .context("a count")
    }
}

fn keel(project: &Path, url: Option<&str>) -> Command {
    let mut c = Command::new(KEEL);
    c.current_dir(project)
        .env("NO_COLOR", "1")
        .env_remove("DATABASE_URL")
        .env_remove("KEEL_TEST_DATABASE_URL");
    if let Some(url) = url {
        c.env("DATABASE_URL", url);
    }
    c
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// What is timed in a round, in this order.
const RUNS: [&str; 6] = [
    "psql -1 -f",
    "keel up",
    "keel lint",
    "keel plan",
    "keel up (1/10)",
    "keel lint (1/10)",
];

fn run() -> Result<()> {
    let mb: u64 = std::env::var("KEEL_BENCH_MB").map_or(Ok(50), |v| v.parse())?;
    let reps: usize = std::env::var("KEEL_BENCH_REPS").map_or(Ok(3), |v| v.parse())?;
    ensure!(
        mb > 0 && reps > 0,
        "KEEL_BENCH_MB and KEEL_BENCH_REPS must be at least 1"
    );
    let work = tempfile::Builder::new().prefix("keel-bigfile-").tempdir()?;
    let logs = work.path().join("logs");
    std::fs::create_dir_all(&logs)?;
    let (big, small) = (work.path().join("big"), work.path().join("small"));
    let bytes = mb * 1024 * 1024;
    let rows = write_project(&big, bytes)?;
    let small_rows = write_project(&small, bytes / 10)?;
    let up_sql: PathBuf = big.join("migrations").join(MIGRATION).join("up.sql");
    let size = std::fs::metadata(&up_sql)?.len();
    eprintln!(
        "{MIGRATION}/up.sql: {:.1} MB, {rows} INSERTs (and one of {:.1} MB); starting PostgreSQL (fsync on) …",
        size as f64 / 1e6,
        size as f64 / 10e6
    );
    let pg = Pg {
        cluster: cluster::start(cluster::Durability::Default),
    };
    let version = pg.query("postgres", "SHOW server_version")?;
    let mut costs: Vec<Vec<Cost>> = vec![Vec::new(); RUNS.len()];
    for round in 1..=reps {
        let before = loadavg();
        for (i, name) in RUNS.iter().enumerate() {
            let log = format!("r{round}-{i}");
            let cost = match i {
                0 => {
                    pg.fresh("floor")?;
                    let c = measure(
                        pg.psql("floor").arg("-1").arg("-f").arg(&up_sql),
                        &logs,
                        &log,
                        &[0],
                    )?;
                    ensure!(pg.rows("floor")? == rows, "psql left the wrong row count");
                    c
                }
                1 | 4 => {
                    let (project, want) = if i == 1 {
                        (&big, rows)
                    } else {
                        (&small, small_rows)
                    };
                    let url = pg.fresh("keel")?;
                    let c = measure(
                        keel(project, Some(&url)).args(["up", "-q"]),
                        &logs,
                        &log,
                        &[0],
                    )?;
                    ensure!(pg.rows("keel")? == want, "keel up left the wrong row count");
                    c
                }
                3 => {
                    let url = pg.fresh("keel")?;
                    measure(
                        keel(&big, Some(&url)).args(["plan", "-q", &MIGRATION[..14]]),
                        &logs,
                        &log,
                        &[0],
                    )?
                }
                _ => {
                    let project = if i == 2 { &big } else { &small };
                    // 3: findings (the sample's INSERTs have none today).
                    measure(
                        keel(project, None).args([
                            "lint",
                            "-q",
                            &format!("migrations/{MIGRATION}"),
                        ]),
                        &logs,
                        &log,
                        &[0, 3],
                    )?
                }
            };
            eprintln!(
                "round {round}: {name:17} {:>8.2} s",
                cost.wall.as_secs_f64()
            );
            costs[i].push(cost);
        }
        eprintln!(
            "round {round}: load average before {before}, after {}",
            loadavg()
        );
    }

    let wall = |i: usize| median(costs[i].iter().map(|c| c.wall.as_secs_f64()).collect());
    let cpu = |i: usize| median(costs[i].iter().map(|c| c.cpu.as_secs_f64()).collect());
    let ratio = |a: usize, b: usize| {
        median(
            costs[a]
                .iter()
                .zip(&costs[b])
                .map(|(x, y)| x.wall.as_secs_f64() / y.wall.as_secs_f64())
                .collect(),
        )
    };
    let rss = |i: usize| costs[i].iter().map(|c| c.max_rss_kib).max().unwrap_or(0) as f64 / 1024.0;
    let file_mib = size as f64 / (1024.0 * 1024.0);
    println!(
        "\nbigfile: one migration of {file_mib:.1} MiB ({rows} INSERTs), PostgreSQL {version}, {reps} rounds, medians"
    );
    println!(
        "{:20} {:>9} {:>10} {:>10} {:>12}",
        "run", "wall", "client CPU", "vs psql", "max RSS"
    );
    for (i, name) in RUNS.iter().enumerate() {
        let vs = if i <= 3 {
            format!("{:.2}×", ratio(i, 0))
        } else {
            String::new()
        };
        println!(
            "{name:20} {:>8.2}s {:>9.2}s {vs:>10} {:>8.1} MiB",
            wall(i),
            cpu(i),
            rss(i)
        );
    }
    println!(
        "growth from 1/10 to the full file (linear = 10×): keel up {:.1}×, keel lint {:.1}×",
        ratio(1, 4),
        ratio(2, 5)
    );
    println!(
        "keel's peak memory per byte of SQL: up {:.1}×, lint {:.1}× (RSS / file size)",
        rss(1) / file_mib,
        rss(2) / file_mib
    );
    println!("load average at the end: {}", loadavg());
    Ok(())
}
