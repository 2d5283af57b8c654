//! What a run may say it did. A transactional migration may commit with
//! `synchronous_commit = off` (PostgreSQL): the commit is atomic but its WAL
//! reaches disk a moment later, so a server crash in that moment loses it,
//! whole. keel commits that way for speed, and therefore reports a
//! migration applied (or reverted) only once a later commit was flushed: a
//! crash can then only lose migrations it never reported.

use super::error::{ConnectionLost, RunError};
use crate::migration::Migration;
use std::time::{Duration, Instant};

/// How long a run goes without a durable commit, at most (plus one
/// migration): the delay before an applied migration is reported.
pub(super) const DURABLE_EVERY: Duration = Duration::from_millis(200);

/// How long a run that stopped waits for its earlier commits to reach disk.
pub(super) const FLUSH_WAIT: Duration = Duration::from_secs(5);

pub(super) struct Ledger<'m> {
    reverting: bool,
    durable: Vec<&'m Migration>,
    unconfirmed: Vec<(&'m Migration, Duration)>,
    last_durable: Instant,
}

impl<'m> Ledger<'m> {
    pub(crate) fn new(reverting: bool) -> Ledger<'m> {
        Ledger {
            reverting,
            durable: Vec::new(),
            unconfirmed: Vec::new(),
            last_durable: Instant::now(),
        }
    }

    /// Whether the next commit should wait for its flush.
    pub(crate) fn due(&self) -> bool {
        self.last_durable.elapsed() >= DURABLE_EVERY
    }

    pub(crate) fn has_unconfirmed(&self) -> bool {
        !self.unconfirmed.is_empty()
    }

    pub(crate) fn committed_any(&self) -> bool {
        !self.durable.is_empty() || !self.unconfirmed.is_empty()
    }

    /// `m` committed, durably or not. A durable commit flushes the WAL up to
    /// itself, so everything committed before it is on disk too: returns
    /// those migrations, in order, for the caller to report.
    pub(crate) fn committed(
        &mut self,
        m: &'m Migration,
        took: Duration,
        durable: bool,
    ) -> Vec<(&'m Migration, Duration)> {
        self.unconfirmed.push((m, took));
        if durable { self.confirm() } else { Vec::new() }
    }

    /// Every commit so far is on disk.
    pub(crate) fn confirm(&mut self) -> Vec<(&'m Migration, Duration)> {
        self.last_durable = Instant::now();
        let confirmed = std::mem::take(&mut self.unconfirmed);
        self.durable.extend(confirmed.iter().map(|(m, _)| *m));
        confirmed
    }

    /// Turns a broken connection, however it surfaced, into a
    /// [`ConnectionLost`] that lists what this run made durable and what it
    /// committed without a confirmed flush. Other errors pass unchanged.
    pub(crate) fn explain(&self, e: RunError) -> RunError {
        if !e.is_connection_lost() {
            return e;
        }
        let mut lost = match e {
            RunError::ConnectionLost(c) => c,
            RunError::Db(error) => Box::new(ConnectionLost {
                error,
                doing: None,
                at: None,
                in_flight: None,
                reverting: self.reverting,
                durable: Vec::new(),
                unconfirmed: Vec::new(),
            }),
            RunError::Statement(s) => Box::new(ConnectionLost {
                doing: Some(format!(
                    "{} {}",
                    if self.reverting {
                        "reverting"
                    } else {
                        "applying"
                    },
                    s.migration
                )),
                at: Some(format!("{}:{}", s.file.display(), s.line)),
                in_flight: None,
                reverting: self.reverting,
                error: s.error,
                durable: Vec::new(),
                unconfirmed: Vec::new(),
            }),
            other => return other,
        };
        lost.durable = self.durable.iter().map(|m| m.id()).collect();
        lost.unconfirmed = self.unconfirmed.iter().map(|(m, _)| m.id()).collect();
        RunError::ConnectionLost(lost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{DbError, DbErrorKind};

    fn migration(n: u32) -> Migration {
        Migration {
            version: format!("202601010000{n:02}").parse().unwrap(),
            name: format!("m{n}"),
            dir: format!("migrations/202601010000{n:02}_m{n}").into(),
            up: String::new(),
            down: None,
            meta: Default::default(),
            checksum: "0".repeat(64),
        }
    }

    #[test]
    fn a_durable_commit_confirms_everything_before_it() {
        let ms: Vec<Migration> = (1..=4).map(migration).collect();
        let mut ledger = Ledger::new(false);
        let ms_ = Duration::from_millis(1);
        assert!(ledger.committed(&ms[0], ms_, false).is_empty());
        assert!(ledger.committed(&ms[1], ms_, false).is_empty());
        let confirmed: Vec<String> = ledger
            .committed(&ms[2], ms_, true)
            .iter()
            .map(|(m, _)| m.name.clone())
            .collect();
        assert_eq!(confirmed, ["m1", "m2", "m3"]);
        assert!(ledger.committed(&ms[3], ms_, false).is_empty());

        let lost = ledger.explain(RunError::Db(DbError::new(
            DbErrorKind::Connection,
            "the connection broke",
        )));
        let RunError::ConnectionLost(c) = &lost else {
            panic!("{lost:?}");
        };
        assert_eq!(c.durable.len(), 3);
        assert_eq!(c.unconfirmed, ["20260101000004_m4"]);
        let text = lost.to_string();
        assert!(
            text.contains("applied by this run and on disk: 20260101000001_m1, 20260101000002_m2, 20260101000003_m3"),
            "{text}"
        );
        assert!(
            text.contains("without a confirmed flush to disk (after a server crash they are pending again): 20260101000004_m4"),
            "{text}"
        );
        assert!(!text.contains("correct the SQL"), "{text}");
    }

    #[test]
    fn other_errors_pass_unchanged() {
        let ledger = Ledger::new(true);
        let e = ledger.explain(RunError::Db(DbError::new(DbErrorKind::Statement, "syntax")));
        assert!(matches!(e, RunError::Db(_)));
    }
}
