//! From the analysis' list of destroyed data to a [`BackupPlan`].

use super::{BackupError, BackupPlan, TableBackup};
use crate::analysis::reversibility::BackupItem;
use crate::db::Database;
use crate::migration::Migration;

/// What to export before `migration` runs, from the analysis' backup items:
/// one entry per table (a whole-table item wins over column items), keyed by
/// the table's primary key. Tables and columns that do not exist yet (made
/// earlier in the same migration) hold no data and are left out. Items with
/// a row filter (`DELETE … WHERE`) capture every row: a superset.
///
/// `None` when nothing existing is destroyed.
pub async fn plan_for(
    db: &mut dyn Database,
    migration: &Migration,
    items: &[BackupItem],
) -> Result<Option<BackupPlan>, BackupError> {
    let mut tables: Vec<TableBackup> = Vec::new();
    for item in items {
        let dbe = |source| BackupError::Db {
            context: format!("planning the backup of {}", item.table),
            source: Box::new(source),
        };
        let existing: Vec<String> = db
            .columns(&item.table)
            .await
            .map_err(dbe)?
            .into_iter()
            .map(|c| c.name)
            .collect();
        if existing.is_empty() {
            continue;
        }
        let columns = item.columns.as_ref().map(|cols| {
            cols.iter()
                .filter(|c| existing.contains(c))
                .cloned()
                .collect::<Vec<_>>()
        });
        if columns.as_ref().is_some_and(Vec::is_empty) {
            continue;
        }
        let key = db.primary_key(&item.table).await.map_err(dbe)?;
        match tables.iter_mut().find(|t| t.table == item.table) {
            Some(t) => match (&mut t.columns, columns) {
                (Some(have), Some(more)) => {
                    for c in more {
                        if !have.contains(&c) {
                            have.push(c);
                        }
                    }
                }
                (have, _) => *have = None,
            },
            None => tables.push(TableBackup {
                table: item.table.clone(),
                key,
                columns,
            }),
        }
    }
    for t in &mut tables {
        if let Some(cols) = &mut t.columns {
            if t.key.is_empty() {
                return Err(BackupError::Plan(format!(
                    "{} destroys {} of table {}, which has no primary key, so keel could not put the values back row by row\n  fix: give {} a primary key in an earlier migration",
                    migration.id(),
                    cols.join(", "),
                    t.table,
                    t.table
                )));
            }
            cols.retain(|c| !t.key.contains(c));
            if cols.is_empty() {
                // The key itself is destroyed: only the whole table says
                // which row it belonged to.
                t.columns = None;
            }
        }
    }
    Ok((!tables.is_empty()).then(|| BackupPlan {
        migration: migration.id(),
        checksum: migration.checksum.clone(),
        tables,
    }))
}
