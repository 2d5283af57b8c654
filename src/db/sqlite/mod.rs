use super::tracking::{ADDED_COLUMNS, KEEL_TABLES, META, TABLE};
use super::{
    ColumnInfo, ColumnSummary, ConstraintInfo, Database, DbError, DbErrorKind, IndexInfo, Relation,
    Timeouts, TrackingRow, TrackingState, Value, quote_ident, quote_relation,
};
use async_trait::async_trait;
use futures_util::TryStreamExt;
use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteConnection};
use sqlx::{Arguments, ConnectOptions, Connection, Row};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub struct Sqlite {
    conn: SqliteConnection,
    url: String,
    /// The database file, for the run lock beside it; `None` in memory.
    path: Option<PathBuf>,
    lock: Option<File>,
}

/// The run lock file's contents: the holder's pid, host and start, one
/// `key=value` a line.
mod lock_file {
    use super::super::LockHolder;
    use std::io::{Seek, Write};

    pub fn write(file: &mut std::fs::File) -> std::io::Result<()> {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_default();
        file.set_len(0)?;
        file.rewind()?;
        write!(
            file,
            "pid={}\nhost={host}\nsince={}\n",
            std::process::id(),
            chrono::Utc::now().to_rfc3339()
        )
    }

    /// Untrusted text: anything unexpected gives no holder rather than an error.
    pub fn parse(text: &str) -> Option<LockHolder> {
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(|v| {
                    v.chars()
                        .filter(|c| !c.is_control())
                        .take(200)
                        .collect::<String>()
                })
        };
        Some(LockHolder {
            pid: field("pid")?.parse().ok()?,
            application: None,
            client: field("host").filter(|h| !h.is_empty()),
            state: None,
            since: field("since")
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&chrono::Utc)),
            query: None,
            backend: false,
        })
    }
}

impl Sqlite {
    pub async fn connect(url: &str, display: String) -> Result<Sqlite, DbError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| DbError::from_sqlx(e, &display))?
            .create_if_missing(true)
            .foreign_keys(true)
            .disable_statement_logging();
        let path = options.get_filename();
        let path = (!path.as_os_str().is_empty() && path != std::path::Path::new(":memory:"))
            .then(|| path.to_path_buf());
        let conn = options
            .connect()
            .await
            .map_err(|e| DbError::from_sqlx_connect(e, &display))?;
        Ok(Sqlite {
            conn,
            url: display,
            path,
            lock: None,
        })
    }

    fn err(&self, e: sqlx::Error) -> DbError {
        DbError::from_sqlx(e, &self.url)
    }
}

