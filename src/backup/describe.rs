//! What backup each destructive statement of a pending migration gets,
//! said before anything runs (`validate`, `up --dry-run`): by key, its own
//! rows, the whole table, or none and why. Resolved against the live schema
//! the way the run's backup will be ([`super::plan_for`]'s steps, per
//! statement).

use super::{Kind, TableBackup, declined, plan::table_backup};
use crate::analysis::analyze::{Analyzer, Facts};
use crate::analysis::reversibility::BackupItem;
use crate::db::{Database, DbError};
use crate::migration::Migration;
use serde::Serialize;

/// One destructive statement and the backup it gets, in words.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StatementBackup {
    /// 1-based line of the statement in up.sql.
    pub(crate) line: usize,
    /// `DROP COLUMN on t`, `DELETE from t`…
    pub(crate) statement: String,
    /// `by-key`, `rows`, `whole-table`, `replace` or `none`.
    pub(crate) backup: &'static str,
    /// What is exported and how down puts it back, or why nothing is.
    pub(crate) detail: String,
}

/// The backups of `migrations` (pending, in run order), each analysed as
/// the run analyses it. A table an earlier pending migration creates does
/// not exist yet and is said so.
pub(crate) async fn describe(
    db: &mut dyn Database,
    migrations: &[&Migration],
) -> Result<Vec<(String, Vec<StatementBackup>)>, DbError> {
    let mut analyzer = Analyzer::new(Facts::read(db, &crate::db::Scope::All).await?, true);
    let mut out = Vec::new();
    for m in migrations {
        let analysis = analyzer.analyze(m);
        let mut lines = Vec::new();
        for item in &analysis.backups {
            lines.push(statement(db, m, item).await?);
        }
        for op in analysis.up.ops.iter().filter(|o| o.kind == "MERGE") {
            lines.push(StatementBackup {
                line: op.line,
                statement: format!(
                    "MERGE into {}",
                    op.actions
                        .iter()
                        .find_map(|a| a.table.clone())
                        .unwrap_or_default()
                ),
                backup: "none",
                detail: "keel does not back up what a MERGE changes (it may update, delete and insert any row): down cannot put those rows back; take a backup by hand first (`keel backup create`), or write it as UPDATE, DELETE and INSERT statements, which keel backs up".into(),
            });
        }
        lines.sort_by_key(|l| l.line);
        if !lines.is_empty() {
            out.push((m.id(), lines));
        }
    }
    Ok(out)
}

async fn statement(
    db: &mut dyn Database,
    m: &Migration,
    item: &BackupItem,
) -> Result<StatementBackup, DbError> {
    let mut s = StatementBackup {
        line: item.line,
        statement: format!("{} on {}", item.reason, item.table),
        backup: "none",
        detail: String::new(),
    };
    if let Some(why) = declined(m) {
        s.detail = why;
        return Ok(s);
    }
    let part = table_backup(db, item).await.map_err(|e| match e {
        super::BackupError::Db { source, .. } => *source,
        other => DbError::usage(other.to_string()),
    })?;
    let Some(t) = part else {
        s.detail = format!(
            "{} holds no data yet (it does not exist before the run, or the columns are new or generated): nothing to back up",
            item.table
        );
        return Ok(s);
    };
    (s.backup, s.detail) = words(&t, item);
    Ok(s)
}

/// The kind of backup and what it holds, for people.
fn words(t: &TableBackup, item: &BackupItem) -> (&'static str, String) {
    let table = t.table.shown();
    let key = t.key.join(", ");
    let which = || match (&t.rows, &item.rows) {
        (Some(r), _) => format!("the rows of {table} where {}", r.shown),
        (None, Some(why)) if item.filter.is_none() => format!(
            "every row of {table} ({})",
            why.trim_start_matches("its WHERE clause holds (")
                .trim_end_matches(')')
        ),
        (None, Some(_)) => format!(
            "every row of {table} (its WHERE clause cannot be evaluated before the migration runs: it names something the migration makes first)"
        ),
        (None, None) => format!("every row of {table}"),
    };
    match t.kind {
        Kind::Table => (
            "whole-table",
            format!(
                "every row and column of {table}; down inserts them into the table its down.sql recreates"
            ),
        ),
        Kind::Columns => (
            "by-key",
            format!(
                "{key} and {} of {}; down sets those values back by key",
                t.columns.clone().unwrap_or_default().join(", "),
                which()
            ),
        ),
        Kind::Rows if t.key.is_empty() => (
            "rows",
            format!(
                "{}, every column ({table} has no key); down inserts them again",
                which()
            ),
        ),
        Kind::Rows => (
            "by-key",
            format!(
                "{}, every column, keyed by {key}; down inserts those whose key is gone",
                which()
            ),
        ),
        Kind::Replace => (
            "whole-table",
            format!(
                "every row and column of {table}: {}, so nothing tells its rows apart; down replaces the table's rows with the backup's, and refuses if a row was added or changed since (compared on the columns the migration leaves as they are)",
                if t.key.is_empty() {
                    format!("{table} has no primary key and no unique index on NOT NULL columns")
                } else {
                    format!("the statement destroys its key ({key})")
                }
            ),
        ),
    }
}
