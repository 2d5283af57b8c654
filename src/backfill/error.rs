use super::Report;
use crate::db::DbError;
use std::fmt;

/// Why a backfill stopped or did not finish cleanly.
#[derive(Debug)]
pub(crate) enum BackfillError {
    /// The database failed outside the batches (exit 1).
    Db(DbError),
    /// A batch failed for a reason that is not the data of a row: the
    /// expressions or the filter are wrong, or the connection went (exit 1).
    Batch {
        migration: String,
        range: String,
        error: DbError,
    },
    /// Rows stayed locked longer than lock_timeout on every retry (exit 1).
    LockTimeout {
        migration: String,
        range: String,
        retries: u32,
    },
    /// The key column does not hold integers (exit 2).
    KeyNotInteger {
        migration: String,
        table: String,
        key: String,
    },
    /// `[backfill]` names a table or column the database does not have, or
    /// an expression that does not work there; found before any batch ran
    /// (exit 2).
    Spec {
        migration: String,
        file: std::path::PathBuf,
        at: crate::migration::meta::Pos,
        message: String,
        /// What state the migration is in now, in words.
        outcome: String,
        fix: String,
    },
    /// Writing failures.csv failed (exit 1).
    Io(std::io::Error),
    /// Every batch ran, and some rows were skipped or the validation found
    /// problems (exit 3). The migration stays `backfilling`.
    Incomplete(Box<Report>),
}

impl From<DbError> for BackfillError {
    fn from(e: DbError) -> Self {
        BackfillError::Db(e)
    }
}

impl From<std::io::Error> for BackfillError {
    fn from(e: std::io::Error) -> Self {
        BackfillError::Io(e)
    }
}

impl BackfillError {
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            BackfillError::Incomplete(_) => 3,
            BackfillError::KeyNotInteger { .. } | BackfillError::Spec { .. } => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for BackfillError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackfillError::Db(e) => write!(f, "{e}"),
            BackfillError::Io(e) => write!(f, "cannot write the backfill's failures.csv: {e}"),
            BackfillError::Spec {
                migration,
                file,
                at: (line, column),
                message,
                outcome,
                fix,
            } => write!(
                f,
                "the backfill of {migration} cannot run: {}:{line}:{column}: {message}\n  {outcome}\n  fix: {fix}",
                file.display()
            ),
            BackfillError::Batch {
                migration,
                range,
                error,
            } => write!(
                f,
                "the backfill of {migration} failed on keys {range}\n  {}\n  \
                 nothing of that batch was kept; earlier batches stay committed and the migration stays backfilling\n  \
                 fix: if the set expressions or the where filter in migration.toml are wrong, `keel down` reverts the \
                 migration, correct [backfill] and run `keel up` again; otherwise `keel backfill {}` resumes",
                error.to_string().replace('\n', "\n  "),
                migration.split('_').next().unwrap_or(migration)
            ),
            BackfillError::LockTimeout {
                migration,
                range,
                retries,
            } => write!(
                f,
                "the backfill of {migration} could not lock the rows of keys {range} within lock_timeout, \
                 {retries} retries included; earlier batches stay committed\n  \
                 fix: find the long transactions holding them with \
                 `SELECT pid, now() - xact_start, left(query, 80) FROM pg_stat_activity ORDER BY 2 DESC`, \
                 then `keel backfill {}` resumes from the last committed batch",
                migration.split('_').next().unwrap_or(migration)
            ),
            BackfillError::KeyNotInteger {
                migration,
                table,
                key,
            } => write!(
                f,
                "the backfill of {migration} walks {table} by {key}, which does not hold integers\n  \
                 fix: set key in [backfill] to an integer primary key (keel batches by key ranges)"
            ),
            BackfillError::Incomplete(report) => {
                let version = report.migration.split('_').next().unwrap_or_default();
                let mut problems = Vec::new();
                if !report.failures.is_empty() {
                    problems.push(format!(
                        "{} row(s) could not be transformed and were skipped (key and error in {})",
                        report.failures.len(),
                        report
                            .failures_csv
                            .as_ref()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default()
                    ));
                }
                problems.extend(report.validation.problems());
                write!(
                    f,
                    "the backfill of {} did every other row, but: {}\n  \
                     the migration stays backfilling, so later migrations wait\n  \
                     fix: correct those rows (or revert with `keel down` and fix the expressions), \
                     then `keel backfill {version}` retries the skipped rows and validates again",
                    report.migration,
                    problems.join("; ")
                )
            }
        }
    }
}

impl std::error::Error for BackfillError {}
