//! `change-column-type`: ALTER COLUMN … TYPE that rewrites the table.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::{ActionKind, Tri};

pub(crate) const RULE: Rule = Rule {
    id: "change-column-type",
    severity: Severity::Error,
    summary: "a column type change that rewrites the table",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a) in cx.actions() {
        let ActionKind::AlterColumnType { to, from, .. } = &a.kind else {
            continue;
        };
        if !a.on_existing_table() || a.rewrite == Tri::No || cx.reverts_alter(a) {
            continue;
        }
        let from = from
            .as_ref()
            .map(|f| format!(" from {f}"))
            .unwrap_or_default();
        let message = format!(
            "changing {}{from} to {to} rewrites the whole table and every index under an ACCESS \
             EXCLUSIVE lock: reads and writes wait for the full rewrite",
            a.target()
        );
        let mut f = cx.finding(
            &RULE,
            op,
            a,
            message,
            "add a new column of the new type, backfill it in batches (a [backfill] section), \
             switch the code to it, then drop the old column",
        );
        if let Tri::Depends(on) = &a.rewrite {
            f.severity = Severity::Warning;
            f.message = format!(
                "changing {}{from} to {to} may rewrite the whole table and every index under an \
                 ACCESS EXCLUSIVE lock; it depends on {on}",
                a.target()
            );
        }
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn flags_a_rewriting_type_change() {
        let f = only(
            "change-column-type",
            up("ALTER TABLE users ALTER COLUMN id TYPE bigint;"),
        );
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn uncertain_changes_are_warnings() {
        let f = only(
            "change-column-type",
            up("ALTER TABLE events ALTER COLUMN at TYPE timestamptz;"),
        );
        assert_eq!(f[0].severity, crate::analysis::finding::Severity::Warning);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        // Widening a varchar the same set declared is binary-coercible.
        let widen = up(
            "CREATE TABLE notes (body varchar(100));\nALTER TABLE notes ALTER COLUMN body TYPE varchar(200);",
        );
        assert_clean(&only("change-column-type", widen));
        assert_clean(&up("ALTER TABLE users ADD COLUMN id_new bigint;"));
    }
}
