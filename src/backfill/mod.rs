//! Backfills: a migration's `[backfill]` data change, run after its SQL
//! commits, in batches by primary-key range (`key > lo AND key <= hi`),
//! each batch its own short transaction with `lock_timeout`, and its
//! progress written in that same transaction so that a crash, `kill -9` or
//! Ctrl-C resumes from the last committed batch.
//!
//! A batch the data of some row breaks runs again in halves under
//! savepoints, bisected down to the rows that break it ([`bisect`]), which
//! are skipped and logged (key and error) to
//! `backfills/<version>_<name>/failures.csv`; every other row is done once.
//! A validation report follows: no unexpected NULLs, the row count, and a
//! random sample recomputed.

mod bisect;
mod error;
pub(crate) mod preflight;
mod retry;
mod sql;
pub(crate) mod store;
mod throttle;
mod validate;

pub(crate) use error::BackfillError;
pub(crate) use sql::BackfillSql;
pub(crate) use store::Failure;
pub(crate) use throttle::Pause;
pub(crate) use validate::Validation;

use crate::db::{Database, DbError, Timeouts, Value};
use crate::migration::Migration;
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use validate::first_int;

pub(crate) const DEFAULT_BATCH_SIZE: u64 = 1000;
pub(crate) const DEFAULT_DELAY: Duration = Duration::from_millis(100);

/// How to run a backfill: command-line overrides already merged with
/// migration.toml and the defaults.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) batch_size: u64,
    /// Pause between batches, so that the application's writes get the
    /// rows, the WAL and the replicas' attention in between.
    pub(crate) delay: Duration,
    pub(crate) timeouts: Timeouts,
    /// Lock-timeout retries of one batch, with back-off doubling from `backoff`.
    pub(crate) retries: u32,
    pub(crate) backoff: Duration,
    /// Where `<version>_<name>/failures.csv` goes: `backfills/`.
    pub(crate) dir: PathBuf,
    /// When to pause between batches (replica lag, lock waits, load).
    pub(crate) throttle: crate::migration::meta::Throttle,
}

/// What a backfill reports while it works.
#[derive(Debug)]
pub(crate) enum Progress<'a> {
    Started {
        migration: &'a Migration,
        /// Rows in the table when the backfill first started.
        total: u64,
        /// Rows already done by an earlier, interrupted run.
        done: u64,
        resumed_after: Option<i64>,
    },
    Batch {
        migration: &'a Migration,
        done: u64,
        total: u64,
        failures: u64,
        last_key: i64,
    },
    RowFailed {
        migration: &'a Migration,
        key: i64,
        error: &'a str,
    },
    LockRetry {
        migration: &'a Migration,
        attempt: u32,
        retries: u32,
        wait: Duration,
    },
    /// The server is not ready for the next batch: why, and how long the
    /// backfill has waited so far.
    Paused {
        migration: &'a Migration,
        reason: &'a str,
        waited: Duration,
    },
    /// The server's statistics cannot be read: no more pauses.
    Unthrottled {
        migration: &'a Migration,
        reason: &'a str,
    },
    Validating(&'a Migration),
    Finished(&'a Report),
}

/// The outcome of a backfill run (including what earlier runs did).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) migration: String,
    pub(crate) table: String,
    pub(crate) rows_total: i64,
    pub(crate) rows_done: i64,
    pub(crate) rows_updated: i64,
    /// Batches this run committed.
    pub(crate) batches: u64,
    /// Of those, the ones some row broke, done again in bisected parts.
    pub(crate) bisected_batches: u64,
    /// Statements this run sent for its batches (key look-ups, BEGIN with
    /// its settings, UPDATEs, savepoints, progress, COMMIT), validation
    /// left out: what skipped rows cost, for `-v`.
    pub(crate) statements: u64,
    /// UPDATEs of parts the bisections ran (on PostgreSQL inside one
    /// statement a batch, so not in `statements`).
    pub(crate) part_updates: u64,
    pub(crate) batch_size: u64,
    pub(crate) delay_ms: u64,
    /// Time of this run's batches, and of the validation.
    #[serde(serialize_with = "ms")]
    pub(crate) elapsed: Duration,
    #[serde(serialize_with = "ms")]
    pub(crate) validation_elapsed: Duration,
    pub(crate) failures: Vec<Failure>,
    pub(crate) failures_csv: Option<PathBuf>,
    pub(crate) validation: Validation,
    /// This run's pauses between batches, in order.
    pub(crate) pauses: Vec<Pause>,
}

