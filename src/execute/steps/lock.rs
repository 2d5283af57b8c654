//! The run lock, and what must still hold once it is taken.

use crate::execute::context::Context;
use crate::execute::step::{Done, Step, StepId};
use crate::execute::{ExecuteError, guard, recover};
use crate::record;
use async_trait::async_trait;
use std::path::Path;

pub(crate) struct RunLock;

#[async_trait(?Send)]
impl Step for RunLock {
    fn id(&self) -> StepId {
        StepId::RunLock
    }

    fn about(&self) -> &'static str {
        "no other keel run works on this database meanwhile"
    }

    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
        cx.runner()
            .lock()
            .await
            .map_err(|e| ExecuteError::Refused(format!("{e}\n  nothing was changed")))?;
        Ok(Done::ok("no other keel run on this database"))
    }
}

/// Someone may have run the migration while the checklist was walked.
pub(crate) struct StillPending;

#[async_trait(?Send)]
impl Step for StillPending {
    fn id(&self) -> StepId {
        StepId::StillPending
    }

    fn about(&self) -> &'static str {
        "the migration is still the next pending one"
    }

    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
        let request = cx.request;
        guard::next_pending(cx.db, request.files, request.migration, request.env_name).await?;
        Ok(Done::quiet())
    }
}

/// The records folder must match the database before anything links to
/// it: leftovers of a stopped run are taken over or removed here.
pub(crate) struct RecordsPrepared;

#[async_trait(?Send)]
impl Step for RecordsPrepared {
    fn id(&self) -> StepId {
        StepId::RecordsPrepared
    }

    fn about(&self) -> &'static str {
        "the records folder matches the database, leftovers of a stopped run dealt with"
    }

    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
        let request = cx.request;
        let env = request.env_name;
        let mut head = record::chain::prepare(cx.db, &cx.records_dir, env)
            .await
            .map_err(|e| ExecuteError::Refused(format!("{e}\n  nothing was changed")))?;
        // Another run was stopped while this one waited for the lock: it
        // is finished first, by the same command run again.
        if let Some(open) = head.row.as_ref().filter(|r| record::chain::is_open(r)) {
            return Err(ExecuteError::Refused(format!(
                "while this run waited for the run lock, a run of {} on `{env}` was stopped before its final record (records/{}); nothing was changed\n  fix: run `keel execute {} --env {env}` again: it finishes or records that run first",
                open.migration, open.path, request.migration.version,
            )));
        }
        if let Some(row) = &head.row
            && let Some(note) = recover::annotation(&request.project, &cx.records_dir, row)?
        {
            head.notes.push(note);
        }
        if head.notes.is_empty() {
            return Ok(Done::quiet());
        }
        Ok(Done::ok(head.describe(Path::new("records"), env)))
    }
}
