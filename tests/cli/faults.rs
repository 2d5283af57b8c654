//! Fault injection: keel is killed (SIGKILL), terminated (SIGTERM), hung up
//! on (SIGHUP) or its server stopped, at random points of `up`, `down`
//! (transactional and not), `execute` and `backfill`. After each fault the
//! operator does what keel's messages say (resume, resolve, finish the
//! stopped execute), and then:
//!
//! - the tracking table matches the schema: every applied migration's
//!   change is there, no pending one's is;
//! - no data is lost: whenever the migrations that destroy data are not
//!   applied, the destroyed column and the deleted rows are back, value for
//!   value (md5 of every row);
//! - every migration keel said was applied is applied (after a server
//!   crash too);
//! - every execution record verifies, its chain intact.
//!
//! It looks once `keel status` no longer says a run holds the run lock: a
//! killed keel's server session may still be committing its last
//! transaction, and a look before that ends can see the tracking row
//! before the commit and the schema after it.
//!
//! `cargo test` runs 50 faults on a cluster of its own (so that stopping
//! it disturbs no other test). `KEEL_FAULT_TRIALS=N` runs more;
//! `KEEL_FAULT_SEED=S` replays a run (the seed is printed when one fails).

use crate::common::cluster::{self, Cluster, Durability};
use crate::common::{Db, Project, stderr, stdout};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROWS: i64 = 20_000;
const M1: &str = "20260102000000"; // drop items.a (one transaction)
const M2: &str = "20260103000000"; // index on b, concurrently (transaction = false)
const M3: &str = "20260104000000"; // add c, backfilled in batches
const M4: &str = "20260105000000"; // delete every 7th row (one transaction)
const MIGRATIONS: [&str; 4] = [M1, M2, M3, M4];

/// A small xorshift: reproducible from its seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Up,
    Down(u64),
    Execute,
    Backfill,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Kill,
    Term,
    Hangup,
    ServerStop,
}

/// What the data looked like before any migration destroyed some of it.
struct Original {
    a: String,
    b: String,
}

fn setup(cluster: &Cluster) -> Project {
    let dir = tempfile::Builder::new()
        .prefix("keel-faults-")
        .tempdir()
        .unwrap();
    let admin = cluster.url("postgres");
    crate::common::block_on(async move {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::raw_sql("CREATE DATABASE faults")
            .execute(&mut c)
            .await
            .unwrap();
    });
    let p = Project {
        dir,
        url: cluster.url("faults"),
        db: Db::Postgres,
    };
    p.migration(
        "20260101000000_items",
        "CREATE TABLE items (id bigint PRIMARY KEY, a text, b text NOT NULL);\n",
        Some("DROP TABLE items;\n"),
        None,
    );
    p.migration(
        &format!("{M1}_drop_a"),
        "ALTER TABLE items DROP COLUMN a;\n",
        Some("ALTER TABLE items ADD COLUMN a text;\n"),
        Some("reversibility = \"partial\"\n"),
    );
    p.migration(
        &format!("{M2}_index_b"),
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS items_b_idx ON items (b);\n",
        Some("DROP INDEX CONCURRENTLY IF EXISTS items_b_idx;\n"),
        Some("transaction = false\n"),
    );
    p.migration(
        &format!("{M3}_add_c"),
        "ALTER TABLE items ADD COLUMN c text;\n",
        Some("ALTER TABLE items DROP COLUMN c;\n"),
        Some(
            "[backfill]\ntable = \"items\"\nkey = \"id\"\nset = { c = \"upper(b)\" }\n\
             where = \"c IS NULL\"\nbatch_size = 500\ndelay_ms = 20\n",
        ),
    );
    p.migration(
        &format!("{M4}_purge"),
        "DELETE FROM items WHERE id % 7 = 0;\n",
        Some("-- the deleted rows come back from keel's backup\nSELECT 1;\n"),
        Some("reversibility = \"partial\"\n"),
    );
    let key = crate::execute::keygen(&p);
    std::fs::write(
        p.path().join("keel.toml"),
        format!(
            "signer = \"{}\"\nsigning_key = \"{}\"\nallowed_signers = \"allowed_signers\"\n\n\
             [environments.prod]\ndatabase_url_env = \"DATABASE_URL\"\nconfirm = \"auto\"\n",
            crate::execute::SIGNER,
            key.display()
        ),
    )
    .unwrap();
    p.keel()
        .args(["up", "--to", "20260101000000", "-q"])
        .assert()
        .success();
    p.exec(&format!(
        "INSERT INTO items SELECT i, md5(i::text), 'b' || i FROM generate_series(1, {ROWS}) i"
    ));
    for v in MIGRATIONS {
        p.keel().args(["runbook", v]).assert().success();
    }
    p
}

