//! `add-foreign-key`: a foreign key validated on creation blocks writes on
//! both tables while it scans them.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::{ActionKind, ConstraintKind};

pub(crate) const RULE: Rule = Rule {
    id: "add-foreign-key",
    severity: Severity::Error,
    summary: "ADD FOREIGN KEY without NOT VALID on an existing table",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a) in cx.actions() {
        // ADD COLUMN … REFERENCES is not here: a new column is all NULL, so
        // nothing is validated (checked by the lock probe).
        let ActionKind::AddConstraint {
            kind: ConstraintKind::ForeignKey,
            not_valid: false,
            references,
            ..
        } = &a.kind
        else {
            continue;
        };
        let references = references.clone();
        if !a.on_existing_table() {
            continue;
        }
        let table = a.table.clone().unwrap_or_default();
        let other = references.unwrap_or_else(|| "the referenced table".into());
        out.push(cx.finding(
            &RULE,
            op,
            a,
            format!(
                "adding a foreign key from {table} to {other} validates every existing row while \
                 holding SHARE ROW EXCLUSIVE locks on both tables: writes to both wait for the scan"
            ),
            format!(
                "`ALTER TABLE {table} ADD CONSTRAINT … FOREIGN KEY (…) REFERENCES {other} (…) NOT \
                 VALID` (instant), then `ALTER TABLE {table} VALIDATE CONSTRAINT …` in a separate \
                 migration (SHARE UPDATE EXCLUSIVE: writes continue)"
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn flags_validated_foreign_key() {
        let f = only(
            "add-foreign-key",
            up(
                "ALTER TABLE posts ADD CONSTRAINT posts_user_fk FOREIGN KEY (user_id) REFERENCES users (id);",
            ),
        );
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&up(
            "ALTER TABLE posts ADD CONSTRAINT posts_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;",
        ));
        assert_clean(&up("ALTER TABLE posts VALIDATE CONSTRAINT posts_user_fk;"));
        // A new column is all NULL: its foreign key validates nothing.
        assert_clean(&up(
            "ALTER TABLE posts ADD COLUMN editor_id bigint REFERENCES users (id);",
        ));
        assert_clean(&up(
            "CREATE TABLE likes (id bigint PRIMARY KEY, post_id bigint REFERENCES posts (id));",
        ));
    }
}
