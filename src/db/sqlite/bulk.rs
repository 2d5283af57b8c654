//! Rows in bulk on SQLite, which has no COPY: multi-row prepared inserts,
//! CSV written and read row by row, and `VACUUM INTO` for snapshots.

use super::Sqlite;
use crate::db::bulk::{EXPORT_CHUNK, scan_sql, sink_error, visit_text};
use crate::db::integrity::{RowSum, push_value};
use crate::db::session::arguments;
use crate::db::tracking::{META, select_database_id};
use crate::db::{
    Bulk, DbError, DbErrorKind, ExportQuery, Filled, Load, Relation, Scope, Session, SnapshotFacts,
    TableDigest, Tracking, Value, quote_ident, quote_relation,
};
use async_trait::async_trait;
use futures_util::TryStreamExt;
use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions};
use sqlx::{Arguments, ConnectOptions, Connection, Row};
use std::path::Path;

#[async_trait]
impl Bulk for Sqlite {
    async fn bulk_insert(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: &mut (dyn Iterator<Item = Vec<Value>> + Send),
    ) -> Result<u64, DbError> {
        // Multi-row INSERTs of up to 200 rows, in one transaction: SQLite has
        // no COPY, and this is what its own documentation recommends for speed.
        // A savepoint is that transaction on its own, and nests inside a
        // caller's transaction (keel seed loads several tables in one).
        const ROWS_PER_STATEMENT: usize = 200;
        let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
        let head = format!(
            "INSERT INTO {} ({}) VALUES ",
            quote_relation(table),
            cols.join(", ")
        );
        let one = format!("({})", vec!["?"; columns.len()].join(", "));
        self.execute("SAVEPOINT keel_bulk_insert").await?;
        let mut n = 0u64;
        let result: Result<(), DbError> = async {
            let mut chunk = Vec::with_capacity(ROWS_PER_STATEMENT);
            loop {
                chunk.clear();
                chunk.extend((&mut *rows).take(ROWS_PER_STATEMENT));
                if chunk.is_empty() {
                    return Ok(());
                }
                let sql = format!("{head}{}", vec![one.as_str(); chunk.len()].join(", "));
                let args = arguments::<sqlx::Sqlite>(chunk.iter().flatten())?;
                sqlx::query_with(&sql, args)
                    .execute(&mut self.conn)
                    .await
                    .map_err(|e| self.err(e))?;
                n += chunk.len() as u64;
            }
        }
        .await;
        match result {
            Ok(()) => {
                self.execute("RELEASE keel_bulk_insert").await?;
                Ok(n)
            }
            Err(e) => {
                let _ = self
                    .execute("ROLLBACK TO keel_bulk_insert; RELEASE keel_bulk_insert")
                    .await;
                Err(e)
            }
        }
    }

