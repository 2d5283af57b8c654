//! The runbook's view of the analysis: statements with their locks, the
//! findings with allow reasons, the backups, and the checklist items a
//! statement calls for (code that must be deployed before a drop or rename).

use super::check_id::CheckId;
use super::{CheckItem, FindingInfo, StatementInfo};
use crate::analysis::analyze::MigrationAnalysis;
use crate::analysis::{ActionKind, Tri};

pub(crate) fn statements(a: &MigrationAnalysis) -> Vec<StatementInfo> {
    a.up.ops
        .iter()
        .enumerate()
        .map(|(i, op)| StatementInfo {
            number: i + 1,
            line: op.line,
            sql: op.sql.clone(),
            lock: op.lock().map(|l| l.name().to_string()),
            rewrite: op.rewrite() != Tri::No,
            scan: op.scan() != Tri::No,
            tables: op.tables(),
        })
        .collect()
}

/// Findings about up.sql and migration.toml (down.sql's own findings are
/// for the rollback, listed with it by `keel lint`).
pub(crate) fn findings(a: &MigrationAnalysis) -> Vec<FindingInfo> {
    a.findings
        .iter()
        .filter(|f| !f.file.ends_with("down.sql"))
        .map(|f| FindingInfo {
            rule: f.rule.to_string(),
            severity: f.severity.to_string(),
            line: f.line,
            message: f.message.clone(),
            suggestion: f.suggestion.clone(),
            allowed_reason: f.allowed.clone(),
        })
        .collect()
}

pub(crate) fn backups(a: &MigrationAnalysis) -> Vec<String> {
    a.backups
        .iter()
        .map(|b| {
            let what = match &b.columns {
                Some(c) => format!("{} ({}) with its key", b.table, c.join(", ")),
                None => format!("{} (every column)", b.table),
            };
            let rows = b
                .rows
                .as_ref()
                .map(|r| format!(", rows where {r}"))
                .unwrap_or_default();
            format!("{what}{rows}: line {}, {}", b.line, b.reason)
        })
        .collect()
}

/// Checklist items the statements call for: running application code
/// breaks when a table or column it uses is dropped or renamed under it.
pub(crate) fn deploy_items(a: &MigrationAnalysis) -> Vec<CheckItem> {
    let mut items: Vec<CheckItem> = Vec::new();
    for action in
        a.up.ops
            .iter()
            .flat_map(|op| &op.actions)
            .filter(|a| a.on_existing_table())
    {
        let target = action.target();
        let slug: String = target
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let (id, text) = match &action.kind {
            ActionKind::DropColumn => (
                format!("code-stops-using-{slug}"),
                format!(
                    "Deployed code no longer reads or writes `{target}` (every running version)"
                ),
            ),
            ActionKind::DropTable { .. } => (
                format!("code-stops-using-{slug}"),
                format!("Deployed code no longer uses table `{target}` (every running version)"),
            ),
            ActionKind::RenameColumn { to } => (
                format!("code-handles-rename-{slug}"),
                format!(
                    "Deployed code works with both `{target}` and its new name `{to}` until this runs everywhere"
                ),
            ),
            ActionKind::RenameTable { to } => (
                format!("code-handles-rename-{slug}"),
                format!("Deployed code works with both table `{target}` and its new name `{to}`"),
            ),
            _ => continue,
        };
        let id = CheckId::Other(id);
        if !items.iter().any(|i| i.id == id) {
            items.push(CheckItem::new(id, text));
        }
    }
    items
}
