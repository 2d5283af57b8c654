//! `cargo bench --bench migrate`: how fast `keel up` applies 1,000 trivial
//! migrations to PostgreSQL, next to `psql` running the same SQL and next to
//! its peers, sqlx-cli and dbmate, applying the same migrations.
//!
//! One run starts its own throwaway PostgreSQL cluster with the server's
//! default durability (fsync on), writes 1,000 migrations (`CREATE TABLE t_N
//! …; INSERT …;`) in keel's, sqlx's and dbmate's layouts plus the same SQL as
//! one `all.sql`, and times, each on a fresh database, interleaved in a new
//! order each round:
//!
//! - `psql -1 -f all.sql`: one transaction, the floor;
//! - `psql -f all.sql`: autocommit, a commit per statement;
//! - `keel up` (the release binary): a commit per migration with its tracking row;
//! - `sqlx migrate run` and `dbmate migrate`, when installed: a transaction
//!   per migration with their own tracking rows.
//!
//! Then, in the same round, `keel status`, `dbmate status` and `sqlx migrate
//! info` with 1,000 applied (interleaved), and `keel down --steps 100`. At
//! the end, the peak memory (max RSS) of `keel up` for 100 migrations. Every
//! ratio is the median of the rounds' paired ratios (runs next to each other
//! share the machine's load); `/proc/loadavg` is printed with each round.
//! Besides wall time it reports CPU time (the client's plus the server's),
//! which other work on a shared machine disturbs far less. Goals are
//! reported, not asserted: the exit code is non-zero only when a command
//! fails or leaves the wrong result.
//!
//! Environment: `KEEL_BENCH_REPS` (default 5) sets the rounds;
//! `KEEL_BENCH_COMPARE=/path/to/keel` also times another keel binary (before
//! and after a change); `KEEL_BENCH_SQLX` and `KEEL_BENCH_DBMATE` name the
//! peers' binaries (default: `sqlx` and `dbmate` on the PATH; a peer that is
//! not found is left out and the report says so).

#[path = "../tests/cli/common/cluster.rs"]
mod cluster;
#[path = "common/measure.rs"]
mod measure;

use anyhow::{Context, Result, bail, ensure};
use measure::{Samples, ServerCpu, cpu, load, measure, mib, paired, rss, secs, shuffled, wall};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

const KEEL: &str = env!("CARGO_BIN_EXE_keel");
const MIGRATIONS: usize = 1000;
/// Goals: apply ≤ 1.12× the floor, status ≤ 1.0× dbmate's, memory ≤ 1.2× sqlx-cli's.
const GOAL_UP: f64 = 1.12;
const GOAL_STATUS: f64 = 1.0;
const GOAL_MEMORY: f64 = 1.2;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("benchmark failed: {e:#}");
            ExitCode::FAILURE
        }
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

/// A temporary keel project with `n` migrations, the same migrations in
/// sqlx's (`sqlx/`) and dbmate's (`dbmate/`) layouts, and all of their SQL
/// as `all.sql`; returns the bytes of keel's files.
fn write_project(dir: &Path, n: usize) -> Result<u64> {
    let mut all = String::new();
    let mut bytes = 0u64;
    for sub in ["migrations", "sqlx", "dbmate"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
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
        let sqlx = dir.join("sqlx").join(format!("{version}_create_t_{i}"));
        std::fs::write(sqlx.with_extension("up.sql"), &up)?;
        std::fs::write(sqlx.with_extension("down.sql"), &down)?;
        std::fs::write(
            dir.join("dbmate")
                .join(format!("{version}_create_t_{i}.sql")),
            format!("-- migrate:up\n{up}\n-- migrate:down\n{down}"),
        )?;
        bytes += (up.len() + down.len()) as u64;
        all.push_str(&up);
    }
    std::fs::write(dir.join("all.sql"), all)?;
    Ok(bytes)
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
    Sqlx(PathBuf),
    Dbmate(PathBuf),
}

/// One contender: what it is called in the report, and how it runs.
struct Tool {
    label: String,
    kind: Kind,
}

impl Tool {
    /// The command that applies every migration to `db`.
    fn apply(&self, pg: &Pg, project: &Path, db: &str) -> Command {
        self.command(pg, project, db, false)
            .expect("every tool applies")
    }

