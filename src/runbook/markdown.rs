//! Markdown escaping for values put into runbooks. Tera does not escape
//! `.md` output, and migration descriptions, table names and SQL are
//! untrusted text: each goes through one of these.

/// Inline text: ASCII punctuation that Markdown or GFM tables give meaning
/// to is backslash-escaped, and line breaks become spaces so a value cannot
/// start a heading, list or table row of its own.
pub(crate) fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\r' => {}
            '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Prose of keel's own with `code spans` in it (a finding's message and
/// fix): each balanced span stays code, the text around it is escaped as
/// [`inline`] escapes it, and a lone backtick is escaped too. The values
/// keel quotes inside come from migration files, so nothing in them can
/// start structure: a span is re-made by [`code`].
pub(crate) fn prose(text: &str) -> String {
    let text = text.replace(['\r', '\n'], " ");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(open) = rest.find('`') {
        out.push_str(&inline(&rest[..open]));
        let after = &rest[open + 1..];
        match after.find('`') {
            Some(close) if close > 0 => {
                out.push_str(&code(&after[..close]));
                rest = &after[close + 1..];
            }
            _ => {
                out.push_str("\\`");
                rest = after;
            }
        }
    }
    out.push_str(&inline(rest));
    out
}

/// An inline code span that survives backticks in the value.
pub(crate) fn code(text: &str) -> String {
    let text = text.replace(['\r', '\n'], " ");
    let ticks = "`".repeat(longest_run(&text, '`') + 1);
    if text.starts_with('`') || text.ends_with('`') {
        format!("{ticks} {text} {ticks}")
    } else {
        format!("{ticks}{text}{ticks}")
    }
}

/// A fenced code block whose fence is longer than any backtick run inside.
pub(crate) fn fence(text: &str, lang: &str) -> String {
    let ticks = "`".repeat((longest_run(text, '`') + 1).max(3));
    let lang: String = lang.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    format!(
        "{ticks}{lang}\n{}\n{ticks}",
        text.trim_end_matches(['\n', '\r'])
    )
}

fn longest_run(text: &str, ch: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in text.chars() {
        run = if c == ch { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_values_cannot_inject_structure() {
        assert_eq!(inline("a|b *c* [x](y)"), "a\\|b \\*c\\* \\[x\\](y)");
        assert_eq!(inline("line\n# heading"), "line \\# heading");
        assert_eq!(inline("<script>"), "\\<script\\>");
    }

    #[test]
    fn prose_keeps_its_code_spans_and_escapes_the_rest() {
        assert_eq!(
            prose("use `CREATE INDEX CONCURRENTLY` on first_name"),
            "use `CREATE INDEX CONCURRENTLY` on first\\_name"
        );
        assert_eq!(prose("a ` b"), "a \\` b");
        assert_eq!(prose("``"), "\\`\\`");
        assert_eq!(prose("x `a|b` *y*"), "x `a|b` \\*y\\*");
    }

    #[test]
    fn code_spans_and_fences_outgrow_backticks() {
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x`"), "`` `x` ``");
        assert_eq!(fence("SELECT 1;", "sql"), "```sql\nSELECT 1;\n```");
        assert_eq!(fence("x ```` y", "sql"), "`````sql\nx ```` y\n`````");
    }
}
