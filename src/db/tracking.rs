//! keel's own rows in the database: the tracking table (one row per applied
//! migration), the database's id in `keel_meta`, and the run lock. The SQL
//! both dialects share is written here once; creating the tables and
//! looking them up in the catalog differ and live with each dialect.

use super::{DbError, LockHolder, RunLock, Runs, Session};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The tracking table's name in both dialects.
pub const TABLE: &str = "keel_migrations";

/// keel's facts about the database itself: its random id (`database_id`),
/// written once with the tracking table, so that backups and snapshots can
/// say which database they came from.
pub const META: &str = "keel_meta";

/// Every table keel keeps for itself: left out of `tables()` and so of
/// `inspect`, `seed` and schema listings.
pub const KEEL_TABLES: [&str; 5] = [
    TABLE,
    META,
    "keel_backfills",
    "keel_backfill_failures",
    "keel_records",
];

/// The columns a tracking table made by an earlier keel lacks, with their
/// type: added on first use (`ensure_tracking`).
pub const ADDED_COLUMNS: [(&str, &str); 3] = [
    ("backup", "text"),
    ("backup_sha256", "text"),
    ("schema_before", "text"),
];

/// A new random database id: 128 bits from the operating system, in hex.
pub fn new_database_id() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// Where a migration stands, as its tracking row says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackingState {
    /// up.sql ran to the end (and its backfill, if any, finished).
    Applied,
    /// A non-transactional migration stopped part-way through up.sql (or
    /// is running it now); needs `keel resolve`.
    Failed,
    /// A non-transactional migration stopped part-way through down.sql (or
    /// is running it now); needs `keel resolve`.
    FailedDown,
    /// The SQL is applied and its backfill has not finished.
    Backfilling,
}

impl TrackingState {
    /// The text the tracking table holds.
    pub fn as_str(self) -> &'static str {
        match self {
            TrackingState::Applied => "applied",
            TrackingState::Failed => "failed",
            TrackingState::FailedDown => "failed_down",
            TrackingState::Backfilling => "backfilling",
        }
    }

    /// Stopped part-way, in either direction.
    pub fn is_failed(self) -> bool {
        matches!(self, TrackingState::Failed | TrackingState::FailedDown)
    }

    /// Reads the tracking table's text.
    pub fn parse(s: &str) -> TrackingState {
        match s {
            "applied" => TrackingState::Applied,
            "backfilling" => TrackingState::Backfilling,
            "failed_down" => TrackingState::FailedDown,
            // Anything else (including text written by a newer keel) blocks runs
            // until an operator looks, which is the safe reading.
            _ => TrackingState::Failed,
        }
    }
}

/// One row of the tracking table.
#[derive(Debug, Clone)]
pub struct TrackingRow {
    /// The migration's version, the key of the row.
    pub version: String,
    /// The migration's name, after its version in the folder name.
    pub name: String,
    /// SHA-256 of the migration's files when it ran: a later edit shows as drift.
    pub checksum: String,
    /// Where the migration stands.
    pub state: TrackingState,
    /// When keel ran it.
    pub applied_at: DateTime<Utc>,
    /// Who ran it, as `user@host`.
    pub applied_by: String,
    /// How long the run took, in milliseconds.
    pub execution_ms: i64,
    /// Statements that completed, for a failed non-transactional migration.
    pub statements_done: i64,
    /// Why a failed migration stopped, as the server said; shown by `keel status`.
    pub error: Option<String>,
    /// The archive of the data this migration destroyed, taken right before
    /// its up ran: the only archive its `down` may restore.
    pub backup: Option<BackupRef>,
    /// The schema the migration could reach right before its up, as keel
    /// keeps it (JSON), for `keel down` to compare with. Written with the
    /// row; [`Tracking::tracking_rows`] leaves it `None` (it is read by
    /// [`Tracking::schema_before`]), and writing a row whose value is
    /// `None` keeps the one stored. Read back as untrusted.
    pub schema_before: Option<String>,
}

/// An archive as the tracking table binds it: its path (relative to the
/// project folder) and the SHA-256 of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRef {
    /// The archive's path, relative to the project folder.
    pub path: String,
    /// SHA-256 of the archive file, checked before a restore trusts it.
    pub sha256: String,
}

impl BackupRef {
    /// From the two nullable columns; a half-filled pair is no binding.
    pub fn from_columns(path: Option<String>, sha256: Option<String>) -> Option<BackupRef> {
        Some(BackupRef {
            path: path?,
            sha256: sha256?,
        })
    }
}

/// What keel keeps in the database about its own runs.
#[async_trait]
pub trait Tracking: Session {
    /// Creates the tracking table if it does not exist (and adds the
    /// columns an older keel's table lacks), and gives the database its id.
    async fn ensure_tracking(&mut self) -> Result<(), DbError>;
    /// Every row of the tracking table, by version; empty when it does not exist.
    async fn tracking_rows(&mut self) -> Result<Vec<TrackingRow>, DbError>;
    /// The row of `version`, if the tracking table exists and has one.
    async fn tracking_row(&mut self, version: &str) -> Result<Option<TrackingRow>, DbError>;
    /// Inserts or replaces the row for `row.version`.
    async fn write_tracking(&mut self, row: &TrackingRow) -> Result<(), DbError>;
    /// What [`TrackingRow::schema_before`] holds for `version`.
    async fn schema_before(&mut self, version: &str) -> Result<Option<String>, DbError>;
    /// Deletes the row for `version` (the migration was reverted).
    async fn delete_tracking(&mut self, version: &str) -> Result<(), DbError>;
    /// Keeps `value` under a new `key` in `keel_meta` (an operator's
    /// decision about the history, such as an accepted checksum).
    async fn add_note(&mut self, key: &str, value: &str) -> Result<(), DbError>;
    /// The notes whose key starts with `prefix`, by key.
    async fn notes(&mut self, prefix: &str) -> Result<Vec<(String, String)>, DbError>;

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