    /// The command that lists applied and pending migrations, if it has one.
    fn status(&self, pg: &Pg, project: &Path, db: &str) -> Option<Command> {
        self.command(pg, project, db, true)
    }

    /// The command that applies (or, with `status`, lists) the migrations.
    fn command(&self, pg: &Pg, project: &Path, db: &str, status: bool) -> Option<Command> {
        let mut c = match &self.kind {
            Kind::Floor | Kind::Autocommit if status => return None,
            Kind::Floor | Kind::Autocommit => {
                let mut c = pg.psql(db);
                if matches!(self.kind, Kind::Floor) {
                    c.arg("-1");
                }
                c.arg("-f").arg(project.join("all.sql"));
                c
            }
            Kind::Keel(bin) => {
                let mut c = keel(bin, project, &pg.cluster.url(db));
                c.arg(if status { "status" } else { "up" });
                c
            }
            Kind::Sqlx(bin) => {
                let mut c = Command::new(bin);
                c.args(["migrate", if status { "info" } else { "run" }, "--source"])
                    .arg(project.join("sqlx"))
                    .arg("--database-url")
                    .arg(pg.cluster.url(db));
                c
            }
            Kind::Dbmate(bin) => {
                let mut c = Command::new(bin);
                c.arg("--url")
                    .arg(dbmate_url(pg, db))
                    .arg("--migrations-dir")
                    .arg(project.join("dbmate"));
                if status {
                    c.arg("status");
                } else {
                    c.args(["--no-dump-schema", "migrate"]);
                }
                c
            }
        };
        c.env("NO_COLOR", "1");
        Some(c)
    }

    /// Checks that the apply left every table and tracking row.
    fn check_applied(&self, pg: &Pg, db: &str) -> Result<()> {
        let tables = pg.user_tables(db)?;
        let tracked = match &self.kind {
            Kind::Floor | Kind::Autocommit => MIGRATIONS,
            Kind::Keel(_) => pg.applied(db)?,
            Kind::Sqlx(_) => pg.count(db, "SELECT count(*) FROM _sqlx_migrations WHERE success")?,
            Kind::Dbmate(_) => pg.count(db, "SELECT count(*) FROM schema_migrations")?,
        };
        ensure!(
            tables == MIGRATIONS && tracked == MIGRATIONS,
            "{} left {tables} tables and {tracked} tracking rows, not {MIGRATIONS}",
            self.label
        );
        Ok(())
    }

    /// Checks that a status listing shows every migration applied.
    fn check_listed(&self, out: &str) -> Result<()> {
        let listed = match &self.kind {
            Kind::Keel(_) => out.contains(&format!("{MIGRATIONS} applied, 0 pending")),
            Kind::Sqlx(_) => out.lines().filter(|l| l.contains("installed")).count() == MIGRATIONS,
            Kind::Dbmate(_) => out.contains(&format!("Applied: {MIGRATIONS}")),
            Kind::Floor | Kind::Autocommit => true,
        };
        ensure!(
            listed,
            "{} status did not list {MIGRATIONS} applied:\n{}",
            self.label,
            out.lines().last().unwrap_or_default()
        );
        Ok(())
    }
}

/// dbmate's URL for `db` on the cluster's socket (its driver names the
/// socket folder `socket`, not `host`).
fn dbmate_url(pg: &Pg, db: &str) -> String {
    format!(
        "postgres://postgres@/{db}?socket={}&port=5432&sslmode=disable",
        pg.cluster.dir.display()
    )
}

