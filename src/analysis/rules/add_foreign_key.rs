//! `add-foreign-key`: a foreign key validated on creation blocks writes on
//! both tables while it scans them.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::{ActionKind, ConstraintKind};
use crate::analysis::sql_name;

pub(crate) const RULE: Rule = Rule {
    id: "add-foreign-key",
    severity: Severity::Error,
    summary: "ADD FOREIGN KEY without NOT VALID on an existing table",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a) in cx.actions() {
        if let ActionKind::AddColumn(def) = &a.kind {
            filled_reference(cx, (op, a), def, out);
            continue;
        }
        let ActionKind::AddConstraint {
            kind: ConstraintKind::ForeignKey,
            not_valid: false,
            references,
            name,
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
        let other = references
            .clone()
            .unwrap_or_else(|| "the referenced table".into());
        out.push(cx.finding(
            &RULE,
            op,
            a,
            format!(
                "adding a foreign key from {table} to {other} validates every existing row while \
                 holding SHARE ROW EXCLUSIVE locks on both tables: writes to both wait for the scan"
            ),
            {
                // The statement as written when it is this one named ADD,
                // else the clause on its own (named when it has no name).
                let bare = table.rsplit('.').next().unwrap_or(&table);
                let (add, n) = name
                    .as_ref()
                    .and_then(|n| sql_name::with_not_valid(op).map(|s| (s, n.clone())))
                    .or_else(|| sql_name::clause_not_valid(op, a, &table, &format!("{bare}_fkey")))
                    .unwrap_or_else(|| {
                        let n = name.clone().unwrap_or_else(|| "…".into());
                        let add = format!(
                            "ALTER TABLE {t} ADD CONSTRAINT {n} FOREIGN KEY (…) REFERENCES {o} (…) NOT VALID",
                            t = sql_name::relation(&table),
                            n = sql_name::ident(&n),
                            o = references.as_deref().map_or(other.clone(), sql_name::relation)
                        );
                        (add, n)
                    });
                format!(
                    "`{add}` (instant), then `ALTER TABLE {t} VALIDATE CONSTRAINT {n}` in a \
                     separate migration (SHARE UPDATE EXCLUSIVE: writes continue)",
                    t = sql_name::relation(&table),
                    n = sql_name::ident(&n),
                )
            },
        ));
    }
}

/// `ADD COLUMN c … DEFAULT v REFERENCES p`: the default fills every row,
/// so the foreign key is validated with a scan of both tables, under
/// SHARE ROW EXCLUSIVE on both (checked by the lock probe). Without a
/// default the column is all NULL and nothing is validated.
fn filled_reference(
    cx: &FileCx,
    (op, a): (
        &crate::analysis::operation::Operation,
        &crate::analysis::operation::Action,
    ),
    def: &crate::analysis::operation::ColumnDef,
    out: &mut Vec<Finding>,
) {
    let (Some(other), Some(default)) = (&def.references, &def.default) else {
        return;
    };
    if *default == crate::analysis::operation::DefaultValue::Null || !a.on_existing_table() {
        return;
    }
    let table = a.table.clone().unwrap_or_default();
    let column = &def.name;
    out.push(cx.finding(
        &RULE,
        op,
        a,
        format!(
            "adding {table}.{column} with a DEFAULT and REFERENCES {other} validates that \
             default for every existing row: full scans of {table} and {other} while holding \
             SHARE ROW EXCLUSIVE locks on both, so writes to both wait"
        ),
        format!(
            "{add} (instant), then `ALTER TABLE {t} ADD CONSTRAINT {n} FOREIGN KEY ({c}) \
             REFERENCES {o} NOT VALID` and, in a separate migration, `ALTER TABLE {t} VALIDATE \
             CONSTRAINT {n}` (SHARE UPDATE EXCLUSIVE: writes continue)",
            add = match (&def.ty_sql, &def.default_sql) {
                (Some(ty), Some(default)) => format!(
                    "`ALTER TABLE {} ADD COLUMN {} {ty} DEFAULT {default}`",
                    sql_name::relation(&table),
                    sql_name::ident(column)
                ),
                _ => "add the column with its DEFAULT but without REFERENCES".to_string(),
            },
            t = sql_name::relation(&table),
            n = sql_name::ident(&format!(
                "{}_{column}_fkey",
                crate::db::Relation::parse(&table).name
            )),
            c = sql_name::ident(column),
            o = sql_name::relation(other)
        ),
    ));
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
    fn flags_a_new_column_whose_default_the_foreign_key_checks() {
        let f = only(
            "add-foreign-key",
            up("ALTER TABLE posts ADD COLUMN owner_id bigint DEFAULT 1 REFERENCES users (id);"),
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
            "ALTER TABLE posts ADD COLUMN editor_id bigint DEFAULT NULL REFERENCES users (id);",
        ));
        assert_clean(&up(
            "CREATE TABLE likes (id bigint PRIMARY KEY, post_id bigint REFERENCES posts (id));",
        ));
    }
}
