//! Everything known about a migration before it runs: its statements with
//! locks, rewrites and scans, the tables touched with their sizes,
//! reversibility, the backups it needs, lint findings, and the estimated
//! time — per statement, per lock held, and for its backfill. `keel plan`
//! prints one; `up --dry-run` and `down --dry-run` print theirs beside the
//! SQL. Built on [`analysis`](crate::analysis) and, in live mode, on
//! [`LiveSchema`](crate::analysis::LiveSchema).

use crate::analysis::analyze::{Analyzer, Facts, MigrationAnalysis};
use crate::analysis::estimate::{self, Estimate};
use crate::analysis::finding::Finding;
use crate::analysis::reversibility::BackupItem;
use crate::analysis::{LiveSchema, Lock, Operation, PgVersion, Tri};
use crate::migration::{Migration, Reversibility};
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The plan of one migration in one direction.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) version: String,
    pub(crate) name: String,
    /// Run in one transaction (migration.toml `transaction`).
    pub(crate) transaction: bool,
    pub(crate) statements: Vec<PlanStatement>,
    /// Derived from what the files do.
    pub(crate) reversibility: Reversibility,
    /// What migration.toml claims.
    pub(crate) declared: Option<Reversibility>,
    pub(crate) backups: Vec<BackupItem>,
    pub(crate) findings: Vec<Finding>,
    /// Each table's strongest lock and how long it is held: to the end of
    /// the transaction for a transactional migration.
    pub(crate) locks_held: Vec<LockHeld>,
    /// The tables keel locks in SHARE mode right after the migration's
    /// transaction opens, to back them up with exactly the rows its
    /// statements will find (see [`backup_locks`]).
    pub(crate) backup_locks: Vec<String>,
    /// The statements' total; `None` without a live PostgreSQL.
    pub(crate) estimated_ms: Option<f64>,
    /// The `[backfill]` section, run after the statements and outside them.
    pub(crate) backfill: Option<BackfillPlan>,
    /// Where the coefficients came from, in words.
    pub(crate) coefficients: Option<String>,
    pub(crate) analysis: MigrationAnalysis,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PlanStatement {
    pub(crate) sql: String,
    pub(crate) line: usize,
    /// `ALTER TABLE`, `CREATE INDEX`, …
    pub(crate) kind: String,
    pub(crate) lock: Option<Lock>,
    /// Every table lock, strongest per table, in order of mention.
    pub(crate) locks: Vec<(String, Lock)>,
    pub(crate) rewrite: Tri,
    pub(crate) scan: Tri,
    pub(crate) destroys: bool,
    pub(crate) no_transaction: bool,
    pub(crate) tables: Vec<TableSize>,
    pub(crate) estimate: Option<Estimate>,
}

