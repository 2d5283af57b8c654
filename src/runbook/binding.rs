//! What of a runbook is bound by the SHA-256 on its first line.
//!
//! A runbook has two parts: the reviewed body (everything from the second
//! line through the `<!-- keel:records -->` line) and the execution records
//! that `execute` appends below it. The body is reviewed in a pull request
//! and must not change afterwards, except for the checklist boxes that
//! `execute` ticks; the records grow with every run. [`reviewed`] is the
//! body with every box unticked and line endings as LF: that is what
//! [`digest`] hashes, together with the migration id and checksum of the
//! first line, so neither a changed body nor a stale body under an edited
//! first line goes unnoticed.

use super::annotate::{RECORDS_MARKER, checklist};
use pulldown_cmark::{Event, Options, Parser};

/// The reviewed body of a whole runbook file (its first line, keel's
/// marker, left out): unticked, LF line endings, cut after the records
/// marker. Also the text after it (the execution records).
pub fn split(file: &str) -> (String, String) {
    let text = file.replace("\r\n", "\n");
    let body = match text.split_once('\n') {
        Some((first, rest)) if first.starts_with(super::render::MARKER_PREFIX) => rest,
        _ => text.as_str(),
    };
    let cut = records_marker_end(body).unwrap_or(body.len());
    let (reviewed, records) = body.split_at(cut);
    (untick(reviewed), records.to_string())
}

/// The reviewed body of a whole runbook file, see [`split`].
pub fn reviewed(file: &str) -> String {
    split(file).0
}

/// The SHA-256 that binds a reviewed body to the migration it describes.
pub fn digest(migration: &str, checksum: &str, reviewed: &str) -> String {
    crate::digest::sha256_bytes(
        format!("keel-runbook 1\nmigration={migration}\nchecksum={checksum}\n\n{reviewed}")
            .as_bytes(),
    )
}

/// The execution-record sections after the records marker, each from its
/// `### ` heading to the next, trailing blank lines removed.
pub fn sections(file: &str) -> Vec<String> {
    let (_, records) = split(file);
    let mut out: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for line in records.split_inclusive('\n') {
        if line.starts_with("### ") {
            out.extend(current.take());
            current = Some(String::new());
        }
        if let Some(c) = current.as_mut() {
            c.push_str(line);
        }
    }
    out.extend(current);
    out.into_iter().map(|s| s.trim_end().to_string()).collect()
}

/// The SHA-256 a record carries of the section its run appended.
pub fn section_digest(section: &str) -> String {
    crate::digest::sha256_bytes(section.replace("\r\n", "\n").trim_end().as_bytes())
}

/// The first line where two reviewed bodies differ: its number in the
/// runbook file (the marker is line 1) and both lines, shortened.
pub fn first_difference(file_body: &str, expected_body: &str) -> Option<(usize, String, String)> {
    let mut a = file_body.lines();
    let mut b = expected_body.lines();
    let mut n = 1;
    loop {
        n += 1;
        match (a.next(), b.next()) {
            (None, None) => return None,
            (x, y) if x == y => continue,
            (x, y) => {
                // Long lines are shown around where they start to differ.
                let at = match (x, y) {
                    (Some(x), Some(y)) => {
                        x.chars().zip(y.chars()).take_while(|(p, q)| p == q).count()
                    }
                    _ => 0,
                };
                return Some((n, excerpt(x, at), excerpt(y, at)));
            }
        }
    }
}

fn excerpt(line: Option<&str>, at: usize) -> String {
    const WIDTH: usize = 80;
    let Some(line) = line else {
        return "(end of file)".into();
    };
    let chars: Vec<char> = line.chars().collect();
    let start = at
        .saturating_sub(WIDTH / 2)
        .min(chars.len().saturating_sub(WIDTH));
    let end = (start + WIDTH).min(chars.len());
    format!(
        "{}{}{}",
        if start > 0 { "…" } else { "" },
        chars[start..end].iter().collect::<String>(),
        if end < chars.len() { "…" } else { "" }
    )
}

/// Where the line holding the records marker ends, when the marker is
/// Markdown's own HTML (not text in a code block, where SQL could put it).
fn records_marker_end(body: &str) -> Option<usize> {
    let parser = Parser::new_ext(body, Options::ENABLE_TASKLISTS | Options::ENABLE_TABLES)
        .into_offset_iter();
    for (event, range) in parser {
        if let Event::Html(html) | Event::InlineHtml(html) = event
            && html.trim() == RECORDS_MARKER
        {
            return Some(
                body[range.start..]
                    .find('\n')
                    .map_or(body.len(), |i| range.start + i + 1),
            );
        }
    }
    None
}

/// Every checklist box unticked: ticks are what `execute` adds.
fn untick(reviewed: &str) -> String {
    let mut out = reviewed.to_string();
    for item in checklist(reviewed) {
        if item.checked {
            out.replace_range(item.marker, "[ ]");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "<!-- keel:runbook migration=1_x checksum=c body=b -->\n# R\n\n- [ ] A <!-- keel:check a -->\n\n```sql\n<!-- keel:records -->\n```\n\n## Execution records\n\n<!-- keel:records -->\n";

    #[test]
    fn ticks_and_appended_records_do_not_change_the_reviewed_body() {
        let body = reviewed(DOC);
        assert!(body.starts_with("# R\n"), "{body}");
        assert!(body.ends_with("<!-- keel:records -->\n"), "{body}");
        let run = crate::runbook::annotate::annotate(DOC, &["a"], "### prod: applied\n\n| x |");
        assert!(run.contains("- [x] A"));
        assert_eq!(reviewed(&run), body);
        assert_eq!(sections(&run), ["### prod: applied\n\n| x |"]);
        let second = crate::runbook::annotate::annotate(&run, &[], "### staging: applied");
        assert_eq!(sections(&second).len(), 2);
        assert_eq!(reviewed(&second.replace('\n', "\r\n")), body);
    }

    #[test]
    fn the_marker_inside_sql_does_not_end_the_body() {
        // The fenced copy of the marker is SQL text, so an edit after it
        // (but before the real marker) changes the body.
        let edited = DOC.replace("## Execution records", "## Execution records (edited)");
        assert_ne!(reviewed(&edited), reviewed(DOC));
    }

    #[test]
    fn the_digest_binds_id_and_checksum() {
        let body = reviewed(DOC);
        assert_ne!(digest("1_x", "c", &body), digest("1_x", "d", &body));
        assert_ne!(digest("1_x", "c", &body), digest("2_x", "c", &body));
        assert_eq!(
            first_difference("a\nb\n", "a\nc\n"),
            Some((3, "b".into(), "c".into()))
        );
    }
}
