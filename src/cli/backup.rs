//! `keel backup verify FILE` (and the hidden `keel backup create`, which
//! `execute` and `up` do on their own before a destructive migration).

use super::Ctx;
use crate::backup;
use crate::error::Result;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub(crate) command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Sub {
    /// Check an archive: every CSV against manifest.json (SHA-256, rows, header)
    Verify {
        /// backups/<version>_<name>/<stamp>.zip
        file: PathBuf,
    },
    /// Export what a migration destroys (from its analysis), or one table's
    /// columns (or the whole table) with --table
    #[command(hide = true)]
    Create {
        /// The migration the backup belongs to
        version: String,
        #[arg(long)]
        table: Option<String>,
        /// Columns that identify a row
        #[arg(long, default_value = "id", value_delimiter = ',')]
        key: Vec<String>,
        /// Columns to capture; without it, the whole table
        #[arg(long, value_delimiter = ',')]
        columns: Option<Vec<String>>,
    },
}

pub(crate) async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    match args.command {
        Sub::Verify { file } => {
            let v = backup::verify(&file)?;
            if ctx.out.json {
                ctx.json(serde_json::json!({
                    "path": v.path, "sha256": v.sha256, "manifest": v.manifest, "ok": true
                }));
            } else {
                ctx.out.data(&describe("ok", &v.path, &v.manifest));
            }
            Ok(())
        }
        Sub::Create {
            version,
            table,
            key,
            columns,
        } => {
            let files = ctx.migrations()?;
            let migration = crate::migration::find(&files, &version)?.clone();
            let mut db = ctx.connect().await?;
            let planned = async {
                let target = backup::Target::of(db.as_mut(), ctx.environment()).await?;
                let plan = match table {
                    Some(table) => {
                        let plan = backup::plan_for_table(
                            db.as_mut(),
                            &migration,
                            &table,
                            key,
                            columns,
                            target,
                        )
                        .await?;
                        if plan.is_none() {
                            return Err(super::usage(format!(
                                "there is no table {table}\n  fix: `keel inspect` lists the tables"
                            )));
                        }
                        plan
                    }
                    None => {
                        let facts = crate::analysis::analyze::Facts::read(
                            db.as_mut(),
                            &crate::db::Scope::All,
                        )
                        .await?;
                        let analysis = crate::analysis::analyze::Analyzer::new(facts, true)
                            .analyze(&migration);
                        backup::plan_for(db.as_mut(), &migration, &analysis.backups, &target)
                            .await?
                    }
                };
                Ok(plan)
            }
            .await;
            let plan = match planned {
                Ok(p) => p,
                Err(e) => {
                    db.close().await;
                    return Err(e);
                }
            };
            let Some(plan) = plan else {
                db.close().await;
                ctx.out.progress(&format!(
                    "{} destroys no existing data: nothing to back up",
                    migration.id()
                ));
                return Ok(());
            };
            let created = backup::create(db.as_mut(), &plan, &PathBuf::from("backups")).await;
            db.close().await;
            let created = created?;
            if ctx.out.json {
                ctx.json(serde_json::json!({
                    "path": created.path, "sha256": created.sha256, "manifest": created.manifest
                }));
            } else {
                ctx.out
                    .data(&describe("wrote", &created.path, &created.manifest));
            }
            Ok(())
        }
    }
}

/// `ok  FILE` and one line per CSV.
pub(crate) fn describe(verb: &str, path: &std::path::Path, m: &backup::Manifest) -> String {
    let mut text = format!(
        "{verb} {} (migration {}, {} file(s))\n",
        path.display(),
        m.migration,
        m.files.len()
    );
    for f in &m.files {
        text.push_str(&format!(
            "  {:<20} {} ({}): {} rows, sha256 {}\n",
            f.name,
            f.shown(),
            f.columns.join(", "),
            f.rows,
            &f.sha256[..f.sha256.len().min(16)]
        ));
    }
    text
}
