//! Rows in bulk on PostgreSQL: COPY in both directions, and snapshots with
//! the real `pg_dump` and `pg_restore`.

use super::{Postgres, pg_dump};
use crate::db::bulk::{EXPORT_CHUNK, scan_sql, sink_error, visit_text};
use crate::db::integrity::{Lines, RowSum};
use crate::db::{
    Bulk, DbError, DbErrorKind, ExportQuery, Filled, Load, Relation, Scope, Session, SnapshotFacts,
    TableDigest, Tracking, Value, quote_ident, quote_relation,
};
use async_trait::async_trait;
use futures_util::TryStreamExt;
use std::path::Path;

#[async_trait]
impl Bulk for Postgres {
    async fn bulk_insert(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: &mut (dyn Iterator<Item = Vec<Value>> + Send),
    ) -> Result<u64, DbError> {
        let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
        let sql = format!(
            "COPY {} ({}) FROM STDIN",
            quote_relation(table),
            cols.join(", ")
        );
        let mut copy = self
            .conn
            .copy_in_raw(&sql)
            .await
            .map_err(|e| DbError::from_sqlx(e, &self.url))?;
        let mut buf = String::with_capacity(1 << 17);
        let mut n = 0u64;
        for row in rows {
            for (i, value) in row.iter().enumerate() {
                if i > 0 {
                    buf.push('\t');
                }
                copy_text(&mut buf, value);
            }
            buf.push('\n');
            n += 1;
            if buf.len() >= 1 << 16 {
                copy.send(buf.as_bytes())
                    .await
                    .map_err(|e| DbError::from_sqlx(e, &self.url))?;
                buf.clear();
            }
        }
        if !buf.is_empty() {
            copy.send(buf.as_bytes())
                .await
                .map_err(|e| DbError::from_sqlx(e, &self.url))?;
        }
        copy.finish()
            .await
            .map_err(|e| DbError::from_sqlx(e, &self.url))?;
        Ok(n)
    }

