//! Transactions: a migration's own, with its timeouts; savepoints inside
//! them; and when a commit is on disk.

use super::{DbError, Relation, Session, quote_ident};
use async_trait::async_trait;
use std::time::Duration;

/// How long a statement waits for a lock unless keel.toml says otherwise:
/// short, since a statement waiting for ACCESS EXCLUSIVE queues every
/// query of the table behind it.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(2);

/// Limits applied to each migration's statements.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// How long a statement waits for a lock before it gives up.
    pub lock: Duration,
    /// How long a statement may run.
    pub statement: Duration,
}

/// A statement of a batch failed: which one (`None`: none of the given
/// statements, e.g. opening the transaction), and the server's error with its
/// position relative to that statement.
#[derive(Debug)]
pub struct StatementError {
    /// 0-based index of the failing statement in the batch; `None`: none of them.
    pub index: Option<usize>,
    /// The server's error, its position relative to that statement.
    pub error: DbError,
}

/// What [`Transactions::bisect`] did with a backfill batch some row broke.
#[derive(Debug, Default)]
pub struct Bisected {
    /// Rows the parts that went through changed.
    pub updated: u64,
    /// UPDATEs of parts it ran.
    pub attempts: u64,
    /// The rows that broke the batch, each with its own error.
    pub failed: Vec<(i64, DbError)>,
}

/// Which half of [`Transactions::commit_and_reset`] failed.
#[derive(Debug)]
pub enum CommitError {
    /// The COMMIT: the transaction did not commit, or, when the connection
    /// was lost, nobody can tell.
    Commit(DbError),
    /// The reset after a COMMIT that took effect.
    Reset(DbError),
}

/// Opening, ending and nesting transactions. Only opening one and the
/// session's timeouts differ between the dialects; the rest is the same SQL.
#[async_trait]
pub trait Transactions: Session {
    /// Opens a transaction for one migration, with its timeouts. `durable`
    /// false lets the commit return before the WAL is flushed (PostgreSQL
    /// `synchronous_commit = off`), which stays atomic.
    async fn begin(&mut self, timeouts: Timeouts, durable: bool) -> Result<(), DbError>;

    /// [`begin`](Transactions::begin), then runs `statements` in that
    /// transaction, in order, stopping at the first error. The error says
    /// which statement failed (`None`: opening the transaction did), with
    /// any position relative to that statement. The transaction stays open
    /// either way: the caller commits or rolls back.
    ///
    /// This default sends one statement at a time; PostgreSQL overrides it
    /// to send everything in one round trip.
    async fn begin_and_run(
        &mut self,
        timeouts: Timeouts,
        durable: bool,
        statements: &[&str],
    ) -> Result<(), StatementError> {
        begin_and_run_one_by_one(self, timeouts, durable, statements).await
    }

    /// Keeps other sessions from writing `tables` until the open
    /// transaction ends, so that a backup taken now holds exactly the rows
    /// the migration's statements will find. Waits at most the
    /// transaction's lock timeout. By default (SQLite) nothing to do: the
    /// write transaction already excludes every other writer.
    async fn lock_for_backup(&mut self, tables: &[Relation]) -> Result<(), DbError> {
        let _ = tables;
        Ok(())
    }

    /// Runs `statements` in the open transaction, in order, stopping at the
    /// first error, which says which statement failed.
    async fn run_open(&mut self, statements: &[&str]) -> Result<(), StatementError> {
        for (i, sql) in statements.iter().enumerate() {
            self.execute(sql).await.map_err(|error| StatementError {
                index: Some(i),
                error,
            })?;
        }
        Ok(())
    }

    /// Commits the open transaction.
    async fn commit(&mut self) -> Result<(), DbError> {
        self.execute("COMMIT").await
    }

    /// Commits the open transaction, then resets the session (see
    /// [`Session::reset_session`]). PostgreSQL overrides it to do both in
    /// one round trip, a thousandth of a second per migration of a long run.
    async fn commit_and_reset(&mut self) -> Result<(), CommitError> {
        self.commit().await.map_err(CommitError::Commit)?;
        self.reset_session().await.map_err(CommitError::Reset)
    }

    /// Rolls the open transaction back.
    async fn rollback(&mut self) -> Result<(), DbError> {
        self.execute("ROLLBACK").await
    }

    /// Marks a point the transaction can roll back to.
    async fn savepoint(&mut self, name: &str) -> Result<(), DbError> {
        self.execute(&format!("SAVEPOINT {}", quote_ident(name)))
            .await
    }

    /// Undoes what ran since the savepoint `name`; the transaction goes on.
    async fn rollback_to_savepoint(&mut self, name: &str) -> Result<(), DbError> {
        self.execute(&format!("ROLLBACK TO SAVEPOINT {}", quote_ident(name)))
            .await
    }

    /// Makes [`bisect`](Transactions::bisect) ready, outside any
    /// transaction; `false` (the default) when the client bisects a batch
    /// itself, with savepoints, as on SQLite, where a statement is a call
    /// and not a round trip.
    async fn prepare_bisect(&mut self) -> Result<bool, DbError> {
        Ok(false)
    }

    /// Runs a backfill batch `lo < key <= hi` (whose keys are `keys`) that
    /// some row broke again inside the open transaction, bisected on the
    /// server: `update` with `$1`, `$2` the bounds of a part
    /// (`update_from_start`: `$1` its upper bound) over halves that are
    /// split again when they fail, down to single rows, which are
    /// skipped with their error. Only data errors are caught; any other
    /// error is returned and the caller rolls back. Only after
    /// [`prepare_bisect`](Transactions::prepare_bisect) said `true`.
    async fn bisect(
        &mut self,
        update: &str,
        update_from_start: &str,
        lo: Option<i64>,
        hi: i64,
        keys: &[i64],
    ) -> Result<Bisected, DbError> {
        let _ = (update, update_from_start, lo, hi, keys);
        Err(DbError::usage(
            "this database bisects backfill batches from the client",
        ))
    }

    /// Sets the timeouts for the session, for statements run outside a
    /// transaction (non-transactional migrations).
    async fn set_session_timeouts(&mut self, timeouts: Timeouts) -> Result<(), DbError>;

    /// Waits until every commit this session made is on disk, including
    /// those made with `durable = false`; `false` when that did not happen
    /// within `timeout`. By default (SQLite) commits are on disk when they
    /// return.
    async fn wait_durable(&mut self, timeout: Duration) -> Result<bool, DbError> {
        let _ = timeout;
        Ok(true)
    }
}

/// [`Transactions::begin_and_run`] a statement at a time: a round trip each.
pub(crate) async fn begin_and_run_one_by_one<D: Transactions + ?Sized>(
    db: &mut D,
    timeouts: Timeouts,
    durable: bool,
    statements: &[&str],
) -> Result<(), StatementError> {
    db.begin(timeouts, durable)
        .await
        .map_err(|error| StatementError { index: None, error })?;
    db.run_open(statements).await
}
