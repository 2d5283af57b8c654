//! Who a statement of keel's waits for, seen from a second connection.
//!
//! PostgreSQL names the sessions a backend waits for (`pg_blocking_pids`)
//! only while it waits; once `lock_timeout` cancels the statement the
//! answer is gone, and keel's own connection is busy until then. So while
//! a statement runs longer than half its `lock_timeout` (at most a
//! second), keel opens a second connection and looks, every quarter of the
//! lock_timeout (at most every second), until the statement ends; a lock
//! timeout then carries the last sessions it saw. A statement that ends
//! sooner costs one timer and no connection. The second connection, once
//! open, stays for the next statements (a retry looks at once).

use crate::db::{Blocker, LockWait};
use chrono::{DateTime, Utc};
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

/// What to watch: keel's backend, how to reach the server again, and the
/// lock_timeout that sets the pace.
pub(super) struct Watch<'a> {
    /// The URL as given (password included): only to connect.
    url: &'a str,
    pid: i32,
    lock_timeout: Duration,
    /// The second connection, opened at the first look.
    side: &'a mut Option<PgConnection>,
}

impl<'a> Watch<'a> {
    /// What to watch a statement of backend `pid` with, once keel set a
    /// lock_timeout (the fields of a [`super::Postgres`], borrowed apart
    /// from its connection). A lock_timeout of 0 waits for ever: no lock
    /// timeout to explain, nothing to watch.
    pub(super) fn of(
        url: &'a str,
        pid: i32,
        lock_timeout: Option<Duration>,
        side: &'a mut Option<PgConnection>,
    ) -> Option<Self> {
        Some(Watch {
            url,
            pid,
            lock_timeout: lock_timeout.filter(|t| !t.is_zero())?,
            side,
        })
    }
}

/// The sessions `$1` waits for, and the lock it wants.
const BLOCKERS: &str = "SELECT b.pid, b.usename::text, b.application_name::text, \
       CASE WHEN b.client_addr IS NULL THEN 'local socket' \
            ELSE host(b.client_addr) || ':' || b.client_port END, \
       b.state::text, b.xact_start, b.query::text, \
       (SELECT l.mode || ' on ' || coalesce(l.relation::regclass::text, l.locktype) \
          FROM pg_locks l WHERE l.pid = $1 AND NOT l.granted LIMIT 1) \
     FROM pg_stat_activity b WHERE b.pid = ANY (pg_blocking_pids($1)) \
     ORDER BY b.xact_start NULLS LAST, b.pid";

type Row = (
    i32,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<String>,
    Option<String>,
);

/// Runs `statement`, watching who it waits for when it runs long.
pub(super) async fn during<F: Future>(
    statement: F,
    watch: Option<Watch<'_>>,
) -> (F::Output, Option<LockWait>) {
    let Some(mut w) = watch else {
        return (statement.await, None);
    };
    let bounded = |d: Duration| d.clamp(Duration::from_millis(10), Duration::from_secs(1));
    let (mut pause, every) = (bounded(w.lock_timeout / 2), bounded(w.lock_timeout / 4));
    let mut statement = std::pin::pin!(statement);
    let mut seen = None;
    loop {
        tokio::select! {
            out = &mut statement => return (out, seen),
            () = tokio::time::sleep(pause) => {}
        }
        pause = every;
        tokio::select! {
            out = &mut statement => return (out, seen),
            found = look(&mut w) => {
                if found.is_some() {
                    seen = found;
                }
            }
        }
    }
}

/// One look; `None` when nothing blocks the statement now or the second
/// connection cannot tell (it never stops the run).
async fn look(w: &mut Watch<'_>) -> Option<LockWait> {
    if w.side.is_none() {
        let options = PgConnectOptions::from_str(w.url)
            .ok()?
            .application_name("keel lock watch")
            .disable_statement_logging();
        *w.side = Some(options.connect().await.ok()?);
    }
    let rows = sqlx::query_as::<_, Row>(BLOCKERS)
        .bind(w.pid)
        .fetch_all(w.side.as_mut()?)
        .await;
    let Ok(rows) = rows else {
        // A broken second connection is opened again at the next look.
        *w.side = None;
        return None;
    };
    let wanted = rows.first().and_then(|r| r.7.as_deref()).map(lock_words);
    let blockers: Vec<Blocker> = rows
        .into_iter()
        .map(|(pid, user, application, client, state, since, query, _)| {
            Blocker::from_row((pid, user, application, client, state, since, query))
        })
        .collect();
    (!blockers.is_empty()).then_some(LockWait { wanted, blockers })
}

/// `AccessExclusiveLock on accounts` → `an ACCESS EXCLUSIVE lock on accounts`.
fn lock_words(wanted: &str) -> String {
    let (mode, on) = wanted.split_once(" on ").unwrap_or((wanted, ""));
    let mut words = String::new();
    for c in mode.trim_end_matches("Lock").chars() {
        if c.is_uppercase() && !words.is_empty() {
            words.push(' ');
        }
        words.push(c.to_ascii_uppercase());
    }
    let article = if words.starts_with(['A', 'E']) {
        "an"
    } else {
        "a"
    };
    match on {
        "" => format!("{article} {words} lock"),
        // A row another transaction changed (or locked): its transaction id.
        "transactionid" | "tuple" => {
            format!("{article} {words} lock on rows another transaction holds")
        }
        on => format!("{article} {words} lock on {on}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_modes_read_as_in_the_documentation() {
        assert_eq!(
            lock_words("AccessExclusiveLock on accounts"),
            "an ACCESS EXCLUSIVE lock on accounts"
        );
        assert_eq!(
            lock_words("ShareRowExclusiveLock on app.t"),
            "a SHARE ROW EXCLUSIVE lock on app.t"
        );
        assert_eq!(lock_words("ExclusiveLock"), "an EXCLUSIVE lock");
    }
}
