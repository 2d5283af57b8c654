//! A `transaction = false` migration: statements run one by one, each
//! committing on its own, with a `failed` mark in the tracking table until
//! the last one succeeds.

use super::concurrent_index::{
    AskedIndex, concurrent_index, explain_index_failure, mismatch_error, mismatch_fix,
};
use super::error::RunError;
use super::failure::{failure, lost, retry_reason};
use super::hook::Hook;
use super::runner::{Direction, Event, Run, Runner, forget_backfill, initial_state};
use crate::db::{DbError, TrackingRow, TrackingState};
use crate::migration::Version;
use crate::sql::Statement;

/// What a part-way stop of one migration tells the operator, and the
/// tracking row that marks it.
struct Progress<'a> {
    run: &'a Run<'a>,
    file: std::path::PathBuf,
    /// `up.sql` or `down.sql`.
    name: String,
    n: usize,
    /// `failed` going up, `failed_down` going down.
    failed: TrackingState,
    /// The applied row a down starts from, put back if nothing of the down
    /// took effect.
    applied: Option<TrackingRow>,
    /// The mark in the tracking table while the statements run.
    row: TrackingRow,
    /// INVALID indexes there before this migration (not its to drop).
    invalid_before: Vec<String>,
}

/// A statement that failed for good.
struct Failed {
    error: DbError,
    /// It was never run: an index of its index's name is another index.
    other_index: bool,
}

impl Progress<'_> {
    /// The connection broke once the failed mark may be written: what the
    /// operator finds after the server is back.
    fn part_way(&self, error: DbError, done: usize, stmt: Option<&Statement>) -> RunError {
        let what = format!(
            "{done} of {} statements of {} had finished; the migration is marked {} (keel marks it before its first statement): once the server is back, check which statements took effect and run `keel resolve {} --applied` or `--reverted`",
            self.n,
            self.name,
            self.failed.as_str(),
            self.run.m.version
        );
        lost(self.run.m, self.run.dir, &self.file, stmt, error, &what)
    }
}

