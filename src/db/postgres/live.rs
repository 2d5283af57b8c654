//! What the analysis reads from PostgreSQL's catalog in live mode: table
//! sizes, column types, NOT NULL proofs, function volatility, the session
//! TimeZone, and the stored calibration. One query per kind of fact, for
//! every user table at once, so lint and plan need no second pass.

use super::Postgres;
use crate::db::{
    DbError, Dependent, IndexSize, Live, LiveColumn, NotNullCheck, Scope, TableStats, Volatility,
};
use async_trait::async_trait;
use sqlx::Row;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// What is fixed while the server runs, each read when first asked.
#[derive(Default)]
pub(super) struct Builtins {
    /// The server's own functions with their volatility.
    volatility: Option<Arc<HashMap<String, char>>>,
    /// `shared_buffers` (in 8 kB pages) as the server prints it.
    shared_buffers: Option<Option<String>>,
}

/// Views on each user table (through their rewrite rules), foreign keys
/// of other tables that point to it, and its own triggers (not the
/// internal ones of foreign keys). `$1`: keel's own tables, left out.
const DEPENDENTS: &str = "\
WITH t AS (
    SELECT c.oid, n.nspname::text AS schema, c.relname::text AS name FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
      AND NOT c.relname = ANY ($1))
SELECT DISTINCT t.schema, t.name, 'view', format('%I.%I', vn.nspname, v.relname)
FROM t JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = t.oid
       AND d.classid = 'pg_rewrite'::regclass
JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class AND v.oid <> t.oid
JOIN pg_namespace vn ON vn.oid = v.relnamespace
UNION
SELECT t.schema, t.name, 'foreign key', format('%I.%I.%I', fn.nspname, f.relname, con.conname)
FROM t JOIN pg_constraint con ON con.confrelid = t.oid AND con.contype = 'f' AND con.conparentid = 0
JOIN pg_class f ON f.oid = con.conrelid JOIN pg_namespace fn ON fn.oid = f.relnamespace
UNION
SELECT t.schema, t.name, 'trigger', tg.tgname::text
FROM t JOIN pg_trigger tg ON tg.tgrelid = t.oid AND NOT tg.tgisinternal
ORDER BY 1, 2, 3, 4";

/// keel's own tables on PostgreSQL, by name: left out of every listing,
/// fingerprint and fill.
pub(super) fn own_tables() -> Vec<String> {
    crate::db::KEEL_TABLES
        .iter()
        .copied()
        .chain([CALIBRATION_TABLE])
        .map(String::from)
        .collect()
}

/// The table where `keel calibrate` keeps its measurements, beside keel_migrations.
pub const CALIBRATION_TABLE: &str = "keel_calibration";

const USER_TABLES: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'";

/// [`USER_TABLES`] of a scope: those named in `$1`, by index, or all
/// (with `$1` NULL and unused).
fn user_tables(scope: &Scope) -> String {
    match scope {
        Scope::All => format!("{USER_TABLES} AND $1::text[] IS NULL"),
        Scope::Named { .. } => format!("{USER_TABLES} AND c.relname = ANY ($1)"),
    }
}

#[async_trait]
impl Live for Postgres {
    async fn postgres_version(&mut self) -> Result<Option<u32>, DbError> {
        // Reported by the server when the connection starts.
        if let Some(num) = self.conn.server_version_num() {
            return Ok(Some(num));
        }
        let num: String = sqlx::query_scalar("SHOW server_version_num")
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        Ok(num.trim().parse().ok())
    }

    async fn table_stats(&mut self, scope: &Scope) -> Result<Option<Vec<TableStats>>, DbError> {
        self.read_table_stats(scope).await.map(Some)
    }

    async fn column_types(&mut self, scope: &Scope) -> Result<Option<Vec<LiveColumn>>, DbError> {
        self.read_column_types(scope).await.map(Some)
    }

    async fn not_null_checks(
        &mut self,
        scope: &Scope,
    ) -> Result<Option<Vec<NotNullCheck>>, DbError> {
        self.read_not_null_checks(scope).await.map(Some)
    }