fn ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl Report {
    /// Every row done and the validation passed: the migration is applied.
    pub(crate) fn ok(&self) -> bool {
        self.failures.is_empty() && self.validation.passed()
    }

    /// `paused 3 times, 41.2 s in all: replica r1 is 6.1s behind …` (none: `None`).
    pub(crate) fn pauses_line(&self) -> Option<String> {
        if self.pauses.is_empty() {
            return None;
        }
        let total: Duration = self.pauses.iter().map(|p| p.waited).sum();
        Some(format!(
            "paused {} time(s), {:.1} s in all: {}",
            self.pauses.len(),
            total.as_secs_f64(),
            self.pauses
                .iter()
                .map(|p| format!("{} ({:.1} s)", p.reason, p.waited.as_secs_f64()))
                .collect::<Vec<_>>()
                .join("; ")
        ))
    }

    pub(crate) fn rows_per_second(&self) -> u64 {
        (self.rows_done as f64 / self.elapsed.as_secs_f64().max(1e-3)) as u64
    }
}

/// Runs or resumes `m`'s backfill to the end, then validates it.
pub(crate) async fn run(
    db: &mut dyn Database,
    m: &Migration,
    opts: &Options,
    on: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<Report, BackfillError> {
    let Some(spec) = m.meta.backfill.as_ref() else {
        return Err(BackfillError::Db(DbError::usage(format!(
            "migration {} has no [backfill] section in migration.toml",
            m.id()
        ))));
    };
    preflight::check(db, m, preflight::When::BeforeBatches).await?;
    let plan = BackfillSql::new(spec);
    store::ensure(db).await?;
    let mut engine = Engine {
        db,
        m,
        plan: &plan,
        opts,
        on,
        version: m.version.to_string(),
        batches: 0,
        bisected: 0,
        statements: 0,
        part_updates: 0,
        server_bisect: None,
        state: None,
        gate: throttle::Gate::new(opts.throttle, &spec.table),
        pauses: Vec::new(),
    };
    engine.check_key().await?;
    let state = match store::load(engine.db, &engine.version).await? {
        Some(s) => s,
        None => store::State {
            version: engine.version.clone(),
            table: spec.table.clone(),
            last_key: None,
            rows_total: first_int(engine.db.query_with(&plan.count(), &[]).await?).unwrap_or(0),
            rows_done: 0,
            rows_updated: 0,
            failures: 0,
            started_at: store::now(),
            finished_at: None,
        },
    };
    let was_finished = state.finished_at.is_some();
    on(Progress::Started {
        migration: m,
        total: state.rows_total.max(0) as u64,
        done: state.rows_done.max(0) as u64,
        resumed_after: state.last_key,
    });
    engine.state = Some(state);
    let started = Instant::now();
    if was_finished {
        // A run after a finished one: the operator fixed rows; retry them.
        engine.retry_failures().await?;
    } else {
        engine.batches_to_the_end().await?;
    }
    let elapsed = started.elapsed();

    on(Progress::Validating(m));
    let validation_started = Instant::now();
    let failures = store::failures(engine.db, &engine.version).await?;
    let state = engine.state.take().unwrap_or_else(|| unreachable!());
    let validation =
        validate::validate(engine.db, &plan, &engine.version, state.rows_total).await?;
    let failures_csv = write_failures_csv(&opts.dir.join(m.id()), &failures)?;
    let report = Report {
        migration: m.id(),
        table: spec.table.clone(),
        rows_total: state.rows_total,
        rows_done: state.rows_done,
        rows_updated: state.rows_updated,
        batches: engine.batches,
        bisected_batches: engine.bisected,
        statements: engine.statements,
        part_updates: engine.part_updates,
        batch_size: opts.batch_size,
        delay_ms: opts.delay.as_millis() as u64,
        elapsed,
        validation_elapsed: validation_started.elapsed(),
        failures,
        failures_csv,
        validation,
        pauses: std::mem::take(&mut engine.pauses),
    };
    on(Progress::Finished(&report));
    Ok(report)
}

struct Engine<'e> {
    db: &'e mut dyn Database,
    m: &'e Migration,
    plan: &'e BackfillSql,
    opts: &'e Options,
    on: &'e (dyn Fn(Progress<'_>) + Sync),
    version: String,
    batches: u64,
    bisected: u64,
    statements: u64,
    /// UPDATEs of parts the bisections ran.
    part_updates: u64,
    /// Whether the database bisects on the server; asked before the first
    /// bisection.
    server_bisect: Option<bool>,
    /// The committed progress; `Some` while running.
    state: Option<store::State>,
    gate: throttle::Gate,
    pauses: Vec<Pause>,
}

