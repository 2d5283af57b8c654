//! Backups of the data a migration destroys: CSV files (key + columns, or a
//! whole table) streamed from the database into
//! `backups/<version>_<name>/<UTC stamp>.zip` with a `manifest.json`.
//!
//! The flow for `execute`, `up` and `down`:
//! [`create`] (export, hash and compress in one pass, then re-read and
//! verify) → the migration runs → on rollback or `down`, [`restore`].
//! `keel backup verify` is [`verify`]. The analysis says what a migration
//! destroys; [`plan_for`] turns that into a [`BackupPlan`] against the live
//! schema.

mod hook;
mod plan;
mod read;
mod restore;
mod write;

pub use hook::{BackupHook, Restore as RestoreFrom, back_up, unrestored_note};
pub use plan::plan_for;
pub use read::{Verified, verify};
pub use restore::{Restored, restore, restore_within};
pub use write::{Created, create};

use crate::db::DbError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What to export before a migration runs, from the analysis of what it destroys.
#[derive(Debug, Clone)]
pub struct BackupPlan {
    /// The migration's id, `<version>_<name>`: names the backups folder.
    pub migration: String,
    /// The migration's checksum, written into the manifest.
    pub checksum: String,
    pub tables: Vec<TableBackup>,
}

/// One table's part of a backup.
#[derive(Debug, Clone)]
pub struct TableBackup {
    pub table: String,
    /// Columns that identify a row (the primary key). Needed to put column
    /// backups back; informational for whole tables.
    pub key: Vec<String>,
    /// The columns to capture besides the key; `None` for the whole table.
    pub columns: Option<Vec<String>>,
}

/// `manifest.json` inside every archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub migration: String,
    pub checksum: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub keel_version: String,
    pub files: Vec<ManifestFile>,
}

/// One CSV in the archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// The CSV's name in the archive.
    pub name: String,
    pub table: String,
    /// The CSV's header, in order: the key columns first for column backups.
    pub columns: Vec<String>,
    /// `columns`: restore updates rows by `key`; `table`: restore inserts rows.
    #[serde(default = "Kind::table")]
    pub kind: Kind,
    #[serde(default)]
    pub key: Vec<String>,
    pub rows: u64,
    /// Hex SHA-256 of the CSV's bytes.
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Columns,
    Table,
}

impl Kind {
    fn table() -> Kind {
        Kind::Table
    }
}

/// What went wrong with a backup, worded as what to do next.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "backup archive {path} does not exist\n  fix: check the path (backups are in backups/<version>_<name>/), or take a new backup before migrating"
    )]
    Missing { path: PathBuf },
    #[error(
        "backup archive {path} is unreadable: {detail}\n  fix: the file is truncated or corrupted; use an intact copy of it, or take a new backup before migrating"
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "backup archive {path} does not match its manifest: {detail}\n  fix: the archive was changed after keel wrote it; do not restore from it, use an intact copy or take a new backup"
    )]
    Mismatch { path: PathBuf, detail: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("backup plan: {0}")]
    Plan(String),
    #[error("{context}: {source}")]
    Db {
        context: String,
        source: Box<DbError>,
    },
    #[error(
        "restoring {path} put back {done} of {expected} rows of {table}; nothing was changed\n  fix: rows with these keys no longer exist (or the table was not recreated); check `{table}` and restore again"
    )]
    Incomplete {
        path: PathBuf,
        table: String,
        expected: u64,
        done: u64,
    },
}

impl BackupError {
    /// True when the archive failed a check (missing, corrupt, mismatching,
    /// incomplete restore), as opposed to an I/O or database failure.
    pub fn is_check_failure(&self) -> bool {
        matches!(
            self,
            BackupError::Missing { .. }
                | BackupError::Corrupt { .. }
                | BackupError::Mismatch { .. }
                | BackupError::Incomplete { .. }
        )
    }

    /// The database error behind this one, if any.
    pub fn db(&self) -> Option<&DbError> {
        match self {
            BackupError::Db { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// The newest archive in `backups_dir/<migration>/`, the one `down` and an
/// automatic rollback restore.
pub fn newest(backups_dir: &std::path::Path, migration: &str) -> Option<PathBuf> {
    let dir = backups_dir.join(migration);
    let mut found: Vec<(chrono::DateTime<Utc>, PathBuf)> = std::fs::read_dir(&dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let t = crate::stamp::parse(&e.file_name().to_string_lossy(), "", ".zip")?;
            Some((t, e.path()))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
}

/// A file name for a table's CSV: the table name with anything but letters,
/// digits, `_`, `.` and `-` replaced, so no name can leave the archive's root.
fn csv_name(table: &str, taken: &[String]) -> String {
    let base: String = table
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut name = format!("{base}.csv");
    let mut n = 2;
    while taken.contains(&name) || name == "manifest.json" {
        name = format!("{base}-{n}.csv");
        n += 1;
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_names_stay_inside_the_archive() {
        assert_eq!(csv_name("users", &[]), "users.csv");
        assert_eq!(csv_name("../etc/x", &[]), ".._etc_x.csv");
        assert_eq!(csv_name("users", &["users.csv".into()]), "users-2.csv");
    }
}
