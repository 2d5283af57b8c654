//! Before anything changes: the signing key, the runbook, that the
//! migration is next, the records, the snapshot and the dry run.

use crate::execute::context::Context;
use crate::execute::step::{Done, Step, StepId};
use crate::execute::{ExecuteError, at, file_ref, guard};
use crate::record::{self, RunbookRef};
use async_trait::async_trait;
use std::path::Path;

pub(crate) struct SigningKey;

#[async_trait(?Send)]
impl Step for SigningKey {
    fn id(&self) -> StepId {
        StepId::SigningKey
    }

    fn about(&self) -> &'static str {
        "the record can be signed as keel.toml asks"
    }

    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
        let request = cx.request;
        cx.signer = guard::signer(
            request.config,
            &request.project,
            request.env_name,
            request.env,
        )?;
        Ok(match &cx.signer {
            Some(s) => {
                cx.log.rec.signer = Some(s.principal().to_string());
                Done::ok(format!("the record will be signed by {}", s.principal()))
            }
            None => Done::skipped(
                "no signing key in keel.toml and none required: the record will be unsigned",
            ),
        })
    }
}

pub(crate) struct RunbookFresh;

#[async_trait(?Send)]
impl Step for RunbookFresh {
    fn id(&self) -> StepId {
        StepId::Runbook
    }

    fn about(&self) -> &'static str {
        "the runbook is the reviewed one, rendered from this migration"
    }

    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
        let request = cx.request;
        let m = request.migration;
        let checked = guard::runbook(
            &cx.runbook_path,
            m,
            request.files,
            request.config,
            &request.project,
            &cx.reviewed,
        )?;
        cx.log.rec.runbook = Some(RunbookRef {
            path: cx.runbook_shown.display().to_string(),
            sha256: checked.sha256.clone(),
            reviewed: Some(checked.digest.clone()),
            ticked: Vec::new(),
            section: None,
        });
        cx.runbook = Some(checked);
        Ok(Done::ok(format!(
            "{} was rendered from the migration's checksum {} and its reviewed body is unchanged",
            cx.runbook_shown.display(),
            &m.checksum[..12]
        )))
    }
}

pub(crate) struct Pending;

#[async_trait(?Send)]
impl Step for Pending {
    fn id(&self) -> StepId {
        StepId::Pending
    }

    fn about(&self) -> &'static str {
        "the migration is the next pending one"
    }

    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
        let request = cx.request;
        let detail =
            guard::next_pending(cx.db, request.files, request.migration, request.env_name).await?;
        Ok(Done::ok(detail))
    }
}

pub(crate) struct Records;

#[async_trait(?Send)]
impl Step for Records {
    fn id(&self) -> StepId {
        StepId::Records
    }

    fn about(&self) -> &'static str {
        "the records folder holds the chain the database registered"
    }

    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
        let env = cx.env_name();
        let rows = record::store::rows(cx.db, env)
            .await
            .map_err(ExecuteError::Db)?;
        let head = record::chain::check(&cx.records_dir, env, &rows)
            .map_err(|e| ExecuteError::Refused(format!("{e}\n  nothing was changed")))?;
        Ok(Done::ok(head.describe(Path::new("records"), env)))
    }
}

pub(crate) struct Snapshot;

#[async_trait(?Send)]
impl Step for Snapshot {
    fn id(&self) -> StepId {
        StepId::Snapshot
    }

    fn about(&self) -> &'static str {
        "the snapshot to fall back on is there, intact and recent"
    }

    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
        let request = cx.request;
        let project = &request.project;
        let snapshot = guard::snapshot(
            cx.db,
            request.snapshot.as_deref(),
            &at(project, "snapshots"),
            request.env_name,
            request.env,
        )
        .await?;
        let Some(c) = snapshot else {
            return Ok(Done::skipped(format!(
                "no snapshot of `{}` (not required there)",
                request.env_name
            )));
        };
        let s = &c.snapshot;
        cx.snapshot_done = true;
        cx.log.rec.snapshot = Some(file_ref(project, &s.path, &s.sha256));
        Ok(Done::ok(format!(
            "{} matches its SHA-256 {}: {}",
            cx.shown(&s.path),
            &s.sha256[..16],
            c.detail
        )))
    }
}

pub(crate) struct DryRun;

#[async_trait(?Send)]
impl Step for DryRun {
    fn id(&self) -> StepId {
        StepId::DryRun
    }

    fn about(&self) -> &'static str {
        "the migration runs against the live schema, rolled back"
    }

    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
        let detail = guard::dry_run(cx.db, cx.request.migration, &cx.analysis, cx.timeouts).await?;
        Ok(Done::ok(detail))
    }
}

pub(crate) struct AlertTargets;

#[async_trait(?Send)]
impl Step for AlertTargets {
    fn id(&self) -> StepId {
        StepId::AlertTargets
    }

    fn about(&self) -> &'static str {
        "the alert webhook's URL is set, so that a failed run's alert reaches someone"
    }

    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
        let Some(var) = cx.request.env.alert_webhook_env.as_deref() else {
            return Ok(Done::quiet());
        };
        crate::execute::alert::webhook_url(var).map_err(ExecuteError::Refused)?;
        Ok(Done::ok(format!("alerts also go to the webhook in ${var}")))
    }
}
