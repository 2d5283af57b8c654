//! `keel inspect --digest`: what each table holds as a row count and a
//! digest that ignores row and column order, to compare a database's data
//! before and after a change.

use super::InspectError;
use crate::db::{Database, Relation, TableDigest};
use serde::Serialize;

/// One table's content.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Content {
    pub(crate) table: String,
    #[serde(flatten)]
    pub(crate) digest: TableDigest,
}

/// The digest of every user table, or of `target` alone; columns are
/// compared by name, whatever their order in the table.
pub(crate) async fn digests(
    db: &mut dyn Database,
    target: Option<&str>,
) -> Result<Vec<Content>, InspectError> {
    let tables = db.tables().await?;
    let chosen: Vec<String> = match target {
        None => tables.clone(),
        Some(t) if tables.iter().any(|x| x == t) => vec![t.to_string()],
        Some(t) => {
            return Err(InspectError::UnknownTable {
                name: t.to_string(),
                tables,
            });
        }
    };
    let mut out = Vec::with_capacity(chosen.len());
    for table in chosen {
        let mut columns: Vec<String> = db
            .columns(&table)
            .await?
            .into_iter()
            .map(|c| c.name)
            .collect();
        columns.sort();
        let digest = db.table_digest(&Relation::parse(&table), &columns).await?;
        out.push(Content { table, digest });
    }
    Ok(out)
}

/// One line per table: `<table> <rows> rows <digest>`.
pub(crate) fn to_text(contents: &[Content]) -> String {
    contents
        .iter()
        .map(|c| format!("{} {} rows {}\n", c.table, c.digest.rows, c.digest.digest))
        .collect()
}
