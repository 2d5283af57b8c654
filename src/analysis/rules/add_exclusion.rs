//! `add-exclusion`: ADD EXCLUDE scans and builds an index under ACCESS
//! EXCLUSIVE, and has no NOT VALID form.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::{ActionKind, ConstraintKind};

pub(crate) const RULE: Rule = Rule {
    id: "add-exclusion",
    severity: Severity::Error,
    summary: "ADD EXCLUDE on an existing table",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a) in cx.actions() {
        let ActionKind::AddConstraint {
            kind: ConstraintKind::Exclude,
            ..
        } = &a.kind
        else {
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
                "adding an exclusion constraint to {} builds its index and checks every row under \
                 an ACCESS EXCLUSIVE lock, and PostgreSQL has no NOT VALID form for it",
                a.target()
            ),
            "create a new table with the constraint, copy the data in batches, and swap the \
             tables by renaming them in one short transaction",
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn flags_exclusion_on_existing_table() {
        let f = only(
            "add-exclusion",
            up(
                "ALTER TABLE bookings ADD CONSTRAINT no_overlap EXCLUDE USING gist (room WITH =, during WITH &&);",
            ),
        );
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&up(
            "CREATE TABLE bookings_v2 (room bigint, during tstzrange, CONSTRAINT no_overlap EXCLUDE USING gist (room WITH =, during WITH &&));",
        ));
    }
}
