//! `enum-value`: ALTER TYPE … ADD VALUE inside a transaction (fails before
//! 12; the value is unusable until commit after), and RENAME VALUE.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::ActionKind;

pub(crate) const RULE: Rule = Rule {
    id: "enum-value",
    severity: Severity::Error,
    summary: "enum ADD VALUE in a transaction, or RENAME VALUE",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (i, op) in cx.ops.iter().enumerate() {
        for a in &op.actions {
            match &a.kind {
                ActionKind::EnumAddValue { value } if op.in_transaction => {
                    let old = cx.version.is_some_and(|v| v.below(12));
                    // 12+: allowed, but the new value cannot be used before commit.
                    let used_later = cx.ops[i + 1..]
                        .iter()
                        .take_while(|o| o.in_transaction)
                        .any(|o| o.sql.contains(value.as_str()));
                    if !old && !used_later {
                        continue;
                    }
                    let message = if old {
                        format!(
                            "ALTER TYPE … ADD VALUE {value} cannot run inside a transaction block \
                             before PostgreSQL 12: the migration fails"
                        )
                    } else {
                        format!(
                            "the enum value {value} is added and used in the same transaction; \
                             PostgreSQL refuses to use a new enum value before the transaction \
                             that added it commits (\"unsafe use of new value\")"
                        )
                    };
                    out.push(cx.finding(
                        &RULE,
                        op,
                        a,
                        message,
                        "add the value in its own migration with `transaction = false`, and use \
                         it in a later migration",
                    ));
                }
                ActionKind::EnumRenameValue => {
                    let mut f = cx.finding(
                        &RULE,
                        op,
                        a,
                        "renaming an enum value breaks every deployed query and row literal that \
                         uses the old label"
                            .to_string(),
                        "add the new value, migrate the data to it, switch the code, and leave the \
                         old value unused; never rename a value in use",
                    );
                    f.severity = Severity::Warning;
                    out.push(f);
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn add_value_in_transaction_fails_before_12() {
        let f = only(
            "enum-value",
            lint(
                "ALTER TYPE mood ADD VALUE 'curious';",
                None,
                true,
                Some("11"),
            ),
        );
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn flags_use_in_the_same_transaction_and_rename() {
        let f = only(
            "enum-value",
            up(
                "ALTER TYPE mood ADD VALUE 'curious';\nUPDATE people SET mood = 'curious' WHERE id = 1;\nALTER TYPE mood RENAME VALUE 'sad' TO 'blue';",
            ),
        );
        assert_eq!(f.len(), 2);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&lint(
            "ALTER TYPE mood ADD VALUE 'curious';",
            None,
            false,
            Some("11"),
        ));
        assert_clean(&up("ALTER TYPE mood ADD VALUE IF NOT EXISTS 'curious';"));
    }
}
