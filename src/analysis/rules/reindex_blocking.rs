//! `reindex-blocking`: REINDEX without CONCURRENTLY blocks writes to the
//! table and every read that would use the index.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::ActionKind;

pub(crate) const RULE: Rule = Rule {
    id: "reindex-blocking",
    severity: Severity::Error,
    summary: "REINDEX without CONCURRENTLY",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a) in cx.actions() {
        if a.kind
            != (ActionKind::Reindex {
                concurrently: false,
            })
            || a.new_table
        {
            continue;
        }
        let old = cx.version.is_some_and(|v| v.below(12));
        let suggestion = if old {
            "REINDEX CONCURRENTLY needs PostgreSQL 12; before that, build a new index \
             CONCURRENTLY, drop the old one CONCURRENTLY and rename the new one"
                .to_string()
        } else {
            format!(
                "`{}` in a migration with `transaction = false`",
                crate::analysis::sql_name::reindex_concurrently(&op.sql)
            )
        };
        out.push(cx.finding(
            &RULE,
            op,
            a,
            "REINDEX takes a SHARE lock on the table (writes wait) and an ACCESS EXCLUSIVE lock on \
             each index (reads that would use it wait) for the whole rebuild"
                .to_string(),
            suggestion,
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn flags_blocking_reindex() {
        let f = only("reindex-blocking", up("REINDEX TABLE users;"));
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&lint(
            "REINDEX INDEX CONCURRENTLY users_email_idx;",
            None,
            false,
            Some("15"),
        ));
    }
}
