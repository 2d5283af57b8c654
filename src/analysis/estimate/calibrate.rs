//! `keel calibrate`: measures this server's cost of each kind of work the
//! estimates model — a catalog change, a validation scan, index builds, a
//! table rewrite, a batched backfill — on a scratch table in a scratch
//! schema that it drops afterwards, and stores the coefficients in the
//! `keel_calibration` table of the same database, where `keel plan`, `up
//! --dry-run` and `lint` find them for everyone who plans against it.

use super::{Calibration, Coefficients};
use crate::db::{Database, DbError, Value, quote_ident};
use serde::Serialize;
use std::time::Instant;

/// The scratch table's default size: big enough that fixed costs fade,
/// small enough to take a few seconds.
pub const DEFAULT_ROWS: u64 = 500_000;

/// Rows the backfill step updates (in batches of [`BATCH`]).
const BACKFILL_ROWS: u64 = 100_000;
const BATCH: u64 = 1_000;

/// One timed reference operation.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// The reference operation, in words.
    pub step: &'static str,
    /// How long it took, in milliseconds.
    pub ms: f64,
    /// The coefficient it gave, in words.
    pub gives: String,
}

/// What `keel calibrate` measured and the coefficients it derived.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The coefficients derived, ready to store.
    pub calibration: Calibration,
    /// Rows of the scratch table measured on.
    pub rows: u64,
    /// The scratch table's heap size in bytes.
    pub heap_bytes: i64,
    /// Each reference operation timed, in order.
    pub measurements: Vec<Measurement>,
}

/// Runs the reference operations and stores the coefficients. `progress`
/// hears each step before it starts.
pub async fn calibrate(
    db: &mut dyn Database,
    rows: u64,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Report, DbError> {
    let schema = format!("keel_calibrate_{}", std::process::id());
    db.execute(&format!(
        "DROP SCHEMA IF EXISTS {} CASCADE",
        quote_ident(&schema)
    ))
    .await?;
    db.execute(&format!("CREATE SCHEMA {}", quote_ident(&schema)))
        .await?;
    let result = measure(db, &schema, rows, progress).await;
    // Dropped whatever happened above, so no scratch data stays behind.
    let dropped = db
        .execute(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            quote_ident(&schema)
        ))
        .await;
    let report = result?;
    dropped?;
    db.save_calibration(&serde_json::to_string(&report.calibration).unwrap_or_default())
        .await?;
    Ok(report)
}

/// Updates ids in (from, to] in batches; returns the time and rows updated.
async fn backfill(
    db: &mut dyn Database,
    t: &str,
    from: u64,
    to: u64,
) -> Result<(f64, u64), DbError> {
    let batch = format!("UPDATE {t} SET d = b WHERE id > $1 AND id <= $2");
    let start = Instant::now();
    let mut updated = 0u64;
    let mut at = from;
    while at < to {
        let next = (at + BATCH).min(to);
        updated += db
            .execute_with(&batch, &[Value::Int(at as i64), Value::Int(next as i64)])
            .await?;
        at = next;
    }
    Ok((start.elapsed().as_secs_f64() * 1000.0, updated))
}

async fn timed(db: &mut dyn Database, sql: &str) -> Result<f64, DbError> {
    let start = Instant::now();
    db.execute(sql).await?;
    Ok(start.elapsed().as_secs_f64() * 1000.0)
}

