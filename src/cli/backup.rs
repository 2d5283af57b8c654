//! `keel backup verify FILE`, `keel backup prune --older-than D` (and the
//! hidden `keel backup create`, which `execute` and `up` do on their own
//! before a destructive migration).

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
    /// Delete this database's archives older than DURATION, except those an
    /// applied migration's `keel down` still restores
    Prune {
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        older_than: std::time::Duration,
        /// List what would be deleted, and delete nothing
        #[arg(long)]
        dry_run: bool,
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
        Sub::Prune {
            older_than,
            dry_run,
        } => prune(ctx, older_than, dry_run).await,
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

async fn prune(ctx: &Ctx, older_than: std::time::Duration, dry_run: bool) -> Result<()> {
    let mut db = ctx.connect().await?;
    let shown = db.display_url().to_string();
    let read = async {
        let id = db.database_id().await?;
        let rows = db.tracking_rows().await?;
        Ok::<_, crate::db::DbError>((id, rows))
    }
    .await;
    db.close().await;
    let (id, rows) = read?;
    let needed: Vec<(String, crate::db::BackupRef)> = rows
        .into_iter()
        .filter_map(|r| Some((r.version, r.backup?)))
        .collect();
    let age = humantime::format_duration(older_than);
    let Some(id) = id else {
        ctx.out.progress(&format!(
            "keel never ran against {shown}: none of the archives in backups/ are its own, nothing pruned"
        ));
        return Ok(());
    };
    let pruned = backup::prune(std::path::Path::new("."), older_than, &id, &needed, dry_run)?;
    if ctx.out.json {
        ctx.json(serde_json::json!({
            "dry_run": dry_run,
            "deleted": pruned.deleted,
            "kept_for_down": pruned.needed.iter().map(|(p, v)| serde_json::json!({"path": p, "version": v})).collect::<Vec<_>>(),
            "other_databases": pruned.other_databases,
            "unreadable": pruned.unreadable.iter().map(|(p, e)| serde_json::json!({"path": p, "error": e})).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    let verb = if dry_run { "would delete" } else { "deleted" };
    for p in &pruned.deleted {
        ctx.out.data(&format!("{verb} {}", p.display()));
    }
    for (p, v) in &pruned.needed {
        ctx.out.progress(&format!(
            "kept {}: older than {age}, but `keel down` of {v} restores it (applied)",
            p.display()
        ));
    }
    for (p, e) in &pruned.unreadable {
        ctx.out.progress(&format!("left {}: {e}", p.display()));
    }
    ctx.out.progress(&format!(
        "{verb} {} archive(s) of this database older than {age}; {} archive(s) of other databases left alone (prune them with their --env)",
        pruned.deleted.len(),
        pruned.other_databases
    ));
    Ok(())
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
