//! However the run ended: a signal it finished despite goes into the
//! record, and a run that did not apply raises an alert.

use crate::execute::context::Context;
use crate::execute::step::{Done, Step, StepId};
use crate::execute::{ExecuteError, alert, report};
use crate::record::{Outcome, StepOutcome};
use async_trait::async_trait;

pub(crate) struct Signal;

#[async_trait(?Send)]
impl Step for Signal {
    fn id(&self) -> StepId {
        StepId::Signal
    }

    fn about(&self) -> &'static str {
        "a signal the run finished despite is in its record"
    }

    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
        // In the record only, stamped when it came: the terminal said so then.
        if let Some((name, at)) = cx.signal {
            cx.log.rec.step(
                StepId::Signal.name(),
                StepOutcome::Ok,
                at,
                Some(format!(
                    "{name} received during the run; keel finished it (checks, rollback if needed, record) instead of stopping half-way"
                )),
            );
        }
        Ok(Done::quiet())
    }
}

pub(crate) struct Alert;

#[async_trait(?Send)]
impl Step for Alert {
    fn id(&self) -> StepId {
        StepId::Alert
    }

    fn about(&self) -> &'static str {
        "a run that did not apply is told to the operator, alert_command and the alert webhook"
    }

    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
        if cx.outcome == Outcome::Applied {
            return Ok(Done::quiet());
        }
        let request = cx.request;
        let m = request.migration;
        let summary = format!(
            "keel execute {} on `{}`: {}\n{}\noperator: {}\nrunbook: {}\n",
            m.id(),
            request.env_name,
            report::outcome_word(cx.outcome).to_uppercase(),
            cx.problem.trim_end(),
            cx.log.rec.operator,
            cx.runbook_shown.display()
        );
        (cx.ui.say)(&format!(
            "ALERT: {}",
            summary.trim_end().replace('\n', "\n  ")
        ));
        let command = request.config.alert_command.clone();
        let webhook = request.env.alert_webhook_env.clone();
        if command.is_none() && webhook.is_none() {
            return Ok(Done::quiet());
        }
        let vars: Vec<(String, String)> = vec![
            ("KEEL_ENV".into(), request.env_name.into()),
            ("KEEL_MIGRATION".into(), m.id()),
            (
                "KEEL_OUTCOME".into(),
                report::outcome_word(cx.outcome).replace(' ', "_"),
            ),
        ];
        // After the rollback, never before it: an alert that hangs or
        // fails cannot hold up undoing the migration.
        let sent = tokio::task::spawn_blocking(move || {
            let v: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let mut sent = Vec::new();
            if let Some(command) = command {
                sent.push(alert::send(&command, &summary, &v));
            }
            if let Some(var) = webhook {
                // The same facts as the command's variables: env, migration, outcome.
                let names: Vec<String> = v
                    .iter()
                    .map(|(k, _)| k.trim_start_matches("KEEL_").to_lowercase())
                    .collect();
                let fields: Vec<(&str, &str)> = names
                    .iter()
                    .zip(&v)
                    .map(|(k, (_, val))| (k.as_str(), *val))
                    .collect();
                sent.push(
                    alert::webhook_url(&var)
                        .and_then(|url| alert::post_webhook(&var, &url, &summary, &fields)),
                );
            }
            sent
        })
        .await
        .unwrap_or_else(|e| vec![Err(e.to_string())]);
        let failed = sent.iter().any(Result::is_err);
        let said = sent
            .into_iter()
            .map(|r| r.unwrap_or_else(|e| e))
            .collect::<Vec<_>>()
            .join("; ");
        Ok(if failed {
            Done::failed(said)
        } else {
            Done::ok(said)
        })
    }
}
