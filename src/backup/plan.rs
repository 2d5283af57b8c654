//! From the analysis' list of destroyed data to a [`BackupPlan`], resolved
//! against the live database the way the server will resolve the
//! migration's statements.

use super::{BackupError, BackupPlan, Kind, RowSelection, TableBackup};
use crate::analysis::reversibility::BackupItem;
use crate::db::{Database, DbError, ExportQuery, Relation};
use crate::migration::Migration;

/// The database and environment a backup is taken from and bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// `--env NAME`, or `default`.
    pub(crate) environment: String,
    /// The URL with any password redacted.
    pub(crate) database: String,
    /// [`Database::database_id`]: keel's id of the database.
    pub(crate) database_id: String,
    /// [`Database::server_identity`]: the cluster and database on
    /// PostgreSQL, which a restored copy does not share.
    pub(crate) server: Option<String>,
}

impl Target {
    /// The target `db` is, giving it an id first if keel never wrote to it.
    pub(crate) async fn of(db: &mut dyn Database, environment: &str) -> Result<Target, DbError> {
        let id = match db.database_id().await? {
            Some(id) => id,
            None => {
                db.ensure_tracking().await?;
                db.database_id().await?.unwrap_or_default()
            }
        };
        Ok(Target {
            environment: environment.to_string(),
            database: db.display_url().to_string(),
            database_id: id,
            server: db.server_identity().await?,
        })
    }

    /// [`Target::of`], its failure said as a backup's.
    pub(crate) async fn for_backup(
        db: &mut dyn Database,
        environment: &str,
    ) -> Result<Target, BackupError> {
        Target::of(db, environment)
            .await
            .map_err(|source| BackupError::Db {
                context: "reading the database's id".into(),
                source: Box::new(source),
            })
    }
}

fn dbe(table: &str) -> impl Fn(DbError) -> BackupError + '_ {
    move |source| BackupError::Db {
        context: format!("planning the backup of {table}"),
        source: Box::new(source),
    }
}

/// A backup of one table by hand (`keel backup create --table`): `columns`
/// and the `key` that identifies a row, or the whole table without
/// `columns`. `None` when the server has no such table.
pub(crate) async fn plan_for_table(
    db: &mut dyn Database,
    migration: &Migration,
    table: &str,
    key: Vec<String>,
    columns: Option<Vec<String>>,
    target: Target,
) -> Result<Option<BackupPlan>, DbError> {
    let named = Relation::parse(table);
    let Some(resolved) = db.resolve_table(&named, None).await? else {
        return Ok(None);
    };
    let kind = if columns.is_some() {
        Kind::Columns
    } else {
        Kind::Table
    };
    Ok(Some(BackupPlan {
        migration: migration.id(),
        checksum: migration.checksum.clone(),
        target,
        within: false,
        tables: vec![TableBackup {
            table: resolved,
            key,
            kind,
            columns,
            rows: None,
            destroyed: Vec::new(),
        }],
    }))
}

/// What to export before `migration` runs, from the analysis' backup
/// items. Each item's table is resolved as the server will resolve it at
/// that statement (the search path the migration set included); a table
/// that does not exist yet (made earlier in the same migration) holds no
/// data and is left out. Per table: a whole-table item wins; the rows of
/// DELETEs and the columns of DROP COLUMN / UPDATE / type changes are
/// gathered into one part each. Generated columns are left out: the
/// database computes them again. An UPDATE's or DELETE's own WHERE clause
/// selects exactly its rows; one that cannot be evaluated before the
/// migration (it names a column the migration adds first, or calls a
/// volatile function) widens to every row. A table with no key to tell its
/// rows apart is backed up whole when its rows change in place
/// ([`Kind::Replace`]).
///
/// `None` when nothing existing is destroyed.
pub(crate) async fn plan_for(
    db: &mut dyn Database,
    migration: &Migration,
    items: &[BackupItem],
    target: &Target,
) -> Result<Option<BackupPlan>, BackupError> {
    let mut tables: Vec<TableBackup> = Vec::new();
    for item in items {
        let Some(t) = table_backup(db, item).await? else {
            continue;
        };
        merge(&mut tables, t);
    }
    // Whole tables and deleted rows go back before column values that may
    // belong to them.
    tables.sort_by_key(|t| t.kind);
    Ok((!tables.is_empty()).then(|| BackupPlan {
        migration: migration.id(),
        checksum: migration.checksum.clone(),
        target: target.clone(),
        within: false,
        tables,
    }))
}

/// One item against the live schema; `None` when it holds no data yet.
pub(super) async fn table_backup(
    db: &mut dyn Database,
    item: &BackupItem,
) -> Result<Option<TableBackup>, BackupError> {
    let dbe = dbe(&item.table);
    let Some(table) = db
        .resolve_table(&item.relation, item.search_path.as_ref())
        .await
        .map_err(&dbe)?
    else {
        return Ok(None);
    };
    let name = table.to_string();
    let generated = db.generated_columns(&table).await.map_err(&dbe)?;
    let existing: Vec<String> = db
        .columns(&name)
        .await
        .map_err(&dbe)?
        .into_iter()
        .map(|c| c.name)
        .filter(|c| !generated.contains(c))
        .collect();
    let key = db.row_key(&name).await.map_err(&dbe)?;
    let part = |kind, columns, rows, destroyed| TableBackup {
        table: table.clone(),
        key: key.clone(),
        kind,
        columns,
        rows,
        destroyed,
    };
    match (&item.columns, &item.rows) {
        (Some(cols), _) => {
            let destroyed: Vec<String> = cols
                .iter()
                .filter(|c| existing.contains(c))
                .cloned()
                .collect();
            if destroyed.is_empty() {
                // New or generated columns: nothing the database cannot make again.
                return Ok(None);
            }
            if key.is_empty() || destroyed.iter().any(|c| key.contains(c)) {
                // Nothing (left) tells the rows apart: only the whole table
                // says which values belonged together.
                return Ok(Some(part(Kind::Replace, None, None, destroyed)));
            }
            let rows = selection(db, &table, &existing, item).await;
            Ok(Some(part(Kind::Columns, Some(destroyed), rows, Vec::new())))
        }
        (None, Some(_)) => {
            let rows = selection(db, &table, &existing, item).await;
            if rows.is_none() && key.is_empty() {
                // Every row, and no key to tell the deleted ones from the
                // rest: restore puts the table back whole.
                return Ok(Some(part(Kind::Replace, None, None, Vec::new())));
            }
            Ok(Some(part(Kind::Rows, None, rows, Vec::new())))
        }
        (None, None) => Ok(Some(part(Kind::Table, None, None, Vec::new()))),
    }
}

