use super::Ctx;
use crate::error::Result;
use crate::migration::Version;
use crate::migrator::{Runner, State, reconcile};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Revert this many migrations, newest first
    #[arg(long, conflicts_with = "to")]
    pub steps: Option<usize>,
    /// Revert every migration newer than this version (it stays applied); 0 reverts all
    #[arg(long, value_name = "VERSION", value_parser = parse_to)]
    pub to: Option<Version>,
    /// Print the down SQL that would run, in order, and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_to(s: &str) -> Result<Version, String> {
    if s == "0" { Ok(Version(0)) } else { s.parse() }
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let files = ctx.migrations()?;
    let mut db = ctx.connect().await?;
    if args.dry_run {
        let entries = reconcile(&files, db.tracking_rows().await?);
        let target = super::dry_run::Target::of(db.as_mut()).await;
        let live = target.live(db.as_mut()).await;
        db.close().await;
        let live = live?;
        let mut applied: Vec<_> = entries
            .iter()
            .rev()
            .filter(|e| matches!(e.state, State::Applied | State::Backfilling))
            .filter_map(|e| e.migration)
            .collect();
        match (args.steps, args.to) {
            (_, Some(to)) => applied.retain(|m| m.version > to),
            (n, None) => applied.truncate(n.unwrap_or(1)),
        }
        super::dry_run::print(
            ctx,
            "down",
            &applied,
            |m| m.down.as_deref().unwrap_or("-- (no down.sql)"),
            target,
            live,
        );
        return Ok(());
    }
    let on_event = |e: crate::migrator::Event<'_>| ctx.print_event(e);
    let mut runner = Runner {
        db: db.as_mut(),
        settings: ctx.settings(),
        operator: crate::migrator::operator(),
        on_event: &on_event,
    };
    let say = |line: &str| ctx.out.progress(line);
    let mut hook = crate::backup::BackupHook::new("backups", &say);
    let result = runner
        .down_with(&files, args.steps, args.to, &mut hook)
        .await;
    db.close().await;
    let reverted = result?;
    if ctx.out.json {
        ctx.out.json(&serde_json::json!({
            "reverted": reverted.iter().map(|m| serde_json::json!({"version": m.version.to_string(), "name": m.name})).collect::<Vec<_>>()
        }));
    } else if reverted.is_empty() {
        ctx.out.progress("nothing to revert");
    } else {
        ctx.out
            .progress(&format!("{} migration(s) reverted", reverted.len()));
    }
    Ok(())
}
