//! `add-column-required`: ADD COLUMN … NOT NULL without a default fails on
//! a table with rows.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::{ActionKind, DefaultValue, Generated};

pub(crate) const RULE: Rule = Rule {
    id: "add-column-required",
    severity: Severity::Error,
    summary: "ADD COLUMN NOT NULL without a default on an existing table",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a) in cx.actions() {
        let ActionKind::AddColumn(def) = &a.kind else {
            continue;
        };
        let filled = matches!(
            def.default,
            Some(DefaultValue::Constant | DefaultValue::Volatile(_) | DefaultValue::Unknown(_))
        ) || matches!(
            def.generated,
            Some(Generated::Identity | Generated::Stored | Generated::Virtual)
        ) || def.ty.as_ref().is_some_and(|t| t.is_serial());
        if !def.not_null || filled || !a.on_existing_table() {
            continue;
        }
        out.push(cx.finding(
            &RULE,
            op,
            a,
            format!(
                "adding {} as NOT NULL without a DEFAULT fails on any table that has rows \
                 (\"column contains null values\"): it works in development and breaks in production",
                a.target()
            ),
            "give it a constant DEFAULT (PostgreSQL 11+ stores it without a rewrite), or add it \
             nullable, backfill, and follow the set-not-null path",
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn flags_required_column_without_default() {
        let f = only(
            "add-column-required",
            up("ALTER TABLE users ADD COLUMN tenant_id bigint NOT NULL;"),
        );
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&up(
            "ALTER TABLE users ADD COLUMN active boolean NOT NULL DEFAULT true;",
        ));
        assert_clean(&up("ALTER TABLE users ADD COLUMN tenant_id bigint;"));
    }
}