async fn measure(
    db: &mut dyn Database,
    schema: &str,
    rows: u64,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Report, DbError> {
    let t = format!("{}.{}", quote_ident(schema), quote_ident("t"));
    progress(&format!("loading {rows} rows into {schema}.t"));
    db.execute(&format!(
        "CREATE TABLE {t} (id bigint PRIMARY KEY, a integer, b text, c timestamptz)"
    ))
    .await?;
    // Random keys (a) sort like real data; b is text of realistic width.
    db.execute_with(
        &format!(
            "INSERT INTO {t} SELECT g, (random() * 2e9 - 1e9)::integer, \
             md5(g::text) || ' ' || (g % 997)::text, \
             timestamptz '2020-01-01' + g * interval '1 second' \
             FROM generate_series(1, $1::bigint) g"
        ),
        &[Value::Int(rows as i64)],
    )
    .await?;
    // A long-lived table has its hint bits set and statistics current.
    db.execute(&format!("VACUUM ANALYZE {t}")).await?;
    let stats = db
        .table_stats(&crate::db::Scope::All)
        .await?
        .unwrap_or_default()
        .into_iter()
        .find(|s| s.schema == schema && s.name == "t")
        .ok_or_else(|| DbError::usage("the scratch table vanished during calibration"))?;
    let mut m = Measuring {
        db,
        schema,
        t,
        rows,
        bytes: stats.heap_bytes.max(1) as f64,
        n: rows.max(2) as f64,
        c: Coefficients::default(),
        out: Vec::new(),
    };
    progress("catalog change");
    m.catalog().await?;
    progress("validation scan");
    m.scan().await?;
    progress("index build");
    m.index_build().await?;
    progress("table rewrite");
    m.rewrite().await?;
    progress("backfill");
    m.backfill().await?;

    let version = m.db.postgres_version().await?;
    Ok(Report {
        calibration: Calibration {
            coefficients: m.c,
            measured_at: Some(chrono::Utc::now().to_rfc3339()),
            rows: Some(rows),
            server_version: version.map(|v| crate::analysis::PgVersion::from_num(v).to_string()),
        },
        rows,
        heap_bytes: stats.heap_bytes,
        measurements: m.out,
    })
}

/// The scratch table being measured, and the coefficients so far: each
/// step reads what the steps before it measured (the scan rate takes out
/// the catalog time, the index build the scan).
struct Measuring<'d> {
    db: &'d mut dyn Database,
    schema: &'d str,
    /// The scratch table, quoted.
    t: String,
    rows: u64,
    bytes: f64,
    n: f64,
    c: Coefficients,
    out: Vec<Measurement>,
}

