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
pub use lock_wait::{Blocker, LockWait, WithLockFix, who_held_it};
pub use postgres::CALIBRATION_TABLE;
pub use pulse::{LagClock, Pulse, Replica, Waiter};
pub use quote::{Relation, quote_ident, quote_relation};
pub use run_lock::{LockHolder, RUN_LOCK_WAIT, RunLock, Runs};
pub use scope::{Scope, Widened};
pub use session::{Session, Value};
pub use tracking::{BackupRef, KEEL_TABLES, Tracking, TrackingRow, TrackingState};
pub use transactions::{
    Bisected, CommitError, DEFAULT_LOCK_TIMEOUT, StatementError, Timeouts, Transactions,
};
pub use url::redact;

/// Every role at once: an open connection to either dialect. Callers
/// holding a `dyn Database` (or a `D: Database`) call the roles' methods
/// without naming the role traits.
pub trait Database: Session + Transactions + Tracking + Catalog + Bulk + Live {}

impl<D: Session + Transactions + Tracking + Catalog + Bulk + Live> Database for D {}

/// Connects to the database a URL names: `postgres://` / `postgresql://` or
/// `sqlite:` (a missing SQLite file is created).
pub async fn connect(url: &str) -> Result<Box<dyn Database>, DbError> {
    connect_waiting(url, None).await
}

/// [`connect`], with every lock wait of the session bounded by
/// `lock_timeout` (PostgreSQL), keel's own reads included. Those wait too:
/// the live facts (`pg_relation_size`) and the schema fingerprint
/// (`pg_get_indexdef`, `pg_get_expr`) take ACCESS SHARE on each table they
/// look at, and would otherwise queue behind an exclusive lock elsewhere
/// for as long as its holder keeps it. A migration's transaction sets its
/// own timeouts over this one.
pub async fn connect_waiting(
    url: &str,
    lock_timeout: Option<std::time::Duration>,
) -> Result<Box<dyn Database>, DbError> {
    let display = redact(url);
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Box::new(
            postgres::Postgres::connect(url, display, lock_timeout).await?,
        ))
    } else if url.starts_with("sqlite:") {
        Ok(Box::new(sqlite::Sqlite::connect(url, display).await?))
    } else {
        Err(DbError::usage(format!(
            "`{display}` is not a database URL keel knows: use postgres://user@host/db or sqlite://file.db"
        )))
    }
}

/// `scope`'s fingerprint, read again after a lock timeout: `tries` in
/// all, pausing `pause`, doubled each time, between them. For the reads
/// after a change committed (a rollback, a `keel down`), where a session
/// holding an exclusive lock elsewhere should delay the check, not fail
/// it; each try waits at most the session's lock timeout.
pub async fn fingerprint_retrying(
    db: &mut dyn Database,
    scope: &Scope,
    tries: u32,
    mut pause: std::time::Duration,
) -> Result<Fingerprint, DbError> {
    let mut left = tries.max(1);
    loop {
        match db.fingerprint(scope).await {
            Err(e) if e.is_lock_timeout() && left > 1 => {
                left -= 1;
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            read => return read,
        }
    }
}

#[cfg(test)]
mod tests;
