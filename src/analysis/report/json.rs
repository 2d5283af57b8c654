use crate::analysis::finding::Severity;
use crate::analysis::lint::LintReport;
use serde_json::{Value, json as j};

/// `{"findings":[{"rule","severity","file","line","column","statement",
/// "message","suggestion"}], "allowed":[…], "summary":{…}}`: findings
/// silenced by keel:allow are listed apart, with their reason.
pub(crate) fn json(report: &LintReport) -> Value {
    let (allowed, active): (Vec<_>, Vec<_>) = report.findings.iter().partition(|f| !f.is_active());
    j!({
        "findings": active,
        "allowed": allowed,
        "summary": {
            "errors": report.count(Severity::Error),
            "warnings": report.count(Severity::Warning),
            "info": report.count(Severity::Info),
            "files": report.files,
        }
    })
}
