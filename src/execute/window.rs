//! The monitoring window's judgement: one sample's readings (health URL,
//! smoke queries, the server's pulse) against the environment's
//! thresholds and the rates before the migration. Pure: the step in
//! `steps/monitor.rs` reads, this decides.

use crate::config::Thresholds;
use crate::db::{LagClock, Pulse};
use std::time::Duration;

/// Rates between two readings of the server's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Rates {
    pub(crate) rollbacks_per_s: f64,
    pub(crate) deadlocks_per_min: f64,
}

impl Rates {
    /// Between `a` and the later `b`; `None` when no time passed.
    pub(crate) fn between(a: &Pulse, b: &Pulse, own_rollbacks: u64) -> Option<Rates> {
        let secs = (b.at - a.at).as_seconds_f64();
        if secs <= 0.0 {
            return None;
        }
        // keel's own smoke queries roll back: they are not the application's.
        let rollbacks = (b.rollbacks - a.rollbacks - own_rollbacks as i64).max(0) as f64;
        let deadlocks = (b.deadlocks - a.deadlocks).max(0) as f64;
        Some(Rates {
            rollbacks_per_s: rollbacks / secs,
            deadlocks_per_min: deadlocks / secs * 60.0,
        })
    }
}

/// What one sample saw, and what of it is over the limits.
#[derive(Debug, Default)]
pub(crate) struct Sample {
    /// What was read, one phrase each.
    pub(crate) seen: Vec<String>,
    /// What is over its threshold; any is a breach.
    pub(crate) breaches: Vec<String>,
}

impl Sample {
    pub(crate) fn summary(&self) -> String {
        let seen = self.seen.join("; ");
        if self.breaches.is_empty() {
            seen
        } else {
            format!("{seen}; BREACH: {}", self.breaches.join("; "))
        }
    }
}

/// The window's memory from one sample to the next.
pub(crate) struct Judge {
    thresholds: Thresholds,
    /// The application's rates before the migration (0 when unknown).
    before: Rates,
    last: Option<Pulse>,
    lag: LagClock,
    failing_in_a_row: u32,
}

impl Judge {
    pub(crate) fn new(thresholds: Thresholds, before: Option<Rates>, last: Option<Pulse>) -> Judge {
        Judge {
            thresholds,
            before: before.unwrap_or_default(),
            last,
            lag: LagClock::default(),
            failing_in_a_row: 0,
        }
    }

