//! Putting a backup's rows back, all tables in one transaction.

use super::{BackupError, Kind, Manifest, read};
use crate::db::{Database, Timeouts};
use std::io::{BufReader, Read};
use std::path::Path;

/// What a restore put back.
#[derive(Debug, Clone)]
pub struct Restored {
    pub manifest: Manifest,
    /// `(table, rows)` in the order restored.
    pub tables: Vec<(String, u64)>,
}

fn dbe(context: String) -> impl FnOnce(crate::db::DbError) -> BackupError {
    move |source| BackupError::Db {
        context,
        source: Box::new(source),
    }
}

/// Verifies the archive, then loads every CSV in one transaction: column
/// backups update the rows with the same key, whole-table backups insert.
/// Every table must take exactly the manifest's row count, or nothing is
/// changed.
pub async fn restore(
    db: &mut dyn Database,
    path: &Path,
    timeouts: Timeouts,
) -> Result<Restored, BackupError> {
    db.begin(timeouts, true)
        .await
        .map_err(dbe("starting the restore transaction".into()))?;
    match restore_within(db, path).await {
        Ok(restored) => {
            db.commit()
                .await
                .map_err(dbe("committing the restore".into()))?;
            Ok(restored)
        }
        Err(e) => {
            let _ = db.rollback().await;
            Err(e)
        }
    }
}

/// [`restore`] inside the caller's open transaction, so that a `down` (or an
/// automatic rollback) and the data it puts back commit together. On an
/// error the caller rolls back.
pub async fn restore_within(db: &mut dyn Database, path: &Path) -> Result<Restored, BackupError> {
    let verified = super::verify(path)?;
    let (mut archive, manifest) = read::open(path)?;
    if manifest != verified.manifest {
        return Err(BackupError::Mismatch {
            path: path.to_path_buf(),
            detail: "the archive changed while it was being restored".into(),
        });
    }
    let mut tables = Vec::new();
    for f in &manifest.files {
        let entry = archive.by_name(&f.name).map_err(|e| BackupError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("{}: {e}", f.name),
        })?;
        let mut source = BufReader::with_capacity(1 << 18, Pipe(entry));
        let key: &[String] = match f.kind {
            Kind::Columns => &f.key,
            Kind::Table => &[],
        };
        let done = db
            .import_csv(&f.table, &f.columns, key, &mut source)
            .await
            .map_err(dbe(format!(
                "restoring {} from {} (the table and its columns must exist: run the migration's down first)",
                f.table, f.name
            )))?;
        if done != f.rows {
            return Err(BackupError::Incomplete {
                path: path.to_path_buf(),
                table: f.table.clone(),
                expected: f.rows,
                done,
            });
        }
        if f.kind == Kind::Table && f.key.len() == 1 {
            db.sync_id_sequence(&f.table, &f.key[0])
                .await
                .map_err(dbe(format!("moving {}'s id sequence", f.table)))?;
        }
        tables.push((f.table.clone(), done));
    }
    Ok(Restored { manifest, tables })
}

/// A zip member as a `Send` reader.
struct Pipe<R>(R);

impl<R: Read> Read for Pipe<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}
