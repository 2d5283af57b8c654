use super::Ctx;
use crate::analysis::estimate::calibrate::{DEFAULT_ROWS, calibrate};
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Rows in the scratch table (at least 10000)
    #[arg(long, default_value_t = DEFAULT_ROWS, value_parser = clap::value_parser!(u64).range(10_000..))]
    pub(crate) rows: u64,
}

pub(crate) async fn run(ctx: &Ctx, args: Args) -> Result<()> {
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
    db.close().await;
    let report = result?;
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
