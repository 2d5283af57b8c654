//! Reading a rendered runbook back and writing an execution into it.
//!
//! A runbook is untrusted input by the time `execute` reads it (people edit
//! files in pull requests), so it is parsed with a real CommonMark/GFM
//! parser, and edits are made in place at the byte offsets the parser
//! reports: the rest of the document stays byte for byte as reviewed.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use std::ops::Range;

/// One `- [ ] …` item of the pre-migration checklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChecklistItem {
    /// From `<!-- keel:check ID -->`; `None` for an item a person added.
    pub(crate) id: Option<String>,
    pub(crate) text: String,
    pub(crate) checked: bool,
    /// Byte range of the `[ ]` / `[x]` marker.
    pub(crate) marker: Range<usize>,
}

impl ChecklistItem {
    /// The item's id, when it has one.
    pub(crate) fn check_id(&self) -> Option<super::check_id::CheckId> {
        self.id.as_deref().map(super::check_id::CheckId::parse)
    }
}

pub(crate) const RECORDS_MARKER: &str = "<!-- keel:records -->";

/// Every task-list item of the document, in order.
pub(crate) fn checklist(markdown: &str) -> Vec<ChecklistItem> {
    let mut items = Vec::new();
    let mut current: Option<ChecklistItem> = None;
    let mut depth = 0usize;
    let parser = Parser::new_ext(markdown, Options::ENABLE_TASKLISTS | Options::ENABLE_TABLES)
        .into_offset_iter();
    for (event, range) in parser {
        match event {
            Event::Start(Tag::Item) => depth += 1,
            Event::End(TagEnd::Item) => {
                depth = depth.saturating_sub(1);
                if depth == 0
                    && let Some(mut item) = current.take()
                {
                    item.text = item.text.split_whitespace().collect::<Vec<_>>().join(" ");
                    items.push(item);
                }
            }
            Event::TaskListMarker(checked) if depth == 1 => {
                // The reported range covers `[ ]`; find it exactly so an
                // edit never touches anything else.
                let slice = &markdown[range.clone()];
                let at = slice.find('[').map(|i| range.start + i);
                if let Some(start) =
                    at.filter(|s| markdown.get(*s..s + 3).is_some_and(|m| m.ends_with(']')))
                {
                    current = Some(ChecklistItem {
                        id: None,
                        text: String::new(),
                        checked,
                        marker: start..start + 3,
                    });
                }
            }
            Event::InlineHtml(html) | Event::Html(html) => {
                if let Some(item) = current.as_mut()
                    && let Some(id) = check_id(&html)
                {
                    item.id = Some(id);
                }
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some(item) = current.as_mut() {
                    item.text.push_str(&t);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some(item) = current.as_mut() {
                    item.text.push(' ');
                }
            }
            _ => {}
        }
    }
    items
}

fn check_id(html: &str) -> Option<String> {
    let id = html
        .trim()
        .strip_prefix("<!-- keel:check ")?
        .strip_suffix("-->")?
        .trim();
    (!id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then(|| id.to_string())
}

/// Ticks the items whose ids are given; nothing else changes.
pub(crate) fn tick(markdown: &str, ids: &[&str]) -> String {
    let mut out = markdown.to_string();
    let mut edits = ticks(markdown, ids);
    edits.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    for (range, text) in edits {
        out.replace_range(range, &text);
    }
    out
}

fn ticks(markdown: &str, ids: &[&str]) -> Vec<(Range<usize>, String)> {
    checklist(markdown)
        .into_iter()
        .filter(|item| !item.checked && item.id.as_deref().is_some_and(|id| ids.contains(&id)))
        .map(|item| (item.marker, "[x]".to_string()))
        .collect()
}

/// Ticks the items whose ids are given and adds `record` (Markdown) under
/// the "Execution records" marker, newest last. Returns the new document.
pub(crate) fn annotate(markdown: &str, tick: &[&str], record: &str) -> String {
    let mut edits = ticks(markdown, tick);
    // Records go at the end of the document, which is the "Execution
    // records" section; a runbook that lost its marker gets the section back.
    let end = markdown.len();
    let sep = if markdown.ends_with('\n') { "" } else { "\n" };
    let heading = if markdown.contains(RECORDS_MARKER) {
        String::new()
    } else {
        format!("\n## Execution records\n\n{RECORDS_MARKER}\n")
    };
    edits.push((end..end, format!("{sep}{heading}\n{}\n", record.trim_end())));
    edits.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    let mut out = markdown.to_string();
    for (range, text) in edits {
        out.replace_range(range, &text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# R\n\n- [ ] Backup verified *(keel checks)* <!-- keel:check backup-verified -->\n- [ ] Rollback `tested` <!-- keel:check rollback-tested -->\n- [x] Already done <!-- keel:check done -->\n- [ ] Added by a reviewer\n\n```md\n- [ ] not a task <!-- keel:check fake -->\n```\n\n## Execution records\n\n<!-- keel:records -->\n";

    #[test]
    fn reads_items_with_ids_and_ignores_code_blocks() {
        let items = checklist(DOC);
        let ids: Vec<Option<&str>> = items.iter().map(|i| i.id.as_deref()).collect();
        assert_eq!(
            ids,
            [
                Some("backup-verified"),
                Some("rollback-tested"),
                Some("done"),
                None
            ]
        );
        assert_eq!(items[1].text, "Rollback tested");
        assert!(items[2].checked);
        assert_eq!(&DOC[items[0].marker.clone()], "[ ]");
    }

    #[test]
    fn ticks_in_place_and_appends_the_record() {
        let out = annotate(
            DOC,
            &["backup-verified", "fake"],
            "### production, 2026-01-01\n\nok",
        );
        assert!(out.contains("- [x] Backup verified"));
        assert!(out.contains("- [ ] Rollback"));
        assert!(
            out.contains("- [ ] not a task"),
            "code blocks are never edited"
        );
        assert!(
            out.ends_with("<!-- keel:records -->\n\n### production, 2026-01-01\n\nok\n"),
            "{out}"
        );
        // Everything else is unchanged, byte for byte.
        assert_eq!(
            out.len(),
            DOC.len() + "\n### production, 2026-01-01\n\nok\n".len()
        );
        let second = annotate(&out, &[], "### staging\n\nok");
        assert!(second.find("### production").unwrap() < second.find("### staging").unwrap());
    }
}
