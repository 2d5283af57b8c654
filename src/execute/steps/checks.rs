//! The post-migration checks ([`crate::execute::checks`]): each is logged
//! under its own name with its own timing; any that fails rolls the
//! migration back.

use crate::execute::ExecuteError;
use crate::execute::checks;
use crate::execute::context::Context;
use crate::execute::step::{Done, Step, StepId};
use crate::record::StepOutcome;
use async_trait::async_trait;

pub(crate) struct PostChecks;

#[async_trait(?Send)]
impl Step for PostChecks {
    fn id(&self) -> StepId {
        StepId::PostChecks
    }

    fn about(&self) -> &'static str {
        "the smoke queries, row counts and health check pass after the migration"
    }

    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
        let env = cx.request.env;
        let results = checks::run_all(
            cx.db,
            cx.request.migration,
            &env.smoke,
            &cx.before,
            env.health_url.as_deref(),
            cx.timeouts,
        )
        .await;
        let mut failed = Vec::new();
        for r in &results {
            let outcome = if r.ok {
                StepOutcome::Ok
            } else {
                failed.push(format!("{}: {}", r.step, r.detail));
                StepOutcome::Failed
            };
            cx.log.step_took(
                &r.step,
                outcome,
                r.started_at,
                r.duration_ms,
                r.detail.clone(),
            );
        }
        if failed.is_empty() {
            return Ok(Done::quiet());
        }
        Ok(Done::quiet().roll_back(failed.join("\n  ")))
    }
}
