//! The guarded run (`keel execute V --env E`): guard, checklist, backup,
//! run, post-migration checks, automatic rollback, record.
//!
//! Everything up to the checklist's last answer changes nothing (the dry
//! run is rolled back); a refusal there leaves no trace. Right before the
//! migration runs, an intent record (`started`) is written and registered
//! in the database; from then on every outcome ends in a (signed) final
//! record linked to it and appended to the runbook. A run that keel could
//! not finish (killed, the machine lost) is finished or recorded by the
//! next `execute` of that environment ([`recover`]).
//!
//! The run is a list of steps, one file per step or small family in
//! `steps/`, each an id, a description and a run function ([`step`]);
//! [`pipeline`] runs them in order over one [`context::Context`] (the
//! migration parsed and analysed once), times and logs each, stops or rolls
//! back by one rule, and is the one place that watches for signals.

mod aftermath;
pub(crate) mod alert;
pub(crate) mod checks;
pub(crate) mod confirm;
mod context;
mod guard;
mod pipeline;
mod recover;
pub(crate) mod report;
pub(crate) mod signals;
mod step;
mod steps;
mod window;

use crate::config::{Config, Environment};
use crate::db::{Database, DbError};
use crate::migration::Migration;
use crate::migrator::{Event, RunSettings};
use crate::record::{self, FileRef, Outcome, Record, Written};
use confirm::Confirmer;
use context::Context;
use signals::Signals;
use std::path::{Path, PathBuf};

pub use pipeline::outline;

/// Everything a guarded run needs to know.
pub(crate) struct Request<'a> {
    pub(crate) env_name: &'a str,
    pub(crate) env: &'a Environment,
    pub(crate) config: &'a Config,
    pub(crate) files: &'a [Migration],
    pub(crate) migration: &'a Migration,
    /// `--snapshot FILE`; else the environment's newest snapshot.
    pub(crate) snapshot: Option<PathBuf>,
    pub(crate) confirmer: Confirmer,
    pub(crate) settings: RunSettings,
    /// The project folder: runbooks/, backups/, snapshots/, records/ are in it.
    pub(crate) project: PathBuf,
}

/// How the run talks to the operator.
pub(crate) struct Ui<'a> {
    /// One line of progress (stderr).
    pub(crate) say: &'a (dyn Fn(&str) + Sync),
    /// The runner's events (progress and timings of the migration).
    pub(crate) on_event: &'a (dyn Fn(Event<'_>) + Sync),
}

/// A run that got as far as its record.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) outcome: Outcome,
    pub(crate) record: Record,
    pub(crate) written: Written,
    pub(crate) runbook: PathBuf,
    /// What went wrong, for the error message and the alert (empty when applied).
    pub(crate) problem: String,
}

impl Finished {
    /// What went wrong, where the record and the runbook are, and (after a
    /// rollback) what to do next: the error message of a run that ended badly.
    pub(crate) fn message(&self) -> String {
        let message = format!(
            "{}\n  record: {}\n  runbook: {}",
            self.problem.trim_end(),
            shown(&self.written.path),
            self.runbook.display()
        );
        if self.outcome == Outcome::RolledBack {
            format!(
                "{message}\n  keel rolled {} back; fix the cause, write a new migration or runbook, and run execute again",
                self.record.migration.id
            )
        } else {
            message
        }
    }
}

/// `p` without a leading `./`, as messages show paths.
pub(crate) fn shown(p: &Path) -> String {
    p.strip_prefix(".").unwrap_or(p).display().to_string()
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ExecuteError {
    /// A guard refused; nothing was changed and nothing was written (exit 4).
    #[error("{0}")]
    Refused(String),
    /// The dry run failed; nothing was changed (exit 3).
    #[error("{0}")]
    DryRun(String),
    /// The database failed before anything changed (exit 1).
    #[error("{0}")]
    Db(DbError),
    /// The run ended badly and was recorded: rolled back (exit 5) or failed (exit 1).
    #[error("{}", .0.message())]
    Ended(Box<Finished>),
    /// The run's outcome is known but its record could not be written (exit 1).
    #[error("{0}")]
    Unrecorded(String),
    /// A second Ctrl-C/SIGTERM/SIGHUP stopped the run at once; the intent
    /// record stays for the next `execute` to finish (exit 130).
    #[error("{0}")]
    Stopped(String),
}

/// `rel` inside the project folder, without a leading `./` in messages.
fn at(project: &Path, rel: &str) -> PathBuf {
    if project == Path::new(".") || project.as_os_str().is_empty() {
        PathBuf::from(rel)
    } else {
        project.join(rel)
    }
}

fn file_ref(project: &Path, path: &Path, sha256: &str) -> FileRef {
    FileRef {
        path: path
            .strip_prefix(project)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/"),
        sha256: sha256.to_string(),
    }
}

/// Runs the guarded run of `plan.migration` on `db`.
pub(crate) async fn execute(
    db: &mut dyn Database,
    request: Request<'_>,
    ui: &Ui<'_>,
) -> Result<Finished, ExecuteError> {
    let m = request.migration;
    (ui.say)(&format!(
        "execute {} on `{}` ({})",
        m.id(),
        request.env_name,
        db.display_url()
    ));
    // A run of this environment that never wrote its final record is
    // finished (or recorded as interrupted) before anything else.
    let head = record::store::head(db, request.env_name)
        .await
        .map_err(ExecuteError::Db)?;
    if head.as_ref().is_some_and(record::chain::is_open) {
        let signer = guard::signer(
            request.config,
            &request.project,
            request.env_name,
            request.env,
        )?;
        if let Some(done) = recover::recover(db, &request, ui, signer).await? {
            return done;
        }
    }
    let rec = Record::start(request.env_name, m, db.display_url());
    let mut cx = Context::new(db, &request, ui, rec).await?;
    pipeline::guards(&mut cx).await?;
    // Installed right before the run lock: from here on a first signal
    // finishes the run instead of killing it half-way.
    let signals = Signals::install();
    let result = pipeline::run(&mut cx, pipeline::From::Start, &signals).await;
    // Stopped at once: the connection is dropped, not used again.
    if !matches!(result, Err(ExecuteError::Stopped(_))) {
        let _ = cx.runner().unlock(Ok(())).await;
    }
    result
}
