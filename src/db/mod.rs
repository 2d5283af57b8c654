//! The only place where PostgreSQL and SQLite differ.
//!
//! [`Database`] is one trait with an implementation per dialect. Everything
//! outside `db/` talks to it and never asks which database is behind it.

mod catalog;
mod error;
mod pg_dump;
mod postgres;
mod quote;
mod sqlite;
mod tracking;

pub use catalog::CALIBRATION_TABLE;
pub use error::{DbError, DbErrorKind};
pub use quote::{Relation, quote_ident, quote_relation};
pub use tracking::{BackupRef, KEEL_TABLES, TrackingRow, TrackingState};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::path::Path;
use std::time::Duration;

/// A statement of a batch failed: which one (`None`: none of the given
/// statements, e.g. opening the transaction), and the server's error with its
/// position relative to that statement.
#[derive(Debug)]
pub struct StatementError {
    pub index: Option<usize>,
    pub error: DbError,
}

/// A search path a migration sets, as written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchPath {
    /// `SET [SESSION | LOCAL] search_path { TO | = } <list>`: the list's text,
    /// which `SET LOCAL search_path TO <list>` reproduces exactly.
    List(String),
    /// `SELECT [pg_catalog.]set_config('search_path', '<value>', …)` (what
    /// pg_dump writes): the value.
    Config(String),
}

/// The rows of one table a backup exports: `SELECT columns FROM table [AS
/// alias] [WHERE filter]`, run under `search_path` when the migration set
/// one (the filter may name other tables the way the migration does).
#[derive(Debug, Clone)]
pub struct ExportQuery {
    pub table: Relation,
    pub alias: Option<String>,
    pub columns: Vec<String>,
    /// A condition from the migration's own statement (SQL as reviewed in
    /// up.sql), or `None` for every row.
    pub filter: Option<String>,
    pub search_path: Option<SearchPath>,
}

impl ExportQuery {
    /// The SELECT, every identifier quoted.
    pub fn select(&self) -> String {
        let cols: Vec<String> = self.columns.iter().map(|c| quote_ident(c)).collect();
        let mut sql = format!("SELECT {} FROM {}", cols.join(", "), self.table.quoted());
        if let Some(a) = &self.alias {
            sql.push_str(" AS ");
            sql.push_str(&quote_ident(a));
        }
        if let Some(f) = &self.filter {
            sql.push_str(" WHERE ");
            sql.push_str(f);
        }
        sql
    }
}

/// How backed-up rows go back into their table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Load {
    /// Every row is inserted (the table was dropped or emptied).
    Insert,
    /// Rows whose key is not in the table are inserted; rows whose key is
    /// there again are left as they are (rows a DELETE removed).
    InsertMissing { key: Vec<String> },
    /// The other columns of the rows with these keys are set back.
    Update { key: Vec<String> },
}

/// Limits applied to each migration's statements.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub lock: Duration,
    pub statement: Duration,
}

/// A value for bulk loading and stats, independent of the dialect.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Bool(bool),
    Text(String),
    Timestamp(DateTime<Utc>),
}

impl Value {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i64),
            Value::Text(t) => t.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::Int(i) => Some(i.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Text(t) => Some(t.clone()),
            Value::Timestamp(t) => Some(t.to_rfc3339()),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ColumnInfo {
    pub name: String,
    pub data_type: String,
    pub nullable: bool,
    pub default: Option<String>,
    /// True for text-like columns (text, varchar, char), where word and
    /// character statistics make sense.
    pub is_text: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct IndexInfo {
    pub name: String,
    pub definition: String,
    pub unique: bool,
    pub valid: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ConstraintInfo {
    pub name: String,
    pub kind: String,
    pub definition: String,
}

/// Count, nulls and range of one column, computed by the database.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ColumnSummary {
    pub rows: i64,
    pub nulls: i64,
    pub min: Option<String>,
    pub max: Option<String>,
}

/// Size of one table as the catalog knows it (PostgreSQL live mode).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TableStats {
    pub schema: String,
    pub name: String,
    /// `pg_class.reltuples` as of the last VACUUM/ANALYZE; -1 when never
    /// counted (PostgreSQL 14+).
    pub reltuples: f64,
    /// `pg_class.relpages` at the same moment.
    pub relpages: i64,
    /// `pg_stat_user_tables.n_live_tup`: kept current by the statistics system.
    pub live_tuples: i64,
    /// The heap's main fork now (`pg_relation_size`).
    pub heap_bytes: i64,
    /// Heap plus TOAST (`pg_table_size`).
    pub table_bytes: i64,
    /// With indexes (`pg_total_relation_size`).
    pub total_bytes: i64,
    /// Bytes per row as the planner guesses it for a never-analysed table.
    pub row_width: i64,
    pub indexes: Vec<IndexSize>,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct IndexSize {
    pub name: String,
    pub bytes: i64,
    pub unique: bool,
    /// `btree`, `gin`, …
    pub method: String,
    /// A key column is text-like: comparisons follow the collation, slower to sort.
    pub text_key: bool,
}

/// A column's current type, as `format_type` prints it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LiveColumn {
    pub schema: String,
    pub table: String,
    pub name: String,
    pub data_type: String,
    pub not_null: bool,
}

/// A `CHECK (column IS NOT NULL)` constraint.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NotNullCheck {
    pub schema: String,
    pub table: String,
    pub name: String,
    pub column: String,
    /// Validated (`convalidated`): only then does it prove NOT NULL.
    pub valid: bool,
}

