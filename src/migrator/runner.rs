//! The runner: which migrations a run applies or reverts, in order, one
//! runner at a time, each analysed once ([`Analyzer`]) and run in one
//! transaction ([`transaction`](super::transaction)) or statement by
//! statement ([`one_by_one`](super::one_by_one)), with the work around it
//! ([`Hook`]: backups) and only durable outcomes reported ([`Ledger`]).

use super::error::RunError;
use super::hook::Hook;
use super::ledger::{FLUSH_WAIT, Ledger};
use super::schema_kept;
use super::settings::RunSettings;
use super::status::{State, reconcile};
use super::targets::{down_targets, pending, refuse_blocked, refuse_irreversible, unfinished};
use crate::analysis::Classified;
use crate::analysis::analyze::{Analyzer, Facts, MigrationAnalysis};
use crate::analysis::live::called_names;
use crate::db::Scope;
use crate::db::{Database, DbError, RunLock, TrackingRow, TrackingState};
use crate::migration::{Migration, Version};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What the runner reports while it works, for the CLI to print.
#[derive(Debug)]
pub(crate) enum Event<'a> {
    /// Another run holds the run lock; who, when the database can tell,
    /// and how long this run waits for it at most.
    WaitingForLock(Option<&'a crate::db::LockHolder>, Duration),
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
    /// The migration was reverted, but the schema it reaches is not the
    /// one it started from when it was applied.
    SchemaNotRestored(&'a Migration, &'a crate::db::SchemaDiff),
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    Up,
    Down,
}

/// Which way [`Runner::run`] takes a migration, with what it brings.
enum Way<'a> {
    /// Up, with the schema to keep in its tracking row (`keep_schema`).
    Up(Option<&'a str>),
    /// Down, with its tracking row as the run read it: the archive it
    /// recorded is the only one to restore.
    Down(Option<&'a TrackingRow>),
}

/// A migration that committed: how long it took, and whether its commit
/// waited for the flush to disk.
pub(super) struct Committed {
    pub(crate) took: Duration,
    pub(crate) durable: bool,
    /// Down: the schema its tracking row kept from before the up.
    pub(crate) schema_before: Option<String>,
}

/// One migration being run one way, with what the run knows of it.
pub(super) struct Run<'a> {
    pub(crate) m: &'a Migration,
    pub(crate) analysis: &'a MigrationAnalysis,
    pub(crate) dir: Direction,
    pub(crate) started: Instant,
    /// Up: the archive its hook made; down: the one its tracking row recorded.
    pub(crate) backup: Option<&'a crate::db::BackupRef>,
    /// Up: the schema it can reach, kept in its tracking row for `down`.
    pub(crate) schema_before: Option<&'a str>,
}

impl Run<'_> {
    /// The file that runs this way, and its statements as the analysis split them.
    pub(crate) fn file(&self) -> (PathBuf, &Classified) {
        static EMPTY: std::sync::OnceLock<Classified> = std::sync::OnceLock::new();
        match self.dir {
            Direction::Up => (self.m.up_path(), &self.analysis.up),
            Direction::Down => (
                self.m.down_path(),
                self.analysis
                    .down
                    .as_ref()
                    .unwrap_or_else(|| EMPTY.get_or_init(Classified::default)),
            ),
        }
    }
}

pub(crate) struct Runner<'r> {
    pub(crate) db: &'r mut dyn Database,
    pub(crate) settings: RunSettings,
    pub(crate) operator: String,
    pub(crate) on_event: &'r (dyn Fn(Event<'_>) + Sync),
    /// What the migrations of the run can reach, when the caller knows it
    /// (`keel test`): the live facts are read for that alone. `None`: for
    /// every table, which costs one catalog read per run and spares a
    /// second parse of each pending file (it would double the run's own
    /// work), and for the functions the files call.
    pub(crate) reach: Option<&'r Scope>,
    /// The files given are all the run is about, and every migration before
    /// them is applied by the caller (`keel test`'s steps, one migration
    /// each): only their tracking rows are read. Reading the whole table
    /// at each step made testing a history of N migrations read N² rows.
    pub(crate) alone: bool,
}

