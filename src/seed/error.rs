use crate::db::DbError;

/// Why `keel seed` stopped. Nothing was loaded in any of these cases: the
/// checks run first and the load is one transaction.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SeedError {
    #[error(
        "the sample {} {} {} not exist in this database; keel seed fills the sample application's tables\n  fix: run `keel up` first to create them, then `keel seed`",
        if .0.len() == 1 { "table" } else { "tables" },
        .0.join(", "),
        if .0.len() == 1 { "does" } else { "do" }
    )]
    MissingTables(Vec<String>),
    #[error(
        "table {table} has no column {} that keel seed fills; the sample schema changed\n  fix: run `keel up` so the sample migrations are all applied, or seed a database with the sample schema",
        columns.join(", ")
    )]
    MissingColumns { table: String, columns: Vec<String> },
    #[error(
        "cannot add {child}: table {parent} is empty and no new {parent} were asked for, so there is nothing for them to reference\n  fix: seed some {parent} too (--{parent} N)"
    )]
    NothingToReference {
        parent: &'static str,
        child: &'static str,
    },
    #[error("table {table} has no room for {count} more ids after its current maximum")]
    IdsExhausted { table: &'static str, count: u64 },
    #[error("{0}")]
    Db(DbError),
}

impl SeedError {
    /// True when the request itself was wrong (exit 2), not the database.
    pub(crate) fn is_usage(&self) -> bool {
        match self {
            SeedError::Db(e) => e.kind == crate::db::DbErrorKind::Usage,
            _ => true,
        }
    }
}