/// What a snapshot says about itself, and what this database is, so the
/// caller can tell a dump of another database.
#[derive(Debug, Clone, Default)]
pub struct SnapshotFacts {
    /// The database the dump was taken of (PostgreSQL's archive header).
    pub database: Option<String>,
    /// This connection's database, comparable with `database`.
    pub this_database: Option<String>,
    /// The `keel_meta` database id in the snapshot, and this database's:
    /// unlike names, equal only for copies of one database.
    pub database_id: Option<String>,
    pub this_database_id: Option<String>,
    /// When the dump was taken, by the archive's own header.
    pub created_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait Database: Send {
    /// "PostgreSQL" or "SQLite", for messages.
    fn dialect_name(&self) -> &'static str;
    /// The connection URL with any password replaced by `***`.
    fn display_url(&self) -> &str;
    /// True where DDL is transactional and `validate` can run migrations in a
    /// rolled-back transaction. Both dialects can.
    fn supports_statement_timeout(&self) -> bool;

    /// Runs one statement (or several, for internal scripts) as sent, with no
    /// parameters.
    async fn execute(&mut self, sql: &str) -> Result<(), DbError>;

    /// Opens a transaction for one migration, with its timeouts. `durable`
    /// false lets the commit return before the WAL is flushed (PostgreSQL
    /// `synchronous_commit = off`), which stays atomic.
    async fn begin(&mut self, timeouts: Timeouts, durable: bool) -> Result<(), DbError>;
    /// [`begin`](Database::begin), then runs `statements` in that
    /// transaction, in order, stopping at the first error. The error says
    /// which statement failed (`None`: opening the transaction did), with
    /// any position relative to that statement. The transaction stays open
    /// either way: the caller commits or rolls back.
    ///
    /// This default sends one statement at a time; PostgreSQL overrides it
    /// to send everything in one round trip.
    async fn begin_and_run(
        &mut self,
        timeouts: Timeouts,
        durable: bool,
        statements: &[&str],
    ) -> Result<(), StatementError> {
        begin_and_run_one_by_one(self, timeouts, durable, statements).await
    }
    async fn commit(&mut self) -> Result<(), DbError>;
    async fn rollback(&mut self) -> Result<(), DbError>;
    async fn savepoint(&mut self, name: &str) -> Result<(), DbError>;
    async fn rollback_to_savepoint(&mut self, name: &str) -> Result<(), DbError>;
    /// Sets the timeouts for the session, for statements run outside a
    /// transaction (non-transactional migrations).
    async fn set_session_timeouts(&mut self, timeouts: Timeouts) -> Result<(), DbError>;

    /// Creates the tracking table if it does not exist (and adds the
    /// columns an older keel's table lacks), and gives the database its id.
    async fn ensure_tracking(&mut self) -> Result<(), DbError>;
    /// The random id keel gave this database with its tracking table
    /// (`keel_meta`): what backups and snapshots are bound to. `None`
    /// before keel first wrote to it.
    async fn database_id(&mut self) -> Result<Option<String>, DbError>;
    /// What tells this database apart from a copy of it restored elsewhere
    /// (a copy carries keel_meta's id along): PostgreSQL's cluster system
    /// identifier and the database's OID. `None` where there is no such
    /// thing (SQLite) or the server does not say.
    async fn server_identity(&mut self) -> Result<Option<String>, DbError> {
        Ok(None)
    }
    /// Undoes what a migration changed in the session's settings
    /// (PostgreSQL: `search_path`, `ROLE`), so that the next migration and
    /// keel's own statements run in the session as keel opened it.
    async fn reset_session(&mut self) -> Result<(), DbError>;
    /// Every row of the tracking table, by version; empty when it does not exist.
    async fn tracking_rows(&mut self) -> Result<Vec<TrackingRow>, DbError>;
    /// Inserts or replaces the row for `row.version`.
    async fn write_tracking(&mut self, row: &TrackingRow) -> Result<(), DbError>;
    async fn delete_tracking(&mut self, version: &str) -> Result<(), DbError>;

    /// Takes the one-runner-at-a-time lock, waiting for another runner to
    /// finish. `on_wait` is called once if the lock is busy.
    async fn lock_runs(&mut self, on_wait: &(dyn Fn() + Sync)) -> Result<(), DbError>;
    async fn unlock_runs(&mut self) -> Result<(), DbError>;

    /// Names of indexes that a failed `CREATE INDEX CONCURRENTLY` left INVALID.
    async fn invalid_indexes(&mut self) -> Result<Vec<String>, DbError>;
    async fn drop_index(&mut self, qualified_name: &str) -> Result<(), DbError>;

    /// User tables (no system or keel tables), by name.
    async fn tables(&mut self) -> Result<Vec<String>, DbError>;
    async fn columns(&mut self, table: &str) -> Result<Vec<ColumnInfo>, DbError>;
    async fn indexes(&mut self, table: &str) -> Result<Vec<IndexInfo>, DbError>;
    async fn constraints(&mut self, table: &str) -> Result<Vec<ConstraintInfo>, DbError>;
    async fn summarize(&mut self, table: &str, column: &str) -> Result<ColumnSummary, DbError>;
    async fn count_rows(&mut self, table: &str) -> Result<i64, DbError>;
    async fn max_int(&mut self, table: &str, column: &str) -> Result<Option<i64>, DbError>;
    /// Reads a column's values as text, one at a time, without holding the
    /// column in memory. Returns how many rows were visited.
    async fn scan_text(
        &mut self,
        table: &str,
        column: &str,
        visit: &mut (dyn for<'x> FnMut(Option<&'x str>) + Send),
    ) -> Result<u64, DbError>;

