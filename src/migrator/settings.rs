//! The limits a run applies: project-wide defaults from keel.toml and the
//! command line, overridden per migration by migration.toml. Resolved here
//! and nowhere else.

use crate::db::Timeouts;
use crate::migration::Migration;
use std::time::Duration;

/// Project-wide defaults, overridden per migration by migration.toml.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunSettings {
    pub(crate) lock_timeout: Duration,
    pub(crate) statement_timeout: Duration,
    pub(crate) retries: u32,
    /// First back-off after a lock timeout; doubles on each retry.
    pub(crate) backoff: Duration,
    /// Backfill batch size and pause from the command line; they win over
    /// migration.toml's `[backfill]`.
    pub(crate) batch_size: Option<u64>,
    pub(crate) batch_delay: Option<Duration>,
    /// How long a run waits for the run lock before it gives up (exit 4).
    pub(crate) run_lock_wait: Duration,
    /// Keep the schema each migration starts from, so that `down` can
    /// compare (`keel test` compares on its own).
    pub(crate) keep_schema: bool,
    /// The database is a scratch one that `keel test` made and drops: no
    /// commit waits for its flush to disk, since a crash loses nothing
    /// anyone keeps.
    pub(crate) throwaway: bool,
    /// keel.toml's `[backfill]`: when backfills pause.
    pub(crate) throttle: crate::migration::meta::Throttle,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            lock_timeout: crate::db::DEFAULT_LOCK_TIMEOUT,
            statement_timeout: Duration::from_secs(3600),
            retries: 3,
            backoff: Duration::from_millis(500),
            batch_size: None,
            batch_delay: None,
            run_lock_wait: crate::db::RUN_LOCK_WAIT,
            keep_schema: true,
            throwaway: false,
            throttle: Default::default(),
        }
    }
}

impl RunSettings {
    /// The project's `lock_timeout`, `statement_timeout` and `retries`
    /// (keel.toml's) over keel's defaults; the command line may change them
    /// further, migration.toml per migration.
    pub(crate) fn project(
        lock_timeout: Option<Duration>,
        statement_timeout: Option<Duration>,
        retries: Option<u32>,
    ) -> RunSettings {
        let d = RunSettings::default();
        RunSettings {
            lock_timeout: lock_timeout.unwrap_or(d.lock_timeout),
            statement_timeout: statement_timeout.unwrap_or(d.statement_timeout),
            retries: retries.unwrap_or(d.retries),
            ..d
        }
    }

    /// The `lock_timeout` and `statement_timeout` `m` runs with.
    pub(crate) fn timeouts(&self, m: &Migration) -> Timeouts {
        Timeouts {
            lock: m.meta.lock_timeout.unwrap_or(self.lock_timeout),
            statement: m.meta.statement_timeout.unwrap_or(self.statement_timeout),
        }
    }

    /// The timeouts of work that belongs to no one migration (a restore,
    /// the trial run of a whole pending set).
    pub(crate) fn project_timeouts(&self) -> Timeouts {
        Timeouts {
            lock: self.lock_timeout,
            statement: self.statement_timeout,
        }
    }

    /// How often `m` is tried again after a lock timeout, deadlock or
    /// serialization failure.
    pub(crate) fn retries(&self, m: &Migration) -> u32 {
        m.meta.retries.unwrap_or(self.retries)
    }

    /// The wait before retry `attempt` (1-based): the back-off, doubling.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        self.backoff * 2u32.pow(attempt.saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrator::fixtures::migration;

    #[test]
    fn the_project_sets_what_it_names_and_the_defaults_stay() {
        let s = RunSettings::project(Some(Duration::from_secs(5)), None, Some(0));
        let d = RunSettings::default();
        assert_eq!(s.lock_timeout, Duration::from_secs(5));
        assert_eq!(s.retries, 0);
        assert_eq!(s.statement_timeout, d.statement_timeout);
        assert_eq!(s.backoff, d.backoff);
    }

    #[test]
    fn migration_toml_wins_over_the_project() {
        let s = RunSettings::default();
        let plain = migration(1);
        assert_eq!(s.timeouts(&plain).lock, s.lock_timeout);
        assert_eq!(s.retries(&plain), s.retries);

        let mut own = migration(2);
        std::sync::Arc::make_mut(&mut own.meta).lock_timeout = Some(Duration::from_millis(250));
        std::sync::Arc::make_mut(&mut own.meta).retries = Some(7);
        assert_eq!(s.timeouts(&own).lock, Duration::from_millis(250));
        assert_eq!(s.timeouts(&own).statement, s.statement_timeout);
        assert_eq!(s.retries(&own), 7);
    }

    #[test]
    fn the_backoff_doubles_from_the_first_retry() {
        let s = RunSettings::default();
        let waits: Vec<u128> = (0..=4).map(|a| s.backoff(a).as_millis()).collect();
        assert_eq!(waits, [500, 500, 1000, 2000, 4000]);
    }
}