#[async_trait]
impl Database for Sqlite {
    fn dialect_name(&self) -> &'static str {
        "SQLite"
    }

    fn display_url(&self) -> &str {
        &self.url
    }

    fn supports_statement_timeout(&self) -> bool {
        false
    }

    async fn execute(&mut self, sql: &str) -> Result<(), DbError> {
        let conn: &mut _ = &mut self.conn;
        sqlx::Executor::execute(conn, sqlx::raw_sql(sql))
            .await
            .map(|_| ())
            .map_err(|e| DbError::from_sqlx(e, &self.url))
    }

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

    async fn commit(&mut self) -> Result<(), DbError> {
        self.execute("COMMIT").await
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
        self.execute(&format!("PRAGMA busy_timeout = {}", t.lock.as_millis()))
            .await
    }

    async fn ensure_tracking(&mut self) -> Result<(), DbError> {
        self.execute(&format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (
                version TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                checksum TEXT NOT NULL,
                state TEXT NOT NULL,
                applied_at TEXT NOT NULL,
                applied_by TEXT NOT NULL,
                execution_ms INTEGER NOT NULL,
                statements_done INTEGER NOT NULL DEFAULT 0,
                error TEXT,
                backup TEXT,
                backup_sha256 TEXT
            );
            CREATE TABLE IF NOT EXISTS {META} (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
        ))
        .await?;
        let have: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?)")
            .bind(TABLE)
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        for (column, ty) in ADDED_COLUMNS {
            if !have.iter().any(|c| c == column) {
                self.execute(&format!(
                    "ALTER TABLE {TABLE} ADD COLUMN {} {ty}",
                    quote_ident(column)
                ))
                .await?;
            }
        }
        let id = super::tracking::new_database_id()
            .map_err(|e| DbError::new(DbErrorKind::Connection, e.to_string()))?;
        sqlx::query(&format!(
            "INSERT OR IGNORE INTO {META} (key, value) VALUES ('database_id', ?)"
        ))
        .bind(id)
        .execute(&mut self.conn)
        .await
        .map(|_| ())
        .map_err(|e| self.err(e))
    }

    async fn database_id(&mut self) -> Result<Option<String>, DbError> {
        let exists: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
        )
        .bind(META)
        .fetch_one(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        if exists == 0 {
            return Ok(None);
        }
        sqlx::query_scalar(&format!(
            "SELECT value FROM {META} WHERE key = 'database_id'"
        ))
        .fetch_optional(&mut self.conn)
        .await
        .map_err(|e| self.err(e))
    }

    async fn reset_session(&mut self) -> Result<(), DbError> {
        Ok(())
    }

    async fn tracking_rows(&mut self) -> Result<Vec<TrackingRow>, DbError> {
        let exists: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
        )
        .bind(TABLE)
        .fetch_one(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        if exists == 0 {
            return Ok(Vec::new());
        }
        let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?)")
            .bind(TABLE)
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        // Read by an older table too (before `ensure_tracking` added them).
        let backup = if columns.iter().any(|c| c == "backup_sha256") {
            "backup, backup_sha256"
        } else {
            "NULL AS backup, NULL AS backup_sha256"
        };
        let rows = sqlx::query(&format!(
            "SELECT version, name, checksum, state, applied_at, applied_by, execution_ms, \
             statements_done, error, {backup} FROM {TABLE} ORDER BY version"
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
        sqlx::query(&format!(
            "INSERT OR REPLACE INTO {TABLE} (version, name, checksum, state, applied_at, \
             applied_by, execution_ms, statements_done, error, backup, backup_sha256) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
        sqlx::query(&format!("DELETE FROM {TABLE} WHERE version = ?"))
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
        // An exclusive SQLite transaction for the whole run would make the run
        // one commit; a lock file beside the database keeps runs one at a time
        // while each migration still commits on its own.
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        let lock_error = |e: std::io::Error| {
            DbError::new(
                DbErrorKind::Connection,
                format!("run lock {}: {e}", lock_path.display()),
            )
        };
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(lock_error)?;
        let mut file = match file.try_lock() {
            Ok(()) => file,
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&lock_path)
                    .ok()
                    .and_then(|s| lock_file::parse(&s));
                on_wait(holder.as_ref());
                tokio::task::spawn_blocking(move || file.lock().map(|()| file))
                    .await
                    .map_err(|e| DbError::new(DbErrorKind::Connection, e.to_string()))?
                    .map_err(lock_error)?
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(lock_error(e)),
        };
        // Who holds it, for a run that has to wait: the OS lets go of the
        // lock when this process ends, however it ends.
        lock_file::write(&mut file).map_err(lock_error)?;
        self.lock = Some(file);
        Ok(())
    }

    async fn unlock_runs(&mut self) -> Result<(), DbError> {
        // Dropping the file releases the lock.
        if let Some(file) = self.lock.take() {
            let _ = file.set_len(0);
        }
        Ok(())
    }

    async fn invalid_indexes(&mut self) -> Result<Vec<String>, DbError> {
        Ok(Vec::new())
    }

    async fn drop_index(&mut self, qualified_name: &str) -> Result<(), DbError> {
        self.execute(&format!(
            "DROP INDEX IF EXISTS {}",
            quote_relation(qualified_name)
        ))
        .await
    }

    async fn tables(&mut self) -> Result<Vec<String>, DbError> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND name NOT IN (SELECT value FROM json_each(?)) ORDER BY name",
        )
        .bind(serde_json::to_string(&KEEL_TABLES).unwrap_or_default())
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        Ok(names
            .into_iter()
            .map(|name| Relation { schema: None, name }.to_string())
            .collect())
    }

    async fn columns(&mut self, table: &str) -> Result<Vec<ColumnInfo>, DbError> {
        let rows = sqlx::query(
            "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?, ?) ORDER BY cid",
        )
        .bind(Relation::parse(table).name)
        .bind(Relation::parse(table).schema)
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| {
                let data_type: String = r.try_get("type")?;
                let upper = data_type.to_ascii_uppercase();
                let not_null: i64 = r.try_get("notnull")?;
                let pk: i64 = r.try_get("pk")?;
                Ok(ColumnInfo {
                    name: r.try_get("name")?,
                    is_text: upper.contains("CHAR")
                        || upper.contains("CLOB")
                        || upper.contains("TEXT"),
                    data_type: data_type.to_lowercase(),
                    nullable: not_null == 0 && pk == 0,
                    default: r.try_get("dflt_value")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.err(e))
    }

    async fn indexes(&mut self, table: &str) -> Result<Vec<IndexInfo>, DbError> {
        let rows = sqlx::query(
            "SELECT l.name, l.\"unique\", coalesce(m.sql, 'automatic index (' || l.origin || ')') AS definition \
             FROM pragma_index_list(?, ?) l LEFT JOIN sqlite_master m ON m.name = l.name AND m.type = 'index' \
             ORDER BY l.name",
        )
        .bind(Relation::parse(table).name)
        .bind(Relation::parse(table).schema)
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| {
                let unique: i64 = r.try_get("unique")?;
                Ok(IndexInfo {
                    name: r.try_get("name")?,
                    definition: r.try_get("definition")?,
                    unique: unique != 0,
                    valid: true,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.err(e))
    }

    async fn constraints(&mut self, table: &str) -> Result<Vec<ConstraintInfo>, DbError> {
        let mut out = Vec::new();
        let pk: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info(?, ?) WHERE pk > 0 ORDER BY pk")
                .bind(Relation::parse(table).name)
                .bind(Relation::parse(table).schema)
                .fetch_all(&mut self.conn)
                .await
                .map_err(|e| self.err(e))?;
        if !pk.is_empty() {
            out.push(ConstraintInfo {
                name: format!("{table}_pkey"),
                kind: "primary key".into(),
                definition: format!("PRIMARY KEY ({})", pk.join(", ")),
            });
        }
        let fks = sqlx::query(
            "SELECT \"from\", \"table\", \"to\", on_delete FROM pragma_foreign_key_list(?, ?) ORDER BY id, seq",
        )
        .bind(Relation::parse(table).name)
        .bind(Relation::parse(table).schema)
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        for r in fks {
            let from: String = r.try_get("from").map_err(|e| self.err(e))?;
            let to_table: String = r.try_get("table").map_err(|e| self.err(e))?;
            let to: Option<String> = r.try_get("to").map_err(|e| self.err(e))?;
            let on_delete: String = r.try_get("on_delete").map_err(|e| self.err(e))?;
            let mut definition = format!(
                "FOREIGN KEY ({from}) REFERENCES {to_table}({})",
                to.unwrap_or_default()
            );
            if on_delete != "NO ACTION" {
                definition.push_str(&format!(" ON DELETE {on_delete}"));
            }
            out.push(ConstraintInfo {
                name: format!("{table}_{from}_fkey"),
                kind: "foreign key".into(),
                definition,
            });
        }
        // UNIQUE constraints live as automatic indexes (origin 'u'); named
        // the way PostgreSQL names them, so both dialects read alike.
        let uniques: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM pragma_index_list(?, ?) WHERE origin = 'u' ORDER BY name",
        )
        .bind(Relation::parse(table).name)
        .bind(Relation::parse(table).schema)
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        for index in uniques {
            let columns: Vec<String> =
                sqlx::query_scalar("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
                    .bind(&index)
                    .fetch_all(&mut self.conn)
                    .await
                    .map_err(|e| self.err(e))?;
            out.push(ConstraintInfo {
                name: format!("{table}_{}_key", columns.join("_")),
                kind: "unique".into(),
                definition: format!("UNIQUE ({})", columns.join(", ")),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn summarize(&mut self, table: &str, column: &str) -> Result<ColumnSummary, DbError> {
        let (t, c) = (quote_relation(table), quote_ident(column));
        let row = sqlx::query(&format!(
            "SELECT count(*), count(*) - count({c}), CAST(min({c}) AS TEXT), CAST(max({c}) AS TEXT) FROM {t}"
        ))
        .fetch_one(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        Ok(ColumnSummary {
            rows: row.try_get(0).map_err(|e| self.err(e))?,
            nulls: row.try_get(1).map_err(|e| self.err(e))?,
            min: row.try_get(2).map_err(|e| self.err(e))?,
            max: row.try_get(3).map_err(|e| self.err(e))?,
        })
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

    async fn execute_with(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        sqlx::query_with(sql, sqlite_arguments(params)?)
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
        let rows = sqlx::query_with(sql, sqlite_arguments(params)?)
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| (0..r.len()).map(|i| sqlite_value(r, i)).collect())
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.err(e))
    }

    async fn index_valid(&mut self, name: &str) -> Result<Option<bool>, DbError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?",
        )
        .bind(name.rsplit('.').next().unwrap_or(name))
        .fetch_one(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        Ok((n > 0).then_some(true))
    }

    async fn postgres_version(&mut self) -> Result<Option<u32>, DbError> {
        Ok(None)
    }

    async fn count_rows(&mut self, table: &str) -> Result<i64, DbError> {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {}", quote_relation(table)))
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| self.err(e))
    }

    async fn max_int(&mut self, table: &str, column: &str) -> Result<Option<i64>, DbError> {
        sqlx::query_scalar(&format!(
            "SELECT max({}) FROM {}",
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
            "SELECT CAST({} AS TEXT) FROM {}",
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
        // Multi-row INSERTs of up to 200 rows, in one transaction: SQLite has
        // no COPY, and this is what its own documentation recommends for speed.
        // A savepoint is that transaction on its own, and nests inside a
        // caller's transaction (keel seed loads several tables in one).
        const ROWS_PER_STATEMENT: usize = 200;
        let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
        let head = format!(
            "INSERT INTO {} ({}) VALUES ",
            quote_relation(table),
            cols.join(", ")
        );
        let one = format!("({})", vec!["?"; columns.len()].join(", "));
        self.execute("SAVEPOINT keel_bulk_insert").await?;
        let mut n = 0u64;
        let result: Result<(), DbError> = async {
            let mut chunk = Vec::with_capacity(ROWS_PER_STATEMENT);
            loop {
                chunk.clear();
                chunk.extend((&mut *rows).take(ROWS_PER_STATEMENT));
                if chunk.is_empty() {
                    return Ok(());
                }
                let sql = format!("{head}{}", vec![one.as_str(); chunk.len()].join(", "));
                let mut args = SqliteArguments::default();
                for row in &chunk {
                    for value in row {
                        add_value(&mut args, value)?;
                    }
                }
                sqlx::query_with(&sql, args)
                    .execute(&mut self.conn)
                    .await
                    .map_err(|e| self.err(e))?;
                n += chunk.len() as u64;
            }
        }
        .await;
        match result {
            Ok(()) => {
                self.execute("RELEASE keel_bulk_insert").await?;
                Ok(n)
            }
            Err(e) => {
                let _ = self
                    .execute("ROLLBACK TO keel_bulk_insert; RELEASE keel_bulk_insert")
                    .await;
                Err(e)
            }
        }
    }

    async fn sync_id_sequence(&mut self, _table: &str, _column: &str) -> Result<(), DbError> {
        Ok(())
    }

    async fn export_csv(
        &mut self,
        query: &super::ExportQuery,
        sink: &mut (dyn for<'x> FnMut(&'x [u8]) -> std::io::Result<()> + Send),
    ) -> Result<(), DbError> {
        use sqlx::{TypeInfo, ValueRef};
        // SQLite has no search path: names mean the same everywhere.
        let sql = query.select();
        let columns = &query.columns;
        let url = self.url.clone();
        let mut buf = crate::csv::header(columns);
        let mut rows = sqlx::query(&sql).fetch(&mut self.conn);
        let mut fields: Vec<Option<Vec<u8>>> = Vec::with_capacity(columns.len());
        while let Some(row) = rows
            .try_next()
            .await
            .map_err(|e| DbError::from_sqlx(e, &url))?
        {
            fields.clear();
            for i in 0..columns.len() {
                let raw = row
                    .try_get_raw(i)
                    .map_err(|e| DbError::from_sqlx(e, &url))?;
                if raw.is_null() {
                    fields.push(None);
                    continue;
                }
                // SQLite types values, not columns: write each as what it is.
                let text = match raw.type_info().name() {
                    "INTEGER" => decode::<i64>(raw)?.to_string().into_bytes(),
                    "REAL" => decode::<f64>(raw)?.to_string().into_bytes(),
                    "BLOB" => {
                        // bytea's text form, as PostgreSQL writes it.
                        format!("\\x{}", hex::encode(decode::<Vec<u8>>(raw)?)).into_bytes()
                    }
                    _ => decode::<String>(raw)?.into_bytes(),
                };
                fields.push(Some(text));
            }
            crate::csv::push_record(&mut buf, fields.iter().map(|f| f.as_deref()));
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

    async fn import_csv(
        &mut self,
        table: &Relation,
        columns: &[String],
        load: &super::Load,
        source: &mut (dyn std::io::BufRead + Send),
    ) -> Result<u64, DbError> {
        use super::Load;
        let mut reader = crate::csv::Reader::new(source);
        let header = reader.next_record().map_err(csv_error)?;
        let expected: Vec<Option<String>> = columns.iter().cloned().map(Some).collect();
        if header.as_ref() != Some(&expected) {
            return Err(DbError::usage(format!(
                "the CSV header does not list the columns {}",
                columns.join(", ")
            )));
        }
        // Values are bound as text; SQLite's column affinity turns them back
        // into integers and reals where the column is declared so.
        let target = table.quoted();
        let key_positions = |key: &[String]| -> Result<Vec<usize>, DbError> {
            key.iter()
                .map(|k| {
                    columns.iter().position(|c| c == k).ok_or_else(|| {
                        DbError::usage(format!("the key column {k} is not in the backup"))
                    })
                })
                .collect()
        };
        let key_match = |keys: &[usize]| {
            keys.iter()
                .map(|&i| format!("{} = ?", quote_ident(&columns[i])))
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
        let placeholders = vec!["?"; cols.len()].join(", ");
        let (sql, order): (String, Vec<usize>) = if let Load::Insert = load {
            (
                format!(
                    "INSERT INTO {target} ({}) VALUES ({placeholders})",
                    cols.join(", ")
                ),
                (0..columns.len()).collect(),
            )
        } else if let Load::InsertMissing { key } = load {
            let keys = key_positions(key)?;
            (
                format!(
                    "INSERT INTO {target} ({}) SELECT {placeholders} \
                     WHERE NOT EXISTS (SELECT 1 FROM {target} WHERE {})",
                    cols.join(", "),
                    key_match(&keys)
                ),
                (0..columns.len()).chain(keys).collect(),
            )
        } else {
            let key: &[String] = match load {
                Load::Update { key } => key,
                _ => &[],
            };
            let set: Vec<usize> = (0..columns.len())
                .filter(|&i| !key.contains(&columns[i]))
                .collect();
            let keys = key_positions(key)?;
            let sql = format!(
                "UPDATE {target} SET {} WHERE {}",
                set.iter()
                    .map(|&i| format!("{} = ?", quote_ident(&columns[i])))
                    .collect::<Vec<_>>()
                    .join(", "),
                key_match(&keys)
            );
            (sql, set.into_iter().chain(keys).collect())
        };
        let mut done = 0u64;
        while let Some(record) = reader.next_record().map_err(csv_error)? {
            if record.len() != columns.len() {
                return Err(DbError::usage(format!(
                    "a CSV row has {} fields where {} columns were expected",
                    record.len(),
                    columns.len()
                )));
            }
            let mut args = SqliteArguments::default();
            for &i in &order {
                args.add(record[i].clone())
                    .map_err(|e| DbError::new(DbErrorKind::Statement, e.to_string()))?;
            }
            done += sqlx::query_with(&sql, args)
                .execute(&mut self.conn)
                .await
                .map_err(|e| self.err(e))?
                .rows_affected();
        }
        Ok(done)
    }

    async fn resolve_table(
        &mut self,
        table: &Relation,
        _search_path: Option<&super::SearchPath>,
    ) -> Result<Option<Relation>, DbError> {
        // Without a schema SQLite looks in temp, then main, then attached.
        let found: Option<(String, String)> = sqlx::query_as(
            "SELECT schema, name FROM pragma_table_list WHERE name = ?1 AND type = 'table' \
             AND (?2 IS NULL OR schema = ?2) \
             ORDER BY CASE schema WHEN 'temp' THEN 0 WHEN 'main' THEN 1 ELSE 2 END LIMIT 1",
        )
        .bind(&table.name)
        .bind(&table.schema)
        .fetch_optional(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        Ok(found.map(|(schema, name)| Relation {
            schema: Some(schema),
            name,
        }))
    }

    async fn generated_columns(&mut self, table: &Relation) -> Result<Vec<String>, DbError> {
        // table_xinfo's hidden: 2 virtual, 3 stored generated columns.
        sqlx::query_scalar(
            "SELECT name FROM pragma_table_xinfo(?, ?) WHERE hidden IN (2, 3) ORDER BY cid",
        )
        .bind(&table.name)
        .bind(&table.schema)
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e))
    }

    async fn primary_key(&mut self, table: &str) -> Result<Vec<String>, DbError> {
        sqlx::query_scalar("SELECT name FROM pragma_table_info(?, ?) WHERE pk > 0 ORDER BY pk")
            .bind(Relation::parse(table).name)
            .bind(Relation::parse(table).schema)
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e))
    }

    async fn snapshot(&mut self, dest: &Path) -> Result<(), DbError> {
        let path = dest.to_str().ok_or_else(|| {
            DbError::usage(format!("the snapshot path {} is not UTF-8", dest.display()))
        })?;
        sqlx::query("VACUUM INTO ?")
            .bind(path)
            .execute(&mut self.conn)
            .await
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    async fn read_snapshot(&mut self, path: &Path) -> Result<super::SnapshotFacts, DbError> {
        // Read-only and immutable: checking a snapshot never writes to it
        // (no journal, no WAL files beside it).
        let shown = path.display().to_string();
        let unreadable = |e: sqlx::Error| {
            DbError::new(
                DbErrorKind::Statement,
                format!("{shown} is not a readable SQLite database: {e}"),
            )
        };
        let mut conn = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .immutable(true)
            .disable_statement_logging()
            .connect()
            .await
            .map_err(unreadable)?;
        let verdict: Vec<String> = sqlx::query_scalar("PRAGMA quick_check")
            .fetch_all(&mut conn)
            .await
            .map_err(unreadable)?;
        // The id keel_meta held when the snapshot was taken, if any.
        let id: Option<String> = sqlx::query_scalar(&format!(
            "SELECT value FROM {META} WHERE key = 'database_id'"
        ))
        .fetch_optional(&mut conn)
        .await
        .unwrap_or(None);
        let _ = conn.close().await;
        if verdict.first().map(String::as_str) != Some("ok") {
            return Err(DbError::new(
                DbErrorKind::Statement,
                format!("{shown} fails SQLite's quick_check: {}", verdict.join("; ")),
            ));
        }
        Ok(super::SnapshotFacts {
            database_id: id,
            this_database_id: self.database_id().await?,
            ..Default::default()
        })
    }

    async fn execute_bound(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let mut args = SqliteArguments::default();
        for p in params {
            let added = match p {
                Value::Null => args.add(None::<String>),
                Value::Int(i) => args.add(*i),
                Value::Bool(b) => args.add(*b),
                Value::Text(s) => args.add(s.clone()),
                Value::Timestamp(t) => args.add(*t),
            };
            added.map_err(|e| DbError::usage(e.to_string()))?;
        }
        sqlx::query_with(sql, args)
            .execute(&mut self.conn)
            .await
            .map(|r| r.rows_affected())
            .map_err(|e| self.err(e))
    }

    async fn table_stats(&mut self) -> Result<Option<Vec<super::TableStats>>, DbError> {
        Ok(None)
    }

    async fn column_types(&mut self) -> Result<Option<Vec<super::LiveColumn>>, DbError> {
        Ok(None)
    }

    async fn not_null_checks(&mut self) -> Result<Option<Vec<super::NotNullCheck>>, DbError> {
        Ok(None)
    }

    async fn function_volatility(&mut self) -> Result<Option<Vec<(String, char)>>, DbError> {
        Ok(None)
    }

    async fn session_timezone(&mut self) -> Result<Option<String>, DbError> {
        Ok(None)
    }

    async fn load_calibration(&mut self) -> Result<Option<String>, DbError> {
        Ok(None)
    }

    async fn save_calibration(&mut self, _json: &str) -> Result<(), DbError> {
        Err(DbError::usage(
            "calibration measures PostgreSQL's rewrites, index builds and scans; SQLite has none to time",
        ))
    }

    async fn close(self: Box<Self>) {
        let _ = self.conn.close().await;
    }
}

fn add_value(args: &mut SqliteArguments<'_>, value: &Value) -> Result<(), DbError> {
    let added = match value.clone() {
        Value::Null => args.add(Option::<i64>::None),
        Value::Int(i) => args.add(i),
        Value::Bool(b) => args.add(b),
        Value::Text(s) => args.add(s),
        Value::Timestamp(t) => args.add(t),
    };
    added.map_err(|e| DbError::new(DbErrorKind::Statement, e.to_string()))
}

fn sqlite_arguments(params: &[Value]) -> Result<SqliteArguments<'static>, DbError> {
    let mut args = SqliteArguments::default();
    for value in params {
        add_value(&mut args, value)?;
    }
    Ok(args)
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

/// Bytes gathered before an export hands a chunk on.
const EXPORT_CHUNK: usize = 256 * 1024;

fn decode<'r, T: sqlx::Decode<'r, sqlx::Sqlite>>(
    raw: sqlx::sqlite::SqliteValueRef<'r>,
) -> Result<T, DbError> {
    T::decode(raw).map_err(|e| DbError::new(DbErrorKind::Statement, e.to_string()))
}

fn sink_error(e: std::io::Error) -> DbError {
    DbError::new(
        DbErrorKind::Statement,
        format!("writing the exported rows failed: {e}"),
    )
}

fn csv_error(e: crate::csv::ReadError) -> DbError {
    DbError::usage(format!("the CSV data is malformed: {e}"))
}
