//! The schema fingerprint from PostgreSQL's catalog: one query
//! (`fingerprint.sql`) that prints every object as a line, so that the
//! cost does not grow with round trips on a schema of hundreds of tables.

use super::Postgres;
use crate::db::{CALIBRATION_TABLE, DbError, Fingerprint, KEEL_TABLES};

/// One `(key, line)` row per object; `$1` is keel's own tables.
const SQL: &str = include_str!("fingerprint.sql");

impl Postgres {
    pub(super) async fn schema_fingerprint(&mut self) -> Result<Fingerprint, DbError> {
        let keel: Vec<String> = KEEL_TABLES
            .iter()
            .copied()
            .chain([CALIBRATION_TABLE])
            .map(String::from)
            .collect();
        let rows: Vec<(String, String)> = sqlx::query_as(SQL)
            .bind(keel)
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        let mut fingerprint = Fingerprint::default();
        for (key, line) in rows {
            fingerprint.insert(key, line);
        }
        Ok(fingerprint)
    }
}
