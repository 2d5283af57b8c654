use super::{Ctx, Format};
use crate::analysis::lint::{LintReport, lint_paths};
use crate::analysis::report;
use crate::analysis::{LiveSchema, PgVersion};
use crate::error::{Error, Result};
use std::path::PathBuf;
use std::sync::Arc;

/// Live mode, only when a database was named: `--database-url`, `--env`
/// or `$DATABASE_URL` (never the embedded default). One named on the
/// command line must answer; `$DATABASE_URL` set for other tools may not,
/// and then lint reads the files alone and says so.
async fn live_schema(ctx: &Ctx) -> Result<(Option<Arc<LiveSchema>>, Option<PgVersion>)> {
    let explicit = ctx.target().named();
    if !ctx.target().given() {
        return Ok((None, None));
    }
    let loaded = async {
        let mut db = ctx.connect().await?;
        let version = db.postgres_version().await?.map(PgVersion::from_num);
        let live = LiveSchema::load(db.as_mut(), &crate::db::Scope::All).await;
        db.close().await;
        Ok::<_, Error>((live?.map(Arc::new), version))
    };
    match loaded.await {
        Ok(found) => Ok(found),
        Err(e) if !explicit => {
            ctx.out.progress(&format!(
                "note: $DATABASE_URL did not answer ({}); linting the files alone",
                e.to_string().lines().next().unwrap_or_default()
            ));
            Ok((None, None))
        }
        Err(e) => Err(e),
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Migration folders, migrations folders or .sql files (default: the migrations folder)
    #[arg(value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
    /// Target PostgreSQL version for version-dependent rules: 15, 14.3, 11.0, 9.6
    #[arg(long, value_name = "N")]
    pub(crate) pg_version: Option<PgVersion>,
    /// Only the migrations added or changed since this git ref (its merge
    /// base with HEAD, the work tree included): adopting keel on a long
    /// history, the old files' findings stay out of the way
    #[arg(long, value_name = "REF", conflicts_with = "paths")]
    pub(crate) since: Option<String>,
    /// How plain .sql files run (in a transaction or not; up and down
    /// sections): read from each file's name and markers unless given
    #[arg(long, value_enum, value_name = "TOOL")]
    pub(crate) layout: Option<crate::analysis::layout::Layout>,
}

pub(crate) async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let (live, server_version) = live_schema(ctx).await?;
    let version = args.pg_version.or(server_version);
    let report = if let Some(since) = &args.since {
        let dir = ctx.migrations_dir();
        let changed = crate::review::changed::changes(std::path::Path::new("."), &dir, Some(since))
            .map_err(super::usage)?
            .ok_or_else(|| {
                super::usage(format!(
                    "--since {since} compares with git, and this folder is not in a git work tree\n  fix: run it in the project's repository, or name the files to lint"
                ))
            })?;
        let folders: Vec<PathBuf> = changed
            .folders
            .iter()
            .filter(|(_, c)| **c != crate::review::changed::Change::Removed)
            .map(|(name, _)| dir.join(name))
            .filter(|p| p.is_dir())
            .collect();
        ctx.out.progress(&format!(
            "{} migration(s) added or changed since {since} (merge base {})",
            folders.len(),
            changed.merge_base
        ));
        if folders.is_empty() {
            LintReport::default()
        } else {
            lint_paths(&folders, (version, args.layout), live, &ctx.bounds()?)?
        }
    } else if args.paths.is_empty() {
        let dir = ctx.migrations_dir();
        let bounds = ctx.bounds()?;
        // Not named on the command line: held to the project like `keel up`.
        if let Err(r) = bounds.check(&dir, crate::migration::bounds::Kind::Folder) {
            return Err(super::usage(format!(
                "{}: {}\n  fix: {}",
                dir.display(),
                r.message,
                r.fix
            )));
        }
        if dir.exists() {
            lint_paths(&[dir], (version, args.layout), live, &bounds)?
        } else {
            ctx.out.progress(&format!(
                "no migrations folder at {}: nothing to lint",
                dir.display()
            ));
            LintReport::default()
        }
    } else {
        lint_paths(&args.paths, (version, args.layout), live, &ctx.bounds()?)?
    };
    let mut report = report;
    policy(ctx)?.apply(&mut report);
    match ctx.global.format {
        // run() refuses junit for lint before it gets here.
        Format::Text | Format::Junit => {
            let text = report::text(&report);
            ctx.out.data(&text);
        }
        Format::Json => ctx.json(report::json(&report)),
        Format::Sarif => ctx.json(report::sarif(&report)),
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

/// keel.toml's `[lint]`, its rule names checked.
fn policy(ctx: &Ctx) -> Result<crate::analysis::lint_policy::LintPolicy> {
    let l = &ctx.config.lint;
    let severity: Vec<(String, String)> = l.severity.clone().into_iter().collect();
    let paths: Vec<(String, Vec<String>)> = l
        .paths
        .iter()
        .map(|p| (p.prefix.clone(), p.disable.clone()))
        .collect();
    crate::analysis::lint_policy::LintPolicy::new(&l.disable, &severity, &paths).map_err(|e| {
        super::usage(format!(
            "keel.toml [lint]: {e}\n  fix: correct the rule name or level in keel.toml"
        ))
    })
}
