//! Live mode: facts the analysis reads from the server instead of guessing.
//! Only PostgreSQL has them (SQLite has no lock levels or rewrites to reason
//! about), so every method defaults to "not applicable".

use super::{DbError, Scope, Session};
use async_trait::async_trait;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Function volatility by name, each name's most volatile overload
/// (`pg_proc.provolatile`: `i`mmutable < `s`table < `v`olatile). For
/// every function, the server's own are shared: they are read once per
/// connection and every analysis of the run looks them up; for the few a
/// scope names, all are in `user`.
#[derive(Debug, Clone, Default)]
pub struct Volatility {
    /// The server's own functions (made by initdb).
    pub builtin: Arc<HashMap<String, char>>,
    /// The database's functions, read each time (migrations make them).
    pub user: HashMap<String, char>,
}

impl Volatility {
    /// A function's volatility by name, its most volatile overload.
    pub fn get(&self, name: &str) -> Option<char> {
        match (self.builtin.get(name), self.user.get(name)) {
            (Some(a), Some(b)) => Some(*a.max(b)),
            (a, b) => a.or(b).copied(),
        }
    }
}

/// Size of one table as the catalog knows it (PostgreSQL live mode).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableStats {
    /// The table's schema.
    pub schema: String,
    /// The table's name.
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
    /// The table's indexes: a rewrite rebuilds each one.
    pub indexes: Vec<IndexSize>,
}

/// Size and kind of one index of a [`TableStats`] table.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexSize {
    /// The index's name.
    pub name: String,
    /// Its size on disk (`pg_relation_size`).
    pub bytes: i64,
    /// A unique index.
    pub unique: bool,
    /// `btree`, `gin`, …
    pub method: String,
    /// A key column is text-like: comparisons follow the collation, slower to sort.
    pub text_key: bool,
}

/// Something that breaks or waits when a table is locked or changed: a
/// view on it, a foreign key that points to it, a trigger on it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dependent {
    /// The table's schema.
    pub schema: String,
    /// The table's name.
    pub table: String,
    /// `view`, `foreign key` or `trigger`.
    pub kind: String,
    /// The view, `table.constraint` of the foreign key, or the trigger.
    pub name: String,
}

/// A column's current type, as `format_type` prints it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LiveColumn {
    /// The table's schema.
    pub schema: String,
    /// The table's name.
    pub table: String,
    /// The column's name.
    pub name: String,
    /// The type as `format_type` prints it, e.g. `character varying(20)`.
    pub data_type: String,
    /// Declared NOT NULL (`attnotnull`).
    pub not_null: bool,
}

/// A `CHECK (column IS NOT NULL)` constraint.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NotNullCheck {
    /// The table's schema.
    pub schema: String,
    /// The table's name.
    pub table: String,
    /// The constraint's name.
    pub name: String,
    /// The column it proves NOT NULL.
    pub column: String,
    /// Validated (`convalidated`): only then does it prove NOT NULL.
    pub valid: bool,
}

/// The server's own facts for the analysis. Each returns `None` where it
/// is not applicable.
#[async_trait]
pub trait Live: Session {
    /// PostgreSQL's `server_version_num` (150004 for 15.4): the analysis
    /// models PostgreSQL's locks, so other databases return `None`.
    async fn postgres_version(&mut self) -> Result<Option<u32>, DbError> {
        Ok(None)
    }
    /// Size statistics of the user tables in `scope`, with their indexes.
    async fn table_stats(&mut self, _scope: &Scope) -> Result<Option<Vec<TableStats>>, DbError> {
        Ok(None)
    }
    /// The current type of every column of the user tables in `scope`.
    async fn column_types(&mut self, _scope: &Scope) -> Result<Option<Vec<LiveColumn>>, DbError> {
        Ok(None)
    }
    /// Every `CHECK (c IS NOT NULL)` constraint of the tables in `scope`,
    /// valid or not.
    async fn not_null_checks(
        &mut self,
        _scope: &Scope,
    ) -> Result<Option<Vec<NotNullCheck>>, DbError> {
        Ok(None)
    }
    /// The functions of these names (`None`: every function), each name
    /// with its most volatile overload.
    async fn function_volatility(
        &mut self,
        _names: Option<&BTreeSet<String>>,
    ) -> Result<Option<Volatility>, DbError> {
        Ok(None)
    }
    /// The session's TimeZone setting, which decides whether
    /// timestamp ↔ timestamptz rewrites.
    async fn session_timezone(&mut self) -> Result<Option<String>, DbError> {
        Ok(None)
    }
    /// The server's `shared_buffers` in bytes.
    async fn shared_buffers(&mut self) -> Result<Option<f64>, DbError> {
        Ok(None)
    }
    /// The views, foreign keys and triggers of every user table: what a
    /// migration's locks and changes reach beyond the table.
    async fn dependents(&mut self) -> Result<Option<Vec<Dependent>>, DbError> {
        Ok(None)
    }
    /// The server's vital signs now: counters, lock waits, replicas.
    async fn pulse(&mut self) -> Result<Option<crate::db::Pulse>, DbError> {
        Ok(None)
    }
    /// The newest coefficients `keel calibrate` stored (JSON), if any.
    async fn load_calibration(&mut self) -> Result<Option<String>, DbError> {
        Ok(None)
    }
    /// Stores calibration coefficients (JSON) for this server.
    async fn save_calibration(&mut self, json: &str) -> Result<(), DbError> {
        let _ = json;
        Err(DbError::usage(
            "calibration measures PostgreSQL's rewrites, index builds and scans; SQLite has none to time",
        ))
    }
}
