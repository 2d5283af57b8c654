//! The migration itself, and the row counts taken right before it that the
//! checks (and a rollback) compare to.

use crate::backup::BackupHook;
use crate::execute::ExecuteError;
use crate::execute::checks;
use crate::execute::context::Context;
use crate::execute::step::{Done, Step, StepId};
use async_trait::async_trait;

pub(crate) struct RowCounts;

#[async_trait(?Send)]
impl Step for RowCounts {
    fn id(&self) -> StepId {
        StepId::RowCounts
    }

    fn about(&self) -> &'static str {
        "the rows of the tables the migration must not change, counted"
    }

    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
        let tables = checks::count_tables(&cx.analysis);
        cx.before = match checks::count_rows(cx.db, &tables).await {
            Ok(b) => b,
            Err(e) => {
                return Ok(Done::failed(e.to_string()).stop(format!(
                    "counting rows before the migration failed, so it did not run: {e}"
                )));
            }
        };
        if cx.before.is_empty() {
            return Ok(Done::quiet());
        }
        let list: Vec<String> = cx.before.iter().map(|(t, n)| format!("{t} {n}")).collect();
        Ok(Done::ok(list.join(", ")))
    }
}

pub(crate) struct Migrate;

#[async_trait(?Send)]
impl Step for Migrate {
    fn id(&self) -> StepId {
        StepId::Migrate
    }

    fn about(&self) -> &'static str {
        "the migration runs and is recorded in the tracking table"
    }

    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
        let m = cx.migration();
        let request = cx.request;
        // Binds the archive to the migration's tracking row: a later `keel
        // down` (or the rollback) restores exactly this one.
        let mut bind = BackupHook::new(&request.project, request.env_name, cx.ui.say);
        bind.made = cx.backup.clone();
        let (mut runner, analysis) = cx.runner_with_analysis();
        let applied = runner.apply_one(m, analysis, &mut bind).await;
        if let Err(e) = applied {
            cx.log.rec.blockers = e.blockers().to_vec();
            return Ok(Done::failed(e.to_string()).stop(format!("the migration failed:\n{e}")));
        }
        Ok(Done::ok(format!(
            "{} applied and recorded in the tracking table",
            m.id()
        )))
    }
}
