use super::error::{ConnectionLost, RunError, StatementFailure};
use super::hook::{Hook, NoHook};
use super::ledger::{FLUSH_WAIT, Ledger};
use super::status::{Entry, State, reconcile};
use crate::analysis::{Statement, split};
use crate::db::{
    BackupRef, Database, DbError, DbErrorKind, StatementError, Timeouts, TrackingRow, TrackingState,
};
use crate::migration::{Migration, Reversibility, Version};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Project-wide defaults, overridden per migration by migration.toml.
#[derive(Debug, Clone, Copy)]
pub struct RunSettings {
    pub lock_timeout: Duration,
    pub statement_timeout: Duration,
    pub retries: u32,
    /// First back-off after a lock timeout; doubles on each retry.
    pub backoff: Duration,
    /// Backfill batch size and pause from the command line; they win over
    /// migration.toml's `[backfill]`.
    pub batch_size: Option<u64>,
    pub batch_delay: Option<Duration>,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            lock_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(3600),
            retries: 3,
            backoff: Duration::from_millis(500),
            batch_size: None,
            batch_delay: None,
        }
    }
}

/// What the runner reports while it works, for the CLI to print.
#[derive(Debug)]
pub enum Event<'a> {
    /// Another run holds the run lock; who, when the database can tell.
    WaitingForLock(Option<&'a crate::db::LockHolder>),
    /// How many migrations this run will apply or revert.
    Planned(usize),
    Applying(&'a Migration),
    Applied(&'a Migration, Duration),
    Reverting(&'a Migration),
    Reverted(&'a Migration, Duration),
    /// A statement lost to other sessions (`reason`: lock timeout,
    /// deadlock, serialization failure); nothing of it was kept, and keel
    /// tries again after `wait`.
    Retry {
        migration: &'a Migration,
        reason: &'static str,
        attempt: u32,
        retries: u32,
        wait: Duration,
    },
    DroppedInvalidIndex(String),
    /// A concurrent index build left an INVALID index; keel dropped it and
    /// builds it once more.
    RetryingIndex {
        migration: &'a Migration,
        index: String,
        reason: String,
    },
    Backfill(crate::backfill::Progress<'a>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

/// A migration that committed: how long it took, and whether its commit
/// waited for the flush to disk.
struct Committed {
    took: Duration,
    durable: bool,
}

pub struct Runner<'r> {
    pub db: &'r mut dyn Database,
    pub settings: RunSettings,
    pub operator: String,
    pub on_event: &'r (dyn Fn(Event<'_>) + Sync),
}

impl Runner<'_> {
    /// Applies pending migrations up to and including `to`, in version order.
    /// Returns the migrations applied.
    pub async fn up<'m>(
        &mut self,
        files: &'m [Migration],
        to: Option<Version>,
    ) -> Result<Vec<&'m Migration>, RunError> {
        self.up_with(files, to, &mut NoHook).await
    }

    /// [`Runner::up`] with `hook` around each migration (backups).
    pub async fn up_with<'m>(
        &mut self,
        files: &'m [Migration],
        to: Option<Version>,
        hook: &mut dyn Hook,
    ) -> Result<Vec<&'m Migration>, RunError> {
        self.lock().await?;
        let result = self.up_locked(files, to, hook).await;
        self.unlock(result).await
    }

    async fn up_locked<'m>(
        &mut self,
        files: &'m [Migration],
        to: Option<Version>,
        hook: &mut dyn Hook,
    ) -> Result<Vec<&'m Migration>, RunError> {
        self.db.ensure_tracking().await?;
        let entries = reconcile(files, self.db.tracking_rows().await?);
        refuse_blocked(&entries)?;
        let pending: Vec<&Migration> = entries
            .iter()
            .filter(|e| e.state == State::Pending)
            .filter_map(|e| e.migration)
            .filter(|m| to.is_none_or(|to| m.version <= to))
            .collect();
        // A backfill that an earlier run left unfinished goes first: later
        // migrations (a contract step, a drop) may rely on its data.
        let unfinished: Vec<&Migration> = entries
            .iter()
            .filter(|e| e.state == State::Backfilling)
            .filter_map(|e| e.migration)
            .filter(|m| to.is_none_or(|to| m.version <= to))
            .collect();
        for m in unfinished {
            self.backfill(m).await?;
        }
        (self.on_event)(Event::Planned(pending.len()));
        if !pending.is_empty() {
            hook.prepare(self.db, &pending).await?;
        }
        let mut ledger = Ledger::new(false);
        for (i, m) in pending.iter().enumerate() {
            // A backfill's batches commit durably, and the migration is
            // reported before them.
            let durable = i + 1 == pending.len() || m.meta.backfill.is_some() || ledger.due();
            match self.run(m, Direction::Up, durable, hook).await {
                Ok(committed) => {
                    for (m, took) in ledger.committed(m, committed.took, committed.durable) {
                        (self.on_event)(Event::Applied(m, took));
                    }
                }
                Err(e) => return Err(self.stopped(&mut ledger, Direction::Up, e).await),
            }
            if m.meta.backfill.is_some()
                && let Err(e) = self.backfill(m).await
            {
                return Err(self.stopped(&mut ledger, Direction::Up, e).await);
            }
        }
        Ok(pending)
    }

    /// The run stopped on `e`. A broken connection is reported with what
    /// this run made durable and what may be lost. Otherwise the server is
    /// up: once the commits that did not wait for their flush are on disk,
    /// the migrations they applied (or reverted) are reported, and the
    /// error says they stay.
    async fn stopped(
        &mut self,
        ledger: &mut Ledger<'_>,
        dir: Direction,
        mut e: RunError,
    ) -> RunError {
        if e.is_connection_lost() {
            return ledger.explain(e);
        }
        let flushed = if ledger.has_unconfirmed() {
            match self.db.wait_durable(FLUSH_WAIT).await {
                Ok(flushed) => flushed,
                Err(lost) if lost.is_connection() => return ledger.explain(lost.into()),
                Err(_) => false,
            }
        } else {
            true
        };
        if flushed {
            for (m, took) in ledger.confirm() {
                (self.on_event)(match dir {
                    Direction::Up => Event::Applied(m, took),
                    Direction::Down => Event::Reverted(m, took),
                });
            }
        }
        if let RunError::Statement(s) = &mut e
            && ledger.committed_any()
        {
            let (done, state) = match dir {
                Direction::Up => ("applied", "applied"),
                Direction::Down => ("reverted", "pending"),
            };
            s.outcome.push_str(&if flushed {
                format!("; the migrations this run {done} before it stay {state}")
            } else {
                format!(
                    "; the migrations this run {done} before it committed, but their flush to disk was not confirmed: `keel status` shows them"
                )
            });
        }
        e
    }

    /// Runs or resumes the backfill of migration `version` (`keel backfill`).
    /// `None` when it had already finished.
    pub async fn backfill_one(
        &mut self,
        files: &[Migration],
        version: Version,
    ) -> Result<Option<crate::backfill::Report>, RunError> {
        self.lock().await?;
        let result = self.backfill_one_locked(files, version).await;
        self.unlock(result).await
    }

    async fn backfill_one_locked(
        &mut self,
        files: &[Migration],
        version: Version,
    ) -> Result<Option<crate::backfill::Report>, RunError> {
        let entries = reconcile(files, self.db.tracking_rows().await?);
        let Some(entry) = entries.iter().find(|e| e.version == version.to_string()) else {
            return Err(RunError::Refused {
                message: format!("there is no migration {version}"),
                fix: "`keel status` lists the migrations".into(),
            });
        };
        let Some(m) = entry.migration else {
            return Err(RunError::Refused {
                message: format!("migration {version} is missing from the migrations folder"),
                fix: "restore its folder from version control".into(),
            });
        };
        if m.meta.backfill.is_none() {
            return Err(RunError::Refused {
                message: format!(
                    "migration {} has no [backfill] section in migration.toml",
                    m.id()
                ),
                fix: "`keel backfill` runs the [backfill] of a migration that has one".into(),
            });
        }
        match entry.state {
            State::Backfilling => self.backfill(m).await.map(Some),
            State::Applied => Ok(None),
            State::Pending => Err(RunError::Refused {
                message: format!("migration {} is pending: its SQL has not run yet", m.id()),
                fix: format!(
                    "`keel up --to {}` applies it and runs the backfill",
                    m.version
                ),
            }),
            _ => refuse_blocked(std::slice::from_ref(entry)).map(|()| None),
        }
    }

    /// Runs `m`'s backfill; when every row is done and the validation
    /// passed, the migration becomes `applied`. `execute` calls it right
    /// after [`Runner::apply_one`], under the lock it holds.
    pub async fn backfill(&mut self, m: &Migration) -> Result<crate::backfill::Report, RunError> {
        use crate::backfill;
        let spec = m.meta.backfill.as_ref();
        let opts = backfill::Options {
            batch_size: self
                .settings
                .batch_size
                .or(spec.and_then(|s| s.batch_size))
                .unwrap_or(backfill::DEFAULT_BATCH_SIZE),
            delay: self
                .settings
                .batch_delay
                .or(spec.and_then(|s| s.delay_ms).map(Duration::from_millis))
                .unwrap_or(backfill::DEFAULT_DELAY),
            timeouts: self.timeouts(m),
            retries: m.meta.retries.unwrap_or(self.settings.retries),
            backoff: self.settings.backoff,
            dir: PathBuf::from("backfills"),
        };
        let on_event = self.on_event;
        let report = backfill::run(self.db, m, &opts, &|p| on_event(Event::Backfill(p)))
            .await
            .map_err(|e| RunError::Backfill(Box::new(e)))?;
        if !report.ok() {
            return Err(RunError::Backfill(Box::new(
                backfill::BackfillError::Incomplete(Box::new(report)),
            )));
        }
        let v = m.version.to_string();
        if let Some(mut row) = self
            .db
            .tracking_rows()
            .await?
            .into_iter()
            .find(|r| r.version == v)
        {
            row.state = TrackingState::Applied;
            self.db.write_tracking(&row).await?;
        }
        Ok(report)
    }

    /// Reverts applied migrations, newest first: `steps` of them, or every
    /// one newer than `to`.
    pub async fn down<'m>(
        &mut self,
        files: &'m [Migration],
        steps: Option<usize>,
        to: Option<Version>,
    ) -> Result<Vec<&'m Migration>, RunError> {
        self.down_with(files, steps, to, &mut NoHook).await
    }

    /// [`Runner::down`] with `hook` around each migration (restores).
    pub async fn down_with<'m>(
        &mut self,
        files: &'m [Migration],
        steps: Option<usize>,
        to: Option<Version>,
        hook: &mut dyn Hook,
    ) -> Result<Vec<&'m Migration>, RunError> {
        self.lock().await?;
        let result = self.down_locked(files, steps, to, hook).await;
        self.unlock(result).await
    }

    async fn down_locked<'m>(
        &mut self,
        files: &'m [Migration],
        steps: Option<usize>,
        to: Option<Version>,
        hook: &mut dyn Hook,
    ) -> Result<Vec<&'m Migration>, RunError> {
        let entries = reconcile(files, self.db.tracking_rows().await?);
        refuse_blocked(&entries)?;
        let targets = down_targets(&entries, steps, to);
        for m in &targets {
            refuse_irreversible(m)?;
        }
        (self.on_event)(Event::Planned(targets.len()));
        let mut ledger = Ledger::new(true);
        for (i, m) in targets.iter().enumerate() {
            let durable = i + 1 == targets.len() || ledger.due();
            match self.run(m, Direction::Down, durable, hook).await {
                Ok(committed) => {
                    for (m, took) in ledger.committed(m, committed.took, committed.durable) {
                        (self.on_event)(Event::Reverted(m, took));
                    }
                }
                Err(e) => return Err(self.stopped(&mut ledger, Direction::Down, e).await),
            }
        }
        Ok(targets)
    }

    /// Applies one migration, with the run lock already held by the caller
    /// ([`Runner::lock`]), who has also checked that it is the next pending
    /// one. For `execute`, which holds the lock from its backup to its
    /// post-migration checks.
    pub async fn apply_one(&mut self, m: &Migration, hook: &mut dyn Hook) -> Result<(), RunError> {
        self.db.ensure_tracking().await?;
        let committed = self.run(m, Direction::Up, true, hook).await?;
        (self.on_event)(Event::Applied(m, committed.took));
        Ok(())
    }

    /// Reverts one applied migration, with the run lock held by the caller.
    pub async fn revert_one(&mut self, m: &Migration, hook: &mut dyn Hook) -> Result<(), RunError> {
        refuse_irreversible(m)?;
        let committed = self.run(m, Direction::Down, true, hook).await?;
        (self.on_event)(Event::Reverted(m, committed.took));
        Ok(())
    }

    /// Takes the one-runner-at-a-time lock, saying so if it has to wait.
    pub async fn lock(&mut self) -> Result<(), RunError> {
        let on_event = self.on_event;
        self.db
            .lock_runs(&|holder| on_event(Event::WaitingForLock(holder)))
            .await?;
        Ok(())
    }

    /// Releases the run lock; the work's own error wins over an unlock error.
    pub async fn unlock<T>(&mut self, result: Result<T, RunError>) -> Result<T, RunError> {
        let unlocked = self.db.unlock_runs().await;
        let value = result?;
        unlocked?;
        Ok(value)
    }

    fn timeouts(&self, m: &Migration) -> Timeouts {
        Timeouts {
            lock: m.meta.lock_timeout.unwrap_or(self.settings.lock_timeout),
            statement: m
                .meta
                .statement_timeout
                .unwrap_or(self.settings.statement_timeout),
        }
    }

    /// Runs `m` one way. Emits `Applying`/`Reverting`; the caller reports
    /// it done once its commit is known durable (see [`Ledger`]).
    async fn run(
        &mut self,
        m: &Migration,
        dir: Direction,
        durable: bool,
        hook: &mut dyn Hook,
    ) -> Result<Committed, RunError> {
        // Up: the archive of what it destroys, recorded in its tracking row.
        // Down: the archive its tracking row recorded, the only one to restore.
        let backup = match dir {
            Direction::Up => hook.before_up(self.db, m).await?,
            Direction::Down => {
                let v = m.version.to_string();
                let recorded = self
                    .db
                    .tracking_rows()
                    .await?
                    .into_iter()
                    .find(|r| r.version == v)
                    .and_then(|r| r.backup);
                hook.before_down(self.db, m, recorded.as_ref()).await?;
                recorded
            }
        };
        (self.on_event)(match dir {
            Direction::Up => Event::Applying(m),
            Direction::Down => Event::Reverting(m),
        });
        let started = Instant::now();
        let ran = if m.meta.transaction {
            self.run_in_transaction(m, dir, durable, started, backup.as_ref(), hook)
                .await
        } else {
            self.run_statement_by_statement(m, dir, started, backup.as_ref(), hook)
                .await
        };
        // A `SET search_path` or `SET ROLE` of this migration must not
        // follow the next one (nor keel's own statements). The run's own
        // error, if any, is the one to report.
        let reset = self.db.reset_session().await;
        ran?;
        // Statement by statement, each commit is a durable one.
        let durable = durable || !m.meta.transaction;
        if let Err(e) = reset {
            if !e.is_connection() {
                return Err(e.into());
            }
            let what = if durable {
                "it committed, and its commit is on disk"
            } else {
                "it committed, without a confirmed flush to disk (after a server crash it is pending again)"
            };
            return Err(lost(m, dir, &source(m, dir).0, None, e, what));
        }
        Ok(Committed {
            took: started.elapsed(),
            durable,
        })
    }

    fn tracking_row(&self, m: &Migration, state: TrackingState, started: Instant) -> TrackingRow {
        TrackingRow {
            version: m.version.to_string(),
            name: m.name.clone(),
            checksum: m.checksum.clone(),
            state,
            applied_at: chrono::Utc::now(),
            applied_by: self.operator.clone(),
            execution_ms: started.elapsed().as_millis() as i64,
            statements_done: 0,
            error: None,
            backup: None,
        }
    }

    /// The migration and its tracking row commit together or not at all; a
    /// lock timeout, deadlock or serialization failure rolls back and
    /// retries the whole migration.
    async fn run_in_transaction(
        &mut self,
        m: &Migration,
        dir: Direction,
        durable: bool,
        started: Instant,
        backup: Option<&BackupRef>,
        hook: &mut dyn Hook,
    ) -> Result<(), RunError> {
        let (file, sql) = source(m, dir);
        let statements = split(sql);
        let timeouts = self.timeouts(m);
        let retries = m.meta.retries.unwrap_or(self.settings.retries);
        let mut attempt = 0;
        let texts: Vec<&str> = statements.iter().map(|s| s.sql.as_str()).collect();
        loop {
            // One round trip on PostgreSQL: BEGIN, timeouts, statements.
            let ran = match self.db.begin_and_run(timeouts, durable, &texts).await {
                Err(StatementError { index: None, error }) => {
                    // Opening the transaction failed: no statement ran.
                    if error.is_connection() {
                        return Err(lost(m, dir, &file, None, error, "nothing of it ran"));
                    }
                    let _ = self.db.rollback().await;
                    return Err(error.into());
                }
                Err(StatementError {
                    index: Some(i),
                    error,
                }) => Err((Some(i), error)),
                Ok(()) => Ok(()),
            };
            let outcome = async {
                ran.map_err(|(i, e)| Stop::Sql(i, e))?;
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
                        self.db
                            .write_tracking(&row)
                            .await
                            .map_err(|e| Stop::Sql(None, e))?;
                    }
                    Direction::Down => {
                        hook.after_down(self.db, m, backup, true)
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
                self.db.commit().await.map_err(Stop::Commit)
            }
            .await;
            let (index, error, at_commit) = match outcome {
                Ok(()) => return Ok(()),
                Err(Stop::Hook(e)) => {
                    let _ = self.db.rollback().await;
                    return Err(e);
                }
                Err(Stop::Sql(index, error)) => (index, error, false),
                Err(Stop::Commit(error)) => (None, error, true),
            };
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
                let wait = self.settings.backoff * 2u32.pow(attempt - 1);
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

    /// `transaction = false`: statements run one by one and each commits on
    /// its own. Before the first one the tracking row says `failed` (for a
    /// down, `failed_down`), so that a run killed part-way, in either
    /// direction, leaves a mark that blocks runs until an operator resolves
    /// it, never a migration that looks applied (or pending) with half its
    /// SQL done. A failure on the first statement leaves nothing behind
    /// (keel drops an INVALID index a failed concurrent build left) and puts
    /// the row back as it was.
    async fn run_statement_by_statement(
        &mut self,
        m: &Migration,
        dir: Direction,
        started: Instant,
        backup: Option<&BackupRef>,
        hook: &mut dyn Hook,
    ) -> Result<(), RunError> {
        let (file, sql) = source(m, dir);
        let statements = split(sql);
        let n = statements.len();
        let name = file
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default()
            .to_string();
        let timeouts = self.timeouts(m);
        let retries = m.meta.retries.unwrap_or(self.settings.retries);
        let version = m.version.to_string();
        let failed = match dir {
            Direction::Up => TrackingState::Failed,
            Direction::Down => TrackingState::FailedDown,
        };
        // A broken connection once the failed mark may be written: what
        // the operator finds after the server is back.
        let part_way = |error: DbError, done: usize, stmt: Option<&Statement>| {
            let what = format!(
                "{done} of {n} statements of {name} had finished; the migration is marked {} (keel marks it before its first statement): once the server is back, check which statements took effect and run `keel resolve {version} --applied` or `--reverted`",
                failed.as_str()
            );
            lost(m, dir, &file, stmt, error, &what)
        };
        let before_start = |error: DbError| {
            if error.is_connection() {
                lost(m, dir, &file, None, error, "nothing of it ran")
            } else {
                error.into()
            }
        };
        self.db
            .set_session_timeouts(timeouts)
            .await
            .map_err(before_start)?;
        let invalid_before = self.db.invalid_indexes().await.map_err(before_start)?;
        // The applied row a down starts from, put back if nothing of the
        // down took effect.
        let applied = match dir {
            Direction::Up => None,
            Direction::Down => self
                .db
                .tracking_rows()
                .await
                .map_err(before_start)?
                .into_iter()
                .find(|r| r.version == version),
        };
        let mut row = match &applied {
            Some(a) => TrackingRow {
                state: failed,
                ..a.clone()
            },
            None => TrackingRow {
                backup: backup.cloned(),
                ..self.tracking_row(m, failed, started)
            },
        };
        row.error = Some(stopped_note(dir, &name, 0, n));
        self.db.write_tracking(&row).await.map_err(|e| {
            if e.is_connection() {
                part_way(e, 0, None)
            } else {
                e.into()
            }
        })?;
        for (i, stmt) in statements.iter().enumerate() {
            let index = concurrent_index(&stmt.sql);
            if let Some(ix) = &index {
                // An INVALID index of this name (a build that failed or was
                // killed) would make IF NOT EXISTS skip the build and leave
                // it INVALID: drop it first.
                self.drop_if_invalid(ix)
                    .await
                    .map_err(|e| part_way(e, i, Some(stmt)))?;
            }
            let mut attempt = 0;
            let mut rebuilt = false;
            let error = loop {
                match self.execute_checked(&stmt.sql, index.as_deref()).await {
                    Ok(()) => break None,
                    Err(e) if e.is_connection() => return Err(part_way(e, i, Some(stmt))),
                    Err(e) if !e.is_lock_timeout() && index.is_some() && !rebuilt => {
                        // A failed CREATE INDEX CONCURRENTLY leaves an INVALID
                        // index behind; drop it and build once more (a
                        // deadlock or a cancelled build succeeds then).
                        let ix = index.clone().unwrap_or_default();
                        self.drop_if_invalid(&ix)
                            .await
                            .map_err(|e| part_way(e, i, Some(stmt)))?;
                        rebuilt = true;
                        (self.on_event)(Event::RetryingIndex {
                            migration: m,
                            index: ix,
                            reason: e.message.clone(),
                        });
                    }
                    // One statement is atomic: a lock timeout or a deadlock
                    // kept nothing of it (but an INVALID index).
                    Err(e) if e.is_retryable() && attempt < retries => {
                        if let Some(ix) = &index {
                            self.drop_if_invalid(ix)
                                .await
                                .map_err(|e| part_way(e, i, Some(stmt)))?;
                        }
                        attempt += 1;
                        let wait = self.settings.backoff * 2u32.pow(attempt - 1);
                        (self.on_event)(Event::Retry {
                            migration: m,
                            reason: retry_reason(&e),
                            attempt,
                            retries,
                            wait,
                        });
                        tokio::time::sleep(wait).await;
                    }
                    Err(e) => break Some(e),
                }
            };
            let Some(error) = error else {
                if i + 1 < n {
                    row.statements_done = i as i64 + 1;
                    row.error = Some(stopped_note(dir, &name, i + 1, n));
                    self.db
                        .write_tracking(&row)
                        .await
                        .map_err(|e| part_way(e, i + 1, None))?;
                }
                continue;
            };
            for index in self
                .db
                .invalid_indexes()
                .await
                .map_err(|e| part_way(e, i, Some(stmt)))?
            {
                if !invalid_before.contains(&index) {
                    self.db
                        .drop_index(&index)
                        .await
                        .map_err(|e| part_way(e, i, Some(stmt)))?;
                    (self.on_event)(Event::DroppedInvalidIndex(index));
                }
            }
            if let Some(ix) = &index {
                self.drop_if_invalid(ix)
                    .await
                    .map_err(|e| part_way(e, i, Some(stmt)))?;
            }
            let error = explain_index_failure(index.as_deref(), error);
            let (outcome, then) = if i == 0 {
                let put_back = match &applied {
                    Some(a) => self.db.write_tracking(a).await,
                    None if dir == Direction::Up => self.db.delete_tracking(&version).await,
                    None => Ok(()),
                };
                put_back.map_err(|e| part_way(e, 0, Some(stmt)))?;
                let state = match dir {
                    Direction::Up => "pending",
                    Direction::Down => "applied",
                };
                (
                    format!(
                        "its first statement failed and left nothing behind; the migration stays {state}"
                    ),
                    None,
                )
            } else {
                row.statements_done = i as i64;
                if dir == Direction::Up {
                    row.execution_ms = started.elapsed().as_millis() as i64;
                }
                row.error = Some(format!(
                    "{}statement {} of {n} failed at line {}: {}",
                    match dir {
                        Direction::Up => "",
                        Direction::Down => "reverting with down.sql: ",
                    },
                    i + 1,
                    stmt.line,
                    error.message
                ));
                self.db
                    .write_tracking(&row)
                    .await
                    .map_err(|e| part_way(e, i, Some(stmt)))?;
                (
                    format!(
                        "{i} of {n} statements took effect (transaction = false); the migration is marked {}",
                        match dir {
                            Direction::Up => "failed",
                            Direction::Down => "failed while reverting",
                        }
                    ),
                    Some(resolve_fix(dir, m.version)),
                )
            };
            return Err(failure(m, dir, &file, Some(stmt), error, outcome, then));
        }
        match dir {
            Direction::Up => {
                row.state = initial_state(m);
                row.statements_done = n as i64;
                row.execution_ms = started.elapsed().as_millis() as i64;
                row.error = None;
                self.db
                    .write_tracking(&row)
                    .await
                    .map_err(|e| part_way(e, n, None))?;
            }
            Direction::Down => {
                if let Err(e) = hook.after_down(self.db, m, backup, false).await {
                    // down.sql took effect and cannot be rolled back: the
                    // failed mark stays, saying what is missing.
                    row.statements_done = n as i64;
                    row.error = Some(format!(
                        "every statement of {name} took effect; putting the backed-up data back failed"
                    ));
                    let _ = self.db.write_tracking(&row).await;
                    return Err(e);
                }
                forget_backfill(self.db, m)
                    .await
                    .map_err(|e| part_way(e, n, None))?;
                self.db
                    .delete_tracking(&version)
                    .await
                    .map_err(|e| part_way(e, n, None))?;
            }
        }
        Ok(())
    }

    /// Runs one statement of a non-transactional migration; for a
    /// concurrent index build, also checks that the index came out valid.
    async fn execute_checked(&mut self, sql: &str, index: Option<&str>) -> Result<(), DbError> {
        self.db.execute(sql).await?;
        match index {
            Some(ix) if self.db.index_valid(ix).await? == Some(false) => Err(DbError::new(
                crate::db::DbErrorKind::Statement,
                format!("index {ix} is INVALID after its concurrent build"),
            )),
            _ => Ok(()),
        }
    }

    /// Drops the index `name` if it exists and is INVALID.
    async fn drop_if_invalid(&mut self, name: &str) -> Result<(), DbError> {
        if self.db.index_valid(name).await? == Some(false) {
            self.db.drop_index(&crate::db::quote_relation(name)).await?;
            (self.on_event)(Event::DroppedInvalidIndex(name.to_string()));
        }
        Ok(())
    }

    /// Records what an operator found after a failed non-transactional
    /// migration, whichever way it was going: that it is fully applied, or
    /// fully reverted.
    pub async fn resolve(
        &mut self,
        files: &[Migration],
        version: Version,
        applied: bool,
    ) -> Result<Resolved, RunError> {
        self.lock().await?;
        let result = self.resolve_locked(files, version, applied).await;
        self.unlock(result).await
    }

    async fn resolve_locked(
        &mut self,
        files: &[Migration],
        version: Version,
        applied: bool,
    ) -> Result<Resolved, RunError> {
        let rows = self.db.tracking_rows().await?;
        let v = version.to_string();
        let Some(mut row) = rows.into_iter().find(|r| r.version == v) else {
            return Err(RunError::Refused {
                message: format!(
                    "migration {version} has no tracking row: there is nothing to resolve"
                ),
                fix: "`keel status` lists the failed migrations".into(),
            });
        };
        if !row.state.is_failed() {
            return Err(RunError::Refused {
                message: format!("migration {version} is {}, not failed", row.state.as_str()),
                fix: "only a failed migration needs resolving; `keel status` shows the states"
                    .into(),
            });
        }
        let reverting = row.state == TrackingState::FailedDown;
        let m = files.iter().find(|m| m.version == version);
        if applied {
            // A failed down's row is still the applied row of its up (when,
            // by whom, which checksum); a failed up's is this resolution.
            if !reverting {
                if let Some(m) = m {
                    row.checksum = m.checksum.clone();
                }
                row.applied_by = self.operator.clone();
            }
            row.state = match m {
                Some(m) if backfill_unfinished(self.db, m).await? => TrackingState::Backfilling,
                _ => TrackingState::Applied,
            };
            row.error = None;
            self.db.write_tracking(&row).await?;
        } else {
            if let Some(m) = m {
                forget_backfill(self.db, m).await?;
            }
            self.db.delete_tracking(&v).await?;
        }
        Ok(Resolved {
            reverting,
            backup: row.backup,
            state: if applied {
                row.state.as_str()
            } else {
                "pending"
            },
        })
    }
}

/// What `keel resolve` recorded.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The migration had stopped part-way through down.sql (not up.sql).
    pub reverting: bool,
    /// The archive its up took, as its tracking row recorded it.
    pub backup: Option<BackupRef>,
    /// Its state now: `applied`, `backfilling` or `pending`.
    pub state: &'static str,
}

