//! `backfill-in-migration`: UPDATE or DELETE of a whole existing table
//! inside a schema migration.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::ActionKind;

pub(crate) const RULE: Rule = Rule {
    id: "backfill-in-migration",
    severity: Severity::Warning,
    summary: "UPDATE or DELETE without WHERE on an existing table",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a) in cx.actions() {
        let verb = match &a.kind {
            ActionKind::Update {
                has_where: false, ..
            } => "UPDATE",
            ActionKind::Delete { has_where: false } => "DELETE",
            _ => continue,
        };
        let table = a.target();
        if !a.on_existing_table() || (cx.is_down() && cx.created.updated.contains(&table)) {
            continue;
        }
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
                "{verb} without WHERE touches every row of {table} in one statement: each row stays \
                 locked against other writers{held}, and the old row versions bloat the table"
            ),
            "move it to a [backfill] section in migration.toml: batched by key, resumable, each \
             batch its own short transaction, outside the DDL",
        ));
    }
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

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&up("UPDATE settings SET value = 'on' WHERE key = 'beta';"));
        assert_clean(&up(
            "CREATE TABLE t (a int);\nINSERT INTO t VALUES (1);\nUPDATE t SET a = 2;",
        ));
    }
}
