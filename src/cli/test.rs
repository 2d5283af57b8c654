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
    let mut report = Report::new(ctx, &args)?;
    let result = round_trips(ctx, &args, (&files, fixtures), &scratch.url, &mut report).await;
    let removed = scratch.remove().await;
    let tally = result?;
    removed?;
    let asked = if args.versions.is_empty() {
        files.len()
    } else {
        args.versions.len()
    };
    let summary = report::summary(&tally, asked);
    report.finish(ctx, &args, about)?;
    ctx.out.progress(&summary);
    let mut failures = Vec::new();
    if !tally.failed.is_empty() {
        failures.push(format!(
            "{} of {asked} migration(s) failed the round trip: {}",
            tally.failed.len(),
            tally.failed.join(", ")
        ));
    }
    if tally.tested < asked {
        failures.push(format!("{} not reached", asked - tally.tested));
    }
    if !failures.is_empty() {
        return Err(Error::Check(format!(
            "{}\n  fix: see each migration's lines above",
            failures.join("; ")
        )));
    }
    Ok(())
}

/// The reports asked for besides the text lines, written as the outcomes
/// come: the JUnit testcases to a temporary file; the outcomes themselves
/// kept only for the JSON document, which holds them all.
struct Report {
    junit: Option<report::Junit>,
    json: Option<Vec<Outcome>>,
    /// The first error writing the JUnit testcases (a full disk).
    failed: Option<std::io::Error>,
}

impl Report {
    fn new(ctx: &Ctx, args: &Args) -> Result<Report> {
        let junit = args.junit.is_some() || ctx.global.format == Format::Junit;
        Ok(Report {
            junit: junit.then(report::Junit::new).transpose()?,
            json: (ctx.global.format == Format::Json).then(Vec::new),
            failed: None,
        })
    }

    fn add(&mut self, o: &Outcome) {
        if let Some(j) = &mut self.junit
            && let Err(e) = j.add(o)
        {
            self.failed.get_or_insert(e);
        }
        if let Some(all) = &mut self.json {
            all.push(o.clone());
        }
    }

    fn finish(self, ctx: &Ctx, args: &Args, about: String) -> Result<()> {
        if let Some(e) = self.failed {
            return Err(e.into());
        }
        if let Some(mut junit) = self.junit {
            if let Some(path) = &args.junit {
                let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
                junit.write_to(&mut file)?;
                std::io::Write::flush(&mut file)?;
            }
            if ctx.global.format == Format::Junit {
                let mut stdout = std::io::stdout().lock();
                junit.write_to(&mut stdout)?;
                std::io::Write::flush(&mut stdout)?;
            }
        }
        if let Some(outcomes) = self.json {
            ctx.json(serde_json::json!({
                "ok": !outcomes.iter().any(Outcome::failed),
                "database": about,
                "migrations": outcomes,
            }));
        }
        Ok(())
    }
}

async fn round_trips(
    ctx: &Ctx,
    args: &Args,
    (files, fixtures): (&[crate::migration::Migration], Fixtures),
    url: &str,
    report: &mut Report,
) -> Result<trip::Tally> {
    let backups = tempfile::Builder::new()
        .prefix("keel-test-backups-")
        .tempdir()?;
    let mut db = crate::db::connect(url).await?;
    let text = ctx.global.format == Format::Text;
    let report = std::cell::RefCell::new(report);
    let show = |o: &Outcome| {
        let lines = report::text(o);
        if text {
            ctx.out.data(&lines);
        } else {
            ctx.out.progress(lines.trim_end());
        }
        report.borrow_mut().add(o);
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
