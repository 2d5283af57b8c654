//! `invalid-allow`: a `keel:allow` comment without a reason or naming an
//! unknown rule. Valid ones silence their rules for the statement below.

use super::{FileCx, Rule, find};
use crate::analysis::finding::{Finding, Severity};

pub(crate) const RULE: Rule = Rule {
    id: "invalid-allow",
    severity: Severity::Warning,
    summary: "a keel:allow comment without reason=\"…\" or with an unknown rule",
    check: None,
};

/// Marks findings silenced by valid allow comments; reports invalid ones.
pub(crate) fn apply(cx: &FileCx, out: &mut Vec<Finding>) {
    let mut problems = Vec::new();
    for op in cx.ops {
        for allow in &op.allows {
            let unknown: Vec<&str> = allow
                .rules
                .iter()
                .map(String::as_str)
                .filter(|r| find(r).is_none())
                .collect();
            let problem = if allow.rules.is_empty() {
                Some("names no rule".to_string())
            } else if !unknown.is_empty() {
                Some(format!("names unknown rule {}", unknown.join(", ")))
            } else if allow.reason.is_none() {
                Some("has no reason=\"…\"; the reason is required and goes into the runbook".into())
            } else {
                None
            };
            if let Some(problem) = problem {
                problems.push(Finding {
                    rule: RULE.id,
                    severity: RULE.severity,
                    file: cx.file.to_string(),
                    line: allow.line,
                    column: allow.column,
                    statement: op.sql.clone(),
                    message: format!("this keel:allow comment {problem}, so it silences nothing"),
                    suggestion: format!(
                        "-- keel:allow {} reason=\"why this is safe here\"",
                        if allow.rules.is_empty() {
                            "RULE".to_string()
                        } else {
                            allow.rules.join(", ")
                        }
                    ),
                    allowed: None,
                });
                continue;
            }
            for f in out.iter_mut() {
                let here = f.line >= op.line && f.line <= op.end_line();
                if here && allow.rules.iter().any(|r| r == f.rule) {
                    f.allowed = allow.reason.clone();
                }
            }
        }
    }
    out.extend(problems);
}

#[cfg(test)]
mod tests {
    use crate::analysis::rules::test::*;

    #[test]
    fn missing_reason_is_a_finding_and_silences_nothing() {
        let f = up("-- keel:allow drop-column\nALTER TABLE users DROP COLUMN email;");
        assert_eq!(f.len(), 2);
        insta::assert_snapshot!(render(&f));
    }

    #[test]
    fn unknown_rule_is_a_finding() {
        let f = only(
            "invalid-allow",
            up("-- keel:allow drop-colum reason=\"typo\"\nSELECT 1;"),
        );
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn allow_applies_only_to_the_statement_below() {
        let f = up(
            "-- keel:allow drop-column reason=\"unused since v2.3\"\nALTER TABLE users DROP COLUMN email;\nALTER TABLE users DROP COLUMN name;",
        );
        assert_eq!(only("drop-column", f).len(), 1);
    }
}
