//! The schema as the database's catalog describes it: tables, their columns,
//! keys, indexes and constraints, and which table a name means.

use super::{DbError, Relation, Session};
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

/// What the catalog says about the schema. Tables are named in
/// [`Relation`]'s text form.
#[async_trait]
pub trait Catalog: Session {
    /// User tables (no system or keel tables), by name.
    async fn tables(&mut self) -> Result<Vec<String>, DbError>;
    /// The columns of `table`, in their order.
    async fn columns(&mut self, table: &str) -> Result<Vec<ColumnInfo>, DbError>;
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
    /// Drops an index [`invalid_indexes`](Catalog::invalid_indexes) named.
    async fn drop_index(&mut self, qualified_name: &str) -> Result<(), DbError>;
}
