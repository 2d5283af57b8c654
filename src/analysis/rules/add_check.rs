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
                let (add, name) = not_valid(op, a, &table, name);
                let (t, n) = (
                    crate::analysis::sql_name::relation(&table),
                    crate::analysis::sql_name::ident(&name),
                );
                format!(
                    "`{add}` (instant, new rows are checked), then `ALTER TABLE {t} VALIDATE \
                     CONSTRAINT {n}` in a separate migration"
                )
            },
        ));
    }
}

/// The ADD made NOT VALID, and the constraint's name: the statement as
/// written when it is that one ADD and names its constraint, else the
/// clause on its own (named `TABLE_check` when it has no name of its own).
/// A CHECK inside an ADD COLUMN keeps a placeholder.
fn not_valid(
    op: &crate::analysis::operation::Operation,
    a: &crate::analysis::operation::Action,
    table: &str,
    name: String,
) -> (String, String) {
    use crate::analysis::sql_name::{clause_not_valid, ident, relation, with_not_valid};
    let bare = table.rsplit('.').next().unwrap_or(table);
    let whole = (name != "…")
        .then(|| with_not_valid(op))
        .flatten()
        .map(|s| (s, name.clone()));
    match &a.kind {
        ActionKind::AddConstraint { .. } => {
            whole.or_else(|| clause_not_valid(op, a, table, &format!("{bare}_check")))
        }
        _ => None,
    }
    .unwrap_or_else(|| {
        let (t, n) = (relation(table), ident(&name));
        (
            format!("ALTER TABLE {t} ADD CONSTRAINT {n} CHECK (…) NOT VALID"),
            name,
        )
    })
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    /// The fix is the statement with NOT VALID after it; where a line
    /// comment ends it (and would swallow the NOT VALID), the clause alone.
    #[test]
    fn the_fix_is_the_statement_made_not_valid_and_the_clause_past_a_comment() {
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
                .starts_with("`ALTER TABLE users ADD CONSTRAINT c CHECK (age > 0) NOT VALID`"),
            "{}",
            f[1].suggestion
        );
    }

    /// A CHECK added among other actions, or without a name, gets the
    /// clause on its own, named, so that the VALIDATE can name it.
    #[test]
    fn a_clause_of_a_longer_alter_is_its_own_statement_named() {
        let f = only(
            "add-check",
            up("ALTER TABLE users DROP COLUMN x, ADD CHECK (age > 0), ADD COLUMN y int;"),
        );
        assert!(
            f[0].suggestion.starts_with(
                "`ALTER TABLE users ADD CONSTRAINT users_check CHECK (age > 0) NOT VALID` \
                 (instant, new rows are checked), then `ALTER TABLE users VALIDATE CONSTRAINT users_check`"
            ),
            "{}",
            f[0].suggestion
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
