//! `concurrently-in-transaction`: statements PostgreSQL refuses to run in a
//! transaction block (CONCURRENTLY forms, VACUUM, …) in a transactional
//! migration fail at run time.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};

pub(crate) const RULE: Rule = Rule {
    id: "concurrently-in-transaction",
    severity: Severity::Error,
    summary: "a statement that cannot run in a transaction, in a transactional migration",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for op in cx.ops.iter().filter(|o| o.in_transaction) {
        let Some(a) = op.actions.iter().find(|a| a.no_transaction) else {
            continue;
        };
        let what = op
            .sql
            .split_whitespace()
            .take(4)
            .collect::<Vec<_>>()
            .join(" ");
        if op.in_do_block.is_some() {
            out.push(cx.finding(
                &RULE,
                op,
                a,
                format!(
                    "`{what} …` cannot run inside a DO block: the block is one statement in one \
                     transaction, and PostgreSQL refuses it there (\"cannot be executed from a \
                     function\") when applied"
                ),
                "take it out of the DO block and run it as a statement of its own (`IF NOT \
                 EXISTS` gives the guard the block gave), in a migration that runs outside a \
                 transaction",
            ));
            continue;
        }
        out.push(cx.finding(
            &RULE,
            op,
            a,
            format!(
                "`{what} …` cannot run inside a transaction block, and this migration runs in one: \
                 it fails with \"cannot run inside a transaction block\" when applied"
            ),
            cx.fix_for(
                &RULE,
                "put it in its own migration with `transaction = false` in migration.toml (keel \
                 then runs each statement on its own)",
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn flags_concurrently_in_a_transaction() {
        let f = only(
            "concurrently-in-transaction",
            up("CREATE INDEX CONCURRENTLY users_email_idx ON users (email);"),
        );
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn flags_reindex_detach_and_vacuum_too() {
        let f = only(
            "concurrently-in-transaction",
            up(
                "REINDEX INDEX CONCURRENTLY ix;\nALTER TABLE p DETACH PARTITION p1 CONCURRENTLY;\nVACUUM users;",
            ),
        );
        assert_eq!(f.len(), 3);
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&lint(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email_idx ON users (email);",
            None,
            false,
            Some("15"),
        ));
    }
}
