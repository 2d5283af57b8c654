//! Time estimates: a cost model per kind of work a statement makes the
//! server do, fed by table statistics and by coefficients that
//! `keel calibrate` measured on the user's own server (or defaults).
//!
//! | kind | model |
//! |---|---|
//! | rewrite | heap bytes × rewrite rate (includes one index rebuilt, like the calibration table's primary key) + an index build per further index |
//! | index build | rows × log2(rows) × comparison cost (× a factor for text keys) + heap bytes × scan rate |
//! | scan (VALIDATE, SET NOT NULL, CHECK, FK) | heap bytes × scan rate (a foreign key: both tables, and the child twice for the join) |
//! | update / backfill | rows × update cost (× more per extra index, × up to 2.4 when the table outgrows shared_buffers) + batches × batch overhead (+ delay) |
//! | catalog only | a fixed few milliseconds |

pub mod calibrate;

use super::live::{LiveSchema, LiveTable};
use super::operation::{Action, ActionKind, ConstraintKind, Operation};
use crate::db::IndexSize;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The measured cost of each kind of work on one server.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Coefficients {
    /// Table rewrite (heap copied, primary key rebuilt): ns per heap byte.
    pub rewrite_ns_per_byte: f64,
    /// Sequential scan evaluating a constraint: ns per heap byte.
    pub scan_ns_per_byte: f64,
    /// B-tree build on a fixed-width key: ns per row·log2(rows).
    pub index_ns_per_row_log: f64,
    /// How much slower a text key sorts (collation-aware comparisons).
    pub text_key_factor: f64,
    /// UPDATE of one row inside a batch (heap and one index entry): ns per row.
    pub update_ns_per_row: f64,
    /// Each further index adds an entry per updated row (no room for HOT
    /// on a full page): ns per row and index.
    #[serde(default = "default_update_ns_per_index")]
    pub update_ns_per_index: f64,
    /// Fixed cost of one batch: round trip and commit, ms.
    pub batch_ms: f64,
    /// A statement that only changes the catalog, ms.
    pub catalog_ms: f64,
    /// The server's `shared_buffers` in bytes: read live each time (a
    /// stored value is only a fallback), since the update cost changes
    /// once a table outgrows it.
    #[serde(default = "default_cache_bytes")]
    pub cache_bytes: f64,
}

fn default_cache_bytes() -> f64 {
    Coefficients::default().cache_bytes
}

/// How much more a row costs to update when none of the pages it touches
/// stays in shared_buffers: pages read back, dirty ones written out, and
/// written to WAL whole after each checkpoint. Fitted on the estimate bench
/// (10M rows, 3 GB against 128 MB of buffers: 2.4× the in-memory cost).
const OUT_OF_CACHE_FACTOR: f64 = 1.4;

fn default_update_ns_per_index() -> f64 {
    Coefficients::default().update_ns_per_index
}

impl Default for Coefficients {
    /// Measured on a 2-core VM with local SSD (PostgreSQL 15, defaults for
    /// memory settings), rounded towards slower: a plan made before
    /// `keel calibrate` should not promise too much.
    fn default() -> Coefficients {
        Coefficients {
            rewrite_ns_per_byte: 12.0,
            scan_ns_per_byte: 2.5,
            index_ns_per_row_log: 40.0,
            text_key_factor: 2.0,
            update_ns_per_row: 8_000.0,
            update_ns_per_index: 8_000.0,
            batch_ms: 2.0,
            catalog_ms: 2.0,
            // PostgreSQL's default.
            cache_bytes: 128.0 * 1024.0 * 1024.0,
        }
    }
}

/// Coefficients and where they came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The numbers the cost model multiplies table sizes by.
    pub coefficients: Coefficients,
    /// When `keel calibrate` measured them; `None` for the defaults.
    pub measured_at: Option<String>,
    /// Rows of the scratch table they were measured on.
    pub rows: Option<u64>,
    /// The server version they were measured on; `None` for the defaults.
    pub server_version: Option<String>,
}

impl Calibration {
    /// Reads a stored calibration; `None` when the JSON does not parse.
    pub fn from_json(json: &str) -> Option<Calibration> {
        serde_json::from_str(json).ok()
    }

    /// Measured by `keel calibrate` rather than the built-in defaults.
    pub fn is_measured(&self) -> bool {
        self.measured_at.is_some()
    }

    /// `calibrated 2026-11-25 on 200000 rows` or `default coefficients`.
    pub fn describe(&self) -> String {
        match (&self.measured_at, self.rows) {
            (Some(at), Some(rows)) => format!(
                "coefficients from keel calibrate ({}, {} rows)",
                at.get(..10).unwrap_or(at),
                rows
            ),
            _ => "default coefficients (run `keel calibrate` to measure this server)".into(),
        }
    }
}

