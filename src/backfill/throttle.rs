//! Before each batch: is the server in a state to take one more? A
//! replica further behind than `max_replica_lag` (measured so that a
//! replica whose replay stopped keeps falling behind, see
//! [`crate::db::LagClock`]), sessions waiting on a lock of the backfill's
//! table, or more active sessions than `max_active_sessions` make the
//! backfill pause, say why, and look again every second until it is clear.
//! A server found ready is looked at again a second later at the soonest.

use crate::db::{Database, DbError, LagClock, Pulse};
use crate::migration::meta::Throttle;
use serde::Serialize;
use std::time::{Duration, Instant};

pub(crate) const DEFAULT_MAX_REPLICA_LAG: Duration = Duration::from_secs(5);
pub(crate) const DEFAULT_MAX_ACTIVE_SESSIONS: u32 = 64;
/// How often a paused backfill looks again.
const LOOK_AGAIN: Duration = Duration::from_secs(1);
/// How often a long pause is said again.
const SAY_AGAIN: Duration = Duration::from_secs(10);

/// One pause: why, and for how long.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Pause {
    pub(crate) reason: String,
    #[serde(serialize_with = "super::ms")]
    pub(crate) waited: Duration,
}

/// The throttle of one backfill run.
pub(crate) struct Gate {
    max_lag: Duration,
    max_active: u32,
    table: String,
    lag: LagClock,
    /// The server cannot say (SQLite, or no rights to the statistics).
    blind: bool,
    /// Why it could not, when that was an error: said once by the caller.
    pub(crate) went_blind: Option<String>,
    /// When the server was last found ready: batches come every few
    /// hundred milliseconds, the signals move in seconds, so one look a
    /// second is enough (three queries a batch would add up on a long
    /// backfill).
    clear_at: Option<Instant>,
}

impl Gate {
    pub(crate) fn new(t: Throttle, table: &str) -> Gate {
        Gate {
            max_lag: t.max_replica_lag.unwrap_or(DEFAULT_MAX_REPLICA_LAG),
            max_active: t.max_active_sessions.unwrap_or(DEFAULT_MAX_ACTIVE_SESSIONS),
            table: bare(table),
            lag: LagClock::default(),
            blind: false,
            went_blind: None,
            clear_at: None,
        }
    }

    /// Why the next batch should wait, if it should. A server that cannot
    /// say (SQLite; no rights to the statistics) is not asked again, and
    /// an error is said once: the backfill goes on unthrottled.
    async fn reason(&mut self, db: &mut dyn Database) -> Result<Option<String>, DbError> {
        if self.blind {
            return Ok(None);
        }
        match db.pulse().await {
            Ok(Some(p)) => Ok(self.judge(&p)),
            Ok(None) => {
                self.blind = true;
                Ok(None)
            }
            Err(e) => {
                self.blind = true;
                self.went_blind = Some(format!(
                    "cannot read the server's statistics ({e}): going on without pausing for replicas, lock waits or load; grant pg_monitor to keel's role to have them"
                ));
                Ok(None)
            }
        }
    }

    fn judge(&mut self, p: &Pulse) -> Option<String> {
        let lags = self.lag.lags(p);
        if let Some((name, lag)) = lags.iter().max_by_key(|(_, l)| *l)
            && *lag > self.max_lag
        {
            return Some(format!(
                "replica {name} is {:.1}s behind (max_replica_lag {})",
                lag.as_secs_f64(),
                humantime::format_duration(self.max_lag)
            ));
        }
        let waiting: Vec<_> = p
            .waiting
            .iter()
            .filter(|w| w.relation.as_deref().map(bare).as_deref() == Some(self.table.as_str()))
            .collect();
        if let Some(w) = waiting.first() {
            return Some(format!(
                "{} session(s) wait on a lock of {}: {}",
                waiting.len(),
                self.table,
                w.describe()
            ));
        }
        if p.active > self.max_active {
            return Some(format!(
                "{} sessions are running statements (max_active_sessions {})",
                p.active, self.max_active
            ));
        }
        None
    }

    /// Waits while the server is not ready for the next batch, calling
    /// `said` with each new reason; returns the pauses it made.
    pub(crate) async fn wait(
        &mut self,
        db: &mut dyn Database,
        said: &mut dyn FnMut(&str, Duration),
    ) -> Result<Vec<Pause>, DbError> {
        if self.clear_at.is_some_and(|t| t.elapsed() < LOOK_AGAIN) {
            return Ok(Vec::new());
        }
        let mut pauses: Vec<Pause> = Vec::new();
        let mut since = Instant::now();
        let mut last_said = Instant::now();
        while let Some(reason) = self.reason(db).await? {
            match pauses.last_mut() {
                Some(last) if same_kind(&last.reason, &reason) => {
                    last.waited = since.elapsed();
                    last.reason = reason.clone();
                    // A long pause is said again now and then, not every second.
                    if last_said.elapsed() >= SAY_AGAIN {
                        said(&reason, since.elapsed());
                        last_said = Instant::now();
                    }
                }
                _ => {
                    since = Instant::now();
                    pauses.push(Pause {
                        reason: reason.clone(),
                        waited: Duration::ZERO,
                    });
                    said(&reason, Duration::ZERO);
                    last_said = Instant::now();
                }
            }
            tokio::time::sleep(LOOK_AGAIN).await;
        }
        if let Some(last) = pauses.last_mut() {
            last.waited = since.elapsed();
        }
        self.clear_at = Some(Instant::now());
        Ok(pauses)
    }
}

/// The same cause (the figures in it change from look to look).
fn same_kind(a: &str, b: &str) -> bool {
    a.split(' ').take(2).eq(b.split(' ').take(2))
}

/// `public.users`, `"users"`, `users` → `users`: how the lock's relation
/// and the backfill's table are compared.
fn bare(name: &str) -> String {
    let name = name.strip_prefix("public.").unwrap_or(name);
    name.replace('"', "")
}
