//! A transactional migration: its statements and its tracking row commit
//! together or not at all.

use super::error::RunError;
use super::failure::{failure, lost, retry_reason};
use super::hook::Hook;
use super::runner::{Direction, Event, Run, Runner, forget_backfill, initial_state};
use crate::db::{BackupRef, CommitError, DbError, Relation, Timeouts};
use crate::migration::Migration;

impl Runner<'_> {
    /// The migration and its tracking row commit together or not at all; a
    /// lock timeout, deadlock or serialization failure rolls back and
    /// retries the whole migration. The session is reset with the COMMIT
    /// (one round trip); what that reset gave is returned for the caller,
    /// which decides what a failed reset after a commit means.
    pub(super) async fn run_in_transaction(
        &mut self,
        run: &Run<'_>,
        durable: bool,
        hook: &mut dyn Hook,
    ) -> Result<Result<(), DbError>, RunError> {
        let (m, dir, backup) = (run.m, run.dir, run.backup);
        let (file, classified) = run.file();
        let statements = &classified.statements;
        let timeouts = self.settings.timeouts(m);
        let retries = self.settings.retries(m);
        let mut attempt = 0;
        let texts: Vec<&str> = statements.iter().map(|s| s.sql.as_str()).collect();
        let within = match dir {
            Direction::Up => hook.backs_up_within(),
            Direction::Down => None,
        };
        loop {
            let mut made: Option<BackupRef> = None;
            let ran = match &within {
                // One round trip on PostgreSQL: BEGIN, timeouts, statements.
                None => self
                    .db
                    .begin_and_run(timeouts, durable, &texts)
                    .await
                    .map_err(|e| match e.index {
                        None => Stop::Begin(e.error),
                        Some(i) => Stop::Sql(Some(i), e.error),
                    }),
                Some(tables) => {
                    self.begin_with_backup(m, tables, timeouts, durable, &texts, hook, &mut made)
                        .await
                }
            };
            let backup = made.as_ref().or(backup);
            if let Err(Stop::Begin(error)) = ran {
                // Opening the transaction failed: no statement ran.
                if error.is_connection() {
                    return Err(lost(m, dir, &file, None, error, "nothing of it ran"));
                }
                let _ = self.db.rollback().await;
                return Err(error.into());
            }
            let outcome = match ran {
                Ok(()) => self.record_and_commit(run, backup, hook).await,
                Err(stop) => Err(stop),
            };
            let (index, error, at_commit) = match outcome {
                Ok(reset) => return Ok(reset),
                Err(Stop::Hook(e)) => {
                    let _ = self.db.rollback().await;
                    if made.is_some() {
                        hook.up_rolled_back(m);
                    }
                    return Err(e);
                }
                Err(Stop::Sql(index, error)) => (index, error, false),
                Err(Stop::Begin(error)) => (None, error, false),
                Err(Stop::Commit(error)) => (None, error, true),
            };
            // A COMMIT that got no answer may have made the tracking row
            // that records the archive: it stays. Otherwise the transaction
            // is gone, and no tracking row points to the archive.
            if made.is_some() && !(at_commit && error.is_connection()) {
                hook.up_rolled_back(m);
            }
            let stmt = index.map(|i| &statements[i]);
            if error.is_connection() {
                // The server ends an open transaction with its connection;
                // a COMMIT that got no answer may have happened or not.
                let what = if at_commit {
                    "its COMMIT got no answer, so keel cannot tell whether it took effect: `keel status` says"
                } else {
                    "its transaction had not committed and ended with the connection: nothing of it was kept"
                };
                return Err(lost(m, dir, &file, stmt, error, what));
            }
            // A failed COMMIT has ended the transaction already.
            if !at_commit {
                let _ = self.db.rollback().await;
            }
            if error.is_retryable() && attempt < retries {
                attempt += 1;
                let wait = self.settings.backoff(attempt);
                (self.on_event)(Event::Retry {
                    migration: m,
                    reason: retry_reason(&error),
                    attempt,
                    retries,
                    wait,
                });
                tokio::time::sleep(wait).await;
                continue;
            }
            let what = match dir {
                Direction::Up => "nothing of it was kept",
                Direction::Down => "nothing of it was kept; the migration is still applied",
            };
            return Err(failure(m, dir, &file, stmt, error, what.into(), None));
        }
    }
}

impl Runner<'_> {
    /// After the statements, in the open transaction: the tracking row
    /// (and, going down, the restore), then the COMMIT with the reset.
    async fn record_and_commit(
        &mut self,
        run: &Run<'_>,
        backup: Option<&BackupRef>,
        hook: &mut dyn Hook,
    ) -> Result<Result<(), DbError>, Stop> {
        let (m, dir, started) = (run.m, run.dir, run.started);
        match dir {
            Direction::Up => {
                // Checked against the schema the SQL just made, so
                // that a wrong [backfill] keeps nothing.
                crate::backfill::preflight::check(
                    self.db,
                    m,
                    crate::backfill::preflight::When::BeforeCommit,
                )
                .await
                .map_err(|e| Stop::Hook(RunError::Backfill(Box::new(e))))?;
                let mut row = self.tracking_row(m, initial_state(m), started);
                row.backup = backup.cloned();
                row.schema_before = run.schema_before.map(str::to_string);
                self.db
                    .write_tracking(&row)
                    .await
                    .map_err(|e| Stop::Sql(None, e))?;
            }
            Direction::Down => {
                hook.after_down(self.db, m, run.analysis, backup, true)
                    .await
                    .map_err(Stop::Hook)?;
                forget_backfill(self.db, m)
                    .await
                    .map_err(|e| Stop::Sql(None, e))?;
                self.db
                    .delete_tracking(&m.version.to_string())
                    .await
                    .map_err(|e| Stop::Sql(None, e))?;
            }
        }
        match self.db.commit_and_reset().await {
            Ok(()) => Ok(Ok(())),
            Err(CommitError::Reset(e)) => Ok(Err(e)),
            Err(CommitError::Commit(e)) => Err(Stop::Commit(e)),
        }
    }

    /// Opens `m`'s transaction, locks `tables` against writes, has `hook`
    /// back them up on this connection (the archive into `made`), then runs
    /// the statements: the backup holds exactly the rows they find.
    #[allow(clippy::too_many_arguments)]
    async fn begin_with_backup(
        &mut self,
        m: &Migration,
        tables: &[Relation],
        timeouts: Timeouts,
        durable: bool,
        texts: &[&str],
        hook: &mut dyn Hook,
        made: &mut Option<BackupRef>,
    ) -> Result<(), Stop> {
        self.db
            .begin(timeouts, durable)
            .await
            .map_err(Stop::Begin)?;
        // Under the migration's lock_timeout: a lock timeout here is
        // retried like one of its statements.
        self.db
            .lock_for_backup(tables)
            .await
            .map_err(|e| Stop::Sql(None, e))?;
        *made = hook.within_up(self.db, m).await.map_err(Stop::Hook)?;
        self.db
            .run_open(texts)
            .await
            .map_err(|e| Stop::Sql(e.index, e.error))
    }
}

/// Why a migration's transaction stopped.
enum Stop {
    /// Opening the transaction (BEGIN and its settings): nothing ran.
    Begin(DbError),
    /// A statement (its index, if it was one of the file's) or the tracking write.
    Sql(Option<usize>, DbError),
    /// The COMMIT itself (a deferred constraint, a serialization failure,
    /// the connection).
    Commit(DbError),
    /// The hook failed (a restore): its error as it is.
    Hook(RunError),
}
