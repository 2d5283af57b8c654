//! The schema fingerprint from SQLite's own tables: `sqlite_master`, the
//! table-valued pragmas (`pragma_table_list`, `pragma_table_xinfo`,
//! `pragma_index_list`, `pragma_foreign_key_list`), one query per kind for
//! every table at once, and the CREATE TABLE text for what no pragma tells
//! (CHECK constraints, collations, generation expressions, AUTOINCREMENT).
//!
//! SQLite has one schema: names carry no schema part. Lines:
//! `table posts STRICT`, `column posts.title TEXT NOT NULL DEFAULT ''`,
//! `primary key posts (id)`, `unique posts (email)` (a UNIQUE constraint's
//! automatic index), `index posts_title_idx ON posts (title)`, `foreign key
//! posts (user_id) REFERENCES users (id) ON DELETE CASCADE`, `check posts
//! CHECK (length(title) > 0)`, `trigger …`, `view …`. Stored SQL is shown
//! with its whitespace and comments collapsed to single spaces.

mod scan;

use super::Sqlite;
use crate::db::{DbError, Fingerprint, KEEL_TABLES, Scope, Widened};
use scan::{TableText, ident, normalize, strip_create};
use std::collections::BTreeMap;

/// `sqlite_master` rows of user tables (keel's and SQLite's own left out);
/// `?1` is keel's tables as a JSON array, `?2` the scope's (NULL: all).
const TABLES: &str = "SELECT m.name, coalesce(m.sql, ''), l.wr, l.strict FROM sqlite_master m \
     JOIN pragma_table_list l ON l.name = m.name AND l.schema = 'main' \
     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
     AND m.name NOT IN (SELECT value FROM json_each(?1)) \
     AND (?2 IS NULL OR m.name IN (SELECT value FROM json_each(?2)))";

/// The JSON arrays bound as `?1` and `?2`.
struct Params {
    keel: String,
    only: Option<String>,
}

/// One column of a table in [`TABLES`], as `pragma_table_xinfo` says.
struct Column {
    tbl: String,
    name: String,
    data_type: String,
    notnull: i64,
    dflt_value: Option<String>,
    pk: i64,
    hidden: i64,
}

type ColumnRow = (String, String, String, i64, Option<String>, i64, i64);

impl From<ColumnRow> for Column {
    fn from(r: ColumnRow) -> Column {
        let (tbl, name, data_type, notnull, dflt_value, pk, hidden) = r;
        Column {
            tbl,
            name,
            data_type,
            notnull,
            dflt_value,
            pk,
            hidden,
        }
    }
}

/// One column pair of a foreign key (`id`), as `pragma_foreign_key_list`
/// says.
struct ForeignKey {
    tbl: String,
    id: i64,
    parent: String,
    from_col: String,
    to_col: Option<String>,
    on_update: String,
    on_delete: String,
}

type ForeignKeyRow = (String, i64, String, String, Option<String>, String, String);

impl From<ForeignKeyRow> for ForeignKey {
    fn from(r: ForeignKeyRow) -> ForeignKey {
        let (tbl, id, parent, from_col, to_col, on_update, on_delete) = r;
        ForeignKey {
            tbl,
            id,
            parent,
            from_col,
            to_col,
            on_update,
            on_delete,
        }
    }
}

/// Tables a JSON array of names (`?1`) reaches one step further: the
/// tables of named indexes and tables whose foreign keys point at them.
const WIDEN: &str = "SELECT m.tbl_name FROM sqlite_master m \
     WHERE m.type = 'index' AND m.name IN (SELECT value FROM json_each(?1)) \
     UNION SELECT m.name FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f \
     WHERE m.type = 'table' AND f.\"table\" IN (SELECT value FROM json_each(?1))";

