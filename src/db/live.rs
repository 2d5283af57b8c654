//! Live mode: facts the analysis reads from the server instead of guessing.
//! Only PostgreSQL has them (SQLite has no lock levels or rewrites to reason
//! about), so every method defaults to "not applicable".

use super::{DbError, Scope, Session};
use async_trait::async_trait;

/// Size of one table as the catalog knows it (PostgreSQL live mode).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
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
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
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
    /// Every function name with its most volatile overload: `i`mmutable,
    /// `s`table or `v`olatile (`pg_proc.provolatile`).
    async fn function_volatility(&mut self) -> Result<Option<Vec<(String, char)>>, DbError> {
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
