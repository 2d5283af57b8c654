//! The schema as the database's catalog describes it: tables, their columns,
//! keys, indexes and constraints, and which table a name means.

use super::{DbError, Fingerprint, Relation, Scope, Session, Widened};
use async_trait::async_trait;

/// A search path a migration sets, as written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchPath {
    /// `SET [SESSION | LOCAL] search_path { TO | = } <list>`: the list's text,
    /// which `SET LOCAL search_path TO <list>` reproduces exactly.
    List(String),
    /// `SELECT [pg_catalog.]set_config('search_path', '<value>', …)` (what
    /// pg_dump writes): the value.
    Config(String),
}

/// One column of a table, as `keel inspect` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ColumnInfo {
    /// The column's name.
    pub name: String,
    /// Its type as the database prints it.
    pub data_type: String,
    /// Accepts NULL (no NOT NULL constraint).
    pub nullable: bool,
    /// The default expression's text, if it has one.
    pub default: Option<String>,
    /// True for text-like columns (text, varchar, char), where word and
    /// character statistics make sense.
    pub is_text: bool,
}

/// One index of a table, with the statement that makes it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IndexInfo {
    /// The index's name.
    pub name: String,
    /// The statement that creates it (`pg_get_indexdef`; SQLite's stored SQL, or a note for an automatic index).
    pub definition: String,
    /// A unique index.
    pub unique: bool,
    /// Usable by queries; `false` for one a failed CREATE INDEX CONCURRENTLY
    /// left behind (PostgreSQL `indisvalid`).
    pub valid: bool,
}

/// One constraint of a table: its kind (`primary key`, `unique`, `foreign
/// key`, `check`, `exclusion`) and definition.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConstraintInfo {
    /// The constraint's name.
    pub name: String,
    /// `primary key`, `unique`, `foreign key`, `check` or `exclusion`.
    pub kind: String,
    /// Its definition (`pg_get_constraintdef`; rebuilt from pragmas on SQLite).
    pub definition: String,
}

/// The index a `CREATE INDEX` statement asks for, as written: what keel
/// compares with an index of the same name that is already there.
#[derive(Debug, Clone)]
pub struct IndexRequest {
    /// The index's name (never schema-qualified: an index lives in its
    /// table's schema).
    pub name: String,
    /// The table, in [`Relation`]'s text form.
    pub table: String,
    /// `CREATE UNIQUE INDEX`.
    pub unique: bool,
    /// What follows the table: method, columns or expressions, INCLUDE,
    /// WITH, WHERE.
    pub shape: String,
}

/// One index as the server prints it, in parts that can be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexShape {
    /// Its table, as `regclass` prints it.
    pub table: String,
    /// A unique index.
    pub unique: bool,
    /// Its access method (`btree`, `gin`, …).
    pub method: String,
    /// Its key columns or expressions, without operator classes or order.
    pub keys: Vec<String>,
    /// Its INCLUDE columns.
    pub include: Vec<String>,
    /// Its WHERE clause, for a partial index.
    pub predicate: Option<String>,
    /// Everything after the table in `pg_get_indexdef`: what must be equal.
    pub tail: String,
}

impl IndexShape {
    /// The statement that makes this index under `name`.
    pub fn definition(&self, name: &str) -> String {
        let unique = if self.unique { "UNIQUE " } else { "" };
        format!(
            "CREATE {unique}INDEX {name} ON {} {}",
            self.table, self.tail
        )
    }
}

/// A relation of the name a `CREATE INDEX` asks for is there and is not
/// that index: `IF NOT EXISTS` would skip the build and keel would take it
/// for the one asked for.
#[derive(Debug, Clone)]
pub enum IndexMismatch {
    /// The name is taken by a table, view, sequence…: its `relkind` in words.
    NotAnIndex(String),
    /// keel could not build the asked-for index on an empty copy of the
    /// table to compare the two: the server's error.
    Unchecked(String),
    /// An index with another definition.
    Differs {
        /// The index that is there.
        existing: Box<IndexShape>,
        /// The index the statement builds (made on an empty copy of the
        /// table and thrown away).
        asked: Box<IndexShape>,
    },
}

impl IndexMismatch {
    /// What differs, one phrase per part, worded "it … , the statement's …".
    pub fn differences(&self) -> Vec<String> {
        let (e, a) = match self {
            IndexMismatch::NotAnIndex(kind) => {
                return vec![format!("it is a {kind}, not an index")];
            }
            IndexMismatch::Unchecked(error) => {
                return vec![format!(
                    "keel could not build the statement's index on an empty copy of the table to compare the two: {error}"
                )];
            }
            IndexMismatch::Differs { existing, asked } => (existing, asked),
        };
        let list = |v: &[String]| format!("({})", v.join(", "));
        let mut out = Vec::new();
        if e.table != a.table {
            out.push(format!(
                "it is on table {}, the statement's on {}",
                e.table, a.table
            ));
        }
        if e.unique != a.unique {
            out.push(match e.unique {
                true => "it is UNIQUE, the statement's is not".to_string(),
                false => "it is not UNIQUE, the statement's is".to_string(),
            });
        }
        if e.method != a.method {
            out.push(format!(
                "it uses {}, the statement's {}",
                e.method, a.method
            ));
        }
        if e.keys != a.keys {
            out.push(format!(
                "its columns are {}, the statement's {}",
                list(&e.keys),
                list(&a.keys)
            ));
        }
        if e.include != a.include {
            out.push(format!(
                "it INCLUDEs {}, the statement's {}",
                list(&e.include),
                list(&a.include)
            ));
        }
        if e.predicate != a.predicate {
            let show = |p: &Option<String>| match p {
                Some(p) => format!("WHERE {p}"),
                None => "no WHERE clause".to_string(),
            };
            out.push(format!(
                "it has {}, the statement's {}",
                show(&e.predicate),
                show(&a.predicate)
            ));
        }
        if out.is_empty() {
            out.push(
                "its operator classes, sort order, collations or storage parameters differ".into(),
            );
        }
        out
    }
}

