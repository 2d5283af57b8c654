//! `validate-with-lock`: VALIDATE CONSTRAINT in the same transaction as a
//! step that blocks writes keeps that lock for the whole validation scan.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::{ActionKind, Operation};

pub(crate) const RULE: Rule = Rule {
    id: "validate-with-lock",
    severity: Severity::Error,
    summary: "VALIDATE CONSTRAINT in the same transaction as a write-blocking lock",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (i, op) in cx.ops.iter().enumerate() {
        for a in &op.actions {
            let ActionKind::ValidateConstraint { name } = &a.kind else {
                continue;
            };
            if !op.in_transaction || !a.on_existing_table() {
                continue;
            }
            let Some((lock, table)) = strongest_lock_in_transaction(cx.ops, i) else {
                continue;
            };
            out.push(cx.finding(
                &RULE,
                op,
                a,
                format!(
                    "VALIDATE CONSTRAINT {name} scans {} in the same transaction that holds {lock} \
                     on {table}: that lock ({}) is kept for the whole scan, which is what NOT VALID \
                     was meant to avoid",
                    a.target(),
                    lock_blocks(&lock)
                ),
                cx.fix_for(
                    &RULE,
                    "validate in a separate migration (or in a `transaction = false` migration, \
                     where each statement commits on its own)",
                ),
            ));
        }
    }
}

/// The strongest write-blocking lock any other statement of the same
/// transaction takes on an existing table.
fn strongest_lock_in_transaction(ops: &[Operation], at: usize) -> Option<(String, String)> {
    let start = ops[..at]
        .iter()
        .rposition(|o| !o.in_transaction)
        .map_or(0, |p| p + 1);
    let end = ops[at..]
        .iter()
        .position(|o| !o.in_transaction)
        .map_or(ops.len(), |p| at + p);
    ops[start..end]
        .iter()
        .enumerate()
        .filter(|(j, _)| start + j != at)
        .flat_map(|(_, o)| &o.actions)
        .filter(|a| !a.new_table)
        .flat_map(|a| a.locks.iter())
        .filter(|l| l.lock.blocks_writes())
        .max_by_key(|l| l.lock)
        .map(|l| (l.lock.name().to_string(), l.table.clone()))
}

fn lock_blocks(name: &str) -> &'static str {
    if name == "ACCESS EXCLUSIVE" {
        "blocks reads and writes"
    } else {
        "blocks writes"
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn flags_validate_next_to_not_valid() {
        let f = only(
            "validate-with-lock",
            up(
                "ALTER TABLE users ADD CONSTRAINT email_has_at CHECK (email LIKE '%@%') NOT VALID;\nALTER TABLE users VALIDATE CONSTRAINT email_has_at;",
            ),
        );
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&up("ALTER TABLE users VALIDATE CONSTRAINT email_has_at;"));
        assert_clean(&lint(
            "ALTER TABLE users ADD CONSTRAINT email_has_at CHECK (email LIKE '%@%') NOT VALID;\nALTER TABLE users VALIDATE CONSTRAINT email_has_at;",
            None,
            false,
            Some("15"),
        ));
    }
}
