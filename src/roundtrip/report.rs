//! What `keel test` says: a line per migration (and the failures' details
//! under it), the summary, and the JUnit XML that GitHub, GitLab and
//! Jenkins read (one testcase per migration and phase).

use super::trip::Tally;
use super::{Outcome, Verdict};
use std::fmt::Write as _;
use std::io::{Seek, Write};

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
pub(crate) fn summary(tally: &Tally, asked: usize) -> String {
    let failed = tally.failed.len();
    let mut out = format!(
        "{} migration(s) tested: {} passed the round trip, {failed} failed, {} applied without a down to test",
        tally.tested,
        tally.tested - failed - tally.no_down,
        tally.no_down
    );
    if asked > tally.tested {
        let _ = write!(
            out,
            "; {} not reached (a failed up stops the run: later migrations build on it)",
            asked - tally.tested
        );
    }
    if !tally.failed.is_empty() {
        let _ = write!(out, "\nfailed: {}", tally.failed.join(", "));
    }
    out
}

/// The JUnit XML document, one testcase per migration and phase, written
/// as the outcomes come: the testcases go to a temporary file, and the
/// counts the document opens with are added up on the way. (Built in
/// memory, a history of a thousand migrations made a document of 0.8 MB,
/// held three times over; kept as outcomes, memory grew with each one.)
pub(crate) struct Junit {
    cases: std::io::BufWriter<std::fs::File>,
    tests: usize,
    failures: usize,
    skipped: usize,
    time: f64,
}

impl Junit {
    pub(crate) fn new() -> std::io::Result<Junit> {
        Ok(Junit {
            cases: std::io::BufWriter::new(tempfile::tempfile()?),
            tests: 0,
            failures: 0,
            skipped: 0,
            time: 0.0,
        })
    }

    /// Writes `o`'s testcases.
    pub(crate) fn add(&mut self, o: &Outcome) -> std::io::Result<()> {
        let out = &mut self.cases;
        for s in &o.steps {
            self.tests += 1;
            self.time += s.took.as_secs_f64();
            write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                xml(&o.migration),
                s.phase.name(),
                s.took.as_secs_f64()
            )?;
            match &s.verdict {
                Verdict::Passed { .. } => writeln!(out, "/>")?,
                Verdict::Skipped { reason } => {
                    self.skipped += 1;
                    write!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                        xml(reason)
                    )?
                }
                Verdict::Failed { message, diff } => {
                    self.failures += 1;
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
        Ok(())
    }

    /// The whole document, to `out` (as many times as asked).
    pub(crate) fn write_to(&mut self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let counts = format!(
            "tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\"",
            self.tests, self.failures, self.skipped, self.time
        );
        write!(
            out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"keel test\" {counts}>\n  <testsuite name=\"keel test\" {counts}>\n"
        )?;
        self.cases.flush()?;
        let cases = self.cases.get_mut();
        cases.seek(std::io::SeekFrom::Start(0))?;
        std::io::copy(cases, out)?;
        write!(out, "  </testsuite>\n</testsuites>\n")
    }
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
