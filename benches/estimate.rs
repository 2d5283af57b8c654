//! The estimate benchmark: how close `keel plan`'s time estimates come to
//! the real thing. On a throwaway PostgreSQL cluster with the server's
//! default settings (fsync on), it runs `keel calibrate`, then for each
//! table size predicts and actually runs a validation scan (VALIDATE
//! CONSTRAINT and SET NOT NULL), an index build, a table rewrite (ALTER
//! COLUMN TYPE) and a backfill (UPDATE in 1000-row key batches), and prints
//! predicted/actual per kind. The goal is within 2× everywhere.
//!
//! `cargo bench --bench estimate` (sizes: KEEL_BENCH_ROWS=100000,1000000,10000000).
//! Not a timed test: it prints, and exits 1 only if a ratio is outside 2×.

#[path = "../tests/cli/common/cluster.rs"]
mod cluster;

use keel::analysis::estimate::{self, Size};
use keel::analysis::{LiveSchema, PgVersion, Schema, classify};
use keel::db::{Database, Value};
use std::sync::Arc;
use std::time::Instant;

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

struct Row {
    rows: u64,
    kind: &'static str,
    predicted_ms: f64,
    actual_ms: f64,
}

fn main() {
    let sizes: Vec<u64> = std::env::var("KEEL_BENCH_ROWS")
        .unwrap_or_else(|_| "100000,1000000,10000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let calibration_rows: u64 = std::env::var("KEEL_BENCH_CALIBRATION_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(keel::analysis::estimate::calibrate::DEFAULT_ROWS);
    eprintln!("starting a throwaway PostgreSQL cluster (default settings, fsync on)…");
    let server = cluster::start(cluster::Durability::Default);
    block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&server.url("postgres"))
            .await
            .expect("connect");
        sqlx::Executor::execute(&mut c, "CREATE DATABASE keel_estimate")
            .await
            .expect("CREATE DATABASE");
    });
    let url = server.url("keel_estimate");
    let results = block_on(run(&url, &sizes, calibration_rows));
    println!();
    println!("| rows | operation | predicted | actual | predicted/actual |");
    println!("|---:|---|---:|---:|---:|");
    let mut worst: f64 = 1.0;
    for r in &results {
        let ratio = r.predicted_ms / r.actual_ms;
        worst = worst.max(ratio.max(1.0 / ratio));
        println!(
            "| {} | {} | {:.0} ms | {:.0} ms | {:.2} |",
            r.rows, r.kind, r.predicted_ms, r.actual_ms, ratio
        );
    }
    println!();
    println!(
        "worst ratio: {worst:.2}× ({})",
        if worst <= 2.0 {
            "within 2×"
        } else {
            "OUTSIDE 2×"
        }
    );
    if worst > 2.0 {
        std::process::exit(1);
    }
}

async fn run(url: &str, sizes: &[u64], calibration_rows: u64) -> Vec<Row> {
    let mut db = keel::db::connect(url).await.expect("connect");
    let version = PgVersion::from_num(db.postgres_version().await.unwrap().unwrap());
    eprintln!("keel calibrate on {calibration_rows} rows…");
    let start = Instant::now();
    let report =
        keel::analysis::estimate::calibrate::calibrate(db.as_mut(), calibration_rows, &|step| {
            eprintln!("  {step}")
        })
        .await
        .expect("calibrate");
    eprintln!(
        "calibrated in {:.1} s: {:?}",
        start.elapsed().as_secs_f64(),
        report.calibration.coefficients
    );
    let mut out = Vec::new();
    for &n in sizes {
        out.extend(size(db.as_mut(), version, n).await);
    }
    out
}

async fn exec(db: &mut dyn Database, sql: &str) -> f64 {
    let start = Instant::now();
    db.execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    start.elapsed().as_secs_f64() * 1000.0
}

async fn live(db: &mut dyn Database) -> Arc<LiveSchema> {
    Arc::new(
        LiveSchema::load(db, &keel::db::Scope::All)
            .await
            .unwrap()
            .unwrap(),
    )
}

/// What keel plan would say for one statement.
fn predict(sql: &str, version: PgVersion, live: &Arc<LiveSchema>) -> f64 {
    let mut schema = Schema::with_live(Some(version), Some(live.clone()));
    let ops = classify(sql, &mut schema, true).ops;
    estimate::statement(&ops[0], live).ms
}

async fn size(db: &mut dyn Database, version: PgVersion, n: u64) -> Vec<Row> {
    eprintln!("\n{n} rows: loading…");
    exec(db, "DROP TABLE IF EXISTS bench").await;
    exec(
        db,
        "CREATE TABLE bench (id bigint PRIMARY KEY, a integer, b text, c timestamptz, d text)",
    )
    .await;
    // A different shape from the calibration table: wider text.
    db.execute_with(
        "INSERT INTO bench SELECT g, (random() * 2e9 - 1e9)::integer, \
         md5(g::text) || md5((g * 7)::text) || ' ' || (g % 991)::text, \
         timestamptz '2021-06-01' + g * interval '1 second', NULL \
         FROM generate_series(1, $1::bigint) g",
        &[Value::Int(n as i64)],
    )
    .await
    .unwrap();
    exec(db, "VACUUM ANALYZE bench").await;
    let mut rows = Vec::new();
    let mut record = |kind, predicted_ms, actual_ms| {
        eprintln!("  {kind}: predicted {predicted_ms:.0} ms, actual {actual_ms:.0} ms");
        rows.push(Row {
            rows: n,
            kind,
            predicted_ms,
            actual_ms,
        });
    };

    let l = live(db).await;
    exec(
        db,
        "ALTER TABLE bench ADD CONSTRAINT a_nn CHECK (a IS NOT NULL) NOT VALID",
    )
    .await;
    let sql = "ALTER TABLE bench VALIDATE CONSTRAINT a_nn";
    let p = predict(sql, version, &l);
    record(
        "validation scan (VALIDATE CONSTRAINT)",
        p,
        exec(db, sql).await,
    );
    exec(db, "ALTER TABLE bench DROP CONSTRAINT a_nn").await;

    let sql = "ALTER TABLE bench ALTER COLUMN c SET NOT NULL";
    let p = predict(sql, version, &l);
    record("validation scan (SET NOT NULL)", p, exec(db, sql).await);

    let sql = "CREATE INDEX bench_a_idx ON bench (a)";
    let p = predict(sql, version, &l);
    record("index build", p, exec(db, sql).await);

    // The rewrite rebuilds both indexes now: the model must know them.
    let l = live(db).await;
    let sql = "ALTER TABLE bench ALTER COLUMN a TYPE bigint";
    let p = predict(sql, version, &l);
    record("table rewrite (ALTER COLUMN TYPE)", p, exec(db, sql).await);

    exec(db, "VACUUM ANALYZE bench").await;
    let l = live(db).await;
    let t = l.table("bench").unwrap();
    let p = l
        .calibration
        .coefficients
        .update_ms(Size::from(t), t.rows, Some(1_000), 0);
    let start = Instant::now();
    let mut from = 0i64;
    while from < n as i64 {
        db.execute_with(
            "UPDATE bench SET d = b WHERE id > $1 AND id <= $2",
            &[Value::Int(from), Value::Int(from + 1_000)],
        )
        .await
        .unwrap();
        from += 1_000;
    }
    record(
        "backfill (UPDATE, 1000-row batches)",
        p,
        start.elapsed().as_secs_f64() * 1000.0,
    );
    exec(db, "DROP TABLE bench").await;
    rows
}
