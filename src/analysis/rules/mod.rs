//! The lint rules of lint-rules.md, one file each. A rule reads classified
//! operations ([`FileCx`]) and never looks at SQL text itself.

mod add_check;
mod add_column_required;
mod add_column_rewrite;
mod add_exclusion;
mod add_foreign_key;
mod add_unique;
mod backfill_in_migration;
mod change_column_type;
mod concurrently_in_transaction;
mod create_index_blocking;
mod detach_partition_blocking;
mod drop_column;
mod drop_dependency;
mod drop_index_blocking;
mod drop_not_null;
mod drop_table;
mod enum_value;
pub(crate) mod file_name;
mod invalid_allow;
pub(crate) mod missing_down;
mod prefer_bigint;
mod prefer_identity;
mod prefer_text;
mod prefer_timestamptz;
mod quote_identifier;
mod reindex_blocking;
mod rename_column;
mod rename_table;
pub(crate) mod reversibility_mismatch;
mod set_not_null;
pub(crate) mod syntax_error;
mod table_rewrite;
mod trigger_lock;
mod truncate;
mod validate_with_lock;

use super::classify::SyntaxProblem;
use super::finding::{Finding, Severity};
use super::operation::{Action, ActionKind, ColumnDef, Operation};
use super::schema::Created;
use super::version::PgVersion;

/// Which file of a migration is being read; down.sql has its own policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Up,
    Down,
    /// A plain .sql file given on the command line.
    Plain,
}

/// Everything a statement rule may read about one file.
pub(crate) struct FileCx<'a> {
    pub(crate) file: &'a str,
    pub(crate) kind: FileKind,
    pub(crate) ops: &'a [Operation],
    pub(crate) version: Option<PgVersion>,
    /// What the migration's up.sql created (read by the down policy).
    pub(crate) created: &'a Created,
    /// Where the file does not parse.
    pub(crate) syntax: &'a [SyntaxProblem],
    /// Another tool's layout, for a plain file: fixes then use that tool's
    /// means, not keel's migration.toml. `None`: a keel migration.
    pub(crate) layout: Option<super::layout::Layout>,
}

impl FileCx<'_> {
    pub(crate) fn actions(&self) -> impl Iterator<Item = (&Operation, &Action)> {
        self.ops
            .iter()
            .flat_map(|op| op.actions.iter().filter(|a| !a.no_op).map(move |a| (op, a)))
    }

    /// `fix`, or `rule`'s fix in the terms of the file's own tool (see
    /// [`super::layout::own_fix`]) when it is another tool's file.
    pub(crate) fn fix_for(&self, rule: &Rule, fix: &'static str) -> &'static str {
        self.layout
            .and_then(|l| super::layout::own_fix(l, rule.id))
            .unwrap_or(fix)
    }

    /// A finding at an action, with the rule's default severity.
    pub(crate) fn finding(
        &self,
        rule: &Rule,
        op: &Operation,
        action: &Action,
        message: String,
        suggestion: impl Into<String>,
    ) -> Finding {
        Finding {
            rule: rule.id,
            severity: rule.severity,
            file: self.file.to_string(),
            line: action.line,
            column: action.column_no,
            statement: op.sql.clone(),
            message,
            suggestion: match self.layout {
                Some(layout) => super::layout::in_own_terms(layout, suggestion.into()),
                None => suggestion.into(),
            },
            allowed: None,
        }
    }

    /// Columns defined by CREATE TABLE or ADD COLUMN, for the style rules.
    pub(crate) fn defined_columns(
        &self,
    ) -> impl Iterator<Item = (&Operation, &Action, &ColumnDef)> {
        self.actions().flat_map(|(op, a)| {
            let defs: Vec<&ColumnDef> = match &a.kind {
                ActionKind::CreateTable { columns, .. } => columns.iter().collect(),
                ActionKind::AddColumn(def) => vec![def],
                _ => Vec::new(),
            };
            defs.into_iter().map(move |d| (op, a, d))
        })
    }

    /// Moves a finding to the column definition it is about.
    pub(crate) fn at_column(&self, def: &ColumnDef, mut f: Finding) -> Finding {
        (f.line, f.column) = (def.line, def.column);
        f
    }

    pub(crate) fn is_down(&self) -> bool {
        self.kind == FileKind::Down
    }

    /// In a down file: the action changes back a column its up altered
    /// (type, NOT NULL, default), which is what a down is for.
    pub(crate) fn reverts_alter(&self, a: &Action) -> bool {
        self.is_down()
            && a.table
                .as_ref()
                .zip(a.column.as_ref())
                .is_some_and(|(t, c)| self.created.altered.contains(&(t.clone(), c.clone())))
    }
}

/// Hits of a style rule grouped by statement, in file order: the style
/// rules give one finding per statement, naming every column it concerns.
pub(crate) fn per_statement<'o, T>(
    hits: impl IntoIterator<Item = (&'o Operation, T)>,
) -> Vec<(&'o Operation, Vec<T>)> {
    let mut groups: Vec<(&Operation, Vec<T>)> = Vec::new();
    for (op, hit) in hits {
        match groups.iter_mut().find(|(o, _)| std::ptr::eq(*o, op)) {
            Some((_, v)) => v.push(hit),
            None => groups.push((op, vec![hit])),
        }
    }
    groups
}

