//! `keel plan V`: everything known before running V, from the files and,
//! on PostgreSQL, the live schema and the calibrated cost model.

use super::Ctx;
use super::dry_run::Target;
use crate::analysis::Tri;
use crate::analysis::estimate::human_ms;
use crate::analysis::live::{human_bytes, human_count};
use crate::analysis::plan::{self, Plan, PlanStatement, TableSize};
use crate::error::Result;
use crate::migration::Migration;
use crate::migrator::{State, plan_set, reconcile};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The migration's version (or its full <version>_<name> id)
    pub(crate) version: String,
    /// Keep the environment's table sizes in runbooks/sizes/<env>.json, so
    /// that runbooks rendered anywhere give its expected time (needs --env)
    #[arg(long)]
    pub(crate) save: bool,
    /// Folder of the runbooks the sizes are kept beside
    #[arg(long, default_value = "runbooks", requires = "save")]
    pub(crate) runbooks: std::path::PathBuf,
}

pub(crate) async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let files = ctx.migrations()?;
    let wanted = crate::migration::find(&files, &args.version)?;
    let mut db = ctx.connect().await?;
    let entries = reconcile(&files, db.tracking_rows().await?);
    let (state, set) = plan_set(&entries, wanted);
    let target = Target::of(db.as_mut()).await;
    let live = target.live(db.as_mut()).await;
    let dependents = match args.save {
        true => db.dependents().await,
        false => Ok(None),
    };
    db.close().await;
    let live = live?;
    if args.save {
        keep_sizes(ctx, &args.runbooks, target, live.as_deref(), dependents?)?;
    }
    let version = match target {
        Target::Postgres(v) => v,
        Target::Other(_) => None,
    };
    let plans = plan::build(&set, true, version, live);
    let plan = plans
        .last()
        .expect("the set ends with the wanted migration");
    if ctx.out.json {
        let mut json = plan.to_json();
        json["state"] = state.as_str().into();
        json["database"] = match target {
            Target::Postgres(v) => format!(
                "PostgreSQL{}",
                v.map(|v| format!(" {v}")).unwrap_or_default()
            ),
            Target::Other(name) => name.to_string(),
        }
        .into();
        ctx.json(json);
    } else {
        ctx.out.data(&text(wanted, plan, state, target));
    }
    Ok(())
}

/// `--save` (of `plan` and `calibrate`): the measured sizes, beside the
/// runbooks in `runbooks`.
pub(super) fn keep_sizes(
    ctx: &Ctx,
    runbooks: &std::path::Path,
    target: Target,
    live: Option<&crate::analysis::LiveSchema>,
    dependents: Option<Vec<crate::db::Dependent>>,
) -> Result<()> {
    use crate::error::Error;
    let Some(env) = ctx.target().env() else {
        return Err(Error::Usage(
            "--save keeps the sizes of an environment of keel.toml: give it with --env NAME".into(),
        ));
    };
    let (Target::Postgres(version), Some(live)) = (target, live) else {
        return Err(Error::Usage(format!(
            "--save: environment `{env}` is not a PostgreSQL database, and only PostgreSQL has sizes to estimate from"
        )));
    };
    let sizes = crate::runbook::sizes::Sizes {
        environment: env.to_string(),
        measured_at: chrono::Utc::now(),
        postgres: version.map(|v| v.to_string()),
        calibration: live.calibration.clone(),
        // keel's own tables are not the project's to estimate.
        tables: live
            .stats()
            .filter(|t| {
                !crate::db::KEEL_TABLES.contains(&t.name.as_str())
                    && t.name != crate::db::CALIBRATION_TABLE
            })
            .cloned()
            .collect(),
        dependents: dependents.unwrap_or_default(),
    };
    let path = sizes.save(runbooks).map_err(|e| {
        Error::Usage(format!(
            "cannot keep the sizes of `{env}` in {}: {e}",
            runbooks.display()
        ))
    })?;
    ctx.out.progress(&format!(
        "kept the table sizes of `{env}` in {}: render the runbooks again (`keel runbook VERSION`) and commit both",
        path.display()
    ));
    Ok(())
}

/// The plan as people read it.
pub(crate) fn text(m: &Migration, plan: &Plan, state: State, target: Target) -> String {
    let on = match target {
        Target::Postgres(Some(v)) => format!("PostgreSQL {v}"),
        Target::Postgres(None) => "PostgreSQL".into(),
        Target::Other(name) => name.to_string(),
    };
    let mode = if plan.transaction {
        "one transaction"
    } else {
        "transaction = false: statement by statement"
    };
    let mut out = format!(
        "plan for {} ({}, {mode}) on {on}\n  {}\n",
        m.id(),
        state.as_str(),
        m.up_path().display()
    );
    let postgres = matches!(target, Target::Postgres(_));
    if !postgres {
        out.push_str("  lock levels, table sizes and estimates model PostgreSQL; not shown here\n");
    }
    out.push_str("\nstatements\n");
    for (i, s) in plan.statements.iter().enumerate() {
        out.push_str(&statement_text(i + 1, s, postgres));
    }
    if plan.statements.is_empty() {
        out.push_str("  (none)\n");
    }
    if postgres {
        out.push_str(&locks_text(plan));
    }
    out.push_str(&backups_text(plan));
    if postgres {
        out.push_str(&findings_text(plan));
    }
    out.push_str(&time_text(plan));
    out
}