/// A migration resolved as applied whose backfill has not finished goes
/// on backfilling (`keel up` resumes it) rather than skip it.
async fn backfill_unfinished(db: &mut dyn Database, m: &Migration) -> Result<bool, DbError> {
    if m.meta.backfill.is_none() {
        return Ok(false);
    }
    crate::backfill::store::ensure(db).await?;
    Ok(crate::backfill::store::load(db, &m.version.to_string())
        .await?
        .is_none_or(|s| s.finished_at.is_none()))
}

/// A reverted migration's backfill progress goes with it, so that applying
/// it again starts the backfill afresh.
async fn forget_backfill(db: &mut dyn Database, m: &Migration) -> Result<(), DbError> {
    if m.meta.backfill.is_some() {
        crate::backfill::store::ensure(db).await?;
        crate::backfill::store::forget(db, &m.version.to_string()).await?;
    }
    Ok(())
}

/// Why a migration's transaction stopped.
enum Stop {
    /// A statement (its index, if it was one of the file's) or the tracking write.
    Sql(Option<usize>, DbError),
    /// The COMMIT itself (a deferred constraint, a serialization failure,
    /// the connection).
    Commit(DbError),
    /// The hook failed (a restore): its error as it is.
    Hook(RunError),
}

fn initial_state(m: &Migration) -> TrackingState {
    if m.meta.backfill.is_some() {
        TrackingState::Backfilling
    } else {
        TrackingState::Applied
    }
}