    async fn scan_text(
        &mut self,
        table: &str,
        column: &str,
        visit: &mut (dyn for<'x> FnMut(Option<&'x str>) + Send),
    ) -> Result<u64, DbError> {
        let sql = scan_sql(table, column);
        let rows = sqlx::query_scalar::<_, Option<String>>(&sql).fetch(&mut self.conn);
        visit_text(rows, &self.url, visit).await
    }

    async fn export_csv(
        &mut self,
        query: &ExportQuery,
        sink: &mut (dyn for<'x> FnMut(&'x [u8]) -> std::io::Result<()> + Send),
    ) -> Result<(), DbError> {
        // SQLite has no search path: names mean the same everywhere.
        let sql = query.select();
        let columns = &query.columns;
        let url = self.url.clone();
        let mut buf = crate::csv::header(columns);
        let mut rows = sqlx::query(&sql).fetch(&mut self.conn);
        let mut fields: Vec<Option<Vec<u8>>> = Vec::with_capacity(columns.len());
        while let Some(row) = rows
            .try_next()
            .await
            .map_err(|e| DbError::from_sqlx(e, &url))?
        {
            fields.clear();
            for i in 0..columns.len() {
                let raw = row
                    .try_get_raw(i)
                    .map_err(|e| DbError::from_sqlx(e, &url))?;
                fields.push(as_text(raw)?);
            }
            crate::csv::push_record(&mut buf, fields.iter().map(|f| f.as_deref()));
            if buf.len() >= EXPORT_CHUNK {
                sink(&buf).map_err(sink_error)?;
                buf.clear();
            }
        }
        if !buf.is_empty() {
            sink(&buf).map_err(sink_error)?;
        }
        Ok(())
    }

    async fn import_csv(
        &mut self,
        table: &Relation,
        columns: &[String],
        load: &Load,
        source: &mut (dyn std::io::BufRead + Send),
    ) -> Result<u64, DbError> {
        let mut reader = crate::csv::Reader::new(source);
        let header = reader.next_record().map_err(csv_error)?;
        let expected: Vec<Option<String>> = columns.iter().cloned().map(Some).collect();
        if header.as_ref() != Some(&expected) {
            return Err(DbError::usage(format!(
                "the CSV header does not list the columns {}",
                columns.join(", ")
            )));
        }
        // Values are bound as text; SQLite's column affinity turns them back
        // into integers and reals where the column is declared so.
        let target = table.quoted();
        let key_positions = |key: &[String]| -> Result<Vec<usize>, DbError> {
            key.iter()
                .map(|k| {
                    columns.iter().position(|c| c == k).ok_or_else(|| {
                        DbError::usage(format!("the key column {k} is not in the backup"))
                    })
                })
                .collect()
        };
        let key_match = |keys: &[usize]| {
            keys.iter()
                .map(|&i| format!("{} = ?", quote_ident(&columns[i])))
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
        let placeholders = vec!["?"; cols.len()].join(", ");
        let (sql, order): (String, Vec<usize>) = if let Load::Insert = load {
            (
                format!(
                    "INSERT INTO {target} ({}) VALUES ({placeholders})",
                    cols.join(", ")
                ),
                (0..columns.len()).collect(),
            )
        } else if let Load::InsertMissing { key } = load {
            let keys = key_positions(key)?;
            (
                format!(
                    "INSERT INTO {target} ({}) SELECT {placeholders} \
                     WHERE NOT EXISTS (SELECT 1 FROM {target} WHERE {})",
                    cols.join(", "),
                    key_match(&keys)
                ),
                (0..columns.len()).chain(keys).collect(),
            )
        } else {
            let key: &[String] = match load {
                Load::Update { key } => key,
                _ => &[],
            };
            let set: Vec<usize> = (0..columns.len())
                .filter(|&i| !key.contains(&columns[i]))
                .collect();
            let keys = key_positions(key)?;
            let sql = format!(
                "UPDATE {target} SET {} WHERE {}",
                set.iter()
                    .map(|&i| format!("{} = ?", quote_ident(&columns[i])))
                    .collect::<Vec<_>>()
                    .join(", "),
                key_match(&keys)
            );
            (sql, set.into_iter().chain(keys).collect())
        };
        let mut done = 0u64;
        while let Some(record) = reader.next_record().map_err(csv_error)? {
            if record.len() != columns.len() {
                return Err(DbError::usage(format!(
                    "a CSV row has {} fields where {} columns were expected",
                    record.len(),
                    columns.len()
                )));
            }
            let mut args = SqliteArguments::default();
            for &i in &order {
                args.add(record[i].clone())
                    .map_err(|e| DbError::new(DbErrorKind::Statement, e.to_string()))?;
            }
            done += sqlx::query_with(&sql, args)
                .execute(&mut self.conn)
                .await
                .map_err(|e| self.err(e))?
                .rows_affected();
        }
        Ok(done)
    }

    async fn table_digest(
        &mut self,
        table: &Relation,
        columns: &[String],
    ) -> Result<TableDigest, DbError> {
        // Qualified: SQLite reads a bare "name" that is no column as a
        // string, so a column that down.sql dropped would digest as its
        // own name in every row instead of failing.
        let alias = quote_ident(&table.name);
        let cols: Vec<String> = columns
            .iter()
            .map(|c| format!("{alias}.{}", quote_ident(c)))
            .collect();
        let list = if cols.is_empty() {
            "1".to_string()
        } else {
            cols.join(", ")
        };
        let sql = format!("SELECT {list} FROM {} AS {alias}", table.quoted());
        let url = self.url.clone();
        let mut rows = sqlx::query(&sql).fetch(&mut self.conn);
        let mut sum = RowSum::default();
        let mut encoded = Vec::new();
        while let Some(row) = rows
            .try_next()
            .await
            .map_err(|e| DbError::from_sqlx(e, &url))?
        {
            encoded.clear();
            for i in 0..columns.len() {
                let raw = row
                    .try_get_raw(i)
                    .map_err(|e| DbError::from_sqlx(e, &url))?;
                push_value(&mut encoded, as_text(raw)?.as_deref());
            }
            sum.add(&encoded);
        }
        Ok(sum.finish())
    }

    async fn fill_empty_tables(
        &mut self,
        rows: u32,
        scope: &Scope,
    ) -> Result<Vec<Filled>, DbError> {
        self.fill_empty(rows, scope).await
    }

    async fn snapshot(&mut self, dest: &Path) -> Result<(), DbError> {
        let path = dest.to_str().ok_or_else(|| {
            DbError::usage(format!("the snapshot path {} is not UTF-8", dest.display()))
        })?;
        sqlx::query("VACUUM INTO ?")
            .bind(path)
            .execute(&mut self.conn)
            .await
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    async fn read_snapshot(&mut self, path: &Path) -> Result<SnapshotFacts, DbError> {
        // Read-only and immutable: checking a snapshot never writes to it
        // (no journal, no WAL files beside it).
        let shown = path.display().to_string();
        let unreadable = |e: sqlx::Error| {
            DbError::new(
                DbErrorKind::Statement,
                format!("{shown} is not a readable SQLite database: {e}"),
            )
        };
        let mut conn = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .immutable(true)
            .disable_statement_logging()
            .connect()
            .await
            .map_err(unreadable)?;
        let verdict: Vec<String> = sqlx::query_scalar("PRAGMA quick_check")
            .fetch_all(&mut conn)
            .await
            .map_err(unreadable)?;
        // The id keel_meta held when the snapshot was taken, if any.
        let id: Option<String> = sqlx::query_scalar(&select_database_id(META))
            .fetch_optional(&mut conn)
            .await
            .unwrap_or(None);
        let _ = conn.close().await;
        if verdict.first().map(String::as_str) != Some("ok") {
            return Err(DbError::new(
                DbErrorKind::Statement,
                format!("{shown} fails SQLite's quick_check: {}", verdict.join("; ")),
            ));
        }
        Ok(SnapshotFacts {
            database_id: id,
            this_database_id: self.database_id().await?,
            ..Default::default()
        })
    }
}

/// A value as text, the way a backup's CSV holds it; `None` for NULL.
/// SQLite types values, not columns: each is written as what it is.
fn as_text(raw: sqlx::sqlite::SqliteValueRef<'_>) -> Result<Option<Vec<u8>>, DbError> {
    use sqlx::{TypeInfo, ValueRef};
    if raw.is_null() {
        return Ok(None);
    }
    Ok(Some(match raw.type_info().name() {
        "INTEGER" => decode::<i64>(raw)?.to_string().into_bytes(),
        "REAL" => decode::<f64>(raw)?.to_string().into_bytes(),
        // bytea's text form, as PostgreSQL writes it.
        "BLOB" => format!("\\x{}", hex::encode(decode::<Vec<u8>>(raw)?)).into_bytes(),
        _ => decode::<String>(raw)?.into_bytes(),
    }))
}

fn decode<'r, T: sqlx::Decode<'r, sqlx::Sqlite>>(
    raw: sqlx::sqlite::SqliteValueRef<'r>,
) -> Result<T, DbError> {
    T::decode(raw).map_err(|e| DbError::new(DbErrorKind::Statement, e.to_string()))
}

fn csv_error(e: crate::csv::ReadError) -> DbError {
    DbError::usage(format!("the CSV data is malformed: {e}"))
}