/// The kind of work a statement makes the server do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CostKind {
    /// The table and its indexes are rewritten.
    Rewrite,
    /// An index is built.
    IndexBuild,
    /// Every row is read (e.g. to validate a constraint).
    Scan,
    /// Rows are updated or deleted by one statement.
    Update,
    /// Rows are updated in batches by a backfill.
    Backfill,
    /// Only the catalog changes: the cost is the lock, not the data.
    Catalog,
}

impl fmt::Display for CostKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CostKind::Rewrite => "the rewrite",
            CostKind::IndexBuild => "the index build",
            CostKind::Scan => "the scan",
            CostKind::Update => "the update",
            CostKind::Backfill => "the backfill",
            CostKind::Catalog => "the catalog change",
        })
    }
}

/// The expected time of one action or statement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    /// What the time is spent on.
    pub kind: CostKind,
    /// Expected milliseconds.
    pub ms: f64,
    /// The table whose size drives it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
}

/// What the model needs to know about a table.
#[derive(Debug, Clone, Copy)]
pub struct Size<'a> {
    /// Estimated row count.
    pub rows: f64,
    /// Size of the table's heap, without indexes or TOAST.
    pub heap_bytes: f64,
    /// The table's indexes, each rebuilt by a rewrite.
    pub indexes: &'a [IndexSize],
}

impl<'a> From<&'a LiveTable> for Size<'a> {
    fn from(t: &'a LiveTable) -> Size<'a> {
        Size {
            rows: t.rows,
            heap_bytes: t.stats.heap_bytes as f64,
            indexes: t.indexes(),
        }
    }
}

fn log2(rows: f64) -> f64 {
    rows.max(2.0).log2()
}

impl Coefficients {
    /// Rewriting the table: copying its heap and rebuilding every index.
    pub fn rewrite_ms(&self, s: Size) -> f64 {
        let heap = s.heap_bytes * self.rewrite_ns_per_byte / 1e6;
        // The first index is in the coefficient (the calibration table has a primary key).
        let more: f64 = s
            .indexes
            .iter()
            .skip(1)
            .map(|i| self.index_ms(s, i.text_key))
            .sum();
        self.catalog_ms + heap + more
    }

    /// One B-tree built over the table.
    pub fn index_ms(&self, s: Size, text_key: bool) -> f64 {
        let factor = if text_key { self.text_key_factor } else { 1.0 };
        let sort = s.rows * log2(s.rows) * self.index_ns_per_row_log * factor / 1e6;
        self.catalog_ms + sort
    }

    /// One sequential scan of the table's heap.
    pub fn scan_ms(&self, s: Size) -> f64 {
        self.catalog_ms + s.heap_bytes * self.scan_ns_per_byte / 1e6
    }

    /// Updating `rows` rows of the table, in batches of `batch` rows
    /// (`None`: one statement), sleeping `delay_ms` between batches.
    pub fn update_ms(&self, s: Size, rows: f64, batch: Option<u64>, delay_ms: u64) -> f64 {
        // A full page leaves no room for a HOT update: every index gets an
        // entry per row. The coefficient includes one (the primary key).
        let extra = s.indexes.len().saturating_sub(1) as f64;
        let in_cache = self.update_ns_per_row + self.update_ns_per_index * extra;
        // Every updated row gets a new version and new index entries, so
        // the table grows by the share it updates; the calibration table
        // fits in the cache, a production table may not.
        let index_bytes: f64 = s.indexes.iter().map(|i| i.bytes.max(0) as f64).sum();
        let share = if s.rows > 0.0 {
            (rows / s.rows).min(1.0)
        } else {
            1.0
        };
        let grown = (s.heap_bytes + index_bytes) * (1.0 + share);
        let miss = if grown > 0.0 {
            (1.0 - self.cache_bytes / grown).max(0.0)
        } else {
            0.0
        };
        let per_row = in_cache * (1.0 + OUT_OF_CACHE_FACTOR * miss);
        let batches = match batch {
            Some(b) if b > 0 => (rows / b as f64).ceil(),
            _ => 1.0,
        };
        rows * per_row / 1e6 + batches * (self.batch_ms + delay_ms as f64)
    }
}

