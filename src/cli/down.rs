use super::Ctx;
use crate::error::Result;
use crate::migration::Version;
use crate::migrator::{Runner, down_targets, reconcile};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Revert exactly this migration; refused unless it is the newest applied
    #[arg(value_name = "VERSION", conflicts_with_all = ["steps", "to"])]
    pub(crate) version: Option<Version>,
    /// Revert this many migrations, newest first
    #[arg(long, conflicts_with = "to")]
    pub(crate) steps: Option<usize>,
    /// Revert every migration newer than this version (it stays applied); 0 reverts all
    #[arg(long, value_name = "VERSION", value_parser = parse_to)]
    pub(crate) to: Option<Version>,
    /// Print the down SQL that would run, in order, and change nothing
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Revert without putting back the data the migration's backup holds
    /// (the archive stays in backups/ for `keel restore`)
    #[arg(long)]
    pub(crate) no_restore: bool,
}

fn parse_to(s: &str) -> Result<Version, String> {
    if s == "0" { Ok(Version(0)) } else { s.parse() }
}

pub(crate) async fn run(ctx: &Ctx, mut args: Args) -> Result<()> {
    ctx.need_migrations_dir()?;
    let (files, mut db) = ctx.migrations_and_connect().await?;
    let entries = reconcile(&files, db.tracking_rows().await?);
    if let Err(e) = crate::migrator::check_to(&entries, args.to) {
        db.close().await;
        return Err(e.into());
    }
    if let Some(v) = args.version {
        if let Err(e) = crate::migrator::check_only(&entries, v) {
            db.close().await;
            return Err(crate::error::Error::Refused(e));
        }
        args.steps = Some(1);
    }
    if args.dry_run {
        let target = super::dry_run::Target::of(db.as_mut()).await;
        let live = target.live(db.as_mut()).await;
        db.close().await;
        let live = live?;
        let applied = down_targets(&entries, args.steps, args.to);
        super::dry_run::print(
            ctx,
            "down",
            &applied,
            |m| m.down.as_deref().unwrap_or("-- (no down.sql)"),
            target,
            live,
            &[],
        );
        return Ok(());
    }
    let on_event = |e: crate::migrator::Event<'_>| ctx.print_event(e);
    let mut runner = Runner {
        db: db.as_mut(),
        settings: ctx.settings(),
        operator: crate::migrator::operator(),
        on_event: &on_event,
        reach: None,
        alone: false,
    };
    let say = |line: &str| ctx.out.progress(line);
    let mut hook = crate::backup::BackupHook::new(".", ctx.environment(), &say);
    hook.no_restore = args.no_restore;
    let result = runner
        .down_with(&files, args.steps, args.to, &mut hook)
        .await;
    db.close().await;
    let reverted = result?;
    if ctx.out.json {
        ctx.json(serde_json::json!({ "reverted": ctx.reverted() }));
    } else if reverted.is_empty() {
        ctx.out.progress("nothing to revert");
    } else {
        ctx.out
            .progress(&format!("{} migration(s) reverted", reverted.len()));
    }
    let not_restored = ctx.doc.not_restored_list();
    if !not_restored.is_empty() {
        return Err(crate::error::Error::Check(format!(
            "{}\n  fix: make down.sql undo exactly what up.sql does, then `keel up` and `keel down` again; `keel test` checks every migration's round trip on a scratch database",
            not_restored.join("\n")
        )));
    }
    Ok(())
}
