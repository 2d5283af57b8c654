//! Rows in bulk: loading many at once, reading a column through, exporting
//! and importing a backup's CSV, and whole-database snapshots. Counting and
//! summing up are the same SQL in both dialects and are written here once.

use super::{
    DbError, DbErrorKind, Filled, Relation, Scope, SearchPath, Session, TableDigest, Value,
    quote_ident, quote_relation,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::path::Path;

/// The rows of one table a backup exports: `SELECT columns FROM table [AS
/// alias] [WHERE filter]`, run under `search_path` when the migration set
/// one (the filter may name other tables the way the migration does).
#[derive(Debug, Clone)]
pub struct ExportQuery {
    /// The table read.
    pub table: Relation,
    /// The alias the migration's statement gives the table, which `filter` may use.
    pub alias: Option<String>,
    /// The columns exported, in order.
    pub columns: Vec<String>,
    /// A condition from the migration's own statement (SQL as reviewed in
    /// up.sql), or `None` for every row.
    pub filter: Option<String>,
    /// The search path the migration set before the statement, if any.
    pub search_path: Option<SearchPath>,
    /// Run inside the migration's open transaction (the backup is taken
    /// there, under its lock): the search path is scoped by a savepoint,
    /// never by a transaction of the export's own.
    pub within: bool,
}

impl ExportQuery {
    /// The SELECT, every identifier quoted.
    pub fn select(&self) -> String {
        let cols: Vec<String> = self.columns.iter().map(|c| quote_ident(c)).collect();
        let mut sql = format!("SELECT {} FROM {}", cols.join(", "), self.table.quoted());
        if let Some(a) = &self.alias {
            sql.push_str(" AS ");
            sql.push_str(&quote_ident(a));
        }
        if let Some(f) = &self.filter {
            sql.push_str(" WHERE ");
            sql.push_str(f);
        }
        sql
    }
}

/// How backed-up rows go back into their table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Load {
    /// Every row is inserted (the table was dropped or emptied).
    Insert,
    /// Rows whose key is not in the table are inserted; rows whose key is
    /// there again are left as they are (rows a DELETE removed).
    InsertMissing {
        /// The key columns the backup recorded: whether a row is there again.
        key: Vec<String>,
    },
    /// The other columns of the rows with these keys are set back.
    Update {
        /// The key columns the backup recorded: which row to set back.
        key: Vec<String>,
    },
}

/// Count, nulls and range of one column, computed by the database.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ColumnSummary {
    /// Rows in the table.
    pub rows: i64,
    /// Rows where the column is NULL.
    pub nulls: i64,
    /// The smallest value as text; `None` when every value is NULL or the
    /// type has no ordering (json, bool).
    pub min: Option<String>,
    /// The largest value as text; `None` as for `min`.
    pub max: Option<String>,
}

/// What a snapshot says about itself, and what this database is, so the
/// caller can tell a dump of another database.
#[derive(Debug, Clone, Default)]
pub struct SnapshotFacts {
    /// The database the dump was taken of (PostgreSQL's archive header).
    pub database: Option<String>,
    /// This connection's database, comparable with `database`.
    pub this_database: Option<String>,
    /// The `keel_meta` database id in the snapshot, and this database's:
    /// unlike names, equal only for copies of one database.
    pub database_id: Option<String>,
    /// This database's `keel_meta` id, comparable with `database_id`.
    pub this_database_id: Option<String>,
    /// When the dump was taken, by the archive's own header.
    pub created_at: Option<DateTime<Utc>>,
}

