//! The run's records: the intent written right before the migration runs,
//! the final record linked to it, and that record's section appended to the
//! runbook (its SHA-256 is in the record, so the record binds the runbook
//! as the run left it).

use crate::execute::context::Context;
use crate::execute::step::{Done, Step, StepId};
use crate::execute::{ExecuteError, report};
use crate::record::{self, Outcome, Record as RunRecord, Signer, Written};
use crate::runbook::annotate;
use async_trait::async_trait;
use std::path::Path;

/// Until the final record links to it, the intent says a run of this
/// migration began here: outcome `started`, registered in the database.
pub(crate) struct Intent;

#[async_trait(?Send)]
impl Step for Intent {
    fn id(&self) -> StepId {
        StepId::Intent
    }

    fn about(&self) -> &'static str {
        "the run is recorded as started before the migration runs"
    }

    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
        let m = cx.migration();
        let mut intent = cx.log.rec.clone();
        intent.outcome = Outcome::Started;
        intent.finished_at = chrono::Utc::now();
        intent.row_counts = cx.before.clone();
        if let Some(rb) = intent.runbook.as_mut() {
            rb.ticked = cx.tick.clone();
        }
        cx.log.rec.row_counts = cx.before.clone();
        let refused = |e: record::RecordError| {
            ExecuteError::Refused(format!(
                "{e}\n  the intent record of this run could not be written, so {} did not run; nothing was changed in the database",
                m.id()
            ))
        };
        let path = record::chain::reserve(&cx.records_dir, &intent).map_err(refused)?;
        let written =
            record::chain::write(cx.db, &cx.records_dir, intent, cx.signer.as_ref(), &path)
                .await
                .map_err(refused)?;
        cx.intent_written = true;
        Ok(Done::ok(format!(
            "{} (#{}): the run is recorded as started; if keel is stopped from here on, `keel execute {} --env {}` finishes it",
            cx.shown(&written.path),
            written.sequence,
            m.version,
            cx.env_name()
        )))
    }
}

/// The final record, linked to the database's head (the intent).
pub(crate) struct Record;

#[async_trait(?Send)]
impl Step for Record {
    fn id(&self) -> StepId {
        StepId::Record
    }

    fn about(&self) -> &'static str {
        "the run's outcome is in a (signed) record linked to its intent"
    }

    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
        cx.log.rec.outcome = cx.outcome;
        cx.log.rec.finished_at = chrono::Utc::now();
        write_record(cx).await.map_err(|e| unrecorded(cx, e))?;
        Ok(Done::quiet())
    }
}

/// The record's section appended to the runbook, its checklist ticked.
pub(crate) struct Annotation;

#[async_trait(?Send)]
impl Step for Annotation {
    fn id(&self) -> StepId {
        StepId::Annotation
    }

    fn about(&self) -> &'static str {
        "the runbook carries the execution record, its checklist ticked"
    }

    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
        annotate(cx).map_err(|e| unrecorded(cx, e))?;
        Ok(Done::quiet())
    }
}

/// The final record and its runbook section, as the two steps above write
/// them, for a run recorded outside the pipeline (an interrupted one).
/// Returns the record's path.
pub(crate) async fn write_final(cx: &mut Context<'_>) -> Result<std::path::PathBuf, String> {
    write_record(cx).await?;
    annotate(cx)?;
    Ok(cx
        .written
        .as_ref()
        .map(|(w, _)| w.path.clone())
        .unwrap_or_default())
}

/// Writes `cx.log.rec` as the run's final record.
async fn write_record(cx: &mut Context<'_>) -> Result<(), String> {
    // A run that did not leave the migration applied does not tick what
    // its end undid; the record and the runbook say the same.
    cx.tick = crate::execute::aftermath::held(&cx.log.rec, &cx.tick);
    let signer = cx.signer.as_ref();
    let project = &cx.request.project;
    let written = write(
        cx.db,
        project,
        &cx.records_dir,
        signer,
        &mut cx.log.rec,
        &cx.tick,
    )
    .await?;
    let (written, final_rec, section) = written;
    cx.section = section;
    cx.written = Some((written, final_rec));
    Ok(())
}

/// Appends the final record's section to the runbook, ticking `cx.tick`.
fn annotate(cx: &Context<'_>) -> Result<(), String> {
    annotate_runbook(&cx.runbook_path, &cx.tick, &cx.section).map_err(|e| {
        let record_shown = cx
            .written
            .as_ref()
            .map(|(w, _)| cx.shown(&w.path))
            .unwrap_or_default();
        format!(
            "{}: cannot add the execution record: {e}; the signed record is {record_shown}",
            cx.runbook_path.display()
        )
    })
}

/// The run ended (`cx.outcome`) but its record could not be written.
fn unrecorded(cx: &Context<'_>, e: String) -> ExecuteError {
    let m = cx.migration();
    let env = cx.env_name();
    ExecuteError::Unrecorded(format!(
        "{} ended {} on `{env}`, but its execution record could not be written: {e}\n  fix: write down what happened (the steps are printed above); `keel execute {} --env {env}` records the run from its intent record",
        m.id(),
        report::outcome_word(cx.outcome),
        m.version,
    ))
}

/// Writes `rec` as the run's final record, with the SHA-256 of its runbook
/// section (returned, for the runbook) and the ticks. Returns the record as
/// written and read back.
async fn write(
    db: &mut dyn crate::db::Database,
    project: &Path,
    records_dir: &Path,
    signer: Option<&Signer>,
    rec: &mut RunRecord,
    tick: &[String],
) -> Result<(Written, RunRecord, String), String> {
    let path = record::chain::reserve(records_dir, rec).map_err(|e| e.to_string())?;
    let record_shown = path
        .strip_prefix(project)
        .unwrap_or(&path)
        .display()
        .to_string();
    if let Some(s) = signer {
        rec.signer = Some(s.principal().to_string());
    }
    // The section says which items this run ticked: the record holds them
    // first, so a section rendered again from the record is the same.
    if let Some(rb) = rec.runbook.as_mut() {
        rb.ticked = tick.to_vec();
    }
    let section = report::section(rec, &record_shown, signer.is_some());
    if let Some(rb) = rec.runbook.as_mut() {
        rb.section = Some(crate::runbook::binding::section_digest(&section));
    }
    let written = record::chain::write(db, records_dir, rec.clone(), signer, &path)
        .await
        .map_err(|e| e.to_string())?;
    let final_rec = record::read(&written.path).unwrap_or_else(|_| rec.clone());
    Ok((written, final_rec, section))
}

/// Ticks `tick` and appends `section`, through a temporary file.
pub(crate) fn annotate_runbook(path: &Path, tick: &[String], section: &str) -> std::io::Result<()> {
    let current = std::fs::read_to_string(path)?;
    let ticks: Vec<&str> = tick.iter().map(String::as_str).collect();
    let annotated = annotate::annotate(&current, &ticks, section);
    let partial = crate::stamp::partial(path);
    std::fs::write(&partial, annotated).and_then(|()| std::fs::rename(&partial, path))
}
