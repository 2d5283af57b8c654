//! keel's own tables on SQLite (the rows' SQL is
//! [`crate::db::tracking`]'s), and the run lock: a lock file beside the
//! database.

use super::Sqlite;
use crate::db::tracking::{
    self, ADDED_COLUMNS, META, TABLE, bind_row, delete_row, insert_database_id, insert_note,
    read_row, select_database_id, select_notes, select_rows, select_schema_before, upsert_row,
};
use crate::db::{
    DbError, DbErrorKind, LockHolder, RunLock, Runs, Session, Tracking, TrackingRow, quote_ident,
};
use async_trait::async_trait;
use std::fs::File;
use std::path::PathBuf;

#[async_trait]
impl Tracking for Sqlite {
    async fn ensure_tracking(&mut self) -> Result<(), DbError> {
        self.execute(&format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (
                version TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                checksum TEXT NOT NULL,
                state TEXT NOT NULL,
                applied_at TEXT NOT NULL,
                applied_by TEXT NOT NULL,
                execution_ms INTEGER NOT NULL,
                statements_done INTEGER NOT NULL DEFAULT 0,
                error TEXT,
                backup TEXT,
                backup_sha256 TEXT
            );
            CREATE TABLE IF NOT EXISTS {META} (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
        ))
        .await?;
        let have = self.column_names(TABLE).await?;
        for (column, ty) in ADDED_COLUMNS {
            if !have.iter().any(|c| c == column) {
                self.execute(&format!(
                    "ALTER TABLE {TABLE} ADD COLUMN {} {ty}",
                    quote_ident(column)
                ))
                .await?;
            }
        }
        let id = tracking::new_database_id()
            .map_err(|e| DbError::new(DbErrorKind::Connection, e.to_string()))?;
        sqlx::query(&insert_database_id(META))
            .bind(id)
            .execute(&mut self.conn)
            .await
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    async fn tracking_rows(&mut self) -> Result<Vec<TrackingRow>, DbError> {
        self.read_tracking(None).await
    }

    async fn tracking_row(&mut self, version: &str) -> Result<Option<TrackingRow>, DbError> {
        Ok(self.read_tracking(Some(version)).await?.pop())
    }

    async fn write_tracking(&mut self, row: &TrackingRow) -> Result<(), DbError> {
        let sql = upsert_row(TABLE);
        bind_row::<sqlx::Sqlite>(&sql, row)
            .execute(&mut self.conn)
            .await
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    async fn schema_before(&mut self, version: &str) -> Result<Option<String>, DbError> {
        // A table an older keel made, and no up since: nothing kept.
        if !self
            .column_names(TABLE)
            .await?
            .iter()
            .any(|c| c == "schema_before")
        {
            return Ok(None);
        }
        sqlx::query_scalar(&select_schema_before(TABLE))
            .bind(version)
            .fetch_optional(&mut self.conn)
            .await
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    async fn delete_tracking(&mut self, version: &str) -> Result<(), DbError> {
        sqlx::query(&delete_row(TABLE))
            .bind(version)
            .execute(&mut self.conn)
            .await
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    async fn add_note(&mut self, key: &str, value: &str) -> Result<(), DbError> {
        sqlx::query(&insert_note(META))
            .bind(key)
            .bind(value)
            .execute(&mut self.conn)
            .await
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    async fn notes(&mut self, prefix: &str) -> Result<Vec<(String, String)>, DbError> {
        if !self.has_table(META).await? {
            return Ok(Vec::new());
        }
        sqlx::query_as(&select_notes(META))
            .bind(prefix)
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e))
    }

    async fn database_id(&mut self) -> Result<Option<String>, DbError> {
        if !self.has_table(META).await? {
            return Ok(None);
        }
        sqlx::query_scalar(&select_database_id(META))
            .fetch_optional(&mut self.conn)
            .await
            .map_err(|e| self.err(e))
    }

    async fn lock_runs(
        &mut self,
        wait: std::time::Duration,
        on_wait: &(dyn for<'h> Fn(Option<&'h LockHolder>) + Sync),
    ) -> Result<RunLock, DbError> {
        // An exclusive SQLite transaction for the whole run would make the run
        // one commit; a lock file beside the database keeps runs one at a time
        // while each migration still commits on its own.
        let Some(lock_path) = self.lock_path() else {
            return Ok(RunLock::Taken);
        };
        let lock_error = |e: std::io::Error| {
            DbError::new(
                DbErrorKind::Connection,
                format!("run lock {}: {e}", lock_path.display()),
            )
        };
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(lock_error)?;
        let holder = || {
            std::fs::read_to_string(&lock_path)
                .ok()
                .and_then(|s| lock_file::parse(&s))
        };
        // Polled, like PostgreSQL's advisory lock, so that the wait can end.
        let deadline = tokio::time::Instant::now() + wait;
        let mut pause = std::time::Duration::from_millis(20);
        let mut said = false;
        let waiting_since = tokio::time::Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => return Err(lock_error(e)),
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(RunLock::Busy(holder()));
            }
            if !said {
                // The holder writes who it is just after it takes the lock:
                // a wait that starts in between reads an empty file, so the
                // next polls look again before keel says it waits unnamed.
                let known = holder();
                if known.is_some() || now >= waiting_since + UNNAMED_AFTER {
                    on_wait(known.as_ref());
                    said = true;
                }
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(std::time::Duration::from_millis(250));
        }
        let mut file = file;
        // Who holds it, for a run that has to wait: the OS lets go of the
        // lock when this process ends, however it ends.
        lock_file::write(&mut file).map_err(lock_error)?;
        self.lock = Some(file);
        Ok(RunLock::Taken)
    }

    async fn runs(&mut self) -> Result<Runs, DbError> {
        let Some(lock_path) = self.lock_path().filter(|_| self.lock.is_none()) else {
            return Ok(Runs::Idle);
        };
        // No file: no run ever locked this database.
        let Ok(file) = File::options().write(true).open(&lock_path) else {
            return Ok(Runs::Idle);
        };
        Ok(match file.try_lock() {
            // Taken to look, and let go with the file.
            Ok(()) => Runs::Idle,
            Err(_) => Runs::Running(
                std::fs::read_to_string(&lock_path)
                    .ok()
                    .and_then(|s| lock_file::parse(&s)),
            ),
        })
    }

    async fn unlock_runs(&mut self) -> Result<(), DbError> {
        // Dropping the file releases the lock.
        if let Some(file) = self.lock.take() {
            let _ = file.set_len(0);
        }
        Ok(())
    }
}

impl Sqlite {
    /// The run lock's file, beside the database; none in memory.
    fn lock_path(&self) -> Option<PathBuf> {
        let mut lock_path = self.path.clone()?.into_os_string();
        lock_path.push(".lock");
        Some(PathBuf::from(lock_path))
    }

