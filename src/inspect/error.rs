use crate::db::DbError;

/// Why `keel inspect` could not answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InspectError {
    #[error(
        "no table `{name}` in this database; {}",
        known("tables", tables, "run `keel up` to create the schema")
    )]
    UnknownTable { name: String, tables: Vec<String> },
    #[error(
        "table {table} has no column `{column}`; {}",
        known("columns", columns, "the table has no columns")
    )]
    UnknownColumn {
        table: String,
        column: String,
        columns: Vec<String>,
    },
    #[error("{}", crate::db::WithLockFix(.0))]
    Db(#[from] DbError),
}

fn known(what: &str, names: &[String], if_none: &str) -> String {
    if names.is_empty() {
        format!("there are no {what} yet\n  fix: {if_none}")
    } else {
        format!("{what}: {}", names.join(", "))
    }
}

impl InspectError {
    /// True when the request named something that does not exist (exit 2).
    pub(crate) fn is_usage(&self) -> bool {
        match self {
            InspectError::Db(e) => e.kind == crate::db::DbErrorKind::Usage,
            _ => true,
        }
    }
}
