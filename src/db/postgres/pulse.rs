//! [`crate::db::Pulse`] read from PostgreSQL's statistics views: three
//! small queries, cheap enough to run every few seconds on a busy server.

use super::Postgres;
use crate::db::{Blocker, DbError, Pulse, Replica, Waiter};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The clock, the database's counters, and the WAL position (on a standby,
/// what it has replayed).
const COUNTERS: &str = "\
SELECT clock_timestamp(), d.xact_commit, d.xact_rollback, d.deadlocks,
       (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END
        - '0/0'::pg_lsn)::bigint,
       (SELECT count(*) FROM pg_stat_activity a
         WHERE a.state = 'active' AND a.pid <> pg_backend_pid() AND a.backend_type = 'client backend')::int
FROM pg_stat_database d WHERE d.datname = current_database()";

/// Each session of this database waiting on a lock, with one row per
/// session it waits for (none when the holder has just gone).
const WAITING: &str = "\
SELECT w.pid, extract(epoch FROM clock_timestamp() - coalesce(w.query_start, w.backend_start))::float8,
       (SELECT l.relation::regclass::text FROM pg_locks l
         WHERE l.pid = w.pid AND NOT l.granted AND l.relation IS NOT NULL LIMIT 1),
       b.pid, b.usename::text, b.application_name::text,
       CASE WHEN b.client_addr IS NULL THEN 'local socket'
            ELSE host(b.client_addr) || ':' || b.client_port END,
       b.state::text, b.xact_start, b.query::text
FROM pg_stat_activity w
LEFT JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS bp(pid) ON true
LEFT JOIN pg_stat_activity b ON b.pid = bp.pid
WHERE w.wait_event_type = 'Lock' AND w.pid <> pg_backend_pid() AND w.datname = current_database()
ORDER BY 2 DESC, w.pid, b.xact_start NULLS LAST, b.pid";

/// Every connected standby's replay position and the lag it reports.
const REPLICAS: &str = "\
SELECT coalesce(nullif(application_name, ''), host(client_addr), 'pid ' || pid)::text,
       (replay_lsn - '0/0'::pg_lsn)::bigint, extract(epoch FROM replay_lag)::float8
FROM pg_stat_replication ORDER BY 1";

type WaitRow = (
    i32,
    f64,
    Option<String>,
    Option<i32>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<String>,
);

impl Postgres {
    pub(super) async fn read_pulse(&mut self) -> Result<Pulse, DbError> {
        let (at, commits, rollbacks, deadlocks, wal, active): (
            DateTime<Utc>,
            i64,
            i64,
            i64,
            i64,
            i32,
        ) = sqlx::query_as(COUNTERS)
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        let rows: Vec<WaitRow> = sqlx::query_as(WAITING)
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        let mut waiting: Vec<Waiter> = Vec::new();
        for (pid, waited, relation, b_pid, user, application, client, state, since, query) in rows {
            if waiting.last().is_none_or(|w| w.pid != pid) {
                waiting.push(Waiter {
                    pid,
                    waited: Duration::from_secs_f64(waited.max(0.0)),
                    relation,
                    blockers: Vec::new(),
                });
            }
            if let (Some(b_pid), Some(w)) = (b_pid, waiting.last_mut()) {
                w.blockers.push(Blocker::from_row((
                    b_pid,
                    user,
                    application,
                    client,
                    state,
                    since,
                    query,
                )));
            }
        }
        let replicas: Vec<(String, Option<i64>, Option<f64>)> = sqlx::query_as(REPLICAS)
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        Ok(Pulse {
            at,
            commits,
            rollbacks,
            deadlocks,
            wal,
            waiting,
            active: active.max(0) as u32,
            replicas: replicas
                .into_iter()
                .map(|(name, replayed, lag)| Replica {
                    name,
                    replayed,
                    reported_lag: lag.map(|s| Duration::from_secs_f64(s.max(0.0))),
                })
                .collect(),
        })
    }
}