    /// Takes the one-runner-at-a-time lock, waiting up to `wait` for
    /// another runner to finish. `on_wait` is called once if the lock is
    /// busy, with who holds it when the database can tell.
    async fn lock_runs(
        &mut self,
        wait: Duration,
        on_wait: &(dyn for<'h> Fn(Option<&'h LockHolder>) + Sync),
    ) -> Result<RunLock, DbError>;
    /// Lets the run lock go.
    async fn unlock_runs(&mut self) -> Result<(), DbError>;
    /// Whether another run holds the run lock now (`keel status`).
    async fn runs(&mut self) -> Result<Runs, DbError>;
}

/// Every tracking row, from `table` (quoted as the dialect names it). A
/// table made before `backup_sha256` existed is read too.
/// `one`: only the row of the version bound as `$1`.
pub(super) fn select_rows(table: &str, has_backup: bool, one: bool) -> String {
    let backup = if has_backup {
        "backup, backup_sha256"
    } else {
        "CAST(NULL AS text) AS backup, CAST(NULL AS text) AS backup_sha256"
    };
    // schema_before can be large (a whole schema's fingerprint): read by
    // `down` alone ([`select_schema_before`]), never by `status`.
    format!(
        "SELECT version, name, checksum, state, applied_at, applied_by, execution_ms, \
         statements_done, error, {backup}, CAST(NULL AS text) AS schema_before \
         FROM {table} {} ORDER BY version",
        if one { "WHERE version = $1" } else { "" }
    )
}

/// Inserts a tracking row, or replaces the one of its version: bind with
/// [`bind_row`].
pub(super) fn upsert_row(table: &str) -> String {
    format!(
        "INSERT INTO {table} (version, name, checksum, state, applied_at, applied_by, \
         execution_ms, statements_done, error, backup, backup_sha256, schema_before) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (version) DO UPDATE SET name = excluded.name, checksum = excluded.checksum, \
         state = excluded.state, applied_at = excluded.applied_at, applied_by = excluded.applied_by, \
         execution_ms = excluded.execution_ms, statements_done = excluded.statements_done, \
         error = excluded.error, backup = excluded.backup, backup_sha256 = excluded.backup_sha256, \
         schema_before = coalesce(excluded.schema_before, {table}.schema_before)"
    )
}

/// The schema kept in the tracking row of version `$1` (see
/// [`TrackingRow::schema_before`]).
pub(super) fn select_schema_before(table: &str) -> String {
    format!("SELECT schema_before FROM {table} WHERE version = $1")
}

/// Deletes the tracking row of version `$1`.
pub(super) fn delete_row(table: &str) -> String {
    format!("DELETE FROM {table} WHERE version = $1")
}

/// The database id in `meta` (one row or none).
pub(super) fn select_database_id(meta: &str) -> String {
    format!("SELECT value FROM {meta} WHERE key = 'database_id'")
}

/// Keeps note `$2` under the new key `$1`.
pub(super) fn insert_note(meta: &str) -> String {
    format!("INSERT INTO {meta} (key, value) VALUES ($1, $2)")
}

/// The notes whose key starts with `$1`, by key: a prefix match without
/// LIKE, whose `_` and `%` keys could hold.
pub(super) fn select_notes(meta: &str) -> String {
    format!("SELECT key, value FROM {meta} WHERE substr(key, 1, length($1)) = $1 ORDER BY key")
}

/// Gives the database the id `$1` unless it has one.
pub(super) fn insert_database_id(meta: &str) -> String {
    format!(
        "INSERT INTO {meta} (key, value) VALUES ('database_id', $1) ON CONFLICT (key) DO NOTHING"
    )
}

/// [`upsert_row`]'s statement with `row` bound, typed the same in both
/// dialects (the timestamp as sqlx writes one, NULLs as text).
pub(super) fn bind_row<'q, DB>(
    sql: &'q str,
    row: &'q TrackingRow,
) -> sqlx::query::Query<'q, DB, DB::Arguments<'q>>
where
    DB: sqlx::Database,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    DateTime<Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query::<DB>(sql)
        .bind(row.version.as_str())
        .bind(row.name.as_str())
        .bind(row.checksum.as_str())
        .bind(row.state.as_str())
        .bind(row.applied_at)
        .bind(row.applied_by.as_str())
        .bind(row.execution_ms)
        .bind(row.statements_done)
        .bind(row.error.as_deref())
        .bind(row.backup.as_ref().map(|b| b.path.as_str()))
        .bind(row.backup.as_ref().map(|b| b.sha256.as_str()))
        .bind(row.schema_before.as_deref())
}

/// One row of [`select_rows`].
pub(super) fn read_row<'r, R>(r: &'r R) -> Result<TrackingRow, sqlx::Error>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    DateTime<Utc>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let state: String = r.try_get("state")?;
    Ok(TrackingRow {
        version: r.try_get("version")?,
        name: r.try_get("name")?,
        checksum: r.try_get("checksum")?,
        state: TrackingState::parse(&state),
        applied_at: r.try_get("applied_at")?,
        applied_by: r.try_get("applied_by")?,
        execution_ms: r.try_get("execution_ms")?,
        statements_done: r.try_get("statements_done")?,
        error: r.try_get("error")?,
        backup: BackupRef::from_columns(r.try_get("backup")?, r.try_get("backup_sha256")?),
        schema_before: r.try_get("schema_before")?,
    })
}
