//! Running statements on PostgreSQL, and its transactions: a migration's
//! transaction and its statements go to the server in one round trip.

use super::{Postgres, lock_watch};
use crate::db::session::arguments;
use crate::db::transactions::begin_and_run_one_by_one;
use crate::db::{
    CommitError, DbError, DbErrorKind, LockWait, Relation, SearchPath, Session, StatementError,
    Timeouts, Transactions, Value,
};
use async_trait::async_trait;
use futures_util::TryStreamExt;
use sqlx::{Connection, Row};
use std::time::Duration;

#[async_trait]
impl Session for Postgres {
    fn dialect_name(&self) -> &'static str {
        "PostgreSQL"
    }

    fn display_url(&self) -> &str {
        &self.url
    }

    async fn execute(&mut self, sql: &str) -> Result<(), DbError> {
        let watch = lock_watch::Watch::of(
            &self.secret_url,
            self.pid,
            self.lock_timeout,
            &mut self.watcher,
        );
        let statement = sqlx::Executor::execute(&mut self.conn, sqlx::raw_sql(sql));
        let (result, seen) = lock_watch::during(statement, watch).await;
        result
            .map(|_| ())
            .map_err(|e| with_lock_wait(DbError::from_sqlx(e, &self.url), seen))
    }

    async fn execute_with(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        sqlx::query_with(sql, arguments::<sqlx::Postgres>(params)?)
            .execute(&mut self.conn)
            .await
            .map(|r| r.rows_affected())
            .map_err(|e| self.err(e))
    }

    async fn query_with(
        &mut self,
        sql: &str,
        params: &[Value],
    ) -> Result<Vec<Vec<Value>>, DbError> {
        let rows = sqlx::query_with(sql, arguments::<sqlx::Postgres>(params)?)
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| (0..r.len()).map(|i| pg_value(r, i)).collect())
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.err(e))
    }

    async fn query_text(&mut self, sql: &str) -> Result<Option<Option<String>>, DbError> {
        // The simple query protocol returns every value in PostgreSQL's own
        // text form (numeric, bool, timestamps…), whatever its type.
        // Only the first row is read; the rest is discarded as it arrives.
        let row = {
            let mut rows = sqlx::raw_sql(sql).fetch(&mut self.conn);
            let first = rows.try_next().await;
            drop(rows);
            first.map_err(|e| self.err(e))?
        };
        let Some(row) = row else { return Ok(None) };
        if row.columns().is_empty() {
            return Ok(Some(None));
        }
        let value = row.try_get_raw(0).map_err(|e| self.err(e))?;
        if sqlx::ValueRef::is_null(&value) {
            return Ok(Some(None));
        }
        match value.format() {
            sqlx::postgres::PgValueFormat::Text => value
                .as_str()
                .map(|s| Some(Some(s.to_string())))
                .map_err(|e| DbError::new(DbErrorKind::Statement, e.to_string())),
            sqlx::postgres::PgValueFormat::Binary => Err(DbError::new(
                DbErrorKind::Statement,
                "the query's value came back in binary form".to_string(),
            )),
        }
    }

    async fn reset_session(&mut self) -> Result<(), DbError> {
        // What a migration SET for its session (not SET LOCAL) outlives its
        // COMMIT; the next migration and keel's own queries start from the
        // session as keel opened it, as each migration file was reviewed.
        self.execute("RESET search_path; RESET ROLE").await
    }

    async fn close(self: Box<Self>) {
        if let Some(watcher) = self.watcher {
            let _ = watcher.close().await;
        }
        let _ = self.conn.close().await;
    }
}

/// Runs the statements of `sql` in one round trip; on an error, also how
/// many of them had finished (the server answers each statement it
/// finished with a CommandComplete). `url` is the redacted URL, for errors.
async fn run_counting(
    conn: &mut sqlx::postgres::PgConnection,
    url: &str,
    sql: &str,
) -> Result<(), (usize, DbError)> {
    let mut results = sqlx::raw_sql(sql).fetch_many(conn);
    let mut done = 0;
    loop {
        match results.try_next().await {
            Ok(Some(sqlx::Either::Left(_))) => done += 1,
            Ok(Some(sqlx::Either::Right(_))) => {}
            Ok(None) => return Ok(()),
            Err(e) => return Err((done, DbError::from_sqlx(e, url))),
        }
    }
}

/// What [`Session::reset_session`] sends.
const RESET: &str = "RESET search_path; RESET ROLE";

#[async_trait]
impl Transactions for Postgres {
    async fn commit_and_reset(&mut self) -> Result<(), CommitError> {
        // A failed COMMIT skips the rest of the string; the server's
        // CommandComplete for COMMIT says whether the error is the reset's.
        run_counting(&mut self.conn, &self.url, &format!("COMMIT; {RESET}"))
            .await
            .map_err(|(done, e)| match done {
                0 => CommitError::Commit(e),
                _ => CommitError::Reset(e),
            })
    }