impl Sqlite {
    pub(super) async fn widen_scope(&mut self, scope: &Scope) -> Result<Widened, DbError> {
        let Some(mut names) = scope.names() else {
            return Ok(Widened::all());
        };
        let mut schema = scope.clone();
        // Foreign keys chain: to a fixed point (each round adds a table,
        // or ends).
        loop {
            let json = serde_json::to_string(&names).unwrap_or_default();
            let found: Vec<String> = sqlx::query_scalar(WIDEN)
                .bind(&json)
                .fetch_all(&mut self.conn)
                .await
                .map_err(|e| self.err(e))?;
            let before = schema.clone();
            found.iter().for_each(|t| schema.add_relname(t));
            if schema == before {
                break;
            }
            names = schema.names().unwrap_or_default();
        }
        let json = serde_json::to_string(&names).unwrap_or_default();
        let triggers: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' \
             AND tbl_name IN (SELECT value FROM json_each(?1))",
        )
        .bind(&json)
        .fetch_one(&mut self.conn)
        .await
        .map_err(|e| self.err(e))?;
        // SQLite is read in-process: always fingerprint (found).
        Ok(Widened::of(schema, &[], triggers > 0, true))
    }

    pub(super) async fn schema_fingerprint(
        &mut self,
        scope: &Scope,
    ) -> Result<Fingerprint, DbError> {
        let params = &Params {
            keel: serde_json::to_string(&KEEL_TABLES).unwrap_or_default(),
            only: scope
                .names()
                .map(|n| serde_json::to_string(&n).unwrap_or_default()),
        };
        let mut f = Fingerprint::default();
        let tables: Vec<(String, String, i64, i64)> = self.all(TABLES, params).await?;
        let mut texts = BTreeMap::new();
        for (name, sql, without_rowid, strict) in tables {
            let mut line = format!("table {}", ident(&name));
            if without_rowid != 0 {
                line.push_str(" WITHOUT ROWID");
            }
            if strict != 0 {
                line.push_str(" STRICT");
            }
            if sql.starts_with("CREATE VIRTUAL TABLE") {
                line = format!("table {} VIRTUAL {}", ident(&name), strip_create(&sql).1);
            }
            f.insert(format!("table {}", ident(&name)), line);
            let text = TableText::parse(&sql);
            for check in &text.checks {
                let (key, line) = check.entry(&ident(&name));
                f.insert(key, line);
            }
            texts.insert(name, text);
        }
        self.columns_into(&mut f, params, &texts).await?;
        self.indexes_into(&mut f, params).await?;
        self.foreign_keys_into(&mut f, params).await?;
        self.stored_sql_into(&mut f, params).await?;
        Ok(f)
    }

    /// Every row of `sql`, whose `?1` is keel's tables as JSON and `?2`
    /// the scope's.
    async fn all<T>(&mut self, sql: &str, params: &Params) -> Result<Vec<T>, DbError>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
    {
        sqlx::query_as(sql)
            .bind(&params.keel)
            .bind(params.only.as_deref())
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e))
    }

    /// Columns, and each table's primary key (with AUTOINCREMENT).
    async fn columns_into(
        &mut self,
        f: &mut Fingerprint,
        params: &Params,
        texts: &BTreeMap<String, TableText>,
    ) -> Result<(), DbError> {
        let sql = format!(
            "SELECT t.name AS tbl, x.name, x.type, x.\"notnull\", x.dflt_value, x.pk, x.hidden \
             FROM ({TABLES}) t JOIN pragma_table_xinfo(t.name) x ORDER BY t.name, x.cid"
        );
        let rows: Vec<ColumnRow> = self.all(&sql, params).await?;
        let columns: Vec<Column> = rows.into_iter().map(Column::from).collect();
        let mut keys: BTreeMap<&str, Vec<(i64, &str)>> = BTreeMap::new();
        for c in &columns {
            let text = texts.get(&c.tbl);
            let extra = text.and_then(|t| t.columns.get(&c.name));
            let table = ident(&c.tbl);
            let key = format!("column {table}.{}", ident(&c.name));
            let mut line = key.clone();
            if !c.data_type.is_empty() {
                line.push(' ');
                line.push_str(&c.data_type.to_uppercase());
            }
            if let Some(collate) = extra.and_then(|e| e.collate.as_ref()) {
                line.push_str(&format!(" COLLATE {collate}"));
            }
            if c.notnull != 0 {
                line.push_str(" NOT NULL");
            }
            if let Some(default) = &c.dflt_value {
                line.push_str(&format!(" DEFAULT {}", normalize(default)));
            }
            if c.hidden == 2 || c.hidden == 3 {
                let expr = extra.and_then(|e| e.generated.as_deref()).unwrap_or("?");
                let how = if c.hidden == 3 { "STORED" } else { "VIRTUAL" };
                line.push_str(&format!(" GENERATED ALWAYS AS ({expr}) {how}"));
            }
            f.insert(key, line);
            if c.pk > 0 {
                keys.entry(&c.tbl).or_default().push((c.pk, &c.name));
            }
        }
        for (table, mut cols) in keys {
            cols.sort();
            let names: Vec<String> = cols.iter().map(|(_, c)| ident(c)).collect();
            let auto = texts.get(table).is_some_and(|t| t.autoincrement);
            f.insert(
                format!("primary key {}", ident(table)),
                format!(
                    "primary key {} ({}){}",
                    ident(table),
                    names.join(", "),
                    if auto { " AUTOINCREMENT" } else { "" }
                ),
            );
        }
        Ok(())
    }

    /// Indexes: the stored CREATE INDEX of each made by a statement, and
    /// the columns of each a UNIQUE constraint made (a PRIMARY KEY's is the
    /// primary key line).
    async fn indexes_into(&mut self, f: &mut Fingerprint, params: &Params) -> Result<(), DbError> {
        let sql = format!(
            "SELECT t.name, il.name, il.\"unique\", coalesce(m.sql, ''), \
             (SELECT group_concat(coalesce(name, '?'), char(31)) FROM \
                (SELECT name FROM pragma_index_info(il.name) ORDER BY seqno)) \
             FROM ({TABLES}) t JOIN pragma_index_list(t.name) il \
             LEFT JOIN sqlite_master m ON m.type = 'index' AND m.name = il.name \
             WHERE il.origin <> 'pk'"
        );
        let rows: Vec<(String, String, i64, String, Option<String>)> =
            self.all(&sql, params).await?;
        for (table, name, unique, stored, columns) in rows {
            if stored.is_empty() {
                let columns: Vec<String> = columns
                    .unwrap_or_default()
                    .split('\u{1f}')
                    .map(ident)
                    .collect();
                let line = format!("unique {} ({})", ident(&table), columns.join(", "));
                f.insert(line.clone(), line);
            } else {
                let (_, rest) = strip_create(&stored);
                let unique = if unique != 0 { "UNIQUE " } else { "" };
                let key = format!("index {}", ident(&name));
                f.insert(key.clone(), format!("{key} {unique}{rest}"));
            }
        }
        Ok(())
    }

    /// Foreign keys, one line per key (its columns in order).
    async fn foreign_keys_into(
        &mut self,
        f: &mut Fingerprint,
        params: &Params,
    ) -> Result<(), DbError> {
        let sql = format!(
            "SELECT t.name AS tbl, k.id, k.\"table\" AS parent, k.\"from\" AS from_col, \
             k.\"to\" AS to_col, k.on_update, k.on_delete \
             FROM ({TABLES}) t JOIN pragma_foreign_key_list(t.name) k \
             ORDER BY t.name, k.id, k.seq"
        );
        let rows: Vec<ForeignKeyRow> = self.all(&sql, params).await?;
        let keys: Vec<ForeignKey> = rows.into_iter().map(ForeignKey::from).collect();
        for group in keys.chunk_by(|a, b| a.tbl == b.tbl && a.id == b.id) {
            let first = &group[0];
            let from: Vec<String> = group.iter().map(|k| ident(&k.from_col)).collect();
            let to: Vec<String> = group
                .iter()
                .filter_map(|k| k.to_col.as_deref().map(ident))
                .collect();
            let mut key = format!(
                "foreign key {} ({}) REFERENCES {}",
                ident(&first.tbl),
                from.join(", "),
                ident(&first.parent)
            );
            if !to.is_empty() {
                key.push_str(&format!(" ({})", to.join(", ")));
            }
            let mut line = key.clone();
            for (word, action) in [("UPDATE", &first.on_update), ("DELETE", &first.on_delete)] {
                if action != "NO ACTION" {
                    line.push_str(&format!(" ON {word} {action}"));
                }
            }
            f.insert(key, line);
        }
        Ok(())
    }

    /// Triggers and views, from their stored SQL.
    async fn stored_sql_into(
        &mut self,
        f: &mut Fingerprint,
        params: &Params,
    ) -> Result<(), DbError> {
        let rows: Vec<(String, String, String)> = self
            .all(
                "SELECT type, name, sql FROM sqlite_master \
                 WHERE type IN ('trigger', 'view') AND sql IS NOT NULL \
                 AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
                 AND tbl_name NOT IN (SELECT value FROM json_each(?1)) \
                 AND (?2 IS NULL OR type = 'view' OR tbl_name IN (SELECT value FROM json_each(?2)))",
                params,
            )
            .await?;
        for (kind, name, sql) in rows {
            let key = format!("{kind} {}", ident(&name));
            f.insert(key.clone(), format!("{key} {}", strip_create(&sql).1));
        }
        Ok(())
    }
}
