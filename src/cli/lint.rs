use super::{Ctx, Format};
use crate::analysis::PgVersion;
use crate::analysis::lint::{LintReport, lint_paths};
use crate::analysis::report;
use crate::error::{Error, Result};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Migration folders, migrations folders or .sql files (default: the migrations folder)
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Target PostgreSQL version for version-dependent rules: 15, 14.3, 11.0, 9.6
    #[arg(long, value_name = "N")]
    pub pg_version: Option<PgVersion>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let report = if args.paths.is_empty() {
        let dir = ctx.migrations_dir();
        if dir.exists() {
            lint_paths(&[dir], args.pg_version)?
        } else {
            ctx.out.progress(&format!(
                "no migrations folder at {}: nothing to lint",
                dir.display()
            ));
            LintReport::default()
        }
    } else {
        lint_paths(&args.paths, args.pg_version)?
    };
    match ctx.global.format {
        Format::Text => {
            let text = report::text(&report);
            ctx.out.data(&text);
        }
        Format::Json => ctx.out.json(&report::json(&report)),
        Format::Sarif => ctx.out.json(&report::sarif(&report)),
        Format::Github => {
            let text = report::github(&report);
            if !text.is_empty() {
                ctx.out.data(&text);
            }
        }
    }
    let errors = report.count(crate::analysis::finding::Severity::Error);
    if errors > 0 {
        return Err(Error::Check(format!(
            "lint found {errors} error{}; fix them or silence one with `-- keel:allow RULE reason=\"…\"` above the statement",
            if errors == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}
