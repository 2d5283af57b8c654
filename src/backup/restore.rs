//! Putting a backup's rows back, all tables in one transaction, and only
//! where they came from.

use super::{BackupError, Kind, Manifest, ManifestFile, read};
use crate::db::{Database, Load, Timeouts};
use std::io::{BufReader, Read};
use std::path::Path;

/// What a restore put back.
#[derive(Debug, Clone)]
pub(crate) struct Restored {
    pub(crate) manifest: Manifest,
    /// `(table, rows)` in the manifest's order.
    pub(crate) tables: Vec<(String, u64)>,
    /// Rows of deleted-rows parts that were there again (left as they are).
    pub(crate) present: u64,
}

/// What an archive must be to be restored into a database.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Binding<'a> {
    /// The database's identity ([`Database::database_id`] and
    /// [`Database::server_identity`]): the manifest must name this one.
    pub(crate) database_id: &'a str,
    pub(crate) server: Option<&'a str>,
    /// The SHA-256 a migration's tracking row recorded for its backup
    /// (`down`, `execute`'s rollback); `None` for `keel restore FILE`.
    pub(crate) sha256: Option<&'a str>,
}

fn dbe(context: String) -> impl FnOnce(crate::db::DbError) -> BackupError {
    move |source| BackupError::Db {
        context,
        source: Box::new(source),
    }
}

/// Verifies the archive and that it belongs here, then loads every CSV in
/// one transaction: column backups update the rows with the same key,
/// whole tables are inserted, deleted rows are inserted where their key is
/// gone. Every table must take exactly the manifest's row count, or
/// nothing is changed.
pub(crate) async fn restore(
    db: &mut dyn Database,
    path: &Path,
    binding: Binding<'_>,
    timeouts: Timeouts,
) -> Result<Restored, BackupError> {
    db.begin(timeouts, true)
        .await
        .map_err(dbe("starting the restore transaction".into()))?;
    match restore_within(db, path, binding).await {
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

/// Refuses an archive that is not the one `binding` names or was taken
/// from another database.
pub(crate) fn check_binding(
    path: &Path,
    manifest: &Manifest,
    sha256: &str,
    binding: Binding<'_>,
) -> Result<(), BackupError> {
    if let Some(recorded) = binding.sha256
        && recorded != sha256
    {
        return Err(BackupError::Refused(format!(
            "{} is not the archive {} recorded when it was applied: its SHA-256 is {sha256}, the tracking table holds {recorded}\n  fix: the file was replaced or changed; put back the archive keel wrote (check it with `keel backup verify`), or revert without the data: `keel down --no-restore`",
            path.display(),
            manifest.migration
        )));
    }
    if manifest.database_id.is_empty() {
        return Err(BackupError::Refused(format!(
            "{} does not say which database it was taken from (written by an older keel), so keel will not restore it anywhere\n  fix: check the CSV files in it by hand and load them with psql's \\copy where they belong",
            path.display()
        )));
    }
    let other_server = match (manifest.server.as_deref(), binding.server) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    };
    if manifest.database_id != binding.database_id || other_server {
        return Err(BackupError::Refused(format!(
            "{} was taken from another database ({}, environment `{}`, id {}{}); this one is {}{}: a backup is only ever restored into the database it came from\n  fix: connect to that database (`--env {}`), or, if this database really is a copy that should get those rows, load the CSV files with psql's \\copy",
            path.display(),
            manifest.database,
            manifest.environment,
            manifest.database_id,
            manifest
                .server
                .as_deref()
                .map(|s| format!(" on server {s}"))
                .unwrap_or_default(),
            binding.database_id,
            binding
                .server
                .map(|s| format!(" on server {s}"))
                .unwrap_or_default(),
            manifest.environment
        )));
    }
    Ok(())
}

/// [`restore`] inside the caller's open transaction, so that a `down` (or an
/// automatic rollback) and the data it puts back commit together. On an
/// error the caller rolls back.
pub(crate) async fn restore_within(
    db: &mut dyn Database,
    path: &Path,
    binding: Binding<'_>,
) -> Result<Restored, BackupError> {
    let verified = super::verify(path)?;
    check_binding(path, &verified.manifest, &verified.sha256, binding)?;
    let (mut archive, manifest) = read::open(path)?;
    if manifest != verified.manifest {
        return Err(BackupError::Mismatch {
            path: path.to_path_buf(),
            detail: "the archive changed while it was being restored".into(),
        });
    }
    let mut done: Vec<Option<u64>> = vec![None; manifest.files.len()];
    let mut present = 0;
    // Whole tables and deleted rows before column values; a table whose
    // rows refer to another restored table waits for it (the database's own
    // foreign keys say which goes first).
    let mut order: Vec<usize> = (0..manifest.files.len()).collect();
    order.sort_by_key(|&i| manifest.files[i].kind);
    loop {
        let mut waiting = Vec::new();
        let mut last_fk = None;
        for &i in &order {
            let f = &manifest.files[i];
            db.savepoint("keel_restore_table")
                .await
                .map_err(dbe("restoring".into()))?;
            match load(db, &mut archive, path, f).await {
                Ok((n, again)) => {
                    done[i] = Some(n);
                    present += again;
                }
                Err(BackupError::Db { context, source })
                    if source.is_foreign_key_violation() && order.len() > 1 =>
                {
                    db.rollback_to_savepoint("keel_restore_table")
                        .await
                        .map_err(dbe("restoring".into()))?;
                    waiting.push(i);
                    last_fk = Some(BackupError::Db { context, source });
                }
                Err(e) => return Err(e),
            }
        }
        if waiting.is_empty() {
            break;
        }
        if waiting.len() == order.len() {
            // No table went in this round: the references are circular or
            // point at rows that are not in the backup.
            return Err(last_fk.expect("set with every waiting table"));
        }
        order = waiting;
    }
    let tables = manifest
        .files
        .iter()
        .zip(done)
        .map(|(f, n)| (f.shown(), n.unwrap_or(0)))
        .collect();
    Ok(Restored {
        manifest,
        tables,
        present,
    })
}

/// Loads one CSV; returns the rows put back and, for deleted rows, how
/// many were there again.
async fn load(
    db: &mut dyn Database,
    archive: &mut read::Archive,
    path: &Path,
    f: &ManifestFile,
) -> Result<(u64, u64), BackupError> {
    let table = f.relation();
    let shown = f.shown();
    let how = match f.kind {
        Kind::Columns => Load::Update { key: f.key.clone() },
        Kind::Rows if !f.key.is_empty() => Load::InsertMissing { key: f.key.clone() },
        Kind::Rows | Kind::Table | Kind::Replace => Load::Insert,
    };
    if f.kind == Kind::Replace {
        make_room(db, archive, path, f).await?;
    }
    let mut source = BufReader::with_capacity(1 << 18, Pipe(member(archive, path, f)?));
    let done = db
        .import_csv(&table, &f.columns, &how, &mut source)
        .await
        .map_err(dbe(format!(
            "restoring {} from {} (the table and its columns must exist: run the migration's down first)",
            shown, f.name
        )))?;
    let again = match how {
        Load::InsertMissing { .. } => f.rows.saturating_sub(done),
        _ => 0,
    };
    if done + again != f.rows {
        return Err(BackupError::Incomplete {
            path: path.to_path_buf(),
            table: shown.clone(),
            expected: f.rows,
            done,
        });
    }
    if f.kind != Kind::Columns && f.key.len() == 1 {
        db.sync_id_sequence(&table.to_string(), &f.key[0])
            .await
            .map_err(dbe(format!("moving {shown}'s id sequence")))?;
    }
    Ok((done, again))
}

/// The CSV of `f`, read from its start.
fn member<'a>(
    archive: &'a mut read::Archive,
    path: &Path,
    f: &ManifestFile,
) -> Result<zip::read::ZipFile<'a, BufReader<std::fs::File>>, BackupError> {
    archive.by_name(&f.name).map_err(|e| BackupError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("{}: {e}", f.name),
    })
}

