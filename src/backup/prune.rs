//! `keel backup prune`: archives older than a cutoff go, except the ones
//! keel still needs, which are the archives an applied migration's tracking
//! row binds for its down (the only archive `keel down` restores). Only the
//! archives of the database keel is connected to are looked at: one
//! project folder's `backups/` holds every environment's, and staging's
//! tracking rows cannot say what production still needs.

use super::BackupError;
use crate::db::BackupRef;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a prune did (or, with `dry_run`, would do).
#[derive(Debug, Default)]
pub(crate) struct Pruned {
    pub(crate) deleted: Vec<PathBuf>,
    /// Old enough, but bound to an applied migration: its version.
    pub(crate) needed: Vec<(PathBuf, String)>,
    /// Archives of other databases (or of none keel can tell), left alone.
    pub(crate) other_databases: usize,
    /// Archives keel cannot read: left for a person to look at.
    pub(crate) unreadable: Vec<(PathBuf, String)>,
}

/// Prunes `<project>/backups/*/*.zip` made for `database_id` more than
/// `older_than` ago (by the manifest's `created_at`), keeping those in
/// `needed` (an applied migration's version and its tracking row's archive).
pub(crate) fn prune(
    project: &Path,
    older_than: Duration,
    database_id: &str,
    needed: &[(String, BackupRef)],
    dry_run: bool,
) -> Result<Pruned, BackupError> {
    let cutoff: DateTime<Utc> =
        Utc::now() - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::MAX);
    let mut out = Pruned::default();
    for (relative, path) in archives(project)? {
        let manifest = match super::read::open(&path) {
            Ok((_, manifest)) => manifest,
            Err(e) => {
                out.unreadable.push((relative, e.to_string()));
                continue;
            }
        };
        if manifest.database_id.is_empty() || manifest.database_id != database_id {
            out.other_databases += 1;
            continue;
        }
        if manifest.created_at >= cutoff {
            continue;
        }
        let shown = relative.to_string_lossy();
        if let Some((version, _)) = needed.iter().find(|(_, b)| b.path == shown) {
            out.needed.push((relative, version.clone()));
            continue;
        }
        if !dry_run {
            std::fs::remove_file(&path).map_err(|source| BackupError::Io {
                path: path.clone(),
                source,
            })?;
            // The migration's folder goes with its last archive.
            if let Some(dir) = path.parent() {
                let _ = std::fs::remove_dir(dir);
            }
        }
        out.deleted.push(relative);
    }
    Ok(out)
}

/// Every `backups/<folder>/<file>.zip` (relative path, full path), in name
/// order. Entries that are not plain folders and files are skipped: a link
/// out of the project must not make keel delete what it points to.
fn archives(project: &Path) -> Result<Vec<(PathBuf, PathBuf)>, BackupError> {
    let root = project.join("backups");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BackupError::Io { path, source }
    };
    let mut out = Vec::new();
    let top = match std::fs::read_dir(&root) {
        Ok(top) => top,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(&root)(e)),
    };
    for folder in top {
        let folder = folder.map_err(io(&root))?;
        if !folder.file_type().map_err(io(&folder.path()))?.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(folder.path()).map_err(io(&folder.path()))? {
            let file = file.map_err(io(&folder.path()))?;
            let path = file.path();
            if file.file_type().map_err(io(&path))?.is_file()
                && path.extension().is_some_and(|e| e == "zip")
            {
                let relative = Path::new("backups")
                    .join(folder.file_name())
                    .join(file.file_name());
                out.push((relative, path));
            }
        }
    }
    out.sort();
    Ok(out)
}
