//! The zero-downtime proof for backfills (`cargo bench --bench backfill`).
//!
//! On a throwaway PostgreSQL cluster with fsync on, 1M users (primary key
//! and unique email index) from `keel seed`:
//!
//! 1. speed: one `UPDATE` of every row vs keel's backfill of the sample's
//!    name split (batches of 1000, no delay, resumable);
//! 2. load: an application doing 200 requests/s (half single-row reads, half
//!    single-row updates, 16 connections, 100 ms timeout) while each of the
//!    two runs; dropped (timed out or refused) and late (> 100 ms) requests
//!    and write latency percentiles;
//! 3. memory: keel's peak RSS for 100k and 1M rows;
//! 4. dirty data: 200k rows with one bad row in every 5,000 against the
//!    same backfill on clean data, interleaved ([`dirty`]);
//! 5. replica: the load of part 2 with a streaming replica attached
//!    (`pg_basebackup`, same machine) during keel's default backfill: the
//!    requests dropped and the replica's lag, sampled every 100 ms from
//!    the WAL positions, against the backfill's `max_replica_lag` (5 s).
//!
//! `KEEL_BENCH_USERS` changes the row count (default 1000000);
//! `KEEL_BENCH_PARTS=speed,load,memory,dirty,replica` runs only the parts named;
//! `KEEL_BENCH_BIN=/path/to/keel` times another keel binary.

#[path = "../tests/cli/common/cluster.rs"]
mod cluster;
#[path = "backfill/dirty.rs"]
mod dirty;

use sqlx::{Connection, PgConnection};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEEL: &str = env!("CARGO_BIN_EXE_keel");

/// The keel binary to time: this build, or `KEEL_BENCH_BIN` (e.g. an
/// older build, to compare two in the same conditions).
fn keel_bin() -> String {
    std::env::var("KEEL_BENCH_BIN").unwrap_or_else(|_| KEEL.to_string())
}
const SPLIT: &str = "20260201090000_split_user_names";
const RATE: u64 = 200;
const CONNECTIONS: usize = 16;
const TIMEOUT: Duration = Duration::from_millis(100);

fn main() {
    let users: u64 = std::env::var("KEEL_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let parts = std::env::var("KEEL_BENCH_PARTS").unwrap_or_default();
    let part = |name: &str| parts.is_empty() || parts.split(',').any(|p| p.trim() == name);
    let cluster = Cluster::start();
    println!(
        "keel backfill benchmark, PostgreSQL with fsync on; load average (1, 5, 15 min): {}",
        dirty::loadavg()
    );
    if part("speed") || part("load") || part("memory") || part("replica") {
        println!("{users} users");
        let project = Project::new(&cluster);
        project.keel(&["up", "-q", "--to", "20260101090200"], "base");
        let t = Instant::now();
        project.keel(
            &[
                "seed",
                "-q",
                "--users",
                &users.to_string(),
                "--posts",
                "0",
                "--comments",
                "0",
            ],
            "base",
        );
        cluster.sql("base", "VACUUM ANALYZE users; CHECKPOINT");
        println!("seeded {users} users in {:.1} s", t.elapsed().as_secs_f64());
        let split = split_expressions();
        if part("speed") {
            speed(&cluster, &project, &split, users);
        }
        if part("load") {
            load(&cluster, &project, &split, users);
        }
        if part("memory") {
            memory(&cluster, &project, users);
        }
        if part("replica") {
            replica(&cluster, &project, users);
        }
    }
    if part("dirty") {
        dirty::run(&cluster);
    }
    println!("\nload average at the end: {}", dirty::loadavg());
}

/// 1. One UPDATE of every row against keel's backfill, best of 2.
fn speed(cluster: &Cluster, project: &Project, split: &Split, users: u64) {
    let mut naive = Vec::new();
    let mut keel = Vec::new();
    for round in 0..2 {
        let db = cluster.copy("base", &format!("naive_{round}"));
        cluster.sql(
            &db,
            "ALTER TABLE users ADD COLUMN first_name text, ADD COLUMN last_name text",
        );
        let t = Instant::now();
        cluster.sql(&db, &split.update_all);
        naive.push(t.elapsed());
        cluster.drop_db(&db);

        let db = cluster.copy("base", &format!("keel_{round}"));
        let run = project.backfill(cluster, &db, 0);
        keel.push(run.backfill);
        println!(
            "   round {}: single UPDATE {:.2} s, keel {:.2} s; autovacuum on users during keel's run: {}",
            round + 1,
            naive[round].as_secs_f64(),
            run.backfill.as_secs_f64(),
            autovacuum_during_backfill(cluster, &db, "users")
        );
        cluster.drop_db(&db);
    }
    let naive = *naive.iter().min().unwrap();
    let keel_t = *keel.iter().min().unwrap();
    println!("\n1. speed (best of 2)");
    println!(
        "   single UPDATE            {:>7.2} s  {:>8.0} rows/s",
        naive.as_secs_f64(),
        users as f64 / naive.as_secs_f64()
    );
    println!(
        "   keel backfill (1000/0ms) {:>7.2} s  {:>8.0} rows/s  ratio {:.2}x  (goal <= 1.10x)",
        keel_t.as_secs_f64(),
        users as f64 / keel_t.as_secs_f64(),
        keel_t.as_secs_f64() / naive.as_secs_f64()
    );
}

/// Whether autovacuum or autoanalyze worked on `table` while the backfill
/// ran (ended after it started, or is still running): the single UPDATE
/// leaves its dead rows to count only at its commit, after the clock
/// stopped, while a backfill's committed batches pass autovacuum's
/// threshold (20% of the rows) halfway and may share the cores with it,
/// depending on where autovacuum_naptime's minute falls.
fn autovacuum_during_backfill(cluster: &Cluster, db: &str, table: &str) -> &'static str {
    let seen = cluster.query(
        db,
        &format!(
            "SELECT (SELECT count(*) FROM pg_stat_user_tables t, keel_backfills b \
              WHERE t.relname = '{table}' AND (t.last_autovacuum >= b.started_at::timestamptz \
              OR t.last_autoanalyze >= b.started_at::timestamptz)) \
             + (SELECT count(*) FROM pg_stat_progress_vacuum p JOIN pg_class c ON c.oid = p.relid \
              WHERE p.datname = current_database() AND c.relname = '{table}')"
        ),
    );
    if seen == "0" { "no" } else { "yes" }
}

