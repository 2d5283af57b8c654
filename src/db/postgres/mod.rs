//! PostgreSQL, one file per role: [`session`] (statements, transactions),
//! [`tracking`] (keel's rows; the run lock in [`run_lock`], durability in
//! [`durable`]), [`catalog`] (the schema), [`bulk`] (COPY, snapshots with
//! [`pg_dump`]) and [`live`] (statistics for the analysis). All of keel's
//! PostgreSQL catalog SQL is in `catalog` and `live`.

mod bisect;
mod bulk;
mod catalog;
mod durable;
mod fill;
mod fingerprint;
mod index_probe;
mod live;
mod lock_watch;
mod pg_dump;
mod pulse;
mod run_lock;
mod session;
mod tracking;

pub use live::CALIBRATION_TABLE;

use super::{DbError, DbErrorKind, Relation};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Row};
use std::str::FromStr;
use std::time::Duration;

/// One connection to a PostgreSQL database.
pub struct Postgres {
    conn: PgConnection,
    url: String,
    /// The URL as given, password included: only for handing to `pg_dump`
    /// through its environment, never shown.
    secret_url: String,
    /// The schema keel's own tables live in: the session's current schema
    /// when keel connected. keel names its tables with it, because a
    /// migration may change `search_path` before keel writes its tracking
    /// row in the same transaction.
    keel_schema: Option<String>,
    /// The backend's pid, for finding who it waits for.
    pid: i32,
    /// The lock_timeout keel last set; `None` before it set one (then
    /// the server's, which waits for ever by default).
    lock_timeout: Option<Duration>,
    /// The second connection that looks who a long statement waits for
    /// (see [`lock_watch`]); opened when first needed.
    watcher: Option<PgConnection>,
    /// The volatility of pg_catalog's functions and `shared_buffers`:
    /// fixed while the server runs, read once per connection.
    builtins: live::Builtins,
    /// The tracking table's columns once this connection made sure of it
    /// (`ensure_tracking`): later runs on the same connection (`keel
    /// test`'s up, down and up again) neither create nor look it up again.
    tracking_columns: Option<Vec<String>>,
}

impl Postgres {
    /// Connects (giving up after 15 s) and sets the session up for keel.
    pub async fn connect(
        url: &str,
        display: String,
        lock_timeout: Option<Duration>,
    ) -> Result<Postgres, DbError> {
        let mut options = PgConnectOptions::from_str(url)
            .map_err(|e| DbError::from_sqlx(e, &display))?
            .application_name("keel")
            .disable_statement_logging();
        if options.get_socket().is_some() {
            // The server never speaks TLS on a Unix socket (libpq ignores
            // sslmode there too): asking would only cost a round trip.
            options = options.ssl_mode(sqlx::postgres::PgSslMode::Disable);
        }
        let conn = tokio::time::timeout(Duration::from_secs(15), options.connect())
            .await
            .map_err(|_| {
                DbError::new(
                    DbErrorKind::Connection,
                    format!(
                        "no answer from {display} within 15 s; check the host, port and firewall"
                    ),
                )
            })?
            .map_err(|e| DbError::from_sqlx_connect(e, &display))?;
        let mut conn = conn;
        let mut setup = durable::SESSION_SETUP.to_string();
        if conn.server_version_num().is_some_and(|v| v >= 140_000) {
            // A backend notices that its client is gone only when it next
            // talks to it: after a killed keel, its statement (an index
            // build that takes hours) would go on unwatched, holding the run
            // lock. PostgreSQL 14+ can check the socket while a statement
            // runs and cancel it; the next run drops what a cancelled
            // concurrent build left INVALID.
            setup.push_str("; SET client_connection_check_interval = 1000");
        }
        if let Some(t) = lock_timeout {
            // An integer keel formats, never user text.
            setup.push_str(&format!("; SET lock_timeout = {}", t.as_millis()));
        }
        // The setup, the schema keel's tables live in and the backend's pid
        // (for finding who it waits for): one round trip.
        setup.push_str("; SELECT current_schema()::text, pg_backend_pid()::text");
        let rows = sqlx::raw_sql(&setup)
            .fetch_all(&mut conn)
            .await
            .map_err(|e| DbError::from_sqlx(e, &display))?;
        let (keel_schema, pid) = match rows.last() {
            Some(row) => (
                row.try_get::<Option<String>, _>(0)
                    .map_err(|e| DbError::from_sqlx(e, &display))?,
                row.try_get::<Option<String>, _>(1)
                    .map_err(|e| DbError::from_sqlx(e, &display))?
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0),
            ),
            None => (None, 0),
        };
        Ok(Postgres {
            conn,
            url: display,
            secret_url: url.to_string(),
            keel_schema,
            pid,
            lock_timeout,
            builtins: live::Builtins::default(),
            tracking_columns: None,
            watcher: None,
        })
    }

    fn err(&self, e: sqlx::Error) -> DbError {
        DbError::from_sqlx(e, &self.url)
    }

    /// One of keel's own tables, schema-qualified and quoted.
    fn keel(&self, table: &str) -> String {
        Relation {
            schema: self.keel_schema.clone(),
            name: table.to_string(),
        }
        .quoted()
    }
}
