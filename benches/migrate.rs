//! `cargo bench --bench migrate`: how fast `keel up` applies 1,000 trivial
//! migrations to PostgreSQL, next to `psql` running the same SQL.
//!
//! One run starts its own throwaway PostgreSQL cluster with the server's
//! default durability (fsync on), writes a temporary project of 1,000
//! migrations (`CREATE TABLE t_N …; INSERT …;`) plus the same SQL as one
//! `all.sql`, and times, each on a fresh database, interleaved:
//!
//! - `psql -1 -f all.sql`: one transaction, the floor;
//! - `psql -f all.sql`: autocommit, a commit per statement;
//! - `keel up` (the release binary): a commit per migration with its tracking row.
//!
//! Then `keel status` with 1,000 applied, `keel down --steps 100` in one
//! process, and the peak memory (max RSS) of `keel up` for 100 and 1,000
//! migrations. It prints medians and ratios. Besides wall time it reports
//! CPU time (the client's plus the server's), which other work on a shared
//! machine disturbs far less. Goals are reported, not asserted: the exit
//! code is non-zero only when a command fails or leaves the wrong result.
//!
//! Environment: `KEEL_BENCH_REPS` (default 5) repeats each run;
//! `KEEL_BENCH_COMPARE=/path/to/keel` also times another keel binary the
//! same way (before/after comparisons).

#[path = "../tests/cli/common/cluster.rs"]
mod cluster;

use anyhow::{Context, Result, bail, ensure};
use std::fs::File;
use std::path::{Path, PathBuf};
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

/// What one run cost.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    wall: Duration,
    /// CPU of the client process plus the server's processes.
    cpu: Duration,
    max_rss_kib: u64,
}

/// Runs `cmd` to completion with its output in `log_dir/<name>.{out,err}`.
/// Wall time, client CPU and max RSS come from `wait4`, so only this child
/// counts; server CPU from the cluster's processes. A non-zero exit is an
/// error that quotes the end of its stderr.
fn measure(cmd: &mut Command, server: &ServerCpu, log_dir: &Path, name: &str) -> Result<Cost> {
    let out = log_dir.join(format!("{name}.out"));
    let err = log_dir.join(format!("{name}.err"));
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out)?)
        .stderr(File::create(&err)?);
    let server_before = server.total()?;
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
    let wall = started.elapsed();
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
    let client = timeval(usage.ru_utime) + timeval(usage.ru_stime);
    let server_cpu = server.total()?.saturating_sub(server_before);
    Ok(Cost {
        wall,
        cpu: client + server_cpu,
        max_rss_kib: usage.ru_maxrss as u64,
    })
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

/// CPU used by the cluster: the postmaster's reaped children (ended
/// backends) plus its live children (background processes, open sessions).
struct ServerCpu {
    postmaster: u32,
    /// Children of an idle cluster (checkpointer, WAL writer, …).
    idle_children: usize,
    tick: f64,
}

/// A process's state letter, parent pid, and utime, stime, cutime, cstime in ticks.
fn proc_times(pid: u32) -> Option<(char, u32, [u64; 4])> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let n = |i: usize| rest.get(i)?.parse::<u64>().ok();
    // rest[0] is field 3 (state): ppid is field 4, utime..cstime fields 14..17.
    let state = rest.first()?.chars().next()?;
    Some((state, n(1)? as u32, [n(11)?, n(12)?, n(13)?, n(14)?]))
}

impl ServerCpu {
    fn new(data_dir: &Path) -> Result<ServerCpu> {
        let pid_file = std::fs::read_to_string(data_dir.join("postmaster.pid"))
            .context("read postmaster.pid")?;
        let postmaster: u32 = pid_file
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .parse()
            .context("postmaster.pid names a pid")?;
        // SAFETY: sysconf has no preconditions.
        let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let mut cpu = ServerCpu {
            postmaster,
            idle_children: 0,
            tick: if tick > 0.0 { tick } else { 100.0 },
        };
        // The fewest seen for a while: sessions that just closed may linger.
        cpu.idle_children = (0..20)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(20));
                cpu.children().len()
            })
            .min()
            .unwrap_or_default();
        Ok(cpu)
    }

    /// State letter and CPU ticks of each child of the postmaster.
    fn children(&self) -> Vec<(char, u64)> {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter_map(proc_times)
            .filter(|(_, ppid, _)| *ppid == self.postmaster)
            .map(|(state, _, t)| (state, t[0] + t[1]))
            .collect()
    }

    /// Total server CPU so far. Waits (briefly) for sessions that just
    /// closed to be gone, so that their time has moved to the postmaster
    /// (an exited child that is not reaped yet shows none).
    fn total(&self) -> Result<Duration> {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let children = self.children();
            let settled = children.len() <= self.idle_children
                && children.iter().all(|(state, _)| *state != 'Z');
            if settled || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let (_, _, pm) = proc_times(self.postmaster).context("the postmaster is gone")?;
        let ticks = pm[2] + pm[3] + self.children().iter().map(|(_, t)| t).sum::<u64>();
        Ok(Duration::from_secs_f64(ticks as f64 / self.tick))
    }
}