/// What the catalog says about the schema. Tables are named in
/// [`Relation`]'s text form.
#[async_trait]
pub trait Catalog: Session {
    /// User tables (no system or keel tables), by name.
    async fn tables(&mut self) -> Result<Vec<String>, DbError>;
    /// The user tables `scope` covers, by name.
    async fn tables_in(&mut self, scope: &Scope) -> Result<Vec<String>, DbError> {
        let mut tables = self.tables().await?;
        tables.retain(|t| scope.covers(&Relation::parse(t).name));
        Ok(tables)
    }
    /// The columns of `table`, in their order.
    async fn columns(&mut self, table: &str) -> Result<Vec<ColumnInfo>, DbError>;
    /// The column names of each of `tables`, each in column order (none
    /// for a table that does not exist). A dialect may ask once for all.
    async fn column_names(&mut self, tables: &[String]) -> Result<Vec<Vec<String>>, DbError> {
        let mut out = Vec::with_capacity(tables.len());
        for t in tables {
            out.push(self.columns(t).await?.into_iter().map(|c| c.name).collect());
        }
        Ok(out)
    }
    /// The indexes of `table`, by name.
    async fn indexes(&mut self, table: &str) -> Result<Vec<IndexInfo>, DbError>;
    /// The constraints of `table`, by name.
    async fn constraints(&mut self, table: &str) -> Result<Vec<ConstraintInfo>, DbError>;
    /// The primary key's columns of `table`, in key order; empty when it
    /// has none (or does not exist).
    async fn primary_key(&mut self, table: &str) -> Result<Vec<String>, DbError>;
    /// Columns that identify each row of `table` for good: the primary key,
    /// else the narrowest unique index whose columns are all NOT NULL (no
    /// expression, no predicate, not deferrable), in index order. Empty when
    /// nothing proves two rows apart: a backup then holds the whole table.
    async fn row_key(&mut self, table: &str) -> Result<Vec<String>, DbError>;
    /// Columns of `table` whose values the database computes and that
    /// cannot be written (`GENERATED ALWAYS AS (…) STORED`, SQLite's
    /// generated columns): left out of backups and restores.
    async fn generated_columns(&mut self, table: &Relation) -> Result<Vec<String>, DbError>;
    /// The table `table` names when `search_path` (else the session's) is in
    /// effect, schema-qualified; `None` when there is none.
    async fn resolve_table(
        &mut self,
        table: &Relation,
        search_path: Option<&SearchPath>,
    ) -> Result<Option<Relation>, DbError>;

    /// Whether the index `name` (optionally `schema.name`) is valid: `None`
    /// when there is no such index. SQLite builds indexes in one step, so
    /// an existing one is always valid.
    async fn index_valid(&mut self, name: &str) -> Result<Option<bool>, DbError>;
    /// Names of indexes that a failed `CREATE INDEX CONCURRENTLY` left
    /// INVALID, quoted and schema-qualified. SQLite has none.
    async fn invalid_indexes(&mut self) -> Result<Vec<String>, DbError> {
        Ok(Vec::new())
    }
    /// How the relation named like the index `asked` differs from the index
    /// it asks for; `None` when there is no such relation or it is that
    /// index (or, on SQLite, always: keel checks concurrent builds only).
    async fn index_mismatch(
        &mut self,
        _asked: &IndexRequest,
    ) -> Result<Option<IndexMismatch>, DbError> {
        Ok(None)
    }
    /// Drops an index [`invalid_indexes`](Catalog::invalid_indexes) named.
    async fn drop_index(&mut self, qualified_name: &str) -> Result<(), DbError>;
    /// Every schema object of the user's (not the system's, not keel's own
    /// tables, not what an extension brought) as one line each: what
    /// `keel inspect --schema` prints and what a round trip compares.
    /// Column order is not part of it (see [`Fingerprint`]). Only the
    /// relations in `scope` (with every view, and every object that is not
    /// a relation: schemas, types, functions, extensions).
    async fn fingerprint(&mut self, scope: &Scope) -> Result<Fingerprint, DbError>;
    /// What the relations `scope` names can change beyond themselves (see
    /// [`Widened`]); `All` stays `All`.
    async fn widen(&mut self, scope: &Scope) -> Result<Widened, DbError>;
}
