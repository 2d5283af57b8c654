//! `up --dry-run` / `down --dry-run`: each migration's SQL in run order,
//! followed (as SQL comments, so the output still runs in psql) by what the
//! analysis says: locks per statement, rewrites, scans, data destroyed,
//! reversibility, the backup it needs, and lint findings.

use super::Ctx;
use crate::analysis::analyze::MigrationAnalysis;
use crate::analysis::estimate::human_ms;
use crate::analysis::plan::{self, Plan};
use crate::analysis::{LiveSchema, Operation, PgVersion, Tri};
use crate::backup::StatementBackup;
use crate::db::{Database, DbError};
use crate::migration::Migration;
use serde_json::{Value, json};
use std::sync::Arc;

/// The database a dry run is for, as far as the analysis cares.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    /// PostgreSQL, with its version when the server told it.
    Postgres(Option<PgVersion>),
    /// A database whose locks keel does not model (SQLite), by name.
    Other(&'static str),
}

impl Target {
    pub(crate) async fn of(db: &mut dyn Database) -> Target {
        match db.postgres_version().await {
            Ok(Some(num)) => Target::Postgres(Some(PgVersion::from_num(num))),
            Ok(None) => Target::Other(db.dialect_name()),
            Err(_) => Target::Postgres(None),
        }
    }

    /// The live schema, on PostgreSQL (for sizes and estimates).
    pub(crate) async fn live(
        self,
        db: &mut dyn Database,
    ) -> Result<Option<Arc<LiveSchema>>, DbError> {
        match self {
            Target::Postgres(_) => Ok(LiveSchema::load(db, &crate::db::Scope::All)
                .await?
                .map(Arc::new)),
            Target::Other(_) => Ok(None),
        }
    }
}

/// Prints each migration's SQL, in the order it would run, with its analysis.
pub(crate) fn print(
    ctx: &Ctx,
    direction: &str,
    migrations: &[&Migration],
    sql: impl Fn(&Migration) -> &str,
    target: Target,
    live: Option<Arc<LiveSchema>>,
    backups: &[(String, Vec<StatementBackup>)],
) {
    let up = direction == "up";
    let described = |m: &Migration| {
        backups
            .iter()
            .find(|(id, _)| *id == m.id())
            .map(|(_, b)| b.as_slice())
    };
    let plans = match target {
        Target::Postgres(version) => Some(plan::build(migrations, up, version, live)),
        Target::Other(_) => None,
    };
    let analysis = |i: usize| plans.as_ref().map(|p| &p[i]);
    if ctx.out.json {
        let items: Vec<Value> = migrations
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut v = migration_json(m, &sql, analysis(i), up);
                if let Some(b) = described(m) {
                    v["backup_plan"] = json!(b);
                }
                v
            })
            .collect();
        ctx.json(json!({
            "dry_run": true,
            "direction": direction,
            "migrations": items,
        }));
        return;
    }
    if migrations.is_empty() {
        ctx.out
            .data(&format!("-- dry run ({direction}): nothing to do"));
        return;
    }
    let mut text = format!(
        "-- dry run ({direction}): {} migration(s), in order; nothing is changed\n",
        migrations.len()
    );
    if let Target::Other(name) = target {
        text.push_str(&format!(
            "-- lock levels and lint findings model PostgreSQL; not shown for {name}\n"
        ));
    }
    for (i, m) in migrations.iter().enumerate() {
        let file = if up { m.up_path() } else { m.down_path() };
        text.push_str(&format!(
            "\n-- {} ({})\n-- {}\n",
            m.id(),
            if m.meta.transaction {
                "one transaction"
            } else {
                "transaction = false: statement by statement"
            },
            file.display()
        ));
        text.push_str(sql(m).trim_end());
        text.push('\n');
        if let Some(a) = analysis(i) {
            text.push_str(&analysis_text(m, a, up, target, described(m).is_some()));
        }
        for b in described(m).unwrap_or_default() {
            text.push_str(&format!(
                "--   backup, line {} ({}): {}: {}\n",
                b.line, b.statement, b.backup, b.detail
            ));
        }
    }
    ctx.out.data(&text);
}

fn ops(a: &MigrationAnalysis, up: bool) -> &[Operation] {
    if up {
        &a.up.ops
    } else {
        a.down.as_ref().map_or(&[], |d| &d.ops)
    }
}

