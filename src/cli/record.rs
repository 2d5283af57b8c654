//! `keel record verify FILE` and `keel record verify --all`.
//!
//! There is no command that writes a record by hand: a record exists only
//! because `execute` ran, and it is registered in the database it ran on.

use super::Ctx;
use crate::db::Database;
use crate::error::{Error, Result};
use crate::record::{self, AllowedSigners, RecordError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Records live in `records/` of the project.
const DIR: &str = "records";

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub(crate) command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Sub {
    /// Check a record (signature, place, hash chain, runbook, and against its environment's database), or --all of them
    Verify {
        /// records/<version>_<name>/<env>-<stamp>.json
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        file: Option<PathBuf>,
        /// Every record of every environment (only --env's with --env), each chain end to end
        #[arg(long)]
        all: bool,
        /// ssh-keygen's allowed_signers file (default: allowed_signers in keel.toml, else ./allowed_signers)
        #[arg(long, value_name = "FILE")]
        allowed_signers: Option<PathBuf>,
    },
}

pub(crate) async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let Sub::Verify {
        file,
        all,
        allowed_signers,
    } = args.command;
    let path = allowed_signers
        .or_else(|| ctx.config.allowed_signers.clone())
        .unwrap_or_else(|| PathBuf::from("allowed_signers"));
    let allowed = AllowedSigners::load(&path)?;
    match file {
        Some(file) if !all => verify_one(ctx, &file, &allowed).await,
        _ => verify_all(ctx, &allowed).await,
    }
}

async fn verify_one(ctx: &Ctx, file: &Path, allowed: &AllowedSigners) -> Result<()> {
    let env = record::read(file)?.environment;
    let mut db = ctx.target().connect_environment(&env).await?;
    let result = record::verify(
        file,
        allowed,
        match db.as_mut() {
            Ok(d) => Ok(d.as_mut() as &mut dyn Database),
            Err(why) => Err(why.clone()),
        },
    )
    .await;
    if let Ok(d) = db {
        d.close().await;
    }
    let v = result?;
    if ctx.out.json {
        ctx.json(serde_json::json!({
            "path": v.path, "ok": true, "signer": v.signer, "fingerprint": v.fingerprint,
            "environment": v.record.environment, "sequence": v.record.sequence,
            "migration": v.record.migration.id, "outcome": v.record.outcome,
            "chain": v.chain, "checks": v.checks,
        }));
        return Ok(());
    }
    let mut text = format!(
        "ok {}\n  signed by {} ({}), namespace {}\n  record #{} of {}: {} {}; in its migration's folder under its environment's name; hash chain intact back to #1 ({} earlier record(s))",
        v.path.display(),
        v.signer,
        v.fingerprint,
        record::NAMESPACE,
        v.record.sequence,
        v.record.environment,
        v.record.migration.id,
        v.record.outcome.as_str(),
        v.chain.len()
    );
    for c in &v.checks {
        text.push_str(&format!("\n  {}", c.what));
    }
    ctx.out.data(&text);
    Ok(())
}

async fn verify_all(ctx: &Ctx, allowed: &AllowedSigners) -> Result<()> {
    let records_dir = Path::new(DIR);
    let envs = match ctx.target().env() {
        Some(e) => vec![e.to_string()],
        None => record::chain_environments(records_dir),
    };
    let mut dbs = BTreeMap::new();
    for env in envs {
        let db = ctx.target().connect_environment(&env).await?;
        dbs.insert(env, db);
    }
    let result = record::verify_all(records_dir, allowed, &mut dbs).await;
    for (_, db) in dbs {
        if let Ok(d) = db {
            d.close().await;
        }
    }
    let reports = result?;
    let failed: usize = reports.iter().map(|r| r.problems.len()).sum();
    if ctx.out.json {
        ctx.json(serde_json::json!({ "ok": failed == 0, "environments": reports }));
    } else {
        let mut text = String::new();
        for r in &reports {
            if r.environment.is_empty() {
                for p in &r.problems {
                    text.push_str(&format!("FAILED {p}\n"));
                }
                continue;
            }
            if r.problems.is_empty() {
                text.push_str(&format!(
                    "ok `{}`: {} record(s), each signed by an allowed signer, in its place, with its runbook as the run left it; one chain from #1 to #{}\n",
                    r.environment, r.records, r.records
                ));
            } else {
                text.push_str(&format!(
                    "FAILED `{}`: {} record(s)\n",
                    r.environment, r.records
                ));
                for p in &r.problems {
                    text.push_str(&format!("  {}\n", p.replace('\n', "\n    ")));
                }
            }
            for c in &r.checks {
                text.push_str(&format!("  {}\n", c.what));
            }
        }
        if reports.is_empty() {
            text.push_str("no records in records/\n");
        }
        ctx.out.data(&text);
    }
    if failed > 0 {
        return Err(Error::Record(RecordError::Invalid(format!(
            "{failed} problem(s) in the records (listed above)\n  fix: do not trust the records named; recover them from version control"
        ))));
    }
    Ok(())
}
