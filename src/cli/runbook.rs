use super::Ctx;
use crate::error::Result;
use crate::runbook::{Runbook, keep_history, path_for, render};
use std::path::Path;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The migration's version (or its full <version>_<name> id)
    pub(crate) version: String,
    /// Folder the runbook is written to
    #[arg(long, default_value = "runbooks")]
    pub(crate) dir: std::path::PathBuf,
}

pub(crate) async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let files = ctx.migrations()?;
    let m = crate::migration::find(&files, &args.version)?;
    let analysis = crate::analysis::analyze::Analyzer::offline(true).analyze(m);
    let sizes = crate::runbook::sizes::load_all(&args.dir, &ctx.config)
        .map_err(crate::error::Error::Usage)?;
    let runbook = Runbook::build(m, &files, &ctx.config, &analysis, &sizes);
    let text =
        render(Path::new("."), &runbook).map_err(|e| crate::error::Error::Usage(e.to_string()))?;
    std::fs::create_dir_all(&args.dir)?;
    let path = path_for(&args.dir, m);
    let text = match std::fs::read_to_string(&path) {
        Ok(old) => keep_history(&old, text, &m.checksum),
        Err(_) => text,
    };
    std::fs::write(&path, text)?;
    if ctx.out.json {
        ctx.json(serde_json::json!({"version": m.version.to_string(), "path": path.display().to_string(), "checksum": m.checksum}));
    } else {
        ctx.out.data(&path.display().to_string());
    }
    Ok(())
}
