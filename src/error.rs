//! The one place where an error becomes an exit code (the table is in the
//! README, under "Exit codes").

use crate::analysis::lint::LintError;
use crate::backup::BackupError;
use crate::config::ConfigError;
use crate::db::{DbError, DbErrorKind};
use crate::execute::ExecuteError;
use crate::execute::confirm::ConfirmError;
use crate::inspect::InspectError;
use crate::migration::SourceError;
use crate::migrator::RunError;
use crate::record::{Outcome, RecordError};
use crate::roundtrip::Error as RoundTripError;
use crate::scaffold::ScaffoldError;
use crate::seed::SeedError;
use crate::snapshot::SnapshotError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("{0}")]
    Source(#[from] SourceError),
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{}", crate::db::WithLockFix(.0))]
    Db(#[from] DbError),
    #[error("{0}")]
    Run(#[from] RunError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Seed(#[from] SeedError),
    #[error("{0}")]
    Inspect(#[from] InspectError),
    #[error("{0}")]
    Lint(#[from] LintError),
    #[error("{0}")]
    Backup(#[from] BackupError),
    #[error("{0}")]
    Snapshot(#[from] SnapshotError),
    #[error("{0}")]
    Record(#[from] RecordError),
    #[error("{0}")]
    Scaffold(#[from] ScaffoldError),
    #[error("{0}")]
    RoundTrip(#[from] crate::roundtrip::Error),
    /// A guarded run that refused, failed, rolled back or was stopped.
    #[error("{0}")]
    Execute(#[from] ExecuteError),
    /// Bad arguments or project files keel cannot use.
    #[error("{0}")]
    Usage(String),
    /// A check found problems (validate, lint, drift).
    #[error("{0}")]
    Check(String),
    /// A guard refused to go on.
    #[error("{0}")]
    Refused(String),
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

impl From<ConfirmError> for Error {
    fn from(e: ConfirmError) -> Error {
        match e {
            ConfirmError::Refused(m) => Error::Refused(m),
            ConfirmError::Usage(m) => Error::Usage(m),
        }
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// 0 success; 1 error (database, I/O); 2 usage; 3 a check failed;
    /// 4 refused by a guard; 5 ran, a check failed, rolled back; 130
    /// stopped by a second signal (the shell's code for an interrupt).
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Error::Execute(ExecuteError::Stopped(_)) => 130,
            Error::Execute(ExecuteError::Refused(_)) => 4,
            Error::Execute(ExecuteError::DryRun(_)) => 3,
            Error::Execute(ExecuteError::Ended(f)) if f.outcome == Outcome::RolledBack => 5,
            Error::Execute(ExecuteError::Db(e)) if e.kind == DbErrorKind::Usage => 2,
            Error::Execute(
                ExecuteError::Db(_) | ExecuteError::Ended(_) | ExecuteError::Unrecorded(_),
            ) => 1,
            Error::Usage(_) | Error::Source(_) | Error::Config(_) => 2,
            Error::Db(e) if e.kind == DbErrorKind::Usage => 2,
            Error::Check(_) => 3,
            Error::Lint(LintError::NotFound(_)) => 2,
            Error::Lint(LintError::Io(..)) => 1,
            Error::Refused(_) | Error::Run(RunError::Refused { .. }) => 4,
            Error::Run(RunError::Db(e)) if e.kind == DbErrorKind::Usage => 2,
            Error::Run(RunError::Hook {
                check_failed: true, ..
            }) => 3,
            // A backup or snapshot that is missing, corrupt or does not
            // match its manifest/checksum is a failed check.
            Error::Backup(e) if e.is_check_failure() => 3,
            Error::Backup(BackupError::Refused(_)) => 4,
            Error::Backup(BackupError::Plan(_)) => 2,
            Error::Backup(e) if e.db().is_some_and(|d| d.kind == DbErrorKind::Usage) => 2,
            Error::Snapshot(e) if e.is_check_failure() => 3,
            Error::Snapshot(e) if e.db().is_some_and(|d| d.kind == DbErrorKind::Usage) => 2,
            // A tampered record, a bad signature or a broken chain.
            Error::Record(RecordError::Invalid(_)) => 3,
            // A missing or unusable signing key: keel refuses to write an
            // unsigned record where a signature is expected.
            Error::Record(RecordError::Signing(_)) => 4,
            Error::Record(RecordError::Usage(_)) => 2,
            // The records folder and the database disagree: nothing may
            // link to that chain until someone looks.
            Error::Record(RecordError::Chain(_)) => 4,
            Error::Backup(_) | Error::Snapshot(_) | Error::Record(_) => 1,
            Error::Run(RunError::Backfill(e)) => e.exit_code(),
            Error::Scaffold(ScaffoldError::Io(_)) => 1,
            Error::Scaffold(_) => 2,
            Error::Seed(e) if e.is_usage() => 2,
            Error::RoundTrip(RoundTripError::Db(e)) if e.kind == DbErrorKind::Usage => 2,
            Error::RoundTrip(RoundTripError::Fixture(_)) => 2,
            Error::RoundTrip(_) => 1,
            Error::Inspect(e) if e.is_usage() => 2,
            Error::Db(_)
            | Error::Run(_)
            | Error::Io(_)
            | Error::Seed(_)
            | Error::Inspect(_)
            | Error::Other(_) => 1,
        }
    }
}

/// A migration a command names that is not in the folder: bad arguments.
impl From<crate::migration::NoSuchMigration> for Error {
    fn from(e: crate::migration::NoSuchMigration) -> Error {
        Error::Usage(e.to_string())
    }
}

/// A `--to VERSION` that names no migration: bad arguments.
impl From<crate::migrator::UnknownTarget> for Error {
    fn from(e: crate::migrator::UnknownTarget) -> Error {
        Error::Usage(e.to_string())
    }
}
