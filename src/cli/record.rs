//! `keel record verify FILE` (and the hidden `keel record new`, which writes
//! the kind of record `execute` writes, for tests and demos).

use super::Ctx;
use crate::error::Result;
use crate::record::{self, AllowedSigners, FileRef, Outcome, Record, Signer, StepOutcome};
use std::path::{Path, PathBuf};

/// Records live in `records/` of the project.
const DIR: &str = "records";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Check a record's signature against allowed signers, and its hash chain
    Verify {
        /// records/<version>_<name>/<env>-<stamp>.json
        file: PathBuf,
        /// ssh-keygen's allowed_signers file (default: allowed_signers in keel.toml, else ./allowed_signers)
        #[arg(long, value_name = "FILE")]
        allowed_signers: Option<PathBuf>,
    },
    /// Write and sign a record for a migration (what execute does at its end)
    #[command(hide = true)]
    New {
        version: String,
        #[arg(long, default_value = "applied")]
        outcome: String,
        #[arg(long)]
        snapshot: Option<PathBuf>,
        #[arg(long)]
        backup: Vec<PathBuf>,
        #[arg(long)]
        runbook: Option<PathBuf>,
        /// Write without a signature even if keel.toml configures a key
        #[arg(long)]
        unsigned: bool,
    },
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    match args.command {
        Sub::Verify {
            file,
            allowed_signers,
        } => {
            let path = allowed_signers
                .or_else(|| ctx.config.allowed_signers.clone())
                .unwrap_or_else(|| PathBuf::from("allowed_signers"));
            let allowed = AllowedSigners::load(&path)?;
            let v = record::verify(&file, &allowed)?;
            if ctx.out.json {
                ctx.out.json(&serde_json::json!({
                    "path": v.path, "ok": true, "signer": v.signer, "fingerprint": v.fingerprint,
                    "environment": v.record.environment, "sequence": v.record.sequence,
                    "migration": v.record.migration.id, "outcome": v.record.outcome,
                    "chain": v.chain,
                }));
            } else {
                ctx.out.data(&format!(
                    "ok {}\n  signed by {} ({}), namespace {}\n  record #{} of {}: {} {}; hash chain intact back to #1 ({} earlier record(s))",
                    v.path.display(),
                    v.signer,
                    v.fingerprint,
                    record::NAMESPACE,
                    v.record.sequence,
                    v.record.environment,
                    v.record.migration.id,
                    serde_json::to_value(v.record.outcome)
                        .ok()
                        .and_then(|o| o.as_str().map(String::from))
                        .unwrap_or_default(),
                    v.chain.len()
                ));
            }
            Ok(())
        }
        Sub::New {
            version,
            outcome,
            snapshot,
            backup,
            runbook,
            unsigned,
        } => {
            let files = ctx.migrations()?;
            let migration = super::find_migration(&files, &version)?.clone();
            let env = ctx.global.env.clone().unwrap_or_else(|| "default".into());
            let database = ctx
                .database_url()
                .map(|u| crate::config::redact(&u))
                .unwrap_or_default();
            let mut rec = Record::start(&env, &migration, &database);
            let t = chrono::Utc::now();
            rec.snapshot = snapshot.as_deref().map(file_ref).transpose()?;
            rec.runbook = runbook.as_deref().map(file_ref).transpose()?;
            rec.backups = backup.iter().map(|p| file_ref(p)).collect::<Result<_>>()?;
            rec.step("migrate", StepOutcome::Ok, t, None);
            rec.outcome = match outcome.as_str() {
                "applied" => Outcome::Applied,
                "rolled_back" => Outcome::RolledBack,
                "refused" => Outcome::Refused,
                _ => Outcome::Failed,
            };
            rec.finished_at = chrono::Utc::now();
            rec.signer = ctx.config.signer.clone();
            let signer = if unsigned {
                None
            } else {
                Signer::from_config(&ctx.config, Path::new("."))?
            };
            let written = match &signer {
                Some(s) => record::write_signed(Path::new(DIR), rec, s)?,
                None => record::write_unsigned(Path::new(DIR), rec)?,
            };
            ctx.out.data(&written.path.display().to_string());
            Ok(())
        }
    }
}

fn file_ref(path: &Path) -> Result<FileRef> {
    Ok(FileRef {
        path: path.to_string_lossy().into_owned(),
        sha256: crate::digest::sha256_file(path)?,
    })
}