impl Measuring<'_> {
    async fn catalog(&mut self) -> Result<(), DbError> {
        let t = &self.t;
        let mut adds = Vec::new();
        for _ in 0..5 {
            adds.push(timed(self.db, &format!("ALTER TABLE {t} ADD COLUMN x integer")).await?);
            self.db
                .execute(&format!("ALTER TABLE {t} DROP COLUMN x"))
                .await?;
        }
        adds.sort_by(f64::total_cmp);
        self.c.catalog_ms = adds[2];
        self.out.push(Measurement {
            step: "catalog change",
            ms: self.c.catalog_ms,
            gives: format!("{:.1} ms per statement", self.c.catalog_ms),
        });
        Ok(())
    }

    async fn scan(&mut self) -> Result<(), DbError> {
        let t = &self.t;
        self.db
            .execute(&format!(
                "ALTER TABLE {t} ADD CONSTRAINT a_nn CHECK (a IS NOT NULL) NOT VALID"
            ))
            .await?;
        let scan = timed(
            self.db,
            &format!("ALTER TABLE {t} VALIDATE CONSTRAINT a_nn"),
        )
        .await?;
        self.db
            .execute(&format!("ALTER TABLE {t} DROP CONSTRAINT a_nn"))
            .await?;
        self.c.scan_ns_per_byte =
            ((scan - self.c.catalog_ms).max(0.01) * 1e6 / self.bytes).max(0.05);
        self.out.push(Measurement {
            step: "validation scan",
            ms: scan,
            gives: format!("{:.2} ns per heap byte", self.c.scan_ns_per_byte),
        });
        Ok(())
    }

    async fn index_build(&mut self) -> Result<(), DbError> {
        let t = &self.t;
        let scan_part = self.c.scan_ms(super::Size {
            rows: self.n,
            heap_bytes: self.bytes,
            indexes: &[],
        });
        let int_index = timed(self.db, &format!("CREATE INDEX a_idx ON {t} (a)")).await?;
        let text_index = timed(self.db, &format!("CREATE INDEX b_idx ON {t} (b)")).await?;
        let schema = quote_ident(self.schema);
        self.db
            .execute(&format!(
                "DROP INDEX {schema}.a_idx; DROP INDEX {schema}.b_idx"
            ))
            .await?;
        // The build reads the heap too; what is left is the sort and the writes.
        let sort = |ms: f64| (ms - scan_part).max(ms * 0.2);
        self.c.index_ns_per_row_log = sort(int_index) * 1e6 / (self.n * self.n.log2());
        self.c.text_key_factor = (sort(text_index) / sort(int_index)).clamp(1.0, 10.0);
        self.out.push(Measurement {
            step: "index build (integer key)",
            ms: int_index,
            gives: format!("{:.1} ns per row·log2(rows)", self.c.index_ns_per_row_log),
        });
        self.out.push(Measurement {
            step: "index build (text key)",
            ms: text_index,
            gives: format!("text keys {:.1}× slower", self.c.text_key_factor),
        });
        Ok(())
    }

    async fn rewrite(&mut self) -> Result<(), DbError> {
        let t = &self.t;
        let rewrite = timed(
            self.db,
            &format!("ALTER TABLE {t} ALTER COLUMN a TYPE bigint"),
        )
        .await?;
        self.c.rewrite_ns_per_byte =
            ((rewrite - self.c.catalog_ms).max(0.01) * 1e6 / self.bytes).max(0.1);
        self.out.push(Measurement {
            step: "table rewrite",
            ms: rewrite,
            gives: format!(
                "{:.1} ns per heap byte (with the primary key rebuilt)",
                self.c.rewrite_ns_per_byte
            ),
        });
        Ok(())
    }

    async fn backfill(&mut self) -> Result<(), DbError> {
        let (t, rows) = (&self.t, self.rows);
        self.db
            .execute(&format!("ALTER TABLE {t} ADD COLUMN d text"))
            .await?;
        let single = format!("UPDATE {t} SET d = b WHERE id = $1");
        let mut singles = Vec::new();
        for k in 0..21i64 {
            let start = Instant::now();
            self.db
                .execute_with(&single, &[Value::Int(rows as i64 - k)])
                .await?;
            singles.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        // The median: a checkpoint or a neighbour's burst should not set it.
        singles.sort_by(f64::total_cmp);
        let c = &mut self.c;
        c.batch_ms = singles[10];
        // Two passes: with the primary key only, then with a second index on
        // random keys, which every non-HOT update must also insert into.
        let half = BACKFILL_ROWS.min(rows) / 2;
        let (one_index, updated) = backfill(self.db, t, 0, half).await?;
        self.db
            .execute(&format!("CREATE INDEX a_idx ON {t} (a)"))
            .await?;
        let (two_indexes, updated2) = backfill(self.db, t, half, 2 * half).await?;
        let batches = half.div_ceil(BATCH) as f64;
        let per_row =
            |ms: f64, n: u64| (ms - batches * c.batch_ms).max(ms * 0.2) * 1e6 / n.max(1) as f64;
        c.update_ns_per_row = per_row(one_index, updated).max(10.0);
        c.update_ns_per_index = (per_row(two_indexes, updated2) - c.update_ns_per_row).max(0.0);
        self.out.push(Measurement {
            step: "backfill",
            ms: one_index + two_indexes,
            gives: format!(
                "{:.1} µs per row, +{:.1} µs per further index, {:.2} ms per batch ({} batches of {BATCH})",
                c.update_ns_per_row / 1000.0,
                c.update_ns_per_index / 1000.0,
                c.batch_ms,
                2.0 * batches
            ),
        });
        Ok(())
    }
}
