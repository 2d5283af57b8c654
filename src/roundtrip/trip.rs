//! One migration's round trip, and the run of them in order: rows in the
//! tables, fingerprint and digests, up, fingerprint, down, fingerprint and
//! digests again (equal to the first), up again (the same fingerprint as
//! the first up). Migrations not asked for are only applied.

use super::data::{self, Contents, Fixtures};
use super::{Error, Outcome, Phase, Step, Verdict};
use crate::analysis::analyze::Facts;
use crate::analysis::reach::reach;
use crate::backup::BackupHook;
use crate::db::{Database, Fingerprint, Scope, Widened};
use crate::migration::{Migration, Reversibility, Version};
use crate::migrator::{Event, RunSettings, Runner};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

/// What a run of round trips needs besides the database.
pub(crate) struct Plan<'a> {
    pub(crate) files: &'a [Migration],
    /// The versions to test; empty: every one.
    pub(crate) only: BTreeSet<Version>,
    pub(crate) fixtures: Fixtures,
    /// Generated rows per empty table.
    pub(crate) rows: u32,
    /// Where the run's backups go (a temporary folder).
    pub(crate) backups: &'a Path,
    pub(crate) settings: RunSettings,
    /// Called with each migration's outcome as it is known.
    pub(crate) on_outcome: &'a dyn Fn(&Outcome),
}

/// Applies or tests every migration in order, until one leaves the
/// database in a state later ones cannot start from. Each outcome goes to
/// `plan.on_outcome` as it is known and is not kept: what is returned is
/// their tally, so that a history of thousands costs no more memory than
/// one of ten. Holds the run lock throughout: the scratch database is keel
/// test's alone, and one lock spares two round trips per step.
pub(crate) async fn run(db: &mut dyn Database, plan: &Plan<'_>) -> Result<Tally, Error> {
    // No session-wide generic plans here: planned once on the scratch
    // database's first, tiny catalog, widen's and the existence check's
    // generic plans scan pg_class, and at 1,000 migrations widen took 5 ms
    // instead of 0.4 (server log). Only the fingerprint keeps one.
    let mut runner = runner(db, plan, None);
    runner.lock().await?;
    let result = run_locked(runner.db, plan).await;
    let unlocked = runner.db.unlock_runs().await;
    let outcomes = result?;
    unlocked?;
    Ok(outcomes)
}

async fn run_locked(db: &mut dyn Database, plan: &Plan<'_>) -> Result<Tally, Error> {
    let say = |_: &str| {};
    let mut hook = BackupHook::new(plan.backups, "test", &say);
    let mut tally = Tally::default();
    let last = plan.only.last().copied();
    let mut rows = Vec::new();
    for m in plan.files {
        if last.is_some_and(|v| m.version > v) {
            break;
        }
        if !plan.only.is_empty() && !plan.only.contains(&m.version) {
            migrate(db, plan, (m, None), &mut hook, Way::Up(None))
                .await
                .map_err(|e| {
                    Error::Setup(format!(
                        "{e}\n  (while applying {}, which comes before the migrations under test)",
                        m.id()
                    ))
                })?;
        } else {
            // Only what the migration reaches can change: the rest is
            // neither filled, fingerprinted nor digested (else each
            // migration would cost as much as the whole schema).
            let scope = db.widen(&reach(m)).await?;
            // No table it names exists yet: none to fill.
            if plan.rows > 0 && scope.found {
                rows.extend(data::generate(&mut *db, plan.rows, &scope.data).await?);
            }
            let outcome = trip(db, plan, (m, &scope), &mut hook, std::mem::take(&mut rows)).await?;
            (plan.on_outcome)(&outcome);
            tally.add(&outcome);
            // No step failed: it ended applied (up again, or up alone).
            let applied = !outcome.failed() || applied(db, m).await?;
            if !applied {
                break;
            }
        }
        rows.extend(plan.fixtures.load(db, m.version).await?);
    }
    Ok(tally)
}

/// What the summary says of the outcomes: how many were tested, which
/// failed, how many had no down to test.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) tested: usize,
    pub(crate) failed: Vec<String>,
    pub(crate) no_down: usize,
}

