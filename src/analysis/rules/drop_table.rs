//! `drop-table`: DROP TABLE on a table that holds data.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::ActionKind;

pub(crate) const RULE: Rule = Rule {
    id: "drop-table",
    severity: Severity::Error,
    summary: "DROP TABLE of an existing table",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a) in cx.actions() {
        let ActionKind::DropTable { cascade } = &a.kind else {
            continue;
        };
        let table = a.target();
        if !a.on_existing_table() || (cx.is_down() && cx.created.tables.contains(&table)) {
            continue;
        }
        let cascade = if *cascade {
            " CASCADE also drops the views and foreign keys that depend on it."
        } else {
            ""
        };
        out.push(cx.finding(
            &RULE,
            op,
            a,
            format!(
                "DROP TABLE {table} deletes the table and its rows under an ACCESS EXCLUSIVE lock \
                 (also on tables that reference it by foreign key); deployed code that still \
                 queries it fails at once.{cascade}"
            ),
            "stop using the table in code and deploy; keel backs it up; then drop it in a later \
             migration with `-- keel:allow drop-table reason=\"…\"` above the statement",
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn flags_dropping_an_existing_table() {
        let f = only("drop-table", up("DROP TABLE users CASCADE;"));
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&up(
            "CREATE TABLE scratch (id bigint);\nDROP TABLE scratch;",
        ));
        assert_clean(&up(
            "-- keel:allow drop-table reason=\"unused since v2.3\"\nDROP TABLE users;",
        ));
        assert_clean(&lint(
            "CREATE TABLE profiles (id bigint PRIMARY KEY);",
            Some("DROP TABLE profiles;"),
            true,
            Some("15"),
        ));
    }

    #[test]
    fn down_dropping_a_table_the_up_did_not_create_is_flagged() {
        let f = lint(
            "ALTER TABLE users ADD COLUMN bio text;",
            Some("DROP TABLE users;"),
            true,
            None,
        );
        assert_eq!(only("drop-table", f).len(), 1);
    }
}