    /// Whether the main database has a table `name`.
    async fn has_table(&mut self, name: &str) -> Result<bool, DbError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
        )
        .bind(name)
        .fetch_one(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    /// The column names of table `name`.
    async fn column_names(&mut self, name: &str) -> Result<Vec<String>, DbError> {
        sqlx::query_scalar("SELECT name FROM pragma_table_info(?)")
            .bind(name)
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e))
    }

    /// Every tracking row, or the one of `version`; none when the table
    /// does not exist.
    async fn read_tracking(&mut self, version: Option<&str>) -> Result<Vec<TrackingRow>, DbError> {
        if !self.has_table(TABLE).await? {
            return Ok(Vec::new());
        }
        let columns = self.column_names(TABLE).await?;
        // Read by an older table too (before `ensure_tracking` added them).
        let has_backup = columns.iter().any(|c| c == "backup_sha256");
        let sql = select_rows(TABLE, has_backup, version.is_some());
        let mut query = sqlx::query(&sql);
        if let Some(v) = version {
            query = query.bind(v);
        }
        let rows = query
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(read_row)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.err(e))
    }
}

/// How long a wait for the run lock may go before keel says it waits
/// without having read who holds it.
const UNNAMED_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// The run lock file's contents: the holder's pid, host and start, one
/// `key=value` a line.
mod lock_file {
    use crate::db::LockHolder;
    use std::io::{Seek, Write};

    pub(super) fn write(file: &mut std::fs::File) -> std::io::Result<()> {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_default();
        file.set_len(0)?;
        file.rewind()?;
        write!(
            file,
            "pid={}\nhost={host}\nsince={}\n",
            std::process::id(),
            chrono::Utc::now().to_rfc3339()
        )
    }

    /// Untrusted text: anything unexpected gives no holder rather than an error.
    pub(super) fn parse(text: &str) -> Option<LockHolder> {
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(|v| {
                    v.chars()
                        .filter(|c| !c.is_control())
                        .take(200)
                        .collect::<String>()
                })
        };
        Some(LockHolder {
            pid: field("pid")?.parse().ok()?,
            application: None,
            client: field("host").filter(|h| !h.is_empty()),
            state: None,
            since: field("since")
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&chrono::Utc)),
            query: None,
            backend: false,
        })
    }
}
