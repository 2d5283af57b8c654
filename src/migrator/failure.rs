//! The errors a run ends with, worded for the operator: where the
//! statement is, what became of the migration, and what to do.

use super::error::{ConnectionLost, RunError, StatementFailure};
use super::runner::Direction;
use crate::db::{DbError, DbErrorKind};
use crate::migration::Migration;
use crate::sql::Statement;
use std::path::Path;

/// What to do after a retryable error failed on every try; `None` for
/// any other error.
fn retry_advice(error: &DbError) -> Option<String> {
    match error.kind {
        DbErrorKind::LockTimeout => Some(lock_advice(error)),
        DbErrorKind::Conflict => Some(
            "its SQL is not at fault: on every try a concurrent transaction won (a deadlock, or a \
             serialization failure) and the server rolled the migration back; the server log names \
             the other processes; run it while fewer sessions write these tables, raise retries in \
             migration.toml, or take the locks it needs at its start (LOCK TABLE …) so that it \
             cannot deadlock half-way"
                .into(),
        ),
        _ => None,
    }
}

/// A lock timeout on every try: the sessions keel saw it wait for, or
/// how to find them.
fn lock_advice(error: &DbError) -> String {
    format!(
        "{}; or raise lock_timeout/retries in migration.toml",
        crate::db::who_held_it(error)
    )
}

/// The word for a retried error, for progress lines.
pub(super) fn retry_reason(error: &DbError) -> &'static str {
    match error.code.as_deref() {
        Some("40P01") => "deadlock",
        Some("40001") => "serialization failure",
        _ => "lock timeout",
    }
}

/// A statement of `m` failed. `then` is what to do next when it is not
/// "correct the SQL and run again".
pub(super) fn failure(
    m: &Migration,
    dir: Direction,
    file: &Path,
    stmt: Option<&Statement>,
    error: DbError,
    outcome: String,
    then: Option<String>,
) -> RunError {
    let (line, column) = match (stmt, error.position) {
        (Some(s), Some(p)) => s.position_in_file(p as usize),
        (Some(s), None) => (s.line, s.column),
        (None, _) => (1, 1),
    };
    let again = match dir {
        Direction::Up => "run `keel up` again",
        Direction::Down => "run `keel down` again",
    };
    let fix = match (retry_advice(&error).as_deref(), then) {
        (Some(advice), Some(then)) => format!("{advice}; then {then}"),
        (Some(advice), None) => format!("{advice}; then {again}"),
        (None, Some(then)) => then,
        (None, None) => match dir {
            Direction::Up => {
                "correct the SQL (or the schema it expects) and run `keel up` again".into()
            }
            // down.sql is part of an applied migration's checksum: an
            // edit alone would make every later run refuse it as modified.
            Direction::Down => format!(
                "correct down.sql, record that with `keel resolve {} --accept-checksum --reason \"…\"` (down.sql is part of the applied migration's checksum), then run `keel down` again",
                m.version
            ),
        },
    };
    RunError::Statement(Box::new(StatementFailure {
        migration: m.id(),
        file: file.to_path_buf(),
        line,
        column,
        sql: stmt.map(|s| s.sql.clone()).unwrap_or_default(),
        error,
        outcome,
        fix,
    }))
}

/// The connection broke while `m` ran; `in_flight` says what became of it.
/// The run adds what it made durable before (see [`Ledger::explain`]).
pub(super) fn lost(
    m: &Migration,
    dir: Direction,
    file: &Path,
    stmt: Option<&Statement>,
    error: DbError,
    in_flight: &str,
) -> RunError {
    RunError::ConnectionLost(Box::new(ConnectionLost {
        error,
        doing: Some(format!(
            "{} {}",
            match dir {
                Direction::Up => "applying",
                Direction::Down => "reverting",
            },
            m.id()
        )),
        at: stmt.map(|s| format!("{}:{}", file.display(), s.line)),
        in_flight: Some(format!("{}: {in_flight}", m.id())),
        reverting: dir == Direction::Down,
        durable: Vec::new(),
        unconfirmed: Vec::new(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(kind: DbErrorKind, code: Option<&str>) -> DbError {
        let mut e = DbError::new(kind, "x");
        e.code = code.map(String::from);
        e
    }

    #[test]
    fn a_retried_error_is_named_by_its_sqlstate() {
        let reason = |code| retry_reason(&error(DbErrorKind::Conflict, code));
        assert_eq!(reason(Some("40P01")), "deadlock");
        assert_eq!(reason(Some("40001")), "serialization failure");
        assert_eq!(reason(Some("55P03")), "lock timeout");
        assert_eq!(reason(None), "lock timeout");
    }

    #[test]
    fn only_lock_timeouts_and_conflicts_get_retry_advice() {
        let advice = |kind| retry_advice(&error(kind, None));
        assert!(advice(DbErrorKind::LockTimeout).is_some_and(|a| a.contains("lock_timeout")));
        assert!(advice(DbErrorKind::Conflict).is_some_and(|a| a.contains("retries")));
        assert_eq!(advice(DbErrorKind::Statement), None);
    }
}
