//! `detach-partition-blocking`: DETACH PARTITION without CONCURRENTLY locks
//! the parent table against reads and writes.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::ActionKind;

pub(crate) const RULE: Rule = Rule {
    id: "detach-partition-blocking",
    severity: Severity::Warning,
    summary: "DETACH PARTITION without CONCURRENTLY",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a) in cx.actions() {
        let ActionKind::DetachPartition {
            partition,
            concurrently: false,
        } = &a.kind
        else {
            continue;
        };
        if !a.on_existing_table() {
            continue;
        }
        let parent = a.target();
        let suggestion = if cx.version.is_some_and(|v| v.below(14)) {
            "DETACH … CONCURRENTLY needs PostgreSQL 14; until then run it with a short \
             lock_timeout when traffic is low"
                .to_string()
        } else {
            format!(
                "`ALTER TABLE {} DETACH PARTITION {} CONCURRENTLY` in a migration \
                 with `transaction = false`",
                crate::analysis::sql_name::relation(&parent),
                crate::analysis::sql_name::relation(partition)
            )
        };
        out.push(cx.finding(
            &RULE,
            op,
            a,
            format!(
                "DETACH PARTITION {partition} takes an ACCESS EXCLUSIVE lock on {parent} and the \
                 partition: every query on the parent waits for it, and it waits for every query"
            ),
            suggestion,
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn flags_blocking_detach() {
        let f = only(
            "detach-partition-blocking",
            up("ALTER TABLE events DETACH PARTITION events_2023;"),
        );
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn suggestion_follows_the_version() {
        let f = lint(
            "ALTER TABLE events DETACH PARTITION events_2023;",
            None,
            true,
            Some("13"),
        );
        assert!(
            only("detach-partition-blocking", f)[0]
                .suggestion
                .contains("needs PostgreSQL 14")
        );
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&lint(
            "ALTER TABLE events DETACH PARTITION events_2023 CONCURRENTLY;",
            None,
            false,
            Some("15"),
        ));
    }
}
