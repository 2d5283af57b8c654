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

pub mod alert;
pub mod checks;
pub mod confirm;
mod guard;
mod recover;
pub mod report;
pub mod signals;

use crate::analysis::analyze::{Analyzer, Facts, MigrationAnalysis, ParsedFiles};
use crate::backfill::BackfillError;
use crate::backup::{BackupHook, Created};
use crate::config::{Config, Environment};
use crate::db::{Database, DbError, Timeouts};
use crate::migration::Migration;
use crate::migrator::{Event, RunError, RunSettings, Runner};
use crate::record::{self, FileRef, Outcome, Record, RunbookRef, Signer, StepOutcome, Written};
use crate::runbook::annotate;
use chrono::{DateTime, Utc};
use confirm::Confirmer;
use signals::Signals;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Everything a guarded run needs to know.
pub struct Plan<'a> {
    pub env_name: &'a str,
    pub env: &'a Environment,
    pub config: &'a Config,
    pub files: &'a [Migration],
    pub migration: &'a Migration,
    /// `--snapshot FILE`; else the environment's newest snapshot.
    pub snapshot: Option<PathBuf>,
    pub confirmer: Confirmer,
    pub settings: RunSettings,
    /// The project folder: runbooks/, backups/, snapshots/, records/ are in it.
    pub project: PathBuf,
}

/// How the run talks to the operator.
pub struct Ui<'a> {
    /// One line of progress (stderr).
    pub say: &'a (dyn Fn(&str) + Sync),
    /// The runner's events (progress and timings of the migration).
    pub on_event: &'a (dyn Fn(Event<'_>) + Sync),
}

/// A run that got as far as its record.
#[derive(Debug)]
pub struct Finished {
    pub outcome: Outcome,
    pub record: Record,
    pub written: Written,
    pub runbook: PathBuf,
    /// What went wrong, for the error message and the alert (empty when applied).
    pub problem: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
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
    #[error("{}", .0.problem)]
    Ended(Box<Finished>),
    /// The run's outcome is known but its record could not be written (exit 1).
    #[error("{0}")]
    Unrecorded(String),
    /// A second Ctrl-C/SIGTERM/SIGHUP stopped the run at once; the intent
    /// record stays for the next `execute` to finish (exit 130).
    #[error("{0}")]
    Stopped(String),
}

/// The step ids keel verifies itself instead of asking.
const SNAPSHOT: &str = "snapshot-taken";
const DRY_RUN: &str = "dry-run-reviewed";
const BACKUP: &str = "backup-verified";

/// The run's record as it grows, printed as it goes.
struct Log<'a> {
    rec: Record,
    say: &'a (dyn Fn(&str) + Sync),
}

impl Log<'_> {
    fn step(&mut self, name: &str, outcome: StepOutcome, t: DateTime<Utc>, detail: String) {
        let took = (now() - t).num_milliseconds().max(0) as u64;
        self.step_took(name, outcome, t, took, detail);
    }

    /// A confirmed checklist item: the record says how it was confirmed,
    /// the terminal (which already said so once) shows the item.
    fn confirmed(&mut self, name: &str, t: DateTime<Utc>, text: &str, how: &str) {
        self.rec.step(
            name,
            StepOutcome::Confirmed,
            t,
            Some(format!("{text} ({how})")),
        );
        (self.say)(&format!("{:>9}  {name:<24} {text}", "confirmed"));
    }

    fn step_took(
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
        let word = match outcome {
            StepOutcome::Ok => "ok",
            StepOutcome::Confirmed => "confirmed",
            StepOutcome::Skipped => "skipped",
            StepOutcome::Failed => "FAILED",
        };
        (self.say)(&format!(
            "{word:>9}  {name:<24} {detail} ({})",
            report::ms(took)
        ));
    }
}

/// `rel` inside the project folder, without a leading `./` in messages.
fn at(project: &Path, rel: &str) -> PathBuf {
    if project == Path::new(".") || project.as_os_str().is_empty() {
        PathBuf::from(rel)
    } else {
        project.join(rel)
    }
}