    /// Loads rows fast (PostgreSQL: COPY; SQLite: prepared inserts in one
    /// transaction). Rows come in chunks so memory stays flat.
    async fn bulk_insert(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: &mut (dyn Iterator<Item = Vec<Value>> + Send),
    ) -> Result<u64, DbError>;
    /// After rows were loaded with explicit ids, moves the table's id
    /// sequence past them (PostgreSQL); nothing on SQLite.
    async fn sync_id_sequence(&mut self, table: &str, column: &str) -> Result<(), DbError>;

    /// Runs a query (a smoke check) and returns the first column of its
    /// first row as text, the way the database prints it: `None` when it
    /// returns no row, `Some(None)` for NULL. Run it inside a transaction
    /// that is rolled back when the query must not change anything.
    async fn query_text(&mut self, sql: &str) -> Result<Option<Option<String>>, DbError>;
    /// Runs one statement with bind parameters (`$1`, `$2`, … in both
    /// dialects) and returns how many rows it changed. Values always travel
    /// this way; only identifiers (quoted by [`quote_ident`]) are in the text.
    async fn execute_with(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError>;
    /// Runs one query with bind parameters; every column of every row comes
    /// back as a [`Value`] (integers, booleans, text, timestamps, NULL).
    async fn query_with(&mut self, sql: &str, params: &[Value])
    -> Result<Vec<Vec<Value>>, DbError>;
    /// Whether the index `name` (optionally `schema.name`) is valid: `None`
    /// when there is no such index. SQLite builds indexes in one step, so
    /// an existing one is always valid.
    async fn index_valid(&mut self, name: &str) -> Result<Option<bool>, DbError>;

    /// PostgreSQL's `server_version_num` (150004 for 15.4): the analysis
    /// models PostgreSQL's locks, so other databases return `None`.
    async fn postgres_version(&mut self) -> Result<Option<u32>, DbError>;
    /// Streams the query's rows as CSV with a header line, in the dialect of
    /// [`crate::csv`], into `sink` chunk by chunk; the table is never held
    /// in memory. PostgreSQL: `COPY (SELECT …) TO STDOUT WITH (FORMAT csv,
    /// HEADER)`. An error from `sink` stops the export.
    async fn export_csv(
        &mut self,
        query: &ExportQuery,
        sink: &mut (dyn for<'x> FnMut(&'x [u8]) -> std::io::Result<()> + Send),
    ) -> Result<(), DbError>;

