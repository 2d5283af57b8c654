//! Backup and checksum throughput against the standard tools (not a timed
//! test: it prints figures and ratios).
//!
//! 1. `keel backup create` of a 1M-row column (and 10M) on PostgreSQL
//!    against `psql \copy` of the same rows plus `zip -1` of the CSV; max RSS
//!    of keel. The goal: ratio ≤ 1.0, RSS flat (≤ 64 MB at 10M rows).
//! 2. SHA-256 of a 1 GiB file with keel's hasher against
//!    `openssl dgst -sha256` (and `sha256sum` for reference). The goal: keel's
//!    throughput ≥ 0.9× openssl's.
//!
//! `cargo bench --bench backup`. `KEEL_BENCH_ROWS=1000000` limits the row
//! counts (comma separated; default 1000000,10000000); the PostgreSQL server
//! is the test harness's throwaway cluster, or `KEEL_TEST_DATABASE_URL`.

#[path = "../tests/cli/common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 3;

fn main() {
    let rows: Vec<u64> = std::env::var("KEEL_BENCH_ROWS")
        .unwrap_or_else(|_| "1000000,10000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let p = common::Project::postgres();
    std::fs::create_dir_all(p.path().join("migrations/20260101000000_bench")).unwrap();
    std::fs::write(
        p.path().join("migrations/20260101000000_bench/up.sql"),
        "ALTER TABLE big DROP COLUMN bio;\n",
    )
    .unwrap();
    std::fs::write(
        p.path().join("migrations/20260101000000_bench/down.sql"),
        "ALTER TABLE big ADD COLUMN bio text;\n",
    )
    .unwrap();
    p.exec("CREATE TABLE big (id bigint PRIMARY KEY, bio text)");
    let mut filled = 0u64;
    for n in rows {
        p.exec(&format!(
            "INSERT INTO big SELECT g, 'bio of user ' || g || ': ' || md5(g::text) \
             FROM generate_series({}, {n}) g",
            filled + 1
        ));
        p.exec("VACUUM ANALYZE big");
        filled = n;
        backup_vs_psql_and_zip(&p, n);
    }
    sha256_vs_openssl(p.path());
}

fn backup_vs_psql_and_zip(p: &common::Project, rows: u64) {
    let runs = if rows > 2_000_000 { 1 } else { RUNS };
    let csv = p.path().join("big.csv");
    let zip = p.path().join("big.zip");
    let mut keel = Duration::MAX;
    let mut rss_kb = 0u64;
    let mut psql = Duration::MAX;
    let mut zip_time = Duration::MAX;
    for _ in 0..runs {
        let (t, rss) = timed_rss(
            Command::new(env!("CARGO_BIN_EXE_keel"))
                .current_dir(p.path())
                .env("DATABASE_URL", &p.url)
                .args(["-q", "backup", "create", "20260101000000"])
                .args(["--table", "big", "--key", "id", "--columns", "bio"]),
        );
        keel = keel.min(t);
        rss_kb = rss_kb.max(rss.unwrap_or(0));
        let _ = std::fs::remove_file(&csv);
        let _ = std::fs::remove_file(&zip);
        psql = psql.min(
            timed_rss(
                Command::new("psql")
                    .arg(&p.url)
                    .args(["-q", "-v", "ON_ERROR_STOP=1", "-c"])
                    .arg(format!(
                        "\\copy (SELECT id, bio FROM big) TO '{}' WITH (FORMAT csv, HEADER)",
                        csv.display()
                    )),
            )
            .0,
        );
        zip_time = zip_time.min(
            timed_rss(
                Command::new("zip")
                    .args(["-1", "-q", "-j"])
                    .arg(&zip)
                    .arg(&csv),
            )
            .0,
        );
    }
    let csv_mb = std::fs::metadata(&csv).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    let base = psql + zip_time;
    println!(
        "backup {rows} rows ({csv_mb:.0} MB CSV): keel {:.3} s | psql \\copy {:.3} s + zip -1 {:.3} s = {:.3} s | ratio {:.2} (goal <= 1.00) | keel max RSS {:.1} MB",
        keel.as_secs_f64(),
        psql.as_secs_f64(),
        zip_time.as_secs_f64(),
        base.as_secs_f64(),
        keel.as_secs_f64() / base.as_secs_f64(),
        rss_kb as f64 / 1024.0
    );
    let _ = std::fs::remove_dir_all(p.path().join("backups"));
}

/// Wall time and max RSS (KiB, from GNU time when installed) of a command.
fn timed_rss(cmd: &mut Command) -> (Duration, Option<u64>) {
    let report = std::env::temp_dir().join(format!("keel-bench-time-{}", std::process::id()));
    let gnu_time = Path::new("/usr/bin/time").exists();
    let mut run = if gnu_time {
        let mut c = Command::new("/usr/bin/time");
        c.arg("-f").arg("%M").arg("-o").arg(&report);
        c.arg(cmd.get_program()).args(cmd.get_args());
        if let Some(dir) = cmd.get_current_dir() {
            c.current_dir(dir);
        }
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                c.env(k, v);
            }
        }
        c
    } else {
        std::mem::replace(cmd, Command::new("true"))
    };
    let start = Instant::now();
    let out = run.output().expect("run the benchmarked command");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        run,
        String::from_utf8_lossy(&out.stderr)
    );
    let rss = gnu_time
        .then(|| std::fs::read_to_string(&report).ok())
        .flatten()
        .and_then(|s| s.trim().lines().last()?.trim().parse().ok());
    (took, rss)
}

