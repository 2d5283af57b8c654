//! A lint finding: what is wrong, where, why it hurts, and what to write.

use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    Info,
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Finding {
    pub(crate) rule: &'static str,
    pub(crate) severity: Severity,
    pub(crate) file: String,
    pub(crate) line: usize,
    pub(crate) column: usize,
    /// The statement's SQL (empty for findings about files).
    pub(crate) statement: String,
    /// What is wrong and why it hurts in production.
    pub(crate) message: String,
    /// What to write instead.
    pub(crate) suggestion: String,
    /// The reason of the `keel:allow` comment that silenced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) allowed: Option<String>,
}

impl Finding {
    pub(crate) fn is_active(&self) -> bool {
        self.allowed.is_none()
    }

    /// The text format: `file:line:col: severity[rule] message`, the
    /// statement's first line, and the fix.
    pub(crate) fn render(&self) -> String {
        let mut out = format!(
            "{}:{}:{}: {}[{}] {}\n",
            self.file, self.line, self.column, self.severity, self.rule, self.message
        );
        if let Some(first) = self.statement.lines().next() {
            let more = if self.statement.lines().nth(1).is_some() {
                " …"
            } else {
                ""
            };
            let first: String = first.chars().take(100).collect();
            out.push_str(&format!("    {first}{more}\n"));
        }
        if !self.suggestion.is_empty() {
            out.push_str(&format!("    fix: {}\n", self.suggestion));
        }
        out
    }
}

/// Stable order for output: by file, position, then rule.
pub(crate) fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.rule).cmp(&(&b.file, b.line, b.column, b.rule))
    });
}
