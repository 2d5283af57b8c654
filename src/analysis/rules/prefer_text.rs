//! `prefer-text`: varchar(n) and char(n) limits are costly to change.

use super::{FileCx, Rule, column_names, per_statement, typed_columns};
use crate::analysis::finding::{Finding, Severity};

pub(crate) const RULE: Rule = Rule {
    id: "prefer-text",
    severity: Severity::Info,
    summary: "varchar(n) / char(n) columns",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    let hits = cx.defined_columns().filter_map(|(op, a, def)| {
        let ty = def.ty.as_ref()?;
        let limited = match ty.name.as_str() {
            "varchar" => !ty.args.is_empty(),
            "char" => true,
            _ => false,
        };
        limited.then_some((op, (a, def, ty)))
    });
    for (op, hits) in per_statement(hits) {
        let (a, def, ty) = hits[0];
        let table = a.table.clone().unwrap_or_default();
        let (message, suggestion) = if let [_] = hits[..] {
            (
                format!(
                    "{table}.{} is {ty}: the length limit is no faster than text, char pads with \
                     spaces, and shrinking the limit later rewrites the table",
                    def.name
                ),
                format!(
                    "declare {} as text, with `CHECK (char_length({}) <= n)` if the limit is a rule",
                    def.name,
                    crate::analysis::sql_name::ident(&def.name)
                ),
            )
        } else {
            let qualified = typed_columns(&hits);
            (
                format!(
                    "varchar(n)/char(n) columns {qualified}: the length limit is no faster than \
                     text, char pads with spaces, and shrinking a limit later rewrites the table"
                ),
                format!(
                    "declare {} as text, with `CHECK (char_length(column) <= n)` where the limit \
                     is a rule",
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
    fn flags_limited_strings() {
        let f = only(
            "prefer-text",
            up("CREATE TABLE t (id bigint, code char(2), name varchar(100));"),
        );
        assert_eq!(f.len(), 1, "one finding per statement");
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&up(
            "CREATE TABLE t (id bigint, name text CHECK (char_length(name) <= 100));",
        ));
    }
}
