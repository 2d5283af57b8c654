//! Who holds the one-runner-at-a-time lock, as a waiting run tells it.
//! Taking the lock is each dialect's (an advisory lock; a lock file).

use chrono::{DateTime, Utc};
use std::fmt;
use std::time::Duration;

/// How long a run waits for the run lock unless keel.toml
/// (`run_lock_wait`) or `--run-lock-wait` say otherwise: long enough for a
/// deploy's migrations to finish, short enough that a run stuck behind a
/// forgotten session fails inside a CI job's time limit.
pub const RUN_LOCK_WAIT: Duration = Duration::from_secs(10 * 60);

/// What came of waiting for the run lock.
#[derive(Debug)]
pub enum RunLock {
    /// This connection holds it now.
    Taken,
    /// Another run still held it when the wait ran out: who, when the
    /// database can tell.
    Busy(Option<LockHolder>),
}

/// Whether a run holds the run lock, asked without taking it.
#[derive(Debug)]
pub enum Runs {
    /// No run holds it.
    Idle,
    /// A run holds it: who, when the database can tell. On PostgreSQL this
    /// includes a backend whose keel was killed while the server still
    /// finishes its last statement (a COMMIT): until that backend is gone,
    /// what the tracking table says may still change.
    Running(Option<LockHolder>),
}

/// Who holds the run lock, as far as the database can tell; shown once to
/// a run that has to wait, so that an operator can tell a live run from
/// one whose keel was killed.
#[derive(Debug, Clone)]
pub struct LockHolder {
    /// PostgreSQL: the backend's pid; SQLite: the keel process's pid.
    pub pid: i64,
    /// PostgreSQL's `application_name` (keel sets `keel`).
    pub application: Option<String>,
    /// `address:port`, `local socket`, or (SQLite) the host keel runs on.
    pub client: Option<String>,
    /// PostgreSQL's `state`: `active`, `idle`, `idle in transaction`.
    pub state: Option<String>,
    /// When its current (or last) statement started; SQLite: when it took
    /// the lock.
    pub since: Option<DateTime<Utc>>,
    /// Its current (or last) statement, first line.
    pub query: Option<String>,
    /// The holder is a server backend that outlives its client (PostgreSQL).
    pub backend: bool,
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut facts = Vec::new();
        if let Some(a) = self.application.as_deref().filter(|a| !a.is_empty()) {
            facts.push(format!("application {a}"));
        }
        match &self.client {
            Some(c) if self.backend => facts.push(format!("client {c}")),
            Some(host) => facts.push(format!("on {host}")),
            None => {}
        }
        if let Some(s) = &self.state {
            facts.push(s.clone());
        }
        if let Some(t) = self.since {
            let ago = (Utc::now() - t).num_seconds().max(0) as u64;
            let what = if self.backend {
                "statement started"
            } else {
                "since"
            };
            facts.push(format!(
                "{what} {} UTC, {} ago",
                t.format("%Y-%m-%d %H:%M:%S"),
                humantime::format_duration(Duration::from_secs(ago))
            ));
        }
        let who = if self.backend {
            format!("PostgreSQL backend pid {}", self.pid)
        } else {
            format!("keel process {}", self.pid)
        };
        write!(f, "held by {who} ({})", facts.join(", "))?;
        if let Some(q) = &self.query {
            write!(f, ": {q}")?;
        }
        if self.backend {
            write!(
                f,
                "\nif the keel run that took it was killed, this backend lets the lock go when its statement ends (keel asks PostgreSQL 14+ to cancel it within a second); to end it now: SELECT pg_terminate_backend({})",
                self.pid
            )?;
        }
        Ok(())
    }
}

/// The statement text as shown to a waiter: its first line, at most 200
/// characters.
pub(super) fn first_line(query: &str) -> String {
    let line = query.trim().lines().next().unwrap_or_default();
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{} …", &line[..cut]),
        None if query.trim().lines().nth(1).is_some() => format!("{line} …"),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_shown_by_their_first_line() {
        assert_eq!(first_line("SELECT 1"), "SELECT 1");
        assert_eq!(first_line("  CREATE INDEX\n  ON t (a)"), "CREATE INDEX …");
        let long = "x".repeat(300);
        assert_eq!(first_line(&long), format!("{} …", "x".repeat(200)));
    }
}