/// The benchmark's PostgreSQL: the cluster plus `psql` for setup and checks.
struct Pg {
    cluster: cluster::Cluster,
    cpu: ServerCpu,
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
    fn fresh(&self, db: &str) -> Result<String> {
        self.query("postgres", &format!("DROP DATABASE IF EXISTS {db}"))?;
        self.query("postgres", &format!("CREATE DATABASE {db}"))?;
        self.query("postgres", "CHECKPOINT")?;
        // Let the file system finish what earlier runs left (dropped
        // databases, dirty pages) so that it does not bill the next run.
        // SAFETY: sync has no preconditions.
        unsafe { libc::sync() };
        std::thread::sleep(Duration::from_millis(300));
        Ok(self.cluster.url(db))
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
        let m = dir
            .join("migrations")
            .join(format!("{version}_create_t_{i}"));
        std::fs::create_dir_all(&m)?;
        std::fs::write(m.join("up.sql"), &up)?;
        std::fs::write(m.join("down.sql"), &down)?;
        bytes += (up.len() + down.len()) as u64;
        all.push_str(&up);
    }
    std::fs::write(dir.join("all.sql"), all)?;
    Ok(bytes)
}

/// Several measurements of one thing.
#[derive(Default)]
struct Samples(Vec<Cost>);

