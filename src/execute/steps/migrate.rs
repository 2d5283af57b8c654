//! The migration itself, and the row counts (and the schema's fingerprint)
//! taken right before it that the checks and a rollback compare to.

use crate::backup::BackupHook;
use crate::execute::ExecuteError;
use crate::execute::checks;
use crate::execute::context::Context;
use crate::execute::step::{Done, Step, StepId};
use crate::runbook::check_id::CheckId;
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
        // Both reads take a share lock on the tables they read (the
        // schema's: every table), so they run under the migration's lock
        // timeout: a session holding an exclusive lock anywhere stops the
        // run with its reason instead of hanging it.
        if let Err(e) = cx.db.begin(cx.timeouts, true).await {
            return Ok(Done::failed(e.to_string()).stop(format!(
                "reading the database before the migration failed, so it did not run: {e}"
            )));
        }
        let counted = checks::count_rows(cx.db, &tables).await;
        // What a rollback must give back; the migration has not started.
        let schema = match &counted {
            Ok(_) => Some(cx.db.fingerprint(&crate::db::Scope::All).await),
            Err(_) => None,
        };
        let _ = cx.db.rollback().await;
        cx.before = match counted {
            Ok(b) => b,
            Err(e) => {
                return Ok(Done::failed(e.to_string()).stop(format!(
                    "counting rows before the migration failed, so it did not run: {e}"
                )));
            }
        };
        cx.schema_before = match schema {
            Some(Ok(f)) => Some(f),
            Some(Err(e)) => {
                return Ok(Done::failed(e.to_string()).stop(format!(
                    "reading the schema before the migration failed, so it did not run: {e}"
                )));
            }
            None => None,
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
        // An archive taken inside the migration's transaction (a backup
        // step that ran before made none): it committed with it.
        let mut archive = String::new();
        if cx.backup.is_none()
            && let Some(c) = bind.created.pop()
        {
            let project = &request.project;
            cx.log
                .rec
                .backups
                .push(crate::execute::file_ref(project, &c.path, &c.sha256));
            if cx.backup_item {
                cx.tick.push(CheckId::BackupVerified.to_string());
            }
            archive = format!(
                "; backed up in its transaction to {}: {}, re-read and checked against its manifest before its statements ran",
                cx.shown(&c.path),
                super::backup::contents(&c).join(", ")
            );
            cx.backup = Some(c);
        }
        Ok(Done::ok(format!(
            "{} applied and recorded in the tracking table{archive}",
            m.id()
        )))
    }
}