    async fn sync_id_sequence(&mut self, table: &str, column: &str) -> Result<(), DbError> {
        let seq: Option<String> = sqlx::query_scalar("SELECT pg_get_serial_sequence($1, $2)")
            .bind(quote_relation(table))
            .bind(column)
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        if let Some(seq) = seq {
            sqlx::query(&format!(
                "SELECT setval($1::regclass, coalesce((SELECT max({}) FROM {}), 0) + 1, false)",
                quote_ident(column),
                quote_relation(table)
            ))
            .bind(seq)
            .execute(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        }
        Ok(())
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
        let sql = format!(
            "COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER)",
            query.select()
        );
        // Under the migration's search path, a filter's own table names
        // mean what they mean in the migration; the transaction only scopes
        // that setting and changes nothing.
        // Inside the migration's transaction a savepoint scopes it instead:
        // rolling back to it undoes the SET LOCAL and nothing else.
        let (open, close) = if query.within {
            (
                "SAVEPOINT keel_backup",
                "ROLLBACK TO SAVEPOINT keel_backup; RELEASE SAVEPOINT keel_backup",
            )
        } else {
            ("BEGIN READ ONLY", "ROLLBACK")
        };
        if let Some(path) = &query.search_path {
            self.execute(open).await?;
            if let Err(e) = self.set_local_search_path(path).await {
                let _ = self.execute(close).await;
                return Err(e);
            }
        }
        let result = self.copy_out(&sql, sink).await;
        if query.search_path.is_some() {
            let ended = self.execute(close).await;
            result?;
            return ended;
        }
        result
    }

    async fn import_csv(
        &mut self,
        table: &Relation,
        columns: &[String],
        load: &Load,
        source: &mut (dyn std::io::BufRead + Send),
    ) -> Result<u64, DbError> {
        let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
        let list = cols.join(", ");
        let target = table.quoted();
        if *load == Load::Insert {
            // COPY writes identity columns (GENERATED ALWAYS too) as given.
            let sql = format!("COPY {target} ({list}) FROM STDIN WITH (FORMAT csv, HEADER)");
            return self.copy_in(&sql, source).await;
        }
        // Load into a temporary table of the same column types, then one
        // statement: a single pass over the table instead of one per row.
        let staging = quote_ident("keel_restore");
        self.execute(&format!(
            "DROP TABLE IF EXISTS {staging}; \
             CREATE TEMP TABLE {staging} AS SELECT {list} FROM {target} WITH NO DATA"
        ))
        .await?;
        self.copy_in(
            &format!("COPY {staging} ({list}) FROM STDIN WITH (FORMAT csv, HEADER)"),
            source,
        )
        .await?;
        let sql = match load {
            Load::Insert => unreachable!("handled above"),
            Load::Update { key } => {
                let set: Vec<String> = columns
                    .iter()
                    .filter(|c| !key.contains(c))
                    .map(|c| format!("{0} = r.{0}", quote_ident(c)))
                    .collect();
                if set.is_empty() {
                    None
                } else {
                    Some(format!(
                        "UPDATE {target} AS t SET {} FROM {staging} AS r WHERE {}",
                        set.join(", "),
                        key_match(key)
                    ))
                }
            }
            Load::InsertMissing { key } => {
                let from_r: Vec<String> = cols.iter().map(|c| format!("r.{c}")).collect();
                Some(format!(
                    "INSERT INTO {target} ({list}) OVERRIDING SYSTEM VALUE SELECT {} FROM {staging} AS r \
                     WHERE NOT EXISTS (SELECT 1 FROM {target} AS t WHERE {})",
                    from_r.join(", "),
                    key_match(key)
                ))
            }
        };
        let changed = match sql {
            Some(sql) => sqlx::query(&sql)
                .execute(&mut self.conn)
                .await
                .map_err(|e| self.err(e))?
                .rows_affected(),
            None => 0,
        };
        self.execute(&format!("DROP TABLE {staging}")).await?;
        Ok(changed)
    }

    async fn table_digest(
        &mut self,
        table: &Relation,
        columns: &[String],
    ) -> Result<TableDigest, DbError> {
        // A COPY that fails as it starts (a column or table gone) leaves
        // sqlx's connection out of step with the server: the same SELECT,
        // without rows, says so first as an ordinary error.
        self.execute(&no_rows(table, columns)).await?;
        self.copied_digest(table, columns).await
    }

    async fn table_digests(
        &mut self,
        tables: &[(Relation, Vec<String>)],
    ) -> Vec<Result<TableDigest, DbError>> {
        if tables.is_empty() {
            return Vec::new();
        }
        // Every table checked in one round trip, which also says which hold
        // rows: an empty one needs no COPY (most of a history's tables, on
        // a database filled by its migrations alone). When one fails, each
        // is taken alone, so that the failure is that table's.
        let probes: Vec<String> = tables
            .iter()
            .map(|(t, c)| format!("EXISTS ({})", select(t, c)))
            .collect();
        let held: Option<Vec<bool>> =
            sqlx::query_scalar(&format!("SELECT ARRAY[{}]", probes.join(", ")))
                .persistent(false)
                .fetch_one(&mut self.conn)
                .await
                .ok();
        let mut out = Vec::with_capacity(tables.len());
        for (i, (table, columns)) in tables.iter().enumerate() {
            out.push(match held.as_ref().map(|h| h.get(i).copied()) {
                Some(Some(false)) => Ok(RowSum::default().finish()),
                Some(_) => self.copied_digest(table, columns).await,
                None => self.table_digest(table, columns).await,
            });
        }
        out
    }

    async fn fill_empty_tables(
        &mut self,
        rows: u32,
        scope: &Scope,
    ) -> Result<Vec<Filled>, DbError> {
        self.fill_empty(rows, scope).await
    }

    async fn snapshot(&mut self, dest: &Path) -> Result<(), DbError> {
        pg_dump::dump(&self.secret_url, &self.url, dest).await
    }

    async fn read_snapshot(&mut self, path: &Path) -> Result<SnapshotFacts, DbError> {
        let header = pg_dump::list(path).await?;
        let id = pg_dump::database_id(path).await?;
        let this: String = sqlx::query_scalar("SELECT current_database()::text")
            .fetch_one(&mut self.conn)
            .await
            .map_err(|e| self.err(e))?;
        Ok(SnapshotFacts {
            database: header.dbname,
            this_database: Some(this),
            database_id: id,
            this_database_id: self.database_id().await?,
            created_at: header.created_at,
        })
    }
}

/// `t.k = r.k AND …` for every key column.
fn key_match(key: &[String]) -> String {
    key.iter()
        .map(|k| format!("t.{0} = r.{0}", quote_ident(k)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// `SELECT` of `table`'s `columns`: fails as the COPY of them would.
fn select(table: &Relation, columns: &[String]) -> String {
    let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    format!("SELECT {} FROM {}", cols.join(", "), table.quoted())
}

/// [`select`] without rows.
fn no_rows(table: &Relation, columns: &[String]) -> String {
    format!("{} LIMIT 0", select(table, columns))
}

impl Postgres {
    /// [`Bulk::table_digest`] once the table and columns are known to be
    /// there ([`no_rows`] ran).
    async fn copied_digest(
        &mut self,
        table: &Relation,
        columns: &[String],
    ) -> Result<TableDigest, DbError> {
        // COPY's text format writes each row on one line, NULL as \N and
        // tabs, newlines and backslashes inside values escaped: the line is
        // an unambiguous encoding of the row's values as text.
        let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
        let sql = format!(
            "COPY (SELECT {} FROM {}) TO STDOUT",
            cols.join(", "),
            table.quoted()
        );
        let mut sum = RowSum::default();
        let mut lines = Lines::default();
        self.copy_out(&sql, &mut |chunk| {
            lines.feed(chunk, &mut |row| sum.add(row));
            Ok(())
        })
        .await?;
        if !lines.is_clean() {
            return Err(DbError::new(
                DbErrorKind::Statement,
                format!("the rows of {table} ended in the middle of a row"),
            ));
        }
        Ok(sum.finish())
    }

    /// Runs `COPY (…) TO STDOUT` and hands the rows to `sink` in large chunks.
    async fn copy_out(
        &mut self,
        sql: &str,
        sink: &mut (dyn for<'x> FnMut(&'x [u8]) -> std::io::Result<()> + Send),
    ) -> Result<(), DbError> {
        let url = self.url.clone();
        let mut stream = self
            .conn
            .copy_out_raw(sql)
            .await
            .map_err(|e| DbError::from_sqlx(e, &url))?;
        // The server sends one message per row; hand them on in large
        // chunks so that hashing and compression work on big blocks.
        let mut buf = Vec::with_capacity(EXPORT_CHUNK + 4096);
        while let Some(bytes) = stream
            .try_next()
            .await
            .map_err(|e| DbError::from_sqlx(e, &url))?
        {
            buf.extend_from_slice(&bytes);
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

    /// Runs `COPY … FROM STDIN` fed from `source` in large blocks.
    async fn copy_in(
        &mut self,
        sql: &str,
        source: &mut (dyn std::io::BufRead + Send),
    ) -> Result<u64, DbError> {
        let url = self.url.clone();
        let mut copy = self
            .conn
            .copy_in_raw(sql)
            .await
            .map_err(|e| DbError::from_sqlx(e, &url))?;
        let mut buf = vec![0u8; EXPORT_CHUNK];
        loop {
            let n = match source.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = copy.abort(format!("reading the backup failed: {e}")).await;
                    return Err(DbError::new(
                        DbErrorKind::Statement,
                        format!("reading the rows to load failed: {e}"),
                    ));
                }
            };
            copy.send(&buf[..n])
                .await
                .map_err(|e| DbError::from_sqlx(e, &url))?;
        }
        copy.finish().await.map_err(|e| DbError::from_sqlx(e, &url))
    }
}

/// Appends a value in COPY's text format.
fn copy_text(buf: &mut String, value: &Value) {
    match value {
        Value::Null => buf.push_str("\\N"),
        Value::Int(i) => buf.push_str(&i.to_string()),
        Value::Bool(b) => buf.push_str(if *b { "t" } else { "f" }),
        Value::Timestamp(t) => buf.push_str(&t.to_rfc3339()),
        Value::Text(s) => {
            for ch in s.chars() {
                match ch {
                    '\\' => buf.push_str("\\\\"),
                    '\t' => buf.push_str("\\t"),
                    '\n' => buf.push_str("\\n"),
                    '\r' => buf.push_str("\\r"),
                    c => buf.push(c),
                }
            }
        }
    }
}
