use crate::analysis::finding::Severity;
use crate::analysis::lint::LintReport;

/// GitHub Actions workflow commands: one `::error file=…,line=…,col=…::…`
/// annotation per finding (warning → `::warning`, info → `::notice`).
pub(crate) fn github(report: &LintReport) -> String {
    let mut out = String::new();
    for f in report.active() {
        let level = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "notice",
        };
        out.push_str(&format!(
            "::{level} file={},line={},col={},title={}::{}\n",
            property(&f.file),
            f.line,
            f.column,
            property(&format!("keel {}", f.rule)),
            data(&format!("{}\nfix: {}", f.message, f.suggestion)),
        ));
    }
    out
}

/// The escaping GitHub's runner undoes in a command's message.
fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Properties additionally escape the separators `:` and `,`.
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}