    async fn begin(&mut self, t: Timeouts, durable: bool) -> Result<(), DbError> {
        self.lock_timeout = Some(t.lock);
        self.execute(&begin_sql(t, durable).join(" ")).await
    }

    async fn prepare_bisect(&mut self) -> Result<bool, DbError> {
        self.create_bisect_function().await
    }

    async fn bisect(
        &mut self,
        update: &str,
        update_from_start: &str,
        lo: Option<i64>,
        hi: i64,
        keys: &[i64],
    ) -> Result<crate::db::Bisected, DbError> {
        self.bisect_on_server(update, update_from_start, lo, hi, keys)
            .await
    }

    async fn begin_and_run(
        &mut self,
        t: Timeouts,
        durable: bool,
        statements: &[&str],
    ) -> Result<(), StatementError> {
        // Before PostgreSQL 13 a simple query's statement_timeout covered the
        // whole string, with the value from before its SET LOCAL: one
        // statement at a time there, so the timeout means what it says.
        self.lock_timeout = Some(t.lock);
        if self.conn.server_version_num().is_none_or(|v| v < 130_000) {
            return begin_and_run_one_by_one(self, t, durable, statements).await;
        }
        let batch = Batch::new(&begin_sql(t, durable), statements);
        let watch = lock_watch::Watch::of(
            &self.secret_url,
            self.pid,
            self.lock_timeout,
            &mut self.watcher,
        );
        let run = run_counting(&mut self.conn, &self.url, &batch.sql);
        let (result, seen) = lock_watch::during(run, watch).await;
        result.map_err(|(done, e)| batch.locate(with_lock_wait(e, seen), done))
    }

    async fn lock_for_backup(&mut self, tables: &[Relation]) -> Result<(), DbError> {
        if tables.is_empty() {
            return Ok(());
        }
        // SHARE conflicts with the ROW EXCLUSIVE of INSERT, UPDATE and
        // DELETE: no row can appear, change or go until the commit, while
        // reads go on. The migration's own statements may take stronger
        // locks after it.
        let list: Vec<String> = tables.iter().map(Relation::quoted).collect();
        self.execute(&format!("LOCK TABLE {} IN SHARE MODE", list.join(", ")))
            .await
    }

    async fn set_session_timeouts(&mut self, t: Timeouts) -> Result<(), DbError> {
        self.lock_timeout = Some(t.lock);
        self.execute(&format!(
            "SET lock_timeout = {}; SET statement_timeout = {};",
            ms(t.lock),
            ms(t.statement)
        ))
        .await
    }

    async fn wait_durable(&mut self, timeout: Duration) -> Result<bool, DbError> {
        super::durable::wait_flushed(&mut self.conn, &self.url, timeout).await
    }
}

impl Postgres {
    /// Sets a migration's search path for the rest of the open transaction.
    pub(super) async fn set_local_search_path(&mut self, path: &SearchPath) -> Result<(), DbError> {
        match path {
            // The list as the migration wrote it (it ran, or will run, as
            // part of up.sql anyway), in the one statement it can be.
            SearchPath::List(list) => {
                self.execute(&format!("SET LOCAL search_path TO {list}"))
                    .await
            }
            SearchPath::Config(value) => sqlx::query("SELECT set_config('search_path', $1, true)")
                .bind(value)
                .execute(&mut self.conn)
                .await
                .map(|_| ())
                .map_err(|e| self.err(e)),
        }
    }
}

/// One column of a row as a [`Value`], by the column's PostgreSQL type.
fn pg_value(row: &sqlx::postgres::PgRow, i: usize) -> Result<Value, sqlx::Error> {
    use sqlx::{Column, TypeInfo, ValueRef};
    if row.try_get_raw(i)?.is_null() {
        return Ok(Value::Null);
    }
    Ok(match row.columns()[i].type_info().name() {
        "INT8" => Value::Int(row.try_get::<i64, _>(i)?),
        "INT4" => Value::Int(row.try_get::<i32, _>(i)?.into()),
        "INT2" => Value::Int(row.try_get::<i16, _>(i)?.into()),
        "BOOL" => Value::Bool(row.try_get(i)?),
        "TIMESTAMPTZ" => Value::Timestamp(row.try_get(i)?),
        _ => Value::Text(row.try_get::<String, _>(i)?),
    })
}

