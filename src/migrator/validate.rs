use super::error::RunError;
use super::runner::Runner;
use super::status::{State, reconcile};
use super::targets::pending;
use crate::analysis::analyze::{Analyzer, Facts, MigrationAnalysis};
use crate::analysis::reach::reach_analysed;
use crate::db::{Fingerprint, Scope};
use crate::migration::Migration;
use crate::migration::Reversibility;

/// One thing `validate` found, or checked.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Finding {
    pub(crate) version: String,
    pub(crate) name: String,
    /// `ok`, `static` (checked without running), or the problem's state.
    pub(crate) result: String,
    pub(crate) message: String,
    pub(crate) file: Option<String>,
    pub(crate) line: Option<usize>,
}

#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct ValidateReport {
    pub(crate) checked: Vec<Finding>,
    pub(crate) problems: Vec<Finding>,
}

/// Checks applied checksums, then runs every pending transactional migration
/// in order inside one transaction that is always rolled back (each in a
/// savepoint, so one failure does not hide the next), and its down.sql
/// after it, which must give back the schema of before its up (the down is
/// then undone, so the next migration starts from this one's up).
/// Non-transactional migrations cannot run inside a transaction and are
/// checked statically.
pub(crate) async fn validate(
    runner: &mut Runner<'_>,
    files: &[Migration],
) -> Result<ValidateReport, RunError> {
    runner.lock().await?;
    let result = validate_locked(runner, files).await;
    runner.unlock(result).await
}

async fn validate_locked(
    runner: &mut Runner<'_>,
    files: &[Migration],
) -> Result<ValidateReport, RunError> {
    let mut report = ValidateReport::default();
    let entries = reconcile(files, runner.db.tracking_rows().await?);
    for e in &entries {
        let problem = match e.state {
            State::Modified => "its files changed after it was applied (checksum differs)",
            State::Missing => "it was applied but its folder is gone",
            State::Failed => "it stopped part-way and needs `keel resolve`",
            _ => continue,
        };
        report.problems.push(Finding {
            version: e.version.clone(),
            name: e.name.clone(),
            result: e.state.as_str().into(),
            message: problem.into(),
            file: None,
            line: None,
        });
    }
    let pending = pending(&entries, None);
    if pending.is_empty() {
        return Ok(report);
    }
    // Each pending migration analysed once, as the run would: its
    // statements are the ones tried.
    let mut analyzer = Analyzer::new(Facts::read(runner.db, &Scope::All).await?, true);
    let settings = runner.settings;
    runner.db.begin(settings.project_timeouts(), true).await?;
    for m in pending {
        let analysis = analyzer.analyze(m);
        let mut finding = Finding {
            version: m.version.to_string(),
            name: m.name.clone(),
            result: "ok".into(),
            message: String::new(),
            file: None,
            line: None,
        };
        let statements = &analysis.up.statements;
        if !m.meta.transaction {
            finding.result = "static".into();
            finding.message = format!(
                "{} statement(s) split cleanly; not executed (transaction = false cannot run in the validation transaction)",
                statements.len()
            );
            report.checked.push(finding);
            continue;
        }
        runner.db.savepoint("keel_validate").await?;
        // Only what the migration reaches: the rest cannot differ.
        let scope = runner.db.widen(&reach_analysed(&analysis)).await?.schema;
        let before = runner.db.fingerprint(&scope).await?;
        match super::trial::run_all(runner.db, statements).await {
            Ok(()) => {
                finding.message = format!(
                    "{} statement(s) ran against the current schema",
                    statements.len()
                );
                match round_trip(runner, m, &analysis, (&scope, &before)).await? {
                    Ok(Some(done)) => finding.message.push_str(&done),
                    Ok(None) => {}
                    Err(problem) => report.problems.push(problem),
                }
                report.checked.push(finding);
            }
            Err((stmt, e)) => {
                let (line, _) = e.position.map_or((stmt.line, stmt.column), |p| {
                    stmt.position_in_file(p as usize)
                });
                runner.db.rollback_to_savepoint("keel_validate").await?;
                finding.result = "error".into();
                finding.message = e.to_string();
                finding.file = Some(m.up_path().display().to_string());
                finding.line = Some(line);
                report.problems.push(finding);
            }
        }
    }
    runner.db.rollback().await?;
    Ok(report)
}

/// Runs `m`'s down.sql after its up (in a savepoint, rolled back after)
/// and compares the schema with `before`, the one before the up. `Ok(None)`
/// when there is no down to try; `Err` the problem, with the diff.
async fn round_trip(
    runner: &mut Runner<'_>,
    m: &Migration,
    analysis: &MigrationAnalysis,
    (scope, before): (&Scope, &Fingerprint),
) -> Result<Result<Option<String>, Finding>, RunError> {
    let Some(down) = analysis.down.as_ref() else {
        return Ok(Ok(None));
    };
    if m.meta.reversibility == Some(Reversibility::Irreversible) || down.statements.is_empty() {
        return Ok(Ok(None));
    }
    let problem = |message: String, line: Option<usize>| Finding {
        version: m.version.to_string(),
        name: m.name.clone(),
        result: "down".into(),
        message,
        file: Some(m.down_path().display().to_string()),
        line,
    };
    runner.db.savepoint("keel_validate_down").await?;
    let ran = super::trial::run_all(runner.db, &down.statements).await;
    let outcome = match ran {
        Err((stmt, e)) => {
            let (line, _) = e.position.map_or((stmt.line, stmt.column), |p| {
                stmt.position_in_file(p as usize)
            });
            Err(problem(
                format!("down.sql fails after up.sql: {e}"),
                Some(line),
            ))
        }
        Ok(()) => {
            let diff = before.diff(&runner.db.fingerprint(scope).await?);
            if diff.is_empty() {
                Ok(Some("; down.sql gives back the schema of before".into()))
            } else {
                Err(problem(
                    format!(
                        "down.sql does not give back the schema of before up.sql ({} objects differ; `-` before up, `+` after down):\n{}fix: make down.sql undo exactly what up.sql does (`keel test` checks the data too)",
                        diff.changes.len(),
                        diff
                    ),
                    None,
                ))
            }
        }
    };
    runner
        .db
        .rollback_to_savepoint("keel_validate_down")
        .await?;
    Ok(outcome)
}
