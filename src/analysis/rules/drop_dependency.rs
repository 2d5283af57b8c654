//! `drop-dependency`: dropping something deployed code may rely on (a
//! default, a constraint, a function, view, type or trigger). Dropping
//! NOT NULL relaxes rather than breaks: `drop-not-null`.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::{Action, ActionKind, ObjectKind};

pub(crate) const RULE: Rule = Rule {
    id: "drop-dependency",
    severity: Severity::Warning,
    summary: "DROP DEFAULT / CONSTRAINT / FUNCTION / VIEW / TYPE / TRIGGER",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a) in cx.actions() {
        let Some(what) = dropped(a) else {
            continue;
        };
        if a.new_table || expected(cx, a) {
            continue;
        }
        let lock = match &a.kind {
            ActionKind::DropConstraint { .. } => {
                "; it takes an ACCESS EXCLUSIVE lock on the table (a foreign key: on both tables)"
            }
            ActionKind::DropDefault => "; it takes a brief ACCESS EXCLUSIVE lock on the table",
            ActionKind::DropObject {
                object: ObjectKind::Trigger,
                ..
            } => "; it takes an ACCESS EXCLUSIVE lock on the table",
            _ => "",
        };
        out.push(cx.finding(
            &RULE,
            op,
            a,
            format!("{what}{lock}"),
            "expand-contract: deploy code that no longer needs it first, then drop it in a later \
             migration",
        ));
    }
}

/// What is dropped, and what breaks when something still needs it.
fn dropped(a: &Action) -> Option<String> {
    let target = a.target();
    let relied = |what: String, breaks: &str| {
        format!("{what} breaks deployed code that still relies on it: {breaks}")
    };
    Some(match &a.kind {
        ActionKind::DropDefault => relied(
            format!("dropping the default of {target}"),
            "inserts that leave the column out now write NULL, or fail",
        ),
        ActionKind::DropConstraint { name } => relied(
            format!("dropping constraint {name} of {target}"),
            "whatever the constraint guaranteed (uniqueness, references, valid values) is no \
             longer enforced",
        ),
        // Nothing calls a trigger: dropping one fails no query, it silently
        // stops what the trigger did on every write.
        ActionKind::DropObject {
            object: ObjectKind::Trigger,
            name,
        } => format!(
            "dropping trigger {name} silently stops what it did on every write to {}: \
             rows written from then on no longer get its audit, sync or derived values, and \
             code that relies on them reads stale or missing data",
            a.table.as_deref().unwrap_or("its table")
        ),
        ActionKind::DropObject { object, name } => {
            let kind = match object {
                ObjectKind::Function => "function",
                ObjectKind::View => "view",
                ObjectKind::Type => "type",
                _ => return None,
            };
            relied(
                format!("dropping {kind} {name}"),
                "queries, defaults and triggers that use it fail",
            )
        }
        _ => return None,
    })
}

/// Created by this migration (or, for down.sql, by its up): nothing
/// deployed can depend on it yet, or removing it is the point.
fn expected(cx: &FileCx, a: &Action) -> bool {
    let c = cx.created;
    let col = (
        a.table.clone().unwrap_or_default(),
        a.column.clone().unwrap_or_default(),
    );
    match &a.kind {
        ActionKind::DropConstraint { name } => c.constraints.contains(name),
        ActionKind::DropObject { name, .. } => c.objects.contains(name),
        ActionKind::DropDefault => {
            c.columns.contains(&col) || (cx.is_down() && c.altered.contains(&col))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn flags_dropping_dependencies() {
        let f = only(
            "drop-dependency",
            up(
                "ALTER TABLE users ALTER COLUMN email DROP DEFAULT;\nALTER TABLE posts DROP CONSTRAINT posts_user_fk;\nDROP FUNCTION set_updated_at();",
            ),
        );
        assert_eq!(f.len(), 3);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&lint(
            "ALTER TABLE users ALTER COLUMN email SET DEFAULT '';\nCREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;",
            Some("ALTER TABLE users ALTER COLUMN email DROP DEFAULT;\nDROP FUNCTION f();"),
            true,
            None,
        ));
    }
}
