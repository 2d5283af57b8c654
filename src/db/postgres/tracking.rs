//! keel's own tables on PostgreSQL, in the schema keel connected to (see
//! [`Postgres::keel`]); the rows' SQL is [`crate::db::tracking`]'s.

use super::Postgres;
use super::run_lock::{RUN_LOCK_KEY, holder, lock};
use crate::db::tracking::{
    self, ADDED_COLUMNS, META, TABLE, bind_row, delete_row, insert_database_id, insert_note,
    read_row, select_database_id, select_notes, select_rows, select_schema_before, upsert_row,
};
use crate::db::{
    DbError, DbErrorKind, LockHolder, RunLock, Runs, Session, Tracking, TrackingRow, quote_ident,
};
use async_trait::async_trait;

#[async_trait]
impl Tracking for Postgres {
    async fn ensure_tracking(&mut self) -> Result<(), DbError> {
        if self.keel_schema.is_none() {
            return Err(self.no_schema());
        }
        if self.tracking_columns.is_some() {
            return Ok(());
        }
        let (table, meta) = (self.keel(TABLE), self.keel(META));
        self.execute(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (
                version text PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                state text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                applied_by text NOT NULL,
                execution_ms bigint NOT NULL,
                statements_done bigint NOT NULL DEFAULT 0,
                error text,
                backup text,
                backup_sha256 text
            );
            CREATE TABLE IF NOT EXISTS {meta} (key text PRIMARY KEY, value text NOT NULL)"
        ))
        .await?;
        // A table an earlier keel made: add what it lacks. Looked up first,
        // so that the usual run takes no ACCESS EXCLUSIVE lock on it.
        let mut have = self.attribute_names(&table).await?;
        for (column, ty) in ADDED_COLUMNS {
            if !have.iter().any(|c| c == column) {
                self.execute(&format!(
                    "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {} {ty}",
                    quote_ident(column)
                ))
                .await?;
                have.push(column.to_string());
            }
        }
        let id = tracking::new_database_id()
            .map_err(|e| DbError::new(DbErrorKind::Connection, e.to_string()))?;
        sqlx::query(&insert_database_id(&meta))
            .bind(id)
            .execute(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        self.tracking_columns = Some(have);
        Ok(())
    }

    async fn tracking_rows(&mut self) -> Result<Vec<TrackingRow>, DbError> {
        self.read_tracking(None).await
    }

    async fn tracking_row(&mut self, version: &str) -> Result<Option<TrackingRow>, DbError> {
        Ok(self.read_tracking(Some(version)).await?.pop())
    }

    async fn write_tracking(&mut self, row: &TrackingRow) -> Result<(), DbError> {
        let sql = upsert_row(&self.keel(TABLE));
        bind_row::<sqlx::Postgres>(&sql, row)
            .execute(&mut self.conn)
            .await
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    async fn schema_before(&mut self, version: &str) -> Result<Option<String>, DbError> {
        let table = self.keel(TABLE);
        // A table an older keel made, and no up since: nothing kept.
        if !self
            .tracking_columns()
            .await?
            .iter()
            .any(|c| c == "schema_before")
        {
            return Ok(None);
        }
        sqlx::query_scalar(&select_schema_before(&table))
            .bind(version)
            .fetch_optional(&mut self.conn)
            .await
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    async fn delete_tracking(&mut self, version: &str) -> Result<(), DbError> {
        sqlx::query(&delete_row(&self.keel(TABLE)))
            .bind(version)
            .execute(&mut self.conn)
            .await
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    async fn add_note(&mut self, key: &str, value: &str) -> Result<(), DbError> {
        let meta = self.keel(META);
        sqlx::query(&insert_note(&meta))
            .bind(key)
            .bind(value)
            .execute(&mut self.conn)
            .await
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    async fn notes(&mut self, prefix: &str) -> Result<Vec<(String, String)>, DbError> {
        let meta = self.keel(META);
        if !self.relation_exists(&meta).await? {
            return Ok(Vec::new());
        }
        sqlx::query_as(&select_notes(&meta))
            .bind(prefix)
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e))
    }

    async fn database_id(&mut self) -> Result<Option<String>, DbError> {
        let meta = self.keel(META);
        if !self.relation_exists(&meta).await? {
            return Ok(None);
        }
        sqlx::query_scalar(&select_database_id(&meta))
            .fetch_optional(&mut self.conn)
            .await
            .map_err(|e| self.err(e))
    }

    async fn server_identity(&mut self) -> Result<Option<String>, DbError> {
        // pg_control_system() is open to every role by default, but a
        // hosted server may revoke it: then the id alone binds.
        Ok(sqlx::query_scalar(
            "SELECT (SELECT system_identifier::text FROM pg_control_system()) || ':' || \
             (SELECT oid::text FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(&mut self.conn)
        .await
        .ok()
        .flatten())
    }

    async fn lock_runs(
        &mut self,
        wait: std::time::Duration,
        on_wait: &(dyn for<'h> Fn(Option<&'h LockHolder>) + Sync),
    ) -> Result<RunLock, DbError> {
        lock(&mut self.conn, &self.url, RUN_LOCK_KEY, wait, on_wait).await
    }

    async fn runs(&mut self) -> Result<Runs, DbError> {
        Ok(
            match holder(&mut self.conn, &self.url, RUN_LOCK_KEY).await? {
                Some(h) if h.pid != i64::from(self.pid) => Runs::Running(Some(h)),
                _ => Runs::Idle,
            },
        )
    }

    async fn unlock_runs(&mut self) -> Result<(), DbError> {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(RUN_LOCK_KEY)
            .execute(&mut self.conn)
            .await
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}

impl Postgres {
    fn no_schema(&self) -> DbError {
        DbError::usage(format!(
            "{}: the search_path names no schema that exists, so keel has nowhere to keep its tracking table\n  fix: create the schema or set search_path for this role (ALTER ROLE … SET search_path = …)",
            self.url
        ))
    }

    /// The tracking table's columns: empty when there is no such table.
    async fn tracking_columns(&mut self) -> Result<Vec<String>, DbError> {
        match &self.tracking_columns {
            Some(columns) => Ok(columns.clone()),
            None => self.attribute_names(&self.keel(TABLE)).await,
        }
    }

    /// Every tracking row, or the one of `version`; none when the table
    /// does not exist.
    async fn read_tracking(&mut self, version: Option<&str>) -> Result<Vec<TrackingRow>, DbError> {
        let table = self.keel(TABLE);
        let columns = self.tracking_columns().await?;
        if columns.is_empty() {
            return Ok(Vec::new());
        }
        let has_backup = columns.iter().any(|c| c == "backup_sha256");
        let sql = select_rows(&table, has_backup, version.is_some());
        let mut query = sqlx::query(&sql);
        if let Some(v) = version {
            query = query.bind(v);
        }
        let rows = query
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(read_row)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.err(e))
    }
}
