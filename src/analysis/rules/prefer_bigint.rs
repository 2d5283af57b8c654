//! `prefer-bigint`: integer and smallint keys run out (2.1 billion ids).

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};

pub const RULE: Rule = Rule {
    id: "prefer-bigint",
    severity: Severity::Info,
    summary: "int/smallint key columns",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a, def) in cx.defined_columns() {
        let Some(ty) = &def.ty else { continue };
        let key = def.primary_key
            || def.references.is_some()
            || def.name == "id"
            || def.name.ends_with("_id");
        if !key || !ty.is_integer() || ty.array {
            continue;
        }
        let table = a.table.clone().unwrap_or_default();
        out.push(cx.at_column(def, cx.finding(
            &RULE,
            op,
            a,
            format!(
                "key column {table}.{} is {ty}: it runs out at {} and widening it later rewrites \
                 the table (and every table that references it)",
                def.name,
                if ty.name.starts_with("small") { "32,767" } else { "2,147,483,647" }
            ),
            format!("declare {} as bigint", def.name),
        )));
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
        assert_eq!(f.len(), 2);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&up(
            "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, user_id bigint, quantity int);",
        ));
    }
}
