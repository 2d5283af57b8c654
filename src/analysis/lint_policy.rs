//! keel.toml's `[lint]`: rules a project does not want reported, rules it
//! wants louder or quieter, and rules it turns off for some paths (an old
//! history adopted from another tool, a vendored folder). Applied to a
//! report after the rules ran, so every output format and the exit code
//! see the same findings.

use super::finding::Severity;
use super::lint::LintReport;

/// What `[lint]` says, with every rule name checked.
#[derive(Debug, Clone, Default)]
pub(crate) struct LintPolicy {
    disabled: Vec<&'static str>,
    levels: Vec<(&'static str, Severity)>,
    /// Path prefixes and the rules off under each.
    paths: Vec<(String, Vec<&'static str>)>,
}

impl LintPolicy {
    /// From keel.toml's lists; an unknown rule or level is an error that
    /// names it, for the caller to point at keel.toml.
    pub(crate) fn new(
        disable: &[String],
        severity: &[(String, String)],
        paths: &[(String, Vec<String>)],
    ) -> Result<LintPolicy, String> {
        let rules = |names: &[String]| -> Result<Vec<&'static str>, String> {
            names.iter().map(|n| rule(n)).collect()
        };
        let levels = severity
            .iter()
            .map(|(name, level)| Ok((rule(name)?, level_of(name, level)?)))
            .collect::<Result<_, String>>()?;
        let paths = paths
            .iter()
            .map(|(prefix, names)| Ok((prefix.clone(), rules(names)?)))
            .collect::<Result<_, String>>()?;
        Ok(LintPolicy {
            disabled: rules(disable)?,
            levels,
            paths,
        })
    }

    /// Drops the findings of rules turned off (everywhere, or under their
    /// file's path) and sets the levels asked for.
    pub(crate) fn apply(&self, report: &mut LintReport) {
        report.findings.retain(|f| {
            !self.disabled.contains(&f.rule)
                && !self.paths.iter().any(|(prefix, off)| {
                    f.file.starts_with(prefix.as_str()) && off.contains(&f.rule)
                })
        });
        for f in &mut report.findings {
            if let Some((_, level)) = self.levels.iter().find(|(r, _)| *r == f.rule) {
                f.severity = *level;
            }
        }
    }
}

fn rule(name: &str) -> Result<&'static str, String> {
    super::rules::find(name).map(|r| r.id).ok_or_else(|| {
        format!("`{name}` is not a keel lint rule (docs/rules/README.md lists them)")
    })
}

fn level_of(name: &str, level: &str) -> Result<Severity, String> {
    match level {
        "error" => Ok(Severity::Error),
        "warning" => Ok(Severity::Warning),
        "info" => Ok(Severity::Info),
        other => Err(format!(
            "`{other}` is not a level for `{name}`: use \"error\", \"warning\" or \"info\" (or list the rule in `disable`)"
        )),
    }
}
