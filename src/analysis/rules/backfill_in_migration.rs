//! `backfill-in-migration`: UPDATE or DELETE of a whole existing table
//! inside a schema migration.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::{Action, ActionKind, DefaultValue, InDoBlock};

pub(crate) const RULE: Rule = Rule {
    id: "backfill-in-migration",
    severity: Severity::Warning,
    summary: "UPDATE or DELETE of every row of an existing table (no WHERE, or WHERE new_column IS NULL)",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a) in cx.actions() {
        let (verb, has_where) = match &a.kind {
            ActionKind::Update { has_where, .. } => ("UPDATE", *has_where),
            ActionKind::Delete { has_where } => ("DELETE", *has_where),
            _ => continue,
        };
        let table = a.target();
        if !a.on_existing_table() || (cx.is_down() && cx.created.updated.contains(&table)) {
            continue;
        }
        if op.in_do_block == Some(InDoBlock::Loop) {
            out.push(cx.finding(
                &RULE,
                op,
                a,
                format!(
                    "{verb} in a LOOP of a DO block is not batched: the block is one statement in \
                     one transaction, so every row of {table} the loop touches stays locked until \
                     the block ends, and no batch commits on its own"
                ),
                "move it to a [backfill] section in migration.toml (batched by key, each batch its \
                 own transaction), or run each batch as a statement of its own outside a \
                 transaction",
            ));
            continue;
        }
        let every_row = match (has_where, null_column(a)) {
            (false, _) => "without WHERE".to_string(),
            (true, Some(col)) if added_without_value(cx, a, &col) => format!(
                "WHERE {col} IS NULL right after adding {col} without a default (every row \
                 matches)"
            ),
            (true, _) => continue,
        };
        let held = if op.in_transaction {
            ", for as long as the migration's transaction lasts (with every DDL lock it took)"
        } else {
            ""
        };
        out.push(cx.finding(
            &RULE,
            op,
            a,
            format!(
                "{verb} {every_row} touches every row of {table} in one statement: each row stays \
                 locked against other writers{held}, and the old row versions bloat the table"
            ),
            "move it to a [backfill] section in migration.toml: batched by key, resumable, each \
             batch its own short transaction, outside the DDL",
        ));
    }
}

/// The column of a WHERE that is exactly `col IS NULL` (or `alias.col IS
/// NULL`), folded as PostgreSQL folds it.
fn null_column(a: &Action) -> Option<String> {
    let words: Vec<&str> = a.rows.as_ref()?.predicate.split_whitespace().collect();
    let [col, is, null] = words.as_slice() else {
        return None;
    };
    if !is.eq_ignore_ascii_case("is") || !null.eq_ignore_ascii_case("null") {
        return None;
    }
    let name = col.rsplit('.').next()?;
    Some(crate::analysis::classify::syntax::ident(name))
}

/// `col` of `a`'s table was added earlier in this file without a default
/// (or with DEFAULT NULL): every existing row holds NULL there.
fn added_without_value(cx: &FileCx, a: &Action, col: &str) -> bool {
    cx.actions().any(|(_, added)| {
        matches!(&added.kind, ActionKind::AddColumn(def)
            if def.name == col
                && added.table == a.table
                && def.generated.is_none()
                && def.default.as_ref().is_none_or(|d| *d == DefaultValue::Null))
    })
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn flags_whole_table_update() {
        let f = only(
            "backfill-in-migration",
            up("ALTER TABLE users ADD COLUMN active boolean;\nUPDATE users SET active = true;"),
        );
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
    }

    /// A new column is NULL in every row: `WHERE col IS NULL` right after
    /// adding it is no filter at all.
    #[test]
    fn flags_where_new_column_is_null() {
        let f = only(
            "backfill-in-migration",
            up(
                "ALTER TABLE users ADD COLUMN active boolean;\nUPDATE users SET active = true WHERE active IS NULL;",
            ),
        );
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
        // With a default the rows hold it, not NULL; an old column may
        // well be NULL in few rows.
        assert_clean(&up(
            "ALTER TABLE users ADD COLUMN active boolean DEFAULT false;\nUPDATE users SET active = true WHERE active IS NULL;",
        ));
        assert_clean(&up("UPDATE users SET active = true WHERE active IS NULL;"));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&up("UPDATE settings SET value = 'on' WHERE key = 'beta';"));
        assert_clean(&up(
            "CREATE TABLE t (a int);\nINSERT INTO t VALUES (1);\nUPDATE t SET a = 2;",
        ));
    }
}
