//! Who keeps a statement waiting for a lock. PostgreSQL names them only
//! while the statement waits (`pg_blocking_pids` of its backend), so keel
//! looks from a second connection while a statement runs long (see
//! `postgres/lock_watch.rs`) and a lock timeout carries what it saw.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// A session that held up a statement of keel's: one of
/// `pg_blocking_pids`, described from `pg_stat_activity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocker {
    /// Its backend's pid: what `pg_terminate_backend` takes.
    pub pid: i64,
    /// The role it is logged in as.
    pub user: Option<String>,
    /// Its `application_name`.
    pub application: Option<String>,
    /// `address:port`, or `local socket`.
    pub client: Option<String>,
    /// `active`, `idle in transaction`, …
    pub state: Option<String>,
    /// When its transaction began: it holds its locks since then at most.
    pub transaction_start: Option<DateTime<Utc>>,
    /// The start of its current (or last) statement, on one line.
    pub query: Option<String>,
}

/// What a statement waited for, and who held it up, as last seen before
/// the wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockWait {
    /// The lock it waited for, `AccessExclusiveLock on accounts`.
    pub wanted: Option<String>,
    /// The sessions it waited for; never empty.
    pub blockers: Vec<Blocker>,
}

/// Query texts are shown up to this many characters.
const QUERY_CHARS: usize = 120;

/// A query's text as keel shows it: whitespace folded, cut at
/// [`QUERY_CHARS`], and nothing of a statement that mentions a password.
pub(crate) fn shown_query(query: &str) -> Option<String> {
    let folded = query.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.is_empty() {
        return None;
    }
    if folded.to_lowercase().contains("password") {
        return Some("(not shown: it mentions a password)".into());
    }
    Some(match folded.char_indices().nth(QUERY_CHARS) {
        Some((cut, _)) => format!("{} …", &folded[..cut]),
        None => folded,
    })
}

/// What both of keel's blocker queries return for a session: pid, user,
/// application, client address, state, transaction start, query.
pub(crate) type BlockerRow = (
    i32,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<String>,
);

impl Blocker {
    /// A blocker as a query read it: an empty application name is none,
    /// and the query is shown on one line.
    pub(crate) fn from_row(
        (pid, user, application, client, state, transaction_start, query): BlockerRow,
    ) -> Blocker {
        Blocker {
            pid: pid.into(),
            user,
            application: application.filter(|a| !a.is_empty()),
            client,
            state,
            transaction_start,
            query: query.as_deref().and_then(shown_query),
        }
    }
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut facts = Vec::new();
        if let Some(u) = &self.user {
            facts.push(format!("user {u}"));
        }
        if let Some(a) = self.application.as_deref().filter(|a| !a.is_empty()) {
            facts.push(format!("application {a}"));
        }
        if let Some(c) = &self.client {
            facts.push(c.clone());
        }
        if let Some(s) = &self.state {
            facts.push(s.clone());
        }
        if let Some(t) = self.transaction_start {
            let ago = (Utc::now() - t).num_seconds().max(0) as u64;
            facts.push(format!(
                "transaction open since {} UTC, {} ago",
                t.format("%Y-%m-%d %H:%M:%S"),
                humantime::format_duration(Duration::from_secs(ago))
            ));
        }
        write!(f, "pid {} ({})", self.pid, facts.join(", "))?;
        if let Some(q) = &self.query {
            write!(f, ": {q}")?;
        }
        Ok(())
    }
}

impl fmt::Display for LockWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.wanted {
            Some(w) => write!(f, "it waited for {w}, blocked by")?,
            None => write!(f, "it waited for a lock, blocked by")?,
        }
        for b in &self.blockers {
            write!(f, "\n  {b}")?;
        }
        Ok(())
    }
}

/// After a lock timeout: the sessions keel saw `error` wait for (see
/// [`super::DbError::lock_wait`]) and what to do about them, or how to
/// find them when the wait was too short to see.
pub fn who_held_it(error: &super::DbError) -> String {
    let pids: Vec<String> = error
        .lock_wait
        .iter()
        .flat_map(|w| &w.blockers)
        .map(|b| b.pid.to_string())
        .collect();
    match pids.as_slice() {
        [] => "other sessions held the locks it needs longer than lock_timeout on every try \
               (each wait was too short for keel to see who); while it waits, \
               `SELECT pid, pg_blocking_pids(pid), state, left(query, 60) FROM pg_stat_activity \
               WHERE cardinality(pg_blocking_pids(pid)) > 0` shows who blocks whom"
            .to_string(),
        [pid] => format!(
            "session {pid} (above) held the lock it needs longer than lock_timeout on the last try; \
             let it finish, or end it with `SELECT pg_terminate_backend({pid})` if it is stuck \
             (an `idle in transaction` session that nobody will commit)"
        ),
        many => format!(
            "sessions {} (above) held the locks it needs longer than lock_timeout on the last try; \
             let them finish, or end one that is stuck with `SELECT pg_terminate_backend(PID)`",
            many.join(", ")
        ),
    }
}

/// A database error as the operator reads it at the end of a command: a
/// lock timeout of keel's own reads (the catalog, table sizes, row counts,
/// outside any migration) gets its fix.
pub struct WithLockFix<'a>(pub &'a super::DbError);

impl fmt::Display for WithLockFix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        if self.0.is_lock_timeout() {
            write!(
                f,
                "\n  fix: keel's read of the database waited for a lock: {}; or raise lock_timeout in keel.toml",
                who_held_it(self.0)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_folded_cut_and_never_show_a_password() {
        assert_eq!(
            shown_query("UPDATE t\n   SET a = 1").as_deref(),
            Some("UPDATE t SET a = 1")
        );
        assert_eq!(shown_query("  \n").as_deref(), None);
        let long = format!("SELECT {}", "x".repeat(300));
        assert_eq!(
            shown_query(&long).map(|q| q.chars().count()),
            Some(QUERY_CHARS + 2)
        );
        assert_eq!(
            shown_query("ALTER ROLE app PASSWORD 'hunter2'").as_deref(),
            Some("(not shown: it mentions a password)")
        );
    }
}
