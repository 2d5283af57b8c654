//! `table-rewrite`: SET LOGGED/UNLOGGED, SET TABLESPACE, VACUUM FULL and
//! CLUSTER copy the whole table under ACCESS EXCLUSIVE.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::ActionKind;

pub(crate) const RULE: Rule = Rule {
    id: "table-rewrite",
    severity: Severity::Error,
    summary: "a statement that rewrites an existing table",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a) in cx.actions() {
        let ActionKind::TableRewrite { what } = &a.kind else {
            continue;
        };
        if !a.on_existing_table() {
            continue;
        }
        out.push(cx.finding(
            &RULE,
            op,
            a,
            format!(
                "{what} copies all of {} into new files under an ACCESS EXCLUSIVE lock: reads and \
                 writes wait for the whole copy, and the disk needs room for both copies",
                a.target()
            ),
            "use pg_repack (rewrites online, with a brief lock at the end), or build a new table, \
             copy in batches and swap",
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn flags_rewrites() {
        let f = only(
            "table-rewrite",
            up("ALTER TABLE users SET LOGGED;\nCLUSTER users USING users_pkey;"),
        );
        assert_eq!(f.len(), 2);
        insta::assert_snapshot!(render(&f));
        let vacuum = lint("VACUUM FULL users;", None, false, None);
        assert_eq!(only("table-rewrite", vacuum).len(), 1);
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&up(
            "CREATE UNLOGGED TABLE scratch (id bigint);\nALTER TABLE scratch SET LOGGED;",
        ));
        assert_clean(&lint("VACUUM (ANALYZE) users;", None, false, None));
    }
}