/// `a, b, c`.
pub(crate) fn list(names: impl IntoIterator<Item = String>) -> String {
    names.into_iter().collect::<Vec<_>>().join(", ")
}

/// `t.a (varchar(10)), t.b (char(2))`: a style rule's columns with their types.
pub(crate) fn typed_columns<T: std::fmt::Display>(hits: &[(&Action, &ColumnDef, T)]) -> String {
    list(hits.iter().map(|(a, d, ty)| {
        format!(
            "{}.{} ({ty})",
            a.table.as_deref().unwrap_or_default(),
            d.name
        )
    }))
}

/// `a, b`: a style rule's column names.
pub(crate) fn column_names<T>(hits: &[(&Action, &ColumnDef, T)]) -> String {
    list(hits.iter().map(|(_, d, _)| d.name.clone()))
}

/// One rule: its id as users see and silence it, its default severity,
/// a one-line summary, and the check.
pub(crate) struct Rule {
    pub(crate) id: &'static str,
    pub(crate) severity: Severity,
    pub(crate) summary: &'static str,
    /// Statement rules; `None` for rules keel applies to files and folders.
    pub(crate) check: Option<fn(&FileCx, &mut Vec<Finding>)>,
}

/// Every rule, in the order of lint-rules.md.
pub(crate) const RULES: &[&Rule] = &[
    &drop_table::RULE,
    &drop_column::RULE,
    &rename_column::RULE,
    &rename_table::RULE,
    &change_column_type::RULE,
    &set_not_null::RULE,
    &add_column_required::RULE,
    &add_column_rewrite::RULE,
    &create_index_blocking::RULE,
    &drop_index_blocking::RULE,
    &concurrently_in_transaction::RULE,
    &add_foreign_key::RULE,
    &add_check::RULE,
    &validate_with_lock::RULE,
    &add_unique::RULE,
    &add_exclusion::RULE,
    &reindex_blocking::RULE,
    &detach_partition_blocking::RULE,
    &table_rewrite::RULE,
    &truncate::RULE,
    &enum_value::RULE,
    &backfill_in_migration::RULE,
    &drop_dependency::RULE,
    &drop_not_null::RULE,
    &trigger_lock::RULE,
    &prefer_bigint::RULE,
    &prefer_text::RULE,
    &prefer_timestamptz::RULE,
    &prefer_identity::RULE,
    &syntax_error::RULE,
    &missing_down::RULE,
    &file_name::RULE,
    &reversibility_mismatch::RULE,
    &quote_identifier::RULE,
    &invalid_allow::RULE,
];

pub(crate) fn find(id: &str) -> Option<&'static Rule> {
    RULES.iter().copied().find(|r| r.id == id)
}

/// Runs every statement rule on one file.
pub(crate) fn check_file(cx: &FileCx) -> Vec<Finding> {
    let mut out = Vec::new();
    for rule in RULES {
        if let Some(check) = rule.check {
            check(cx, &mut out);
        }
    }
    invalid_allow::apply(cx, &mut out);
    out
}

#[cfg(test)]
pub(crate) mod test {
    //! Helpers for the rule tests: lint SQL as a migration's up.sql or down.sql.
    use super::*;
    use crate::analysis::{Schema, classify};

    /// Lints `sql` as up.sql of a transactional migration on PostgreSQL 15.
    pub(crate) fn up(sql: &str) -> Vec<Finding> {
        lint(sql, None, true, Some("15"))
    }

    pub(crate) fn lint(
        sql: &str,
        down: Option<&str>,
        transaction: bool,
        version: Option<&str>,
    ) -> Vec<Finding> {
        let version = version.map(|v| v.parse().unwrap());
        let mut schema = Schema::new(version);
        let up = classify(sql, &mut schema, transaction);
        let created = Created::from_ops(&up.ops);
        let mut out: Vec<Finding> = match down {
            None => {
                let cx = FileCx {
                    file: "up.sql",
                    kind: FileKind::Up,
                    ops: &up.ops,
                    version,
                    created: &created,
                    syntax: &up.syntax,
                    layout: None,
                };
                check_file(&cx)
            }
            Some(down) => {
                let mut after = schema.after_up();
                let d = classify(down, &mut after, transaction);
                let cx = FileCx {
                    file: "down.sql",
                    kind: FileKind::Down,
                    ops: &d.ops,
                    version,
                    created: &created,
                    syntax: &d.syntax,
                    layout: None,
                };
                check_file(&cx)
            }
        };
        crate::analysis::finding::sort(&mut out);
        out.retain(Finding::is_active);
        out
    }

    /// Findings of one rule.
    pub(crate) fn only(rule: &str, findings: Vec<Finding>) -> Vec<Finding> {
        findings.into_iter().filter(|f| f.rule == rule).collect()
    }

    /// The text rendering of findings, for snapshots.
    pub(crate) fn render(findings: &[Finding]) -> String {
        findings.iter().map(Finding::render).collect()
    }

    /// Asserts nothing at all is reported, showing what was.
    pub(crate) fn assert_clean(findings: &[Finding]) {
        assert!(
            findings.is_empty(),
            "expected no findings, got:\n{}",
            render(findings)
        );
    }
}
