//! `prefer-identity`: serial columns, where an identity column is the
//! standard and keeps its sequence's ownership and permissions in step.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};

pub const RULE: Rule = Rule {
    id: "prefer-identity",
    severity: Severity::Info,
    summary: "serial columns",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a, def) in cx.defined_columns() {
        let Some(ty) = def.ty.as_ref().filter(|t| t.is_serial()) else {
            continue;
        };
        let table = a.table.clone().unwrap_or_default();
        out.push(cx.at_column(def, cx.finding(
            &RULE,
            op,
            a,
            format!(
                "{table}.{} is {ty}: its sequence is a separate object with its own grants, and \
                 explicit inserts silently get out of step with it",
                def.name
            ),
            format!(
                "`{} bigint GENERATED ALWAYS AS IDENTITY` (or BY DEFAULT when the application \
                 sometimes sets it)",
                def.name
            ),
        )));
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn flags_serial() {
        let f = only(
            "prefer-identity",
            up("CREATE TABLE t (id bigserial PRIMARY KEY);"),
        );
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&up(
            "CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);",
        ));
    }
}