/// Before a whole-table replacement: every row in the table now must be one
/// of the backup's (on the columns the migration left as they were, each
/// duplicate counted), or replacing the rows would lose what was written
/// since. Then the table is emptied for the backup's rows.
async fn make_room(
    db: &mut dyn Database,
    archive: &mut read::Archive,
    path: &Path,
    f: &ManifestFile,
) -> Result<(), BackupError> {
    let table = f.relation();
    let shown = f.shown();
    let compare: Vec<String> = f
        .columns
        .iter()
        .filter(|c| !f.destroyed.contains(c))
        .cloned()
        .collect();
    let context = || {
        format!(
            "restoring {shown} from {} (the table and its columns must exist: run the migration's down first)",
            f.name
        )
    };
    let mut source = BufReader::with_capacity(1 << 18, Pipe(member(archive, path, f)?));
    let extra = db
        .rows_not_in_csv(&table, &f.columns, &compare, &mut source)
        .await
        .map_err(dbe(context()))?;
    if extra > 0 {
        let on = if compare.is_empty() {
            "by count".to_string()
        } else {
            format!("on {}", compare.join(", "))
        };
        return Err(BackupError::Refused(format!(
            "{shown} has {extra} row(s) that {} does not hold (compared {on}): rows were added or changed since the backup was taken, and a backup of a table without a key puts the table back whole, which would lose them; nothing was changed\n  fix: look at those rows and save or delete them, then restore again; or revert without the data (`keel down --no-restore`) and load the backup's {} by hand",
            path.display(),
            f.name
        )));
    }
    db.delete_all_rows(&table).await.map_err(dbe(context()))?;
    Ok(())
}

/// A zip member as a `Send` reader.
struct Pipe<R>(R);

impl<R: Read> Read for Pipe<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}
