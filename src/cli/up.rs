use super::Ctx;
use crate::error::Result;
use crate::migration::Version;
use crate::migrator::{Runner, reconcile};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Apply pending migrations up to and including this version
    #[arg(long, value_name = "VERSION")]
    pub(crate) to: Option<Version>,
    /// Apply up to and including this version, past migrations that wait
    /// for a deploy (`requires_deploy`): the deploys they name are live
    #[arg(long, value_name = "VERSION", conflicts_with = "to")]
    pub(crate) through: Option<Version>,
    /// Print what would run, in order, and change nothing
    #[arg(long)]
    pub(crate) dry_run: bool,
    #[command(flatten)]
    pub(crate) pace: super::backfill::Pace,
}

pub(crate) async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let settings = args.pace.apply(ctx.settings())?;
    ctx.need_migrations_dir()?;
    let (files, mut db) = ctx.migrations_and_connect().await?;
    let entries = reconcile(&files, db.tracking_rows().await?);
    if let Err(e) = super::import::refuse_foreign(db.as_mut(), &entries).await {
        db.close().await;
        return Err(e);
    }
    let checked = crate::migrator::check_to(&entries, args.to)
        .and_then(|()| crate::migrator::check_target(&entries, "--through", args.through));
    if let Err(e) = checked {
        db.close().await;
        return Err(e.into());
    }
    let waiting = crate::migrator::waiting(&entries, args.to.or(args.through), args.through);
    // What comes before the first waiting migration runs; it does not.
    let to = match waiting {
        // Version 0 waits: nothing comes before it (and a wrapped 0 - 1
        // would apply everything, the waiting one included).
        Some(w) => match w.version.0.checked_sub(1) {
            Some(v) => Some(Version(v)),
            None => {
                db.close().await;
                return finish(ctx, &[], waiting);
            }
        },
        None => args.to.or(args.through),
    };
    if args.dry_run {
        let pending = crate::migrator::pending(&entries, to);
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
        if let Some(w) = waiting {
            ctx.out.notice(&stops_before(w));
        }
        return Ok(());
    }
    // The runner reconciles again under its run lock; this copy, one entry
    // per migration, need not live through the run.
    drop(entries);
    let on_event = |e: crate::migrator::Event<'_>| ctx.print_event(e);
    let mut runner = Runner {
        db: db.as_mut(),
        settings,
        operator: crate::migrator::operator(),
        on_event: &on_event,
        reach: None,
        alone: false,
    };
    let say = |line: &str| ctx.out.progress(line);
    let mut hook = crate::backup::BackupHook::new(".", ctx.environment(), &say);
    let result = runner.up_with(&files, to, &mut hook).await;
    db.close().await;
    finish(ctx, &result?, waiting)
}

/// What `keel up` says at the end: what it applied, and the migration it
/// stopped before, if any.
fn finish(
    ctx: &Ctx,
    applied: &[&crate::migration::Migration],
    waiting: Option<&crate::migration::Migration>,
) -> Result<()> {
    if let (true, Some(w)) = (ctx.out.json, waiting) {
        ctx.out.notice(&stops_before(w));
    }
    if ctx.out.json {
        // The runner's events list what it applied, with when and how long:
        // the same list a failed run's document gives.
        ctx.json(serde_json::json!({
            "applied": ctx.applied(),
            "waiting": waiting.map(|w| serde_json::json!({
                "version": w.version.to_string(),
                "name": w.name,
                "requires_deploy": w.meta.requires_deploy,
                "then": format!("keel up --through {}", w.version),
            })),
        }));
        return Ok(());
    }
    match (applied.len(), waiting) {
        (0, None) => ctx
            .out
            .progress("nothing to apply: the database is up to date"),
        (n, None) => ctx.out.progress(&format!("{n} migration(s) applied")),
        (n, Some(w)) => ctx
            .out
            .notice(&format!("{n} migration(s) applied; {}", stops_before(w))),
    }
    Ok(())
}

/// Why `keel up` stopped before `w`, and how to go on once the deploy it
/// waits for is live.
fn stops_before(w: &crate::migration::Migration) -> String {
    format!(
        "stopped before {}: it waits for a deploy: {}\n  then: once that is live everywhere, `keel up --through {}`",
        w.id(),
        w.meta.requires_deploy.as_deref().unwrap_or_default(),
        w.version
    )
}
