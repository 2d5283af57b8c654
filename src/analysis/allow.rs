//! `-- keel:allow RULE[, RULE…] reason="…"` on the line above a statement
//! silences those rules for that statement; the reason is required and
//! travels with the finding into the runbook.

/// One `keel:allow` comment as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allow {
    /// The rule names it silences.
    pub rules: Vec<String>,
    /// The `reason="…"` text; `None` when missing or empty, which is itself reported.
    pub reason: Option<String>,
    /// 1-based line of the comment in the file.
    pub line: usize,
    /// 1-based column of the comment in the file.
    pub column: usize,
}

/// Reads a comment's text; `None` when it is not a keel:allow comment.
pub fn parse(comment: &str, line: usize, column: usize) -> Option<Allow> {
    let body = comment
        .trim_start_matches("--")
        .trim_start_matches("/*")
        .trim_end_matches("*/")
        .trim();
    let rest = body.strip_prefix("keel:allow")?;
    let (rules_part, reason) = match rest.find("reason") {
        Some(i) => (&rest[..i], reason_value(&rest[i + "reason".len()..])),
        None => (rest, None),
    };
    let rules = rules_part
        .split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    Some(Allow {
        rules,
        reason,
        line,
        column,
    })
}

/// `="text"` or `='text'` → `text`; empty or unquoted reasons count as none.
fn reason_value(after: &str) -> Option<String> {
    let v = after.trim_start().strip_prefix('=')?.trim_start();
    let quote = v.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let inner = &v[1..];
    let end = inner.find(quote)?;
    let reason = inner[..end].trim();
    (!reason.is_empty()).then(|| reason.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rules_and_reason() {
        let a = parse(
            "-- keel:allow drop-column, rename-column reason=\"unused since v2.3\"",
            4,
            1,
        )
        .unwrap();
        assert_eq!(a.rules, ["drop-column", "rename-column"]);
        assert_eq!(a.reason.as_deref(), Some("unused since v2.3"));
    }

    #[test]
    fn reason_is_required_and_not_empty() {
        assert_eq!(
            parse("-- keel:allow drop-table", 1, 1).unwrap().reason,
            None
        );
        assert_eq!(
            parse("-- keel:allow drop-table reason=\"\"", 1, 1)
                .unwrap()
                .reason,
            None
        );
        assert!(parse("-- plain comment", 1, 1).is_none());
    }
}
