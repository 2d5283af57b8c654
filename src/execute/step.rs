//! One step of the guarded run: an id, what it is for, and a run function
//! that says how it went and what the run does next. The pipeline
//! ([`super::pipeline`]) times and logs every step the same way.

use super::context::Context;
use super::{ExecuteError, report};
use crate::record::{Record, StepOutcome};
use chrono::{DateTime, Utc};

/// Which step: its name in the terminal lines and in the record's steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepId {
    SigningKey,
    Runbook,
    Pending,
    Records,
    Snapshot,
    DryRun,
    Checklist,
    RunLock,
    /// The migration is still the next pending one once the lock is held.
    StillPending,
    /// The records folder made to match the database (logged as `records`).
    RecordsPrepared,
    Backup,
    RowCounts,
    Intent,
    Migrate,
    Backfill,
    /// The post-migration checks (each logged under its own name).
    PostChecks,
    /// The server's rates before the migration, for the monitoring window.
    Baseline,
    /// The monitoring window (each sample logged as `monitor`).
    Monitor,
    /// The alert webhook's URL is set before the run starts.
    AlertTargets,
    Rollback,
    RollbackVerified,
    Signal,
    Alert,
    Record,
    Annotation,
    /// A stopped run finished by the next `execute`.
    Resumed,
    /// A stopped run that never committed, recorded as such.
    Interrupted,
}

impl StepId {
    /// The name the terminal and the record show.
    pub(crate) fn name(self) -> &'static str {
        match self {
            StepId::SigningKey => "signing-key",
            StepId::Runbook => "runbook",
            StepId::Pending | StepId::StillPending => "pending",
            StepId::Records | StepId::RecordsPrepared => "records",
            // What keel verifies itself carries the checklist item's id
            // (the test below holds them together).
            StepId::Snapshot => "snapshot-taken",
            StepId::DryRun => "dry-run-reviewed",
            StepId::Backup => "backup-verified",
            StepId::Checklist => "checklist",
            StepId::RunLock => "run-lock",
            StepId::RowCounts => "row-counts-before",
            StepId::Intent => "intent",
            StepId::Migrate => "migrate",
            StepId::Backfill => "backfill",
            StepId::PostChecks => "checks",
            StepId::Baseline => "baseline",
            StepId::Monitor => "monitor",
            StepId::AlertTargets => "alert-targets",
            StepId::Rollback => "rollback",
            StepId::RollbackVerified => "rollback-verified",
            StepId::Signal => "signal",
            StepId::Alert => "alert",
            StepId::Record => "record",
            StepId::Annotation => "runbook-annotation",
            StepId::Resumed => "resumed",
            StepId::Interrupted => "interrupted",
        }
    }
}

/// What the run does after a step.
#[derive(Debug)]
pub(crate) enum Then {
    Next,
    /// The run ends here, failed, with this problem (before the commit:
    /// nothing was changed; after it: nothing more can be done safely).
    Stop(String),
    /// After the commit: the run goes on with its checks, then rolls the
    /// migration back; this is what failed.
    RollBack(String),
}

/// How a step went.
#[derive(Debug)]
pub(crate) struct Done {
    /// The step's line; `None` when it logged its own lines or had nothing
    /// to say.
    pub(crate) line: Option<(StepOutcome, String)>,
    pub(crate) then: Then,
}

impl Done {
    pub(crate) fn ok(detail: impl Into<String>) -> Done {
        Done::line(StepOutcome::Ok, detail.into())
    }

    pub(crate) fn skipped(detail: impl Into<String>) -> Done {
        Done::line(StepOutcome::Skipped, detail.into())
    }

    /// Failed, but the run goes on as it would have (an alert not sent).
    pub(crate) fn failed(detail: impl Into<String>) -> Done {
        Done::line(StepOutcome::Failed, detail.into())
    }

    /// Nothing to log.
    pub(crate) fn quiet() -> Done {
        Done {
            line: None,
            then: Then::Next,
        }
    }

    fn line(outcome: StepOutcome, detail: String) -> Done {
        Done {
            line: Some((outcome, detail)),
            then: Then::Next,
        }
    }

    /// …and the run ends, failed, with `problem`.
    pub(crate) fn stop(self, problem: String) -> Done {
        Done {
            then: Then::Stop(problem),
            ..self
        }
    }

    /// …and the migration is rolled back after the remaining checks.
    pub(crate) fn roll_back(self, problem: String) -> Done {
        Done {
            then: Then::RollBack(problem),
            ..self
        }
    }
}

/// One step of the guarded run. A refusal (`Err`) ends the run with
/// nothing recorded; everything else is a [`Done`].
#[async_trait::async_trait(?Send)]
pub(crate) trait Step: Sync {
    fn id(&self) -> StepId;
    /// What the step makes sure of, in one line.
    fn about(&self) -> &'static str;
    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError>;
}

/// The run's record as it grows, printed as it goes.
pub(crate) struct Log<'a> {
    pub(crate) rec: Record,
    pub(crate) say: &'a (dyn Fn(&str) + Sync),
}

impl Log<'_> {
    pub(crate) fn step(
        &mut self,
        name: &str,
        outcome: StepOutcome,
        t: DateTime<Utc>,
        detail: String,
    ) {
        let took = (Utc::now() - t).num_milliseconds().max(0) as u64;
        self.step_took(name, outcome, t, took, detail);
    }

    /// A confirmed checklist item: the record says how it was confirmed,
    /// the terminal (which already said so once) shows the item.
    pub(crate) fn confirmed(&mut self, name: &str, t: DateTime<Utc>, text: &str, how: &str) {
        self.rec.step(
            name,
            StepOutcome::Confirmed,
            t,
            Some(format!("{text} ({how})")),
        );
        (self.say)(&format!("{:>9}  {name:<24} {text}", "confirmed"));
    }

    pub(crate) fn step_took(
        &mut self,
        name: &str,
        outcome: StepOutcome,
        t: DateTime<Utc>,
        took: u64,
        detail: String,
    ) {
        self.rec.steps.push(crate::record::Step {
            name: name.to_string(),
            outcome,
            started_at: t,
            duration_ms: took,
            detail: Some(detail.clone()),
        });
        (self.say)(&format!(
            "{:>9}  {name:<24} {detail} ({})",
            report::step_word(outcome),
            report::ms(took)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::check_id::CheckId;

    #[test]
    fn a_verifying_step_is_named_for_its_checklist_item() {
        for (step, item) in [
            (StepId::Snapshot, CheckId::SnapshotTaken),
            (StepId::DryRun, CheckId::DryRunReviewed),
            (StepId::Backup, CheckId::BackupVerified),
        ] {
            assert_eq!(step.name(), item.as_str());
            assert!(item.verified_by_keel());
        }
    }
}
