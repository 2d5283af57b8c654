//! The server's vital signs at one moment (PostgreSQL): transaction and
//! deadlock counters, sessions waiting on locks and who blocks them, and
//! each replica's replay position. The monitoring window after a guarded
//! run and the backfill's throttle read them; [`LagClock`] turns replay
//! positions into a lag that keeps growing when a replica stops replaying.

use chrono::{DateTime, Utc};
use std::time::Duration;

/// One reading of [`crate::db::Live::pulse`].
#[derive(Debug, Clone, PartialEq)]
pub struct Pulse {
    /// The server's clock when it was read.
    pub at: DateTime<Utc>,
    /// `pg_stat_database` of the current database (cumulative).
    pub commits: i64,
    pub rollbacks: i64,
    pub deadlocks: i64,
    /// `pg_current_wal_lsn()` in bytes from `0/0`.
    pub wal: i64,
    /// Sessions waiting on a lock, longest first.
    pub waiting: Vec<Waiter>,
    /// Other sessions running a statement now (`state = 'active'`).
    pub active: u32,
    /// `pg_stat_replication`, one per connected standby.
    pub replicas: Vec<Replica>,
}

/// A session waiting on a lock, and the sessions it waits for.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiter {
    pub pid: i32,
    /// How long its current wait has lasted (since its statement started).
    pub waited: Duration,
    /// The relation whose lock it waits for, as `regclass` prints it.
    pub relation: Option<String>,
    /// Who holds it up: pid, user, application, state, since when, query.
    pub blockers: Vec<crate::db::Blocker>,
}

/// A standby as the primary sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Replica {
    /// `application_name`, else the client address.
    pub name: String,
    /// `replay_lsn` in bytes from `0/0`; `None` before it reported one.
    pub replayed: Option<i64>,
    /// `replay_lag` as the server reports it (it stops growing when
    /// replay stops, so it is only a lower bound).
    pub reported_lag: Option<Duration>,
}

impl Waiter {
    /// `pid 123 waiting 4.2s, blocked by: …` for messages and records.
    pub fn describe(&self) -> String {
        format!(
            "pid {} waiting {:.1}s, blocked by {}",
            self.pid,
            self.waited.as_secs_f64(),
            if self.blockers.is_empty() {
                "(a session that has just ended)".to_string()
            } else {
                self.blockers
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        )
    }
}

/// How far behind each replica is, in time, from the WAL positions seen
/// at each reading: a replica is as far behind as the oldest reading
/// whose WAL it has not replayed. Unlike `replay_lag`, this grows while
/// replay is paused or stuck, and is 0 when it has replayed everything
/// (an idle primary has nothing to replay).
#[derive(Debug, Default)]
pub struct LagClock {
    /// (server time, WAL position) of each reading, oldest first; readings
    /// every replica has replayed are dropped.
    seen: Vec<(DateTime<Utc>, i64)>,
}

impl LagClock {
    /// Takes in a reading and returns each replica's lag at it.
    pub fn lags(&mut self, p: &Pulse) -> Vec<(String, Duration)> {
        self.seen.push((p.at, p.wal));
        let lags: Vec<(String, Duration)> = p
            .replicas
            .iter()
            .map(|r| (r.name.clone(), self.lag(p, r)))
            .collect();
        // What the slowest replica has replayed is history for all.
        let slowest = p.replicas.iter().map(|r| r.replayed.unwrap_or(0)).min();
        if let Some(slowest) = slowest {
            let keep_from = self
                .seen
                .iter()
                .position(|(_, wal)| *wal > slowest)
                .unwrap_or(self.seen.len() - 1);
            self.seen.drain(..keep_from);
        }
        lags
    }

    fn lag(&self, p: &Pulse, r: &Replica) -> Duration {
        let reported = r.reported_lag.unwrap_or_default();
        let Some(replayed) = r.replayed else {
            return reported;
        };
        if replayed >= p.wal {
            return Duration::ZERO;
        }
        // The first reading whose WAL the replica has not replayed: what
        // it still has to replay was written by then.
        let since = self
            .seen
            .iter()
            .find(|(_, wal)| *wal > replayed)
            .map_or(p.at, |(at, _)| *at);
        let ours = (p.at - since).to_std().unwrap_or_default();
        ours.max(reported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pulse(secs: i64, wal: i64, replayed: i64) -> Pulse {
        Pulse {
            at: DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap(),
            commits: 0,
            rollbacks: 0,
            deadlocks: 0,
            wal,
            waiting: Vec::new(),
            active: 0,
            replicas: vec![Replica {
                name: "r1".into(),
                replayed: Some(replayed),
                reported_lag: None,
            }],
        }
    }

    #[test]
    fn a_paused_replica_falls_further_behind_with_every_reading() {
        let mut clock = LagClock::default();
        assert_eq!(clock.lags(&pulse(0, 100, 100))[0].1, Duration::ZERO);
        // Replay stops at 100 while the primary writes on.
        assert_eq!(clock.lags(&pulse(5, 200, 100))[0].1, Duration::ZERO);
        assert_eq!(
            clock.lags(&pulse(10, 300, 100))[0].1,
            Duration::from_secs(5)
        );
        assert_eq!(
            clock.lags(&pulse(20, 300, 100))[0].1,
            Duration::from_secs(15)
        );
        // It catches up to what was written at 10 s, then to everything.
        assert_eq!(
            clock.lags(&pulse(21, 300, 200))[0].1,
            Duration::from_secs(11)
        );
        assert_eq!(clock.lags(&pulse(22, 300, 300))[0].1, Duration::ZERO);
    }

    #[test]
    fn an_idle_primary_has_nothing_to_replay() {
        let mut clock = LagClock::default();
        for s in 0..5 {
            assert_eq!(clock.lags(&pulse(s * 10, 100, 100))[0].1, Duration::ZERO);
        }
        assert_eq!(clock.seen.len(), 1);
    }

    #[test]
    fn the_servers_own_lag_is_a_lower_bound() {
        let mut clock = LagClock::default();
        let mut p = pulse(0, 200, 100);
        p.replicas[0].reported_lag = Some(Duration::from_secs(7));
        assert_eq!(clock.lags(&p)[0].1, Duration::from_secs(7));
    }
}
