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

mod describe;
mod hook;
mod plan;
mod prune;
mod read;
mod restore;
mod write;

pub(crate) use describe::{StatementBackup, describe};
pub(crate) use hook::{BackupHook, back_up, declined, unrestored_note};
pub(crate) use plan::{Target, plan_for, plan_for_table};
pub(crate) use prune::prune;
pub(crate) use read::verify;
pub(crate) use restore::{Binding, Restored, check_binding, restore, restore_within};
pub(crate) use write::{Created, create};

use crate::db::{DbError, Relation, SearchPath};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What to export before a migration runs, from the analysis of what it destroys.
#[derive(Debug, Clone)]
pub(crate) struct BackupPlan {
    /// The migration's id, `<version>_<name>`: names the backups folder.
    pub(crate) migration: String,
    /// The migration's checksum, written into the manifest.
    pub(crate) checksum: String,
    /// The database and environment the data comes from.
    pub(crate) target: Target,
    pub(crate) tables: Vec<TableBackup>,
    /// Exported inside the migration's own open transaction, under the
    /// lock that keeps the rows it selects from changing until the commit.
    pub(crate) within: bool,
}

/// One table's part of a backup.
#[derive(Debug, Clone)]
pub(crate) struct TableBackup {
    /// The table the server resolves (schema-qualified on PostgreSQL).
    pub(crate) table: Relation,
    /// Columns that identify a row (the primary key, or a unique index on
    /// NOT NULL columns). Needed to put column backups back; informational
    /// for whole tables.
    pub(crate) key: Vec<String>,
    /// The columns to capture besides the key; `None` for the whole table.
    pub(crate) columns: Option<Vec<String>>,
    pub(crate) kind: Kind,
    /// Only the rows the migration's own statement touches: its condition
    /// (SQL from up.sql), the table's alias in it, and the search path it
    /// runs under. `None`: every row.
    pub(crate) rows: Option<RowSelection>,
    /// For [`Kind::Replace`]: the columns whose values the migration
    /// destroys. The other columns must still hold what the backup holds
    /// for the table's rows to be replaced.
    pub(crate) destroyed: Vec<String>,
}

/// The rows of a table a statement touches, as the backup selects them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowSelection {
    pub(crate) alias: Option<String>,
    /// A condition on the table's rows (`(status = 'old')`, or `EXISTS
    /// (SELECT 1 FROM other WHERE …)` for UPDATE … FROM / DELETE … USING).
    pub(crate) condition: String,
    /// The condition as the statement wrote it, for people.
    pub(crate) shown: String,
    pub(crate) search_path: Option<SearchPath>,
}

/// `manifest.json` inside every archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub(crate) migration: String,
    pub(crate) checksum: String,
    pub(crate) created_at: DateTime<Utc>,
    #[serde(default)]
    pub(crate) keel_version: String,
    /// The environment (`--env`), or `default` for the database chosen
    /// without one.
    #[serde(default)]
    pub(crate) environment: String,
    /// The database's URL, password redacted, for people.
    #[serde(default)]
    pub(crate) database: String,
    /// The database's identity (keel's id for it, and on PostgreSQL the
    /// cluster and database): an archive is only ever restored there.
    #[serde(default)]
    pub(crate) database_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) server: Option<String>,
    pub(crate) files: Vec<ManifestFile>,
}

/// One CSV in the archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ManifestFile {
    /// The CSV's name in the archive.
    pub(crate) name: String,
    /// The table's name, as the catalog has it.
    pub(crate) table: String,
    /// Its schema, as the server resolved the migration's name for it (an
    /// archive of an older keel has none, and a possibly dotted `table`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) schema: Option<String>,
    /// The CSV's header, in order: the key columns first for column backups.
    pub(crate) columns: Vec<String>,
    /// `columns`: restore updates rows by `key`; `table`: restore inserts
    /// rows; `rows`: restore inserts the rows whose key is gone (every row
    /// without a key); `replace`: restore replaces the table's rows.
    #[serde(default = "Kind::table")]
    pub(crate) kind: Kind,
    #[serde(default)]
    pub(crate) key: Vec<String>,
    /// For a part of the table: the condition that selected the rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rows_where: Option<String>,
    /// For `replace`: the columns whose values the migration destroyed; the
    /// rest must match the backup's rows before restore replaces them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) destroyed: Vec<String>,
    pub(crate) rows: u64,
    /// Hex SHA-256 of the CSV's bytes.
    pub(crate) sha256: String,
}

impl ManifestFile {
    /// The table the rows go back into.
    pub(crate) fn relation(&self) -> Relation {
        match &self.schema {
            Some(s) => Relation::new(Some(s), &self.table),
            None => Relation::parse(&self.table),
        }
    }

    /// The table for people (see [`Relation::shown`]).
    pub(crate) fn shown(&self) -> String {
        self.relation().shown()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    /// The whole table (DROP TABLE, TRUNCATE, DELETE without WHERE).
    Table,
    /// Every row and column of a table with no key to tell its rows apart
    /// (no primary key, no unique index on NOT NULL columns), changed in
    /// place: restore replaces the table's rows with the backup's.
    Replace,
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
pub(crate) enum BackupError {
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
    pub(crate) fn is_check_failure(&self) -> bool {
        matches!(
            self,
            BackupError::Missing { .. }
                | BackupError::Corrupt { .. }
                | BackupError::Mismatch { .. }
                | BackupError::Incomplete { .. }
        )
    }

    /// The database error behind this one, if any.
    pub(crate) fn db(&self) -> Option<&DbError> {
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
