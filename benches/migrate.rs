//! `cargo bench --bench migrate`: how fast `keel up` applies 1,000 trivial
//! migrations to PostgreSQL, next to `psql` running the same SQL.
//!
//! One run starts its own throwaway PostgreSQL cluster with the server's
//! default durability (fsync on), writes a temporary project of 1,000
//! migrations (`CREATE TABLE t_N …; INSERT …;`) plus the same SQL as one
//! `all.sql`, and times, each on a fresh database and interleaved:
//!
//! - `psql -1 -f all.sql`: one transaction, the floor;
//! - `psql -f all.sql`: autocommit, a commit per statement;
//! - `keel up` (the release binary): a commit per migration with its tracking row.
//!
//! Then `keel status` with 1,000 applied, `keel down --steps 100`, and the
//! peak memory (max RSS) of `keel up` for 100 and 1,000 migrations. It prints
//! medians and ratios. Goals are reported, not asserted: the exit code is
//! non-zero only when a command fails or leaves the wrong result.
//!
//! `KEEL_BENCH_REPS` (default 5) sets how many times each run is repeated.

#[path = "../tests/cli/common/cluster.rs"]
mod cluster;

use anyhow::{Context, Result, bail, ensure};
use std::fs::File;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const KEEL: &str = env!("CARGO_BIN_EXE_keel");
const MIGRATIONS: usize = 1000;
const GOAL: f64 = 1.12;
const REFERENCE: &str = "refinery 1.17×, sqlx-cli 1.31×, dbmate 1.37×";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("benchmark failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One finished child process: wall time, peak memory, and where its output went.
struct Measured {
    took: Duration,
    max_rss_kib: u64,
}

/// Runs `cmd` to completion with its output in `log_dir/<name>.{out,err}`,
/// and reports its wall time and max RSS (from `wait4`, so only this child
/// counts). A non-zero exit is an error that quotes the end of its stderr.
fn measure(cmd: &mut Command, log_dir: &Path, name: &str) -> Result<Measured> {
    let out = log_dir.join(format!("{name}.out"));
    let err = log_dir.join(format!("{name}.err"));
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out)?)
        .stderr(File::create(&err)?);
    let started = Instant::now();
    let child = cmd.spawn().with_context(|| format!("start {cmd:?}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain old data that wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own child, not yet waited for; the pointers are valid.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            bail!("wait4 for {cmd:?}: {e}");
        }
    }
    let took = started.elapsed();
    // Reaped above; `Child` has no Drop, so nothing waits twice.
    drop(child);
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let stderr = std::fs::read_to_string(&err).unwrap_or_default();
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "{cmd:?} failed (wait status {status:#x}):\n{}",
            tail.join("\n")
        );
    }
    Ok(Measured {
        took,
        max_rss_kib: usage.ru_maxrss as u64,
    })
}

/// The benchmark's PostgreSQL: the cluster plus `psql` for setup and checks.
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

    /// Runs one SQL command and returns its output, unaligned, tuples only.
    fn query(&self, db: &str, sql: &str) -> Result<String> {
        let out = self
            .psql(db)
            .args(["-tA", "-c", sql])
            .output()
            .context("run psql")?;
        ensure!(
            out.status.success(),
            "psql -c {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn count(&self, db: &str, sql: &str) -> Result<usize> {
        self.query(db, sql)?
            .parse()
            .with_context(|| format!("not a count: {sql}"))
    }

    /// A new, empty database, with a checkpoint first so that every timed
    /// run starts from the same quiet server.
    fn fresh(&self, db: &str) -> Result<()> {
        self.query("postgres", &format!("DROP DATABASE IF EXISTS {db}"))?;
        self.query("postgres", &format!("CREATE DATABASE {db}"))?;
        self.query("postgres", "CHECKPOINT")?;
        Ok(())
    }

    fn drop_db(&self, db: &str) -> Result<()> {
        self.query("postgres", &format!("DROP DATABASE IF EXISTS {db}"))
            .map(|_| ())
    }

    fn user_tables(&self, db: &str) -> Result<usize> {
        self.count(
            db,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 't\\_%'",
        )
    }

    fn applied(&self, db: &str) -> Result<usize> {
        self.count(
            db,
            "SELECT count(*) FROM keel_migrations WHERE state = 'applied'",
        )
    }
}