impl Samples {
    fn median_by(&self, f: impl Fn(&Cost) -> Duration) -> Duration {
        let mut v: Vec<Duration> = self.0.iter().map(f).collect();
        v.sort();
        match v.len() {
            0 => Duration::ZERO,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2,
        }
    }
    fn wall(&self) -> Duration {
        self.median_by(|c| c.wall)
    }
    fn cpu(&self) -> Duration {
        self.median_by(|c| c.cpu)
    }
    fn min(&self) -> Duration {
        self.0.iter().map(|c| c.wall).min().unwrap_or_default()
    }
    fn max(&self) -> Duration {
        self.0.iter().map(|c| c.wall).max().unwrap_or_default()
    }
    fn max_rss(&self) -> u64 {
        self.0
            .iter()
            .map(|c| c.max_rss_kib)
            .max()
            .unwrap_or_default()
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

/// keel in `project`, on the database at `url`.
fn keel(bin: &Path, project: &Path, url: &str) -> Command {
    let mut c = Command::new(bin);
    c.current_dir(project)
        .env("DATABASE_URL", url)
        .env("NO_COLOR", "1")
        .env_remove("KEEL_TEST_DATABASE_URL");
    c
}

/// What is timed in each round.
#[derive(Clone)]
enum Kind {
    Floor,
    Autocommit,
    Keel(PathBuf),
}

fn run() -> Result<()> {
    let reps: usize = match std::env::var("KEEL_BENCH_REPS") {
        Ok(v) => v.parse().context("KEEL_BENCH_REPS is a number")?,
        Err(_) => 5,
    };
    ensure!(reps > 0, "KEEL_BENCH_REPS must be at least 1");
    let keel_bin = PathBuf::from(KEEL);
    ensure!(keel_bin.exists(), "the keel binary is missing at {KEEL}");
    let compare = match std::env::var("KEEL_BENCH_COMPARE") {
        Ok(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            ensure!(p.exists(), "KEEL_BENCH_COMPARE: no file {}", p.display());
            Some(p)
        }
        _ => None,
    };
    let work = tempfile::Builder::new().prefix("keel-bench-").tempdir()?;
    let logs = work.path().join("logs");
    std::fs::create_dir_all(&logs)?;
    let big = work.path().join("p1000");
    let small = work.path().join("p100");
    let big_bytes = write_project(&big, MIGRATIONS)?;
    let small_bytes = write_project(&small, 100)?;
    let all_sql = big.join("all.sql");

    eprintln!("starting a PostgreSQL cluster (default durability: fsync on) …");
    let mut pg = Pg {
        cluster: cluster::start(cluster::Durability::Default),
        cpu: ServerCpu {
            postmaster: 0,
            idle_children: 0,
            tick: 100.0,
        },
    };
    let version = pg.query("postgres", "SHOW server_version")?;
    let settings = pg.query(
        "postgres",
        "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings \
         WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes')",
    )?;
    // Once the background processes are up and the sessions above are gone.
    std::thread::sleep(Duration::from_millis(500));
    pg.cpu = ServerCpu::new(&pg.cluster.dir.join("data"))?;

    let mut kinds = vec![Kind::Floor, Kind::Autocommit, Kind::Keel(keel_bin.clone())];
    if let Some(c) = &compare {
        kinds.push(Kind::Keel(c.clone()));
    }
    let mut samples: Vec<Samples> = kinds.iter().map(|_| Samples::default()).collect();
    let mut status = Samples::default();
    let mut down = Samples::default();
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    for rep in 0..reps {
        // Interleaved, in a new order each round, so that no kind always
        // runs first or right after the same other one.
        let mut order: Vec<usize> = (0..kinds.len()).collect();
        for i in (1..order.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            order.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        for ki in order {
            let db = format!("bench_{rep}_{ki}");
            let url = pg.fresh(&db)?;
            let label;
            let cost = match &kinds[ki] {
                kind @ (Kind::Floor | Kind::Autocommit) => {
                    let mut cmd = pg.psql(&db);
                    label = if matches!(kind, Kind::Floor) {
                        cmd.arg("-1");
                        "psql -1".to_string()
                    } else {
                        "psql".to_string()
                    };
                    cmd.arg("-f").arg(&all_sql);
                    let cost = measure(&mut cmd, &pg.cpu, &logs, &db)?;
                    let tables = pg.user_tables(&db)?;
                    ensure!(
                        tables == MIGRATIONS,
                        "{label} left {tables} tables, not {MIGRATIONS}"
                    );
                    cost
                }
                Kind::Keel(bin) => {
                    label = if *bin == keel_bin {
                        "keel up".to_string()
                    } else {
                        "keel up (compare)".to_string()
                    };
                    let cost = measure(keel(bin, &big, &url).arg("up"), &pg.cpu, &logs, &db)?;
                    let (tables, applied) = (pg.user_tables(&db)?, pg.applied(&db)?);
                    ensure!(
                        tables == MIGRATIONS && applied == MIGRATIONS,
                        "{label} left {tables} tables and {applied} applied rows, not {MIGRATIONS}"
                    );
                    if *bin == keel_bin {
                        for i in 0..5 {
                            let name = format!("{db}_status_{i}");
                            let c = measure(
                                keel(bin, &big, &url).arg("status"),
                                &pg.cpu,
                                &logs,
                                &name,
                            )?;
                            status.0.push(c);
                        }
                        let listed =
                            std::fs::read_to_string(logs.join(format!("{db}_status_0.out")))?;
                        ensure!(
                            listed.contains(&format!("{MIGRATIONS} applied, 0 pending")),
                            "keel status did not list {MIGRATIONS} applied:\n{}",
                            listed.lines().last().unwrap_or_default()
                        );
                        let c = measure(
                            keel(bin, &big, &url).args(["down", "--steps", "100"]),
                            &pg.cpu,
                            &logs,
                            &format!("{db}_down"),
                        )?;
                        let (tables, applied) = (pg.user_tables(&db)?, pg.applied(&db)?);
                        ensure!(
                            tables == MIGRATIONS - 100 && applied == MIGRATIONS - 100,
                            "keel down --steps 100 left {tables} tables and {applied} applied rows"
                        );
                        down.0.push(c);
                    }
                    cost
                }
            };
            eprintln!(
                "  round {}/{reps}: {label:<18} {:>9} wall, {:>9} CPU",
                rep + 1,
                secs(cost.wall),
                secs(cost.cpu)
            );
            samples[ki].0.push(cost);
            pg.drop_db(&db)?;
        }
    }

    // Memory: the same run for 100 migrations, so that growth shows.
    let mut small_up = Samples::default();
    for rep in 0..reps.min(3) {
        let db = format!("bench_mem_{rep}");
        let url = pg.fresh(&db)?;
        let c = measure(keel(&keel_bin, &small, &url).arg("up"), &pg.cpu, &logs, &db)?;
        ensure!(pg.applied(&db)? == 100, "keel up (100) did not apply 100");
        small_up.0.push(c);
        pg.drop_db(&db)?;
    }
    let mut start = Samples::default();
    for i in 0..5 {
        let c = measure(
            Command::new(&keel_bin).arg("--version"),
            &pg.cpu,
            &logs,
            &format!("version_{i}"),
        )?;
        start.0.push(c);
    }

    // The report.
    let [floor, autocommit, up] = [&samples[0], &samples[1], &samples[2]];
    // keel's cost over another's, round by round (runs next to each other
    // share the machine's load), then the median of those ratios.
    let ratio = |other: &Samples, f: fn(&Cost) -> Duration| {
        let mut r: Vec<f64> =
            up.0.iter()
                .zip(&other.0)
                .map(|(k, o)| f(k).as_secs_f64() / f(o).as_secs_f64())
                .collect();
        r.sort_by(f64::total_cmp);
        match r.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => r[n / 2],
            n => (r[n / 2 - 1] + r[n / 2]) / 2.0,
        }
    };
    let wall = |c: &Cost| c.wall;
    let cpu = |c: &Cost| c.cpu;
    let to_floor = ratio(floor, wall);
    println!();
    println!(
        "keel benchmark: {MIGRATIONS} trivial migrations, PostgreSQL {version} ({settings}), \
         median of {reps} interleaved rounds, each on a fresh database"
    );
    println!("keel: {KEEL}");
    if let Some(c) = &compare {
        println!("compare: {}", c.display());
    }
    println!();
    println!(
        "{:<36} {:>10} {:>21} {:>10}   {:>15}",
        "", "wall", "(min – max)", "CPU", "keel up ÷ this"
    );
    let row = |name: &str, s: &Samples, with_ratio: bool| {
        let r = if with_ratio {
            format!("{:.3}× / {:.3}×", ratio(s, wall), ratio(s, cpu))
        } else {
            String::new()
        };
        println!(
            "{name:<36} {:>10} {:>21} {:>10}   {r:>15}",
            secs(s.wall()),
            format!("({} – {})", secs(s.min()), secs(s.max())),
            secs(s.cpu()),
        );
    };
    row("psql -1 -f all.sql (floor)", floor, true);
    row("psql -f all.sql (autocommit)", autocommit, true);
    row("keel up", up, false);
    if compare.is_some() {
        row("keel up (compare binary)", &samples[3], true);
    }
    row(
        &format!("keel status ({MIGRATIONS} applied)"),
        &status,
        false,
    );
    row("keel down --steps 100 (one process)", &down, false);
    row("keel --version (process start)", &start, false);
    println!(
        "(ratios: wall / CPU, each the median of the rounds' ratios; CPU = client + server processes)"
    );
    println!();
    println!(
        "goal: keel up ≤ {GOAL:.2}× the floor: {} at {to_floor:.3}× wall ({:.3}× CPU); \
         for reference: {REFERENCE}",
        if to_floor <= GOAL { "met" } else { "MISSED" },
        ratio(floor, cpu)
    );
    println!(
        "keel status with {MIGRATIONS} applied: {} (dbmate ~23 ms, sqlx-cli ~29 ms)",
        secs(status.wall())
    );
    println!();
    let (rss_small, rss_big) = (small_up.max_rss(), up.max_rss());
    let extra = (MIGRATIONS - 100) as f64;
    println!("memory (max RSS):");
    println!(
        "  keel up, 100 migrations ({:.0} KiB of files)     {}",
        small_bytes as f64 / 1024.0,
        mib(rss_small)
    );
    println!(
        "  keel up, {MIGRATIONS} migrations ({:.0} KiB of files)   {}",
        big_bytes as f64 / 1024.0,
        mib(rss_big)
    );
    println!(
        "  growth: {:.0} bytes of RSS per extra migration, whose files are {:.0} bytes",
        (rss_big as f64 - rss_small as f64) * 1024.0 / extra,
        (big_bytes - small_bytes) as f64 / extra
    );
    println!(
        "  keel status {}, keel down --steps 100 {}, keel --version {}",
        mib(status.max_rss()),
        mib(down.max_rss()),
        mib(start.max_rss())
    );
    Ok(())
}
