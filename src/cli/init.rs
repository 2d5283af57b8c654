//! `keel init github`: the GitHub Actions workflow that checks a project's
//! migrations on every pull request (`.github/workflows/keel.yml`).

use super::Ctx;
use crate::error::{Error, Result};
use std::path::Path;

const WORKFLOW: &str = include_str!("../../templates/github/keel.yml");

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub(crate) what: What,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum What {
    /// Write .github/workflows/keel.yml: lint, keel test, runbook check and review comment on pull requests
    Github {
        /// The PostgreSQL major version of the service container (the one production runs)
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(12..=99))]
        postgres: u32,
        /// How the workflow installs keel
        #[arg(long, default_value = "cargo install --locked keel")]
        install: String,
        /// Replace an existing workflow
        #[arg(long)]
        force: bool,
    },
}

pub(crate) fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let What::Github {
        postgres,
        install,
        force,
    } = args.what;
    if install.contains('\n') || install.contains("${{") {
        return Err(Error::Usage(
            "--install must be one shell command line, without GitHub expressions".into(),
        ));
    }
    let migrations = ctx.migrations_dir();
    let dir = migrations
        .to_string_lossy()
        .trim_start_matches("./")
        .trim_end_matches('/')
        .to_string();
    if dir.is_empty() || dir.starts_with('/') || dir.contains("..") || dir.contains('"') {
        return Err(Error::Usage(format!(
            "the migrations folder {dir:?} must be a path inside the repository for the workflow's `paths:` filter\n  fix: set migrations_dir in keel.toml to a relative path"
        )));
    }
    let text = WORKFLOW
        .replace("{{MIGRATIONS}}", &dir)
        .replace("{{POSTGRES}}", &postgres.to_string())
        .replace("{{INSTALL}}", &install);
    let path = Path::new(".github/workflows/keel.yml");
    if path.exists() && !force {
        return Err(Error::Refused(format!(
            "{} exists; nothing was changed\n  fix: compare it with `keel init github --force` in a clean work tree (git shows the difference), or remove it",
            path.display()
        )));
    }
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    std::fs::write(path, text)?;
    ctx.out.data(&path.display().to_string());
    Ok(())
}