fn sha256_vs_openssl(dir: &Path) {
    const SIZE: usize = 1 << 30;
    let file = dir.join("one-gib.bin");
    // Incompressible-looking data (xorshift), written once.
    {
        use std::io::Write;
        let mut w =
            std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&file).unwrap());
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut block = vec![0u8; 1 << 20];
        for _ in 0..SIZE / block.len() {
            for chunk in block.chunks_exact_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.copy_from_slice(&x.to_le_bytes());
            }
            w.write_all(&block).unwrap();
        }
    }
    // Warm the page cache so that every tool reads from memory.
    let expected = keel::digest::sha256_file(&file).unwrap();
    let mut keel = Duration::MAX;
    for _ in 0..RUNS {
        let start = Instant::now();
        let got = keel::digest::sha256_file(&file).unwrap();
        keel = keel.min(start.elapsed());
        assert_eq!(got, expected);
    }
    let tool = |program: &str, args: &[&str]| {
        let mut best = Duration::MAX;
        for _ in 0..RUNS {
            let start = Instant::now();
            let out = Command::new(program).args(args).arg(&file).output();
            let took = start.elapsed();
            match out {
                Ok(o) if o.status.success() => {
                    assert!(String::from_utf8_lossy(&o.stdout).contains(&expected));
                    best = best.min(took);
                }
                _ => return None,
            }
        }
        Some(best)
    };
    let openssl = tool("openssl", &["dgst", "-sha256"]);
    let sha256sum = tool("sha256sum", &[]);
    let gibps = |d: Duration| SIZE as f64 / d.as_secs_f64() / (1u64 << 30) as f64;
    println!(
        "sha256 1 GiB: keel {:.3} s ({:.2} GiB/s){}{}",
        keel.as_secs_f64(),
        gibps(keel),
        openssl
            .map(|o| format!(
                " | openssl dgst {:.3} s ({:.2} GiB/s) | keel/openssl throughput {:.2} (goal >= 0.90)",
                o.as_secs_f64(),
                gibps(o),
                o.as_secs_f64() / keel.as_secs_f64()
            ))
            .unwrap_or_default(),
        sha256sum
            .map(|s| format!(" | sha256sum {:.3} s ({:.2} GiB/s)", s.as_secs_f64(), gibps(s)))
            .unwrap_or_default(),
    );
    let _ = std::fs::remove_file(&file);
}
