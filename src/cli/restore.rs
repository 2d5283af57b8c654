//! `keel restore FILE`: put a backup's data back.

use super::Ctx;
use crate::error::Result;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// backups/<version>_<name>/<stamp>.zip
    pub(crate) file: PathBuf,
}

pub(crate) async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    // Check the archive before connecting: a bad file needs no database.
    crate::backup::verify(&args.file)?;
    let timeouts = ctx.settings().project_timeouts();
    let mut db = ctx.connect().await?;
    let result = async {
        let id = db.database_id().await?.unwrap_or_default();
        let server = db.server_identity().await?;
        let binding = crate::backup::Binding {
            database_id: &id,
            server: server.as_deref(),
            sha256: None,
        };
        Ok::<_, crate::error::Error>(
            crate::backup::restore(db.as_mut(), &args.file, binding, timeouts).await?,
        )
    }
    .await;
    db.close().await;
    let restored = result?;
    if ctx.out.json {
        ctx.json(serde_json::json!({
            "path": args.file,
            "migration": restored.manifest.migration,
            "tables": restored.tables.iter().map(|(t, n)| serde_json::json!({"table": t, "rows": n})).collect::<Vec<_>>(),
        }));
    } else {
        for (f, (table, rows)) in restored.manifest.files.iter().zip(&restored.tables) {
            let what = match f.kind {
                crate::backup::Kind::Columns => format!(
                    "updated {rows} rows of {table} ({})",
                    f.columns
                        .iter()
                        .filter(|c| !f.key.contains(c))
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                crate::backup::Kind::Table => format!("inserted {rows} rows into {table}"),
                crate::backup::Kind::Replace => {
                    format!("replaced the rows of {table} with the backup's {rows} rows")
                }
                crate::backup::Kind::Rows => format!(
                    "inserted {rows} deleted rows back into {table}{}",
                    match f.rows - rows {
                        0 => String::new(),
                        n => format!(" ({n} were there again and were left as they are)"),
                    }
                ),
            };
            ctx.out.data(&format!("restored: {what}"));
        }
    }
    Ok(())
}