/// The estimate for one action, from the live table it works on.
pub fn action(a: &Action, live: &LiveSchema) -> Estimate {
    let c = &live.calibration.coefficients;
    let catalog = Estimate {
        kind: CostKind::Catalog,
        ms: c.catalog_ms,
        table: None,
    };
    let Some(name) = a.table.as_deref().filter(|_| !a.new_table) else {
        return catalog;
    };
    let Some(t) = live.table(name) else {
        return catalog;
    };
    let s = Size::from(t);
    let est = |kind, ms| Estimate {
        kind,
        ms,
        table: Some(name.to_string()),
    };
    // An unresolved "depends" counts as happening: the estimate is an upper bound.
    if a.rewrite.maybe() {
        return est(CostKind::Rewrite, c.rewrite_ms(s));
    }
    match &a.kind {
        ActionKind::CreateIndex { .. }
        | ActionKind::AddConstraint {
            kind: ConstraintKind::Unique | ConstraintKind::PrimaryKey,
            using_index: false,
            ..
        } => est(CostKind::IndexBuild, c.index_ms(s, false) + c.scan_ms(s)),
        ActionKind::Reindex { .. } => {
            let ms = s.indexes.iter().map(|i| c.index_ms(s, i.text_key)).sum();
            est(CostKind::IndexBuild, ms)
        }
        ActionKind::Update { .. } | ActionKind::Delete { .. } => {
            est(CostKind::Update, c.update_ms(s, s.rows, None, 0))
        }
        ActionKind::AddConstraint {
            kind: ConstraintKind::ForeignKey,
            references,
            ..
        } if a.scan.maybe() => {
            // RI_Initial_Check: one anti-join of the child against the parent.
            let parent = references
                .as_deref()
                .and_then(|r| live.table(r))
                .map_or(0.0, |p| c.scan_ms(Size::from(p)));
            est(CostKind::Scan, 2.0 * c.scan_ms(s) + parent)
        }
        _ if a.scan.maybe() => est(CostKind::Scan, c.scan_ms(s)),
        _ => catalog,
    }
}

/// The estimate for one statement: the sum of its actions, named by the
/// costliest one.
pub fn statement(op: &Operation, live: &LiveSchema) -> Estimate {
    let mut parts: Vec<Estimate> = op.actions.iter().map(|a| action(a, live)).collect();
    if parts.is_empty() {
        return Estimate {
            kind: CostKind::Catalog,
            ms: live.calibration.coefficients.catalog_ms,
            table: None,
        };
    }
    // One ALTER TABLE rewrites the table once, however many clauses ask for it.
    let mut seen_rewrite = false;
    parts.retain(|e| {
        let dup = e.kind == CostKind::Rewrite && seen_rewrite;
        seen_rewrite |= e.kind == CostKind::Rewrite;
        !dup
    });
    let ms = parts.iter().map(|e| e.ms).sum();
    let main = parts
        .into_iter()
        .max_by(|a, b| a.ms.total_cmp(&b.ms))
        .expect("not empty");
    Estimate { ms, ..main }
}

/// `~3 ms`, `~4.1 s`, `~2 min 5 s`, `~1 h 20 min`.
pub fn human_ms(ms: f64) -> String {
    if ms < 1.0 {
        "<1 ms".into()
    } else if ms < 1_000.0 {
        format!("~{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("~{:.1} s", ms / 1_000.0)
    } else if ms < 3_600_000.0 {
        let s = (ms / 1_000.0).round() as u64;
        format!("~{} min {} s", s / 60, s % 60)
    } else {
        let m = (ms / 60_000.0).round() as u64;
        format!("~{} h {} min", m / 60, m % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(rows: f64, bytes: f64, indexes: &[IndexSize]) -> Size<'_> {
        Size {
            rows,
            heap_bytes: bytes,
            indexes,
        }
    }

    #[test]
    fn costs_grow_with_the_table() {
        let c = Coefficients::default();
        let pk = [IndexSize::default()];
        let small = size(1_000.0, 100_000.0, &pk);
        let big = size(1_000_000.0, 100_000_000.0, &pk);
        assert!(c.rewrite_ms(big) > 100.0 * c.rewrite_ms(small) / 2.0);
        assert!(c.index_ms(big, false) > 1000.0 * (c.index_ms(small, false) - c.catalog_ms));
        assert!(c.index_ms(big, true) > c.index_ms(big, false));
        // Each further index adds its own build to a rewrite.
        let three = [
            IndexSize::default(),
            IndexSize::default(),
            IndexSize::default(),
        ];
        let wide = size(1_000_000.0, 100_000_000.0, &three);
        assert!(
            (c.rewrite_ms(wide)
                - c.rewrite_ms(big)
                - 2.0 * (c.index_ms(big, false) - c.catalog_ms))
                .abs()
                < 2.0 * c.catalog_ms + 1e-6
        );
    }

    #[test]
    fn batches_add_their_overhead() {
        let c = Coefficients::default();
        let pk = [IndexSize::default()];
        let s = size(100_000.0, 1e7, &pk);
        let one = c.update_ms(s, 100_000.0, None, 0);
        let batched = c.update_ms(s, 100_000.0, Some(1_000), 10);
        assert!((batched - one - 100.0 * (c.batch_ms + 10.0) + c.batch_ms).abs() < 1e-6);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_ms(0.2), "<1 ms");
        assert_eq!(human_ms(42.0), "~42 ms");
        assert_eq!(human_ms(4_120.0), "~4.1 s");
        assert_eq!(human_ms(125_000.0), "~2 min 5 s");
        assert_eq!(human_ms(4_800_000.0), "~1 h 20 min");
    }
}