impl Runner<'_> {
    /// `transaction = false`: statements run one by one and each commits on
    /// its own. Before the first one the tracking row says `failed` (for a
    /// down, `failed_down`), so that a run killed part-way, in either
    /// direction, leaves a mark that blocks runs until an operator resolves
    /// it, never a migration that looks applied (or pending) with half its
    /// SQL done. A failure on the first statement leaves nothing behind
    /// (keel drops an INVALID index a failed concurrent build left) and puts
    /// the row back as it was.
    pub(super) async fn run_statement_by_statement(
        &mut self,
        run: &Run<'_>,
        hook: &mut dyn Hook,
    ) -> Result<(), RunError> {
        let (_, classified) = run.file();
        let mut p = self.mark_failed(run).await?;
        for (i, stmt) in classified.statements.iter().enumerate() {
            let index = concurrent_index(classified, stmt);
            match self.statement(&p, i, stmt, index.as_ref()).await? {
                None if i + 1 < p.n => {
                    p.row.statements_done = i as i64 + 1;
                    p.row.error = Some(stopped_note(run.dir, &p.name, i + 1, p.n));
                    self.db
                        .write_tracking(&p.row)
                        .await
                        .map_err(|e| p.part_way(e, i + 1, None))?;
                }
                None => {}
                Some(failed) => {
                    return Err(self.stop(&mut p, i, stmt, index.as_ref(), failed).await);
                }
            }
        }
        self.finish(&mut p, hook).await
    }

    /// Writes the failed mark before the first statement.
    async fn mark_failed<'a>(&mut self, run: &'a Run<'a>) -> Result<Progress<'a>, RunError> {
        let (m, dir) = (run.m, run.dir);
        let (file, classified) = run.file();
        let n = classified.statements.len();
        let name = file
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default()
            .to_string();
        let version = m.version.to_string();
        let failed = match dir {
            Direction::Up => TrackingState::Failed,
            Direction::Down => TrackingState::FailedDown,
        };
        let before_start = |error: DbError| {
            if error.is_connection() {
                lost(m, dir, &file, None, error, "nothing of it ran")
            } else {
                error.into()
            }
        };
        self.db
            .set_session_timeouts(self.settings.timeouts(m))
            .await
            .map_err(before_start)?;
        let invalid_before = self.db.invalid_indexes().await.map_err(before_start)?;
        let applied = match dir {
            Direction::Up => None,
            Direction::Down => self.db.tracking_row(&version).await.map_err(before_start)?,
        };
        let mut row = match &applied {
            Some(a) => TrackingRow {
                state: failed,
                ..a.clone()
            },
            None => TrackingRow {
                backup: run.backup.cloned(),
                schema_before: run.schema_before.map(str::to_string),
                ..self.tracking_row(m, failed, run.started)
            },
        };
        row.error = Some(stopped_note(dir, &name, 0, n));
        let p = Progress {
            run,
            file,
            name,
            n,
            failed,
            applied,
            row,
            invalid_before,
        };
        self.db.write_tracking(&p.row).await.map_err(|e| {
            if e.is_connection() {
                p.part_way(e, 0, None)
            } else {
                e.into()
            }
        })?;
        Ok(p)
    }

    /// Runs statement `i`, retrying what the server may let through on
    /// another try; `Some(error)` when it failed for good.
    async fn statement(
        &mut self,
        p: &Progress<'_>,
        i: usize,
        stmt: &Statement,
        index: Option<&AskedIndex>,
    ) -> Result<Option<Failed>, RunError> {
        let m = p.run.m;
        let retries = self.settings.retries(m);
        if let Some(ix) = index {
            // Another index of this name would make IF NOT EXISTS skip the
            // build, and keel take it for this one.
            let mismatch = match &ix.request {
                Some(asked) => self
                    .db
                    .index_mismatch(asked)
                    .await
                    .map_err(|e| p.part_way(e, i, Some(stmt)))?,
                None => None,
            };
            if let Some(mismatch) = mismatch {
                return Ok(Some(Failed {
                    error: mismatch_error(&ix.name, &mismatch),
                    other_index: true,
                }));
            }
            // An INVALID index of this name (a build that failed or was
            // killed) would make IF NOT EXISTS skip the build and leave
            // it INVALID: drop it first.
            self.drop_if_invalid(ix)
                .await
                .map_err(|e| p.part_way(e, i, Some(stmt)))?;
        }
        let mut attempt = 0;
        let mut rebuilt = false;
        loop {
            match self
                .execute_checked(&stmt.sql, index.map(|ix| ix.name.as_str()))
                .await
            {
                Ok(()) => return Ok(None),
                Err(e) if e.is_connection() => return Err(p.part_way(e, i, Some(stmt))),
                Err(e)
                    if !e.is_lock_timeout()
                        && !rebuilt
                        && let Some(ix) = index =>
                {
                    // A failed CREATE INDEX CONCURRENTLY leaves an INVALID
                    // index behind; drop it and build once more (a
                    // deadlock or a cancelled build succeeds then).
                    self.drop_if_invalid(ix)
                        .await
                        .map_err(|e| p.part_way(e, i, Some(stmt)))?;
                    rebuilt = true;
                    (self.on_event)(Event::RetryingIndex {
                        migration: m,
                        index: ix.name.clone(),
                        reason: e.message.clone(),
                    });
                }
                // One statement is atomic: a lock timeout or a deadlock
                // kept nothing of it (but an INVALID index).
                Err(e) if e.is_retryable() && attempt < retries => {
                    if let Some(ix) = index {
                        self.drop_if_invalid(ix)
                            .await
                            .map_err(|e| p.part_way(e, i, Some(stmt)))?;
                    }
                    attempt += 1;
                    let wait = self.settings.backoff(attempt);
                    (self.on_event)(Event::Retry {
                        migration: m,
                        reason: retry_reason(&e),
                        attempt,
                        retries,
                        wait,
                    });
                    tokio::time::sleep(wait).await;
                }
                Err(error) => {
                    return Ok(Some(Failed {
                        error,
                        other_index: false,
                    }));
                }
            }
        }
    }

    /// Statement `i` failed for good: INVALID indexes it left are dropped,
    /// and the tracking row says what took effect.
    async fn stop(
        &mut self,
        p: &mut Progress<'_>,
        i: usize,
        stmt: &Statement,
        index: Option<&AskedIndex>,
        failed: Failed,
    ) -> RunError {
        match self.stop_marked(p, i, stmt, index, failed).await {
            Ok(e) | Err(e) => e,
        }
    }

    async fn stop_marked(
        &mut self,
        p: &mut Progress<'_>,
        i: usize,
        stmt: &Statement,
        index: Option<&AskedIndex>,
        Failed { error, other_index }: Failed,
    ) -> Result<RunError, RunError> {
        let (m, dir, n) = (p.run.m, p.run.dir, p.n);
        for invalid in self
            .db
            .invalid_indexes()
            .await
            .map_err(|e| p.part_way(e, i, Some(stmt)))?
        {
            if !p.invalid_before.contains(&invalid) {
                self.db
                    .drop_index(&invalid)
                    .await
                    .map_err(|e| p.part_way(e, i, Some(stmt)))?;
                (self.on_event)(Event::DroppedInvalidIndex(invalid));
            }
        }
        if let Some(ix) = index.filter(|_| !other_index) {
            self.drop_if_invalid(ix)
                .await
                .map_err(|e| p.part_way(e, i, Some(stmt)))?;
        }
        let (error, index_fix) = match index {
            Some(ix) if other_index => (error, Some(mismatch_fix(&ix.name))),
            _ => (
                explain_index_failure(index.map(|ix| ix.name.as_str()), error),
                None,
            ),
        };
        let (outcome, then) = if i == 0 {
            let version = m.version.to_string();
            let put_back = match &p.applied {
                Some(a) => self.db.write_tracking(a).await,
                None if dir == Direction::Up => self.db.delete_tracking(&version).await,
                None => Ok(()),
            };
            put_back.map_err(|e| p.part_way(e, 0, Some(stmt)))?;
            let state = match dir {
                Direction::Up => "pending",
                Direction::Down => "applied",
            };
            (
                format!(
                    "its first statement failed and left nothing behind; the migration stays {state}"
                ),
                index_fix.map(|fix| {
                    let again = match dir {
                        Direction::Up => "keel up",
                        Direction::Down => "keel down",
                    };
                    format!("{fix}; then run `{again}` again")
                }),
            )
        } else {
            p.row.statements_done = i as i64;
            if dir == Direction::Up {
                p.row.execution_ms = p.run.started.elapsed().as_millis() as i64;
            }
            p.row.error = Some(format!(
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
                .write_tracking(&p.row)
                .await
                .map_err(|e| p.part_way(e, i, Some(stmt)))?;
            (
                format!(
                    "{i} of {n} statements took effect (transaction = false); the migration is marked {}",
                    match dir {
                        Direction::Up => "failed",
                        Direction::Down => "failed while reverting",
                    }
                ),
                Some(match index_fix {
                    Some(fix) => format!("{fix}; {}", resolve_fix(dir, m.version)),
                    None => resolve_fix(dir, m.version),
                }),
            )
        };
        Ok(failure(m, dir, &p.file, Some(stmt), error, outcome, then))
    }

    /// Every statement took effect: the migration is applied (or, going
    /// down, its data is back and its row goes).
    async fn finish(&mut self, p: &mut Progress<'_>, hook: &mut dyn Hook) -> Result<(), RunError> {
        let (m, n) = (p.run.m, p.n);
        match p.run.dir {
            Direction::Up => {
                p.row.state = initial_state(m);
                p.row.statements_done = n as i64;
                p.row.execution_ms = p.run.started.elapsed().as_millis() as i64;
                p.row.error = None;
                self.db
                    .write_tracking(&p.row)
                    .await
                    .map_err(|e| p.part_way(e, n, None))?;
            }
            Direction::Down => {
                if let Err(e) = hook
                    .after_down(self.db, m, p.run.analysis, p.run.backup, false)
                    .await
                {
                    // down.sql took effect and cannot be rolled back: the
                    // failed mark stays, saying what is missing.
                    p.row.statements_done = n as i64;
                    p.row.error = Some(format!(
                        "every statement of {} took effect; putting the backed-up data back failed",
                        p.name
                    ));
                    let _ = self.db.write_tracking(&p.row).await;
                    return Err(e);
                }
                forget_backfill(self.db, m)
                    .await
                    .map_err(|e| p.part_way(e, n, None))?;
                self.db
                    .delete_tracking(&m.version.to_string())
                    .await
                    .map_err(|e| p.part_way(e, n, None))?;
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

    /// Drops the index `ix` if it exists, is INVALID, and is the index
    /// asked for: an INVALID index of the same name and another
    /// definition (another session's build, say) is not keel's to drop.
    async fn drop_if_invalid(&mut self, ix: &AskedIndex) -> Result<(), DbError> {
        if self.db.index_valid(&ix.name).await? != Some(false) {
            return Ok(());
        }
        if let Some(asked) = &ix.request
            && self.db.index_mismatch(asked).await?.is_some()
        {
            return Ok(());
        }
        self.db
            .drop_index(&crate::db::quote_relation(&ix.name))
            .await?;
        (self.on_event)(Event::DroppedInvalidIndex(ix.name.clone()));
        Ok(())
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