/// Each table's strongest lock, how long it is held and what it blocks.
fn locks_text(plan: &Plan) -> String {
    if plan.locks_held.is_empty() {
        return String::new();
    }
    let mut out = String::from(if plan.transaction {
        "\nlocks held (one transaction: each until COMMIT)\n"
    } else {
        "\nlocks held (each for its statement)\n"
    });
    let width = plan
        .locks_held
        .iter()
        .map(|h| h.table.len())
        .max()
        .unwrap_or(0);
    for h in &plan.locks_held {
        out.push_str(&format!(
            "  {:<width$}  {:<22}  {:>10}  {}\n",
            h.table,
            h.lock.name(),
            human_ms(h.ms),
            h.lock.blocks()
        ));
    }
    out
}

/// Reversibility and the backups the migration needs before it runs.
fn backups_text(plan: &Plan) -> String {
    let declared = plan
        .declared
        .map(|d| format!(" (declared {d})"))
        .unwrap_or_default();
    let mut out = format!("\nreversibility: {}{declared}\n", plan.reversibility);
    if plan.backups.is_empty() {
        out.push_str("backups needed: none (nothing is destroyed)\n");
        return out;
    }
    out.push_str(&backup_when(plan));
    for b in &plan.backups {
        let what = match &b.columns {
            Some(c) => format!("{} ({})", b.table, c.join(", ")),
            None => format!("{} (all columns)", b.table),
        };
        let rows = b
            .rows
            .as_ref()
            .map(|r| format!(", rows where {r}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {what}{rows}, for line {}: {}\n",
            b.line, b.reason
        ));
    }
    out
}

/// When the backup is taken, and what keeps its rows still: the SHARE
/// lock of [`plan::backup_locks`](crate::analysis::plan::backup_locks).
fn backup_when(plan: &Plan) -> String {
    if plan.backup_locks.is_empty() {
        return "backups needed before running\n".into();
    }
    format!(
        "backups needed, taken inside the migration's transaction before its first statement, under a SHARE lock on {} held until COMMIT (reads go on, writes wait)\n",
        plan.backup_locks.join(", ")
    )
}

/// Lint findings, then the ones a `keel:allow` silenced with its reason.
fn findings_text(plan: &Plan) -> String {
    let mut out = String::new();
    let active: Vec<_> = plan.findings.iter().filter(|f| f.is_active()).collect();
    if active.is_empty() {
        out.push_str("findings: none\n");
    } else {
        out.push_str("findings\n");
        for f in active {
            for line in f.render().lines() {
                out.push_str(&format!("  {line}\n"));
            }
        }
    }
    for f in plan.findings.iter().filter(|f| !f.is_active()) {
        out.push_str(&format!(
            "  allowed[{}] line {}: {}\n",
            f.rule,
            f.line,
            f.allowed.as_deref().unwrap_or_default()
        ));
    }
    out
}

/// The estimated time, the backfill after the statements, and the cost
/// model both came from.
fn time_text(plan: &Plan) -> String {
    let mut out = String::new();
    if let Some(ms) = plan.estimated_ms {
        out.push_str(&format!("\nestimated time: {}\n", human_ms(ms)));
    }
    if let Some(b) = &plan.backfill {
        let size = match (b.rows, b.batches, b.estimated_ms) {
            (Some(rows), Some(batches), Some(ms)) => format!(
                ": up to {} rows in {batches} batches of {}, {}",
                human_count(rows),
                b.batch_size,
                human_ms(ms)
            ),
            _ => format!(" in batches of {}", b.batch_size),
        };
        out.push_str(&format!(
            "backfill of {}{size}, after the statements and outside their transaction\n",
            b.table
        ));
    }
    if let Some(c) = &plan.coefficients {
        out.push_str(&format!("  ({c})\n"));
    }
    out
}

fn statement_text(n: usize, s: &PlanStatement, postgres: bool) -> String {
    let mut first = s.sql.lines().next().unwrap_or_default().to_string();
    if s.sql.lines().nth(1).is_some() {
        first.push_str(" …");
    }
    let mut out = format!("  {n}. line {}: {first}\n", s.line);
    if !postgres {
        return out;
    }
    let mut effects: Vec<String> = Vec::new();
    if s.locks.is_empty() {
        effects.push("no table lock".into());
    } else {
        let locks: Vec<String> = s
            .locks
            .iter()
            .map(|(t, l)| format!("{} on {t}", l.name()))
            .collect();
        effects.push(locks.join(", "));
    }
    match (&s.rewrite, &s.scan) {
        (Tri::Yes, _) => effects.push("rewrites the table".into()),
        (Tri::Depends(on), _) => effects.push(format!("may rewrite (depends on {on})")),
        (Tri::No, Tri::Yes) => effects.push("scans the table".into()),
        (Tri::No, Tri::Depends(on)) => effects.push(format!("may scan (depends on {on})")),
        (Tri::No, Tri::No) => {}
    }
    if s.destroys {
        effects.push("destroys data".into());
    }
    if s.no_transaction {
        effects.push("cannot run in a transaction".into());
    }
    out.push_str(&format!("     {}\n", effects.join("; ")));
    let tables: Vec<String> = s.tables.iter().filter_map(table_text).collect();
    if !tables.is_empty() {
        out.push_str(&format!("     {}\n", tables.join("; ")));
    }
    if let Some(e) = &s.estimate {
        out.push_str(&format!("     {} for {}\n", human_ms(e.ms), e.kind));
    }
    out
}

fn table_text(t: &TableSize) -> Option<String> {
    if t.new {
        return Some(format!("{}: new in this set, empty", t.name));
    }
    let (rows, bytes) = (t.rows?, t.bytes?);
    let indexes = match t.indexes {
        Some(1) => ", 1 index".to_string(),
        Some(n) => format!(", {n} indexes"),
        None => String::new(),
    };
    Some(format!(
        "{}: {} rows, {}{indexes}",
        t.name,
        human_count(rows),
        human_bytes(bytes as f64)
    ))
}
