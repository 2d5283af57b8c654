use crate::db::DbError;
use std::fmt;
use std::path::PathBuf;

/// Why a run stopped.
#[derive(Debug)]
pub enum RunError {
    /// keel will not go on until someone acts (exit 4).
    Refused { message: String, fix: String },
    /// A statement of a migration failed (exit 1).
    Statement(Box<StatementFailure>),
    /// The database failed outside a migration's SQL (exit 1).
    Db(DbError),
    /// The work around a migration (its backup before the up, the restore
    /// after the down) failed; the migration is as it was. Exit 3 when an
    /// archive failed a check, else 1.
    Hook {
        migration: String,
        message: String,
        check_failed: bool,
    },
    /// A backfill stopped, or finished with skipped rows or a failed
    /// validation (exit 3 then).
    Backfill(Box<crate::backfill::BackfillError>),
}

#[derive(Debug)]
pub struct StatementFailure {
    pub migration: String,
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub sql: String,
    pub error: DbError,
    /// What state the database and tracking table are in now, in words.
    pub outcome: String,
    pub fix: String,
}

impl From<DbError> for RunError {
    fn from(e: DbError) -> Self {
        RunError::Db(e)
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Refused { message, fix } => write!(f, "{message}\n  fix: {fix}"),
            RunError::Db(e) => write!(f, "{e}"),
            RunError::Hook {
                migration, message, ..
            } => write!(f, "migration {migration}: {message}"),
            RunError::Backfill(e) => write!(f, "{e}"),
            RunError::Statement(s) => {
                writeln!(
                    f,
                    "migration {} failed at {}:{}:{}",
                    s.migration,
                    s.file.display(),
                    s.line,
                    s.column
                )?;
                writeln!(f, "  {}", s.error.to_string().replace('\n', "\n  "))?;
                let first_line = s.sql.lines().next().unwrap_or_default();
                let more = if s.sql.lines().nth(1).is_some() {
                    " …"
                } else {
                    ""
                };
                writeln!(f, "  statement: {first_line}{more}")?;
                writeln!(f, "  {}", s.outcome)?;
                write!(f, "  fix: {}", s.fix)
            }
        }
    }
}

impl std::error::Error for RunError {}
