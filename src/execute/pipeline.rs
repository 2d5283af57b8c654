//! The guarded run as a list of steps, and the one place that runs them:
//! it times and logs each step, applies one rule when a step fails, and
//! handles signals. The rule: a refusal (`Err`) ends the run with nothing
//! written; [`Then::Stop`] ends it failed and recorded (before the commit
//! nothing was changed; after it, nothing more is safe, e.g. a backfill
//! left to resume); [`Then::RollBack`] (after the commit) lets the
//! remaining checks run, then the rollback steps.
//!
//! A new step is one file in `steps/` and one line below.

use super::context::Context;
use super::signals::Signals;
use super::step::{Step, Then};
use super::steps::{
    backfill, backup, checklist, checks, finish, guards, lock, migrate, monitor, record, rollback,
};
use super::{ExecuteError, Finished};
use crate::record::Outcome;
use chrono::Utc;

/// Before the run lock: each refuses with nothing changed and nothing written.
const GUARDS: &[&dyn Step] = &[
    &guards::SigningKey,
    &guards::RunbookFresh,
    &guards::Pending,
    &guards::Records,
    &guards::Snapshot,
    &guards::DryRun,
    &guards::AlertTargets,
    &monitor::Baseline,
    &checklist::Checklist,
];

/// Under the run lock, up to the migration's commit.
const TO_COMMIT: &[&dyn Step] = &[
    &lock::RunLock,
    &lock::StillPending,
    &lock::RecordsPrepared,
    &backup::Backup,
    &migrate::RowCounts,
    &monitor::Baseline,
    &record::Intent,
    &migrate::Migrate,
];

/// After the commit: what judges the migration.
const AFTER_COMMIT: &[&dyn Step] = &[&backfill::Backfill, &checks::PostChecks, &monitor::Monitor];

/// When something after the commit failed.
const ROLLBACK: &[&dyn Step] = &[&rollback::Rollback, &rollback::RollbackVerified];

/// However the run ended: the alert, the final record, the runbook.
const FINISH: &[&dyn Step] = &[
    &finish::Signal,
    &finish::Alert,
    &record::Record,
    &record::Annotation,
];

/// Every step in the order a run meets them (the rollback only after a
/// failed check): its name and what it makes sure of.
pub fn outline() -> Vec<(&'static str, &'static str)> {
    [GUARDS, TO_COMMIT, AFTER_COMMIT, ROLLBACK, FINISH]
        .concat()
        .iter()
        .map(|s| (s.id().name(), s.about()))
        .collect()
}

/// Where a run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum From {
    /// A new run that passed its guards: the run lock onwards.
    Start,
    /// A stopped run whose migration committed: its checks onwards.
    Commit,
}

/// The guards and the checklist: nothing is changed or written, so a step
/// that stops the run refuses it.
pub(crate) async fn guards(cx: &mut Context<'_>) -> Result<(), ExecuteError> {
    match steps(cx, GUARDS).await? {
        Some(problem) => Err(ExecuteError::Refused(problem)),
        None => Ok(()),
    }
}

/// Runs the steps from `from` to the run's record. `signals` is installed
/// by the caller before it takes the run lock: a first Ctrl-C, SIGTERM or
/// SIGHUP does not stop the run half-way, it finishes (checks, rollback if
/// needed, record); a second one stops it at once
/// ([`ExecuteError::Stopped`]).
pub(crate) async fn run(
    cx: &mut Context<'_>,
    from: From,
    signals: &Signals,
) -> Result<Finished, ExecuteError> {
    cx.watching = Some(signals.count());
    let ran = tokio::select! {
        r = to_the_end(cx, from, signals) => Some(r),
        () = signals.stopped() => None,
    };
    match ran {
        Some(r) => r,
        None => Err(stopped(cx)),
    }
}

async fn to_the_end(
    cx: &mut Context<'_>,
    from: From,
    signals: &Signals,
) -> Result<Finished, ExecuteError> {
    let stopped = match from {
        From::Start => steps(cx, TO_COMMIT).await?,
        From::Commit => None,
    };
    let (outcome, problem) = match stopped {
        Some(problem) => (Outcome::Failed, problem),
        None => after_commit(cx).await?,
    };
    cx.outcome = outcome;
    cx.problem = problem;
    cx.signal = signals.received();
    steps(cx, FINISH).await?;
    // The record step wrote it or returned its error above.
    let Some((written, record)) = cx.written.take() else {
        return Err(ExecuteError::Unrecorded(
            "the run ended without its record".into(),
        ));
    };
    let finished = Finished {
        outcome: cx.outcome,
        record,
        written,
        runbook: cx.runbook_shown.clone(),
        problem: std::mem::take(&mut cx.problem),
    };
    if finished.outcome == Outcome::Applied {
        Ok(finished)
    } else {
        Err(ExecuteError::Ended(Box::new(finished)))
    }
}

/// The checks after the commit, and the rollback when one failed.
async fn after_commit(cx: &mut Context<'_>) -> Result<(Outcome, String), ExecuteError> {
    if let Some(problem) = steps(cx, AFTER_COMMIT).await? {
        return Ok((Outcome::Failed, problem));
    }
    if cx.failures.is_empty() {
        return Ok((Outcome::Applied, String::new()));
    }
    cx.problem = format!(
        "post-migration check(s) failed after {} ran:\n  {}",
        cx.migration().id(),
        cx.failures.join("\n  ")
    );
    match steps(cx, ROLLBACK).await? {
        Some(problem) => Ok((Outcome::Failed, problem)),
        None => Ok((Outcome::RolledBack, cx.problem.clone())),
    }
}