impl Engine<'_> {
    fn state(&self) -> &store::State {
        self.state.as_ref().unwrap_or_else(|| unreachable!())
    }

    /// Counts statements about to be sent, for the report.
    fn sent(&mut self, n: u64) {
        self.statements += n;
    }

    async fn check_key(&mut self) -> Result<(), BackfillError> {
        let rows = self.db.query_with(&self.plan.min_max(), &[]).await?;
        let bad = rows.first().is_some_and(
            |r| matches!(r.first(), Some(v) if *v != Value::Null && !matches!(v, Value::Int(_))),
        );
        if bad {
            return Err(BackfillError::KeyNotInteger {
                migration: self.m.id(),
                table: self.plan.table.clone(),
                key: self.plan.key_name.clone(),
            });
        }
        Ok(())
    }

    fn bounds(lo: Option<i64>, hi: Option<i64>) -> Vec<Value> {
        lo.into_iter().chain(hi).map(Value::Int).collect()
    }

    /// The key `n` rows after `lo` (n ≥ 1).
    async fn key_at(&mut self, lo: Option<i64>, n: u64) -> Result<Option<i64>, DbError> {
        let mut params = Self::bounds(lo, None);
        params.push(Value::Int(n.saturating_sub(1) as i64));
        self.sent(1);
        Ok(first_int(
            self.db
                .query_with(&self.plan.key_at(lo.is_none()), &params)
                .await?,
        ))
    }

    async fn count_range(&mut self, lo: Option<i64>, hi: i64) -> Result<u64, DbError> {
        self.sent(1);
        Ok(first_int(
            self.db
                .query_with(
                    &self.plan.count_range(lo.is_none()),
                    &Self::bounds(lo, Some(hi)),
                )
                .await?,
        )
        .unwrap_or(0)
        .max(0) as u64)
    }

    /// Batches from the last committed key to the end of the table. Rows
    /// inserted meanwhile with higher keys are included: the end is found
    /// again after each batch.
    async fn batches_to_the_end(&mut self) -> Result<(), BackfillError> {
        let size = self.opts.batch_size.max(1);
        loop {
            let lo = self.state().last_key;
            let (hi, rows) = match self.key_at(lo, size).await? {
                Some(hi) => (hi, size),
                None => {
                    self.sent(1);
                    let last = first_int(
                        self.db
                            .query_with(&self.plan.max_after(lo.is_none()), &Self::bounds(lo, None))
                            .await?,
                    );
                    match last {
                        Some(hi) => (hi, self.count_range(lo, hi).await?),
                        None => break,
                    }
                }
            };
            self.range(lo, hi, rows).await?;
            self.pause_while_busy().await?;
            if self.opts.delay > Duration::ZERO {
                tokio::time::sleep(self.opts.delay).await;
            }
        }
        let mut done = self.state().clone();
        done.finished_at = Some(store::now());
        self.commit_state(done, None, true).await
    }

    /// Waits until the server is ready for another batch.
    async fn pause_while_busy(&mut self) -> Result<(), BackfillError> {
        let (m, on) = (self.m, self.on);
        let mut said = |reason: &str, waited: Duration| {
            on(Progress::Paused {
                migration: m,
                reason,
                waited,
            })
        };
        let pauses = self.gate.wait(self.db, &mut said).await?;
        self.pauses.extend(pauses);
        if let Some(reason) = self.gate.went_blind.take() {
            on(Progress::Unthrottled {
                migration: m,
                reason: &reason,
            });
        }
        Ok(())
    }

    /// One batch; when the data of some row breaks it, the batch runs
    /// again, bisected.
    async fn range(&mut self, lo: Option<i64>, hi: i64, rows: u64) -> Result<(), BackfillError> {
        match self.batch(lo, hi, rows).await? {
            None => Ok(()),
            Some(_) => self.bisected(lo, hi).await,
        }
    }

    /// The batch again, bisected under savepoints ([`bisect`]), in one
    /// transaction with its progress and its skipped rows: rows the
    /// expressions cannot transform are logged; every other row is done.
    async fn bisected(&mut self, lo: Option<i64>, hi: i64) -> Result<(), BackfillError> {
        if self.server_bisect.is_none() {
            let ready = self.db.prepare_bisect().await?;
            self.sent(u64::from(ready));
            self.server_bisect = Some(ready);
        }
        let mut attempt = 0;
        loop {
            self.sent(1);
            self.db.begin(self.opts.timeouts, false).await?;
            let outcome = async {
                self.sent(1);
                let keys: Vec<i64> = self
                    .db
                    .query_with(
                        &self.plan.keys_in_range(lo.is_none()),
                        &Self::bounds(lo, Some(hi)),
                    )
                    .await?
                    .into_iter()
                    .filter_map(|r| r.first().and_then(Value::as_i64))
                    .collect();
                let done = self.isolate(lo, hi, &keys).await?;
                self.part_updates += done.attempts;
                let skipped: Vec<(i64, String)> = done
                    .failed
                    .iter()
                    .map(|(key, e)| (*key, one_line(e)))
                    .collect();
                for (key, message) in &skipped {
                    self.sent(1);
                    store::add_failure(self.db, &self.version, *key, message).await?;
                }
                let mut next = self.state().clone();
                next.last_key = Some(hi);
                next.rows_done += keys.len() as i64;
                next.rows_updated += done.updated as i64;
                next.failures += skipped.len() as i64;
                self.sent(1);
                store::save(self.db, &next).await?;
                Ok((next, skipped))
            }
            .await;
            let error = match outcome {
                Ok((next, skipped)) => {
                    self.sent(1);
                    match self.db.commit().await {
                        Ok(()) => {
                            for (key, message) in &skipped {
                                (self.on)(Progress::RowFailed {
                                    migration: self.m,
                                    key: *key,
                                    error: message,
                                });
                            }
                            self.bisected += 1;
                            self.committed(next);
                            return Ok(());
                        }
                        Err(e) => e,
                    }
                }
                Err(e) => e,
            };
            self.sent(1);
            let _ = self.db.rollback().await;
            if error.is_lock_timeout() && attempt < self.opts.retries {
                attempt += 1;
                self.lock_retry(attempt).await;
                continue;
            }
            return Err(self.batch_error(lo, hi, error));
        }
    }

    async fn lock_retry(&self, attempt: u32) {
        let wait = self.opts.backoff * 2u32.pow(attempt - 1);
        (self.on)(Progress::LockRetry {
            migration: self.m,
            attempt,
            retries: self.opts.retries,
            wait,
        });
        tokio::time::sleep(wait).await;
    }

    fn batch_error(&self, lo: Option<i64>, hi: i64, error: DbError) -> BackfillError {
        let range = match lo {
            Some(lo) => format!("{lo} < {} <= {hi}", self.plan.key_name),
            None => format!("{} <= {hi}", self.plan.key_name),
        };
        if error.is_lock_timeout() {
            BackfillError::LockTimeout {
                migration: self.m.id(),
                range,
                retries: self.opts.retries,
            }
        } else {
            BackfillError::Batch {
                migration: self.m.id(),
                range,
                error,
            }
        }
    }

    /// Runs the batch `lo < key <= hi` with its progress row in one
    /// transaction, retrying lock timeouts. `Ok(Some(e))` when the data of a
    /// row broke it (nothing of it kept).
    async fn batch(
        &mut self,
        lo: Option<i64>,
        hi: i64,
        rows: u64,
    ) -> Result<Option<DbError>, BackfillError> {
        let sql = self.plan.update(lo.is_none());
        let params = Self::bounds(lo, Some(hi));
        let mut attempt = 0;
        loop {
            // Not durable: a server crash can lose only whole recent
            // batches together with their progress, which then run again.
            self.sent(1);
            self.db.begin(self.opts.timeouts, false).await?;
            let outcome = async {
                self.sent(1);
                let updated = self.db.execute_with(&sql, &params).await?;
                let mut next = self.state().clone();
                next.last_key = Some(hi);
                next.rows_done += rows as i64;
                next.rows_updated += updated as i64;
                self.sent(1);
                store::save(self.db, &next).await?;
                Ok::<_, DbError>(next)
            }
            .await;
            let error = match outcome {
                Ok(next) => {
                    self.sent(1);
                    match self.db.commit().await {
                        Ok(()) => {
                            self.committed(next);
                            return Ok(None);
                        }
                        Err(e) => e,
                    }
                }
                Err(e) => e,
            };
            self.sent(1);
            let _ = self.db.rollback().await;
            if error.is_lock_timeout() && attempt < self.opts.retries {
                attempt += 1;
                self.lock_retry(attempt).await;
                continue;
            }
            if error.is_data_error() {
                return Ok(Some(error));
            }
            return Err(self.batch_error(lo, hi, error));
        }
    }

    async fn commit_state(
        &mut self,
        next: store::State,
        failure: Option<(i64, String)>,
        durable: bool,
    ) -> Result<(), BackfillError> {
        self.sent(if failure.is_some() { 4 } else { 3 });
        self.db.begin(self.opts.timeouts, durable).await?;
        let outcome = async {
            if let Some((key, message)) = &failure {
                store::add_failure(self.db, &self.version, *key, message).await?;
            }
            store::save(self.db, &next).await
        }
        .await;
        match outcome {
            Ok(()) => self.db.commit().await?,
            Err(e) => {
                let _ = self.db.rollback().await;
                return Err(e.into());
            }
        }
        self.state = Some(next);
        Ok(())
    }

    fn committed(&mut self, next: store::State) {
        self.batches += 1;
        (self.on)(Progress::Batch {
            migration: self.m,
            done: next.rows_done.max(0) as u64,
            total: next.rows_total.max(0) as u64,
            failures: next.failures.max(0) as u64,
            last_key: next.last_key.unwrap_or_default(),
        });
        self.state = Some(next);
    }
}

