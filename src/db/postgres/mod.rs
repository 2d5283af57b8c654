use super::tracking::{ADDED_COLUMNS, KEEL_TABLES, META, TABLE};
use super::{
    ColumnInfo, ColumnSummary, ConstraintInfo, Database, DbError, IndexInfo, LiveColumn,
    NotNullCheck, StatementError, TableStats, Timeouts, TrackingRow, TrackingState, Value,
    quote_ident, quote_relation,
};
use async_trait::async_trait;
use futures_util::TryStreamExt;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Row};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// Key of the session advisory lock that makes runs one at a time
/// (the bytes of "keel" plus a fixed tag, so it will not collide by accident).
const RUN_LOCK_KEY: i64 = 0x6b65_656c_0000_0001;

pub struct Postgres {
    conn: PgConnection,
    url: String,
    /// The URL as given, password included: only for handing to `pg_dump`
    /// through its environment, never shown.
    secret_url: String,
    /// The schema keel's own tables live in: the session's current schema
    /// when keel connected. keel names its tables with it, because a
    /// migration may change `search_path` before keel writes its tracking
    /// row in the same transaction.
    keel_schema: Option<String>,
}

impl Postgres {
    pub async fn connect(url: &str, display: String) -> Result<Postgres, DbError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| DbError::from_sqlx(e, &display))?
            .application_name("keel")
            .disable_statement_logging();
        let conn = tokio::time::timeout(Duration::from_secs(15), options.connect())
            .await
            .map_err(|_| {
                DbError::new(
                    super::DbErrorKind::Connection,
                    format!(
                        "no answer from {display} within 15 s; check the host, port and firewall"
                    ),
                )
            })?
            .map_err(|e| DbError::from_sqlx_connect(e, &display))?;
        let mut conn = conn;
        let mut setup = super::durable::SESSION_SETUP.to_string();
        if conn.server_version_num().is_some_and(|v| v >= 140_000) {
            // A backend notices that its client is gone only when it next
            // talks to it: after a killed keel, its statement (an index
            // build that takes hours) would go on unwatched, holding the run
            // lock. PostgreSQL 14+ can check the socket while a statement
            // runs and cancel it; the next run drops what a cancelled
            // concurrent build left INVALID.
            setup.push_str("; SET client_connection_check_interval = 1000");
        }
        sqlx::Executor::execute(&mut conn, sqlx::raw_sql(&setup))
            .await
            .map_err(|e| DbError::from_sqlx(e, &display))?;
        let mut pg = Postgres {
            conn,
            url: display,
            secret_url: url.to_string(),
            keel_schema: None,
        };
        pg.keel_schema = sqlx::query_scalar("SELECT current_schema()::text")
            .fetch_one(&mut pg.conn)
            .await
            .map_err(|e| pg.err(e))?;
        Ok(pg)
    }

    fn err(&self, e: sqlx::Error) -> DbError {
        DbError::from_sqlx(e, &self.url)
    }

    /// One of keel's own tables, schema-qualified and quoted.
    fn keel(&self, table: &str) -> String {
        super::Relation {
            schema: self.keel_schema.clone(),
            name: table.to_string(),
        }
        .quoted()
    }

    fn no_schema(&self) -> DbError {
        DbError::usage(format!(
            "{}: the search_path names no schema that exists, so keel has nowhere to keep its tracking table\n  fix: create the schema or set search_path for this role (ALTER ROLE … SET search_path = …)",
            self.url
        ))
    }
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
                let i = self.starts.partition_point(|&start| start < p);
                error.position = i.checked_sub(1).map(|i| p - self.starts[i]);
                i.checked_sub(1)
            }
            None => done
                .checked_sub(self.preamble)
                .map(|i| i.min(self.starts.len().saturating_sub(1))),
        };
        StatementError { index, error }
    }
}

