//! Where a backfill keeps its progress: `keel_backfills` (one row per
//! migration: last key done, rows done, failures) and
//! `keel_backfill_failures` (the rows it skipped, with the error). Both are
//! written in the same transaction as the batch they describe, so after a
//! crash they say exactly which batches committed. Plain portable SQL with
//! bind parameters; timestamps are RFC 3339 text in both dialects.

use crate::db::{Database, DbError, Value};

pub(crate) const PROGRESS: &str = "keel_backfills";
pub(crate) const FAILURES: &str = "keel_backfill_failures";

/// One migration's backfill progress.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct State {
    pub(crate) version: String,
    pub(crate) table: String,
    /// The highest key of the last committed batch; `None` before the first.
    pub(crate) last_key: Option<i64>,
    /// Rows in the table when the backfill started (the progress total).
    pub(crate) rows_total: i64,
    /// Rows visited (key ranges covered), updated or not.
    pub(crate) rows_done: i64,
    /// Rows the `set` expressions changed (the `where` filter may skip some).
    pub(crate) rows_updated: i64,
    pub(crate) failures: i64,
    pub(crate) started_at: String,
    pub(crate) finished_at: Option<String>,
}

/// A row the expressions could not transform.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct Failure {
    pub(crate) key: i64,
    pub(crate) error: String,
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(crate) async fn ensure(db: &mut dyn Database) -> Result<(), DbError> {
    db.execute(&format!(
        "CREATE TABLE IF NOT EXISTS {PROGRESS} (
            version text PRIMARY KEY,
            table_name text NOT NULL,
            last_key bigint,
            rows_total bigint NOT NULL,
            rows_done bigint NOT NULL,
            rows_updated bigint NOT NULL,
            failures bigint NOT NULL,
            started_at text NOT NULL,
            updated_at text NOT NULL,
            finished_at text
        );
        CREATE TABLE IF NOT EXISTS {FAILURES} (
            version text NOT NULL,
            key_value bigint NOT NULL,
            error text NOT NULL,
            at text NOT NULL,
            PRIMARY KEY (version, key_value)
        )"
    ))
    .await
}

pub(crate) async fn load(db: &mut dyn Database, version: &str) -> Result<Option<State>, DbError> {
    let rows = db
        .query_with(
            &format!(
                "SELECT table_name, last_key, rows_total, rows_done, rows_updated, failures, \
                 started_at, finished_at FROM {PROGRESS} WHERE version = $1"
            ),
            &[Value::Text(version.into())],
        )
        .await?;
    Ok(rows.into_iter().next().map(|r| State {
        version: version.into(),
        table: r[0].as_text().unwrap_or_default(),
        last_key: r[1].as_i64(),
        rows_total: r[2].as_i64().unwrap_or(0),
        rows_done: r[3].as_i64().unwrap_or(0),
        rows_updated: r[4].as_i64().unwrap_or(0),
        failures: r[5].as_i64().unwrap_or(0),
        started_at: r[6].as_text().unwrap_or_default(),
        finished_at: r[7].as_text(),
    }))
}

pub(crate) async fn save(db: &mut dyn Database, s: &State) -> Result<(), DbError> {
    // PostgreSQL prepares a statement with the types of its first
    // parameters, so a NULL (bound as a bigint) never goes where a text
    // went: an unfinished backfill writes the literal NULL instead.
    let finished = if s.finished_at.is_some() {
        "$10"
    } else {
        "NULL"
    };
    let mut params = vec![
        Value::Text(s.version.clone()),
        Value::Text(s.table.clone()),
        s.last_key.map_or(Value::Null, Value::Int),
        Value::Int(s.rows_total),
        Value::Int(s.rows_done),
        Value::Int(s.rows_updated),
        Value::Int(s.failures),
        Value::Text(s.started_at.clone()),
        Value::Text(now()),
    ];
    params.extend(s.finished_at.clone().map(Value::Text));
    db.execute_with(
        &format!(
            "INSERT INTO {PROGRESS} (version, table_name, last_key, rows_total, rows_done, \
             rows_updated, failures, started_at, updated_at, finished_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, {finished}) \
             ON CONFLICT (version) DO UPDATE SET table_name = excluded.table_name, \
             last_key = excluded.last_key, rows_total = excluded.rows_total, \
             rows_done = excluded.rows_done, rows_updated = excluded.rows_updated, \
             failures = excluded.failures, started_at = excluded.started_at, \
             updated_at = excluded.updated_at, finished_at = excluded.finished_at"
        ),
        &params,
    )
    .await
    .map(|_| ())
}

pub(crate) async fn add_failure(
    db: &mut dyn Database,
    version: &str,
    key: i64,
    error: &str,
) -> Result<(), DbError> {
    db.execute_with(
        &format!(
            "INSERT INTO {FAILURES} (version, key_value, error, at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (version, key_value) DO UPDATE SET error = excluded.error, at = excluded.at"
        ),
        &[
            Value::Text(version.into()),
            Value::Int(key),
            Value::Text(error.into()),
            Value::Text(now()),
        ],
    )
    .await
    .map(|_| ())
}

pub(crate) async fn remove_failure(
    db: &mut dyn Database,
    version: &str,
    key: i64,
) -> Result<(), DbError> {
    db.execute_with(
        &format!("DELETE FROM {FAILURES} WHERE version = $1 AND key_value = $2"),
        &[Value::Text(version.into()), Value::Int(key)],
    )
    .await
    .map(|_| ())
}

pub(crate) async fn failures(
    db: &mut dyn Database,
    version: &str,
) -> Result<Vec<Failure>, DbError> {
    let rows = db
        .query_with(
            &format!(
                "SELECT key_value, error FROM {FAILURES} WHERE version = $1 ORDER BY key_value"
            ),
            &[Value::Text(version.into())],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| Failure {
            key: r[0].as_i64().unwrap_or_default(),
            error: r[1].as_text().unwrap_or_default(),
        })
        .collect())
}

/// Forgets a migration's backfill (when the migration is reverted).
pub(crate) async fn forget(db: &mut dyn Database, version: &str) -> Result<(), DbError> {
    for table in [PROGRESS, FAILURES] {
        db.execute_with(
            &format!("DELETE FROM {table} WHERE version = $1"),
            &[Value::Text(version.into())],
        )
        .await?;
    }
    Ok(())
}
