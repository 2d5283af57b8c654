//! `drop-column`: ALTER TABLE … DROP COLUMN on an existing table.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::ActionKind;

pub(crate) const RULE: Rule = Rule {
    id: "drop-column",
    severity: Severity::Error,
    summary: "DROP COLUMN of an existing column",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a) in cx.actions() {
        if a.kind != ActionKind::DropColumn || !a.destroys {
            continue;
        }
        let key = (
            a.table.clone().unwrap_or_default(),
            a.column.clone().unwrap_or_default(),
        );
        if cx.is_down() && cx.created.columns.contains(&key) {
            continue;
        }
        out.push(cx.finding(
            &RULE,
            op,
            a,
            format!(
                "dropping column {} is instant (ACCESS EXCLUSIVE, no rewrite) but deletes its data, \
                 and every deployed query or ORM model that still reads or writes it fails",
                a.target()
            ),
            "expand-contract: stop reading and writing the column, deploy, then drop it in a later \
             migration (keel backs the data up) with `-- keel:allow drop-column reason=\"…\"`",
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn flags_dropping_an_existing_column() {
        let f = only("drop-column", up("ALTER TABLE users\n  DROP COLUMN email;"));
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].line, f[0].column), (2, 3));
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&up(
            "-- keel:allow drop-column reason=\"unused since v2.3\"\nALTER TABLE users DROP COLUMN email;",
        ));
        assert_clean(&up(
            "ALTER TABLE users ADD COLUMN tmp text;\nALTER TABLE users DROP COLUMN tmp;",
        ));
        assert_clean(&lint(
            "ALTER TABLE users ADD COLUMN bio text;",
            Some("ALTER TABLE users DROP COLUMN bio;"),
            true,
            None,
        ));
    }
}
