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
        tables: vec![TableBackup {
            table: resolved,
            key,
            kind,
            columns,
            rows: None,
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
/// migration (it names a column the migration adds first) widens to every
/// row.
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
    for t in &mut tables {
        if t.kind == Kind::Columns && t.key.is_empty() {
            let cols = t.columns.clone().unwrap_or_default();
            return Err(BackupError::Plan(format!(
                "{} destroys {} of table {}, which has no primary key, so keel could not put the values back row by row\n  fix: give {} a primary key in an earlier migration",
                migration.id(),
                cols.join(", "),
                t.table.shown(),
                t.table.shown()
            )));
        }
        if t.kind == Kind::Rows && t.key.is_empty() && t.rows.is_none() {
            return Err(BackupError::Plan(format!(
                "{} deletes rows of table {}, which has no primary key, and its WHERE clause cannot be evaluated before the migration runs, so keel could not tell the deleted rows from the rest\n  fix: give {} a primary key in an earlier migration",
                migration.id(),
                t.table.shown(),
                t.table.shown()
            )));
        }
    }
    // Whole tables and deleted rows go back before column values that may
    // belong to them.
    tables.sort_by_key(|t| t.kind);
    Ok((!tables.is_empty()).then(|| BackupPlan {
        migration: migration.id(),
        checksum: migration.checksum.clone(),
        target: target.clone(),
        tables,
    }))
}

/// One item against the live schema; `None` when it holds no data yet.
async fn table_backup(
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
    let key = db.primary_key(&name).await.map_err(&dbe)?;
    let kind = match (&item.columns, &item.rows) {
        (Some(_), _) => Kind::Columns,
        (None, Some(_)) => Kind::Rows,
        (None, None) => Kind::Table,
    };
    let mut columns = item.columns.as_ref().map(|cols| {
        cols.iter()
            .filter(|c| existing.contains(c) && !key.contains(c))
            .cloned()
            .collect::<Vec<_>>()
    });
    if let Some(cols) = &columns
        && cols.is_empty()
    {
        let destroys_key = item
            .columns
            .as_ref()
            .is_some_and(|c| c.iter().any(|c| key.contains(c)));
        if !destroys_key {
            // New or generated columns: nothing the database cannot make again.
            return Ok(None);
        }
        // The key itself is destroyed: only the whole table says which row
        // it belonged to.
        columns = None;
    }
    let kind = if kind == Kind::Columns && columns.is_none() {
        Kind::Table
    } else {
        kind
    };
    let rows = match (&item.filter, kind) {
        (Some(f), Kind::Columns | Kind::Rows) => {
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
            evaluable(db, &table, &probe, &selection)
                .await
                .then_some(selection)
        }
        _ => None,
    };
    Ok(Some(TableBackup {
        table,
        key,
        columns,
        kind,
        rows,
    }))
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
    };
    let mut sink = |_: &[u8]| Ok(());
    db.export_csv(&query, &mut sink).await.is_ok()
}

/// Adds `t` to the plan: one part per table and kind, a whole table
/// absorbing everything else of that table.
fn merge(tables: &mut Vec<TableBackup>, t: TableBackup) {
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