/// The index a `CREATE INDEX CONCURRENTLY` statement builds, by name.
fn concurrent_index(sql: &str) -> Option<String> {
    use crate::analysis::{ActionKind, Schema, classify};
    classify(sql, &mut Schema::default(), false)
        .ops
        .iter()
        .flat_map(|op| &op.actions)
        .find_map(|a| match &a.kind {
            ActionKind::CreateIndex {
                name: Some(name),
                concurrently: true,
                ..
            } => Some(name.clone()),
            _ => None,
        })
}

/// Adds what to do when a concurrent index build failed twice: duplicate
/// keys for a unique index are the usual reason, and need the data fixed.
fn explain_index_failure(index: Option<&str>, mut error: DbError) -> DbError {
    let Some(index) = index else {
        return error;
    };
    let why = if error.code.as_deref() == Some("23505") {
        format!(
            "the table has duplicate keys for unique index {index}, so it cannot be built; \
             find them with `SELECT <columns>, count(*) FROM <table> GROUP BY <columns> HAVING count(*) > 1`, \
             fix them, and run keel up again"
        )
    } else {
        format!("the build of {index} failed twice; no INVALID index was left behind")
    };
    error.hint = Some(match error.hint.take() {
        Some(h) => format!("{h}; {why}"),
        None => why,
    });
    error
}

