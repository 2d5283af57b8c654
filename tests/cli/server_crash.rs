//! The server crashes in the middle of `keel up`: every migration keel
//! printed as applied is still applied afterwards, the tracking table
//! matches the schema, and the error is about the connection, not the SQL.
//!
//! It needs a server of its own with fsync on (the shared test cluster
//! serves every test in parallel and runs with fsync off), stopped with
//! `pg_ctl stop -m immediate` at a random point and started again.
//! `KEEL_FAULT_TRIALS=N` runs N crashes (default 3).

use crate::common::cluster::{self, Durability};
use crate::common::{Db, Project};
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

const MIGRATIONS: usize = 200;

/// xorshift64: enough randomness for where to crash, from a printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn version(i: usize) -> String {
    format!("20240101{:02}{:02}{:02}", i / 3600, i / 60 % 60, i % 60)
}

/// The migrations keel printed as applied, by version.
fn printed_applied(stderr: &str) -> BTreeSet<String> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("applied  "))
        .filter_map(|rest| rest.get(..14))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_server_crash_loses_nothing_keel_reported_applied() {
    let trials: usize = std::env::var("KEEL_FAULT_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = Rng(seed);
    let server = cluster::start(Durability::Default);
    let mut interrupted = 0;
    for trial in 0..trials {
        let db = format!("crash_{trial}");
        let project = Project {
            dir: tempfile::Builder::new()
                .prefix("keel-test-")
                .tempdir()
                .unwrap(),
            url: server.url(&db),
            db: Db::Postgres,
        };
        let admin = Project {
            dir: tempfile::tempdir().unwrap(),
            url: server.url("postgres"),
            db: Db::Postgres,
        };
        admin.exec(&format!("CREATE DATABASE {db}"));
        for i in 1..=MIGRATIONS {
            project.migration(
                &format!("{}_create_t_{i}", version(i)),
                &format!(
                    "CREATE TABLE t_{i} (id bigint PRIMARY KEY);\nINSERT INTO t_{i} VALUES (1);\n"
                ),
                Some(&format!("DROP TABLE t_{i};\n")),
                None,
            );
        }

        let run = project.spawn_keel(&["up"]);
        // At a random moment in the run: after keel reported a random
        // number of migrations (at most half), and a little more.
        let reported = 1 + rng.below(MIGRATIONS as u64 / 2) as usize;
        crate::common::process::wait_until(
            "keel to report migrations applied",
            Duration::from_secs(60),
            || run.stderr().matches("applied  ").count() >= reported,
        );
        let delay = Duration::from_millis(rng.below(100));
        std::thread::sleep(delay);
        server.crash();
        let out = run.finish();
        server.restart();

        let context = format!(
            "trial {trial} (seed {seed}, crash {delay:?} after {reported} reported):\n{}",
            out.stderr
        );
        let printed = printed_applied(&out.stderr);
        let tracked: BTreeSet<String> = project
            .rows("SELECT version FROM keel_migrations WHERE state = 'applied'")
            .into_iter()
            .filter_map(|r| r[0].clone())
            .collect();
        let lost: Vec<&String> = printed.difference(&tracked).collect();
        assert!(
            lost.is_empty(),
            "printed as applied, pending after the crash: {lost:?}\n{context}"
        );
        // The schema is what the tracking table says: each migration's
        // table exists exactly when it is recorded applied.
        let tables: BTreeSet<String> = project
            .rows("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 't\\_%'")
            .into_iter()
            .filter_map(|r| r[0].clone())
            .collect();
        for i in 1..=MIGRATIONS {
            assert_eq!(
                tables.contains(&format!("t_{i}")),
                tracked.contains(&version(i)),
                "t_{i} and its tracking row disagree\n{context}"
            );
        }
        if out.status.success() {
            // keel finished before the crash: everything was durable.
            assert_eq!(tracked.len(), MIGRATIONS, "{context}");
            continue;
        }
        interrupted += 1;
        assert_eq!(out.status.code(), Some(1), "{context}");
        for expected in [
            "lost the connection to the database while applying ",
            "applied by this run and on disk: ",
            "fix: this is not a problem with the SQL; once the server is back, `keel status` shows what is applied; then run `keel up` again",
        ] {
            assert!(
                out.stderr.contains(expected),
                "missing {expected:?}\n{context}"
            );
        }
        assert!(!out.stderr.contains("correct the SQL"), "{context}");
        assert!(!out.stderr.contains("stay applied"), "{context}");

        // And a new run applies the rest.
        let again = project.keel().args(["up", "-q"]).output().unwrap();
        assert!(
            again.status.success(),
            "{}",
            String::from_utf8_lossy(&again.stderr)
        );
        assert_eq!(
            project
                .scalar("SELECT count(*) FROM keel_migrations")
                .as_deref(),
            Some(MIGRATIONS.to_string().as_str())
        );
    }
    eprintln!(
        "server crash: {interrupted} of {trials} trials stopped the server mid-run (seed {seed})"
    );
    assert!(
        interrupted > 0,
        "no trial stopped the server before keel finished (seed {seed})"
    );
}
