use super::Ctx;
use crate::error::Result;
use crate::migration::Version;
use crate::migrator::{Runner, reconcile};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Apply pending migrations up to and including this version
    #[arg(long, value_name = "VERSION")]
    pub(crate) to: Option<Version>,
    /// Print what would run, in order, and change nothing
    #[arg(long)]
    pub(crate) dry_run: bool,
    #[command(flatten)]
    pub(crate) pace: super::backfill::Pace,
}

pub(crate) async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let settings = args.pace.apply(ctx.settings())?;
    let (files, mut db) = ctx.migrations_and_connect().await?;
    let entries = reconcile(&files, db.tracking_rows().await?);
    if let Err(e) = crate::migrator::check_to(&entries, args.to) {
        db.close().await;
        return Err(e.into());
    }
    if args.dry_run {
        let pending = crate::migrator::pending(&entries, args.to);
        let target = super::dry_run::Target::of(db.as_mut()).await;
        let live = target.live(db.as_mut()).await;
        let backups = match &live {
            Ok(_) => crate::backup::describe(db.as_mut(), &pending).await,
            Err(_) => Ok(Vec::new()),
        };
        db.close().await;
        let (live, backups) = (live?, backups?);
        super::dry_run::print(
            ctx,
            "up",
            &pending,
            |m| m.up.as_str(),
            target,
            live,
            &backups,
        );
        return Ok(());
    }
    let on_event = |e: crate::migrator::Event<'_>| ctx.print_event(e);
    let mut runner = Runner {
        db: db.as_mut(),
        settings,
        operator: crate::migrator::operator(),
        on_event: &on_event,
        reach: None,
    };
    let say = |line: &str| ctx.out.progress(line);
    let mut hook = crate::backup::BackupHook::new(".", ctx.environment(), &say);
    let result = runner.up_with(&files, args.to, &mut hook).await;
    db.close().await;
    let applied = result?;
    if ctx.out.json {
        // The runner's events list what it applied, with when and how long:
        // the same list a failed run's document gives.
        ctx.json(serde_json::json!({ "applied": ctx.applied() }));
    } else if applied.is_empty() {
        ctx.out
            .progress("nothing to apply: the database is up to date");
    } else {
        ctx.out
            .progress(&format!("{} migration(s) applied", applied.len()));
    }
    Ok(())
}