/// 2. The application's requests while each runs.
fn load(cluster: &Cluster, project: &Project, split: &Split, users: u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "\n2. under load: {RATE} req/s, half reads, half updates, {CONNECTIONS} connections, {} ms timeout",
        TIMEOUT.as_millis()
    );
    let db = cluster.copy("base", "load_naive");
    cluster.sql(
        &db,
        "ALTER TABLE users ADD COLUMN first_name text, ADD COLUMN last_name text",
    );
    let naive_load = rt.block_on(under_load(cluster, &db, users, || {
        let url = cluster.url(&db);
        let sql = split.update_all.clone();
        async move {
            let mut c = PgConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(&sql).execute(&mut c).await.unwrap();
        }
    }));
    naive_load.print("single UPDATE");
    cluster.drop_db(&db);
    // The application alone, for reference.
    let db = cluster.copy("base", "load_idle");
    let idle = rt.block_on(under_load(cluster, &db, users, || async {
        tokio::time::sleep(Duration::from_secs(10)).await
    }));
    idle.print("no migration");
    cluster.drop_db(&db);
    let mut keel_default = Load::default();
    for (delay, label) in [(0, "keel 1000/0ms"), (100, "keel 1000/100ms")] {
        let db = cluster.copy("base", &format!("load_keel_{delay}"));
        let load = rt.block_on(under_load(cluster, &db, users, || {
            let (project, cluster, db) = (project.clone(), cluster.clone(), db.clone());
            async move {
                tokio::task::spawn_blocking(move || project.backfill(&cluster, &db, delay))
                    .await
                    .unwrap();
            }
        }));
        load.print(label);
        cluster.drop_db(&db);
        keel_default = load;
    }
    println!(
        "   goal for keel with its default delay: 0 dropped, 0 late, write p99 <= 8 ms: {}",
        if keel_default.dropped == 0 && keel_default.late == 0 && keel_default.write_p99 <= 8.0 {
            "met"
        } else {
            "NOT met"
        }
    );
}

