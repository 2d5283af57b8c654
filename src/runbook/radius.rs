//! What an on-call operator reads before starting: the tables the
//! migration reaches with their lock and, per environment, their size and
//! what depends on them (from the sizes keel stored, [`super::sizes`]);
//! the expected time per environment; and the people around the change
//! (keel.toml's and migration.toml's `[runbook]`).

use super::sizes::Sizes;
use crate::analysis::analyze::MigrationAnalysis;
use crate::analysis::estimate::human_ms;
use crate::analysis::live::{human_bytes, human_count};
use crate::analysis::{Lock, Tri};
use crate::migration::Migration;
use crate::migration::People;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One table the migration reaches.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BlastTable {
    pub(crate) table: String,
    /// Its strongest lock, or `none` (SQLite, or a statement keel cannot read).
    pub(crate) lock: String,
    pub(crate) rewrite: bool,
    pub(crate) scan: bool,
    /// Per measured environment: `production: ~1.2M rows, 340 MB`.
    pub(crate) sizes: Vec<String>,
    /// Views, foreign keys that point to it and triggers, from every
    /// measured environment.
    pub(crate) dependents: Vec<String>,
}

/// The runbook's people section: keel.toml's `[runbook]` with the
/// migration's own over it; `None` (or empty) where neither sets a value,
/// which the template shows as unset.
pub(crate) fn people(project: &People, m: &Migration) -> People {
    project.overridden_by(&m.meta.runbook)
}

/// The tables of up.sql, in the order the statements first name them.
pub(crate) fn tables(a: &MigrationAnalysis, sizes: &[Sizes]) -> Vec<BlastTable> {
    let mut order: Vec<String> = Vec::new();
    let mut seen: BTreeMap<String, (Option<Lock>, bool, bool)> = BTreeMap::new();
    for op in &a.up.ops {
        for t in op.tables() {
            let e = seen.entry(t.clone()).or_insert_with(|| {
                order.push(t.clone());
                (None, false, false)
            });
            e.0 = e.0.max(op.lock());
            e.1 |= op.rewrite() != Tri::No;
            e.2 |= op.scan() != Tri::No;
        }
    }
    order
        .into_iter()
        .map(|table| {
            let (lock, rewrite, scan) = seen[&table];
            let mut dependents: Vec<String> =
                sizes.iter().flat_map(|s| s.dependents_of(&table)).collect();
            dependents.sort();
            dependents.dedup();
            BlastTable {
                lock: lock.map_or("none".into(), |l| l.name().to_string()),
                rewrite,
                scan,
                sizes: sizes
                    .iter()
                    .filter_map(|s| {
                        let t = s.table(&table)?;
                        let rows = crate::analysis::live::estimate_rows(t);
                        Some(format!(
                            "{}: {} rows, {}",
                            s.environment,
                            human_count(rows),
                            human_bytes(t.total_bytes as f64)
                        ))
                    })
                    .collect(),
                dependents,
                table,
            }
        })
        .collect()
}

/// The expected time of `m` in the environment `s` measured, in words.
pub(crate) fn expected_time(m: &Migration, s: &Sizes) -> String {
    let version = s.postgres.as_deref().and_then(|v| v.parse().ok());
    let plans = crate::analysis::plan::build(&[m], true, version, Some(Arc::new(s.live())));
    let ms = plans.first().and_then(|p| p.estimated_ms).unwrap_or(0.0);
    format!(
        "{} (table sizes read {} UTC by `keel plan --save`; {})",
        human_ms(ms),
        s.measured_at.format("%Y-%m-%d %H:%M"),
        s.calibration.describe()
    )
}
