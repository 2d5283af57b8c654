use super::Ctx;
use crate::error::Result;
use crate::inspect::inspect;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// TABLE or TABLE.COLUMN; all tables when omitted
    pub(crate) target: Option<String>,
}

pub(crate) async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let mut db = ctx.connect().await?;
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