fn source(m: &Migration, dir: Direction) -> (PathBuf, &str) {
    match dir {
        Direction::Up => (m.up_path(), m.up.as_str()),
        Direction::Down => (m.down_path(), m.down.as_deref().unwrap_or_default()),
    }
}

/// What to do after a retryable error failed on every try; `None` for
/// any other error.
fn retry_advice(error: &DbError) -> Option<&'static str> {
    match error.kind {
        DbErrorKind::LockTimeout => Some(
            "the tables it needs stayed locked by other sessions longer than lock_timeout on every try; \
             find them with `SELECT pid, query FROM pg_stat_activity WHERE wait_event_type = 'Lock'`, \
             or raise lock_timeout/retries in migration.toml",
        ),
        DbErrorKind::Conflict => Some(
            "its SQL is not at fault: on every try a concurrent transaction won (a deadlock, or a \
             serialization failure) and the server rolled the migration back; the server log names \
             the other processes; run it while fewer sessions write these tables, raise retries in \
             migration.toml, or take the locks it needs at its start (LOCK TABLE …) so that it \
             cannot deadlock half-way",
        ),
        _ => None,
    }
}

/// The word for a retried error, for progress lines.
fn retry_reason(error: &DbError) -> &'static str {
    match error.code.as_deref() {
        Some("40P01") => "deadlock",
        Some("40001") => "serialization failure",
        _ => "lock timeout",
    }
}