fn now() -> DateTime<Utc> {
    Utc::now()
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
pub async fn execute(
    db: &mut dyn Database,
    plan: Plan<'_>,
    ui: &Ui<'_>,
) -> Result<Finished, ExecuteError> {
    let m = plan.migration;
    let project = plan.project.clone();
    let runbook_path = crate::runbook::path_for(&at(&project, "runbooks"), m);
    let runbook_shown = crate::runbook::path_for(Path::new("runbooks"), m);
    let records_dir = at(&project, "records");
    let timeouts = timeouts(m, &plan.settings);
    (ui.say)(&format!(
        "execute {} on `{}` ({})",
        m.id(),
        plan.env_name,
        db.display_url()
    ));

    // 0. A run of this environment that never wrote its final record is
    //    finished (or recorded as interrupted) before anything else.
    let head = record::store::head(db, plan.env_name)
        .await
        .map_err(ExecuteError::Db)?;
    if head.as_ref().is_some_and(record::chain::is_open) {
        let signer = guard::signer(plan.config, &project, plan.env_name, plan.env)?;
        if let Some(done) = recover::recover(db, &plan, ui, signer.as_ref()).await? {
            return done;
        }
    }

    let mut log = Log {
        rec: Record::start(plan.env_name, m, db.display_url()),
        say: ui.say,
    };

    // 1. Guards: nothing changes, nothing is written.
    let t = now();
    let signer = guard::signer(plan.config, &project, plan.env_name, plan.env)?;
    match &signer {
        Some(s) => {
            log.rec.signer = Some(s.principal().to_string());
            log.step(
                "signing-key",
                StepOutcome::Ok,
                t,
                format!("the record will be signed by {}", s.principal()),
            )
        }
        None => log.step(
            "signing-key",
            StepOutcome::Skipped,
            t,
            "no signing key in keel.toml and none required: the record will be unsigned".into(),
        ),
    }
    // The migration's SQL is parsed here, once: classified offline for the
    // reviewed runbook, and below with what the server says for the run.
    let parsed = ParsedFiles::new(m);
    let t = now();
    let reviewed = Analyzer::offline(true).analyze_parsed(m, &parsed);
    let checked = guard::runbook(
        &runbook_path,
        m,
        plan.files,
        plan.config,
        &project,
        &reviewed,
    )?;
    log.rec.runbook = Some(RunbookRef {
        path: runbook_shown.display().to_string(),
        sha256: checked.sha256.clone(),
        reviewed: Some(checked.digest.clone()),
        ticked: Vec::new(),
        section: None,
    });
    log.step(
        "runbook",
        StepOutcome::Ok,
        t,
        format!(
            "{} was rendered from the migration's checksum {} and its reviewed body is unchanged",
            runbook_shown.display(),
            &m.checksum[..12]
        ),
    );
    let t = now();
    let detail = guard::next_pending(db, plan.files, m, plan.env_name).await?;
    log.step("pending", StepOutcome::Ok, t, detail);

    let t = now();
    let rows = record::store::rows(db, plan.env_name)
        .await
        .map_err(ExecuteError::Db)?;
    let head = record::chain::check(&records_dir, plan.env_name, &rows)
        .map_err(|e| ExecuteError::Refused(format!("{e}\n  nothing was changed")))?;
    log.step(
        "records",
        StepOutcome::Ok,
        t,
        head.describe(Path::new("records"), plan.env_name),
    );

    let t = now();
    let snapshot = guard::snapshot(
        db,
        plan.snapshot.as_deref(),
        &at(&project, "snapshots"),
        plan.env_name,
        plan.env,
    )
    .await?;
    let snapshot_done = snapshot.is_some();
    match &snapshot {
        Some(c) => {
            let s = &c.snapshot;
            log.rec.snapshot = Some(file_ref(&project, &s.path, &s.sha256));
            log.step(
                SNAPSHOT,
                StepOutcome::Ok,
                t,
                format!(
                    "{} matches its SHA-256 {}: {}",
                    s.path.strip_prefix(&project).unwrap_or(&s.path).display(),
                    &s.sha256[..16],
                    c.detail
                ),
            );
        }
        None => log.step(
            SNAPSHOT,
            StepOutcome::Skipped,
            t,
            format!("no snapshot of `{}` (not required there)", plan.env_name),
        ),
    }

    // The run's one analysis of the migration, with what the server says:
    // the dry run, the backup, the row counts, the runner and the rollback
    // all read it.
    let analysis = Analyzer::new(Facts::read(db).await.map_err(ExecuteError::Db)?, true)
        .analyze_parsed(m, &parsed);
    let t = now();
    let detail = guard::dry_run(db, m, &analysis, timeouts).await?;
    log.step(DRY_RUN, StepOutcome::Ok, t, detail);

    // 2. The checklist, from the reviewed body only: what keel verified it
    //    ticks, the rest a person confirms.
    let items = annotate::checklist(&checked.reviewed);
    let mut tick: Vec<String> = Vec::new();
    let mut backup_item = false;
    (ui.say)(&format!(
        "checklist of {} ({} item(s), {}):",
        runbook_shown.display(),
        items.len(),
        plan.confirmer.describe()
    ));
    for item in &items {
        let id = item.id.clone();
        match id.as_deref() {
            Some(SNAPSHOT) => {
                if snapshot_done {
                    tick.push(SNAPSHOT.into());
                }
            }
            Some(DRY_RUN) => tick.push(DRY_RUN.into()),
            Some(BACKUP) => backup_item = true,
            _ => {
                let t = now();
                let name = id.clone().unwrap_or_else(|| "(item without id)".into());
                match plan.confirmer.confirm(item) {
                    Ok(true) => {
                        log.confirmed(&name, t, &item.text, &plan.confirmer.describe());
                        if let Some(id) = id {
                            tick.push(id);
                        }
                    }
                    Ok(false) => {
                        return Err(ExecuteError::Refused(format!(
                            "checklist item `{name}` was not confirmed: {}; nothing was changed\n  fix: do it (or have it done), then run execute again",
                            item.text
                        )));
                    }
                    Err(e) => {
                        return Err(ExecuteError::Refused(format!("{e}\n  nothing was changed")));
                    }
                }
            }
        }
    }

    // 3.–5. Under the run lock: backup, intent, migrate, check, roll back.
    let mut runner = Runner {
        db,
        settings: plan.settings,
        operator: crate::migrator::operator(),
        on_event: ui.on_event,
    };
    // From here on a first Ctrl-C, SIGTERM or SIGHUP does not kill the run
    // half-way: it finishes (checks, rollback if needed, record); a second
    // one stops at once.
    let signals = Signals::install();
    let run = Run {
        plan: &plan,
        ui,
        signer: signer.as_ref(),
        records_dir: &records_dir,
        runbook_path: &runbook_path,
        runbook_shown: &runbook_shown,
        timeouts,
        analysis: &analysis,
    };
    let result = tokio::select! {
        r = async {
            let t = now();
            runner
                .lock()
                .await
                .map_err(|e| ExecuteError::Refused(format!("{e}\n  nothing was changed")))?;
            log.step(
                "run-lock",
                StepOutcome::Ok,
                t,
                "no other keel run on this database".into(),
            );
            let (outcome, problem) = locked(&mut runner, &run, &mut log, backup_item, &mut tick).await?;
            finish(runner.db, &run, &mut log, &tick, outcome, problem, &signals).await
        } => Some(r),
        () = signals.stopped() => None,
    };
    match result {
        Some(r) => {
            let _ = runner.unlock(Ok(())).await;
            r
        }
        None => Err(stopped(
            &run,
            log.rec.steps.iter().any(|s| s.name == "intent"),
        )),
    }
}

/// What the locked part of a run needs besides the runner and its log.
struct Run<'a> {
    plan: &'a Plan<'a>,
    ui: &'a Ui<'a>,
    signer: Option<&'a Signer>,
    records_dir: &'a Path,
    runbook_path: &'a Path,
    runbook_shown: &'a Path,
    timeouts: Timeouts,
    /// The run's one analysis of the migration.
    analysis: &'a MigrationAnalysis,
}

