use super::Ctx;
use crate::analysis::estimate::calibrate::{DEFAULT_ROWS, calibrate};
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Rows in the scratch table (at least 10000)
    #[arg(long, default_value_t = DEFAULT_ROWS, value_parser = clap::value_parser!(u64).range(10_000..))]
    pub(crate) rows: u64,
    /// Also keep the environment's table sizes and these coefficients in
    /// runbooks/sizes/<env>.json for its runbooks' expected times (needs --env)
    #[arg(long)]
    pub(crate) save: bool,
    /// Folder of the runbooks the sizes are kept beside
    #[arg(long, default_value = "runbooks", requires = "save")]
    pub(crate) runbooks: std::path::PathBuf,
}

pub(crate) async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    if args.save && ctx.target().env().is_none() {
        return Err(super::usage(
            "--save keeps the sizes of an environment of keel.toml: give it with --env NAME",
        ));
    }
    let mut db = ctx.connect().await?;
    if db.postgres_version().await?.is_none() {
        let name = db.dialect_name();
        db.close().await;
        return Err(super::usage(format!(
            "keel calibrate times PostgreSQL's rewrites, index builds and scans; {name} has none to time\n  fix: point --database-url or --env at a PostgreSQL server"
        )));
    }
    let url = db.display_url().to_string();
    ctx.out.progress(&format!(
        "calibrating {url}: a scratch table of {} rows in a scratch schema, dropped afterwards",
        args.rows
    ));
    let progress = |step: &str| ctx.out.progress(&format!("  {step}…"));
    let result = calibrate(db.as_mut(), args.rows, &progress).await;
    // The sizes are read after the coefficients are stored, so they carry them.
    let kept = match (&result, args.save) {
        (Ok(_), true) => Some(
            async {
                let target = super::dry_run::Target::of(db.as_mut()).await;
                let live = target.live(db.as_mut()).await?;
                let dependents = db.dependents().await?;
                Ok::<_, crate::db::DbError>((target, live, dependents))
            }
            .await,
        ),
        _ => None,
    };
    db.close().await;
    let report = result?;
    if let Some(kept) = kept {
        let (target, live, dependents) = kept?;
        super::plan::keep_sizes(ctx, &args.runbooks, target, live.as_deref(), dependents)?;
    }
    if ctx.out.json {
        ctx.json(serde_json::json!(report));
        return Ok(());
    }
    let mut text = format!(
        "calibrated {url} on {} rows ({} heap)\n",
        report.rows,
        crate::analysis::live::human_bytes(report.heap_bytes as f64)
    );
    for m in &report.measurements {
        text.push_str(&format!(
            "  {:<26} {:>9}  {}\n",
            m.step,
            crate::cli::output::millis(std::time::Duration::from_secs_f64(m.ms / 1000.0)),
            m.gives
        ));
    }
    text.push_str(
        "stored in keel_calibration: keel plan, up --dry-run and lint use it for this database\n",
    );
    ctx.out.data(&text);
    Ok(())
}
