//! `rename-table`: ALTER TABLE … RENAME TO breaks the code that is running.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::ActionKind;

pub(crate) const RULE: Rule = Rule {
    id: "rename-table",
    severity: Severity::Error,
    summary: "RENAME TO on an existing table",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a) in cx.actions() {
        let ActionKind::RenameTable { to } = &a.kind else {
            continue;
        };
        let table = a.target();
        if !a.on_existing_table() || (cx.is_down() && cx.created.tables.contains(&table)) {
            continue;
        }
        out.push(cx.finding(
            &RULE,
            op,
            a,
            format!(
                "renaming table {table} to {to} takes an ACCESS EXCLUSIVE lock and every deployed \
                 query using the old name fails until the new code is out"
            ),
            format!(
                "rename it and in the same migration `CREATE VIEW {} AS SELECT * FROM {}` \
                 so old code keeps working; drop the view once nothing uses it",
                crate::analysis::sql_name::relation(&table),
                crate::analysis::sql_name::relation(to)
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn flags_renaming_a_table() {
        let f = only("rename-table", up("ALTER TABLE users RENAME TO accounts;"));
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&up(
            "CREATE TABLE accounts_new (id bigint);\nALTER TABLE accounts_new RENAME TO accounts;",
        ));
        assert_clean(&lint(
            "ALTER TABLE users RENAME TO accounts;",
            Some("ALTER TABLE accounts RENAME TO users;"),
            true,
            None,
        ));
    }
}
