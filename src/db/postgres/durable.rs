//! When a PostgreSQL commit is on disk: keel commits most migrations with
//! `synchronous_commit = off` and must know when they are durable before it
//! says they are applied.

use super::DbError;
use sqlx::postgres::PgConnection;
use std::time::{Duration, Instant};

/// Run once per connection: a server (or role) configured with
/// `synchronous_commit = off` would make every commit of keel's, even the
/// ones it reports as durable, return before the WAL is flushed. keel's own
/// session turns it back on; a stronger setting (remote_apply, …) stays.
pub(super) const SESSION_SETUP: &str = "SELECT set_config('synchronous_commit', 'on', false) \
     WHERE current_setting('synchronous_commit') = 'off'";

/// Waits until the WAL is flushed past everything this session has
/// written so far, i.e. past its asynchronous commits: the WAL writer does
/// that within a few `wal_writer_delay` (200 ms by default). `false` when
/// `timeout` passed first.
pub(super) async fn wait_flushed(
    conn: &mut PgConnection,
    url: &str,
    timeout: Duration,
) -> Result<bool, DbError> {
    let target: String = sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| DbError::from_sqlx(e, url))?;
    let deadline = Instant::now() + timeout;
    loop {
        let flushed: bool = sqlx::query_scalar("SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn")
            .bind(&target)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| DbError::from_sqlx(e, url))?;
        if flushed {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