fn md5(p: &Project, column: &str) -> String {
    p.scalar(&format!(
        "SELECT md5(string_agg(id || ':' || coalesce({column}, 'NULL'), ',' ORDER BY id)) FROM items"
    ))
    .unwrap()
}

/// The run that holds the run lock, as `keel status --format json` says
/// (null: none).
fn running(p: &Project) -> serde_json::Value {
    p.status_json(&["--env", "prod"])["running"].clone()
}

/// `keel status --format json`: each migration's state, and the versions
/// whose execute was stopped before its final record.
fn status(p: &Project) -> (Vec<(String, String)>, Vec<String>) {
    let json = p.status_json(&["--env", "prod"]);
    let states = json["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["version"].as_str().unwrap().to_string(),
                m["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let interrupted = json["interrupted"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| {
                    r["migration"]
                        .as_str()
                        .and_then(|m| m.get(..14))
                        .map(String::from)
                })
                .collect()
        })
        .unwrap_or_default();
    (states, interrupted)
}

fn state<'a>(states: &'a [(String, String)], v: &str) -> &'a str {
    states
        .iter()
        .find(|(version, _)| version == v)
        .map(|(_, s)| s.as_str())
        .unwrap_or("missing")
}

/// The operation to try next, by what the database allows: as many
/// executes as ups and downs, backfills while one is unfinished.
fn pick(rng: &mut Rng, states: &[(String, String)]) -> Op {
    let backfilling = state(states, M3) == "backfilling";
    if backfilling && rng.below(3) == 0 {
        return Op::Backfill;
    }
    let applied = MIGRATIONS
        .iter()
        .filter(|v| matches!(state(states, v), "applied" | "backfilling"))
        .count() as u64;
    let down = Op::Down(1 + rng.below(applied.clamp(1, 3)));
    // execute runs the next migration, and not past an unfinished backfill.
    let forward = if backfilling || rng.below(3) == 0 {
        Op::Up
    } else {
        Op::Execute
    };
    match (applied, rng.below(5)) {
        (4, _) => down,
        (0, _) => forward,
        (_, 0..=1) => down,
        _ => forward,
    }
}

fn args(op: Op, states: &[(String, String)]) -> Vec<String> {
    match op {
        Op::Up => vec!["up".into()],
        Op::Down(n) => vec!["down".into(), "--steps".into(), n.to_string()],
        Op::Backfill => vec!["backfill".into(), M3.into()],
        Op::Execute => {
            let next = MIGRATIONS
                .iter()
                .find(|v| state(states, v) == "pending")
                .expect("pick chooses execute only with one pending");
            ["execute", next, "--env", "prod", "--yes"]
                .map(String::from)
                .to_vec()
        }
    }
}

/// Runs `op`, faults it after `delay`, and returns whether it was still
/// running then, and what keel printed.
fn run_with_fault(
    p: &Project,
    cluster: &Cluster,
    op: &[String],
    fault: Fault,
    delay: Duration,
) -> Outcome {
    let log = p.path().join("fault.log");
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("keel"))
        .current_dir(p.path())
        .args(op)
        .env("DATABASE_URL", &p.url)
        .env("NO_COLOR", "1")
        .env("USER", "tester")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while started.elapsed() < delay {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let running = child.try_wait().unwrap().is_none();
    let took = started.elapsed();
    let pid = child.id() as i32;
    match fault {
        Fault::Kill => unsafe {
            libc::kill(pid, libc::SIGKILL);
        },
        Fault::Term => unsafe {
            libc::kill(pid, libc::SIGTERM);
        },
        Fault::Hangup => unsafe {
            libc::kill(pid, libc::SIGHUP);
        },
        Fault::ServerStop => cluster.crash(),
    }
    // A run that caught the signal finishes what it started; one that lost
    // its server gives up on its own.
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "keel did not end after {fault:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    if fault == Fault::ServerStop {
        cluster.restart();
    }
    Outcome {
        running,
        took,
        said: std::fs::read_to_string(&log).unwrap_or_default(),
    }
}

