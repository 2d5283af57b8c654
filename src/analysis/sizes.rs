//! Live mode's addition to each finding: how big the table is and how long
//! the lock is expected to be held (`users: 1.2M rows, 180 MB; ACCESS
//! EXCLUSIVE held ~4.1 s for the rewrite`). Where the harm is only the
//! lock's duration and the table is small enough that it lasts a blink, an
//! error becomes a warning that says so.

use super::estimate::{self, CostKind, human_ms};
use super::finding::{Finding, Severity};
use super::live::LiveSchema;
use super::operation::Operation;

/// Rules whose harm is how long a lock is held, not lost data or broken code.
const DURATION_RULES: &[&str] = &[
    "change-column-type",
    "set-not-null",
    "add-column-rewrite",
    "create-index-blocking",
    "add-foreign-key",
    "add-check",
    "add-unique",
    "add-exclusion",
    "table-rewrite",
    "reindex-blocking",
    "backfill-in-migration",
];

/// Below this expected lock time a blocking statement is a blip for the
/// application (the lock_timeout keel sets guards the wait to get it).
pub(crate) const BRIEF_MS: f64 = 100.0;

/// Adds table sizes and lock times to the findings of `file`.
pub(crate) fn annotate(findings: &mut [Finding], file: &str, ops: &[Operation], live: &LiveSchema) {
    for f in findings.iter_mut().filter(|f| f.file == file) {
        let Some(a) = ops
            .iter()
            .flat_map(|o| &o.actions)
            .find(|a| a.line == f.line && a.column_no == f.column)
        else {
            continue;
        };
        let Some(table) = a.table.as_deref().filter(|_| !a.new_table) else {
            continue;
        };
        let Some(t) = live.table(table) else {
            continue;
        };
        let est = estimate::action(a, live);
        let mut note = format!("{table}: {}", t.size_text());
        if let Some(lock) = a.lock() {
            note.push_str(&format!(
                "; {} held {} for {}",
                lock.name(),
                human_ms(est.ms),
                est.kind
            ));
        }
        f.message = format!("{} ({note})", f.message);
        let brief = est.ms < BRIEF_MS && est.kind != CostKind::Catalog;
        if brief && f.severity == Severity::Error && DURATION_RULES.contains(&f.rule) {
            f.severity = Severity::Warning;
            f.message.push_str(
                "; the table is small enough that the lock is brief: a warning, not an error",
            );
        }
    }
}