    async fn function_volatility(
        &mut self,
        names: Option<&BTreeSet<String>>,
    ) -> Result<Option<Volatility>, DbError> {
        self.read_function_volatility(names).await.map(Some)
    }

    async fn session_timezone(&mut self) -> Result<Option<String>, DbError> {
        sqlx::query_scalar("SELECT current_setting('TimeZone')")
            .fetch_one(&mut self.conn)
            .await
            .map(Some)
            .map_err(|e| self.err(e))
    }

    async fn shared_buffers(&mut self) -> Result<Option<f64>, DbError> {
        // Counted in 8 kB pages.
        let pages = self.shared_buffers_setting().await?;
        Ok(pages
            .and_then(|p| p.parse::<f64>().ok())
            .map(|p| p * 8192.0))
    }

    async fn load_calibration(&mut self) -> Result<Option<String>, DbError> {
        self.read_calibration().await
    }

    async fn dependents(&mut self) -> Result<Option<Vec<Dependent>>, DbError> {
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(DEPENDENTS)
            .bind(own_tables())
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        Ok(Some(
            rows.into_iter()
                .map(|(schema, table, kind, name)| Dependent {
                    schema,
                    table,
                    kind,
                    name,
                })
                .collect(),
        ))
    }

    async fn save_calibration(&mut self, json: &str) -> Result<(), DbError> {
        self.write_calibration(json).await
    }

    async fn pulse(&mut self) -> Result<Option<crate::db::Pulse>, DbError> {
        self.read_pulse().await.map(Some)
    }
}

