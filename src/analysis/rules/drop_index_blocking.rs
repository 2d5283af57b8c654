//! `drop-index-blocking`: DROP INDEX without CONCURRENTLY locks the table.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::ActionKind;
use std::collections::HashSet;

pub(crate) const RULE: Rule = Rule {
    id: "drop-index-blocking",
    severity: Severity::Warning,
    summary: "DROP INDEX without CONCURRENTLY",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    // The indexes this up built so far: `DROP INDEX i; CREATE INDEX i …`
    // drops the one the table had, built by an earlier migration.
    let mut built: HashSet<&str> = HashSet::new();
    for (op, a) in cx.actions() {
        if let ActionKind::CreateIndex { name: Some(n), .. } = &a.kind {
            built.insert(n);
        }
        let ActionKind::DropIndex {
            name,
            concurrently: false,
        } = &a.kind
        else {
            continue;
        };
        // An index this file built is its own to drop, unless IF NOT EXISTS
        // may have found it there already (down.sql undoes the up either way).
        let own = if cx.is_down() {
            cx.created.indexes.contains(name)
        } else {
            built.contains(name.as_str()) && !cx.created.reused_indexes.contains(name)
        };
        if a.new_table || own {
            continue;
        }
        let on = a
            .table
            .as_ref()
            .map(|t| format!("table {t}"))
            .unwrap_or_else(|| "its table".into());
        out.push(cx.finding(
            &RULE,
            op,
            a,
            format!(
                "DROP INDEX {name} takes an ACCESS EXCLUSIVE lock on {on}: it is quick once granted, \
                 but it queues behind running queries and every query queues behind it"
            ),
            format!(
                "`DROP INDEX CONCURRENTLY IF EXISTS {}` in a migration with `transaction = false`",
                crate::analysis::sql_name::relation(name)
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn flags_blocking_drop_index() {
        let f = only("drop-index-blocking", up("DROP INDEX users_email_idx;"));
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&lint(
            "DROP INDEX CONCURRENTLY IF EXISTS users_email_idx;",
            None,
            false,
            None,
        ));
        assert_clean(&lint(
            "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);",
            Some("DROP INDEX users_email_idx;"),
            false,
            None,
        ));
    }
}