    /// Judges one sample: `checks` are the health URL's and smoke queries'
    /// results (ok, what it said); `own_rollbacks` how many transactions
    /// keel rolled back itself since the last reading.
    pub(crate) fn sample(
        &mut self,
        checks: &[(bool, String)],
        pulse: Option<Pulse>,
        own_rollbacks: u64,
    ) -> Sample {
        let t = &self.thresholds;
        let mut s = Sample::default();
        let failing: Vec<&String> = checks.iter().filter(|c| !c.0).map(|c| &c.1).collect();
        if failing.is_empty() {
            self.failing_in_a_row = 0;
            if !checks.is_empty() {
                s.seen.push(format!("{} check(s) ok", checks.len()));
            }
        } else {
            self.failing_in_a_row += 1;
            let what = failing
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            s.seen.push(format!(
                "failing: {what} ({} sample(s) in a row)",
                self.failing_in_a_row
            ));
            if self.failing_in_a_row >= t.failures {
                s.breaches.push(format!(
                    "{what}: failed {} samples in a row (threshold {})",
                    self.failing_in_a_row, t.failures
                ));
            }
        }
        let Some(p) = pulse else {
            return s;
        };
        if let Some(r) = self
            .last
            .as_ref()
            .and_then(|last| Rates::between(last, &p, own_rollbacks))
        {
            let b = self.before;
            s.seen.push(format!(
                "rollbacks {:.1}/s (before {:.1}/s), deadlocks {:.1}/min (before {:.1}/min)",
                r.rollbacks_per_s, b.rollbacks_per_s, r.deadlocks_per_min, b.deadlocks_per_min
            ));
            if r.rollbacks_per_s - b.rollbacks_per_s > t.rollbacks_per_s {
                s.breaches.push(format!(
                    "rollbacks at {:.1}/s, {:.1}/s over the {:.1}/s before the migration (threshold {}/s more)",
                    r.rollbacks_per_s,
                    r.rollbacks_per_s - b.rollbacks_per_s,
                    b.rollbacks_per_s,
                    t.rollbacks_per_s
                ));
            }
            if r.deadlocks_per_min - b.deadlocks_per_min > t.deadlocks_per_min {
                s.breaches.push(format!(
                    "deadlocks at {:.1}/min (before {:.1}/min; threshold {}/min more)",
                    r.deadlocks_per_min, b.deadlocks_per_min, t.deadlocks_per_min
                ));
            }
        }
        s.seen
            .push(format!("{} session(s) waiting on locks", p.waiting.len()));
        if !p.waiting.is_empty() && p.waiting.len() >= t.lock_waiters {
            let longest = p.waiting[0].describe();
            s.breaches.push(format!(
                "{} sessions waiting on locks (threshold {}); the longest: {longest}",
                p.waiting.len(),
                t.lock_waiters
            ));
        }
        let lags = self.lag.lags(&p);
        if !lags.is_empty() {
            s.seen.push(format!(
                "replica lag {}",
                lags.iter()
                    .map(|(name, lag)| format!("{name} {}", secs(*lag)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for (name, lag) in &lags {
            if *lag > t.replica_lag {
                s.breaches.push(format!(
                    "replica {name} is {} behind (threshold {})",
                    secs(*lag),
                    secs(t.replica_lag)
                ));
            }
        }
        self.last = Some(p);
        s
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn pulse(secs: i64, rollbacks: i64, deadlocks: i64) -> Pulse {
        Pulse {
            at: DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap(),
            commits: 0,
            rollbacks,
            deadlocks,
            wal: 0,
            waiting: Vec::new(),
            active: 0,
            replicas: Vec::new(),
        }
    }

    #[test]
    fn one_failed_check_is_noise_two_in_a_row_are_a_breach() {
        let mut j = Judge::new(Thresholds::default(), None, None);
        let bad = [(false, "http://app/health answered 503, not 200".to_string())];
        let good = [(true, "ok".to_string())];
        assert!(j.sample(&bad, None, 0).breaches.is_empty());
        assert!(j.sample(&good, None, 0).breaches.is_empty());
        assert!(j.sample(&bad, None, 0).breaches.is_empty());
        let s = j.sample(&bad, None, 0);
        assert_eq!(
            s.breaches,
            ["http://app/health answered 503, not 200: failed 2 samples in a row (threshold 2)"]
        );
        assert!(
            s.summary().starts_with("failing: ") && s.summary().contains("; BREACH: "),
            "{}",
            s.summary()
        );
    }

    #[test]
    fn rates_are_judged_against_the_rates_before_and_keels_own_rollbacks_do_not_count() {
        let before = Rates::between(&pulse(0, 0, 0), &pulse(10, 20, 0), 0);
        assert_eq!(before.unwrap().rollbacks_per_s, 2.0);
        let mut j = Judge::new(Thresholds::default(), before, Some(pulse(10, 20, 0)));
        // 6/s, of which 2/s keel's own: 4/s, 2/s over before.
        assert!(
            j.sample(&[], Some(pulse(20, 80, 0)), 20)
                .breaches
                .is_empty()
        );
        // 10/s: 8/s over before.
        let s = j.sample(&[], Some(pulse(30, 180, 0)), 0);
        assert_eq!(s.breaches.len(), 1, "{s:?}");
        assert!(s.breaches[0].starts_with("rollbacks at 10.0/s"), "{s:?}");
        let s = j.sample(&[], Some(pulse(90, 180, 3)), 0);
        assert!(s.breaches[0].starts_with("deadlocks at 3.0/min"), "{s:?}");
    }
}
