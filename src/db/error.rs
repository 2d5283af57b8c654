use std::fmt;

/// What kind of failure a [`DbError`] is: decides whether keel retries,
/// reconnects or stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbErrorKind {
    /// The server could not be reached or the connection dropped: an I/O
    /// error, a broken conversation, PostgreSQL class 08 (connection
    /// exception) or 57P01/57P02/57P03 (the server shut down, crashed, or
    /// cannot take connections yet).
    Connection,
    /// `lock_timeout` expired (PostgreSQL 55P03) or SQLite stayed busy.
    LockTimeout,
    /// The transaction lost to a concurrent one: a deadlock (40P01) or a
    /// serialization failure (40001). Nothing of it was kept, and running
    /// it again can succeed.
    Conflict,
    /// A bad URL or a request keel cannot make.
    Usage,
    /// Anything the SQL itself caused.
    Statement,
}

/// An error from the database, with what the server said about it.
#[derive(Debug, Clone)]
pub struct DbError {
    /// What kind of failure it is.
    pub kind: DbErrorKind,
    /// The server's (or driver's) message.
    pub message: String,
    /// SQLSTATE (PostgreSQL) or extended result code (SQLite).
    pub code: Option<String>,
    /// 1-based character position in the statement, when the server gives
    /// one (32 bits keep the error small enough to return by value).
    pub position: Option<u32>,
    /// PostgreSQL's DETAIL line, when it sends one.
    pub detail: Option<String>,
    /// PostgreSQL's HINT line, when it sends one.
    pub hint: Option<String>,
    /// For a lock timeout: who the statement waited for, when keel saw
    /// them while it waited.
    pub lock_wait: Option<Box<super::LockWait>>,
}

impl DbError {
    /// An error of `kind` with only a message (no SQLSTATE or position).
    pub fn new(kind: DbErrorKind, message: impl Into<String>) -> DbError {
        DbError {
            kind,
            message: message.into(),
            code: None,
            position: None,
            detail: None,
            hint: None,
            lock_wait: None,
        }
    }

    /// A [`DbErrorKind::Usage`] error: keel asked for something it cannot do.
    pub fn usage(message: impl Into<String>) -> DbError {
        DbError::new(DbErrorKind::Usage, message)
    }

    /// `lock_timeout` expired (or SQLite stayed busy).
    pub fn is_lock_timeout(&self) -> bool {
        self.kind == DbErrorKind::LockTimeout
    }

    /// A lock timeout, deadlock or serialization failure: the statement
    /// lost to other sessions, not to its own SQL, and may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, DbErrorKind::LockTimeout | DbErrorKind::Conflict)
    }

    /// The connection failed or dropped, not the statement.
    pub fn is_connection(&self) -> bool {
        self.kind == DbErrorKind::Connection
    }

    /// True when the data of a row caused the error, not the SQL or the
    /// connection: PostgreSQL classes 22 (data exception: a bad cast, a
    /// division by zero, a value too long) and 23 (a constraint the new
    /// value breaks); SQLite's SQLITE_CONSTRAINT family and SQLITE_MISMATCH.
    /// A backfill skips and logs such rows; any other error stops it.
    pub fn is_data_error(&self) -> bool {
        if self.kind != DbErrorKind::Statement {
            return false;
        }
        let Some(code) = self.code.as_deref() else {
            return false;
        };
        if code.len() == 5 {
            // A PostgreSQL SQLSTATE (SQLite's extended codes stay below 10000).
            return code.starts_with("22") || code.starts_with("23");
        }
        // SQLite: primary code 19 is SQLITE_CONSTRAINT (its extended codes
        // keep it in the low byte); 20 is SQLITE_MISMATCH.
        code.parse::<u32>()
            .is_ok_and(|n| n & 0xff == 19 || n & 0xff == 20)
    }

    /// [`DbError::from_sqlx`] for an error while connecting, where an I/O
    /// error means the server is not there.
    pub(crate) fn from_sqlx_connect(e: sqlx::Error, url: &str) -> DbError {
        match e {
            sqlx::Error::Io(io) => DbError::new(
                DbErrorKind::Connection,
                format!(
                    "cannot reach the database at {url}: {io}. Check that the server is running and the URL is right"
                ),
            ),
            other => DbError::from_sqlx(other, url),
        }
    }

    /// A row refers to a row that is not there (yet): PostgreSQL 23503,
    /// SQLite SQLITE_CONSTRAINT_FOREIGNKEY (787).
    pub fn is_foreign_key_violation(&self) -> bool {
        matches!(self.code.as_deref(), Some("23503" | "787"))
    }

    /// Converts an sqlx error, keeping the server's fields. `url` is the
    /// redacted URL, used to say where a connection failed.
    pub(crate) fn from_sqlx(e: sqlx::Error, url: &str) -> DbError {
        match e {
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.into_owned());
                let (position, detail, hint) =
                    match db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                        Some(pg) => (
                            match pg.position() {
                                Some(sqlx::postgres::PgErrorPosition::Original(p)) => {
                                    u32::try_from(p).ok()
                                }
                                _ => None,
                            },
                            pg.detail().map(str::to_string),
                            pg.hint().map(str::to_string),
                        ),
                        None => (None, None, None),
                    };
                let lock_timeout = matches!(
                    code.as_deref(),
                    Some("55P03") | Some("5") | Some("261") | Some("517") | Some("6")
                );
                let pg = code.as_deref().filter(|c| c.len() == 5);
                let kind = if lock_timeout {
                    DbErrorKind::LockTimeout
                } else if matches!(pg, Some("40P01") | Some("40001")) {
                    DbErrorKind::Conflict
                } else if pg.is_some_and(|c| {
                    c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03")
                }) {
                    DbErrorKind::Connection
                } else {
                    DbErrorKind::Statement
                };
                DbError {
                    kind,
                    message: db.message().to_string(),
                    code,
                    position,
                    detail,
                    hint,
                    lock_wait: None,
                }
            }
            sqlx::Error::Io(io) => DbError::new(
                DbErrorKind::Connection,
                format!("the connection to {url} broke: {io}"),
            ),
            sqlx::Error::Tls(tls) => DbError::new(
                DbErrorKind::Connection,
                format!("TLS failed talking to {url}: {tls}"),
            ),
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => DbError::new(
                DbErrorKind::Connection,
                format!("the connection to {url} was closed"),
            ),
            // The server's answer broke off or made no sense: the
            // conversation, and so the connection, is over.
            sqlx::Error::Protocol(p) => DbError::new(
                DbErrorKind::Connection,
                format!("the connection to {url} broke: {p}"),
            ),
            sqlx::Error::WorkerCrashed => DbError::new(
                DbErrorKind::Connection,
                format!("the connection to {url} broke"),
            ),
            sqlx::Error::Configuration(c) => {
                DbError::usage(format!("the database URL {url} is not valid: {c}"))
            }
            other => DbError::new(DbErrorKind::Statement, other.to_string()),
        }
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        if let Some(detail) = &self.detail {
            write!(f, "\n  detail: {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        if let Some(wait) = &self.lock_wait {
            write!(f, "\n  {}", wait.to_string().replace('\n', "\n  "))?;
        }
        Ok(())
    }
}

impl std::error::Error for DbError {}
