//! `add-unique`: ADD UNIQUE / PRIMARY KEY builds an index under ACCESS
//! EXCLUSIVE unless it adopts one built concurrently.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::{ActionKind, ConstraintKind};

pub(crate) const RULE: Rule = Rule {
    id: "add-unique",
    severity: Severity::Error,
    summary: "ADD UNIQUE or PRIMARY KEY without USING INDEX on an existing table",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a) in cx.actions() {
        let (kind, name, column) = match &a.kind {
            ActionKind::AddConstraint {
                kind: kind @ (ConstraintKind::Unique | ConstraintKind::PrimaryKey),
                using_index: false,
                name,
                ..
            } => (kind.sql(), name.clone(), None),
            ActionKind::AddColumn(def) if def.unique || def.primary_key => (
                if def.primary_key {
                    "PRIMARY KEY"
                } else {
                    "UNIQUE"
                },
                None,
                Some(crate::analysis::sql_name::ident(&def.name)),
            ),
            _ => continue,
        };
        if !a.on_existing_table() {
            continue;
        }
        let table = a.table.clone().unwrap_or_default();
        let name = name.unwrap_or_else(|| format!("{}_key", table.replace('.', "_")));
        let columns = column
            .map(|c| format!("({c})"))
            .or_else(|| crate::analysis::sql_name::constraint_columns(&op.sql, kind))
            .unwrap_or_else(|| "(…)".to_string());
        out.push(cx.finding(
            &RULE,
            op,
            a,
            format!(
                "adding {kind} to {table} builds its index while holding an ACCESS EXCLUSIVE lock: \
                 reads and writes wait for the whole build"
            ),
            format!(
                "`CREATE UNIQUE INDEX CONCURRENTLY {n} ON {t} {columns}` in a `transaction = \
                 false` migration, then `ALTER TABLE {t} ADD CONSTRAINT {n} {kind} USING \
                 INDEX {n}` ({after})",
                after = if kind == "PRIMARY KEY" {
                    "instant when the key columns are NOT NULL already; otherwise it sets NOT \
                     NULL with a scan under ACCESS EXCLUSIVE, so make them NOT NULL first by the \
                     CHECK … NOT VALID path"
                } else {
                    "instant"
                },
                t = crate::analysis::sql_name::relation(&table),
                n = crate::analysis::sql_name::ident(&name)
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    /// PRIMARY KEY USING INDEX sets NOT NULL: a scan when the columns allow
    /// NULL, which the fix says instead of "instant".
    #[test]
    fn a_primary_key_using_an_index_is_instant_only_on_not_null_columns() {
        let f = only(
            "add-unique",
            up("ALTER TABLE tags ADD CONSTRAINT tags_pkey PRIMARY KEY (id);"),
        );
        assert_eq!(f.len(), 1);
        assert!(
            f[0].suggestion.contains("PRIMARY KEY USING INDEX tags_pkey` (instant when the key columns are NOT NULL already"),
            "{}",
            f[0].suggestion
        );
    }

    #[test]
    fn flags_unique_without_index() {
        let f = only(
            "add-unique",
            up("ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);"),
        );
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&up(
            "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;",
        ));
        assert_clean(&up(
            "CREATE TABLE t (a int);\nALTER TABLE t ADD PRIMARY KEY (a);",
        ));
    }
}
