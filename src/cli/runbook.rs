use super::Ctx;
use crate::analysis::split;
use crate::error::Result;
use crate::runbook::{Runbook, StatementInfo, path_for, render};
use std::path::Path;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The migration's version (or its full <version>_<name> id)
    pub version: String,
    /// Folder the runbook is written to
    #[arg(long, default_value = "runbooks")]
    pub dir: std::path::PathBuf,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let files = ctx.migrations()?;
    let m = super::find_migration(&files, &args.version)?;
    let statements = split(&m.up)
        .into_iter()
        .enumerate()
        .map(|(i, s)| StatementInfo {
            number: i + 1,
            line: s.line,
            sql: s.sql,
            lock: None,
            rewrite: false,
            scan: false,
            tables: vec![],
        })
        .collect();
    let runbook = Runbook::build(m, &files, &ctx.config, statements, vec![], vec![]);
    let text =
        render(Path::new("."), &runbook).map_err(|e| crate::error::Error::Usage(e.to_string()))?;
    std::fs::create_dir_all(&args.dir)?;
    let path = path_for(&args.dir, m);
    std::fs::write(&path, text)?;
    if ctx.out.json {
        ctx.out.json(&serde_json::json!({"version": m.version.to_string(), "path": path.display().to_string(), "checksum": m.checksum}));
    } else {
        ctx.out.data(&path.display().to_string());
    }
    Ok(())
}
