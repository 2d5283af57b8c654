//! What `keel test` says: a line per migration (and the failures' details
//! under it), the summary, and the JUnit XML that GitHub, GitLab and
//! Jenkins read (one testcase per migration and phase).

use super::{Outcome, Verdict};
use std::fmt::Write;

/// The line (and, for a failure, the lines under it) of one migration.
pub(crate) fn text(o: &Outcome) -> String {
    let mut out = String::new();
    let mark = if o.failed() { "FAIL" } else { "ok  " };
    let phases: Vec<String> = o
        .steps
        .iter()
        .map(|s| match &s.verdict {
            Verdict::Passed { .. } => format!("{} {}", s.phase.name(), ms(s)),
            Verdict::Failed { .. } => format!("{} FAILED", s.phase.name()),
            Verdict::Skipped { reason } => format!("{} skipped ({reason})", s.phase.name()),
        })
        .collect();
    let _ = writeln!(
        out,
        "{mark}  {} ({}): {}",
        o.migration,
        o.reversibility,
        phases.join(" · ")
    );
    for row in &o.rows {
        let _ = writeln!(out, "      rows: {row}");
    }
    for s in &o.steps {
        if let Verdict::Failed { message, diff } = &s.verdict {
            let _ = writeln!(out, "      {}: {message}", s.phase.name());
            for line in diff
                .iter()
                .flat_map(|d| d.to_string().lines().map(String::from).collect::<Vec<_>>())
            {
                let _ = writeln!(out, "        {line}");
            }
            let _ = writeln!(out, "      fix: {}", fix(s.phase));
        }
    }
    out
}

fn ms(s: &super::Step) -> String {
    format!("{} ms", s.took.as_millis())
}

/// What to do about a failed phase.
fn fix(phase: super::Phase) -> &'static str {
    use super::Phase::*;
    match phase {
        Up => "up.sql fails on a database built by the migrations before it: correct it",
        Down => {
            "down.sql fails after up.sql: correct it, or declare `reversibility = \"irreversible\"` in migration.toml"
        }
        Schema => {
            "make down.sql undo exactly what up.sql does (the `-` lines are before up, the `+` lines after down)"
        }
        Data => {
            "make down.sql put back the rows up.sql changes, or declare `reversibility = \"partial\"` so that keel restores its backup of them on down (a full migration's down.sql must do it alone)"
        }
        UpAgain => {
            "up.sql must run again after down.sql and build the same schema: down.sql leaves something behind that up.sql trips on or works around"
        }
    }
}

/// The closing lines: how many passed, failed, were only applied, and
/// how many were not reached.
pub(crate) fn summary(outcomes: &[Outcome], asked: usize) -> String {
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.failed())
        .map(|o| o.migration.as_str())
        .collect();
    let no_down = outcomes
        .iter()
        .filter(|o| {
            !o.failed()
                && o.steps
                    .iter()
                    .any(|s| matches!(s.verdict, Verdict::Skipped { .. }))
        })
        .count();
    let mut out = format!(
        "{} migration(s) tested: {} passed the round trip, {} failed, {no_down} applied without a down to test",
        outcomes.len(),
        outcomes.len() - failed.len() - no_down,
        failed.len()
    );
    if asked > outcomes.len() {
        let _ = write!(
            out,
            "; {} not reached (a failed up stops the run: later migrations build on it)",
            asked - outcomes.len()
        );
    }
    if !failed.is_empty() {
        let _ = write!(out, "\nfailed: {}", failed.join(", "));
    }
    out
}

/// Writes the JUnit XML document: a testsuite of one testcase per
/// migration and phase. Written as it goes, not built first: a history of
/// a thousand migrations made a document of 0.8 MB, held three times over
/// while it was put together.
pub(crate) fn junit(outcomes: &[Outcome], out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let steps = || outcomes.iter().flat_map(|o| &o.steps);
    let n = steps().count();
    let failures = steps()
        .filter(|s| matches!(s.verdict, Verdict::Failed { .. }))
        .count();
    let skipped = steps()
        .filter(|s| matches!(s.verdict, Verdict::Skipped { .. }))
        .count();
    let time: f64 = steps().map(|s| s.took.as_secs_f64()).sum();
    let counts = format!(
        "tests=\"{n}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time:.3}\""
    );
    write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"keel test\" {counts}>\n  <testsuite name=\"keel test\" {counts}>\n"
    )?;
    for o in outcomes {
        for s in &o.steps {
            write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                xml(&o.migration),
                s.phase.name(),
                s.took.as_secs_f64()
            )?;
            match &s.verdict {
                Verdict::Passed { .. } => writeln!(out, "/>")?,
                Verdict::Skipped { reason } => write!(
                    out,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                    xml(reason)
                )?,
                Verdict::Failed { message, diff } => {
                    let body = match diff {
                        Some(d) => format!("{message}\n{d}\nfix: {}", fix(s.phase)),
                        None => format!("{message}\nfix: {}", fix(s.phase)),
                    };
                    write!(
                        out,
                        ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n",
                        xml(message),
                        s.phase.name(),
                        xml(&body)
                    )?;
                }
            }
        }
    }
    write!(out, "  </testsuite>\n</testsuites>\n")
}

/// Text as XML attribute or element content: the five escapes, and
/// characters XML 1.0 cannot hold at all replaced.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_what_would_break_the_document() {
        assert_eq!(
            xml("a<b & \"c\" 'd'>\u{1}"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;\u{fffd}"
        );
    }
}
