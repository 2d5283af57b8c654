use super::error::{RunError, StatementFailure};
use super::hook::{Hook, NoHook};
use super::status::{Entry, State, reconcile};
use crate::analysis::{Statement, split};
use crate::db::{
    BackupRef, Database, DbError, StatementError, Timeouts, TrackingRow, TrackingState,
};
use crate::migration::{Migration, Reversibility, Version};
use std::path::PathBuf;
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
    WaitingForLock,
    /// How many migrations this run will apply or revert.
    Planned(usize),
    Applying(&'a Migration),
    Applied(&'a Migration, Duration),
    Reverting(&'a Migration),
    Reverted(&'a Migration, Duration),
    LockTimeoutRetry {
        migration: &'a Migration,
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
        for (i, m) in pending.iter().enumerate() {
            self.run(m, Direction::Up, i + 1 == pending.len(), hook)
                .await?;
            if m.meta.backfill.is_some() {
                self.backfill(m).await?;
            }
        }
        Ok(pending)
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
        for (i, m) in targets.iter().enumerate() {
            self.run(m, Direction::Down, i + 1 == targets.len(), hook)
                .await?;
        }
        Ok(targets)
    }

    /// Applies one migration, with the run lock already held by the caller
    /// ([`Runner::lock`]), who has also checked that it is the next pending
    /// one. For `execute`, which holds the lock from its backup to its
    /// post-migration checks.
    pub async fn apply_one(&mut self, m: &Migration, hook: &mut dyn Hook) -> Result<(), RunError> {
        self.db.ensure_tracking().await?;
        self.run(m, Direction::Up, true, hook).await
    }

    /// Reverts one applied migration, with the run lock held by the caller.
    pub async fn revert_one(&mut self, m: &Migration, hook: &mut dyn Hook) -> Result<(), RunError> {
        refuse_irreversible(m)?;
        self.run(m, Direction::Down, true, hook).await
    }

    /// Takes the one-runner-at-a-time lock, saying so if it has to wait.
    pub async fn lock(&mut self) -> Result<(), RunError> {
        let on_event = self.on_event;
        self.db
            .lock_runs(&|| on_event(Event::WaitingForLock))
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

    async fn run(
        &mut self,
        m: &Migration,
        dir: Direction,
        durable: bool,
        hook: &mut dyn Hook,
    ) -> Result<(), RunError> {
        // Up: the archive of what it destroys, recorded in its tracking row.
        // Down: the archive its tracking row recorded, the only one to restore.
        let backup = match dir {
            Direction::Up => hook.before_up(self.db, m).await?,
            Direction::Down => {
                let v = m.version.to_string();
                self.db
                    .tracking_rows()
                    .await?
                    .into_iter()
                    .find(|r| r.version == v)
                    .and_then(|r| r.backup)
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
        reset?;
        let took = started.elapsed();
        (self.on_event)(match dir {
            Direction::Up => Event::Applied(m, took),
            Direction::Down => Event::Reverted(m, took),
        });
        Ok(())
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
    /// lock timeout rolls back and retries the whole migration.
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
                            .map_err(|e| Stop::Sql(None, e))
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
                            .map_err(|e| Stop::Sql(None, e))
                    }
                }
            }
            .await;
            match outcome {
                Ok(()) => {
                    self.db.commit().await?;
                    return Ok(());
                }
                Err(Stop::Hook(e)) => {
                    let _ = self.db.rollback().await;
                    return Err(e);
                }
                Err(Stop::Sql(index, error)) => {
                    // A rollback error means the connection is gone; the
                    // server rolls back on its own then, so report the cause.
                    let _ = self.db.rollback().await;
                    if error.is_lock_timeout() && attempt < retries {
                        attempt += 1;
                        let wait = self.settings.backoff * 2u32.pow(attempt - 1);
                        (self.on_event)(Event::LockTimeoutRetry {
                            migration: m,
                            attempt,
                            retries,
                            wait,
                        });
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    let what = match dir {
                        Direction::Up => {
                            "nothing of it was kept; earlier migrations of this run stay applied"
                        }
                        Direction::Down => "nothing of it was kept; the migration is still applied",
                    };
                    return Err(failure(
                        m,
                        file,
                        index.map(|i| &statements[i]),
                        error,
                        what.into(),
                        fix(dir, retries),
                    ));
                }
            }
        }
    }

    /// `transaction = false`: statements run one by one and each commits on
    /// its own, so a failure part-way leaves the migration `failed` until an
    /// operator resolves it. A failure on the first statement leaves nothing
    /// behind (keel drops an INVALID index a failed concurrent build left).
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
        let timeouts = self.timeouts(m);
        let retries = m.meta.retries.unwrap_or(self.settings.retries);
        self.db.set_session_timeouts(timeouts).await?;
        let invalid_before = self.db.invalid_indexes().await?;
        let mut row = self.tracking_row(m, TrackingState::Failed, started);
        row.backup = backup.cloned();
        row.error = Some(format!(
            "keel stopped while running {} statement by statement; check which statements took effect",
            file.file_name()
                .and_then(|f| f.to_str())
                .unwrap_or_default()
        ));
        if dir == Direction::Up {
            // Written first so that a crash part-way leaves a `failed` mark,
            // never a silently half-applied migration.
            self.db.write_tracking(&row).await?;
        }
        for (i, stmt) in statements.iter().enumerate() {
            let index = concurrent_index(&stmt.sql);
            if let Some(ix) = &index {
                // An INVALID index of this name (a build that failed or was
                // killed) would make IF NOT EXISTS skip the build and leave
                // it INVALID: drop it first.
                self.drop_if_invalid(ix).await?;
            }
            let mut attempt = 0;
            let mut rebuilt = false;
            let error = loop {
                let result = match self.db.execute(&stmt.sql).await {
                    Ok(()) => match &index {
                        Some(ix) if self.db.index_valid(ix).await? == Some(false) => {
                            Err(DbError::new(
                                crate::db::DbErrorKind::Statement,
                                format!("index {ix} is INVALID after its concurrent build"),
                            ))
                        }
                        _ => Ok(()),
                    },
                    Err(e) => Err(e),
                };
                match result {
                    Ok(()) => break None,
                    Err(e) if !e.is_lock_timeout() && index.is_some() && !rebuilt => {
                        // A failed CREATE INDEX CONCURRENTLY leaves an INVALID
                        // index behind; drop it and build once more (a
                        // deadlock or a cancelled build succeeds then).
                        let ix = index.clone().unwrap_or_default();
                        self.drop_if_invalid(&ix).await?;
                        rebuilt = true;
                        (self.on_event)(Event::RetryingIndex {
                            migration: m,
                            index: ix,
                            reason: e.message.clone(),
                        });
                    }
                    Err(e) if e.is_lock_timeout() && attempt < retries => {
                        attempt += 1;
                        let wait = self.settings.backoff * 2u32.pow(attempt - 1);
                        (self.on_event)(Event::LockTimeoutRetry {
                            migration: m,
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
                if dir == Direction::Up && i + 1 < statements.len() {
                    row.statements_done = i as i64 + 1;
                    self.db.write_tracking(&row).await?;
                }
                continue;
            };
            for index in self.db.invalid_indexes().await? {
                if !invalid_before.contains(&index) {
                    self.db.drop_index(&index).await?;
                    (self.on_event)(Event::DroppedInvalidIndex(index));
                }
            }
            if let Some(ix) = &index {
                self.drop_if_invalid(ix).await?;
            }
            let error = explain_index_failure(index.as_deref(), error);
            let (outcome, fix) = if i == 0 {
                if dir == Direction::Up {
                    self.db.delete_tracking(&m.version.to_string()).await?;
                }
                let state = if dir == Direction::Up {
                    "pending"
                } else {
                    "applied"
                };
                (
                    format!(
                        "its first statement failed and left nothing behind; the migration stays {state}"
                    ),
                    fix(dir, retries),
                )
            } else {
                row.state = TrackingState::Failed;
                row.statements_done = i as i64;
                row.execution_ms = started.elapsed().as_millis() as i64;
                row.error = Some(format!(
                    "statement {} of {} failed at line {}: {}",
                    i + 1,
                    statements.len(),
                    stmt.line,
                    error.message
                ));
                self.db.write_tracking(&row).await?;
                (
                    format!(
                        "{i} of {} statements took effect (transaction = false); the migration is marked failed",
                        statements.len()
                    ),
                    format!(
                        "finish or undo the remaining statements by hand, then run `keel resolve {} --applied` or `--reverted`",
                        m.version
                    ),
                )
            };
            return Err(failure(m, file, Some(stmt), error, outcome, fix));
        }
        match dir {
            Direction::Up => {
                row.state = initial_state(m);
                row.statements_done = statements.len() as i64;
                row.execution_ms = started.elapsed().as_millis() as i64;
                row.error = None;
                self.db.write_tracking(&row).await?;
            }
            Direction::Down => {
                hook.after_down(self.db, m, backup, false).await?;
                forget_backfill(self.db, m).await?;
                self.db.delete_tracking(&m.version.to_string()).await?
            }
        }
        Ok(())
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
    /// migration: that it is fully applied, or fully reverted.
    pub async fn resolve(
        &mut self,
        files: &[Migration],
        version: Version,
        applied: bool,
    ) -> Result<(), RunError> {
        self.lock().await?;
        let result = self.resolve_locked(files, version, applied).await;
        self.unlock(result).await
    }

    async fn resolve_locked(
        &mut self,
        files: &[Migration],
        version: Version,
        applied: bool,
    ) -> Result<(), RunError> {
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
        if row.state != TrackingState::Failed {
            return Err(RunError::Refused {
                message: format!("migration {version} is {}, not failed", row.state.as_str()),
                fix: "only a failed migration needs resolving; `keel status` shows the states"
                    .into(),
            });
        }
        if applied {
            if let Some(m) = files.iter().find(|m| m.version == version) {
                row.checksum = m.checksum.clone();
            }
            row.state = TrackingState::Applied;
            row.error = None;
            row.applied_by = self.operator.clone();
            self.db.write_tracking(&row).await?;
        } else {
            self.db.delete_tracking(&v).await?;
        }
        Ok(())
    }
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

fn fix(dir: Direction, retries: u32) -> String {
    let _ = retries;
    match dir {
        Direction::Up => {
            "correct the SQL (or the schema it expects) and run `keel up` again".into()
        }
        Direction::Down => "correct down.sql and run `keel down` again".into(),
    }
}

fn failure(
    m: &Migration,
    file: PathBuf,
    stmt: Option<&Statement>,
    error: DbError,
    outcome: String,
    fix: String,
) -> RunError {
    let (line, column) = match (stmt, error.position) {
        (Some(s), Some(p)) => s.position_in_file(p),
        (Some(s), None) => (s.line, s.column),
        (None, _) => (1, 1),
    };
    let fix = if error.is_lock_timeout() {
        format!(
            "the tables it needs stayed locked by other sessions longer than lock_timeout on every try; \
             find them with `SELECT pid, query FROM pg_stat_activity WHERE wait_event_type = 'Lock'`, \
             or raise lock_timeout/retries in migration.toml; then {fix}"
        )
    } else {
        fix
    };
    RunError::Statement(Box::new(StatementFailure {
        migration: m.id(),
        file,
        line,
        column,
        sql: stmt.map(|s| s.sql.clone()).unwrap_or_default(),
        error,
        outcome,
        fix,
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
        .map(|e| format!("{}_{} ({})", e.version, e.name, e.state.as_str()))
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
