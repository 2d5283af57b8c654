//! The run lock on PostgreSQL: a session advisory lock, taken by polling
//! so that a waiting run never deadlocks with the run that holds it.

use crate::db::run_lock::first_line;
use crate::db::{DbError, LockHolder, RunLock};
use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnection;
use std::time::Duration;

/// Key of the session advisory lock that makes runs one at a time
/// (the bytes of "keel" plus a fixed tag, so it will not collide by accident).
pub(super) const RUN_LOCK_KEY: i64 = 0x6b65_656c_0000_0001;

/// Takes the session advisory lock `key`, polling, for at most `wait`.
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
    wait: Duration,
    on_wait: &(dyn for<'h> Fn(Option<&'h LockHolder>) + Sync),
) -> Result<RunLock, DbError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut pause = Duration::from_millis(20);
    let mut said = false;
    loop {
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| DbError::from_sqlx(e, url))?;
        if got {
            return Ok(RunLock::Taken);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(RunLock::Busy(holder(conn, url, key).await?));
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
        tokio::time::sleep(pause.min(deadline - now)).await;
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
pub(super) async fn holder(
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