/// A peer's binary: `$var` if set, else `name` on the PATH.
fn peer(var: &str, name: &str) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(var)
        && !p.is_empty()
    {
        return Some(PathBuf::from(p));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// What the rounds measured, per tool (same index as the tools).
struct Measured {
    apply: Vec<Samples>,
    status: Vec<Samples>,
    down: Samples,
    loads: Vec<f64>,
}

/// Runs the interleaved rounds.
fn rounds(pg: &Pg, tools: &[Tool], project: &Path, logs: &Path, reps: usize) -> Result<Measured> {
    let mut m = Measured {
        apply: tools.iter().map(|_| Samples::default()).collect(),
        status: tools.iter().map(|_| Samples::default()).collect(),
        down: Samples::default(),
        loads: vec![load()],
    };
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    for rep in 0..reps {
        let mut dbs = Vec::new();
        // The first apply after the last round's databases were dropped
        // ran about 1 s slower than the same apply later in the round
        // (4 of 4 rounds where the floor came first: 3.0–3.2 s against
        // 2.0–2.1 s), whichever tool it was. An untimed apply takes that
        // place, so that the shuffled order decides nothing.
        let warm = format!("bench_{rep}_warm_up");
        pg.fresh(&warm)?;
        let warmed = tools[0].apply(pg, project, &warm).output()?;
        ensure!(warmed.status.success(), "the warm-up apply failed");
        dbs.push((usize::MAX, warm));
        for ki in shuffled(tools.len(), &mut rng) {
            let tool = &tools[ki];
            let db = format!("bench_{rep}_{ki}");
            pg.fresh(&db)?;
            let cost = measure(&mut tool.apply(pg, project, &db), &pg.cpu, logs, &db)?;
            tool.check_applied(pg, &db)?;
            eprintln!(
                "  round {}/{reps}: {:<22} {:>9} wall, {:>9} CPU, {}",
                rep + 1,
                tool.label,
                secs(cost.wall),
                secs(cost.cpu),
                mib(cost.max_rss_kib)
            );
            m.apply[ki].0.push(cost);
            dbs.push((ki, db));
        }
        // Listing 1,000 applied, three times each, interleaved.
        for i in 0..3 {
            for ki in shuffled(tools.len(), &mut rng) {
                let db = &dbs.iter().find(|(k, _)| *k == ki).expect("applied").1;
                let Some(mut cmd) = tools[ki].status(pg, project, db) else {
                    continue;
                };
                let name = format!("{db}_status_{i}");
                let cost = measure(&mut cmd, &pg.cpu, logs, &name)?;
                let out = std::fs::read_to_string(logs.join(format!("{name}.out")))?;
                tools[ki].check_listed(&out)?;
                m.status[ki].0.push(cost);
            }
        }
        // keel's down, on its own database.
        let db = &dbs
            .iter()
            .find(|(k, _)| *k == KEEL_TOOL)
            .expect("keel ran")
            .1;
        let Kind::Keel(bin) = &tools[KEEL_TOOL].kind else {
            bail!("tool {KEEL_TOOL} is not keel");
        };
        let c = measure(
            keel(bin, project, &pg.cluster.url(db)).args(["down", "--steps", "100"]),
            &pg.cpu,
            logs,
            &format!("{db}_down"),
        )?;
        let (tables, applied) = (pg.user_tables(db)?, pg.applied(db)?);
        ensure!(
            tables == MIGRATIONS - 100 && applied == MIGRATIONS - 100,
            "keel down --steps 100 left {tables} tables and {applied} applied rows"
        );
        m.down.0.push(c);
        for (_, db) in &dbs {
            pg.drop_db(db)?;
        }
        m.loads.push(load());
        eprintln!(
            "  round {}/{reps} done, load average {:.2}",
            rep + 1,
            load()
        );
    }
    Ok(m)
}

/// The index of this build's `keel up` among the tools.
const KEEL_TOOL: usize = 2;

fn run() -> Result<()> {
    let reps: usize = match std::env::var("KEEL_BENCH_REPS") {
        Ok(v) => v.parse().context("KEEL_BENCH_REPS is a number")?,
        Err(_) => 5,
    };
    ensure!(reps > 0, "KEEL_BENCH_REPS must be at least 1");
    let keel_bin = PathBuf::from(KEEL);
    ensure!(keel_bin.exists(), "the keel binary is missing at {KEEL}");
    let mut tools = vec![
        Tool {
            label: "psql -1 -f (floor)".into(),
            kind: Kind::Floor,
        },
        Tool {
            label: "psql -f (autocommit)".into(),
            kind: Kind::Autocommit,
        },
        Tool {
            label: "keel up".into(),
            kind: Kind::Keel(keel_bin.clone()),
        },
    ];
    if let Ok(p) = std::env::var("KEEL_BENCH_COMPARE")
        && !p.is_empty()
    {
        let p = PathBuf::from(p);
        ensure!(p.exists(), "KEEL_BENCH_COMPARE: no file {}", p.display());
        tools.push(Tool {
            label: "keel up (compare)".into(),
            kind: Kind::Keel(p),
        });
    }
    let mut missing = Vec::new();
    match peer("KEEL_BENCH_SQLX", "sqlx") {
        Some(p) => tools.push(Tool {
            label: "sqlx migrate run".into(),
            kind: Kind::Sqlx(p),
        }),
        None => missing.push(
            "sqlx-cli (cargo install sqlx-cli --no-default-features --features postgres,rustls; \
             or KEEL_BENCH_SQLX=path)",
        ),
    }
    match peer("KEEL_BENCH_DBMATE", "dbmate") {
        Some(p) => tools.push(Tool {
            label: "dbmate migrate".into(),
            kind: Kind::Dbmate(p),
        }),
        None => missing
            .push("dbmate (npm install dbmate, or a release binary; or KEEL_BENCH_DBMATE=path)"),
    }
    let work = tempfile::Builder::new().prefix("keel-bench-").tempdir()?;
    let logs = work.path().join("logs");
    std::fs::create_dir_all(&logs)?;
    let big = work.path().join("p1000");
    let small = work.path().join("p100");
    let big_bytes = write_project(&big, MIGRATIONS)?;
    let small_bytes = write_project(&small, 100)?;

    eprintln!("starting a PostgreSQL cluster (default durability: fsync on) …");
    let mut pg = Pg {
        cluster: cluster::start(cluster::Durability::Default),
        cpu: ServerCpu::unread(),
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

    let m = rounds(&pg, &tools, &big, &logs, reps)?;

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
    report(&Report {
        tools: &tools,
        m: &m,
        reps,
        version: &version,
        settings: &settings,
        missing: &missing,
        small_up: &small_up,
        start: &start,
        bytes: (small_bytes, big_bytes),
    });
    Ok(())
}

/// Everything the report prints.
struct Report<'a> {
    tools: &'a [Tool],
    m: &'a Measured,
    reps: usize,
    version: &'a str,
    settings: &'a str,
    missing: &'a [&'a str],
    small_up: &'a Samples,
    start: &'a Samples,
    /// Bytes of keel's files for 100 and for 1,000 migrations.
    bytes: (u64, u64),
}