/// The failed mark's text while a non-transactional migration runs (or
/// after keel stopped part-way): how far it got.
fn stopped_note(dir: Direction, file: &str, done: usize, n: usize) -> String {
    match dir {
        Direction::Up => format!(
            "keel stopped while running {file} statement by statement, after {done} of {n} statements; check which statements took effect"
        ),
        Direction::Down => format!(
            "keel stopped while reverting with {file} statement by statement, after {done} of {n} statements: the migration is partly reverted; check which statements took effect"
        ),
    }
}

/// How to get out of a non-transactional migration that stopped part-way.
fn resolve_fix(dir: Direction, version: Version) -> String {
    match dir {
        Direction::Up => format!(
            "finish or undo the remaining statements by hand, then run `keel resolve {version} --applied` or `--reverted`"
        ),
        Direction::Down => format!(
            "finish the revert by hand (the rest of down.sql) and run `keel resolve {version} --reverted`, or redo what down.sql undid and run `keel resolve {version} --applied`"
        ),
    }
}

/// A statement of `m` failed. `then` is what to do next when it is not
/// "correct the SQL and run again".
fn failure(
    m: &Migration,
    dir: Direction,
    file: &Path,
    stmt: Option<&Statement>,
    error: DbError,
    outcome: String,
    then: Option<String>,
) -> RunError {
    let (line, column) = match (stmt, error.position) {
        (Some(s), Some(p)) => s.position_in_file(p),
        (Some(s), None) => (s.line, s.column),
        (None, _) => (1, 1),
    };
    let again = match dir {
        Direction::Up => "run `keel up` again",
        Direction::Down => "run `keel down` again",
    };
    let fix = match (retry_advice(&error), then) {
        (Some(advice), Some(then)) => format!("{advice}; then {then}"),
        (Some(advice), None) => format!("{advice}; then {again}"),
        (None, Some(then)) => then,
        (None, None) => match dir {
            Direction::Up => {
                "correct the SQL (or the schema it expects) and run `keel up` again".into()
            }
            Direction::Down => "correct down.sql and run `keel down` again".into(),
        },
    };
    RunError::Statement(Box::new(StatementFailure {
        migration: m.id(),
        file: file.to_path_buf(),
        line,
        column,
        sql: stmt.map(|s| s.sql.clone()).unwrap_or_default(),
        error,
        outcome,
        fix,
    }))
}

