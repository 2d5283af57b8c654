//! The one-runner-at-a-time lock: who holds it, and (PostgreSQL) how to wait
//! for it without deadlocking with the run that holds it.

use super::DbError;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnection;
use std::fmt;
use std::time::Duration;

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
fn first_line(query: &str) -> String {
    let line = query.trim().lines().next().unwrap_or_default();
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{} …", &line[..cut]),
        None if query.trim().lines().nth(1).is_some() => format!("{line} …"),
        None => line.to_string(),
    }
}

/// Takes the session advisory lock `key`, polling.
///
/// A blocking `pg_advisory_lock` would wait inside one statement, and so
/// hold one snapshot, for as long as the holder runs. A `CREATE INDEX
/// CONCURRENTLY` in the holder's session waits, in its last phase, for
/// every transaction whose snapshot is older than its own to end: the
/// waiter waits for the holder and the holder for the waiter, and
/// PostgreSQL breaks the deadlock by killing one of them. Each
/// `pg_try_advisory_lock` is a statement of its own that ends at once, so
/// no snapshot of ours lives long enough to be waited for.
pub(super) async fn lock(
    conn: &mut PgConnection,
    url: &str,
    key: i64,
    on_wait: &(dyn for<'h> Fn(Option<&'h LockHolder>) + Sync),
) -> Result<(), DbError> {
    let mut pause = Duration::from_millis(20);
    let mut said = false;
    loop {
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| DbError::from_sqlx(e, url))?;
        if got {
            return Ok(());
        }
        if !said {
            let holder = holder(conn, url, key).await?;
            // Between the two statements the holder may have let go: try
            // again at once, and say nothing unless we wait.
            if holder.is_none() && pause == Duration::from_millis(20) {
                pause *= 2;
                continue;
            }
            on_wait(holder.as_ref());
            said = true;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// pid, application_name, client, state, query_start, query.
type HolderRow = (
    i32,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<String>,
);

/// The session holding advisory lock `key` in this database, from
/// `pg_locks` (a bigint key is stored as classid = high 32 bits, objid =
/// low 32 bits, objsubid = 1) joined to `pg_stat_activity`.
async fn holder(
    conn: &mut PgConnection,
    url: &str,
    key: i64,
) -> Result<Option<LockHolder>, DbError> {
    let row: Option<HolderRow> = sqlx::query_as(
        "SELECT a.pid, a.application_name::text, \
           CASE WHEN a.client_addr IS NULL THEN 'local socket' \
                ELSE host(a.client_addr) || ':' || a.client_port END, \
           a.state::text, a.query_start, a.query::text \
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted \
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND l.classid = ($1 >> 32)::oid AND l.objid = ($1 & 4294967295)::oid \
           AND l.objsubid = 1 \
         LIMIT 1",
    )
    .bind(key)
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| DbError::from_sqlx(e, url))?;
    Ok(row.map(
        |(pid, application, client, state, since, query)| LockHolder {
            pid: pid.into(),
            application,
            client,
            state,
            since,
            query: query.as_deref().map(first_line).filter(|q| !q.is_empty()),
            backend: true,
        },
    ))
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