/// How a faulted run went.
struct Outcome {
    /// keel was still running when the fault came.
    running: bool,
    /// When the fault came, or when keel had ended if it was quicker.
    took: Duration,
    /// What it printed.
    said: String,
}

/// What an operator does after a fault, as keel's messages say: resolve a
/// half-done `transaction = false` migration by what is really there, and
/// finish a stopped execute.
fn recover(p: &Project) {
    // As `keel status` tells an operator: until the killed keel's server
    // session has ended, its last COMMIT may still land.
    crate::common::process::wait_until(
        "the stopped run's session to end",
        Duration::from_secs(60),
        || running(p).is_null(),
    );
    let (states, interrupted) = status(p);
    if state(&states, M2) == "failed" {
        let valid = p.scalar(
            "SELECT count(*) FROM pg_index WHERE indexrelid = to_regclass('items_b_idx') AND indisvalid",
        );
        let to = if valid.as_deref() == Some("1") {
            "--applied"
        } else {
            p.exec("DROP INDEX IF EXISTS items_b_idx");
            "--reverted"
        };
        let out = p.keel().args(["resolve", M2, to]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let (states, _) = status(p);
    for (v, s) in &states {
        assert!(s != "failed", "{v} is failed after recovery: {states:?}");
    }
    for v in interrupted {
        let out = p
            .keel()
            .args(["execute", &v, "--env", "prod", "--yes"])
            .output()
            .unwrap();
        // Finished (0), rolled back by a failed check (5), or the stopped
        // run had never committed and runs afresh now.
        assert!(
            matches!(out.status.code(), Some(0 | 5)),
            "finishing the stopped execute of {v}: {}",
            stderr(&out)
        );
    }
}

/// The checks after every fault (see the module docs).
fn check(p: &Project, original: &Original, said: &str, what: &str) {
    let (states, interrupted) = status(p);
    assert!(interrupted.is_empty(), "{what}: {interrupted:?}");
    let applied = |v: &str| matches!(state(&states, v), "applied" | "backfilling");
    let has_column = |c: &str| {
        p.scalar(&format!(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = '{c}' AND NOT attisdropped"
        ))
        .as_deref()
            == Some("1")
    };
    let index = p.scalar(
        "SELECT indisvalid::text FROM pg_index WHERE indexrelid = to_regclass('items_b_idx')",
    );
    let purged = p
        .scalar("SELECT count(*) FROM items WHERE id % 7 = 0")
        .as_deref()
        == Some("0");
    assert_eq!(
        applied(M1),
        !has_column("a"),
        "{what}: M1 vs column a: {states:?}"
    );
    assert_eq!(
        applied(M2),
        index.as_deref() == Some("true"),
        "{what}: M2 vs the index ({index:?}): {states:?}"
    );
    assert_eq!(
        applied(M3),
        has_column("c"),
        "{what}: M3 vs column c: {states:?}"
    );
    assert_eq!(
        applied(M4),
        purged,
        "{what}: M4 vs the deleted rows: {states:?}"
    );
    if state(&states, M3) == "applied" {
        assert_eq!(
            p.scalar("SELECT count(*) FROM items WHERE c IS DISTINCT FROM upper(b)")
                .as_deref(),
            Some("0"),
            "{what}: every row backfilled"
        );
    }
    // No data lost: what a pending migration destroys is all there.
    if !applied(M4) {
        assert_eq!(
            p.scalar("SELECT count(*) FROM items").as_deref(),
            Some(ROWS.to_string().as_str()),
            "{what}: every deleted row is back"
        );
        assert_eq!(md5(p, "b"), original.b, "{what}: rows exactly as before");
    }
    if !applied(M1) {
        assert_eq!(
            md5(p, "a"),
            original.a,
            "{what}: column a exactly as before"
        );
    }
    // Only what is durable was said: every migration keel printed as
    // applied still is (unless the same run went on to revert it).
    for line in said.lines() {
        if let Some(rest) = line.strip_prefix("applied  ") {
            let v = &rest[..14];
            if !said.contains(&format!("reverted {v}")) && !said.contains("rolled back") {
                assert!(
                    applied(v),
                    "{what}: keel said `{line}` but {v} is {states:?}"
                );
            }
        }
    }
    // Every record verifies, its chain intact, against the database.
    if p.path().join("records").exists() {
        let out = p
            .keel()
            .args(["record", "verify", "--all", "--env", "prod"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{what}: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
}

#[test]
fn faults_at_random_points_lose_nothing_and_leave_the_truth() {
    let trials: u64 = std::env::var("KEEL_FAULT_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let seed: u64 = std::env::var("KEEL_FAULT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    let mut rng = Rng(seed);
    let cluster = cluster::start(Durability::Off);
    let p = setup(&cluster);
    let original = Original {
        a: md5(&p, "a"),
        b: md5(&p, "b"),
    };
    let mut counts = std::collections::BTreeMap::new();
    let mut mid_run = 0;
    let mut typical: std::collections::HashMap<String, Duration> = Default::default();
    for trial in 1..=trials {
        let (states, _) = status(&p);
        let op = pick(&mut rng, &states);
        let fault = match rng.below(10) {
            0..=3 => Fault::Kill,
            4..=5 => Fault::Term,
            6..=7 => Fault::Hangup,
            _ => Fault::ServerStop,
        };
        let kind = match op {
            Op::Down(_) => "Down".to_string(),
            op => format!("{op:?}"),
        };
        // A point inside the operation: up to how long this kind of
        // operation has been seen to take (learnt as the trials go).
        let span = *typical
            .entry(kind.clone())
            .or_insert(Duration::from_millis(400));
        let delay = span.mul_f64(rng.below(1000) as f64 / 1000.0);
        let what = format!(
            "trial {trial} of {trials} (KEEL_FAULT_SEED={seed}): {op:?} with {fault:?} after {delay:?}"
        );
        let run = run_with_fault(&p, &cluster, &args(op, &states), fault, delay);
        let said = &run.said;
        recover(&p);
        check(&p, &original, said, &format!("{what}\nkeel said:\n{said}"));
        if !run.running {
            // It ended before the fault: aim earlier next time.
            let t = typical.get_mut(&kind).expect("inserted above");
            *t = (t.mul_f64(0.5) + run.took.mul_f64(0.5)).max(Duration::from_millis(20));
        }
        let entry = counts.entry(format!("{kind}/{fault:?}")).or_insert((0, 0));
        entry.0 += 1;
        if run.running {
            entry.1 += 1;
            mid_run += 1;
        }
        // A killed run often changes nothing, and the next fault would find
        // the same state: now and then move on without a fault, to a random
        // point of the history.
        if rng.below(3) == 0 {
            let to = ["20260101000000", M1, M2, M3, M4][rng.below(5) as usize];
            let (states, _) = status(&p);
            let above = MIGRATIONS
                .iter()
                .any(|v| *v > to && matches!(state(&states, v), "applied" | "backfilling"));
            let step = if above {
                p.keel().args(["down", "--to", to, "-q"]).output().unwrap()
            } else {
                p.keel().args(["up", "--to", to, "-q"]).output().unwrap()
            };
            assert!(
                step.status.success(),
                "{what}: moving to {to}: {}",
                stderr(&step)
            );
            check(&p, &original, "", &format!("{what}, then moved to {to}"));
        }
    }
    // (faults, of which while keel was still running) per operation and fault.
    eprintln!("fault trials (seed {seed}): {trials} faults, {mid_run} while keel ran: {counts:?}");
    assert!(
        mid_run * 2 >= trials,
        "only {mid_run} of {trials} faults hit a running keel: the delays are too long"
    );
}
