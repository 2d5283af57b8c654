//! `truncate`: TRUNCATE deletes every row at once under ACCESS EXCLUSIVE.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::ActionKind;

pub(crate) const RULE: Rule = Rule {
    id: "truncate",
    severity: Severity::Error,
    summary: "TRUNCATE of an existing table",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a) in cx.actions() {
        let ActionKind::Truncate { cascade } = &a.kind else {
            continue;
        };
        let table = a.target();
        if !a.on_existing_table() || (cx.is_down() && cx.created.updated.contains(&table)) {
            continue;
        }
        let cascade = if *cascade {
            " CASCADE also empties every table that references it, which the statement does not name."
        } else {
            ""
        };
        out.push(cx.finding(
            &RULE,
            op,
            a,
            format!(
                "TRUNCATE {table} deletes every row under an ACCESS EXCLUSIVE lock; the data \
                 cannot be recovered without a backup.{cascade}"
            ),
            "delete in batches with a [backfill]-style job, or make sure keel's backup covers the \
             table before running it",
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn flags_truncate() {
        let f = only("truncate", up("TRUNCATE sessions CASCADE;"));
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&up("CREATE TABLE staging (id bigint);\nTRUNCATE staging;"));
        assert_clean(&lint(
            "INSERT INTO countries (code) VALUES ('NL');",
            Some("TRUNCATE countries;"),
            true,
            None,
        ));
    }
}
