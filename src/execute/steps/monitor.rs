//! The monitoring window: after the migration and its checks, keel keeps
//! watching for `monitor` (keel.toml's environment, or migration.toml) and
//! samples, every `monitor_interval`, the health URL, the smoke queries
//! and the server's pulse ([`crate::execute::window`] judges them). A
//! breach rolls the migration back when it can be (reversible, nothing
//! applied after it), else ends the run failed with what the operator
//! must decide; either way the alert goes out. A first Ctrl-C ends the
//! window and keeps the migration. Every sample is in the record.

use crate::execute::ExecuteError;
use crate::execute::checks;
use crate::execute::context::Context;
use crate::execute::step::{Done, Step, StepId};
use crate::execute::window::{Judge, Rates};
use crate::migration::Reversibility;
use crate::record::StepOutcome;
use async_trait::async_trait;
use chrono::Utc;
use std::time::{Duration, Instant};

/// A reading of the server's pulse for the rates before the migration:
/// one as the guards start, one right before the migration runs.
pub(crate) struct Baseline;

#[async_trait(?Send)]
impl Step for Baseline {
    fn id(&self) -> StepId {
        StepId::Baseline
    }

    fn about(&self) -> &'static str {
        "with a monitoring window, the server's rates before the migration are read"
    }

    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
        if window(cx).is_some() {
            // A server that cannot say is judged on the rest.
            if let Ok(Some(p)) = cx.db.pulse().await {
                cx.pulses_before.push(p);
            }
        }
        Ok(Done::quiet())
    }
}

pub(crate) struct Monitor;

#[async_trait(?Send)]
impl Step for Monitor {
    fn id(&self) -> StepId {
        StepId::Monitor
    }

