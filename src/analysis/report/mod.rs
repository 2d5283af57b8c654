//! Printers for lint findings: text, JSON, GitHub workflow annotations and
//! SARIF 2.1.0. Each is a function of the same report, so they cannot
//! disagree about what was found.

mod github;
mod json;
mod sarif;
mod text;

pub(crate) use github::github;
pub(crate) use json::json;
pub(crate) use sarif::sarif;
pub(crate) use text::text;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::finding::{Finding, Severity};
    use crate::analysis::lint::LintReport;

    pub(crate) fn sample() -> LintReport {
        let f = |rule, severity, line, allowed: Option<&str>| Finding {
            rule,
            severity,
            file: "migrations/20260101090000_x/up.sql".into(),
            line,
            column: 19,
            statement: "ALTER TABLE users DROP COLUMN email".into(),
            message: "dropping column users.email, 100% gone".into(),
            suggestion: "expand-contract, then drop".into(),
            allowed: allowed.map(str::to_string),
        };
        LintReport {
            findings: vec![
                f("drop-column", Severity::Error, 2, None),
                f("prefer-text", Severity::Info, 3, None),
                f("drop-table", Severity::Error, 5, Some("unused since v2")),
            ],
            files: 2,
        }
    }

    #[test]
    fn text_output() {
        insta::assert_snapshot!(text(&sample()));
    }

    #[test]
    fn github_output() {
        insta::assert_snapshot!(github(&sample()));
    }

    #[test]
    fn json_output() {
        insta::assert_snapshot!(serde_json::to_string_pretty(&json(&sample())).unwrap());
    }

    #[test]
    fn sarif_output() {
        let mut s = sarif(&sample());
        s["runs"][0]["tool"]["driver"]["version"] = "VERSION".into();
        assert_eq!(s["version"], "2.1.0");
        assert_eq!(s["runs"][0]["results"].as_array().unwrap().len(), 3);
        insta::assert_snapshot!(serde_json::to_string_pretty(&s).unwrap());
    }
}
