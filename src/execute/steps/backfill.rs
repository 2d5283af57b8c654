//! The data change of an expand step: part of the migration, so the checks
//! judge its result and a failed validation rolls it all back. A backfill
//! that stops half-way (connection lost, lock timeouts) keeps its progress
//! and is resumed by `keel backfill`.

use crate::backfill::{BackfillError, Report};
use crate::execute::ExecuteError;
use crate::execute::context::Context;
use crate::execute::step::{Done, Step, StepId};
use crate::migrator::RunError;
use async_trait::async_trait;

pub(crate) struct Backfill;

#[async_trait(?Send)]
impl Step for Backfill {
    fn id(&self) -> StepId {
        StepId::Backfill
    }

    fn about(&self) -> &'static str {
        "the migration's backfill has run and its result validates"
    }

    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
        if !cx.backfill {
            return Ok(Done::quiet());
        }
        let m = cx.migration();
        let env = cx.env_name();
        match cx.runner().backfill(m).await {
            Ok(r) => Ok(Done::ok(summary(&r))),
            Err(RunError::Backfill(e)) if matches!(*e, BackfillError::Incomplete(_)) => {
                // The first line: its fix (`keel backfill`) is for a run
                // that stays applied, and this one is rolled back.
                let detail = e.to_string().lines().next().unwrap_or_default().to_string();
                Ok(Done::failed(detail.clone()).roll_back(format!("backfill: {detail}")))
            }
            Err(e) => Ok(Done::failed(e.to_string()).stop(format!(
                "the backfill stopped: {e}\n  {} is applied and still backfilling: `keel backfill {} --env {env}` goes on from the last committed batch, or `keel down --env {env}` reverts it",
                m.id(),
                m.version,
            ))),
        }
    }
}

/// One line for the record: `1000000 rows in 1000 batches (92000 rows/s); validation passed`.
fn summary(r: &Report) -> String {
    format!(
        "{} of {} rows in {} batches of {} ({} rows/s); validation passed in {} ms{}",
        r.rows_done,
        r.rows_total,
        r.batches,
        r.batch_size,
        r.rows_per_second(),
        r.validation_elapsed.as_millis(),
        r.pauses_line()
            .map(|l| format!("; {l}"))
            .unwrap_or_default()
    )
}