impl Runner<'_> {
    /// The tracking rows `files` are reconciled with.
    async fn rows_for(&mut self, files: &[Migration]) -> Result<Vec<TrackingRow>, DbError> {
        if !self.alone {
            return self.db.tracking_rows().await;
        }
        let mut rows = Vec::new();
        for m in files {
            rows.extend(self.db.tracking_row(&m.version.to_string()).await?);
        }
        Ok(rows)
    }

    /// The live facts a run of `migrations` is analysed with.
    async fn facts_for(&mut self, migrations: &[&Migration]) -> Result<Facts, DbError> {
        match self.reach {
            Some(scope) => Facts::read(self.db, scope).await,
            None => {
                let mut called = std::collections::BTreeSet::new();
                for m in migrations {
                    called_names(&m.up, &mut called);
                    called_names(m.down.as_deref().unwrap_or_default(), &mut called);
                }
                Facts::read_calling(self.db, &Scope::All, Some(called)).await
            }
        }
    }

    /// Applies pending migrations up to and including `to`, in version
    /// order, with `hook` around each (backups). Returns those applied.
    pub(crate) async fn up_with<'m>(
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
        self.up_locked_from(files, to, hook, None).await
    }

    /// [`Runner::up_with`] with the run lock already held by the caller
    /// (`keel test`, which holds it for the whole run), and, when the
    /// caller has them, the live facts of the schema the run starts from
    /// (`keel test` reads them once for up and up again, which start from
    /// the same schema).
    pub(crate) async fn up_locked_from<'m>(
        &mut self,
        files: &'m [Migration],
        to: Option<Version>,
        hook: &mut dyn Hook,
        facts: Option<Facts>,
    ) -> Result<Vec<&'m Migration>, RunError> {
        self.db.ensure_tracking().await?;
        let entries = reconcile(files, self.rows_for(files).await?);
        refuse_blocked(&entries)?;
        let pending = pending(&entries, to);
        // A backfill that an earlier run left unfinished goes first: later
        // migrations (a contract step, a drop) may rely on its data.
        for m in unfinished(&entries, to) {
            self.backfill(m).await?;
        }
        // One entry per migration in the folder: not needed for the run.
        drop(entries);
        (self.on_event)(Event::Planned(pending.len()));
        if pending.is_empty() {
            return Ok(pending);
        }
        let facts = match facts {
            Some(f) => f,
            None => self.facts_for(&pending).await?,
        };
        let mut analyzer = Analyzer::new(facts, true);
        let mut ledger = Ledger::new(false);
        for (i, m) in pending.iter().enumerate() {
            let analysis = analyzer.analyze(m);
            // A backfill's batches commit durably, and the migration is
            // reported before them.
            let durable = i + 1 == pending.len() || m.meta.backfill.is_some() || ledger.due();
            // Failures here go through `stopped` as the run's own do: after
            // a lost connection the operator learns what is applied.
            let kept = match self.settings.keep_schema {
                true => match schema_kept::before_up(self.db, &analysis).await {
                    Ok(kept) => Some(kept),
                    Err(e) => {
                        let doing =
                            format!("applying {} (reading the schema it starts from)", m.id());
                        let e = doing_when_lost(e, doing, "it did not start", false);
                        return Err(self.stopped(&mut ledger, Direction::Up, e).await);
                    }
                },
                false => None,
            };
            match self
                .run(m, &analysis, (Way::Up(kept.as_deref()), durable), hook)
                .await
            {
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
    pub(crate) async fn backfill_one(
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
    pub(crate) async fn backfill(
        &mut self,
        m: &Migration,
    ) -> Result<crate::backfill::Report, RunError> {
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
            timeouts: self.settings.timeouts(m),
            retries: self.settings.retries(m),
            backoff: self.settings.backoff,
            dir: PathBuf::from("backfills"),
            throttle: spec
                .map_or_else(Default::default, |s| s.throttle())
                .over(self.settings.throttle),
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
        if let Some(mut row) = self.db.tracking_row(&v).await? {
            row.state = TrackingState::Applied;
            self.db.write_tracking(&row).await?;
        }
        Ok(report)
    }

    /// Reverts the newest applied migrations (`steps`, or down to `to`),
    /// with `hook` around each (restores). Returns those reverted.
    pub(crate) async fn down_with<'m>(
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

    /// [`Runner::down_with`] with the run lock already held by the caller.
    pub(crate) async fn down_locked<'m>(
        &mut self,
        files: &'m [Migration],
        steps: Option<usize>,
        to: Option<Version>,
        hook: &mut dyn Hook,
    ) -> Result<Vec<&'m Migration>, RunError> {
        self.down_locked_from(files, (steps, to), hook, None).await
    }

    /// [`Runner::down_locked`] with live facts the caller has (`keel test`
    /// passes those its up read: a down's analysis only splits its
    /// statements, which the server's facts do not change).
    pub(crate) async fn down_locked_from<'m>(
        &mut self,
        files: &'m [Migration],
        (steps, to): (Option<usize>, Option<Version>),
        hook: &mut dyn Hook,
        facts: Option<Facts>,
    ) -> Result<Vec<&'m Migration>, RunError> {
        let entries = reconcile(files, self.rows_for(files).await?);
        refuse_blocked(&entries)?;
        let targets = down_targets(&entries, steps, to);
        for m in &targets {
            refuse_irreversible(m)?;
        }
        (self.on_event)(Event::Planned(targets.len()));
        if targets.is_empty() {
            return Ok(targets);
        }
        let facts = match facts {
            Some(f) => f,
            None => self.facts_for(&targets).await?,
        };
        let mut analyzer = Analyzer::new(facts, false);
        let mut ledger = Ledger::new(true);
        for (i, m) in targets.iter().enumerate() {
            let analysis = analyzer.analyze(m);
            let durable = i + 1 == targets.len() || ledger.due();
            let v = m.version.to_string();
            let row = entries
                .iter()
                .find(|e| e.version == v)
                .and_then(|e| e.row.as_deref());
            match self
                .run(m, &analysis, (Way::Down(row), durable), hook)
                .await
            {
                Ok(committed) => {
                    for (m, took) in ledger.committed(m, committed.took, committed.durable) {
                        (self.on_event)(Event::Reverted(m, took));
                    }
                    match schema_kept::after_down(
                        self.db,
                        committed.schema_before.as_deref(),
                        (self.settings.retries(m) + 1, self.settings.backoff(1)),
                    )
                    .await
                    {
                        Ok(Some(diff)) => (self.on_event)(Event::SchemaNotRestored(m, &diff)),
                        Ok(None) => {}
                        Err(e) => {
                            let doing = format!(
                                "reverting {} (comparing the schema with the one it started from)",
                                m.id()
                            );
                            let e = doing_when_lost(e, doing, "it committed (see the lists)", true);
                            return Err(self.stopped(&mut ledger, Direction::Down, e).await);
                        }
                    }
                }
                Err(e) => return Err(self.stopped(&mut ledger, Direction::Down, e).await),
            }
        }
        Ok(targets)
    }

    /// Applies one migration, with the run lock already held by the caller
    /// ([`Runner::lock`]), who has also checked that it is the next pending
    /// one and analysed it. For `execute`, which holds the lock from its
    /// backup to its post-migration checks.
    pub(crate) async fn apply_one(
        &mut self,
        m: &Migration,
        analysis: &MigrationAnalysis,
        hook: &mut dyn Hook,
    ) -> Result<(), RunError> {
        self.db.ensure_tracking().await?;
        let kept = match self.settings.keep_schema {
            true => Some(schema_kept::before_up(self.db, analysis).await?),
            false => None,
        };
        let committed = self
            .run(m, analysis, (Way::Up(kept.as_deref()), true), hook)
            .await?;
        (self.on_event)(Event::Applied(m, committed.took));
        Ok(())
    }

    /// Reverts one applied migration, with the run lock held by the caller.
    pub(crate) async fn revert_one(
        &mut self,
        m: &Migration,
        analysis: &MigrationAnalysis,
        hook: &mut dyn Hook,
    ) -> Result<(), RunError> {
        refuse_irreversible(m)?;
        let row = self.db.tracking_row(&m.version.to_string()).await?;
        let committed = self
            .run(m, analysis, (Way::Down(row.as_ref()), true), hook)
            .await?;
        (self.on_event)(Event::Reverted(m, committed.took));
        if let Some(diff) = schema_kept::after_down(
            self.db,
            committed.schema_before.as_deref(),
            (self.settings.retries(m) + 1, self.settings.backoff(1)),
        )
        .await?
        {
            (self.on_event)(Event::SchemaNotRestored(m, &diff));
        }
        Ok(())
    }

    /// Takes the one-runner-at-a-time lock, saying so if it has to wait,
    /// and refusing once it waited `run_lock_wait` in vain.
    pub(crate) async fn lock(&mut self) -> Result<(), RunError> {
        let on_event = self.on_event;
        let wait = self.settings.run_lock_wait;
        let on_wait =
            |holder: Option<&crate::db::LockHolder>| on_event(Event::WaitingForLock(holder, wait));
        match self.db.lock_runs(wait, &on_wait).await? {
            RunLock::Taken => Ok(()),
            RunLock::Busy(holder) => Err(lock_busy(wait, holder.as_ref())),
        }
    }

    /// Releases the run lock; the work's own error wins over an unlock error.
    pub(crate) async fn unlock<T>(&mut self, result: Result<T, RunError>) -> Result<T, RunError> {
        let unlocked = self.db.unlock_runs().await;
        let value = result?;
        unlocked?;
        Ok(value)
    }

    /// Runs `m` one way. Emits `Applying`/`Reverting`; the caller reports
    /// it done once its commit is known durable (see [`Ledger`]).
    async fn run(
        &mut self,
        m: &Migration,
        analysis: &MigrationAnalysis,
        (way, durable): (Way<'_>, bool),
        hook: &mut dyn Hook,
    ) -> Result<Committed, RunError> {
        // Up: the archive of what it destroys, recorded in its tracking row.
        // Down: the archive its tracking row recorded, the only one to restore.
        let (dir, backup, kept, schema_before) = match way {
            Way::Up(schema_before) => {
                let backup = hook.before_up(self.db, m, analysis).await?;
                (Direction::Up, backup, None, schema_before)
            }
            Way::Down(row) => {
                let recorded = row.and_then(|r| r.backup.clone());
                hook.before_down(self.db, m, recorded.as_ref()).await?;
                // A run that keeps no schema (keel test's, on a database
                // it made) finds none to compare: not asked.
                let kept = match self.settings.keep_schema {
                    true => self.db.schema_before(&m.version.to_string()).await?,
                    false => None,
                };
                (Direction::Down, recorded, kept, None)
            }
        };
        (self.on_event)(match dir {
            Direction::Up => Event::Applying(m),
            Direction::Down => Event::Reverting(m),
        });
        let started = Instant::now();
        let run = Run {
            m,
            analysis,
            dir,
            started,
            backup: backup.as_ref(),
            schema_before,
        };
        // A `SET search_path` or `SET ROLE` of this migration must not
        // follow the next one (nor keel's own statements); a transaction
        // that committed was reset with its COMMIT. The run's own error, if
        // any, is the one to report.
        let wait = durable && !self.settings.throwaway;
        let (ran, reset) = if m.meta.transaction {
            match self.run_in_transaction(&run, wait, hook).await {
                Ok(reset) => (Ok(()), reset),
                Err(e) => (Err(e), self.db.reset_session().await),
            }
        } else {
            let ran = self.run_statement_by_statement(&run, hook).await;
            (ran, self.db.reset_session().await)
        };
        ran?;
        // Statement by statement, each commit is a durable one; on a
        // throwaway database every commit counts as done.
        let durable = durable || !m.meta.transaction || self.settings.throwaway;
        if let Err(e) = reset {
            if !e.is_connection() {
                return Err(e.into());
            }
            let what = if durable {
                "it committed, and its commit is on disk"
            } else {
                "it committed, without a confirmed flush to disk (after a server crash it is pending again)"
            };
            return Err(super::failure::lost(
                m,
                dir,
                &source(m, dir).0,
                None,
                e,
                what,
            ));
        }
        Ok(Committed {
            took: started.elapsed(),
            durable,
            schema_before: kept,
        })
    }

    pub(super) fn tracking_row(
        &self,
        m: &Migration,
        state: TrackingState,
        started: Instant,
    ) -> TrackingRow {
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
            schema_before: None,
        }
    }
}