/// The connection broke while `m` ran; `in_flight` says what became of it.
/// The run adds what it made durable before (see [`Ledger::explain`]).
fn lost(
    m: &Migration,
    dir: Direction,
    file: &Path,
    stmt: Option<&Statement>,
    error: DbError,
    in_flight: &str,
) -> RunError {
    RunError::ConnectionLost(Box::new(ConnectionLost {
        error,
        doing: Some(format!(
            "{} {}",
            match dir {
                Direction::Up => "applying",
                Direction::Down => "reverting",
            },
            m.id()
        )),
        at: stmt.map(|s| format!("{}:{}", file.display(), s.line)),
        in_flight: Some(format!("{}: {in_flight}", m.id())),
        reverting: dir == Direction::Down,
        durable: Vec::new(),
        unconfirmed: Vec::new(),
    }))
}

/// Refuses to go on while any migration is modified, missing or failed.
pub fn refuse_blocked(entries: &[Entry<'_>]) -> Result<(), RunError> {
    let blocked: Vec<&Entry> = entries.iter().filter(|e| e.state.blocks_runs()).collect();
    let Some(first) = blocked.first() else {
        return Ok(());
    };
    let list: Vec<String> = blocked
        .iter()
        .map(|e| match e.failed_direction() {
            Some("down") => format!("{}_{} (failed while reverting)", e.version, e.name),
            _ => format!("{}_{} ({})", e.version, e.name, e.state.as_str()),
        })
        .collect();
    let fix = match first.state {
        State::Modified => format!(
            "applied migrations must not change: restore {}_{} from version control and write a new migration for the change (`keel new NAME`)",
            first.version, first.name
        ),
        State::Missing => format!(
            "restore the folder migrations/{}_{} from version control; keel will not run with applied history it cannot see",
            first.version, first.name
        ),
        _ if first.failed_direction() == Some("down") => format!(
            "its down.sql stopped part-way: check what took effect, then finish the revert by hand and run `keel resolve {v} --reverted`, or redo what down.sql undid and run `keel resolve {v} --applied`",
            v = first.version
        ),
        _ => format!(
            "check what took effect, then run `keel resolve {} --applied` or `keel resolve {} --reverted`",
            first.version, first.version
        ),
    };
    Err(RunError::Refused {
        message: format!("refusing to run: {}", list.join(", ")),
        fix,
    })
}

fn refuse_irreversible(m: &Migration) -> Result<(), RunError> {
    if m.meta.reversibility == Some(Reversibility::Irreversible) {
        return Err(RunError::Refused {
            message: format!(
                "migration {} is declared irreversible in migration.toml",
                m.id()
            ),
            fix: "restore from a backup or snapshot, or write a new migration that undoes it"
                .into(),
        });
    }
    if !m.has_down() {
        return Err(RunError::Refused {
            message: format!(
                "migration {} has no down.sql (or an empty one): keel cannot revert it",
                m.id()
            ),
            fix: format!(
                "write {} that undoes up.sql, or declare reversibility = \"irreversible\"",
                m.down_path().display()
            ),
        });
    }
    Ok(())
}

/// Applied migrations to revert, newest first.
pub fn down_targets<'m>(
    entries: &[Entry<'m>],
    steps: Option<usize>,
    to: Option<Version>,
) -> Vec<&'m Migration> {
    let applied = entries
        .iter()
        .rev()
        .filter(|e| matches!(e.state, State::Applied | State::Backfilling))
        .filter_map(|e| e.migration);
    match (steps, to) {
        (_, Some(to)) => applied.filter(|m| m.version > to).collect(),
        (Some(n), None) => applied.take(n).collect(),
        (None, None) => applied.take(1).collect(),
    }
}