/// Moving and reading many rows at once, and whole-database snapshots.
#[async_trait]
pub trait Bulk: Session {
    /// Loads rows fast (PostgreSQL: COPY; SQLite: prepared inserts in one
    /// transaction). Rows come in chunks so memory stays flat.
    async fn bulk_insert(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: &mut (dyn Iterator<Item = Vec<Value>> + Send),
    ) -> Result<u64, DbError>;
    /// After rows were loaded with explicit ids, moves the table's id
    /// sequence past them (PostgreSQL); SQLite has no sequence to move.
    async fn sync_id_sequence(&mut self, table: &str, column: &str) -> Result<(), DbError> {
        let _ = (table, column);
        Ok(())
    }
    /// Reads a column's values as text, one at a time, without holding the
    /// column in memory. Returns how many rows were visited.
    async fn scan_text(
        &mut self,
        table: &str,
        column: &str,
        visit: &mut (dyn for<'x> FnMut(Option<&'x str>) + Send),
    ) -> Result<u64, DbError>;

    /// Streams the query's rows as CSV with a header line, in the dialect of
    /// [`crate::csv`], into `sink` chunk by chunk; the table is never held
    /// in memory. PostgreSQL: `COPY (SELECT …) TO STDOUT WITH (FORMAT csv,
    /// HEADER)`. An error from `sink` stops the export.
    async fn export_csv(
        &mut self,
        query: &ExportQuery,
        sink: &mut (dyn for<'x> FnMut(&'x [u8]) -> std::io::Result<()> + Send),
    ) -> Result<(), DbError>;
    /// Puts CSV rows (header first, `columns` in that order) back into
    /// `table` as `load` says. Runs inside the caller's transaction; returns
    /// how many rows were inserted or updated.
    async fn import_csv(
        &mut self,
        table: &Relation,
        columns: &[String],
        load: &Load,
        source: &mut (dyn std::io::BufRead + Send),
    ) -> Result<u64, DbError>;

    /// Writes a consistent copy of the whole database to `dest`
    /// (PostgreSQL: `pg_dump -Fc`; SQLite: `VACUUM INTO`).
    async fn snapshot(&mut self, dest: &Path) -> Result<(), DbError>;
    /// Reads a snapshot file back with the dialect's own tools, so that a
    /// file that merely starts like a dump is not taken for one
    /// (PostgreSQL: `pg_restore --list`; SQLite: opened read-only, `PRAGMA
    /// quick_check`). An unreadable file is an error.
    async fn read_snapshot(&mut self, path: &Path) -> Result<SnapshotFacts, DbError>;

    /// How many rows of `table` the CSV in `source` (header first,
    /// `columns` in that order) does not hold, comparing `compare` only and
    /// counting duplicates (a multiset: two equal rows in the table need two
    /// in the CSV). Values are compared as text, so types without equality
    /// (json) compare too. The CSV is loaded into a temporary table first,
    /// inside the caller's transaction; the table is dropped afterwards.
    async fn rows_not_in_csv(
        &mut self,
        table: &Relation,
        columns: &[String],
        compare: &[String],
        source: &mut (dyn std::io::BufRead + Send),
    ) -> Result<u64, DbError> {
        let staged = Relation::new(None, "keel_staged_rows");
        let list: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
        // `WHERE 1 = 0`: the same column types, no rows, in both dialects.
        self.execute(&format!("DROP TABLE IF EXISTS {}", staged.quoted()))
            .await?;
        self.execute(&format!(
            "CREATE TEMP TABLE {} AS SELECT {} FROM {} WHERE 1 = 0",
            staged.quoted(),
            list.join(", "),
            table.quoted()
        ))
        .await?;
        self.import_csv(&staged, columns, &Load::Insert, source)
            .await?;
        let sql = if compare.is_empty() {
            format!(
                "SELECT CAST(CASE WHEN a > b THEN a - b ELSE 0 END AS bigint) \
                 FROM (SELECT (SELECT count(*) FROM {}) AS a, (SELECT count(*) FROM {}) AS b) AS c",
                table.quoted(),
                staged.quoted()
            )
        } else {
            let keys: Vec<String> = compare
                .iter()
                .enumerate()
                // Never NULL, so that a plain equality joins (hash join,
                // SQLite's automatic index) and a NULL still matches a NULL.
                .map(|(i, c)| {
                    let c = quote_ident(c);
                    format!(
                        "CASE WHEN {c} IS NULL THEN 'n' ELSE 'v' || CAST({c} AS text) END AS k{i}"
                    )
                })
                .collect();
            let groups: Vec<String> = (0..compare.len()).map(|i| format!("k{i}")).collect();
            let on: Vec<String> = (0..compare.len())
                .map(|i| format!("t.k{i} = s.k{i}"))
                .collect();
            let side = |rel: &Relation| {
                format!(
                    "(SELECT {}, count(*) AS n FROM {} GROUP BY {})",
                    keys.join(", "),
                    rel.quoted(),
                    groups.join(", ")
                )
            };
            format!(
                "SELECT CAST(coalesce(sum(CASE WHEN s.n IS NULL THEN t.n WHEN t.n > s.n THEN t.n - s.n ELSE 0 END), 0) AS bigint) \
                 FROM {} AS t LEFT JOIN {} AS s ON {}",
                side(table),
                side(&staged),
                on.join(" AND ")
            )
        };
        let rows = self.query_with(&sql, &[]).await?;
        self.execute(&format!("DROP TABLE {}", staged.quoted()))
            .await?;
        Ok(first(&rows, 0).and_then(Value::as_i64).unwrap_or(0) as u64)
    }

    /// Deletes every row of `table` (in the caller's transaction), before
    /// a backup of the whole table replaces them.
    async fn delete_all_rows(&mut self, table: &Relation) -> Result<u64, DbError> {
        self.execute_with(&format!("DELETE FROM {}", table.quoted()), &[])
            .await
    }

    /// How many rows `table` has.
    async fn count_rows(&mut self, table: &str) -> Result<i64, DbError> {
        let sql = format!("SELECT count(*) FROM {}", quote_relation(table));
        let rows = self.query_with(&sql, &[]).await?;
        Ok(first(&rows, 0).and_then(Value::as_i64).unwrap_or(0))
    }

    /// The largest value of an integer column; `None` for an empty table.
    async fn max_int(&mut self, table: &str, column: &str) -> Result<Option<i64>, DbError> {
        let sql = format!(
            "SELECT CAST(max({}) AS bigint) FROM {}",
            quote_ident(column),
            quote_relation(table)
        );
        let rows = self.query_with(&sql, &[]).await?;
        Ok(first(&rows, 0).and_then(Value::as_i64))
    }

    /// Count, NULLs, smallest and largest value of one column.
    async fn summarize(&mut self, table: &str, column: &str) -> Result<ColumnSummary, DbError> {
        let (t, c) = (quote_relation(table), quote_ident(column));
        // min/max on the column's own type (so numbers and dates order
        // correctly), then shown as text. Types without ordering
        // (PostgreSQL's json, bool) have no range.
        let ranged = format!(
            "SELECT count(*), count(*) - count({c}), CAST(min({c}) AS text), \
             CAST(max({c}) AS text) FROM {t}"
        );
        let rows = match self.query_with(&ranged, &[]).await {
            Ok(rows) => rows,
            Err(_) => {
                let unranged = format!(
                    "SELECT count(*), count(*) - count({c}), CAST(NULL AS text), \
                     CAST(NULL AS text) FROM {t}"
                );
                self.query_with(&unranged, &[]).await?
            }
        };
        Ok(ColumnSummary {
            rows: first(&rows, 0).and_then(Value::as_i64).unwrap_or(0),
            nulls: first(&rows, 1).and_then(Value::as_i64).unwrap_or(0),
            min: first(&rows, 2).and_then(Value::as_text),
            max: first(&rows, 3).and_then(Value::as_text),
        })
    }

    /// What a table holds, independent of row order and column order: the
    /// row count and a digest of the multiset of rows (two equal rows count
    /// twice). `columns` are compared as text, by name, in the order given
    /// (the caller sorts them); NULL is not ''. The rows are streamed and
    /// hashed one by one, never held. Two digests compare on one dialect.
    async fn table_digest(
        &mut self,
        table: &Relation,
        columns: &[String],
    ) -> Result<TableDigest, DbError>;

    /// [`Bulk::table_digest`] of each table with its columns, each with its
    /// own outcome (a table gone or a column missing fails that one only).
    /// A dialect may check them all in one round trip first.
    async fn table_digests(
        &mut self,
        tables: &[(Relation, Vec<String>)],
    ) -> Vec<Result<TableDigest, DbError>> {
        let mut out = Vec::with_capacity(tables.len());
        for (table, columns) in tables {
            out.push(self.table_digest(table, columns).await);
        }
        out
    }

    /// Puts `rows` generated rows into every user table in `scope` that is
    /// empty (keel's own tables never), and into the empty tables they
    /// reference, parents before children so foreign keys hold; returns what it did per empty table, including the tables it
    /// could not fill and why. Each table's INSERT is a statement of its
    /// own (call it outside a transaction): a table that fails leaves the
    /// others filled. Tables that hold rows are left alone and not listed.
    async fn fill_empty_tables(&mut self, rows: u32, scope: &Scope)
    -> Result<Vec<Filled>, DbError>;
}

