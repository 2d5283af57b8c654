//! `rename-column`: RENAME COLUMN breaks the code that is running.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::ActionKind;

pub(crate) const RULE: Rule = Rule {
    id: "rename-column",
    severity: Severity::Error,
    summary: "RENAME COLUMN on an existing table",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a) in cx.actions() {
        let ActionKind::RenameColumn { to } = &a.kind else {
            continue;
        };
        let table = a.table.clone().unwrap_or_default();
        let column = a.column.clone().unwrap_or_default();
        let reverts = cx.is_down()
            && cx
                .created
                .columns
                .contains(&(table.clone(), column.clone()));
        if !a.on_existing_table() || reverts {
            continue;
        }
        out.push(cx.finding(
            &RULE,
            op,
            a,
            format!(
                "renaming {} to {to} is instant (ACCESS EXCLUSIVE) but every deployed query using \
                 the old name fails from that moment until the new code is out",
                a.target()
            ),
            format!(
                "add column {to}, keep both in sync with a trigger, backfill, switch reads, then \
                 drop {column}: `keel new --template rename-column --table {table} --column \
                 {column} --to {to}` writes the three migrations"
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn flags_renaming_a_column() {
        let f = only(
            "rename-column",
            up("ALTER TABLE users RENAME COLUMN name TO full_name;"),
        );
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&up("ALTER TABLE users ADD COLUMN full_name text;"));
        assert_clean(&lint(
            "ALTER TABLE users RENAME COLUMN name TO full_name;",
            Some("ALTER TABLE users RENAME COLUMN full_name TO name;"),
            true,
            None,
        ));
    }
}
