use crate::db::DbError;
use std::fmt;
use std::path::PathBuf;

/// Why a run stopped.
#[derive(Debug)]
pub(crate) enum RunError {
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
    /// The connection to the database was lost part-way: not a problem
    /// with the SQL (exit 1).
    ConnectionLost(Box<ConnectionLost>),
}

/// What a run knows after its connection broke: which of its commits are
/// on disk, which may have been lost with the server, and what became of
/// the migration that was running.
#[derive(Debug)]
pub(crate) struct ConnectionLost {
    pub(crate) error: DbError,
    /// `applying 20250101000001_x`, `reverting …`; `None` between migrations.
    pub(crate) doing: Option<String>,
    /// Where in its SQL, when a statement was running: `file:line`.
    pub(crate) at: Option<String>,
    /// What became of the running migration, in words.
    pub(crate) in_flight: Option<String>,
    /// The run was reverting (down), for the wording of the lists.
    pub(crate) reverting: bool,
    /// Migrations this run committed whose commit is confirmed on disk.
    pub(crate) durable: Vec<String>,
    /// Migrations this run committed without a confirmed flush: a server
    /// crash may have lost them.
    pub(crate) unconfirmed: Vec<String>,
}

impl RunError {
    /// The sessions a statement waited for until its lock timeout, when
    /// keel saw them.
    pub(crate) fn blockers(&self) -> &[crate::db::Blocker] {
        let error = match self {
            RunError::Statement(s) => &s.error,
            RunError::Db(e) => e,
            _ => return &[],
        };
        error.lock_wait.as_ref().map_or(&[], |w| &w.blockers)
    }

    /// True when the connection to the database broke, whatever was running.
    pub(crate) fn is_connection_lost(&self) -> bool {
        match self {
            RunError::ConnectionLost(_) => true,
            RunError::Db(e) => e.is_connection(),
            RunError::Statement(s) => s.error.is_connection(),
            _ => false,
        }
    }
}

/// `a`, `a, b, c`, or `12 migrations: a … l`.
fn list(ids: &[String]) -> String {
    match ids {
        [] => "none".into(),
        [a] => a.clone(),
        few if few.len() <= 3 => few.join(", "),
        [first, .., last] => format!("{} migrations: {first} … {last}", ids.len()),
    }
}

impl fmt::Display for ConnectionLost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lost the connection to the database")?;
        if let Some(doing) = &self.doing {
            write!(f, " while {doing}")?;
        }
        if let Some(at) = &self.at {
            write!(f, " ({at})")?;
        }
        writeln!(f)?;
        writeln!(f, "  {}", self.error.to_string().replace('\n', "\n  "))?;
        let (done, undone, again, next) = if self.reverting {
            (
                "reverted",
                "reverted",
                "applied again",
                "revert what `keel status` still shows applied",
            )
        } else {
            (
                "applied",
                "committed",
                "pending again",
                "run `keel up` again",
            )
        };
        writeln!(
            f,
            "  {done} by this run and on disk: {}",
            list(&self.durable)
        )?;
        if !self.unconfirmed.is_empty() {
            writeln!(
                f,
                "  {undone} by this run without a confirmed flush to disk (after a server crash they are {again}): {}",
                list(&self.unconfirmed)
            )?;
        }
        if let Some(what) = &self.in_flight {
            writeln!(f, "  {what}")?;
        }
        write!(
            f,
            "  fix: this is not a problem with the SQL; once the server is back, `keel status` shows what is applied; then {next}"
        )
    }
}

#[derive(Debug)]
pub(crate) struct StatementFailure {
    pub(crate) migration: String,
    pub(crate) file: PathBuf,
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) sql: String,
    pub(crate) error: DbError,
    /// What state the database and tracking table are in now, in words.
    pub(crate) outcome: String,
    pub(crate) fix: String,
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
            RunError::Db(e) => write!(f, "{}", crate::db::WithLockFix(e)),
            RunError::Hook {
                migration, message, ..
            } => write!(f, "migration {migration}: {message}"),
            RunError::Backfill(e) => write!(f, "{e}"),
            RunError::ConnectionLost(c) => write!(f, "{c}"),
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
