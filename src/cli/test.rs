use super::{Ctx, Format};
use crate::error::{Error, Result};
use crate::migration::Version;
use crate::roundtrip::data::{FIXTURES_DIR, Fixtures};
use crate::roundtrip::scratch::Scratch;
use crate::roundtrip::{Outcome, report, trip};
use std::collections::BTreeSet;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Test only these migrations (the ones before them are applied, not tested); default all
    #[arg(value_name = "VERSION")]
    pub(crate) versions: Vec<Version>,
    /// Generated rows for each table that is empty before a migration
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub(crate) rows: u32,
    /// Also write the JUnit XML report to this file
    #[arg(long, value_name = "FILE")]
    pub(crate) junit: Option<PathBuf>,
}

/// The server to make the scratch database on: `--database-url`, else
/// `--env`'s database through keel.toml; never `$DATABASE_URL` or the
/// default database, which may be someone's real one.
fn server(ctx: &Ctx) -> Result<Option<String>> {
    match (&ctx.global.database_url, &ctx.global.env) {
        (Some(url), _) => Ok(Some(url.clone())),
        (None, Some(_)) => Ok(Some(ctx.target().url()?)),
        (None, None) => Ok(None),
    }
}

pub(crate) async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let files = ctx.migrations()?;
    for v in &args.versions {
        if !files.iter().any(|m| m.version == *v) {
            return Err(Error::Usage(format!(
                "no migration {v} in {}\n  fix: `keel status` lists the versions",
                ctx.migrations_dir().display()
            )));
        }
    }
    let fixtures = Fixtures::read(std::path::Path::new(FIXTURES_DIR), &files)?;
    let scratch = Scratch::make(server(ctx)?.as_deref()).await?;
    let about = scratch.about.clone();
    ctx.out.progress(&format!("keel test on {about}"));
    let result = round_trips(ctx, &args, &files, fixtures, &scratch.url).await;
    let removed = scratch.remove().await;
    let outcomes = result?;
    removed?;
    let asked = if args.versions.is_empty() {
        files.len()
    } else {
        args.versions.len()
    };
    let summary = report::summary(&outcomes, asked);
    if let Some(path) = &args.junit {
        let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
        report::junit(&outcomes, &mut file)?;
        std::io::Write::flush(&mut file)?;
    }
    match ctx.global.format {
        Format::Json => ctx.json(serde_json::json!({
            "ok": !outcomes.iter().any(Outcome::failed),
            "database": about,
            "migrations": outcomes,
        })),
        Format::Junit => {
            let mut stdout = std::io::stdout().lock();
            report::junit(&outcomes, &mut stdout)?;
            std::io::Write::flush(&mut stdout)?;
        }
        _ => {}
    }
    ctx.out.progress(&summary);
    if outcomes.iter().any(Outcome::failed) || outcomes.len() < asked {
        return Err(Error::Check(format!(
            "the round trip failed: {}\n  fix: see each migration's lines above",
            summary.lines().last().unwrap_or_default()
        )));
    }
    Ok(())
}

async fn round_trips(
    ctx: &Ctx,
    args: &Args,
    files: &[crate::migration::Migration],
    fixtures: Fixtures,
    url: &str,
) -> Result<Vec<Outcome>> {
    let backups = tempfile::Builder::new()
        .prefix("keel-test-backups-")
        .tempdir()?;
    let mut db = crate::db::connect(url).await?;
    let text = ctx.global.format == Format::Text;
    let show = |o: &Outcome| {
        let lines = report::text(o);
        if text {
            ctx.out.data(&lines);
        } else {
            ctx.out.progress(lines.trim_end());
        }
    };
    let plan = trip::Plan {
        files,
        only: args.versions.iter().copied().collect::<BTreeSet<_>>(),
        fixtures,
        rows: args.rows,
        backups: backups.path(),
        // The round trip compares the schema itself, before and after, on
        // a database it drops afterwards.
        settings: crate::migrator::RunSettings {
            keep_schema: false,
            throwaway: true,
            ..ctx.settings()
        },
        on_outcome: &show,
    };
    let result = trip::run(db.as_mut(), &plan).await;
    db.close().await;
    Ok(result?)
}
