//! The connection itself: which database it is, and running statements on
//! it with or without bind parameters.

use super::DbError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A value for bulk loading and stats, independent of the dialect.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// Text, and any type read as text.
    Text(String),
    /// A point in time, in UTC.
    Timestamp(DateTime<Utc>),
}

impl Value {
    /// The value as an integer: integers, booleans (0 or 1) and text that
    /// reads as one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i64),
            Value::Text(t) => t.trim().parse().ok(),
            _ => None,
        }
    }

    /// The value as text (timestamps in RFC 3339); `None` for NULL.
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

/// One open connection: what it is, and statements run on it as they are.
#[async_trait]
pub trait Session: Send {
    /// "PostgreSQL" or "SQLite", for messages.
    fn dialect_name(&self) -> &'static str;
    /// The connection URL with any password replaced by `***`.
    fn display_url(&self) -> &str;

    /// Runs one statement (or several, for internal scripts) as sent, with no
    /// parameters.
    async fn execute(&mut self, sql: &str) -> Result<(), DbError>;
    /// Runs one statement with bind parameters (`$1`, `$2`, … in both
    /// dialects) and returns how many rows it changed. Values always travel
    /// this way; only identifiers (quoted by [`super::quote_ident`]) are in
    /// the text.
    async fn execute_with(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError>;
    /// Runs one query with bind parameters; every column of every row comes
    /// back as a [`Value`] (integers, booleans, text, timestamps, NULL).
    async fn query_with(&mut self, sql: &str, params: &[Value])
    -> Result<Vec<Vec<Value>>, DbError>;
    /// Runs a query (a smoke check) and returns the first column of its
    /// first row as text, the way the database prints it: `None` when it
    /// returns no row, `Some(None)` for NULL. Run it inside a transaction
    /// that is rolled back when the query must not change anything.
    async fn query_text(&mut self, sql: &str) -> Result<Option<Option<String>>, DbError>;

    /// Undoes what a migration changed in the session's settings
    /// (PostgreSQL: `search_path`, `ROLE`), so that the next migration and
    /// keel's own statements run in the session as keel opened it. A
    /// database without such settings has nothing to undo.
    async fn reset_session(&mut self) -> Result<(), DbError> {
        Ok(())
    }

    /// Ends the connection politely.
    async fn close(self: Box<Self>);
}

/// `params` as the bind arguments of either dialect: the one place a
/// [`Value`] becomes an sqlx type, so both dialects bind a value alike (a
/// NULL goes as a bigint).
pub(super) fn arguments<'q, 'v, DB>(
    params: impl IntoIterator<Item = &'v Value>,
) -> Result<DB::Arguments<'q>, DbError>
where
    DB: sqlx::Database,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    DateTime<Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    use sqlx::Arguments;
    let mut args = DB::Arguments::default();
    for value in params {
        let added = match value.clone() {
            Value::Null => args.add(Option::<i64>::None),
            Value::Int(i) => args.add(i),
            Value::Bool(b) => args.add(b),
            Value::Text(s) => args.add(s),
            Value::Timestamp(t) => args.add(t),
        };
        added.map_err(|e| DbError::new(super::DbErrorKind::Statement, e.to_string()))?;
    }
    Ok(args)
}
