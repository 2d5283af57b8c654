//! `keel snapshot take | verify FILE | prune --older-than D`.

use super::Ctx;
use crate::error::Result;
use std::path::{Path, PathBuf};

/// Snapshots live in `snapshots/` of the project.
const DIR: &str = "snapshots";

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub(crate) command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Sub {
    /// Dump the database (--env's, or DATABASE_URL's) into snapshots/<env>-<stamp>.dump with a .sha256
    Take,
    /// Check a snapshot against its .sha256 sidecar
    Verify {
        /// snapshots/<env>-<stamp>.dump
        file: PathBuf,
    },
    /// Delete old snapshots; the newest of each environment always stays
    Prune {
        /// e.g. 48h, 7days
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        older_than: std::time::Duration,
        /// Print what would be deleted and delete nothing
        #[arg(long)]
        dry_run: bool,
    },
}

pub(crate) async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    match args.command {
        Sub::Take => {
            let env = ctx.environment();
            removed_stale(ctx)?;
            let mut db = ctx.connect().await?;
            ctx.out.progress(&format!(
                "taking a snapshot of {} ({})…",
                db.display_url(),
                db.dialect_name()
            ));
            let taken = crate::snapshot::take(db.as_mut(), Path::new(DIR), env).await;
            db.close().await;
            let s = taken?;
            if ctx.out.json {
                ctx.json(serde_json::json!({
                    "path": s.path, "sha256": s.sha256, "bytes": s.bytes,
                    "sidecar": crate::snapshot::sidecar(&s.path),
                }));
            } else {
                ctx.out.data(&format!(
                    "{}\n  sha256 {}  ({} bytes; check: cd {DIR} && sha256sum -c {})",
                    s.path.display(),
                    s.sha256,
                    s.bytes,
                    crate::snapshot::sidecar(&s.path)
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                ));
            }
            Ok(())
        }
        Sub::Verify { file } => {
            let s = crate::snapshot::verify(&file)?;
            if ctx.out.json {
                ctx.json(serde_json::json!({
                    "path": s.path, "sha256": s.sha256, "bytes": s.bytes, "ok": true
                }));
            } else {
                ctx.out.data(&format!(
                    "ok {}: sha256 {} matches {}",
                    s.path.display(),
                    s.sha256,
                    crate::snapshot::sidecar(&s.path).display()
                ));
            }
            Ok(())
        }
        Sub::Prune {
            older_than,
            dry_run,
        } => {
            if !dry_run {
                removed_stale(ctx)?;
            }
            let deleted =
                crate::snapshot::prune(Path::new(DIR), older_than, ctx.target().env(), dry_run)?;
            if ctx.out.json {
                ctx.json(serde_json::json!({
                    "deleted": deleted, "dry_run": dry_run
                }));
            } else if deleted.is_empty() {
                ctx.out.progress("nothing to prune");
            } else {
                let verb = if dry_run { "would delete" } else { "deleted" };
                for p in &deleted {
                    ctx.out.data(&format!("{verb} {}", p.display()));
                }
            }
            Ok(())
        }
    }
}

/// Removes what killed `snapshot take` runs left and says so.
fn removed_stale(ctx: &Ctx) -> Result<()> {
    for p in crate::snapshot::remove_stale(Path::new(DIR))? {
        ctx.out.progress(&format!(
            "removed {}: an unfinished snapshot a stopped `keel snapshot take` left",
            p.display()
        ));
    }
    Ok(())
}
