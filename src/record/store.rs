//! `keel_records`: the database's own list of the execution records keel
//! wrote for it, one row per record (environment, sequence, path, SHA-256).
//!
//! The records folder is files in a repository: anyone can delete the
//! newest one or plant another. The chain's head therefore lives here, in
//! the database the records describe, and every new record links to the
//! head this table names, never to whatever file looks newest. Plain
//! portable SQL with bind parameters; timestamps are RFC 3339 text in both
//! dialects, as in `keel_backfills`.

use crate::db::{Database, DbError, Value};

pub(crate) const TABLE: &str = "keel_records";

/// One record as the database knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) environment: String,
    pub(crate) sequence: u64,
    /// `<version>_<name>` of the record's migration.
    pub(crate) migration: String,
    /// Relative to `records/`: `<version>_<name>/<env>-<stamp>.json`.
    pub(crate) path: String,
    /// Hex SHA-256 of the record file's bytes.
    pub(crate) sha256: String,
    /// The record's outcome (`started`, `applied`, …).
    pub(crate) outcome: String,
    pub(crate) written_at: String,
}

pub(crate) async fn ensure(db: &mut dyn Database) -> Result<(), DbError> {
    // (environment, sequence) is the key: two runs that both read head #N
    // cannot both register #N+1.
    db.execute(&format!(
        "CREATE TABLE IF NOT EXISTS {TABLE} (
            environment text NOT NULL,
            sequence bigint NOT NULL,
            migration text NOT NULL,
            path text NOT NULL,
            sha256 text NOT NULL,
            outcome text NOT NULL,
            written_at text NOT NULL,
            PRIMARY KEY (environment, sequence)
        )"
    ))
    .await
}

/// Whether the table exists (it is created by the first `execute`).
pub(crate) async fn exists(db: &mut dyn Database) -> Result<bool, DbError> {
    Ok(!db.columns(TABLE).await?.is_empty())
}

fn row(r: Vec<Value>) -> Row {
    let text = |i: usize| r.get(i).and_then(Value::as_text).unwrap_or_default();
    Row {
        environment: text(0),
        sequence: r.get(1).and_then(Value::as_i64).unwrap_or(0).max(0) as u64,
        migration: text(2),
        path: text(3),
        sha256: text(4),
        outcome: text(5),
        written_at: text(6),
    }
}

const COLUMNS: &str = "environment, sequence, migration, path, sha256, outcome, written_at";

/// Every record of `env`, oldest first; empty when the table does not exist.
pub(crate) async fn rows(db: &mut dyn Database, env: &str) -> Result<Vec<Row>, DbError> {
    if !exists(db).await? {
        return Ok(Vec::new());
    }
    let rows = db
        .query_with(
            &format!("SELECT {COLUMNS} FROM {TABLE} WHERE environment = $1 ORDER BY sequence"),
            &[Value::Text(env.into())],
        )
        .await?;
    Ok(rows.into_iter().map(row).collect())
}

/// Every record of every environment, by environment and sequence.
pub(crate) async fn all(db: &mut dyn Database) -> Result<Vec<Row>, DbError> {
    if !exists(db).await? {
        return Ok(Vec::new());
    }
    let rows = db
        .query_with(
            &format!("SELECT {COLUMNS} FROM {TABLE} ORDER BY environment, sequence"),
            &[],
        )
        .await?;
    Ok(rows.into_iter().map(row).collect())
}

/// The newest record of `env`: the chain's head.
pub(crate) async fn head(db: &mut dyn Database, env: &str) -> Result<Option<Row>, DbError> {
    Ok(rows(db, env).await?.pop())
}

/// Registers a record. Fails (primary key) when another run registered
/// this sequence number first.
pub(crate) async fn insert(db: &mut dyn Database, r: &Row) -> Result<(), DbError> {
    db.execute_with(
        &format!("INSERT INTO {TABLE} ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"),
        &[
            Value::Text(r.environment.clone()),
            Value::Int(r.sequence as i64),
            Value::Text(r.migration.clone()),
            Value::Text(r.path.clone()),
            Value::Text(r.sha256.clone()),
            Value::Text(r.outcome.clone()),
            Value::Text(r.written_at.clone()),
        ],
    )
    .await
    .map(|_| ())
}
