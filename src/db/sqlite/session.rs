//! Running statements on SQLite, and its transactions.

use super::Sqlite;
use crate::db::session::arguments;
use crate::db::{DbError, Session, Timeouts, Transactions, Value};
use async_trait::async_trait;
use sqlx::{Connection, Row};

#[async_trait]
impl Session for Sqlite {
    fn dialect_name(&self) -> &'static str {
        "SQLite"
    }

    fn display_url(&self) -> &str {
        &self.url
    }

    async fn execute(&mut self, sql: &str) -> Result<(), DbError> {
        let conn: &mut _ = &mut self.conn;
        sqlx::Executor::execute(conn, sqlx::raw_sql(sql))
            .await
            .map(|_| ())
            .map_err(|e| DbError::from_sqlx(e, &self.url))
    }

    async fn execute_with(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        sqlx::query_with(sql, arguments::<sqlx::Sqlite>(params)?)
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
        let rows = sqlx::query_with(sql, arguments::<sqlx::Sqlite>(params)?)
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| (0..r.len()).map(|i| sqlite_value(r, i)).collect())
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.err(e))
    }

    async fn query_text(&mut self, sql: &str) -> Result<Option<Option<String>>, DbError> {
        use sqlx::{TypeInfo, ValueRef};
        let row = sqlx::query(sql)
            .fetch_optional(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        let Some(row) = row else { return Ok(None) };
        if row.columns().is_empty() {
            return Ok(Some(None));
        }
        let raw = row.try_get_raw(0).map_err(|e| self.err(e))?;
        if raw.is_null() {
            return Ok(Some(None));
        }
        let ty = raw.type_info().name().to_string();
        let text = match ty.as_str() {
            "INTEGER" | "BOOLEAN" => row.try_get::<i64, _>(0).map(|v| v.to_string()),
            "REAL" => row.try_get::<f64, _>(0).map(|v| v.to_string()),
            "BLOB" => row.try_get::<Vec<u8>, _>(0).map(hex::encode),
            _ => row.try_get::<String, _>(0),
        }
        .map_err(|e| self.err(e))?;
        Ok(Some(Some(text)))
    }

    async fn close(self: Box<Self>) {
        let _ = self.conn.close().await;
    }
}

#[async_trait]
impl Transactions for Sqlite {
    async fn begin(&mut self, t: Timeouts, _durable: bool) -> Result<(), DbError> {
        // SQLite has no lock_timeout: busy_timeout is how long a writer waits
        // for another. IMMEDIATE takes the write lock up front, so two runners
        // cannot both read "pending" and both apply.
        self.execute(&format!(
            "PRAGMA busy_timeout = {}; BEGIN IMMEDIATE",
            t.lock.as_millis()
        ))
        .await
    }

    async fn set_session_timeouts(&mut self, t: Timeouts) -> Result<(), DbError> {
        self.execute(&format!("PRAGMA busy_timeout = {}", t.lock.as_millis()))
            .await
    }
}

/// One column of a row as a [`Value`], by the type of the value itself
/// (SQLite columns are dynamically typed).
fn sqlite_value(row: &sqlx::sqlite::SqliteRow, i: usize) -> Result<Value, sqlx::Error> {
    use sqlx::{TypeInfo, ValueRef};
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    Ok(match raw.type_info().name() {
        "INTEGER" | "BOOLEAN" => Value::Int(row.try_get::<i64, _>(i)?),
        "REAL" => Value::Text(row.try_get::<f64, _>(i)?.to_string()),
        _ => Value::Text(row.try_get::<String, _>(i)?),
    })
}
