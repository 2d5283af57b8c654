//! `keel execute V --env E`: the guarded run. Flags and printing only; the
//! run itself is [`crate::execute`].

use super::Ctx;
use crate::error::{Error, Result};
use crate::execute::confirm::{ConfirmError, Confirmer};
use crate::execute::{ExecuteError, Plan, Ui, execute, report};
use crate::record::Outcome;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The migration's version (or its full <version>_<name> id)
    pub version: String,
    /// The snapshot to rely on (default: the newest snapshots/<env>-*.dump)
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<PathBuf>,
    /// Pre-recorded checklist answers for CI: TOML, one `id = true` per item
    #[arg(long, value_name = "FILE")]
    pub answers: Option<PathBuf>,
    #[command(flatten)]
    pub pace: super::backfill::Pace,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let target = ctx.target();
    let (env_name, env) = target.guarded_environment()?;
    let settings = args.pace.apply(ctx.settings())?;
    let files = ctx.migrations()?;
    let m = crate::migration::find(&files, &args.version)?.clone();
    let confirmer = Confirmer::choose(
        env_name,
        env.confirm.as_deref(),
        ctx.global.yes,
        args.answers.as_deref(),
    )
    .map_err(|e| match e {
        ConfirmError::Refused(m) => Error::Refused(m),
        ConfirmError::Usage(m) => Error::Usage(m),
    })?;
    let mut db = ctx.connect().await?;
    let say = |line: &str| ctx.out.progress(line);
    let on_event = |e: crate::migrator::Event<'_>| ctx.print_event(e);
    let ui = Ui {
        say: &say,
        on_event: &on_event,
    };
    let plan = Plan {
        env_name,
        env,
        config: &ctx.config,
        files: &files,
        migration: &m,
        snapshot: args.snapshot,
        confirmer,
        settings,
        project: PathBuf::from("."),
    };
    let result = execute(db.as_mut(), plan, &ui).await;
    ctx.out.detail(
        ctx.global.verbose,
        &format!(
            "{} SQL statement(s) parsed in this run",
            crate::analysis::statements_parsed()
        ),
    );
    if let Err(ExecuteError::Stopped(m)) = result {
        // Stopped at once: the connection may be mid-statement, so it is
        // dropped, not closed politely; the server rolls back what is open.
        drop(db);
        return Err(Error::Stopped(m));
    }
    db.close().await;
    let finished = match result {
        Ok(f) => f,
        Err(ExecuteError::Stopped(m)) => return Err(Error::Stopped(m)),
        Err(ExecuteError::Refused(m)) => return Err(Error::Refused(m)),
        Err(ExecuteError::DryRun(m)) => return Err(Error::Check(m)),
        Err(ExecuteError::Db(e)) => return Err(Error::Db(e)),
        Err(ExecuteError::Unrecorded(m)) => return Err(Error::Other(anyhow::anyhow!(m))),
        Err(ExecuteError::Ended(f)) => {
            print(ctx, &f);
            let message = format!(
                "{}\n  record: {}\n  runbook: {}",
                f.problem.trim_end(),
                shown(&f.written.path),
                f.runbook.display()
            );
            return Err(if f.outcome == Outcome::RolledBack {
                Error::RolledBack(format!(
                    "{message}\n  keel rolled {} back; fix the cause, write a new migration or runbook, and run execute again",
                    m.id()
                ))
            } else {
                Error::Other(anyhow::anyhow!(message))
            });
        }
    };
    print(ctx, &finished);
    Ok(())
}

fn shown(p: &std::path::Path) -> String {
    p.strip_prefix(".").unwrap_or(p).display().to_string()
}

fn print(ctx: &Ctx, f: &crate::execute::Finished) {
    let rec = &f.record;
    let took = (rec.finished_at - rec.started_at).num_milliseconds().max(0) as u64;
    if ctx.out.json {
        ctx.out.json(&serde_json::json!({
            "outcome": rec.outcome,
            "migration": rec.migration.id,
            "environment": rec.environment,
            "record": shown(&f.written.path),
            "signature": f.written.signature.as_deref().map(shown),
            "runbook": f.runbook.display().to_string(),
            "steps": rec.steps,
            "duration_ms": took,
        }));
        return;
    }
    let signed = match (&f.written.signature, &rec.signer) {
        (Some(sig), Some(who)) => format!("signed by {who}: {}", shown(sig)),
        _ => "unsigned".into(),
    };
    ctx.out.data(&format!(
        "{} {} on {} in {}\nrecord:  {} ({signed})\nrunbook: {} (checklist ticked, execution record appended)\n",
        report::outcome_word(rec.outcome),
        rec.migration.id,
        rec.environment,
        report::ms(took),
        shown(&f.written.path),
        f.runbook.display()
    ));
}
