use super::Ctx;
use crate::error::Result;
use crate::inspect::{digest, inspect};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// TABLE or TABLE.COLUMN; all tables when omitted
    pub(crate) target: Option<String>,
    /// Print the schema's fingerprint: every object (table, column,
    /// constraint, index, trigger, view, sequence, type, function, grant…)
    /// as one line, sorted, to compare two databases with diff
    #[arg(long, conflicts_with = "target")]
    pub(crate) schema: bool,
    /// Print each table's row count and a digest of its rows (independent
    /// of row and column order), one line per table, to compare data
    #[arg(long)]
    pub(crate) digest: bool,
}

pub(crate) async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    if args.schema {
        return schema(ctx).await;
    }
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

/// `keel inspect --schema`: the fingerprint's lines, or with `--format
/// json` its objects by key and its digest.
async fn schema(ctx: &Ctx) -> Result<()> {
    let mut db = ctx.connect().await?;
    let result = db.fingerprint(&crate::db::Scope::All).await;
    db.close().await;
    let fingerprint = result?;
    if ctx.out.json {
        let mut body = serde_json::to_value(&fingerprint).map_err(anyhow::Error::from)?;
        body["digest"] = fingerprint.digest().into();
        ctx.json(body);
    } else if fingerprint.is_empty() {
        ctx.out.progress("no schema objects in this database yet");
    } else {
        let mut text = String::new();
        for line in fingerprint.lines() {
            text.push_str(line);
            text.push('\n');
        }
        ctx.out.data(&text);
    }
    Ok(())
}
