//! `set-not-null`: SET NOT NULL scans the table under ACCESS EXCLUSIVE.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::ActionKind;

pub(crate) const RULE: Rule = Rule {
    id: "set-not-null",
    severity: Severity::Error,
    summary: "SET NOT NULL on an existing column",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a) in cx.actions() {
        if a.kind != ActionKind::SetNotNull
            || !a.on_existing_table()
            || !a.scan.maybe()
            || cx.reverts_alter(a)
        {
            continue;
        }
        let column = a.column.clone().unwrap_or_default();
        let table = a.table.clone().unwrap_or_default();
        let old = cx.version.is_some_and(|v| v.below(12));
        let suggestion = if old {
            "before PostgreSQL 12 there is no scan-free path: run it when the table is small or \
             traffic is low, with a short lock_timeout"
                .to_string()
        } else {
            format!(
                "`ALTER TABLE {t} ADD CONSTRAINT {n} CHECK ({c} IS NOT NULL) NOT VALID` \
                 (instant); in a later migration `ALTER TABLE {t} VALIDATE CONSTRAINT {n}` \
                 (SHARE UPDATE EXCLUSIVE: writes continue); then `ALTER TABLE {t} ALTER COLUMN \
                 {c} SET NOT NULL` (no scan: the valid CHECK proves it) and `ALTER TABLE {t} \
                 DROP CONSTRAINT {n}`",
                t = crate::analysis::sql_name::relation(&table),
                n = crate::analysis::sql_name::ident(&format!("{column}_not_null")),
                c = crate::analysis::sql_name::ident(&column)
            )
        };
        out.push(cx.finding(
            &RULE,
            op,
            a,
            format!(
                "SET NOT NULL on {} scans the whole table to check for NULLs while holding an \
                 ACCESS EXCLUSIVE lock: reads and writes wait for the scan",
                a.target()
            ),
            suggestion,
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn flags_set_not_null_on_an_existing_table() {
        let f = only(
            "set-not-null",
            up("ALTER TABLE users ALTER COLUMN email SET NOT NULL;"),
        );
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        // A validated CHECK proves it on 12+ (the VALIDATE runs in its own
        // transaction, so this migration is non-transactional).
        assert_clean(&lint(
            "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\n\
             ALTER TABLE users VALIDATE CONSTRAINT email_nn;\n\
             ALTER TABLE users ALTER COLUMN email SET NOT NULL;\n\
             ALTER TABLE users DROP CONSTRAINT email_nn;",
            None,
            false,
            Some("15"),
        ));
        assert_clean(&up(
            "CREATE TABLE t (a int);\nALTER TABLE t ALTER COLUMN a SET NOT NULL;",
        ));
    }
}
