//! `keel execute V --env E`: the guarded run. Flags and printing only; the
//! run itself is [`crate::execute`].

use super::Ctx;
use crate::error::Result;
use crate::execute::confirm::Confirmer;
use crate::execute::{ExecuteError, Request, Ui, execute, report};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The migration's version (or its full <version>_<name> id)
    pub(crate) version: String,
    /// The snapshot to rely on (default: the newest snapshots/<env>-*.dump)
    #[arg(long, value_name = "FILE")]
    pub(crate) snapshot: Option<PathBuf>,
    /// Pre-recorded checklist answers for CI: TOML, one `id = true` per item
    #[arg(long, value_name = "FILE")]
    pub(crate) answers: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) pace: super::backfill::Pace,
}

pub(crate) async fn run(ctx: &Ctx, args: Args) -> Result<()> {
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
    )?;
    let mut db = ctx.connect().await?;
    let say = |line: &str| ctx.out.progress(line);
    let on_event = |e: crate::migrator::Event<'_>| ctx.print_event(e);
    let ui = Ui {
        say: &say,
        on_event: &on_event,
    };
    let request = Request {
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
    let result = execute(db.as_mut(), request, &ui).await;
    ctx.out.detail(
        ctx.global.verbose,
        &format!(
            "{} SQL statement(s) parsed in this run",
            crate::analysis::statements_parsed()
        ),
    );
    if let Err(e @ ExecuteError::Stopped(_)) = result {
        // Stopped at once: the connection may be mid-statement, so it is
        // dropped, not closed politely; the server rolls back what is open.
        drop(db);
        return Err(e.into());
    }
    db.close().await;
    let finished = match result {
        Ok(f) => f,
        Err(ExecuteError::Ended(f)) => {
            print(ctx, &f);
            return Err(ExecuteError::Ended(f).into());
        }
        Err(e) => return Err(e.into()),
    };
    print(ctx, &finished);
    Ok(())
}

fn shown(p: &std::path::Path) -> String {
    crate::execute::shown(p)
}

fn print(ctx: &Ctx, f: &crate::execute::Finished) {
    let rec = &f.record;
    let took = (rec.finished_at - rec.started_at).num_milliseconds().max(0) as u64;
    if ctx.out.json {
        ctx.json(serde_json::json!({
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
    let annotated = if f.outcome == crate::record::Outcome::Applied {
        "checklist ticked, execution record appended"
    } else {
        "execution record appended: it says what happened and which checklist items still hold"
    };
    ctx.out.data(&format!(
        "{} {} on {} in {}\nrecord:  {} ({signed})\nrunbook: {} ({annotated})\n",
        report::outcome_word(rec.outcome),
        rec.migration.id,
        rec.environment,
        report::ms(took),
        shown(&f.written.path),
        f.runbook.display()
    ));
}
