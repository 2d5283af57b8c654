use crate::analysis::finding::Severity;
use crate::analysis::lint::LintReport;

/// `file:line:col: severity[rule] message`, the statement, the fix; then a
/// one-line summary.
pub(crate) fn text(report: &LintReport) -> String {
    let mut out = String::new();
    for f in report.active() {
        out.push_str(&f.render());
        out.push('\n');
    }
    let files = plural(report.files, "file");
    let found = report.active().count();
    if found == 0 {
        out.push_str(&format!("no findings in {files}"));
    } else {
        out.push_str(&format!(
            "{} ({}, {}, {} info) in {files}",
            plural(found, "finding"),
            plural(report.count(Severity::Error), "error"),
            plural(report.count(Severity::Warning), "warning"),
            report.count(Severity::Info),
        ));
    }
    let silenced = report.findings.len() - found;
    if silenced > 0 {
        out.push_str(&format!("; {silenced} silenced by keel:allow"));
    }
    out.push('\n');
    out
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}
