//! `drop-not-null`: relaxing a column to allow NULL. Nothing that runs now
//! fails, so it is not a `drop-dependency`: what can break is code that
//! reads the column, once something writes NULL into it.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::ActionKind;

pub(crate) const RULE: Rule = Rule {
    id: "drop-not-null",
    severity: Severity::Info,
    summary: "DROP NOT NULL: a relaxation, safe to run; readers must handle NULL before writers write it",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a) in cx.actions() {
        if a.kind != ActionKind::DropNotNull || a.new_table {
            continue;
        }
        let col = (
            a.table.clone().unwrap_or_default(),
            a.column.clone().unwrap_or_default(),
        );
        // A column this migration added, or (in down.sql) one its up made
        // NOT NULL: nothing deployed relies on it.
        if cx.created.columns.contains(&col) || (cx.is_down() && cx.created.altered.contains(&col))
        {
            continue;
        }
        let target = a.target();
        out.push(cx.finding(
            &RULE,
            op,
            a,
            format!(
                "dropping NOT NULL on {target} relaxes a constraint: no query that runs now fails, \
                 and it takes only a brief ACCESS EXCLUSIVE lock; but once something writes NULL \
                 there, code that assumes the column is never NULL reads one"
            ),
            "deploy the code that reads the column and handles NULL before the code that writes \
             NULL; the migration itself can run any time",
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn a_relaxation_is_information_not_a_break() {
        let found = up("ALTER TABLE users ALTER COLUMN email DROP NOT NULL;");
        let f = only("drop-not-null", found.clone());
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
        assert!(
            only("drop-dependency", found).is_empty(),
            "not a drop-dependency"
        );
    }

    #[test]
    fn a_column_the_migration_added_is_not_reported() {
        assert!(
            only(
                "drop-not-null",
                up("ALTER TABLE users ADD COLUMN nick text NOT NULL DEFAULT '';\nALTER TABLE users ALTER COLUMN nick DROP NOT NULL;"),
            )
            .is_empty()
        );
    }
}