#[async_trait]
impl Database for Postgres {
    fn dialect_name(&self) -> &'static str {
        "PostgreSQL"
    }

    fn display_url(&self) -> &str {
        &self.url
    }

    fn supports_statement_timeout(&self) -> bool {
        true
    }

    async fn execute(&mut self, sql: &str) -> Result<(), DbError> {
        let conn: &mut _ = &mut self.conn;
        sqlx::Executor::execute(conn, sqlx::raw_sql(sql))
            .await
            .map(|_| ())
            .map_err(|e| DbError::from_sqlx(e, &self.url))
    }

    async fn begin(&mut self, t: Timeouts, durable: bool) -> Result<(), DbError> {
        self.execute(&begin_sql(t, durable).join(" ")).await
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
        if self.conn.server_version_num().is_none_or(|v| v < 130_000) {
            return super::begin_and_run_one_by_one(self, t, durable, statements).await;
        }
        let batch = Batch::new(&begin_sql(t, durable), statements);
        let mut results = sqlx::raw_sql(&batch.sql).fetch_many(&mut self.conn);
        // The server answers each statement it finished with a
        // CommandComplete, so their count says how far it got.
        let mut done = 0;
        loop {
            match results.try_next().await {
                Ok(Some(sqlx::Either::Left(_))) => done += 1,
                Ok(Some(sqlx::Either::Right(_))) => {}
                Ok(None) => return Ok(()),
                Err(e) => return Err(batch.locate(DbError::from_sqlx(e, &self.url), done)),
            }
        }
    }

    async fn commit(&mut self) -> Result<(), DbError> {
        self.execute("COMMIT").await
    }

    async fn wait_durable(&mut self, timeout: Duration) -> Result<bool, DbError> {
        super::durable::wait_flushed(&mut self.conn, &self.url, timeout).await
    }

    async fn rollback(&mut self) -> Result<(), DbError> {
        self.execute("ROLLBACK").await
    }

    async fn savepoint(&mut self, name: &str) -> Result<(), DbError> {
        self.execute(&format!("SAVEPOINT {}", quote_ident(name)))
            .await
    }

    async fn rollback_to_savepoint(&mut self, name: &str) -> Result<(), DbError> {
        self.execute(&format!("ROLLBACK TO SAVEPOINT {}", quote_ident(name)))
            .await
    }

    async fn set_session_timeouts(&mut self, t: Timeouts) -> Result<(), DbError> {
        self.execute(&format!(
            "SET lock_timeout = {}; SET statement_timeout = {};",
            ms(t.lock),
            ms(t.statement)
        ))
        .await
    }

    async fn ensure_tracking(&mut self) -> Result<(), DbError> {
        if self.keel_schema.is_none() {
            return Err(self.no_schema());
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
        let have: Vec<String> = sqlx::query_scalar(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0",
        )
        .bind(&table)
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        for (column, ty) in ADDED_COLUMNS {
            if !have.iter().any(|c| c == column) {
                self.execute(&format!(
                    "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {} {ty}",
                    quote_ident(column)
                ))
                .await?;
            }
        }
        let id = super::tracking::new_database_id()
            .map_err(|e| DbError::new(super::DbErrorKind::Connection, e.to_string()))?;
        sqlx::query(&format!(
            "INSERT INTO {meta} (key, value) VALUES ('database_id', $1) ON CONFLICT (key) DO NOTHING"
        ))
        .bind(id)
        .execute(&mut self.conn)
        .await
        .map(|_| ())
        .map_err(|e| self.err(e))
    }

    async fn database_id(&mut self) -> Result<Option<String>, DbError> {
        let meta = self.keel(META);
        let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
            .bind(&meta)
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        if exists.is_none() {
            return Ok(None);
        }
        sqlx::query_scalar(&format!(
            "SELECT value FROM {meta} WHERE key = 'database_id'"
        ))
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

    async fn reset_session(&mut self) -> Result<(), DbError> {
        // What a migration SET for its session (not SET LOCAL) outlives its
        // COMMIT; the next migration and keel's own queries start from the
        // session as keel opened it, as each migration file was reviewed.
        self.execute("RESET search_path; RESET ROLE").await
    }

    async fn tracking_rows(&mut self) -> Result<Vec<TrackingRow>, DbError> {
        let table = self.keel(TABLE);
        let columns: Vec<String> = sqlx::query_scalar(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0",
        )
        .bind(&table)
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        if columns.is_empty() {
            return Ok(Vec::new());
        }
        // Read by an older table too (before `ensure_tracking` added them).
        let backup = if columns.iter().any(|c| c == "backup_sha256") {
            "backup, backup_sha256"
        } else {
            "NULL::text AS backup, NULL::text AS backup_sha256"
        };
        let rows = sqlx::query(&format!(
            "SELECT version, name, checksum, state, applied_at, applied_by, execution_ms, \
             statements_done, error, {backup} FROM {table} ORDER BY version"
        ))
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| {
                Ok(TrackingRow {
                    version: r.try_get("version")?,
                    name: r.try_get("name")?,
                    checksum: r.try_get("checksum")?,
                    state: TrackingState::parse(r.try_get("state")?),
                    applied_at: r.try_get("applied_at")?,
                    applied_by: r.try_get("applied_by")?,
                    execution_ms: r.try_get("execution_ms")?,
                    statements_done: r.try_get("statements_done")?,
                    error: r.try_get("error")?,
                    backup: super::tracking::BackupRef::from_columns(
                        r.try_get("backup")?,
                        r.try_get("backup_sha256")?,
                    ),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.err(e))
    }

    async fn write_tracking(&mut self, row: &TrackingRow) -> Result<(), DbError> {
        let table = self.keel(TABLE);
        sqlx::query(&format!(
            "INSERT INTO {table} (version, name, checksum, state, applied_at, applied_by, \
             execution_ms, statements_done, error, backup, backup_sha256) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (version) DO UPDATE SET name = EXCLUDED.name, checksum = EXCLUDED.checksum, \
             state = EXCLUDED.state, applied_at = EXCLUDED.applied_at, applied_by = EXCLUDED.applied_by, \
             execution_ms = EXCLUDED.execution_ms, statements_done = EXCLUDED.statements_done, \
             error = EXCLUDED.error, backup = EXCLUDED.backup, backup_sha256 = EXCLUDED.backup_sha256"
        ))
        .bind(&row.version)
        .bind(&row.name)
        .bind(&row.checksum)
        .bind(row.state.as_str())
        .bind(row.applied_at)
        .bind(&row.applied_by)
        .bind(row.execution_ms)
        .bind(row.statements_done)
        .bind(&row.error)
        .bind(row.backup.as_ref().map(|b| b.path.as_str()))
        .bind(row.backup.as_ref().map(|b| b.sha256.as_str()))
        .execute(&mut self.conn)
        .await
        .map(|_| ())
        .map_err(|e| self.err(e))
    }

    async fn delete_tracking(&mut self, version: &str) -> Result<(), DbError> {
        sqlx::query(&format!(
            "DELETE FROM {} WHERE version = $1",
            self.keel(TABLE)
        ))
        .bind(version)
        .execute(&mut self.conn)
        .await
        .map(|_| ())
        .map_err(|e| self.err(e))
    }

    async fn lock_runs(
        &mut self,
        on_wait: &(dyn for<'h> Fn(Option<&'h super::LockHolder>) + Sync),
    ) -> Result<(), DbError> {
        super::run_lock::lock(&mut self.conn, &self.url, RUN_LOCK_KEY, on_wait).await
    }

    async fn unlock_runs(&mut self) -> Result<(), DbError> {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(RUN_LOCK_KEY)
            .execute(&mut self.conn)
            .await
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    async fn invalid_indexes(&mut self) -> Result<Vec<String>, DbError> {
        sqlx::query_scalar(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE NOT i.indisvalid ORDER BY 1",
        )
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))
    }

    async fn drop_index(&mut self, qualified_name: &str) -> Result<(), DbError> {
        // Already quoted by format('%I.%I') in invalid_indexes.
        self.execute(&format!(
            "DROP INDEX CONCURRENTLY IF EXISTS {qualified_name}"
        ))
        .await
    }

    async fn tables(&mut self) -> Result<Vec<String>, DbError> {
        let rows: Vec<(Option<String>, String)> = sqlx::query_as(
            "SELECT CASE WHEN n.nspname <> current_schema() THEN n.nspname::text END, \
             c.relname::text \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg_toast%' AND c.relname <> ALL($1) ORDER BY 1 NULLS FIRST, 2",
        )
        .bind(KEEL_TABLES.iter().copied().chain([super::CALIBRATION_TABLE]).map(String::from).collect::<Vec<_>>())
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|(schema, name)| super::Relation { schema, name }.to_string())
            .collect())
    }

    async fn columns(&mut self, table: &str) -> Result<Vec<ColumnInfo>, DbError> {
        let rows = sqlx::query(
            "SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS data_type, \
             NOT a.attnotnull AS nullable, pg_get_expr(d.adbin, d.adrelid) AS default_expr, \
             t.typcategory = 'S' AS is_text \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid \
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE c.oid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
        )
        .bind(quote_relation(table))
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| {
                Ok(ColumnInfo {
                    name: r.try_get("name")?,
                    data_type: r.try_get("data_type")?,
                    nullable: r.try_get("nullable")?,
                    default: r.try_get("default_expr")?,
                    is_text: r.try_get("is_text")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.err(e))
    }

    async fn indexes(&mut self, table: &str) -> Result<Vec<IndexInfo>, DbError> {
        let rows = sqlx::query(
            "SELECT ic.relname::text AS name, pg_get_indexdef(i.indexrelid) AS definition, \
             i.indisunique AS is_unique, i.indisvalid AS valid \
             FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
             JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.oid = to_regclass($1) ORDER BY 1",
        )
        .bind(quote_relation(table))
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| {
                Ok(IndexInfo {
                    name: r.try_get("name")?,
                    definition: r.try_get("definition")?,
                    unique: r.try_get("is_unique")?,
                    valid: r.try_get("valid")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.err(e))
    }

    async fn constraints(&mut self, table: &str) -> Result<Vec<ConstraintInfo>, DbError> {
        let rows = sqlx::query(
            "SELECT con.conname::text AS name, \
             CASE con.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique' \
             WHEN 'f' THEN 'foreign key' WHEN 'c' THEN 'check' WHEN 'x' THEN 'exclusion' \
             ELSE con.contype::text END AS kind, pg_get_constraintdef(con.oid) AS definition \
             FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.oid = to_regclass($1) ORDER BY 1",
        )
        .bind(quote_relation(table))
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| {
                Ok(ConstraintInfo {
                    name: r.try_get("name")?,
                    kind: r.try_get("kind")?,
                    definition: r.try_get("definition")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.err(e))
    }

    async fn summarize(&mut self, table: &str, column: &str) -> Result<ColumnSummary, DbError> {
        let (t, c) = (quote_relation(table), quote_ident(column));
        // min/max on the column's own type (so numbers and dates order
        // correctly), then shown as text. Types without ordering (json,
        // bool) have no range.
        let sql = format!(
            "SELECT count(*), count(*) - count({c}), min({c})::text, max({c})::text FROM {t}"
        );
        let row = match sqlx::query(&sql).fetch_one(&mut self.conn).await {
            Ok(row) => row,
            Err(_) => sqlx::query(&format!(
                "SELECT count(*), count(*) - count({c}), NULL::text, NULL::text FROM {t}"
            ))
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?,
        };
        Ok(ColumnSummary {
            rows: row.try_get(0).map_err(|e| self.err(e))?,
            nulls: row.try_get(1).map_err(|e| self.err(e))?,
            min: row.try_get(2).map_err(|e| self.err(e))?,
            max: row.try_get(3).map_err(|e| self.err(e))?,
        })
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
                .map_err(|e| DbError::new(super::DbErrorKind::Statement, e.to_string())),
            sqlx::postgres::PgValueFormat::Binary => Err(DbError::new(
                super::DbErrorKind::Statement,
                "the query's value came back in binary form".to_string(),
            )),
        }
    }

    async fn execute_with(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        sqlx::query_with(sql, pg_arguments(params)?)
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
        let rows = sqlx::query_with(sql, pg_arguments(params)?)
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| (0..r.len()).map(|i| pg_value(r, i)).collect())
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.err(e))
    }

    async fn index_valid(&mut self, name: &str) -> Result<Option<bool>, DbError> {
        sqlx::query_scalar(
            "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass($1)",
        )
        .bind(quote_relation(name))
        .fetch_optional(&mut self.conn)
        .await
        .map_err(|e| self.err(e))
    }

    async fn postgres_version(&mut self) -> Result<Option<u32>, DbError> {
        let num: String = sqlx::query_scalar("SHOW server_version_num")
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        Ok(num.trim().parse().ok())
    }

    async fn count_rows(&mut self, table: &str) -> Result<i64, DbError> {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {}", quote_relation(table)))
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| self.err(e))
    }

    async fn max_int(&mut self, table: &str, column: &str) -> Result<Option<i64>, DbError> {
        sqlx::query_scalar(&format!(
            "SELECT max({})::bigint FROM {}",
            quote_ident(column),
            quote_relation(table)
        ))
        .fetch_one(&mut self.conn)
        .await
        .map_err(|e| self.err(e))
    }

    async fn scan_text(
        &mut self,
        table: &str,
        column: &str,
        visit: &mut (dyn for<'x> FnMut(Option<&'x str>) + Send),
    ) -> Result<u64, DbError> {
        let sql = format!(
            "SELECT {}::text FROM {}",
            quote_ident(column),
            quote_relation(table)
        );
        let mut rows = sqlx::query_scalar::<_, Option<String>>(&sql).fetch(&mut self.conn);
        let mut n = 0;
        while let Some(value) = rows
            .try_next()
            .await
            .map_err(|e| DbError::from_sqlx(e, &self.url))?
        {
            visit(value.as_deref());
            n += 1;
        }
        Ok(n)
    }

    async fn bulk_insert(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: &mut (dyn Iterator<Item = Vec<Value>> + Send),
    ) -> Result<u64, DbError> {
        let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
        let sql = format!(
            "COPY {} ({}) FROM STDIN",
            quote_relation(table),
            cols.join(", ")
        );
        let mut copy = self
            .conn
            .copy_in_raw(&sql)
            .await
            .map_err(|e| DbError::from_sqlx(e, &self.url))?;
        let mut buf = String::with_capacity(1 << 17);
        let mut n = 0u64;
        for row in rows {
            for (i, value) in row.iter().enumerate() {
                if i > 0 {
                    buf.push('\t');
                }
                copy_text(&mut buf, value);
            }
            buf.push('\n');
            n += 1;
            if buf.len() >= 1 << 16 {
                copy.send(buf.as_bytes())
                    .await
                    .map_err(|e| DbError::from_sqlx(e, &self.url))?;
                buf.clear();
            }
        }
        if !buf.is_empty() {
            copy.send(buf.as_bytes())
                .await
                .map_err(|e| DbError::from_sqlx(e, &self.url))?;
        }
        copy.finish()
            .await
            .map_err(|e| DbError::from_sqlx(e, &self.url))?;
        Ok(n)
    }

    async fn sync_id_sequence(&mut self, table: &str, column: &str) -> Result<(), DbError> {
        let seq: Option<String> = sqlx::query_scalar("SELECT pg_get_serial_sequence($1, $2)")
            .bind(quote_relation(table))
            .bind(column)
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        if let Some(seq) = seq {
            sqlx::query(&format!(
                "SELECT setval($1::regclass, coalesce((SELECT max({}) FROM {}), 0) + 1, false)",
                quote_ident(column),
                quote_relation(table)
            ))
            .bind(seq)
            .execute(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    async fn export_csv(
        &mut self,
        query: &super::ExportQuery,
        sink: &mut (dyn for<'x> FnMut(&'x [u8]) -> std::io::Result<()> + Send),
    ) -> Result<(), DbError> {
        let sql = format!(
            "COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER)",
            query.select()
        );
        // Under the migration's search path, a filter's own table names
        // mean what they mean in the migration; the transaction only scopes
        // that setting and changes nothing.
        if let Some(path) = &query.search_path {
            self.execute("BEGIN READ ONLY").await?;
            if let Err(e) = self.set_local_search_path(path).await {
                let _ = self.execute("ROLLBACK").await;
                return Err(e);
            }
        }
        let result = self.copy_out(&sql, sink).await;
        if query.search_path.is_some() {
            let ended = self.execute("ROLLBACK").await;
            result?;
            return ended;
        }
        result
    }

    async fn import_csv(
        &mut self,
        table: &super::Relation,
        columns: &[String],
        load: &super::Load,
        source: &mut (dyn std::io::BufRead + Send),
    ) -> Result<u64, DbError> {
        use super::Load;
        let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
        let list = cols.join(", ");
        let target = table.quoted();
        if *load == Load::Insert {
            // COPY writes identity columns (GENERATED ALWAYS too) as given.
            let sql = format!("COPY {target} ({list}) FROM STDIN WITH (FORMAT csv, HEADER)");
            return self.copy_in(&sql, source).await;
        }
        // Load into a temporary table of the same column types, then one
        // statement: a single pass over the table instead of one per row.
        let staging = quote_ident("keel_restore");
        self.execute(&format!(
            "DROP TABLE IF EXISTS {staging}; \
             CREATE TEMP TABLE {staging} AS SELECT {list} FROM {target} WITH NO DATA"
        ))
        .await?;
        self.copy_in(
            &format!("COPY {staging} ({list}) FROM STDIN WITH (FORMAT csv, HEADER)"),
            source,
        )
        .await?;
        let sql = match load {
            Load::Insert => unreachable!("handled above"),
            Load::Update { key } => {
                let set: Vec<String> = columns
                    .iter()
                    .filter(|c| !key.contains(c))
                    .map(|c| format!("{0} = r.{0}", quote_ident(c)))
                    .collect();
                if set.is_empty() {
                    None
                } else {
                    Some(format!(
                        "UPDATE {target} AS t SET {} FROM {staging} AS r WHERE {}",
                        set.join(", "),
                        key_match(key)
                    ))
                }
            }
            Load::InsertMissing { key } => {
                let from_r: Vec<String> = cols.iter().map(|c| format!("r.{c}")).collect();
                Some(format!(
                    "INSERT INTO {target} ({list}) OVERRIDING SYSTEM VALUE SELECT {} FROM {staging} AS r \
                     WHERE NOT EXISTS (SELECT 1 FROM {target} AS t WHERE {})",
                    from_r.join(", "),
                    key_match(key)
                ))
            }
        };
        let changed = match sql {
            Some(sql) => sqlx::query(&sql)
                .execute(&mut self.conn)
                .await
                .map_err(|e| self.err(e))?
                .rows_affected(),
            None => 0,
        };
        self.execute(&format!("DROP TABLE {staging}")).await?;
        Ok(changed)
    }

    async fn resolve_table(
        &mut self,
        table: &super::Relation,
        search_path: Option<&super::SearchPath>,
    ) -> Result<Option<super::Relation>, DbError> {
        let lookup = "SELECT n.nspname::text, c.relname::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)";
        let Some(path) = search_path.filter(|_| table.schema.is_none()) else {
            let row: Option<(String, String)> = sqlx::query_as(lookup)
                .bind(table.quoted())
                .fetch_optional(&mut self.conn)
                .await
                .map_err(|e| self.err(e))?;
            return Ok(row.map(|(s, n)| super::Relation::new(Some(&s), &n)));
        };
        self.execute("BEGIN READ ONLY").await?;
        let result = async {
            self.set_local_search_path(path).await?;
            sqlx::query_as::<_, (String, String)>(lookup)
                .bind(table.quoted())
                .fetch_optional(&mut self.conn)
                .await
                .map_err(|e| self.err(e))
        }
        .await;
        let ended = self.execute("ROLLBACK").await;
        let row = result?;
        ended?;
        Ok(row.map(|(s, n)| super::Relation::new(Some(&s), &n)))
    }

    async fn generated_columns(&mut self, table: &super::Relation) -> Result<Vec<String>, DbError> {
        sqlx::query_scalar(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass($1) \
             AND attnum > 0 AND NOT attisdropped AND attgenerated <> '' ORDER BY attnum",
        )
        .bind(table.quoted())
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))
    }

    async fn primary_key(&mut self, table: &str) -> Result<Vec<String>, DbError> {
        sqlx::query_scalar(
            "SELECT a.attname::text FROM pg_index i \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
             WHERE i.indrelid = to_regclass($1) AND i.indisprimary \
             ORDER BY array_position(i.indkey::int2[], a.attnum)",
        )
        .bind(quote_relation(table))
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))
    }

    async fn snapshot(&mut self, dest: &Path) -> Result<(), DbError> {
        super::pg_dump::dump(&self.secret_url, &self.url, dest).await
    }

    async fn read_snapshot(&mut self, path: &Path) -> Result<super::SnapshotFacts, DbError> {
        let header = super::pg_dump::list(path).await?;
        let id = super::pg_dump::database_id(path).await?;
        let this: String = sqlx::query_scalar("SELECT current_database()::text")
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        Ok(super::SnapshotFacts {
            database: header.dbname,
            this_database: Some(this),
            database_id: id,
            this_database_id: self.database_id().await?,
            created_at: header.created_at,
        })
    }

    async fn execute_bound(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        super::catalog::execute_bound(&mut self.conn, &self.url, sql, params).await
    }

    async fn table_stats(&mut self) -> Result<Option<Vec<TableStats>>, DbError> {
        super::catalog::table_stats(&mut self.conn, &self.url)
            .await
            .map(Some)
    }

    async fn column_types(&mut self) -> Result<Option<Vec<LiveColumn>>, DbError> {
        super::catalog::column_types(&mut self.conn, &self.url)
            .await
            .map(Some)
    }

    async fn not_null_checks(&mut self) -> Result<Option<Vec<NotNullCheck>>, DbError> {
        super::catalog::not_null_checks(&mut self.conn, &self.url)
            .await
            .map(Some)
    }

    async fn function_volatility(&mut self) -> Result<Option<Vec<(String, char)>>, DbError> {
        super::catalog::function_volatility(&mut self.conn, &self.url)
            .await
            .map(Some)
    }

    async fn session_timezone(&mut self) -> Result<Option<String>, DbError> {
        super::catalog::session_timezone(&mut self.conn, &self.url)
            .await
            .map(Some)
    }

    async fn load_calibration(&mut self) -> Result<Option<String>, DbError> {
        super::catalog::load_calibration(&mut self.conn, &self.url).await
    }

    async fn save_calibration(&mut self, json: &str) -> Result<(), DbError> {
        super::catalog::save_calibration(&mut self.conn, &self.url, json).await
    }

    async fn close(self: Box<Self>) {
        let _ = self.conn.close().await;
    }
}

