//! `add-check`: a CHECK validated on creation scans under ACCESS EXCLUSIVE.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::{ActionKind, ConstraintKind};

pub(crate) const RULE: Rule = Rule {
    id: "add-check",
    severity: Severity::Error,
    summary: "ADD CHECK without NOT VALID on an existing table",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a) in cx.actions() {
        let named = match &a.kind {
            ActionKind::AddConstraint {
                kind: ConstraintKind::Check,
                not_valid: false,
                name,
                ..
            } => name.clone(),
            ActionKind::AddColumn(def) if def.check => None,
            _ => continue,
        };
        if !a.on_existing_table() {
            continue;
        }
        let table = a.table.clone().unwrap_or_default();
        let name = named.unwrap_or_else(|| "…".into());
        out.push(cx.finding(
            &RULE,
            op,
            a,
            format!(
                "adding a CHECK constraint to {table} scans every row while holding an ACCESS \
                 EXCLUSIVE lock: reads and writes wait for the scan"
            ),
            {
                let (t, n) = (
                    crate::analysis::sql_name::relation(&table),
                    crate::analysis::sql_name::ident(&name),
                );
                let add = match &a.kind {
                    ActionKind::AddConstraint { .. } => {
                        crate::analysis::sql_name::with_not_valid(op)
                    }
                    _ => None,
                }
                .unwrap_or_else(|| {
                    format!("ALTER TABLE {t} ADD CONSTRAINT {n} CHECK (…) NOT VALID")
                });
                format!(
                    "`{add}` (instant, new rows are checked), then `ALTER TABLE {t} VALIDATE \
                     CONSTRAINT {n}` in a separate migration"
                )
            },
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    /// The fix is the statement with NOT VALID after it, except where a
    /// line comment ends it and would swallow the NOT VALID.
    #[test]
    fn the_fix_is_the_statement_made_not_valid_unless_a_comment_ends_it() {
        let f = only(
            "add-check",
            up(
                "ALTER TABLE users ADD CONSTRAINT adult CHECK (age >= 18);\nALTER TABLE users ADD CONSTRAINT c CHECK (age > 0) -- positive\n;",
            ),
        );
        assert!(
            f[0].suggestion.starts_with(
                "`ALTER TABLE users ADD CONSTRAINT adult CHECK (age >= 18) NOT VALID`"
            ),
            "{}",
            f[0].suggestion
        );
        assert!(
            f[1].suggestion
                .starts_with("`ALTER TABLE users ADD CONSTRAINT c CHECK (…) NOT VALID`"),
            "{}",
            f[1].suggestion
        );
    }

    #[test]
    fn flags_validated_check() {
        let f = only(
            "add-check",
            up("ALTER TABLE users ADD CONSTRAINT email_has_at CHECK (email LIKE '%@%');"),
        );
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&up(
            "ALTER TABLE users ADD CONSTRAINT email_has_at CHECK (email LIKE '%@%') NOT VALID;",
        ));
        assert_clean(&up(
            "CREATE TABLE t (a int);\nALTER TABLE t ADD CONSTRAINT a_pos CHECK (a > 0);",
        ));
    }
}