/// A temporary keel project with `n` migrations; returns the bytes of its files.
fn write_project(dir: &Path, n: usize) -> Result<u64> {
    let mut all = String::new();
    let mut bytes = 0u64;
    for i in 1..=n {
        let up = format!(
            "CREATE TABLE t_{i} (id bigserial primary key, v text);\nINSERT INTO t_{i} (v) VALUES ('x');\n"
        );
        let down = format!("DROP TABLE t_{i};\n");
        // Real-looking UTC versions, one second apart.
        let version = format!("20240101{:02}{:02}{:02}", i / 3600, i / 60 % 60, i % 60);
        let m = dir.join("migrations").join(format!("{version}_create_t_{i}"));
        std::fs::create_dir_all(&m)?;
        std::fs::write(m.join("up.sql"), &up)?;
        std::fs::write(m.join("down.sql"), &down)?;
        bytes += (up.len() + down.len()) as u64;
        all.push_str(&up);
    }
    std::fs::write(dir.join("all.sql"), all)?;
    Ok(bytes)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Floor,
    Autocommit,
    Keel,
}

#[derive(Default)]
struct Samples(Vec<Duration>);

impl Samples {
    fn push(&mut self, d: Duration) {
        self.0.push(d);
    }
    fn median(&self) -> Duration {
        let mut v = self.0.clone();
        v.sort();
        match v.len() {
            0 => Duration::ZERO,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2,
        }
    }
    fn min(&self) -> Duration {
        self.0.iter().copied().min().unwrap_or_default()
    }
    fn max(&self) -> Duration {
        self.0.iter().copied().max().unwrap_or_default()
    }
}

fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.3} s", d.as_secs_f64())
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn keel(project: &Path, url: &str) -> Command {
    let mut c = Command::new(KEEL);
    c.current_dir(project)
        .env("DATABASE_URL", url)
        .env("NO_COLOR", "1")
        .env_remove("KEEL_TEST_DATABASE_URL");
    c
}