/// A lock timeout names who the statement waited for, when keel saw them.
impl Postgres {
    /// The rows of `query`, watching who it waits for
    /// (see [`lock_watch`]): keel's reads of sizes and definitions take a
    /// share lock on each table, and a lock timeout then names the session
    /// that held them up.
    pub(super) async fn fetch_watched(
        &mut self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<Vec<sqlx::postgres::PgRow>, DbError> {
        let watch = lock_watch::Watch::of(
            &self.secret_url,
            self.pid,
            self.lock_timeout,
            &mut self.watcher,
        );
        let read = query.fetch_all(&mut self.conn);
        let (rows, seen) = lock_watch::during(read, watch).await;
        rows.map_err(|e| with_lock_wait(DbError::from_sqlx(e, &self.url), seen))
    }
}

fn with_lock_wait(mut error: DbError, seen: Option<LockWait>) -> DbError {
    if error.is_lock_timeout() {
        error.lock_wait = seen.map(Box::new);
    }
    error
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// The statements that open a migration's transaction. Timeouts are integers
/// formatted by keel, never user text.
fn begin_sql(t: Timeouts, durable: bool) -> Vec<String> {
    let mut sql = vec![
        "BEGIN;".to_string(),
        format!("SET LOCAL lock_timeout = {};", ms(t.lock)),
        format!("SET LOCAL statement_timeout = {};", ms(t.statement)),
    ];
    if !durable {
        // Safe for a migration runner: the migration and its tracking row
        // commit atomically, so a server crash can lose only whole, recent
        // migrations, which are then simply pending again. keel reports
        // them only after a later durable commit flushed them (see
        // migrator/ledger.rs).
        sql.push("SET LOCAL synchronous_commit = off;".to_string());
    }
    sql
}

/// Several statements sent as one simple query, and how to tell from the
/// server's answer which of them failed.
struct Batch {
    sql: String,
    /// Statements of the preamble (BEGIN, SET LOCAL …) before the given ones.
    preamble: usize,
    /// 0-based character offset of each given statement in `sql` (the
    /// server's error positions count characters).
    starts: Vec<usize>,
}

impl Batch {
    fn new(preamble: &[String], statements: &[&str]) -> Batch {
        let mut sql = preamble.join(" ");
        sql.push('\n');
        let mut chars = sql.chars().count();
        let mut starts = Vec::with_capacity(statements.len());
        for stmt in statements {
            starts.push(chars);
            sql.push_str(stmt);
            // On a line of its own: a statement may end in a `--` comment.
            sql.push_str("\n;\n");
            chars += stmt.chars().count() + 3;
        }
        Batch {
            sql,
            preamble: preamble.len(),
            starts,
        }
    }

    /// Which statement `error` belongs to, with its position made relative
    /// to that statement. The server parses the whole string before running
    /// any of it, so an error with a position (a syntax error) points into
    /// its statement whatever ran; one without a position belongs to the
    /// statement after the `done` that completed.
    fn locate(&self, mut error: DbError, done: usize) -> StatementError {
        let index = match error.position {
            Some(p) => {
                let p = p as usize;
                let i = self.starts.partition_point(|&start| start < p);
                error.position = i
                    .checked_sub(1)
                    .and_then(|i| u32::try_from(p - self.starts[i]).ok());
                i.checked_sub(1)
            }
            None => done
                .checked_sub(self.preamble)
                .map(|i| i.min(self.starts.len().saturating_sub(1))),
        };
        StatementError { index, error }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn located(
        batch: &Batch,
        position: Option<usize>,
        done: usize,
    ) -> (Option<usize>, Option<usize>) {
        let mut error = DbError::new(DbErrorKind::Statement, "x");
        error.position = position.map(|p| p as u32);
        let e = batch.locate(error, done);
        (e.index, e.error.position.map(|p| p as usize))
    }

    #[test]
    fn batch_errors_point_into_their_statement() {
        let preamble = begin_sql(
            Timeouts {
                lock: Duration::from_secs(2),
                statement: Duration::from_secs(60),
            },
            false,
        );
        let batch = Batch::new(&preamble, &["SELECT 'é'", "SELECT nope -- c"]);
        assert!(
            batch
                .sql
                .starts_with("BEGIN; SET LOCAL lock_timeout = 2000;")
        );
        assert!(batch.sql.ends_with("SELECT 'é'\n;\nSELECT nope -- c\n;\n"));
        let second = batch.sql.chars().count() - "SELECT nope -- c\n;\n".chars().count();
        // "nope" is the 8th character of the second statement.
        assert_eq!(located(&batch, Some(second + 8), 0), (Some(1), Some(8)));
        // The `;` after the first statement still belongs to it.
        assert_eq!(located(&batch, Some(second - 1), 0), (Some(0), Some(12)));
        // No position: the statement after the last one that completed
        // (BEGIN and three SET LOCAL come first).
        assert_eq!(located(&batch, None, 4), (Some(0), None));
        assert_eq!(located(&batch, None, 5), (Some(1), None));
        assert_eq!(located(&batch, None, 2), (None, None));
        // A position inside the preamble belongs to no statement.
        assert_eq!(located(&batch, Some(3), 0), (None, None));
    }
}