/// The statement's own rows, when its condition can be evaluated before
/// the migration runs; `None`: every row.
async fn selection(
    db: &mut dyn Database,
    table: &Relation,
    existing: &[String],
    item: &BackupItem,
) -> Option<RowSelection> {
    let f = item.filter.as_ref()?;
    let condition = match &f.from {
        Some(from) => format!("EXISTS (SELECT 1 FROM {from} WHERE {})", f.predicate),
        None => format!("({})", f.predicate),
    };
    let selection = RowSelection {
        alias: f.alias.clone(),
        condition,
        shown: f.predicate.clone(),
        search_path: item.search_path.clone(),
    };
    let probe = existing.first().cloned().unwrap_or_default();
    evaluable(db, table, &probe, &selection)
        .await
        .then_some(selection)
}

/// Whether a statement's condition can be evaluated before the migration
/// runs (it may name a column or table that an earlier statement of the
/// migration creates).
async fn evaluable(
    db: &mut dyn Database,
    table: &Relation,
    column: &str,
    rows: &RowSelection,
) -> bool {
    let query = ExportQuery {
        table: table.clone(),
        alias: rows.alias.clone(),
        columns: vec![column.to_string()],
        filter: Some(format!("({}) AND false", rows.condition)),
        search_path: rows.search_path.clone(),
        within: false,
    };
    let mut sink = |_: &[u8]| Ok(());
    db.export_csv(&query, &mut sink).await.is_ok()
}

/// Adds `t` to the plan: one part per table and kind. A whole table
/// absorbs everything else of that table; a whole-table replacement absorbs
/// the table's row and column parts, its compared columns shrinking by the
/// columns they overwrite.
fn merge(tables: &mut Vec<TableBackup>, t: TableBackup) {
    let whole = |k: Kind| matches!(k, Kind::Table | Kind::Replace);
    if tables
        .iter()
        .any(|have| have.table == t.table && have.kind == Kind::Table)
    {
        return;
    }
    if t.kind == Kind::Table {
        tables.retain(|have| have.table != t.table);
        tables.push(t);
        return;
    }
    if let Some(have) = tables
        .iter_mut()
        .find(|have| have.table == t.table && have.kind == Kind::Replace)
    {
        let more = t.destroyed.iter().chain(t.columns.iter().flatten());
        for c in more {
            if !have.destroyed.contains(c) {
                have.destroyed.push(c.clone());
            }
        }
        return;
    }
    if t.kind == Kind::Replace {
        let mut t = t;
        for have in tables
            .iter()
            .filter(|h| h.table == t.table && !whole(h.kind))
        {
            for c in have.columns.iter().flatten() {
                if !t.destroyed.contains(c) {
                    t.destroyed.push(c.clone());
                }
            }
        }
        tables.retain(|have| have.table != t.table);
        tables.push(t);
        return;
    }
    let Some(have) = tables
        .iter_mut()
        .find(|have| have.table == t.table && have.kind == t.kind)
    else {
        tables.push(t);
        return;
    };
    if let (Some(cols), Some(more)) = (&mut have.columns, &t.columns) {
        for c in more {
            if !cols.contains(c) {
                cols.push(c.clone());
            }
        }
    }
    have.rows = match (have.rows.take(), t.rows) {
        (Some(a), Some(b)) if a.alias == b.alias && a.search_path == b.search_path => {
            Some(RowSelection {
                condition: format!("({}) OR ({})", a.condition, b.condition),
                shown: format!("({}) OR ({})", a.shown, b.shown),
                ..a
            })
        }
        // Conditions that do not combine: every row.
        _ => None,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(kind: Kind, columns: Option<&[&str]>, destroyed: &[&str]) -> TableBackup {
        TableBackup {
            table: Relation::new(Some("public"), "t"),
            key: Vec::new(),
            columns: columns.map(|c| c.iter().map(|c| c.to_string()).collect()),
            kind,
            rows: None,
            destroyed: destroyed.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn a_whole_table_replacement_absorbs_the_tables_other_parts() {
        let mut tables = Vec::new();
        merge(&mut tables, part(Kind::Columns, Some(&["a"]), &[]));
        merge(&mut tables, part(Kind::Replace, None, &["b"]));
        merge(&mut tables, part(Kind::Rows, None, &[]));
        merge(&mut tables, part(Kind::Replace, None, &["c"]));
        assert_eq!(tables.len(), 1);
        assert_eq!(tables[0].kind, Kind::Replace);
        assert_eq!(tables[0].destroyed, ["b", "a", "c"]);
        // A dropped table is backed up whole before anything else touched it.
        merge(&mut tables, part(Kind::Table, None, &[]));
        assert_eq!(tables.len(), 1);
        assert_eq!(tables[0].kind, Kind::Table);
    }
}
