//! `quote-identifier`: a defined name written unquoted that PostgreSQL
//! folds or reads as a keyword.

use super::{FileCx, Rule};
use crate::analysis::finding::{Finding, Severity};
use crate::analysis::keyword::is_reserved;

pub(crate) const RULE: Rule = Rule {
    id: "quote-identifier",
    severity: Severity::Info,
    summary: "an unquoted identifier that needs quoting",
    check: Some(check),
};

fn check(cx: &FileCx, out: &mut Vec<Finding>) {
    for op in cx.ops {
        for n in &op.names {
            if n.raw.starts_with('"') || n.raw.is_empty() {
                continue;
            }
            let lower = n.raw.to_lowercase();
            let why = if n.raw != lower {
                format!(
                    "`{}` is unquoted, so PostgreSQL stores it as `{lower}`; code that writes \
                     \"{}\" with quotes will not find it",
                    n.raw, n.raw
                )
            } else if is_reserved(&lower) {
                format!(
                    "`{}` is a reserved word in PostgreSQL and must be quoted everywhere it is used",
                    n.raw
                )
            } else {
                continue;
            };
            out.push(Finding {
                rule: RULE.id,
                severity: RULE.severity,
                file: cx.file.to_string(),
                line: n.line,
                column: n.column,
                statement: op.sql.clone(),
                message: why,
                suggestion: format!("name it `{}` (lower case, not a keyword)", snake(&n.raw)),
                allowed: None,
            });
        }
    }
}

fn snake(raw: &str) -> String {
    let mut out = String::new();
    for (i, c) in raw.chars().enumerate() {
        if c.is_uppercase() && i > 0 && !out.ends_with('_') {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    if is_reserved(&out) {
        out.push_str("_value");
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn flags_upper_case_names() {
        let f = only(
            "quote-identifier",
            up("CREATE TABLE UserAccounts (id bigint, createdAt timestamptz);"),
        );
        assert_eq!(f.len(), 2);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn safe_alternatives_pass_clean() {
        assert_clean(&up(
            "CREATE TABLE user_accounts (id bigint, created_at timestamptz, \"Legacy\" text);",
        ));
    }
}
