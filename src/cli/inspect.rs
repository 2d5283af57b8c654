use super::Ctx;
use crate::error::Result;
use crate::inspect::{digest, inspect};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// TABLE or TABLE.COLUMN; all tables when omitted
    pub(crate) target: Option<String>,
    /// Print each table's row count and a digest of its rows (independent
    /// of row and column order), one line per table, to compare data
    #[arg(long)]
    pub(crate) digest: bool,
}

pub(crate) async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let mut db = ctx.connect().await?;
    if args.digest {
        let result = digest::digests(db.as_mut(), args.target.as_deref()).await;
        db.close().await;
        let contents = result?;
        if ctx.out.json {
            ctx.json(serde_json::json!({ "tables": contents }));
        } else {
            ctx.out.data(&digest::to_text(&contents));
        }
        return Ok(());
    }
    let result = inspect(db.as_mut(), args.target.as_deref()).await;
    db.close().await;
    let report = result?;
    if ctx.out.json {
        ctx.json(serde_json::to_value(&report).map_err(anyhow::Error::from)?);
    } else {
        ctx.out.data(&report.to_text());
    }
    Ok(())
}
