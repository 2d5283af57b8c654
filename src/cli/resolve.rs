use super::Ctx;
use crate::error::Result;
use crate::migration::Version;
use crate::migrator::Runner;

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("outcome").required(true).args(["applied", "reverted"]))]
pub(crate) struct Args {
    /// The failed migration's version
    pub(crate) version: Version,
    /// Every statement of it has now taken effect (finished by hand)
    #[arg(long)]
    pub(crate) applied: bool,
    /// None of it remains (undone by hand); it becomes pending again
    #[arg(long)]
    pub(crate) reverted: bool,
}

pub(crate) async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let files = ctx.migrations()?;
    let mut db = ctx.connect().await?;
    let on_event = |e: crate::migrator::Event<'_>| ctx.print_event(e);
    let mut runner = Runner {
        db: db.as_mut(),
        settings: ctx.settings(),
        operator: crate::migrator::operator(),
        on_event: &on_event,
        reach: None,
    };
    let result = runner.resolve(&files, args.version, args.applied).await;
    db.close().await;
    let resolved = result?;
    let file = if resolved.reverting {
        "down.sql"
    } else {
        "up.sql"
    };
    ctx.json(serde_json::json!({
        "version": args.version.to_string(),
        "state": resolved.state,
        "stopped_in": file,
    }));
    ctx.out.progress(&format!(
        "migration {} recorded as {} (it had stopped part-way through {file})",
        args.version,
        match resolved.state {
            "pending" => "reverted, pending again",
            "backfilling" => "applied; its backfill has not finished, `keel up` goes on with it",
            other => other,
        }
    ));
    if resolved.reverting && args.reverted {
        let note = files
            .iter()
            .find(|m| m.version == args.version)
            .and_then(|m| {
                crate::backup::unrestored_note(
                    std::path::Path::new("."),
                    m,
                    resolved.backup.as_ref(),
                )
            });
        if let Some(note) = note {
            ctx.out.progress(&format!("note: {note}"));
        }
    }
    Ok(())
}