/// Runs `list` in order, timing and logging each step. `Some(problem)`:
/// a step stopped the run.
async fn steps(cx: &mut Context<'_>, list: &[&dyn Step]) -> Result<Option<String>, ExecuteError> {
    for step in list {
        let t = Utc::now();
        let done = step.run(cx).await?;
        if let Some((outcome, detail)) = done.line {
            cx.log.step(step.id().name(), outcome, t, detail);
        }
        match done.then {
            Then::Next => {}
            Then::Stop(problem) => return Ok(Some(problem)),
            Then::RollBack(failure) => cx.failures.push(failure),
        }
    }
    Ok(None)
}

/// A second signal stopped the run at once.
fn stopped(cx: &Context<'_>) -> ExecuteError {
    let m = cx.migration();
    let env = cx.env_name();
    if !cx.intent_written {
        return ExecuteError::Stopped(format!(
            "stopped by a second signal before {} ran on `{env}`: nothing was changed in the database\n  fix: run `keel execute {} --env {env}` again when you are ready",
            m.id(),
            m.version
        ));
    }
    ExecuteError::Stopped(format!(
        "stopped by a second signal while executing {} on `{env}`: an open transaction rolled back; what committed before stays, and so does the intent record\n  fix: `keel execute {} --env {env}` finishes the run (post-migration checks, rollback if one fails, record) or records it as interrupted; `keel status --env {env}` shows where it stands",
        m.id(),
        m.version,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::confirm::Confirmer;
    use crate::execute::step::{Done, StepId};
    use crate::execute::{Request, Ui};
    use crate::record::{Record, StepOutcome};

    /// A step that ends as it is told.
    struct Fake(StepId, fn() -> Done);

    #[async_trait::async_trait(?Send)]
    impl Step for Fake {
        fn id(&self) -> StepId {
            self.0
        }

        fn about(&self) -> &'static str {
            "a step of this test"
        }

        async fn run(&self, _: &mut Context<'_>) -> Result<Done, ExecuteError> {
            Ok((self.1)())
        }
    }

    #[tokio::test]
    async fn a_stop_ends_the_list_and_a_failed_check_is_kept_for_the_rollback() {
        let mut db = crate::db::connect("sqlite::memory:").await.unwrap();
        let m = crate::migration::Migration {
            version: "20260101000000".parse().unwrap(),
            name: "x".into(),
            dir: "migrations/20260101000000_x".into(),
            up: "CREATE TABLE t (id INTEGER);".into(),
            down: None,
            meta: Default::default(),
            checksum: "0".repeat(64),
        };
        let (config, env) = (Default::default(), Default::default());
        let request = Request {
            env_name: "test",
            env: &env,
            config: &config,
            files: std::slice::from_ref(&m),
            migration: &m,
            snapshot: None,
            confirmer: Confirmer::Yes,
            settings: Default::default(),
            project: ".".into(),
        };
        let lines = std::sync::Mutex::new(Vec::new());
        let say = |l: &str| lines.lock().unwrap().push(l.to_string());
        let ui = Ui {
            say: &say,
            on_event: &|_| {},
        };
        let rec = Record::start("test", &m, "sqlite::memory:");
        let mut cx = Context::new(db.as_mut(), &request, &ui, rec).await.unwrap();
        let list: &[&dyn Step] = &[
            &Fake(StepId::Backfill, || {
                Done::failed("3 rows").roll_back("backfill: 3 rows".into())
            }),
            &Fake(StepId::Migrate, || Done::ok("applied")),
            &Fake(StepId::Rollback, || {
                Done::failed("no").stop("it failed".into())
            }),
            &Fake(StepId::Alert, || panic!("runs after a stop")),
        ];
        let stopped = steps(&mut cx, list).await.unwrap();
        assert_eq!(stopped.as_deref(), Some("it failed"));
        assert_eq!(cx.failures, ["backfill: 3 rows"]);
        let logged: Vec<(&str, StepOutcome)> = cx
            .log
            .rec
            .steps
            .iter()
            .map(|s| (s.name.as_str(), s.outcome))
            .collect();
        assert_eq!(
            logged,
            [
                ("backfill", StepOutcome::Failed),
                ("migrate", StepOutcome::Ok),
                ("rollback", StepOutcome::Failed),
            ]
        );
        drop(cx);
        assert_eq!(lines.lock().unwrap().len(), 3);
    }

    #[test]
    fn the_outline_names_each_step_once() {
        let outline = outline();
        let mut ids: Vec<&str> = outline.iter().map(|(id, _)| *id).collect();
        // Checked again under the run lock, under the same names; the
        // baseline is read before the checklist and again before the
        // migration, for a rate between the two.
        ids.retain(|id| !matches!(*id, "pending" | "records" | "baseline"));
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "{outline:?}");
        assert!(outline.iter().all(|(_, about)| !about.is_empty()));
        assert_eq!(outline[0].0, "signing-key");
        assert_eq!(outline.last().map(|s| s.0), Some("runbook-annotation"));
    }
}
