//! `prefer-text`: varchar(n) and char(n) limits are costly to change.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};

pub const RULE: Rule = Rule {
    id: "prefer-text",
    severity: Severity::Info,
    summary: "varchar(n) / char(n) columns",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for (op, a, def) in cx.defined_columns() {
        let Some(ty) = &def.ty else { continue };
        let limited = match ty.name.as_str() {
            "varchar" => !ty.args.is_empty(),
            "char" => true,
            _ => false,
        };
        if !limited {
            continue;
        }
        let table = a.table.clone().unwrap_or_default();
        out.push(cx.at_column(def, cx.finding(
            &RULE,
            op,
            a,
            format!(
                "{table}.{} is {ty}: the length limit is no faster than text, char pads with \
                 spaces, and shrinking the limit later rewrites the table",
                def.name
            ),
            format!(
                "declare {} as text, with `CHECK (char_length({}) <= n)` if the limit is a rule",
                def.name, def.name
            ),
        )));
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
        assert_eq!(f.len(), 2);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&up(
            "CREATE TABLE t (id bigint, name text CHECK (char_length(name) <= 100));",
        ));
    }
}