/// A table a statement touches, with its size where the server told it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct TableSize {
    pub(crate) name: String,
    /// Created earlier in this migration or pending set: empty.
    pub(crate) new: bool,
    pub(crate) rows: Option<f64>,
    /// Heap and TOAST.
    pub(crate) bytes: Option<i64>,
    /// With indexes.
    pub(crate) total_bytes: Option<i64>,
    pub(crate) indexes: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct LockHeld {
    pub(crate) table: String,
    pub(crate) lock: Lock,
    pub(crate) ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct BackfillPlan {
    pub(crate) table: String,
    pub(crate) rows: Option<f64>,
    pub(crate) batch_size: u64,
    pub(crate) batches: Option<u64>,
    pub(crate) delay_ms: u64,
    pub(crate) estimated_ms: Option<f64>,
}

/// Plans migrations in the order they would run (one pending set going up,
/// each on its own going down). `version` and `live` are `None` off PostgreSQL.
pub(crate) fn build(
    migrations: &[&Migration],
    up: bool,
    version: Option<PgVersion>,
    live: Option<Arc<LiveSchema>>,
) -> Vec<Plan> {
    let mut analyzer = Analyzer::new(
        Facts {
            version,
            live: live.clone(),
        },
        up,
    );
    migrations
        .iter()
        .map(|m| plan_one(m, analyzer.analyze(m), up, live.as_deref()))
        .collect()
}

fn plan_one(m: &Migration, a: MigrationAnalysis, up: bool, live: Option<&LiveSchema>) -> Plan {
    let ops: &[Operation] = if up {
        &a.up.ops
    } else {
        a.down.as_ref().map_or(&[], |d| &d.ops)
    };
    let statements: Vec<PlanStatement> = ops.iter().map(|op| statement(op, live)).collect();
    let estimated_ms = live.map(|_| {
        statements
            .iter()
            .filter_map(|s| s.estimate.as_ref())
            .map(|e| e.ms)
            .sum()
    });
    let file = if up { "up.sql" } else { "down.sql" };
    let findings = a
        .findings
        .iter()
        .filter(|f| f.file.ends_with(file) || (up && f.file.ends_with("migration.toml")))
        .cloned()
        .collect();
    let backup_locks = if up { backup_locks(m, &a) } else { Vec::new() };
    Plan {
        version: m.version.to_string(),
        name: m.name.clone(),
        transaction: m.meta.transaction,
        locks_held: locks_held(&statements, m.meta.transaction, &backup_locks),
        backup_locks,
        backfill: up
            .then_some(m.meta.backfill.as_ref())
            .flatten()
            .map(|b| backfill(b, live)),
        coefficients: live.map(|l| l.calibration.describe()),
        statements,
        reversibility: a.reversibility,
        declared: m.meta.reversibility,
        backups: if up { a.backups.clone() } else { Vec::new() },
        findings,
        estimated_ms,
        analysis: a,
    }
}

fn statement(op: &Operation, live: Option<&LiveSchema>) -> PlanStatement {
    let mut locks: Vec<(String, Lock)> = Vec::new();
    for l in op.actions.iter().flat_map(|a| &a.locks) {
        match locks.iter_mut().find(|(t, _)| *t == l.table) {
            Some((_, lock)) => *lock = (*lock).max(l.lock),
            None => locks.push((l.table.clone(), l.lock)),
        }
    }
    let new_tables: Vec<&str> = op
        .actions
        .iter()
        .filter(|a| a.new_table)
        .filter_map(|a| a.table.as_deref())
        .collect();
    let tables = op
        .tables()
        .into_iter()
        .map(|name| {
            let new = new_tables.contains(&name.as_str());
            let t = live.filter(|_| !new).and_then(|l| l.table(&name));
            TableSize {
                new,
                rows: t.map(|t| t.rows).or(new.then_some(0.0)),
                bytes: t.map(|t| t.stats.table_bytes),
                total_bytes: t.map(|t| t.stats.total_bytes),
                indexes: t.map(|t| t.stats.indexes.len()),
                name,
            }
        })
        .collect();
    PlanStatement {
        sql: op.sql.clone(),
        line: op.line,
        kind: op.kind.clone(),
        lock: op.lock(),
        locks,
        rewrite: op.rewrite(),
        scan: op.scan(),
        destroys: op.destroys(),
        no_transaction: op.no_transaction(),
        tables,
        estimate: live.map(|l| estimate::statement(op, l)),
    }
}

/// The tables whose backup keel takes inside `m`'s transaction, under a
/// SHARE lock (INSERT, UPDATE and DELETE wait; reads go on) held from the
/// backup to the commit, so that the archive holds exactly the rows the
/// statements find. None for a migration that runs statement by statement
/// (its backup is taken before, unlocked) or declares itself irreversible
/// (no backup).
pub(crate) fn backup_locks(m: &Migration, a: &MigrationAnalysis) -> Vec<String> {
    if !m.meta.transaction || m.meta.reversibility == Some(Reversibility::Irreversible) {
        return Vec::new();
    }
    let mut tables: Vec<String> = Vec::new();
    for b in &a.backups {
        if !tables.contains(&b.table) {
            tables.push(b.table.clone());
        }
    }
    tables
}

/// In one transaction a lock is held from the statement that takes it to
/// the commit; statement by statement, only for the statement. The
/// backup's SHARE locks are held from before the first statement.
fn locks_held(statements: &[PlanStatement], transaction: bool, backup: &[String]) -> Vec<LockHeld> {
    let ms = |s: &PlanStatement| s.estimate.as_ref().map_or(0.0, |e| e.ms);
    // Time from each statement to the end, summed once from the back (a
    // sum per statement was quadratic: 35 s for 8 MB of INSERTs).
    let mut to_end = vec![0.0; statements.len() + 1];
    for (i, s) in statements.iter().enumerate().rev() {
        to_end[i] = to_end[i + 1] + ms(s);
    }
    let mut out: Vec<LockHeld> = backup
        .iter()
        .map(|table| LockHeld {
            table: table.clone(),
            lock: Lock::Share,
            ms: to_end[0],
        })
        .collect();
    for (i, s) in statements.iter().enumerate() {
        let held = if transaction { to_end[i] } else { ms(s) };
        for (table, lock) in &s.locks {
            match out.iter_mut().find(|h| h.table == *table) {
                Some(h) if transaction => h.lock = h.lock.max(*lock),
                Some(h) => {
                    h.lock = h.lock.max(*lock);
                    h.ms = h.ms.max(held);
                }
                None => out.push(LockHeld {
                    table: table.clone(),
                    lock: *lock,
                    ms: held,
                }),
            }
        }
    }
    out
}

fn backfill(b: &crate::migration::meta::Backfill, live: Option<&LiveSchema>) -> BackfillPlan {
    let batch_size = b.batch_size.unwrap_or(1_000).max(1);
    let delay_ms = b.delay_ms.unwrap_or(0);
    let table = live.and_then(|l| l.table(&b.table).map(|t| (l, t)));
    let rows = table.map(|(_, t)| t.rows.round());
    BackfillPlan {
        table: b.table.clone(),
        rows,
        batch_size,
        batches: rows.map(|r| (r / batch_size as f64).ceil() as u64),
        delay_ms,
        // Every row is a candidate until the WHERE says otherwise: an upper bound.
        estimated_ms: table.map(|(l, t)| {
            l.calibration
                .coefficients
                .update_ms(t.into(), t.rows, Some(batch_size), delay_ms)
                .round()
        }),
    }
}

fn tri(t: &Tri) -> (bool, Option<&str>) {
    match t {
        Tri::Yes => (true, None),
        Tri::No => (false, None),
        Tri::Depends(on) => (false, Some(on.as_str())),
    }
}

impl Plan {
    /// The JSON of `keel plan --format json` (the README shows it):
    /// `{"version","statements":[{"sql","line","lock","rewrite","scan","tables"}],
    /// "reversibility","backups","findings","estimated_ms"}`, plus details.
    pub(crate) fn to_json(&self) -> Value {
        let statements: Vec<Value> = self
            .statements
            .iter()
            .map(|s| {
                let (rewrite, rewrite_depends) = tri(&s.rewrite);
                let (scan, scan_depends) = tri(&s.scan);
                json!({
                    "sql": s.sql,
                    "line": s.line,
                    "kind": s.kind,
                    "lock": s.lock.map(Lock::name),
                    "locks": s.locks.iter().map(|(t, l)| json!({"table": t, "lock": l.name()})).collect::<Vec<_>>(),
                    "rewrite": rewrite,
                    "scan": scan,
                    "depends_on": rewrite_depends.or(scan_depends),
                    "destroys": s.destroys,
                    "no_transaction": s.no_transaction,
                    "tables": s.tables,
                    "estimated_ms": s.estimate.as_ref().map(|e| e.ms.round() as u64),
                    "cost": s.estimate.as_ref().map(|e| e.kind),
                })
            })
            .collect();
        json!({
            "version": self.version,
            "name": self.name,
            "transaction": self.transaction,
            "statements": statements,
            "reversibility": self.reversibility.to_string(),
            "declared_reversibility": self.declared.map(|d| d.to_string()),
            "backups": self.backups,
            "backup_locks": self.backup_locks.iter().map(|t| json!({"table": t, "lock": Lock::Share.name()})).collect::<Vec<_>>(),
            "findings": self.findings,
            "locks_held": self.locks_held.iter().map(|h| json!({
                "table": h.table, "lock": h.lock.name(), "ms": h.ms.round() as u64,
            })).collect::<Vec<_>>(),
            "estimated_ms": self.estimated_ms.map(|ms| ms.round() as u64),
            "backfill": self.backfill,
            "coefficients": self.coefficients,
        })
    }
}