impl Postgres {
    async fn read_table_stats(&mut self, scope: &Scope) -> Result<Vec<TableStats>, DbError> {
        let tables = user_tables(scope);
        // The width is what the planner guesses for never-analysed tables:
        // fixed-length types by their length, variable ones at 32 bytes.
        // Each column's type is looked up by its OID (here and for the
        // index keys below): joined, the plan hashed all of pg_type for
        // every table, 0.1 ms a table on crates.io's schema.
        // The live tuples come from the function pg_stat_user_tables calls:
        // the view groups by table, so joined it was computed for every
        // table of the database (1 ms of each read on crates.io's schema).
        let sql = format!(
            "SELECT n.nspname::text, c.relname::text, c.reltuples::float8, c.relpages::int8, \
             pg_stat_get_live_tuples(c.oid)::int8, pg_relation_size(c.oid)::int8, \
             pg_table_size(c.oid)::int8, pg_total_relation_size(c.oid)::int8, \
             (SELECT coalesce(sum((SELECT CASE WHEN t.typlen > 0 THEN t.typlen ELSE 32 END \
                                   FROM pg_type t WHERE t.oid = a.atttypid)), 0) \
                FROM pg_attribute a \
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)::int8 \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p', 'm') AND {tables} ORDER BY 1, 2"
        );
        let rows = self
            .fetch_watched(sqlx::query(&sql).bind(scope.names()))
            .await?;
        let mut out: Vec<TableStats> = rows
            .iter()
            .map(|r| {
                Ok(TableStats {
                    schema: r.try_get(0)?,
                    name: r.try_get(1)?,
                    reltuples: r.try_get(2)?,
                    relpages: r.try_get(3)?,
                    live_tuples: r.try_get(4)?,
                    heap_bytes: r.try_get(5)?,
                    table_bytes: r.try_get(6)?,
                    total_bytes: r.try_get(7)?,
                    row_width: r.try_get(8)?,
                    indexes: Vec::new(),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.err(e))?;
        let sql = format!(
            "SELECT n.nspname::text, c.relname::text, ic.relname::text, pg_relation_size(ic.oid)::int8, \
             i.indisunique, am.amname::text, \
             EXISTS (SELECT 1 FROM pg_attribute a \
                     WHERE a.attrelid = c.oid AND a.attnum = ANY (i.indkey::int2[]) \
                     AND (SELECT t.typcategory FROM pg_type t WHERE t.oid = a.atttypid) = 'S') \
             FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
             JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {tables} ORDER BY 1, 2, 3"
        );
        let rows = self
            .fetch_watched(sqlx::query(&sql).bind(scope.names()))
            .await?;
        for r in &rows {
            let (schema, table): (String, String) = (
                r.try_get(0).map_err(|e| self.err(e))?,
                r.try_get(1).map_err(|e| self.err(e))?,
            );
            let index = IndexSize {
                name: r.try_get(2).map_err(|e| self.err(e))?,
                bytes: r.try_get(3).map_err(|e| self.err(e))?,
                unique: r.try_get(4).map_err(|e| self.err(e))?,
                method: r.try_get(5).map_err(|e| self.err(e))?,
                text_key: r.try_get(6).map_err(|e| self.err(e))?,
            };
            if let Some(t) = out
                .iter_mut()
                .find(|t| t.schema == schema && t.name == table)
            {
                t.indexes.push(index);
            }
        }
        Ok(out)
    }

    async fn read_column_types(&mut self, scope: &Scope) -> Result<Vec<LiveColumn>, DbError> {
        let tables = user_tables(scope);
        let sql = format!(
            "SELECT n.nspname::text, c.relname::text, a.attname::text, \
             format_type(a.atttypid, a.atttypmod), a.attnotnull \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p', 'm') AND a.attnum > 0 AND NOT a.attisdropped \
             AND {tables} ORDER BY 1, 2, a.attnum"
        );
        let rows = self
            .fetch_watched(sqlx::query(&sql).bind(scope.names()))
            .await?;
        rows.iter()
            .map(|r| {
                Ok(LiveColumn {
                    schema: r.try_get(0)?,
                    table: r.try_get(1)?,
                    name: r.try_get(2)?,
                    data_type: r.try_get(3)?,
                    not_null: r.try_get(4)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.err(e))
    }

    async fn read_not_null_checks(&mut self, scope: &Scope) -> Result<Vec<NotNullCheck>, DbError> {
        let tables = user_tables(scope);
        let sql = format!(
            "SELECT n.nspname::text, c.relname::text, con.conname::text, \
             pg_get_constraintdef(con.oid), con.convalidated \
             FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE con.contype = 'c' AND {tables} ORDER BY 1, 2, 3"
        );
        let rows = self
            .fetch_watched(sqlx::query(&sql).bind(scope.names()))
            .await?;
        let mut out = Vec::new();
        for r in &rows {
            let definition: String = r.try_get(3).map_err(|e| self.err(e))?;
            let Some(column) = not_null_column(&definition) else {
                continue;
            };
            out.push(NotNullCheck {
                schema: r.try_get(0).map_err(|e| self.err(e))?,
                table: r.try_get(1).map_err(|e| self.err(e))?,
                name: r.try_get(2).map_err(|e| self.err(e))?,
                column,
                valid: r.try_get(4).map_err(|e| self.err(e))?,
            });
        }
        Ok(out)
    }

    /// Each function name of `names` with its most volatile overload ('i'
    /// < 's' < 'v'). For every function: the server's own (OIDs below
    /// 16384, FirstNormalObjectId, made by initdb) read once per
    /// connection, the others each time. Named, the few the migrations
    /// call (instead of thousands kept for the run), and no query for none.
    async fn read_function_volatility(
        &mut self,
        names: Option<&BTreeSet<String>>,
    ) -> Result<Volatility, DbError> {
        let user = match names {
            None => {
                let builtin = self.builtin_volatility().await?;
                let user = self.volatility("WHERE p.oid >= 16384", None).await?;
                return Ok(Volatility { builtin, user });
            }
            Some(names) if names.is_empty() => HashMap::new(),
            Some(names) => {
                let names = names.iter().cloned().collect();
                self.volatility("WHERE p.proname = ANY ($1)", Some(names))
                    .await?
            }
        };
        Ok(Volatility {
            builtin: Arc::default(),
            user,
        })
    }

    /// The server's own functions' volatility, read once per connection.
    async fn builtin_volatility(&mut self) -> Result<Arc<HashMap<String, char>>, DbError> {
        if let Some(v) = &self.builtins.volatility {
            return Ok(v.clone());
        }
        let v = Arc::new(self.volatility("WHERE p.oid < 16384", None).await?);
        self.builtins.volatility = Some(v.clone());
        Ok(v)
    }

    /// `shared_buffers` as the server prints it, read once per connection.
    async fn shared_buffers_setting(&mut self) -> Result<Option<String>, DbError> {
        if let Some(s) = &self.builtins.shared_buffers {
            return Ok(s.clone());
        }
        let s: Option<String> =
            sqlx::query_scalar("SELECT setting FROM pg_settings WHERE name = 'shared_buffers'")
                .fetch_optional(&mut self.conn)
                .await
                .map_err(|e| self.err(e))?;
        self.builtins.shared_buffers = Some(s.clone());
        Ok(s)
    }

    async fn volatility(
        &mut self,
        filter: &str,
        names: Option<Vec<String>>,
    ) -> Result<HashMap<String, char>, DbError> {
        let sql = format!(
            "SELECT p.proname::text, max(p.provolatile::text) FROM pg_proc p {filter} GROUP BY 1"
        );
        let mut query = sqlx::query(&sql);
        if let Some(names) = names {
            query = query.bind(names);
        }
        let rows = query
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| {
                let v: String = r.try_get(1)?;
                Ok((r.try_get(0)?, v.chars().next().unwrap_or('v')))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.err(e))
    }

    async fn read_calibration(&mut self) -> Result<Option<String>, DbError> {
        if !self.relation_exists(CALIBRATION_TABLE).await? {
            return Ok(None);
        }
        sqlx::query_scalar(&format!(
            "SELECT coefficients::text FROM {CALIBRATION_TABLE} ORDER BY measured_at DESC LIMIT 1"
        ))
        .fetch_optional(&mut self.conn)
        .await
        .map_err(|e| self.err(e))
    }

    async fn write_calibration(&mut self, json: &str) -> Result<(), DbError> {
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {CALIBRATION_TABLE} (
                measured_at timestamptz NOT NULL DEFAULT now(),
                server_version text NOT NULL DEFAULT current_setting('server_version'),
                coefficients jsonb NOT NULL
            )"
        );
        sqlx::query(&create)
            .execute(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        sqlx::query(&format!(
            "INSERT INTO {CALIBRATION_TABLE} (coefficients) VALUES ($1::jsonb)"
        ))
        .bind(json)
        .execute(&mut self.conn)
        .await
        .map(|_| ())
        .map_err(|e| self.err(e))
    }
}

/// `CHECK ((email IS NOT NULL))` (pg_get_constraintdef's spelling) → `email`.
pub fn not_null_column(definition: &str) -> Option<String> {
    let inner = definition.trim().strip_prefix("CHECK ((")?;
    let (column, rest) = inner.split_once(" IS NOT NULL)")?;
    if !rest.starts_with(')') {
        return None;
    }
    match column.strip_prefix('"').and_then(|c| c.strip_suffix('"')) {
        Some(quoted) => Some(quoted.replace("\"\"", "\"")),
        None if column
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '$') =>
        {
            Some(column.to_string())
        }
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_not_null_checks_as_postgres_prints_them() {
        assert_eq!(
            not_null_column("CHECK ((email IS NOT NULL))").as_deref(),
            Some("email")
        );
        assert_eq!(
            not_null_column("CHECK ((\"Email\" IS NOT NULL)) NOT VALID").as_deref(),
            Some("Email")
        );
        assert_eq!(not_null_column("CHECK ((a > 0))"), None);
        assert_eq!(
            not_null_column("CHECK (((a IS NOT NULL) AND (b > 0)))"),
            None
        );
    }
}
