//! `prefer-timestamptz`: timestamp without time zone loses the offset.

use super::{FileCx, Rule, list, per_statement};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::operation::ActionKind;

pub(crate) const RULE: Rule = Rule {
    id: "prefer-timestamptz",
    severity: Severity::Info,
    summary: "timestamp without time zone",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    let defined = cx.defined_columns().filter_map(|(op, a, d)| {
        Some((
            op,
            a,
            d.name.clone(),
            d.ty.clone()?,
            Some((d.line, d.column)),
        ))
    });
    let altered = cx.actions().filter_map(|(op, a)| match &a.kind {
        ActionKind::AlterColumnType { to, .. } => Some((
            op,
            a,
            a.column.clone().unwrap_or_default(),
            to.clone(),
            None,
        )),
        _ => None,
    });
    let hits = defined
        .chain(altered)
        .filter(|(_, _, _, ty, _)| ty.name == "timestamp")
        .map(|(op, a, column, _, at)| (op, (a, column, at)));
    for (op, hits) in per_statement(hits) {
        let (a, column, at) = &hits[0];
        let table = a.table.clone().unwrap_or_default();
        let (message, suggestion) = if let [_] = hits[..] {
            (
                format!(
                    "{table}.{column} is timestamp without time zone: values are read and \
                     compared in whatever TimeZone each session has, so the same instant can \
                     differ by hours"
                ),
                format!("declare {column} as timestamptz"),
            )
        } else {
            let qualified = list(
                hits.iter()
                    .map(|(a, c, _)| format!("{}.{c}", a.table.as_deref().unwrap_or_default())),
            );
            (
                format!(
                    "timestamp without time zone columns {qualified}: values are read and \
                     compared in whatever TimeZone each session has, so the same instant can \
                     differ by hours"
                ),
                format!(
                    "declare {} as timestamptz",
                    list(hits.iter().map(|(_, c, _)| c.clone()))
                ),
            )
        };
        let mut f = cx.finding(&RULE, op, a, message, suggestion);
        if let Some((line, column)) = at {
            (f.line, f.column) = (*line, *column);
        }
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn flags_timestamp_without_time_zone() {
        let f = only(
            "prefer-timestamptz",
            up("CREATE TABLE t (id bigint, at timestamp);"),
        );
        assert_eq!(f.len(), 1);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&up(
            "CREATE TABLE t (id bigint, at timestamptz NOT NULL DEFAULT now());",
        ));
    }
}
