use std::io::{IsTerminal, Write};
use std::time::Duration;

/// Where things are printed: data on stdout, progress and notes on stderr.
/// With `--format json` stdout carries exactly one JSON document.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub(crate) quiet: bool,
    pub(crate) json: bool,
}

impl Output {
    pub(crate) fn new(quiet: bool, json: bool) -> Output {
        Output { quiet, json }
    }

    /// A progress or status line on stderr, unless `-q`. A terminal that
    /// went away (SIGHUP, a dropped SSH session) makes the write fail; the
    /// work goes on regardless (`eprintln!` would panic).
    pub(crate) fn progress(&self, line: &str) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }

    /// A line on stderr even under `-q`: something the user must act on,
    /// such as a run that stopped short of the last migration on purpose.
    pub(crate) fn notice(&self, line: &str) {
        let _ = writeln!(std::io::stderr(), "{line}");
    }

    pub(crate) fn detail(&self, verbose: bool, line: &str) {
        if verbose && !self.quiet {
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }

    /// Data for the user on stdout (text mode). With `--format json`
    /// stdout is the document's alone, so text goes to stderr.
    pub(crate) fn data(&self, text: &str) {
        if self.json {
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(text.as_bytes());
            if !text.ends_with('\n') {
                let _ = stderr.write_all(b"\n");
            }
            return;
        }
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        if !text.ends_with('\n') {
            let _ = stdout.write_all(b"\n");
        }
    }

    pub(crate) fn stderr_is_terminal() -> bool {
        std::io::stderr().is_terminal()
    }
}

/// The command's one JSON (or SARIF) document on stdout.
pub(crate) fn print_json(value: &serde_json::Value) {
    let mut stdout = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut stdout, value);
    let _ = stdout.write_all(b"\n");
}

/// Colour on stderr: only on a terminal, and never with `NO_COLOR` set.
pub(crate) fn colour() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// A duration for people: `850 ms`, `2.4 s`, `3 min 5 s`.
pub(crate) fn millis(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}
