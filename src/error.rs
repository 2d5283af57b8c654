//! The one place where an error becomes an exit code (see design.md).

use crate::analysis::lint::LintError;
use crate::config::ConfigError;
use crate::db::{DbError, DbErrorKind};
use crate::inspect::InspectError;
use crate::migration::SourceError;
use crate::migrator::RunError;
use crate::seed::SeedError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Source(#[from] SourceError),
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
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

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// 0 success; 1 error (database, I/O); 2 usage; 3 a check failed;
    /// 4 refused by a guard; 5 ran, a check failed, rolled back.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Source(_) | Error::Config(_) => 2,
            Error::Db(e) if e.kind == DbErrorKind::Usage => 2,
            Error::Check(_) => 3,
            Error::Lint(LintError::NotFound(_)) => 2,
            Error::Lint(LintError::Io(..)) => 1,
            Error::Refused(_) | Error::Run(RunError::Refused { .. }) => 4,
            Error::Run(RunError::Db(e)) if e.kind == DbErrorKind::Usage => 2,
            Error::Seed(e) if e.is_usage() => 2,
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
