//! A run whose newest record is still its intent (`started`): keel was
//! killed, the machine or the SSH session was lost, or a second signal
//! stopped it. The next `execute` of that environment looks at what the
//! database says and either finishes the run (the migration committed:
//! post-migration checks against the row counts in the intent, the
//! automatic rollback if one fails, the final record, the runbook) or
//! records it as interrupted (the migration is not applied) and goes on.

use super::context::Context;
use super::pipeline::{self, From};
use super::signals::Signals;
use super::step::StepId;
use super::steps::record::{annotate_runbook, write_final};
use super::{ExecuteError, Finished, Request, Ui, at};
use crate::db::Database;
use crate::migration::Migration;
use crate::migrator::{Runner, State, reconcile};
use crate::record::{self, Outcome, Record, Signer, StepOutcome};
use chrono::Utc;
use std::path::Path;

/// `Some`: the interrupted run was this migration's and is now finished
/// (the result of that). `None`: nothing to finish; go on with a fresh run.
pub(super) async fn recover(
    db: &mut dyn Database,
    request: &Request<'_>,
    ui: &Ui<'_>,
    signer: Option<Signer>,
) -> Result<Option<Result<Finished, ExecuteError>>, ExecuteError> {
    (ui.say)(&format!(
        "the newest record of `{}` is the intent of a run with no final record: that run was stopped (or is still running); taking the run lock to look",
        request.env_name
    ));
    let signals = Signals::install();
    let mut runner = Runner {
        db,
        settings: request.settings,
        operator: crate::migrator::operator(),
        on_event: ui.on_event,
        reach: None,
        alone: false,
    };
    runner
        .lock()
        .await
        .map_err(|e| ExecuteError::Refused(format!("{e}\n  nothing was changed")))?;
    let result = look(runner.db, request, ui, signer, &signals).await;
    if !matches!(result, Ok(Some(Err(ExecuteError::Stopped(_))))) {
        let _ = runner.unlock(Ok(())).await;
    }
    result
}

/// The stopped run, as its intent record and the database tell it.
struct Stopped<'m> {
    intent: Record,
    /// `records/…json (#N)`.
    shown: String,
    migration: &'m Migration,
    state: Option<State>,
}

/// With the run lock held: finishes the stopped run, or records it as
/// interrupted.
async fn look(
    db: &mut dyn Database,
    request: &Request<'_>,
    ui: &Ui<'_>,
    signer: Option<Signer>,
    signals: &Signals,
) -> Result<Option<Result<Finished, ExecuteError>>, ExecuteError> {
    let Some(stopped) = stopped_run(db, request, ui).await? else {
        return Ok(None);
    };
    let w = stopped.migration;
    let sub = Request {
        env_name: request.env_name,
        env: request.env,
        config: request.config,
        files: request.files,
        migration: w,
        snapshot: None,
        confirmer: super::Confirmer::Yes,
        settings: request.settings,
        project: request.project.clone(),
    };
    let mut cx = Context::new(db, &sub, ui, resumed(&stopped.intent)).await?;
    cx.signer = signer;
    let env = request.env_name;
    let shown = &stopped.shown;
    let intent = &stopped.intent;
    let started = format!(
        "started {} by {}",
        intent.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
        intent.operator
    );
    let state = stopped.state;
    let committed = matches!(state, Some(State::Applied | State::Backfilling));
    if committed && w.version != request.migration.version {
        return Err(ExecuteError::Refused(format!(
            "the run of {} on `{env}` ({shown}, {started}) was stopped after {} committed: its post-migration checks and its record are unfinished; nothing was changed\n  fix: `keel execute {} --env {env}` finishes it (checks, rollback if one fails, record); then execute {}",
            w.id(),
            w.id(),
            w.version,
            request.migration.id()
        )));
    }
    if committed {
        cx.backfill = state == Some(State::Backfilling);
        cx.log.step(
            StepId::Resumed.name(),
            StepOutcome::Ok,
            Utc::now(),
            format!(
                "the run ({shown}, {started}) was stopped after {} committed; {} finishes it: {}post-migration checks against the row counts taken before it",
                w.id(),
                crate::migrator::operator(),
                if cx.backfill { "the rest of its backfill, then " } else { "" }
            ),
        );
        check_archive(&request.project, intent)?;
        cx.tick = intent
            .runbook
            .as_ref()
            .map(|r| r.ticked.clone())
            .unwrap_or_default();
        cx.before = intent.row_counts.clone();
        cx.intent_written = true;
        return Ok(Some(pipeline::run(&mut cx, From::Commit, signals).await));
    }
    // Not applied: it never committed, or keel's own rollback did.
    let now_state = state.map_or("missing from the tracking table", |s| s.as_str());
    cx.log.rec.outcome = Outcome::Interrupted;
    cx.log.step(
        StepId::Interrupted.name(),
        StepOutcome::Failed,
        Utc::now(),
        format!(
            "the run ({shown}, {started}) was stopped and never finished; {} is {now_state} on `{env}` now, so nothing of this run is left applied{}",
            w.id(),
            if state == Some(State::Failed) {
                format!(
                    " in full: it is failed (partly applied) and needs `keel resolve {} --env {env}`",
                    w.version
                )
            } else {
                String::new()
            }
        ),
    );
    cx.log.rec.finished_at = Utc::now();
    let written = write_final(&mut cx).await.map_err(|e| {
        ExecuteError::Unrecorded(format!(
            "the interrupted run of {} on `{env}` could not be recorded: {e}\n  fix: run execute again",
            w.id()
        ))
    })?;
    (ui.say)(&format!(
        "recorded the stopped run as interrupted: {}",
        cx.shown(&written)
    ));
    Ok(None)
}