/// `described`: the backups are said from the live schema after this.
fn analysis_text(m: &Migration, p: &Plan, up: bool, target: Target, described: bool) -> String {
    let a = &p.analysis;
    let version = match target {
        Target::Postgres(Some(v)) => format!("PostgreSQL {v}"),
        _ => "PostgreSQL".to_string(),
    };
    let mut out = format!("-- analysis ({version}):\n");
    for (op, s) in ops(a, up).iter().zip(&p.statements) {
        let estimate = s
            .estimate
            .as_ref()
            .map(|e| format!("; {} for {}", human_ms(e.ms), e.kind))
            .unwrap_or_default();
        out.push_str(&format!(
            "--   line {}: {}: {}{estimate}\n",
            op.line,
            op.kind,
            effects(op)
        ));
    }
    if up {
        let declared = m
            .meta
            .reversibility
            .map(|d| format!(" (declared {d})"))
            .unwrap_or_default();
        out.push_str(&format!(
            "--   reversibility: {}{declared}\n",
            a.reversibility
        ));
        if !p.backup_locks.is_empty() && !a.backups.is_empty() {
            out.push_str(&format!(
                "--   before line 1, in the migration's transaction: SHARE lock on {} for the backup, held until COMMIT (reads go on, writes wait)\n",
                p.backup_locks.join(", ")
            ));
        }
        for b in a.backups.iter().filter(|_| !described) {
            let what = match &b.columns {
                Some(c) => format!("{} ({})", b.table, c.join(", ")),
                None => format!("{} (all columns)", b.table),
            };
            out.push_str(&format!(
                "--   backup before running: {what}, for line {}: {}\n",
                b.line, b.reason
            ));
        }
    }
    if let Some(ms) = p.estimated_ms {
        let coefficients = p.coefficients.as_deref().unwrap_or_default();
        out.push_str(&format!(
            "--   estimated time: {} ({coefficients})\n",
            human_ms(ms)
        ));
    }
    if let Some(b) = &p.backfill
        && let Some(ms) = b.estimated_ms
    {
        out.push_str(&format!(
            "--   then the backfill of {}: {} in batches of {}\n",
            b.table,
            human_ms(ms),
            b.batch_size
        ));
    }
    let file = if up { "up.sql" } else { "down.sql" };
    for f in a
        .findings
        .iter()
        .filter(|f| f.file.ends_with(file) || (up && f.file.ends_with("migration.toml")))
    {
        match &f.allowed {
            Some(reason) => out.push_str(&format!(
                "--   allowed[{}] line {}: {reason}\n",
                f.rule, f.line
            )),
            None => out.push_str(&format!(
                "--   {}[{}] line {}:{}: {}\n--     fix: {}\n",
                f.severity, f.rule, f.line, f.column, f.message, f.suggestion
            )),
        }
    }
    out
}

/// `ACCESS EXCLUSIVE on users; rewrites users; destroys data`.
fn effects(op: &Operation) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut locks: Vec<(String, crate::analysis::Lock)> = Vec::new();
    for l in op.actions.iter().flat_map(|a| &a.locks) {
        match locks.iter_mut().find(|(t, _)| *t == l.table) {
            Some((_, lock)) => *lock = (*lock).max(l.lock),
            None => locks.push((l.table.clone(), l.lock)),
        }
    }
    if locks.is_empty() {
        parts.push("no table lock".into());
    } else {
        let l: Vec<String> = locks
            .iter()
            .map(|(t, l)| format!("{} on {t}", l.name()))
            .collect();
        parts.push(l.join(", "));
    }
    match op.rewrite() {
        Tri::Yes => parts.push("rewrites the table".into()),
        Tri::Depends(on) => parts.push(format!("may rewrite (depends on {on})")),
        Tri::No => match op.scan() {
            Tri::Yes => parts.push("scans the table".into()),
            Tri::Depends(on) => parts.push(format!("may scan (depends on {on})")),
            Tri::No => {}
        },
    }
    if op.destroys() {
        parts.push("destroys data".into());
    }
    if op.no_transaction() {
        parts.push("cannot run in a transaction".into());
    }
    parts.join("; ")
}

fn migration_json(
    m: &Migration,
    sql: &impl Fn(&Migration) -> &str,
    p: Option<&Plan>,
    up: bool,
) -> Value {
    let a = p.map(|p| &p.analysis);
    let mut v = json!({
        "version": m.version.to_string(),
        "name": m.name,
        "transaction": m.meta.transaction,
    });
    let Some(a) = a else {
        v["statements"] = crate::sql::split(sql(m))
            .iter()
            .map(|s| json!({"sql": s.sql, "line": s.line}))
            .collect();
        return v;
    };
    let p = p.expect("a plan when there is an analysis");
    v["statements"] = ops(a, up)
        .iter()
        .zip(&p.statements)
        .map(|(op, s)| {
            json!({
                "estimated_ms": s.estimate.as_ref().map(|e| e.ms.round() as u64),
                "sql": op.sql,
                "line": op.line,
                "lock": op.lock().map(|l| l.name()),
                "rewrite": op.rewrite().is_yes(),
                "scan": op.scan().is_yes(),
                "depends_on": depends(op),
                "destroys": op.destroys(),
                "tables": op.tables(),
            })
        })
        .collect();
    v["reversibility"] = json!({
        "derived": a.reversibility.to_string(),
        "declared": m.meta.reversibility.map(|r| r.to_string()),
    });
    v["backups"] = json!(a.backups);
    v["findings"] = json!(a.findings);
    v["estimated_ms"] = json!(p.estimated_ms.map(|ms| ms.round() as u64));
    v
}

/// What an uncertain rewrite or scan claim depends on.
fn depends(op: &Operation) -> Option<String> {
    match (op.rewrite(), op.scan()) {
        (Tri::Depends(on), _) | (_, Tri::Depends(on)) => Some(on),
        _ => None,
    }
}