pub(super) fn initial_state(m: &Migration) -> TrackingState {
    if m.meta.backfill.is_some() {
        TrackingState::Backfilling
    } else {
        TrackingState::Applied
    }
}

pub(super) fn source(m: &Migration, dir: Direction) -> (PathBuf, &str) {
    match dir {
        Direction::Up => (m.up_path(), m.up.as_str()),
        Direction::Down => (m.down_path(), m.down.as_deref().unwrap_or_default()),
    }
}

/// A reverted migration's backfill progress goes with it, so that applying
/// it again starts the backfill afresh.
pub(super) async fn forget_backfill(db: &mut dyn Database, m: &Migration) -> Result<(), DbError> {
    if m.meta.backfill.is_some() {
        crate::backfill::store::ensure(db).await?;
        crate::backfill::store::forget(db, &m.version.to_string()).await?;
    }
    Ok(())
}

/// The run lock stayed busy for the whole wait: nothing was done.
fn lock_busy(wait: Duration, holder: Option<&crate::db::LockHolder>) -> RunError {
    let waited = humantime::format_duration(wait);
    let who = match holder {
        Some(h) => format!(": the lock is {}", h.to_string().replace('\n', "\n  ")),
        None => " (the database does not say who holds it)".to_string(),
    };
    RunError::Refused {
        message: format!(
            "another keel run still held the run lock on this database after {waited}, so this run did nothing{who}"
        ),
        fix: "let that run finish and run this command again, or wait longer with --run-lock-wait DURATION (run_lock_wait in keel.toml)".into(),
    }
}

/// `e` as a run error; a lost connection says what keel was doing and
/// what became of the migration.
fn doing_when_lost(
    e: crate::db::DbError,
    doing: String,
    in_flight: &str,
    reverting: bool,
) -> RunError {
    if !e.is_connection() {
        return e.into();
    }
    RunError::ConnectionLost(Box::new(super::error::ConnectionLost {
        error: e,
        doing: Some(doing),
        at: None,
        in_flight: Some(in_flight.to_string()),
        reverting,
        durable: Vec::new(),
        unconfirmed: Vec::new(),
    }))
}
