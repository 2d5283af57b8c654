//! `keel seed --generate`: rows generated from the catalog into every empty
//! table of any schema, for projects without fixtures (what `keel test`
//! puts in the tables before each migration).

use crate::db::{Database, Filled};

/// Rows per table when none are asked for.
pub(crate) const DEFAULT_ROWS: u32 = 10;

/// Fills every empty user table with `rows` rows, parents first; says per
/// table what went in, and why nothing did where nothing could.
pub(crate) async fn generate(
    db: &mut dyn Database,
    rows: u32,
) -> Result<Vec<Filled>, super::SeedError> {
    db.fill_empty_tables(rows, &crate::db::Scope::All)
        .await
        .map_err(super::SeedError::Db)
}

/// One line per table: `<table>  <n> rows`, then its note indented.
pub(crate) fn to_text(filled: &[Filled]) -> String {
    let width = filled.iter().map(|f| f.table.len()).max().unwrap_or(0);
    let mut text = String::new();
    for f in filled {
        let rows = if f.inserted == 1 { "row" } else { "rows" };
        text.push_str(&format!("{:<width$}  {:>6} {rows}\n", f.table, f.inserted));
        if let Some(note) = &f.note {
            text.push_str(&format!("  {note}\n"));
        }
    }
    if filled.is_empty() {
        text.push_str("no empty table to fill\n");
    }
    text
}
