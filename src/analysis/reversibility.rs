//! Reversibility derived from the operations, and the backup plan: what a
//! backup must capture before the up runs so that the down (and keel's
//! automatic rollback) can put the data back.

use super::operation::{ActionKind, Operation, RowFilter};
use super::search_path::SearchPath;
use super::volatile::volatile_call;
use crate::db::Relation;
use crate::migration::Reversibility;
use serde::Serialize;

/// Data one statement destroys, as a backup must capture it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct BackupItem {
    pub(crate) table: String,
    /// The table as the statement names it, resolved against `search_path`
    /// when the backup is taken.
    #[serde(skip)]
    pub(crate) relation: Relation,
    /// The search path an earlier statement of the migration set; `None`:
    /// the session's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) search_path: Option<SearchPath>,
    /// The columns to export besides the key; `None` means every column.
    pub(crate) columns: Option<Vec<String>>,
    /// Rows only where this holds (DELETE … WHERE); `None` for all rows.
    pub(crate) rows: Option<String>,
    /// The statement's own row selection, to export exactly those rows.
    #[serde(skip)]
    pub(crate) filter: Option<RowFilter>,
    /// 1-based line of the statement in up.sql.
    pub(crate) line: usize,
    /// Why: `DROP COLUMN`, `TRUNCATE`, …
    pub(crate) reason: String,
}

/// full: the down restores schema and data; partial: the schema comes
/// back but destroyed data only from a backup (or an enum value stays);
/// irreversible: there is no down.
pub(crate) fn derive(up: &[Operation], has_down: bool) -> Reversibility {
    if !has_down {
        return Reversibility::Irreversible;
    }
    let partial = up
        .iter()
        .flat_map(|o| &o.actions)
        .any(|a| a.destroys || matches!(a.kind, ActionKind::EnumAddValue { .. }));
    if partial {
        Reversibility::Partial
    } else {
        Reversibility::Full
    }
}

/// What the backup must hold, one item per destroying action, in order.
pub(crate) fn backup_plan(up: &[Operation]) -> Vec<BackupItem> {
    let mut out = Vec::new();
    for op in up {
        for a in op.actions.iter().filter(|a| a.destroys) {
            let Some(table) = a.table.clone() else {
                continue;
            };
            let column = || a.column.clone().map(|c| vec![c]);
            let (columns, rows, reason) = match &a.kind {
                ActionKind::DropTable { .. } => (None, None, "DROP TABLE"),
                ActionKind::Truncate { .. } => (None, None, "TRUNCATE"),
                ActionKind::DropColumn => (column(), None, "DROP COLUMN"),
                ActionKind::AlterColumnType { .. } => (column(), None, "lossy type change"),
                ActionKind::Update { columns, has_where } => (
                    Some(columns.clone()),
                    has_where.then(|| "the UPDATE's WHERE clause".to_string()),
                    "UPDATE overwrites",
                ),
                ActionKind::Delete { has_where } => (
                    None,
                    has_where.then(|| "the DELETE's WHERE clause".to_string()),
                    "DELETE",
                ),
                _ => (column(), None, "destroys data"),
            };
            let filter = a.rows.clone().filter(|_| rows.is_some());
            // A condition that selects other rows when the backup runs
            // than when the statement does cannot pick the rows out.
            let volatile = filter.as_ref().and_then(|f| {
                volatile_call(&f.predicate).or_else(|| f.from.as_deref().and_then(volatile_call))
            });
            let filter = filter.filter(|_| volatile.is_none());
            out.push(BackupItem {
                relation: a
                    .relation
                    .clone()
                    .unwrap_or_else(|| Relation::parse(&table)),
                table,
                search_path: op.search_path.clone(),
                columns,
                rows: match (&rows, &filter) {
                    (Some(_), Some(f)) => Some(f.predicate.clone()),
                    (Some(_), None) if volatile.is_some() => Some(format!(
                        "its WHERE clause holds (every row is exported: the clause calls {}, which gives another answer when the backup runs than when the statement does)",
                        volatile.as_deref().unwrap_or_default()
                    )),
                    (Some(_), None) => Some(
                        "its WHERE clause holds (the whole table is exported: the clause cannot be evaluated on its own)"
                            .into(),
                    ),
                    _ => None,
                },
                filter,
                line: a.line,
                reason: reason.to_string(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{Schema, classify};

    fn ops(sql: &str) -> Vec<Operation> {
        classify(sql, &mut Schema::default(), true).ops
    }

    #[test]
    fn derives_from_what_the_up_destroys() {
        assert_eq!(
            derive(&ops("CREATE TABLE t (id bigint);"), true),
            Reversibility::Full
        );
        assert_eq!(
            derive(&ops("ALTER TABLE t DROP COLUMN a;"), true),
            Reversibility::Partial
        );
        assert_eq!(
            derive(&ops("ALTER TYPE mood ADD VALUE 'x';"), true),
            Reversibility::Partial
        );
        assert_eq!(
            derive(&ops("CREATE TABLE t (id bigint);"), false),
            Reversibility::Irreversible
        );
        // Dropping what the same migration created destroys nothing.
        assert_eq!(
            derive(&ops("CREATE TABLE t (id bigint);\nDROP TABLE t;"), true),
            Reversibility::Full
        );
    }

    #[test]
    fn backup_plan_lists_tables_and_columns() {
        let plan = backup_plan(&ops(
            "ALTER TABLE users DROP COLUMN bio;\nDROP TABLE sessions;\nUPDATE users SET email = lower(email);\nALTER TABLE users ADD COLUMN x int;\nUPDATE users SET x = 1;",
        ));
        assert_eq!(plan.len(), 3);
        assert_eq!(plan[0].columns.as_deref(), Some(&["bio".to_string()][..]));
        assert_eq!(plan[1].columns, None);
        assert_eq!(plan[2].reason, "UPDATE overwrites");
    }
}