fn pg_arguments(params: &[Value]) -> Result<sqlx::postgres::PgArguments, DbError> {
    use sqlx::Arguments;
    let mut args = sqlx::postgres::PgArguments::default();
    for value in params {
        let added = match value.clone() {
            Value::Null => args.add(Option::<i64>::None),
            Value::Int(i) => args.add(i),
            Value::Bool(b) => args.add(b),
            Value::Text(s) => args.add(s),
            Value::Timestamp(t) => args.add(t),
        };
        added.map_err(|e| DbError::new(super::DbErrorKind::Statement, e.to_string()))?;
    }
    Ok(args)
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

/// Bytes gathered before an export hands a chunk on.
const EXPORT_CHUNK: usize = 256 * 1024;

fn sink_error(e: std::io::Error) -> DbError {
    DbError::new(
        super::DbErrorKind::Statement,
        format!("writing the exported rows failed: {e}"),
    )
}

/// `t.k = r.k AND …` for every key column.
fn key_match(key: &[String]) -> String {
    key.iter()
        .map(|k| format!("t.{0} = r.{0}", quote_ident(k)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

impl Postgres {
    /// Sets a migration's search path for the rest of the open transaction.
    async fn set_local_search_path(&mut self, path: &super::SearchPath) -> Result<(), DbError> {
        match path {
            // The list as the migration wrote it (it ran, or will run, as
            // part of up.sql anyway), in the one statement it can be.
            super::SearchPath::List(list) => {
                self.execute(&format!("SET LOCAL search_path TO {list}"))
                    .await
            }
            super::SearchPath::Config(value) => {
                sqlx::query("SELECT set_config('search_path', $1, true)")
                    .bind(value)
                    .execute(&mut self.conn)
                    .await
                    .map(|_| ())
                    .map_err(|e| self.err(e))
            }
        }
    }

    /// Runs `COPY (…) TO STDOUT` and hands the rows to `sink` in large chunks.
    async fn copy_out(
        &mut self,
        sql: &str,
        sink: &mut (dyn for<'x> FnMut(&'x [u8]) -> std::io::Result<()> + Send),
    ) -> Result<(), DbError> {
        let url = self.url.clone();
        let mut stream = self
            .conn
            .copy_out_raw(sql)
            .await
            .map_err(|e| DbError::from_sqlx(e, &url))?;
        // The server sends one message per row; hand them on in large
        // chunks so that hashing and compression work on big blocks.
        let mut buf = Vec::with_capacity(EXPORT_CHUNK + 4096);
        while let Some(bytes) = stream
            .try_next()
            .await
            .map_err(|e| DbError::from_sqlx(e, &url))?
        {
            buf.extend_from_slice(&bytes);
            if buf.len() >= EXPORT_CHUNK {
                sink(&buf).map_err(sink_error)?;
                buf.clear();
            }
        }
        if !buf.is_empty() {
            sink(&buf).map_err(sink_error)?;
        }
        Ok(())
    }

    /// Runs `COPY … FROM STDIN` fed from `source` in large blocks.
    async fn copy_in(
        &mut self,
        sql: &str,
        source: &mut (dyn std::io::BufRead + Send),
    ) -> Result<u64, DbError> {
        let url = self.url.clone();
        let mut copy = self
            .conn
            .copy_in_raw(sql)
            .await
            .map_err(|e| DbError::from_sqlx(e, &url))?;
        let mut buf = vec![0u8; EXPORT_CHUNK];
        loop {
            let n = match source.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = copy.abort(format!("reading the backup failed: {e}")).await;
                    return Err(DbError::new(
                        super::DbErrorKind::Statement,
                        format!("reading the rows to load failed: {e}"),
                    ));
                }
            };
            copy.send(&buf[..n])
                .await
                .map_err(|e| DbError::from_sqlx(e, &url))?;
        }
        copy.finish().await.map_err(|e| DbError::from_sqlx(e, &url))
    }
}

/// Appends a value in COPY's text format.
fn copy_text(buf: &mut String, value: &Value) {
    match value {
        Value::Null => buf.push_str("\\N"),
        Value::Int(i) => buf.push_str(&i.to_string()),
        Value::Bool(b) => buf.push_str(if *b { "t" } else { "f" }),
        Value::Timestamp(t) => buf.push_str(&t.to_rfc3339()),
        Value::Text(s) => {
            for ch in s.chars() {
                match ch {
                    '\\' => buf.push_str("\\\\"),
                    '\t' => buf.push_str("\\t"),
                    '\n' => buf.push_str("\\n"),
                    '\r' => buf.push_str("\\r"),
                    c => buf.push(c),
                }
            }
        }
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
        let mut error = DbError::new(super::super::DbErrorKind::Statement, "x");
        error.position = position;
        let e = batch.locate(error, done);
        (e.index, e.error.position)
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