fn run() -> Result<()> {
    let reps: usize = match std::env::var("KEEL_BENCH_REPS") {
        Ok(v) => v.parse().context("KEEL_BENCH_REPS is a number")?,
        Err(_) => 5,
    };
    ensure!(reps > 0, "KEEL_BENCH_REPS must be at least 1");
    ensure!(
        Path::new(KEEL).exists(),
        "the keel binary is missing at {KEEL}"
    );
    let work = tempfile::Builder::new().prefix("keel-bench-").tempdir()?;
    let logs = work.path().join("logs");
    std::fs::create_dir_all(&logs)?;
    let big = work.path().join("p1000");
    let small = work.path().join("p100");
    let big_bytes = write_project(&big, MIGRATIONS)?;
    let small_bytes = write_project(&small, 100)?;
    let all_sql = big.join("all.sql");

    eprintln!("starting a PostgreSQL cluster (default durability: fsync on) …");
    let pg = Pg {
        cluster: cluster::start(cluster::Durability::Default),
    };
    let version = pg.query("postgres", "SHOW server_version")?;
    let settings = pg.query(
        "postgres",
        "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings \
         WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method')",
    )?;

    let mut floor = Samples::default();
    let mut autocommit = Samples::default();
    let mut up = Samples::default();
    let mut status = Samples::default();
    let mut down = Samples::default();
    let mut up_rss = Vec::new();
    let mut status_rss = 0;
    let mut down_rss = 0;
    let kinds = [Kind::Floor, Kind::Autocommit, Kind::Keel];
    for rep in 0..reps {
        // Interleaved, and rotated so that no kind always runs first.
        for k in 0..kinds.len() {
            let kind = kinds[(rep + k) % kinds.len()];
            let db = format!("bench_{rep}_{k}");
            pg.fresh(&db)?;
            let url = pg.cluster.url(&db);
            match kind {
                Kind::Floor | Kind::Autocommit => {
                    let mut cmd = pg.psql(&db);
                    if kind == Kind::Floor {
                        cmd.arg("-1");
                    }
                    cmd.arg("-f").arg(&all_sql);
                    let label = if kind == Kind::Floor {
                        "psql -1"
                    } else {
                        "psql"
                    };
                    let m = measure(&mut cmd, &logs, &db)?;
                    let tables = pg.user_tables(&db)?;
                    ensure!(
                        tables == MIGRATIONS,
                        "{label} left {tables} tables, not {MIGRATIONS}"
                    );
                    eprintln!("  run {}/{reps}: {label:<8} {}", rep + 1, secs(m.took));
                    if kind == Kind::Floor {
                        floor.push(m.took)
                    } else {
                        autocommit.push(m.took)
                    }
                }
                Kind::Keel => {
                    let m = measure(keel(&big, &url).arg("up"), &logs, &db)?;
                    let (tables, applied) = (pg.user_tables(&db)?, pg.applied(&db)?);
                    ensure!(
                        tables == MIGRATIONS && applied == MIGRATIONS,
                        "keel up left {tables} tables and {applied} applied rows, not {MIGRATIONS}"
                    );
                    eprintln!("  run {}/{reps}: keel up  {}", rep + 1, secs(m.took));
                    up.push(m.took);
                    up_rss.push(m.max_rss_kib);
                    for i in 0..5 {
                        let m = measure(
                            keel(&big, &url).arg("status"),
                            &logs,
                            &format!("{db}_status_{i}"),
                        )?;
                        status.push(m.took);
                        status_rss = status_rss.max(m.max_rss_kib);
                    }
                    let listed = std::fs::read_to_string(logs.join(format!("{db}_status_0.out")))?;
                    ensure!(
                        listed.contains(&format!("{MIGRATIONS} applied, 0 pending")),
                        "keel status did not list {MIGRATIONS} applied:\n{}",
                        listed.lines().last().unwrap_or_default()
                    );
                    let m = measure(
                        keel(&big, &url).args(["down", "--steps", "100"]),
                        &logs,
                        &format!("{db}_down"),
                    )?;
                    let (tables, applied) = (pg.user_tables(&db)?, pg.applied(&db)?);
                    ensure!(
                        tables == MIGRATIONS - 100 && applied == MIGRATIONS - 100,
                        "keel down --steps 100 left {tables} tables and {applied} applied rows"
                    );
                    down.push(m.took);
                    down_rss = down_rss.max(m.max_rss_kib);
                }
            }
            pg.drop_db(&db)?;
        }
    }

    // Memory: the same run for 100 migrations, so growth shows.
    let mut small_rss = Vec::new();
    for rep in 0..reps.min(3) {
        let db = format!("bench_mem_{rep}");
        pg.fresh(&db)?;
        let m = measure(keel(&small, &pg.cluster.url(&db)).arg("up"), &logs, &db)?;
        ensure!(pg.applied(&db)? == 100, "keel up (100) did not apply 100");
        small_rss.push(m.max_rss_kib);
        pg.drop_db(&db)?;
    }
    let start = measure(Command::new(KEEL).arg("--version"), &logs, "version")?;

    // The report.
    let ratio = |a: &Samples, b: &Samples| a.median().as_secs_f64() / b.median().as_secs_f64();
    let to_floor = ratio(&up, &floor);
    let to_auto = ratio(&up, &autocommit);
    let rss_small = *small_rss.iter().max().unwrap_or(&0);
    let rss_big = *up_rss.iter().max().unwrap_or(&0);
    println!();
    println!(
        "keel benchmark: {MIGRATIONS} trivial migrations on PostgreSQL {version} ({settings}); median of {reps}"
    );
    println!("binary: {KEEL}");
    println!();
    println!(
        "{:<38} {:>10} {:>10} {:>10}   {}",
        "run", "median", "min", "max", "keel up is"
    );
    let row = |name: &str, s: &Samples, note: String| {
        println!(
            "{name:<38} {:>10} {:>10} {:>10}   {note}",
            secs(s.median()),
            secs(s.min()),
            secs(s.max())
        );
    };
    row("psql -1 -f all.sql (floor)", &floor, format!("{to_floor:.3}×"));
    row("psql -f all.sql (autocommit)", &autocommit, format!("{to_auto:.3}×"));
    row("keel up", &up, String::new());
    row(
        &format!("keel status ({MIGRATIONS} applied)"),
        &status,
        "(dbmate ~23 ms, sqlx-cli ~29 ms)".into(),
    );
    row("keel down --steps 100 (one process)", &down, String::new());
    println!(
        "{:<38} {:>10}",
        "keel --version (process start)",
        secs(start.took)
    );
    println!();
    println!(
        "goal: keel up ≤ {GOAL:.2}× the floor: {} ({to_floor:.3}×); for reference {REFERENCE}",
        if to_floor <= GOAL { "met" } else { "MISSED" }
    );
    println!();
    let per_migration = (rss_big as f64 - rss_small as f64) * 1024.0 / (MIGRATIONS - 100) as f64;
    let file_per_migration = (big_bytes - small_bytes) as f64 / (MIGRATIONS - 100) as f64;
    println!("memory (max RSS):");
    println!(
        "  keel up, 100 migrations ({} of SQL)      {}",
        kib_text(small_bytes),
        mib(rss_small)
    );
    println!(
        "  keel up, {MIGRATIONS} migrations ({} of SQL)   {}",
        kib_text(big_bytes),
        mib(rss_big)
    );
    println!(
        "  growth: {per_migration:.0} bytes of RSS per extra migration ({file_per_migration:.0} bytes of files each)"
    );
    println!(
        "  keel status {}, keel down --steps 100 {}",
        mib(status_rss),
        mib(down_rss)
    );
    Ok(())
}

fn kib_text(bytes: u64) -> String {
    format!("{:.0} KiB", bytes as f64 / 1024.0)
}
