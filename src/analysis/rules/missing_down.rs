//! `missing-down`: a migration without a usable down.sql that does not
//! declare itself irreversible.

use super::Rule;
use crate::analysis::finding::{Finding, Severity};
use crate::migration::Reversibility;
use std::path::Path;

pub(crate) const RULE: Rule = Rule {
    id: "missing-down",
    severity: Severity::Error,
    summary: "no down.sql (or an empty one) without reversibility = \"irreversible\"",
    check: None,
};

/// `down` is the file's text, `None` when it does not exist;
/// `has_statements` whether it holds at least one statement.
pub(crate) fn check(
    dir: &Path,
    down: Option<&str>,
    has_statements: bool,
    declared: Option<Reversibility>,
) -> Option<Finding> {
    if has_statements || declared == Some(Reversibility::Irreversible) {
        return None;
    }
    let what = if down.is_some() {
        "is empty"
    } else {
        "is missing"
    };
    Some(Finding {
        rule: RULE.id,
        severity: RULE.severity,
        file: dir.join("down.sql").display().to_string(),
        line: 1,
        column: 1,
        statement: String::new(),
        message: format!(
            "down.sql {what}: `keel down` cannot revert this migration, and a guarded run that \
             fails its checks cannot roll it back"
        ),
        suggestion: "write the down.sql that undoes up.sql, or declare `reversibility = \
                     \"irreversible\"` in migration.toml"
            .into(),
        allowed: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_missing_and_empty_down() {
        let dir = Path::new("migrations/20260101090000_add_bio");
        let f = check(dir, None, false, None).unwrap();
        insta::assert_snapshot!(f.render());
        assert!(check(dir, Some("-- nothing\n"), false, Some(Reversibility::Full)).is_some());
    }

    #[test]
    fn declared_irreversible_or_present_passes() {
        let dir = Path::new("m");
        assert!(check(dir, None, false, Some(Reversibility::Irreversible)).is_none());
        assert!(check(dir, Some("DROP TABLE t;"), true, None).is_none());
    }
}