    /// Puts CSV rows (header first, `columns` in that order) back into
    /// `table` as `load` says. Runs inside the caller's transaction; returns
    /// how many rows were inserted or updated.
    async fn import_csv(
        &mut self,
        table: &Relation,
        columns: &[String],
        load: &Load,
        source: &mut (dyn std::io::BufRead + Send),
    ) -> Result<u64, DbError>;

    /// The table `table` names when `search_path` (else the session's) is in
    /// effect, schema-qualified; `None` when there is none.
    async fn resolve_table(
        &mut self,
        table: &Relation,
        search_path: Option<&SearchPath>,
    ) -> Result<Option<Relation>, DbError>;

    /// Columns of `table` whose values the database computes and that
    /// cannot be written (`GENERATED ALWAYS AS (…) STORED`, SQLite's
    /// generated columns): left out of backups and restores.
    async fn generated_columns(&mut self, table: &Relation) -> Result<Vec<String>, DbError>;

    /// The primary key's columns of `table`, in key order; empty when it
    /// has none (or does not exist).
    async fn primary_key(&mut self, table: &str) -> Result<Vec<String>, DbError>;

    /// Writes a consistent copy of the whole database to `dest`
    /// (PostgreSQL: `pg_dump -Fc`; SQLite: `VACUUM INTO`).
    async fn snapshot(&mut self, dest: &Path) -> Result<(), DbError>;
    /// Reads a snapshot file back with the dialect's own tools, so that a
    /// file that merely starts like a dump is not taken for one
    /// (PostgreSQL: `pg_restore --list`; SQLite: opened read-only, `PRAGMA
    /// quick_check`). An unreadable file is an error.
    async fn read_snapshot(&mut self, path: &Path) -> Result<SnapshotFacts, DbError>;

    /// Runs one statement with bound parameters and returns the number of
    /// rows it affected (a backfill batch, a calibration step).
    async fn execute_bound(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError>;

    // Live mode: facts the analysis reads from the server instead of
    // guessing. Each returns `None` where it is not applicable (SQLite has
    // no lock levels or rewrites to reason about).

    /// Size statistics of every user table, with its indexes.
    async fn table_stats(&mut self) -> Result<Option<Vec<TableStats>>, DbError>;
    /// The current type of every column of every user table.
    async fn column_types(&mut self) -> Result<Option<Vec<LiveColumn>>, DbError>;
    /// Every `CHECK (c IS NOT NULL)` constraint, valid or not.
    async fn not_null_checks(&mut self) -> Result<Option<Vec<NotNullCheck>>, DbError>;
    /// Every function name with its most volatile overload: `i`mmutable,
    /// `s`table or `v`olatile (`pg_proc.provolatile`).
    async fn function_volatility(&mut self) -> Result<Option<Vec<(String, char)>>, DbError>;
    /// The session's TimeZone setting, which decides whether
    /// timestamp ↔ timestamptz rewrites.
    async fn session_timezone(&mut self) -> Result<Option<String>, DbError>;
    /// The newest coefficients `keel calibrate` stored (JSON), if any.
    async fn load_calibration(&mut self) -> Result<Option<String>, DbError>;
    /// Stores calibration coefficients (JSON) for this server.
    async fn save_calibration(&mut self, json: &str) -> Result<(), DbError>;

    async fn close(self: Box<Self>);
}

/// [`Database::begin_and_run`] a statement at a time: a round trip each.
pub(crate) async fn begin_and_run_one_by_one<D: Database + ?Sized>(
    db: &mut D,
    timeouts: Timeouts,
    durable: bool,
    statements: &[&str],
) -> Result<(), StatementError> {
    db.begin(timeouts, durable)
        .await
        .map_err(|error| StatementError { index: None, error })?;
    for (i, sql) in statements.iter().enumerate() {
        db.execute(sql).await.map_err(|error| StatementError {
            index: Some(i),
            error,
        })?;
    }
    Ok(())
}

/// Connects to the database a URL names: `postgres://` / `postgresql://` or
/// `sqlite:` (a missing SQLite file is created).
pub async fn connect(url: &str) -> Result<Box<dyn Database>, DbError> {
    let display = crate::config::redact(url);
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Box::new(postgres::Postgres::connect(url, display).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Box::new(sqlite::Sqlite::connect(url, display).await?))
    } else {
        Err(DbError::usage(format!(
            "`{display}` is not a database URL keel knows: use postgres://user@host/db or sqlite://file.db"
        )))
    }
}
