//! Backups of the data a migration destroys: CSV files (key + columns, or a
//! whole table) streamed from the database into
//! `backups/<version>_<name>/<UTC stamp>.zip` with a `manifest.json`.
//!
//! The flow for `execute`, `up` and `down`:
//! [`create`] (export, hash and compress in one pass, then re-read and
//! verify) → the migration runs, its tracking row binding the archive's
//! SHA-256 → on rollback or `down`, [`restore`] of exactly that archive,
//! into the database it came from. `keel backup verify` is [`verify`]. The
//! analysis says what a migration destroys (the same analysis `keel plan`
//! prints); [`plan_for`] resolves that against the live schema (the search
//! path the migration sets included) into a [`BackupPlan`].

mod hook;
mod plan;
mod read;
mod restore;
mod write;

pub use hook::{BackupHook, back_up, unrestored_note};
pub use plan::{Target, plan_for, plan_for_table};
pub use read::{Verified, verify};
pub use restore::{Binding, Restored, check_binding, restore, restore_within};
pub use write::{Created, create};

use crate::db::{DbError, Relation, SearchPath};
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
    /// The database and environment the data comes from.
    pub target: Target,
    pub tables: Vec<TableBackup>,
}

/// One table's part of a backup.
#[derive(Debug, Clone)]
pub struct TableBackup {
    /// The table the server resolves (schema-qualified on PostgreSQL).
    pub table: Relation,
    /// Columns that identify a row (the primary key). Needed to put column
    /// backups back; informational for whole tables.
    pub key: Vec<String>,
    /// The columns to capture besides the key; `None` for the whole table.
    pub columns: Option<Vec<String>>,
    pub kind: Kind,
    /// Only the rows the migration's own statement touches: its condition
    /// (SQL from up.sql), the table's alias in it, and the search path it
    /// runs under. `None`: every row.
    pub rows: Option<RowSelection>,
}

/// The rows of a table a statement touches, as the backup selects them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowSelection {
    pub alias: Option<String>,
    /// A condition on the table's rows (`(status = 'old')`, or `EXISTS
    /// (SELECT 1 FROM other WHERE …)` for UPDATE … FROM / DELETE … USING).
    pub condition: String,
    /// The condition as the statement wrote it, for people.
    pub shown: String,
    pub search_path: Option<SearchPath>,
}

/// `manifest.json` inside every archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub migration: String,
    pub checksum: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub keel_version: String,
    /// The environment (`--env`), or `default` for the database chosen
    /// without one.
    #[serde(default)]
    pub environment: String,
    /// The database's URL, password redacted, for people.
    #[serde(default)]
    pub database: String,
    /// The database's identity (keel's id for it, and on PostgreSQL the
    /// cluster and database): an archive is only ever restored there.
    #[serde(default)]
    pub database_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    pub files: Vec<ManifestFile>,
}

/// One CSV in the archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// The CSV's name in the archive.
    pub name: String,
    /// The table's name, as the catalog has it.
    pub table: String,
    /// Its schema, as the server resolved the migration's name for it (an
    /// archive of an older keel has none, and a possibly dotted `table`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// The CSV's header, in order: the key columns first for column backups.
    pub columns: Vec<String>,
    /// `columns`: restore updates rows by `key`; `table`: restore inserts
    /// rows; `rows`: restore inserts the rows whose key is gone.
    #[serde(default = "Kind::table")]
    pub kind: Kind,
    #[serde(default)]
    pub key: Vec<String>,
    /// For a part of the table: the condition that selected the rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_where: Option<String>,
    pub rows: u64,
    /// Hex SHA-256 of the CSV's bytes.
    pub sha256: String,
}

impl ManifestFile {
    /// The table the rows go back into.
    pub fn relation(&self) -> Relation {
        match &self.schema {
            Some(s) => Relation::new(Some(s), &self.table),
            None => Relation::parse(&self.table),
        }
    }

    /// The table for people (see [`Relation::shown`]).
    pub fn shown(&self) -> String {
        self.relation().shown()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The whole table (DROP TABLE, TRUNCATE, DELETE without WHERE).
    Table,
    /// The rows a `DELETE … WHERE` removes, every column.
    Rows,
    /// Some columns of every row, or of the rows an `UPDATE … WHERE` touches.
    Columns,
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
    /// The archive must not be restored here (another database, not the
    /// archive the migration recorded): a guard's refusal.
    #[error("{0}")]
    Refused(String),
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