/// Part 5: part 2's load during keel's default backfill, with a
/// streaming replica attached; its lag sampled every 100 ms.
fn replica(cluster: &Cluster, project: &Project, users: u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "\n5. with a streaming replica: {RATE} req/s as in 2, keel's default backfill (1000 rows, 100 ms apart, max_replica_lag 5 s)"
    );
    let replica = cluster.inner.replica("bench_replica");
    let db = cluster.copy("base", "load_replica");
    let url = cluster.url(&db);
    // Streaming and caught up before the timing starts.
    rt.block_on(async {
        let mut c = PgConnection::connect(&url).await.unwrap();
        for i in 0..600 {
            if i == 599 {
                panic!(
                    "the replica is not streaming after 60 s:\n{}",
                    std::fs::read_to_string(replica.dir.join("server.log")).unwrap_or_default()
                );
            }
            let behind: Option<i64> = sqlx::query_scalar(
                "SELECT max((pg_current_wal_lsn() - replay_lsn)::bigint) FROM pg_stat_replication WHERE state = 'streaming'",
            )
            .fetch_one(&mut c)
            .await
            .unwrap();
            if behind == Some(0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (url, stop) = (url.clone(), stop.clone());
        rt.spawn(async move {
            // (seconds behind by the WAL positions seen, bytes behind)
            let mut c = PgConnection::connect(&url).await.unwrap();
            let mut seen: Vec<(Instant, i64)> = Vec::new();
            let (mut worst, mut worst_bytes) = (Duration::ZERO, 0i64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (wal, replayed): (i64, Option<i64>) = sqlx::query_as(
                    "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint, \
                     (SELECT min((replay_lsn - '0/0'::pg_lsn)::bigint) FROM pg_stat_replication)",
                )
                .fetch_one(&mut c)
                .await
                .unwrap();
                let now = Instant::now();
                seen.push((now, wal));
                let replayed = replayed.unwrap_or(0);
                if let Some((at, _)) = seen.iter().find(|(_, w)| *w > replayed) {
                    worst = worst.max(now - *at);
                }
                worst_bytes = worst_bytes.max(wal - replayed);
                seen.retain(|(_, w)| *w > replayed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (worst, worst_bytes)
        })
    };
    let pauses = Arc::new(std::sync::Mutex::new(Vec::new()));
    let load = rt.block_on(under_load(cluster, &db, users, || {
        let (project, cluster, db) = (project.clone(), cluster.clone(), db.clone());
        let pauses = pauses.clone();
        async move {
            let run = tokio::task::spawn_blocking(move || project.backfill(&cluster, &db, 100))
                .await
                .unwrap();
            *pauses.lock().unwrap() = run.pauses;
        }
    }));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (lag, bytes) = rt.block_on(sampler).unwrap();
    load.print("keel 1000/100ms");
    println!(
        "   replica lag: at most {:.2} s ({:.1} MB of WAL behind)",
        lag.as_secs_f64(),
        bytes as f64 / 1e6
    );
    for line in pauses.lock().unwrap().iter() {
        println!("   keel {line}");
    }
    println!(
        "   goal: 0 dropped and replica lag under 5 s: {}",
        if load.dropped == 0 && lag < Duration::from_secs(5) {
            "met"
        } else {
            "NOT met"
        }
    );
    cluster.drop_db(&db);
    replica.stop();
}

/// 3. keel's peak RSS at a tenth of the rows and at all of them.
fn memory(cluster: &Cluster, project: &Project, users: u64) {
    println!("\n3. keel's peak memory (RSS)");
    let small = cluster.copy("base", "small");
    cluster.sql(
        &small,
        &format!("DELETE FROM users WHERE id > {}; VACUUM users", users / 10),
    );
    let small_run = project.backfill(cluster, &small, 0);
    let large_run = project.backfill(cluster, &cluster.copy("base", "large"), 0);
    println!(
        "   {:>8} rows: {:>6} KiB\n   {:>8} rows: {:>6} KiB",
        users / 10,
        small_run.peak_rss_kib,
        users,
        large_run.peak_rss_kib
    );
}

/// The sample migration's expressions, as one UPDATE of every row.
struct Split {
    update_all: String,
}

fn split_expressions() -> Split {
    let text =
        std::fs::read_to_string(repo().join("migrations").join(SPLIT).join("migration.toml"))
            .unwrap();
    let toml: toml::Value = toml::from_str(&text).unwrap();
    let set = toml["backfill"]["set"].as_table().unwrap();
    let sets: Vec<String> = set
        .iter()
        .map(|(c, e)| format!("{c} = ({})", e.as_str().unwrap()))
        .collect();
    Split {
        update_all: format!("UPDATE users SET {}", sets.join(", ")),
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A keel project: the sample's tables and the name split, whose backfill runs
/// with batches of 1000 and the delay given.
#[derive(Clone)]
struct Project {
    dir: Arc<tempfile::TempDir>,
    cluster_url: Arc<dyn Fn(&str) -> String + Send + Sync>,
}

struct Run {
    backfill: Duration,
    peak_rss_kib: u64,
    /// The report's `paused …` line, if the backfill paused.
    pauses: Vec<String>,
}

impl Project {
    fn new(cluster: &Cluster) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("keel-bench-")
            .tempdir()
            .unwrap();
        let src = repo().join("migrations");
        for entry in std::fs::read_dir(&src).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            // The sample's tables, then the split; not the profiles
            // migration, whose INSERT … SELECT would run in the measurements.
            if name.as_str() <= "20260101090200_create_comments" || name == SPLIT {
                let to = dir.path().join("migrations").join(&name);
                std::fs::create_dir_all(&to).unwrap();
                for f in std::fs::read_dir(entry.path()).unwrap() {
                    let f = f.unwrap();
                    std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
                }
            }
        }
        let c = cluster.clone();
        Project {
            dir: Arc::new(dir),
            cluster_url: Arc::new(move |db| c.url(db)),
        }
    }

    fn keel(&self, args: &[&str], db: &str) {
        let out = Command::new(keel_bin())
            .args(args)
            .current_dir(self.dir.path())
            .env("DATABASE_URL", (self.cluster_url)(db))
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "keel {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `keel up` of the name split with batches of 1000 and `delay_ms`;
    /// the backfill's own time comes from keel_backfills (started_at to
    /// finished_at), so the schema change and the validation are not in it.
    fn backfill(&self, cluster: &Cluster, db: &str, delay_ms: u64) -> Run {
        let toml = self
            .dir
            .path()
            .join("migrations")
            .join(SPLIT)
            .join("migration.toml");
        let text = std::fs::read_to_string(&toml).unwrap();
        let text = text
            .lines()
            .map(|l| {
                if l.starts_with("delay_ms") {
                    format!("delay_ms = {delay_ms}")
                } else if l.starts_with("batch_size") {
                    "batch_size = 1000".to_string()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&toml, text).unwrap();
        let mut child = Command::new(keel_bin())
            .args(["up"])
            .current_dir(self.dir.path())
            .env("DATABASE_URL", cluster.url(db))
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read as it comes, so that a full pipe never holds keel up.
        let mut stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
            err
        });
        let status_path = format!("/proc/{}/status", child.id());
        let mut peak = 0;
        let status = loop {
            if let Ok(s) = std::fs::read_to_string(&status_path)
                && let Some(kib) = s
                    .lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
            {
                peak = peak.max(kib);
            }
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let err = reader.join().unwrap();
        assert!(status.success(), "keel up: {err}");
        let ms: f64 = cluster
            .query(
                db,
                "SELECT extract(epoch FROM finished_at::timestamptz - started_at::timestamptz) * 1000 FROM keel_backfills",
            )
            .parse()
            .unwrap();
        Run {
            backfill: Duration::from_secs_f64(ms / 1000.0),
            peak_rss_kib: peak,
            pauses: err
                .lines()
                .filter(|l| l.trim_start().starts_with("paused "))
                .map(|l| l.trim().to_string())
                .collect(),
        }
    }
}

#[derive(Default)]
struct Load {
    requests: u64,
    dropped: u64,
    late: u64,
    reads: Vec<f64>,
    writes: Vec<f64>,
    write_p50: f64,
    write_p99: f64,
    write_max: f64,
    read_p99: f64,
    migration: Duration,
}

impl Load {
    fn print(&self, what: &str) {
        println!(
            "   {what:<16} ran {:>6.1} s: {:>5} requests, {:>5} dropped ({:>4.1}%), {:>4} late; writes p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; reads p99 {:.1} ms",
            self.migration.as_secs_f64(),
            self.requests,
            self.dropped,
            self.dropped as f64 * 100.0 / self.requests.max(1) as f64,
            self.late,
            self.write_p50,
            self.write_p99,
            self.write_max,
            self.read_p99,
        );
    }
}

enum Outcome {
    Done { write: bool, ms: f64 },
    Dropped,
}

/// Runs the application load for the whole time `work` takes (from 1 s
/// before it to 1 s after) and counts what happened to the requests.
async fn under_load<F, Fut>(cluster: &Cluster, db: &str, users: u64, work: F) -> Load
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let url = cluster.url(db);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, u64, bool)>();
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let (out_tx, mut out_rx) = tokio::sync::mpsc::unbounded_channel::<Outcome>();
    let mut workers = Vec::new();
    for _ in 0..CONNECTIONS {
        let (rx, out, url) = (rx.clone(), out_tx.clone(), url.clone());
        workers.push(async move {
            let mut c = PgConnection::connect(&url).await.unwrap();
            sqlx::raw_sql("SET statement_timeout = 100")
                .execute(&mut c)
                .await
                .unwrap();
            loop {
                let job = rx.lock().await.recv().await;
                let Some((due, id, write)) = job else { break };
                if due.elapsed() >= TIMEOUT {
                    // Waited for a free connection past the timeout.
                    let _ = out.send(Outcome::Dropped);
                    continue;
                }
                let result = if write {
                    sqlx::query("UPDATE users SET created_at = now() WHERE id = $1")
                        .bind(id as i64)
                        .execute(&mut c)
                        .await
                        .map(|_| ())
                } else {
                    sqlx::query("SELECT id, email, name FROM users WHERE id = $1")
                        .bind(id as i64)
                        .fetch_optional(&mut c)
                        .await
                        .map(|_| ())
                };
                let _ = out.send(match result {
                    Ok(()) => Outcome::Done {
                        write,
                        ms: due.elapsed().as_secs_f64() * 1000.0,
                    },
                    Err(_) => Outcome::Dropped,
                });
            }
        });
    }
    drop(out_tx);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let generator = {
        let stop = stop.clone();
        async move {
            let every = Duration::from_micros(1_000_000 / RATE);
            let start = Instant::now();
            let mut n: u64 = 0;
            let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let due = start + every * n as u32;
                tokio::time::sleep_until(due.into()).await;
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let _ = tx.send((due, 1 + seed % users, n % 2 == 1));
                n += 1;
            }
        }
    };
    let timed = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t = Instant::now();
        work().await;
        let migration = t.elapsed();
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        migration
    };
    // One task: the workers, the generator and the migration run
    // concurrently on it (200 requests/s need no more).
    let (_, _, migration) = tokio::join!(futures_util::future::join_all(workers), generator, timed);
    let mut load = Load {
        migration,
        ..Load::default()
    };
    while let Some(o) = out_rx.recv().await {
        load.requests += 1;
        match o {
            Outcome::Dropped => load.dropped += 1,
            Outcome::Done { write, ms } => {
                if ms > TIMEOUT.as_secs_f64() * 1000.0 {
                    load.late += 1;
                }
                if write {
                    load.writes.push(ms)
                } else {
                    load.reads.push(ms)
                }
            }
        }
    }
    load.writes.sort_by(f64::total_cmp);
    load.reads.sort_by(f64::total_cmp);
    load.write_p50 = percentile(&load.writes, 0.50);
    load.write_p99 = percentile(&load.writes, 0.99);
    load.write_max = load.writes.last().copied().unwrap_or(0.0);
    load.read_p99 = percentile(&load.reads, 0.99);
    load
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The benchmark's PostgreSQL: the shared throwaway cluster with fsync on
/// (the server's defaults; WAL sized like a production server's so that a
/// 1M-row rewrite does not force checkpoints every few seconds), and `psql`
/// for setup. Cloned into the threads that run keel under load.
#[derive(Clone)]
struct Cluster {
    inner: Arc<cluster::Cluster>,
}

impl Cluster {
    fn start() -> Cluster {
        let inner = cluster::start_with(
            cluster::Durability::Default,
            &[
                "max_connections=100",
                "shared_buffers=512MB",
                "max_wal_size=8GB",
                "checkpoint_timeout=30min",
            ],
        );
        let c = Cluster {
            inner: Arc::new(inner),
        };
        c.sql("postgres", "CREATE DATABASE base");
        c
    }

    fn url(&self, db: &str) -> String {
        self.inner.url(db)
    }

    fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(cluster::bindir().join("psql"))
            .args([
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
                "-d",
            ])
            .arg(self.url(db))
            .output()
            .unwrap();
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
        let log = std::fs::read_to_string(self.inner.dir.join("server.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        Err(format!(
            "{sql}: {}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ))
    }

    fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql).unwrap_or_else(|e| panic!("{e}"))
    }

    fn sql(&self, db: &str, sql: &str) {
        for statement in sql.split(';').filter(|s| !s.trim().is_empty()) {
            self.psql(db, statement);
        }
    }

    fn query(&self, db: &str, sql: &str) -> String {
        self.psql(db, sql)
    }

    /// A copy of `from` (CREATE DATABASE … TEMPLATE), checkpointed so that
    /// each run starts from the same state.
    fn copy(&self, from: &str, to: &str) -> String {
        self.sql("postgres", &format!("DROP DATABASE IF EXISTS {to}"));
        self.sql("postgres", &format!("CREATE DATABASE {to} TEMPLATE {from}"));
        // A checkpoint so each run starts with clean buffers; best effort.
        if self.try_psql(to, "CHECKPOINT").is_err() {
            std::thread::sleep(Duration::from_secs(2));
            let _ = self.try_psql(to, "CHECKPOINT");
        }
        to.to_string()
    }

    fn drop_db(&self, db: &str) {
        let _ = self.try_psql("postgres", &format!("DROP DATABASE IF EXISTS {db}"));
    }
}
