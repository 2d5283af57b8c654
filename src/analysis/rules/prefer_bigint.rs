//! `prefer-bigint`: integer and smallint keys run out (2.1 billion ids).

use super::{FileCx, Rule, column_names, per_statement, typed_columns};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::sqltype::SqlType;

pub(crate) const RULE: Rule = Rule {
    id: "prefer-bigint",
    severity: Severity::Info,
    summary: "int/smallint key columns",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    let hits = cx.defined_columns().filter_map(|(op, a, def)| {
        let ty = def.ty.as_ref()?;
        let key = def.primary_key
            || def.references.is_some()
            || def.name == "id"
            || def.name.ends_with("_id");
        (key && ty.is_integer() && !ty.array).then_some((op, (a, def, ty)))
    });
    for (op, hits) in per_statement(hits) {
        let (a, def, ty) = hits[0];
        let table = a.table.clone().unwrap_or_default();
        let limit = |ty: &SqlType| {
            if ty.name.starts_with("small") {
                "32,767"
            } else {
                "2,147,483,647"
            }
        };
        let (message, suggestion) = if let [_] = hits[..] {
            (
                format!(
                    "key column {table}.{} is {ty}: it runs out at {} and widening it later \
                     rewrites the table (and every table that references it)",
                    def.name,
                    limit(ty)
                ),
                format!("declare {} as bigint", def.name),
            )
        } else {
            let qualified = typed_columns(&hits);
            let small = hits
                .iter()
                .filter(|(_, _, ty)| limit(ty) == "32,767")
                .count();
            let runs_out = match small {
                0 => "2,147,483,647",
                n if n == hits.len() => "32,767",
                _ => "2,147,483,647 (smallint at 32,767)",
            };
            (
                format!(
                    "key columns {qualified}: they run out at {runs_out} and widening one later \
                     rewrites the table (and every table that references it)"
                ),
                format!("declare {} as bigint", column_names(&hits)),
            )
        };
        out.push(cx.at_column(def, cx.finding(&RULE, op, a, message, suggestion)));
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn flags_integer_keys() {
        let f = only(
            "prefer-bigint",
            up("CREATE TABLE orders (id integer PRIMARY KEY, user_id int);"),
        );
        assert_eq!(f.len(), 1, "one finding per statement");
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&up(
            "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, user_id bigint, quantity int);",
        ));
    }
}
