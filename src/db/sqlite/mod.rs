//! SQLite, one file per role: [`session`] (statements, transactions),
//! [`tracking`] (keel's rows and the run lock file), [`catalog`] (the
//! schema, from its pragmas) and [`bulk`] (multi-row inserts, CSV,
//! `VACUUM INTO`). It has no live statistics: [`crate::db::Live`]'s
//! defaults say so.

mod bulk;
mod catalog;
mod fill;
mod fingerprint;
mod session;
mod tracking;

use super::{DbError, Live};
use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use std::fs::File;
use std::path::PathBuf;
use std::str::FromStr;

/// One connection to a SQLite database file (or one in memory).
pub struct Sqlite {
    conn: SqliteConnection,
    url: String,
    /// The database file, for the run lock beside it; `None` in memory.
    path: Option<PathBuf>,
    /// The run lock, while this connection holds it.
    lock: Option<File>,
}

impl Sqlite {
    /// Opens the file (creating it when missing) with foreign keys enforced.
    pub async fn connect(url: &str, display: String) -> Result<Sqlite, DbError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| DbError::from_sqlx(e, &display))?
            .create_if_missing(true)
            .foreign_keys(true)
            .disable_statement_logging();
        let path = options.get_filename();
        let path = (!path.as_os_str().is_empty() && path != std::path::Path::new(":memory:"))
            .then(|| path.to_path_buf());
        let conn = options
            .connect()
            .await
            .map_err(|e| DbError::from_sqlx_connect(e, &display))?;
        Ok(Sqlite {
            conn,
            url: display,
            path,
            lock: None,
        })
    }

    fn err(&self, e: sqlx::Error) -> DbError {
        DbError::from_sqlx(e, &self.url)
    }
}

impl Live for Sqlite {}