/// The stopped run, unless it finished while this one waited for the lock.
/// Refused when its migration is gone or changed.
async fn stopped_run<'m>(
    db: &mut dyn Database,
    request: &Request<'m>,
    ui: &Ui<'_>,
) -> Result<Option<Stopped<'m>>, ExecuteError> {
    let env = request.env_name;
    let records_dir = at(&request.project, "records");
    let head = record::store::head(db, env)
        .await
        .map_err(ExecuteError::Db)?;
    let Some(head) = head.filter(record::chain::is_open) else {
        (ui.say)("that run has finished meanwhile");
        return Ok(None);
    };
    record::chain::prepare(db, &records_dir, env)
        .await
        .map_err(|e| ExecuteError::Refused(format!("{e}\n  nothing was changed")))?;
    let intent_path = records_dir.join(&head.path);
    let intent = record::read(&intent_path)
        .map_err(|e| ExecuteError::Refused(format!("{e}\n  nothing was changed")))?;
    let shown = format!("records/{} (#{})", head.path, head.sequence);
    let Some(w) = request.files.iter().find(|f| f.id() == intent.migration.id) else {
        return Err(ExecuteError::Refused(format!(
            "the interrupted run of `{env}` ({shown}) was of {}, which is not in the migrations folder; nothing was changed\n  fix: restore its folder from version control, then run `keel execute {} --env {env}`",
            intent.migration.id, intent.migration.version
        )));
    };
    if w.checksum != intent.migration.checksum {
        return Err(ExecuteError::Refused(format!(
            "{} changed since its interrupted run on `{env}` ({shown}): that run had checksum {}, the files now have {}; nothing was changed\n  fix: restore the migration's files as they were (git log {}), then run `keel execute {} --env {env}`",
            w.id(),
            intent.migration.checksum,
            w.checksum,
            w.dir.display(),
            w.version
        )));
    }
    let rows = db.tracking_rows().await.map_err(ExecuteError::Db)?;
    let state = reconcile(request.files, rows)
        .iter()
        .find(|e| e.migration.is_some_and(|x| x.version == w.version))
        .map(|e| e.state);
    Ok(Some(Stopped {
        intent,
        shown,
        migration: w,
        state,
    }))
}

/// The final record of a resumed run starts as its intent: same start,
/// steps, snapshot, backups and runbook.
fn resumed(intent: &Record) -> Record {
    let mut rec = intent.clone();
    rec.outcome = Outcome::Failed;
    rec.sequence = 0;
    rec.previous = None;
    rec
}

/// The backup archive the interrupted run took is there, unchanged (its
/// SHA-256 in the intent): a failed check would need it put back, so a
/// run that could not roll back is refused before anything happens.
fn check_archive(project: &Path, intent: &Record) -> Result<(), ExecuteError> {
    let Some(b) = intent.backups.first() else {
        return Ok(());
    };
    let path = at(project, &b.path);
    let sha = crate::digest::sha256_file(&path).map_err(|e| {
        ExecuteError::Refused(format!(
            "the backup {} that the interrupted run took cannot be read ({e}), so keel cannot finish the run safely (a failed check would need it); nothing was changed\n  fix: restore the archive from where it was copied, then run execute again",
            path.display()
        ))
    })?;
    if sha != b.sha256 {
        return Err(ExecuteError::Refused(format!(
            "the backup {} changed since the interrupted run took it (SHA-256 {sha}, the intent record says {}): keel does not restore an archive it cannot vouch for; nothing was changed\n  fix: restore the archive the run wrote, then run execute again",
            path.display(),
            b.sha256
        )));
    }
    Ok(())
}

/// The newest record of the environment is a final one whose execution
/// record never reached its runbook (keel was stopped between writing the
/// record and annotating the runbook): adds it, ticks and all, exactly as
/// the record binds it. Returns what it did, for the run's record.
pub(super) fn annotation(
    project: &Path,
    records_dir: &Path,
    head: &record::store::Row,
) -> Result<Option<String>, ExecuteError> {
    if record::chain::is_open(head) {
        return Ok(None);
    }
    let path = records_dir.join(&head.path);
    let Ok(rec) = record::read(&path) else {
        return Ok(None);
    };
    let Some(rb) = &rec.runbook else {
        return Ok(None);
    };
    let Some(digest) = &rb.section else {
        return Ok(None);
    };
    let runbook = at(project, &rb.path);
    // A runbook keel was writing when it was stopped: the rewrite below
    // (or the run's own annotation) supersedes it.
    let partial = crate::stamp::partial(&runbook);
    let removed = std::fs::remove_file(&partial).is_ok();
    let Ok(text) = std::fs::read_to_string(&runbook) else {
        return Ok(None);
    };
    let binding = crate::runbook::binding::sections(&text);
    if binding
        .iter()
        .any(|s| &crate::runbook::binding::section_digest(s) == digest)
    {
        return Ok(removed.then(|| {
            format!(
                "removed {}, a runbook keel was still writing when it was stopped",
                partial.strip_prefix(project).unwrap_or(&partial).display()
            )
        }));
    }
    let shown = path
        .strip_prefix(project)
        .unwrap_or(&path)
        .display()
        .to_string();
    let signed = record::signature_path(&path).exists();
    let section = super::report::section(&rec, &shown, signed);
    if &crate::runbook::binding::section_digest(&section) != digest {
        // Not what this keel writes for it; `keel record verify` reports it.
        return Ok(None);
    }
    annotate_runbook(&runbook, &rb.ticked, &section).map_err(|e| {
        ExecuteError::Refused(format!(
            "{}: cannot add the execution record of {shown}: {e}; nothing was changed",
            runbook.display()
        ))
    })?;
    Ok(Some(format!(
        "added the execution record of {shown} (#{}) to {}: keel was stopped before it wrote it there",
        head.sequence, rb.path
    )))
}
