//! `prefer-identity`: serial columns, where an identity column is the
//! standard and keeps its sequence's ownership and permissions in step.

use super::{FileCx, Rule, column_names, per_statement, typed_columns};
use crate::analysis::finding::{Finding, Severity};

pub(crate) const RULE: Rule = Rule {
    id: "prefer-identity",
    severity: Severity::Info,
    summary: "serial columns",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    let hits = cx.defined_columns().filter_map(|(op, a, def)| {
        let ty = def.ty.as_ref().filter(|t| t.is_serial())?;
        Some((op, (a, def, ty)))
    });
    for (op, hits) in per_statement(hits) {
        let (a, def, ty) = hits[0];
        let table = a.table.clone().unwrap_or_default();
        let (message, suggestion) = if let [_] = hits[..] {
            (
                format!(
                    "{table}.{} is {ty}: its sequence is a separate object with its own grants, \
                     and explicit inserts silently get out of step with it",
                    def.name
                ),
                format!(
                    "`{} bigint GENERATED ALWAYS AS IDENTITY` (or BY DEFAULT when the application \
                     sometimes sets it)",
                    crate::analysis::sql_name::ident(&def.name)
                ),
            )
        } else {
            let qualified = typed_columns(&hits);
            (
                format!(
                    "serial columns {qualified}: each sequence is a separate object with its own \
                     grants, and explicit inserts silently get out of step with it"
                ),
                format!(
                    "declare {} as `bigint GENERATED ALWAYS AS IDENTITY` (or BY DEFAULT when the \
                     application sometimes sets them)",
                    column_names(&hits)
                ),
            )
        };
        out.push(cx.at_column(def, cx.finding(&RULE, op, a, message, suggestion)));
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