fn timeouts(m: &Migration, settings: &RunSettings) -> Timeouts {
    Timeouts {
        lock: m.meta.lock_timeout.unwrap_or(settings.lock_timeout),
        statement: m
            .meta
            .statement_timeout
            .unwrap_or(settings.statement_timeout),
    }
}

/// A second signal stopped the run at once; `intent`: after the intent
/// record was written (so the migration may have run).
fn stopped(run: &Run<'_>, intent: bool) -> ExecuteError {
    let m = run.plan.migration;
    let env = run.plan.env_name;
    if !intent {
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

/// Alert (unless applied), the final record linked to the intent, and the
/// runbook annotation whose SHA-256 the record carries.
async fn finish(
    db: &mut dyn Database,
    run: &Run<'_>,
    log: &mut Log<'_>,
    tick: &[String],
    outcome: Outcome,
    problem: String,
    signals: &Signals,
) -> Result<Finished, ExecuteError> {
    let plan = run.plan;
    let m = plan.migration;
    if let Some((name, at)) = signals.received() {
        log.rec.step(
            "signal",
            StepOutcome::Ok,
            at,
            Some(format!(
                "{name} received during the run; keel finished it (checks, rollback if needed, record) instead of stopping half-way"
            )),
        );
    }
    log.rec.outcome = outcome;
    if outcome != Outcome::Applied {
        let summary = format!(
            "keel execute {} on `{}`: {}\n{}\noperator: {}\nrunbook: {}\n",
            m.id(),
            plan.env_name,
            report::outcome_word(outcome).to_uppercase(),
            problem.trim_end(),
            log.rec.operator,
            run.runbook_shown.display()
        );
        (run.ui.say)(&format!(
            "ALERT: {}",
            summary.trim_end().replace('\n', "\n  ")
        ));
        if let Some(command) = &plan.config.alert_command {
            let t = now();
            let outcome_text = report::outcome_word(outcome).replace(' ', "_");
            let id = m.id();
            let vars = [
                ("KEEL_ENV", plan.env_name),
                ("KEEL_MIGRATION", id.as_str()),
                ("KEEL_OUTCOME", outcome_text.as_str()),
            ];
            let command = command.clone();
            let summary2 = summary.clone();
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let sent = tokio::task::spawn_blocking(move || {
                let v: Vec<(&str, &str)> =
                    vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                alert::send(&command, &summary2, &v)
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            match sent {
                Ok(d) => log.step("alert", StepOutcome::Ok, t, d),
                Err(d) => log.step("alert", StepOutcome::Failed, t, d),
            }
        }
    }
    log.rec.finished_at = now();
    let unrecorded = |e: String| {
        ExecuteError::Unrecorded(format!(
            "{} ended {} on `{}`, but its execution record could not be written: {e}\n  fix: write down what happened (the steps are printed above); `keel execute {} --env {}` records the run from its intent record",
            m.id(),
            report::outcome_word(outcome),
            plan.env_name,
            m.version,
            plan.env_name
        ))
    };
    let (written, final_rec) = write_final(db, run, &mut log.rec, tick)
        .await
        .map_err(unrecorded)?;
    let finished = Finished {
        outcome,
        record: final_rec,
        written,
        runbook: run.runbook_shown.to_path_buf(),
        problem,
    };
    if outcome == Outcome::Applied {
        Ok(finished)
    } else {
        Err(ExecuteError::Ended(Box::new(finished)))
    }
}

/// Writes `rec` as the run's final record (linked to the database's head,
/// the intent) and appends its section to the runbook, ticking `tick`.
/// The record carries the SHA-256 of that section, so it binds the runbook
/// as the run left it.
async fn write_final(
    db: &mut dyn Database,
    run: &Run<'_>,
    rec: &mut Record,
    tick: &[String],
) -> Result<(Written, Record), String> {
    let project = &run.plan.project;
    let path = record::chain::reserve(run.records_dir, rec).map_err(|e| e.to_string())?;
    let record_shown = path
        .strip_prefix(project)
        .unwrap_or(&path)
        .display()
        .to_string();
    if let Some(s) = run.signer {
        rec.signer = Some(s.principal().to_string());
    }
    let section = report::section(rec, &record_shown, run.signer.is_some());
    if let Some(rb) = rec.runbook.as_mut() {
        rb.ticked = tick.to_vec();
        rb.section = Some(crate::runbook::binding::section_digest(&section));
    }
    let written = record::chain::write(db, run.records_dir, rec.clone(), run.signer, &path)
        .await
        .map_err(|e| e.to_string())?;
    let final_rec = record::read(&written.path).unwrap_or_else(|_| rec.clone());
    annotate_runbook(run.runbook_path, tick, &section).map_err(|e| {
        format!(
            "{}: cannot add the execution record: {e}; the signed record is {record_shown}",
            run.runbook_path.display()
        )
    })?;
    Ok((written, final_rec))
}

/// Ticks `tick` and appends `section`, through a temporary file.
fn annotate_runbook(path: &Path, tick: &[String], section: &str) -> std::io::Result<()> {
    let current = std::fs::read_to_string(path)?;
    let ticks: Vec<&str> = tick.iter().map(String::as_str).collect();
    let annotated = annotate::annotate(&current, &ticks, section);
    let partial = crate::stamp::partial(path);
    std::fs::write(&partial, annotated).and_then(|()| std::fs::rename(&partial, path))
}

/// Writes the intent record: the run as it stands right before the
/// migration, outcome `started`, registered in the database. Until the
/// final record links to it, it says a run of this migration began here.
async fn write_intent(
    db: &mut dyn Database,
    run: &Run<'_>,
    log: &mut Log<'_>,
    tick: &[String],
    before: &BTreeMap<String, i64>,
) -> Result<(), ExecuteError> {
    let m = run.plan.migration;
    let t = now();
    let mut intent = log.rec.clone();
    intent.outcome = Outcome::Started;
    intent.finished_at = t;
    intent.row_counts = before.clone();
    if let Some(rb) = intent.runbook.as_mut() {
        rb.ticked = tick.to_vec();
    }
    log.rec.row_counts = before.clone();
    let refused = |e: record::RecordError| {
        ExecuteError::Refused(format!(
            "{e}\n  the intent record of this run could not be written, so {} did not run; nothing was changed in the database",
            m.id()
        ))
    };
    let path = record::chain::reserve(run.records_dir, &intent).map_err(refused)?;
    let written = record::chain::write(db, run.records_dir, intent, run.signer, &path)
        .await
        .map_err(refused)?;
    log.step(
        "intent",
        StepOutcome::Ok,
        t,
        format!(
            "{} (#{}): the run is recorded as started; if keel is stopped from here on, `keel execute {} --env {}` finishes it",
            written
                .path
                .strip_prefix(&run.plan.project)
                .unwrap_or(&written.path)
                .display(),
            written.sequence,
            m.version,
            run.plan.env_name
        ),
    );
    Ok(())
}

/// Backup, intent record, migrate, check and (if a check failed) roll
/// back, with the run lock held. Returns the outcome and, unless applied,
/// what went wrong.
async fn locked(
    runner: &mut Runner<'_>,
    run: &Run<'_>,
    log: &mut Log<'_>,
    backup_item: bool,
    tick: &mut Vec<String>,
) -> Result<(Outcome, String), ExecuteError> {
    let plan = run.plan;
    let ui = run.ui;
    let backups_dir = &at(&plan.project, "backups");
    let m = plan.migration;
    // Someone may have run it while the checklist was walked.
    guard::next_pending(runner.db, plan.files, m, plan.env_name).await?;
    // The records folder must match the database before anything links to
    // it: leftovers of a stopped run are taken over or removed here.
    let t = now();
    let head = record::chain::prepare(runner.db, run.records_dir, plan.env_name)
        .await
        .map_err(|e| ExecuteError::Refused(format!("{e}\n  nothing was changed")))?;
    // Another run was stopped while this one waited for the lock: it is
    // finished first, by the same command run again.
    if let Some(open) = head.row.as_ref().filter(|r| record::chain::is_open(r)) {
        return Err(ExecuteError::Refused(format!(
            "while this run waited for the run lock, a run of {} on `{}` was stopped before its final record (records/{}); nothing was changed\n  fix: run `keel execute {} --env {}` again: it finishes or records that run first",
            open.migration, plan.env_name, open.path, m.version, plan.env_name
        )));
    }
    let mut head = head;
    if let Some(row) = &head.row
        && let Some(note) = recover::annotation(&plan.project, run.records_dir, row)?
    {
        head.notes.push(note);
    }
    if !head.notes.is_empty() {
        log.step(
            "records",
            StepOutcome::Ok,
            t,
            head.describe(Path::new("records"), plan.env_name),
        );
    }

    let t = now();
    // The same analysis (and server facts) `keel plan` shows decides what
    // is backed up.
    let made = async {
        let dbe = |context: &str| {
            let context = context.to_string();
            move |source| crate::backup::BackupError::Db {
                context,
                source: Box::new(source),
            }
        };
        let target = crate::backup::Target::of(runner.db, plan.env_name)
            .await
            .map_err(dbe("reading the database's id"))?;
        crate::backup::back_up(runner.db, m, &run.analysis.backups, backups_dir, &target).await
    }
    .await;
    let created: Option<Created> = match made {
        Ok(c) => c,
        Err(e) => {
            let problem = format!(
                "the backup before {} failed, so the migration did not run; nothing was changed\n  {e}",
                m.id()
            );
            log.step(BACKUP, StepOutcome::Failed, t, e.to_string());
            return Ok((Outcome::Failed, problem));
        }
    };
    match &created {
        Some(c) => {
            log.rec
                .backups
                .push(file_ref(&plan.project, &c.path, &c.sha256));
            let what: Vec<String> = c
                .manifest
                .files
                .iter()
                .map(|f| {
                    let cols: Vec<&str> = f
                        .columns
                        .iter()
                        .filter(|col| !f.key.contains(col))
                        .map(String::as_str)
                        .collect();
                    match f.kind {
                        crate::backup::Kind::Columns => {
                            format!("{}.{} ({} rows)", f.shown(), cols.join(", "), f.rows)
                        }
                        crate::backup::Kind::Table => format!("{} ({} rows)", f.shown(), f.rows),
                        crate::backup::Kind::Rows => {
                            format!("{} ({} rows the migration deletes)", f.shown(), f.rows)
                        }
                    }
                })
                .collect();
            log.step(
                BACKUP,
                StepOutcome::Ok,
                t,
                format!(
                    "{}: {}, re-read and checked against its manifest",
                    c.path
                        .strip_prefix(&plan.project)
                        .unwrap_or(&c.path)
                        .display(),
                    what.join(", ")
                ),
            );
            if backup_item {
                tick.push(BACKUP.into());
            }
        }
        None => {
            log.step(
                BACKUP,
                StepOutcome::Skipped,
                t,
                "the migration destroys no existing data: nothing to back up".into(),
            );
            if backup_item {
                tick.push(BACKUP.into());
            }
        }
    }

    let count_tables = checks::count_tables(run.analysis);
    let t = now();
    let before = match checks::count_rows(runner.db, &count_tables).await {
        Ok(b) => b,
        Err(e) => {
            log.step("row-counts-before", StepOutcome::Failed, t, e.to_string());
            return Ok((
                Outcome::Failed,
                format!("counting rows before the migration failed, so it did not run: {e}"),
            ));
        }
    };
    if !before.is_empty() {
        let list: Vec<String> = before.iter().map(|(t, n)| format!("{t} {n}")).collect();
        log.step("row-counts-before", StepOutcome::Ok, t, list.join(", "));
    }

    write_intent(runner.db, run, log, tick, &before).await?;

    let t = now();
    // Binds the archive to the migration's tracking row: a later `keel
    // down` (or the rollback below) restores exactly this one.
    let mut bind = BackupHook::new(&plan.project, plan.env_name, ui.say);
    bind.made = created.clone();
    if let Err(e) = runner.apply_one(m, run.analysis, &mut bind).await {
        log.step("migrate", StepOutcome::Failed, t, e.to_string());
        return Ok((Outcome::Failed, format!("the migration failed:\n{e}")));
    }
    log.step(
        "migrate",
        StepOutcome::Ok,
        t,
        format!("{} applied and recorded in the tracking table", m.id()),
    );
    after_commit(runner, run, log, &before, m.meta.backfill.is_some()).await
}

/// What follows the migration's commit: its backfill (when `backfill`),
/// the post-migration checks against the row counts taken before it, and
/// the automatic rollback (down.sql, then the archive bound to the
/// migration's tracking row put back) when one
/// fails. Also how an interrupted run is finished.
async fn after_commit(
    runner: &mut Runner<'_>,
    run: &Run<'_>,
    log: &mut Log<'_>,
    before: &BTreeMap<String, i64>,
    backfill: bool,
) -> Result<(Outcome, String), ExecuteError> {
    let plan = run.plan;
    let ui = run.ui;
    let timeouts = run.timeouts;
    let m = plan.migration;

    // The data change of an expand step: part of the migration, so the
    // checks below judge its result and a failed validation rolls it all
    // back. A backfill that stops half-way (connection lost, lock timeouts)
    // keeps its progress and is resumed by `keel backfill`.
    let mut failed = Vec::new();
    if backfill {
        let t = now();
        match runner.backfill(m).await {
            Ok(r) => log.step("backfill", StepOutcome::Ok, t, backfill_summary(&r)),
            Err(RunError::Backfill(e)) if matches!(*e, BackfillError::Incomplete(_)) => {
                // The first line: its fix (`keel backfill`) is for a run
                // that stays applied, and this one is rolled back.
                let detail = e.to_string().lines().next().unwrap_or_default().to_string();
                log.step("backfill", StepOutcome::Failed, t, detail.clone());
                failed.push(format!("backfill: {detail}"));
            }
            Err(e) => {
                log.step("backfill", StepOutcome::Failed, t, e.to_string());
                return Ok((
                    Outcome::Failed,
                    format!(
                        "the backfill stopped: {e}\n  {} is applied and still backfilling: `keel backfill {} --env {}` goes on from the last committed batch, or `keel down --env {}` reverts it",
                        m.id(),
                        m.version,
                        plan.env_name,
                        plan.env_name
                    ),
                ));
            }
        }
    }

    let results = checks::run_all(
        runner.db,
        m,
        &plan.env.smoke,
        before,
        plan.env.health_url.as_deref(),
        timeouts,
    )
    .await;
    for r in &results {
        let outcome = if r.ok {
            StepOutcome::Ok
        } else {
            failed.push(format!("{}: {}", r.step, r.detail));
            StepOutcome::Failed
        };
        log.step_took(
            &r.step,
            outcome,
            r.started_at,
            r.duration_ms,
            r.detail.clone(),
        );
    }
    if failed.is_empty() {
        return Ok((Outcome::Applied, String::new()));
    }

    // A check failed: down.sql, the backup back, verified, in one transaction.
    let problem = format!(
        "post-migration check(s) failed after {} ran:\n  {}",
        m.id(),
        failed.join("\n  ")
    );
    let t = now();
    let mut hook = BackupHook::new(&plan.project, plan.env_name, ui.say);
    if let Err(e) = runner.revert_one(m, run.analysis, &mut hook).await {
        log.step("rollback", StepOutcome::Failed, t, e.to_string());
        return Ok((
            Outcome::Failed,
            format!(
                "{problem}\nAND THE AUTOMATIC ROLLBACK FAILED: {} is still applied\n  {e}\n  fix: revert by hand (`keel down --env {}`), or restore the snapshot",
                m.id(),
                plan.env_name
            ),
        ));
    }
    let restored: Vec<String> = hook
        .restored
        .iter()
        .flat_map(|(_, r)| r.tables.iter().map(|(t, n)| format!("{t} ({n} rows)")))
        .collect();
    log.step(
        "rollback",
        StepOutcome::Ok,
        t,
        if restored.is_empty() {
            "down.sql ran; nothing needed restoring".into()
        } else {
            format!(
                "down.sql ran and the backup put back {}, in one transaction",
                restored.join(", ")
            )
        },
    );

    let t = now();
    let verified = verify_rollback(runner.db, m, before).await;
    match verified {
        Ok(d) => log.step("rollback-verified", StepOutcome::Ok, t, d),
        Err(d) => {
            log.step("rollback-verified", StepOutcome::Failed, t, d.clone());
            return Ok((
                Outcome::Failed,
                format!("{problem}\nthe rollback ran but does not check out: {d}"),
            ));
        }
    }
    Ok((Outcome::RolledBack, problem))
}

/// After a rollback: the migration is pending again and the tables it must
/// not change have their rows back.
async fn verify_rollback(
    db: &mut dyn Database,
    m: &Migration,
    before: &std::collections::BTreeMap<String, i64>,
) -> Result<String, String> {
    let rows = db.tracking_rows().await.map_err(|e| e.to_string())?;
    let v = m.version.to_string();
    if rows.iter().any(|r| r.version == v) {
        return Err(format!("{} still has a tracking row", m.id()));
    }
    let tables: Vec<String> = before.keys().cloned().collect();
    let after = checks::count_rows(db, &tables)
        .await
        .map_err(|e| e.to_string())?;
    for (t, n) in before {
        if after.get(t) != Some(n) {
            return Err(format!(
                "{t} had {n} rows before the migration and has {} now",
                after.get(t).map_or("none".into(), |a| a.to_string())
            ));
        }
    }
    Ok(format!(
        "{} is pending again{}",
        m.id(),
        if before.is_empty() {
            String::new()
        } else {
            "; row counts are as before the migration".into()
        }
    ))
}

/// One line for the record: `1000000 rows in 1000 batches (92000 rows/s); validation passed`.
fn backfill_summary(r: &crate::backfill::Report) -> String {
    format!(
        "{} of {} rows in {} batches of {} ({} rows/s); validation passed in {} ms",
        r.rows_done,
        r.rows_total,
        r.batches,
        r.batch_size,
        r.rows_per_second(),
        r.validation_elapsed.as_millis()
    )
}