/// Column `i` of the first row.
fn first(rows: &[Vec<Value>], i: usize) -> Option<&Value> {
    rows.first()?.get(i)
}

/// Every value of one column as text, for [`Bulk::scan_text`].
pub(super) fn scan_sql(table: &str, column: &str) -> String {
    format!(
        "SELECT CAST({} AS text) FROM {}",
        quote_ident(column),
        quote_relation(table)
    )
}

/// Hands each value of [`scan_sql`]'s rows to `visit` as it arrives;
/// returns how many there were.
pub(super) async fn visit_text<S>(
    mut rows: S,
    url: &str,
    visit: &mut (dyn for<'x> FnMut(Option<&'x str>) + Send),
) -> Result<u64, DbError>
where
    S: futures_util::Stream<Item = Result<Option<String>, sqlx::Error>> + Unpin,
{
    use futures_util::TryStreamExt;
    let mut n = 0;
    while let Some(value) = rows
        .try_next()
        .await
        .map_err(|e| DbError::from_sqlx(e, url))?
    {
        visit(value.as_deref());
        n += 1;
    }
    Ok(n)
}

/// Bytes gathered before an export hands a chunk on: hashing and
/// compression work on big blocks.
pub(super) const EXPORT_CHUNK: usize = 256 * 1024;

/// The export's sink failed (the archive could not be written).
pub(super) fn sink_error(e: std::io::Error) -> DbError {
    DbError::new(
        DbErrorKind::Statement,
        format!("writing the exported rows failed: {e}"),
    )
}