impl Tally {
    fn add(&mut self, o: &Outcome) {
        self.tested += 1;
        if o.failed() {
            self.failed.push(o.migration.clone());
        } else if o
            .steps
            .iter()
            .any(|s| matches!(s.verdict, Verdict::Skipped { .. }))
        {
            self.no_down += 1;
        }
    }
}

/// Whether `m` has a tracking row in the applied state.
async fn applied(db: &mut dyn Database, m: &Migration) -> Result<bool, Error> {
    let row = db.tracking_row(&m.version.to_string()).await?;
    Ok(row.is_some_and(|r| !r.state.is_failed()))
}

/// What one phase found: a verdict, and the time it took.
fn step(phase: Phase, started: Instant, verdict: Verdict) -> Step {
    Step {
        phase,
        verdict,
        took: started.elapsed(),
    }
}

fn passed(detail: impl Into<String>) -> Verdict {
    Verdict::Passed {
        detail: detail.into(),
    }
}

fn failed(message: impl Into<String>) -> Verdict {
    Verdict::Failed {
        message: message.into(),
        diff: None,
    }
}

/// The state a phase compares against.
struct Before {
    schema: Fingerprint,
    contents: Contents,
}

async fn trip(
    db: &mut dyn Database,
    plan: &Plan<'_>,
    (m, scope): (&Migration, &Widened),
    hook: &mut BackupHook<'_>,
    rows: Vec<String>,
) -> Result<Outcome, Error> {
    let mut outcome = Outcome {
        migration: m.id(),
        reversibility: m
            .meta
            .reversibility
            .map_or("full (by default)".into(), |r| r.to_string()),
        rows,
        steps: Vec::new(),
    };
    // Of a migration that creates all it names, nothing exists yet: no
    // schema, no rows, no facts to ask the server for.
    let none_exists = !scope.found && !scope.schema.others();
    let (before, facts) = if none_exists {
        let before = Before {
            schema: Fingerprint::default(),
            contents: Contents::new(),
        };
        (before, Facts::read_none_exists(&mut *db).await?)
    } else {
        let before = Before {
            schema: db.fingerprint(&scope.schema).await?,
            contents: data::contents(db, derived(m).as_ref(), &scope.data).await?,
        };
        (before, Facts::read(&mut *db, &scope.schema).await?)
    };
    let started = Instant::now();
    let way = Way::Up(Some(facts.clone()));
    if let Err(e) = migrate(db, plan, (m, Some(&scope.schema)), hook, way).await {
        outcome.steps.push(step(Phase::Up, started, failed(e)));
        return Ok(outcome);
    }
    let up = db.fingerprint(&scope.schema).await?;
    outcome.steps.push(step(
        Phase::Up,
        started,
        passed(format!(
            "{} changed",
            objects(before.schema.diff(&up).changes.len())
        )),
    ));
    if let Some(reason) = no_down(m) {
        outcome.steps.push(step(
            Phase::Down,
            Instant::now(),
            Verdict::Skipped { reason },
        ));
        return Ok(outcome);
    }
    let started = Instant::now();
    // A partial migration gets its destroyed data back from its backup; a
    // full one must put everything back with down.sql alone.
    hook.no_restore = m.meta.reversibility != Some(Reversibility::Partial);
    let way = Way::Down(Some(facts.clone()));
    let reverted = migrate(db, plan, (m, Some(&scope.schema)), hook, way).await;
    hook.no_restore = false;
    if let Err(e) = reverted {
        outcome.steps.push(step(Phase::Down, started, failed(e)));
        return Ok(outcome);
    }
    outcome
        .steps
        .push(step(Phase::Down, started, passed("down.sql ran")));
    outcome
        .steps
        .push(compare_schema(db, &scope.schema, &before.schema).await?);
    outcome.steps.push(compare_data(db, &before.contents).await);
    // The first up's archive served its down. Gone, the second up's archive
    // need not wait for the next second to get a name of its own (archives
    // are named by the second they are taken in).
    let _ = std::fs::remove_dir_all(plan.backups.join("backups").join(m.id()));
    let started = Instant::now();
    let way = Way::Up(Some(facts));
    let again = match migrate(db, plan, (m, Some(&scope.schema)), hook, way).await {
        Err(e) => failed(e),
        Ok(()) => {
            let diff = up.diff(&db.fingerprint(&scope.schema).await?);
            if diff.is_empty() {
                passed("the same schema as the first up")
            } else {
                Verdict::Failed {
                    message: format!(
                        "up after down gives another schema than the first up (differences: {})",
                        objects(diff.changes.len())
                    ),
                    diff: Some(diff),
                }
            }
        }
    };
    outcome.steps.push(step(Phase::UpAgain, started, again));
    Ok(outcome)
}