/// The error as one line for the CSV: message, SQLSTATE and detail.
fn one_line(e: &DbError) -> String {
    let mut s = e.message.clone();
    if let Some(code) = &e.code {
        s.push_str(&format!(" ({code})"));
    }
    if let Some(detail) = &e.detail {
        s.push_str(&format!("; {detail}"));
    }
    s.replace(['\n', '\r'], " ")
}

/// Writes `failures.csv` (key,error) from the database's list, or removes a
/// stale one when nothing failed.
fn write_failures_csv(
    dir: &std::path::Path,
    failures: &[Failure],
) -> Result<Option<PathBuf>, std::io::Error> {
    let path = dir.join("failures.csv");
    if failures.is_empty() {
        if path.exists() {
            std::fs::remove_file(&path)?;
        }
        return Ok(None);
    }
    if let Some(top) = dir.parent() {
        crate::files::private_ignored_dir(top)?;
    }
    crate::files::private_dir(dir)?;
    let mut text = String::from("key,error\n");
    for f in failures {
        text.push_str(&format!("{},{}\n", f.key, csv_field(&f.error)));
    }
    crate::files::write_private(&path, text.as_bytes())?;
    Ok(Some(path))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(
            csv_field("value too long, \"x\""),
            "\"value too long, \"\"x\"\"\""
        );
    }
}
