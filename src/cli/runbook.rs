use super::Ctx;
use crate::error::Result;
use crate::runbook::{Runbook, path_for, render};
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
    let analysis = crate::analysis::analyze::Analyzer::offline(true).analyze(m);
    let runbook = Runbook::build(m, &files, &ctx.config, &analysis);
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
        ctx.out.json(&serde_json::json!({"version": m.version.to_string(), "path": path.display().to_string(), "checksum": m.checksum}));
    } else {
        ctx.out.data(&path.display().to_string());
    }
    Ok(())
}

/// A runbook rendered again keeps what runs wrote into the old one: the
/// execution-record sections (the records bind them), and, when the
/// migration is the one those runs followed, the ticked items.
fn keep_history(old: &str, rendered: String, checksum: &str) -> String {
    let sections = crate::runbook::binding::sections(old);
    let same = crate::runbook::marker(old).is_some_and(|m| m.checksum == checksum);
    let ticked: Vec<String> = if same {
        crate::runbook::annotate::checklist(old)
            .into_iter()
            .filter(|i| i.checked)
            .filter_map(|i| i.id)
            .collect()
    } else {
        Vec::new()
    };
    if sections.is_empty() && ticked.is_empty() {
        return rendered;
    }
    let ticks: Vec<&str> = ticked.iter().map(String::as_str).collect();
    if sections.is_empty() {
        return crate::runbook::annotate::tick(&rendered, &ticks);
    }
    crate::runbook::annotate::annotate(&rendered, &ticks, &sections.join("\n\n"))
}