/// The columns `m`'s backfill fills, by table: derived from other columns
/// of the same row, so a down that leaves them filled loses nothing, and
/// they are left out of the data comparison (the source columns are not).
fn derived(m: &Migration) -> Option<(String, Vec<String>)> {
    let b = m.meta.backfill.as_ref()?;
    Some((
        crate::db::Relation::parse(&b.table).to_string(),
        b.set.keys().cloned().collect(),
    ))
}

/// Why `m` has no down to test, when it has none.
fn no_down(m: &Migration) -> Option<String> {
    if m.meta.reversibility == Some(Reversibility::Irreversible) {
        Some("declared irreversible: applied, down not run".into())
    } else if !m.has_down() {
        Some("no down.sql: applied, down not run".into())
    } else {
        None
    }
}

/// Which way [`migrate`] runs a migration.
enum Way {
    /// Up to it, from these live facts (the runner reads them when `None`).
    Up(Option<Facts>),
    /// Down one step, with these live facts (the runner reads them when `None`).
    Down(Option<Facts>),
}

/// Runs `m` as `keel up`/`keel down` do (backup, backfill, restore) under
/// the run lock [`run`] holds. The error, in words.
async fn migrate(
    db: &mut dyn Database,
    plan: &Plan<'_>,
    (m, reach): (&Migration, Option<&Scope>),
    hook: &mut BackupHook<'_>,
    way: Way,
) -> Result<(), String> {
    let mut runner = runner(db, plan, reach);
    let files = std::slice::from_ref(m);
    let result = match way {
        Way::Up(facts) => {
            runner
                .up_locked_from(files, Some(m.version), hook, facts)
                .await
        }
        Way::Down(facts) => {
            runner
                .down_locked_from(files, (Some(1), None), hook, facts)
                .await
        }
    };
    result.map(|_| ()).map_err(|e| e.to_string())
}

/// keel test's runner: quiet, as the operator `keel test`.
fn runner<'r>(db: &'r mut dyn Database, plan: &Plan<'_>, reach: Option<&'r Scope>) -> Runner<'r> {
    const QUIET: &(dyn Fn(Event<'_>) + Sync) = &|_| {};
    Runner {
        db,
        settings: plan.settings,
        operator: "keel test".into(),
        on_event: QUIET,
        reach,
        alone: true,
    }
}

async fn compare_schema(
    db: &mut dyn Database,
    scope: &Scope,
    before: &Fingerprint,
) -> Result<Step, Error> {
    let started = Instant::now();
    let diff = before.diff(&db.fingerprint(scope).await?);
    let verdict = if diff.is_empty() {
        let which = match scope {
            Scope::All => "",
            Scope::Named { .. } => " it can reach",
        };
        passed(format!(
            "the same {} schema objects{which} as before up",
            before.len()
        ))
    } else {
        Verdict::Failed {
            message: format!(
                "down.sql does not restore the schema (differences from before up: {})",
                objects(diff.changes.len())
            ),
            diff: Some(diff),
        }
    };
    Ok(step(Phase::Schema, started, verdict))
}

async fn compare_data(db: &mut dyn Database, before: &Contents) -> Step {
    let started = Instant::now();
    let changed = data::changed(db, before).await;
    let verdict = if changed.is_empty() {
        let rows: u64 = before.values().map(|(_, d)| d.rows).sum();
        passed(format!(
            "the {} tables it can reach hold the {rows} rows they held before up",
            before.len()
        ))
    } else {
        failed(format!(
            "down does not put the data back: {}",
            changed.join("; ")
        ))
    };
    step(Phase::Data, started, verdict)
}

/// `1 schema object`, `2 schema objects`.
fn objects(n: usize) -> String {
    format!("{n} schema object{}", if n == 1 { "" } else { "s" })
}
