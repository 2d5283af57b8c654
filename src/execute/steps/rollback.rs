//! The automatic rollback after a failed check: down.sql and the backup
//! bound to the migration's tracking row put back, in one transaction;
//! then that it checks out.

use crate::backup::BackupHook;
use crate::db::Database;
use crate::execute::ExecuteError;
use crate::execute::checks;
use crate::execute::context::Context;
use crate::execute::step::{Done, Step, StepId};
use crate::migration::Migration;
use async_trait::async_trait;
use std::collections::BTreeMap;

pub(crate) struct Rollback;

#[async_trait(?Send)]
impl Step for Rollback {
    fn id(&self) -> StepId {
        StepId::Rollback
    }

    fn about(&self) -> &'static str {
        "down.sql ran and the backup is put back"
    }

    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
        let m = cx.migration();
        let request = cx.request;
        let mut hook = BackupHook::new(&request.project, request.env_name, cx.ui.say);
        let (mut runner, analysis) = cx.runner_with_analysis();
        if let Err(e) = runner.revert_one(m, analysis, &mut hook).await {
            return Ok(Done::failed(e.to_string()).stop(format!(
                "{}\nAND THE AUTOMATIC ROLLBACK FAILED: {} is still applied\n  {e}\n  fix: revert by hand (`keel down --env {}`), or restore the snapshot",
                cx.problem,
                m.id(),
                request.env_name
            )));
        }
        let restored: Vec<String> = hook
            .restored
            .iter()
            .flat_map(|(_, r)| r.tables.iter().map(|(t, n)| format!("{t} ({n} rows)")))
            .collect();
        Ok(Done::ok(if restored.is_empty() {
            "down.sql ran; nothing needed restoring".into()
        } else {
            format!(
                "down.sql ran and the backup put back {}, in one transaction",
                restored.join(", ")
            )
        }))
    }
}

pub(crate) struct RollbackVerified;

#[async_trait(?Send)]
impl Step for RollbackVerified {
    fn id(&self) -> StepId {
        StepId::RollbackVerified
    }

    fn about(&self) -> &'static str {
        "the migration is pending again, the row counts are as before and the schema is the one before the run"
    }

    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
        let checked = match verify(cx.db, cx.request.migration, &cx.before).await {
            Ok(d) => d,
            Err(d) => {
                return Ok(Done::failed(d.clone()).stop(format!(
                    "{}\nthe rollback ran but does not check out: {d}",
                    cx.problem
                )));
            }
        };
        let Some(before) = &cx.schema_before else {
            return Ok(Done::ok(checked));
        };
        let (tries, pause) = (
            cx.request.settings.retries(cx.request.migration) + 1,
            cx.request.settings.backoff(1),
        );
        let after =
            crate::db::fingerprint_retrying(cx.db, &crate::db::Scope::All, tries, pause).await;
        let diff = match after {
            Ok(after) => before.diff(&after),
            Err(e) => {
                return Ok(Done::failed(e.to_string()).stop(format!(
                    "{}\nthe rollback ran, but reading the schema after it failed: {e}",
                    cx.problem
                )));
            }
        };
        if diff.is_empty() {
            return Ok(Done::ok(format!(
                "{checked}; the schema is the one before the run ({} objects)",
                before.len()
            )));
        }
        // The migration is reverted (exit 5), but down.sql did not give
        // the schema back: said in the step, the record and the error.
        let text = format!(
            "down.sql did not give back the schema of before the run ({} objects differ; `-` before the run, `+` after the rollback):\n{}fix: correct down.sql so that it undoes up.sql exactly (`keel test` checks every migration this way), then put the schema right with a new migration",
            diff.changes.len(),
            diff
        );
        cx.problem = format!("{}\n{text}", cx.problem);
        Ok(Done::failed(text))
    }
}

/// After a rollback: the migration is pending again and the tables it must
/// not change have their rows back.
async fn verify(
    db: &mut dyn Database,
    m: &Migration,
    before: &BTreeMap<String, i64>,
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