    fn about(&self) -> &'static str {
        "during the monitoring window the health URL, smoke queries, rollbacks, deadlocks, lock waits and replica lag stay within their thresholds"
    }

    async fn run(&self, cx: &mut Context<'_>) -> Result<Done, ExecuteError> {
        let Some(length) = window(cx) else {
            return Ok(Done::quiet());
        };
        if !cx.failures.is_empty() {
            return Ok(Done::skipped(
                "not watched: a check already failed and the migration is rolled back",
            ));
        }
        let env = cx.request.env;
        let interval = env
            .monitor_interval
            .unwrap_or(crate::config::MONITOR_INTERVAL)
            .max(Duration::from_millis(100));
        // Rates before the migration over less than a second are keel's
        // own dry run and backup more than the application: unknown then.
        let before = match cx.pulses_before.as_slice() {
            [first, .., last] if (last.at - first.at).num_milliseconds() >= 1000 => {
                Rates::between(first, last, 0)
            }
            _ => None,
        };
        // The window's rates start now, not before the migration, whose
        // own transaction, backfill and checks are not the application's.
        let start = cx.db.pulse().await.ok().flatten();
        let mut judge = Judge::new(env.thresholds.clone(), before, start);
        (cx.ui.say)(&format!(
            "{:>9}  {:<24} watching for {}, a sample every {} (Ctrl-C ends the window and keeps the migration)",
            "",
            "monitor",
            humantime::format_duration(length),
            humantime::format_duration(interval)
        ));
        let bar = live_line();
        let started = Instant::now();
        let mut next = started + interval;
        let mut samples = 0u32;
        let mut watching = cx.watching.clone();
        loop {
            let now = Instant::now();
            if now >= started + length {
                break;
            }
            if let Some(b) = &bar {
                b.set_message(format!(
                    "monitor: {} left, {samples} sample(s), no breach",
                    humantime::format_duration(Duration::from_secs(
                        (started + length - now).as_secs()
                    ))
                ));
            }
            let wake = next.min(now + Duration::from_secs(1)).min(started + length);
            let signalled = async {
                match watching.as_mut() {
                    Some(rx) => {
                        let _ = rx.wait_for(|n| *n >= 1).await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = tokio::time::sleep_until(wake.into()) => {}
                () = signalled => {
                    if let Some(b) = &bar { b.finish_and_clear(); }
                    return Ok(Done::ok(format!(
                        "the operator stopped watching after {} of {} ({samples} sample(s), no breach): the migration stays",
                        humantime::format_duration(Duration::from_secs(started.elapsed().as_secs())),
                        humantime::format_duration(length)
                    )));
                }
            }
            if Instant::now() < next {
                continue;
            }
            next += interval;
            samples += 1;
            let t = Utc::now();
            let (checks, own) = sample_checks(cx).await;
            let pulse = cx.db.pulse().await.ok().flatten();
            let s = judge.sample(&checks, pulse, own);
            let outcome = if s.breaches.is_empty() {
                StepOutcome::Ok
            } else {
                StepOutcome::Failed
            };
            let line = format!(
                "sample {samples} at +{}: {}",
                humantime::format_duration(Duration::from_secs(started.elapsed().as_secs())),
                s.summary()
            );
            let took = (Utc::now() - t).num_milliseconds().max(0) as u64;
            match &bar {
                Some(b) => b.suspend(|| cx.log.step_took("monitor", outcome, t, took, line)),
                None => cx.log.step_took("monitor", outcome, t, took, line),
            }
            if !s.breaches.is_empty() {
                if let Some(b) = &bar {
                    b.finish_and_clear();
                }
                let what = format!(
                    "monitoring window breached {} into {}: {}",
                    humantime::format_duration(Duration::from_secs(started.elapsed().as_secs())),
                    humantime::format_duration(length),
                    s.breaches.join("; ")
                );
                return breach(cx, what).await;
            }
        }
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        Ok(Done::ok(format!(
            "watched {}: {samples} sample(s), no breach",
            humantime::format_duration(length)
        )))
    }
}

/// The window's length for this run: the migration's `monitor`, else the
/// environment's; `None` for none (or 0).
fn window(cx: &Context<'_>) -> Option<Duration> {
    let m = cx.migration();
    m.meta
        .monitor
        .or(cx.request.env.monitor)
        .filter(|d| !d.is_zero())
}

/// The health URL and every smoke query, and how many transactions they
/// rolled back (each smoke query runs in one that is rolled back).
async fn sample_checks(cx: &mut Context<'_>) -> (Vec<(bool, String)>, u64) {
    let env = cx.request.env;
    let m = cx.migration();
    let mut out = Vec::new();
    let mut own = 0u64;
    if let Some(url) = env.health_url.as_deref() {
        out.push(checks::health(url).await);
    }
    for s in &m.meta.smoke {
        own += 1;
        out.push(checks::smoke(cx.db, s, cx.timeouts).await);
    }
    for sql in &env.smoke {
        own += 1;
        out.push(checks::env_smoke_query(cx.db, sql, cx.timeouts).await);
    }
    (out, own)
}

/// A breach: roll back when the migration can be undone and nothing was
/// applied after it; otherwise end the run failed and say what is left
/// to decide. The alert step tells people either way.
async fn breach(cx: &mut Context<'_>, what: String) -> Result<Done, ExecuteError> {
    let m = cx.migration();
    let why_not = if m.meta.reversibility == Some(Reversibility::Irreversible) {
        Some("it is declared irreversible".to_string())
    } else if !m.has_down() {
        Some("it has no down.sql".to_string())
    } else {
        let later: Vec<String> = cx
            .db
            .tracking_rows()
            .await
            .map_err(ExecuteError::Db)?
            .into_iter()
            .filter(|r| r.version.as_str() > m.version.to_string().as_str() && !r.state.is_failed())
            .map(|r| format!("{}_{}", r.version, r.name))
            .collect();
        (!later.is_empty()).then(|| {
            format!(
                "{} {} applied after it",
                later.join(", "),
                if later.len() == 1 { "was" } else { "were" }
            )
        })
    };
    Ok(match why_not {
        None => Done::failed(format!("{what}: rolling back")).roll_back(format!("monitor: {what}")),
        Some(reason) => Done::failed(format!("{what}: NOT rolled back, because {reason}")).stop(format!(
            "{what}\n  keel did not roll {} back: {reason}; it stays applied\n  decide: fix forward, or restore the snapshot taken before the run (`keel snapshot restore`); the alert has gone out",
            m.id()
        )),
    })
}

/// The live status line, on a terminal only (plain lines otherwise).
fn live_line() -> Option<indicatif::ProgressBar> {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return None;
    }
    let b = indicatif::ProgressBar::new_spinner();
    b.enable_steady_tick(Duration::from_millis(250));
    Some(b)
}
