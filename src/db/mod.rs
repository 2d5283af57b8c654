//! The only place where PostgreSQL and SQLite differ.
//!
//! What keel asks of a database is split by concern, one small trait each:
//! [`Session`] (running statements), [`Transactions`], [`Tracking`]
//! (keel's own rows and the run lock), [`Catalog`] (the schema, and its
//! [`Fingerprint`] to compare), [`Bulk`]
//! (rows in bulk, backups' CSV, snapshots) and [`Live`] (PostgreSQL's
//! statistics for the analysis). [`Database`] is all of them: what
//! [`connect`] returns. Everything outside `db/` talks to these traits and
//! never asks which database is behind them; SQL that is the same in both
//! dialects is written once, in the trait's module.

mod bulk;
mod catalog;
mod error;
mod fingerprint;
mod integrity;
mod live;
mod lock_wait;
mod postgres;
mod pulse;
mod quote;
mod run_lock;
mod scope;
mod session;
mod sqlite;
mod tracking;
mod transactions;
mod url;

pub use bulk::{Bulk, ColumnSummary, ExportQuery, Load, SnapshotFacts};
pub use catalog::{
    Catalog, ColumnInfo, ConstraintInfo, IndexInfo, IndexMismatch, IndexRequest, IndexShape,
    SearchPath,
};
pub use error::{DbError, DbErrorKind};
pub use fingerprint::{Fingerprint, SchemaChange, SchemaDiff};
pub use integrity::{Filled, TableDigest};
pub use live::{Dependent, IndexSize, Live, LiveColumn, NotNullCheck, TableStats, Volatility};
pub use lock_wait::{Blocker, LockWait};
pub use postgres::CALIBRATION_TABLE;
pub use pulse::{LagClock, Pulse, Replica, Waiter};
pub use quote::{Relation, quote_ident, quote_relation};
pub use run_lock::{LockHolder, RUN_LOCK_WAIT, RunLock};
pub use scope::{Scope, Widened};
pub use session::{Session, Value};
pub use tracking::{BackupRef, KEEL_TABLES, Tracking, TrackingRow, TrackingState};
pub use transactions::{Bisected, CommitError, StatementError, Timeouts, Transactions};
pub use url::redact;

/// Every role at once: an open connection to either dialect. Callers
/// holding a `dyn Database` (or a `D: Database`) call the roles' methods
/// without naming the role traits.
pub trait Database: Session + Transactions + Tracking + Catalog + Bulk + Live {}

impl<D: Session + Transactions + Tracking + Catalog + Bulk + Live> Database for D {}

/// Connects to the database a URL names: `postgres://` / `postgresql://` or
/// `sqlite:` (a missing SQLite file is created).
pub async fn connect(url: &str) -> Result<Box<dyn Database>, DbError> {
    let display = redact(url);
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

#[cfg(test)]
mod tests;