fn report(r: &Report) {
    let (tools, m) = (r.tools, r.m);
    let up = &m.apply[KEEL_TOOL];
    let status = &m.status[KEEL_TOOL];
    let find = |pred: fn(&Kind) -> bool| tools.iter().position(|t| pred(&t.kind));
    let sqlx = find(|k| matches!(k, Kind::Sqlx(_)));
    let dbmate = find(|k| matches!(k, Kind::Dbmate(_)));
    let (lo, hi) = m
        .loads
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &l| (lo.min(l), hi.max(l)));
    println!();
    println!(
        "keel benchmark: {MIGRATIONS} trivial migrations, PostgreSQL {} ({}), \
         {} interleaved rounds, each run on a fresh database; load average {lo:.2}–{hi:.2}",
        r.version, r.settings, r.reps
    );
    println!("keel: {KEEL}");
    for miss in r.missing {
        println!("not found, left out: {miss}");
    }
    println!();
    println!(
        "{:<30} {:>10} {:>21} {:>10} {:>10}   {:>17}",
        "apply", "wall", "(min – max)", "CPU", "max RSS", "keel ÷ this"
    );
    let row = |name: &str, s: &Samples, mine: &Samples, with_ratio: bool| {
        let ratio = if with_ratio {
            format!(
                "{:.3}× / {:.3}×",
                paired(mine, s, wall),
                paired(mine, s, cpu)
            )
        } else {
            String::new()
        };
        println!(
            "{name:<30} {:>10} {:>21} {:>10} {:>10}   {ratio:>17}",
            secs(s.wall()),
            format!("({} – {})", secs(s.min()), secs(s.max())),
            secs(s.cpu()),
            mib(s.median_rss()),
        );
    };
    for (i, t) in tools.iter().enumerate() {
        row(&t.label, &m.apply[i], up, i != KEEL_TOOL);
    }
    println!();
    println!("status with {MIGRATIONS} applied (3 per round)");
    for (i, t) in tools.iter().enumerate() {
        if m.status[i].0.is_empty() {
            continue;
        }
        let name = match &t.kind {
            Kind::Keel(_) => t.label.replace(" up", " status"),
            Kind::Sqlx(_) => "sqlx migrate info".into(),
            Kind::Dbmate(_) => "dbmate status".into(),
            _ => t.label.clone(),
        };
        row(&name, &m.status[i], status, i != KEEL_TOOL);
    }
    println!();
    row("keel down --steps 100", &m.down, &m.down, false);
    row("keel --version (start)", r.start, r.start, false);
    println!(
        "(ratios: wall / CPU, each the median of paired ratios; CPU = client + server processes)"
    );
    println!();
    let verdict = |x: f64, goal: f64| if x <= goal { "met" } else { "MISSED" };
    let to_floor = paired(up, &m.apply[0], wall);
    println!(
        "goal: keel up ≤ {GOAL_UP:.2}× the floor: {} at {to_floor:.3}× wall ({:.3}× CPU)",
        verdict(to_floor, GOAL_UP),
        paired(up, &m.apply[0], cpu)
    );
    match dbmate {
        Some(d) => {
            let x = paired(status, &m.status[d], wall);
            println!(
                "goal: keel status ≤ {GOAL_STATUS:.2}× dbmate status: {} at {x:.3}× wall ({:.3}× CPU)",
                verdict(x, GOAL_STATUS),
                paired(status, &m.status[d], cpu)
            );
        }
        None => println!("goal: keel status ≤ {GOAL_STATUS:.2}× dbmate status: dbmate not found"),
    }
    match sqlx {
        Some(q) => {
            let x = paired(up, &m.apply[q], rss);
            println!(
                "goal: keel up's memory ≤ {GOAL_MEMORY:.2}× sqlx migrate run's: {} at {x:.3}× max RSS ({} vs {})",
                verdict(x, GOAL_MEMORY),
                mib(up.median_rss()),
                mib(m.apply[q].median_rss())
            );
        }
        None => {
            println!("goal: keel up's memory ≤ {GOAL_MEMORY:.2}× sqlx-cli's: sqlx-cli not found")
        }
    }
    println!();
    let (small_bytes, big_bytes) = r.bytes;
    let (rss_small, rss_big) = (r.small_up.max_rss(), up.max_rss());
    let extra = (MIGRATIONS - 100) as f64;
    println!("keel's memory (max RSS):");
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
        mib(m.down.max_rss()),
        mib(r.start.max_rss())
    );
    match startup_order_coverage(Path::new(KEEL)) {
        Some((found, listed)) => println!(
            "  link/startup.order: {found} of its {listed} functions are in this binary{}",
            if found * 10 < listed * 9 {
                " (under 90%: run link/refresh-startup-order)"
            } else {
                ""
            }
        ),
        None => println!("  link/startup.order: not checked (no `nm`)"),
    }
}

/// How many of the functions `link/startup.order` lists for this build
/// (which build.rs has the linker put first, together) this binary
/// defines: names carry hashes that a new toolchain, a dependency or an
/// edit changes, and a stale list costs memory. The list has a part per
/// build (`# build: NAME`); the part that matches best is this binary's.
fn startup_order_coverage(bin: &Path) -> Option<(usize, usize)> {
    let bare = |name: &str| name.split(".llvm.").next().unwrap_or(name).to_string();
    let out = Command::new("nm")
        .arg("--defined-only")
        .arg(bin)
        .output()
        .ok()?;
    let defined: std::collections::HashSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(bare))
        .collect();
    let list =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("link/startup.order"))
            .ok()?;
    let mut parts: Vec<Vec<String>> = vec![Vec::new()];
    for line in list.lines().map(str::trim) {
        if line.starts_with("# build:") {
            parts.push(Vec::new());
        } else if !line.starts_with('#') && !line.is_empty() {
            parts.last_mut()?.push(bare(line));
        }
    }
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(|p| (p.iter().filter(|n| defined.contains(*n)).count(), p.len()))
        .max_by(|a, b| (a.0 * b.1).cmp(&(b.0 * a.1)))
}
