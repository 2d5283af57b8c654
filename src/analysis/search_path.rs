//! `SET search_path` inside a migration. An unqualified table name means
//! whatever the search path in effect finds first, so the backup of the
//! data a statement destroys must be taken from the table the server will
//! use at that point of the file, not from the one the session would find
//! before the migration.

pub(crate) use crate::db::SearchPath;
use squawk_lexer::{TokenKind, tokenize};

/// How a statement changes the search path: `None` when it does not,
/// `Some(None)` when it goes back to the session's (`RESET`, `TO DEFAULT`),
/// `Some(Some(path))` when it sets one.
pub(crate) fn change(sql: &str) -> Option<Option<SearchPath>> {
    let mut offset = 0usize;
    let mut tokens: Vec<(TokenKind, usize, &str)> = Vec::new();
    for t in tokenize(sql) {
        let len = t.len as usize;
        let text = &sql[offset..offset + len];
        if !matches!(
            t.kind,
            TokenKind::Whitespace | TokenKind::LineComment | TokenKind::BlockComment { .. }
        ) {
            tokens.push((t.kind, offset, text));
        }
        offset += len;
        if tokens.len() > 16 {
            break;
        }
    }
    let word = |i: usize| {
        tokens
            .get(i)
            .map(|(_, _, t)| t.trim_matches('"').to_ascii_lowercase())
            .unwrap_or_default()
    };
    match word(0).as_str() {
        "set" => {
            let at = if matches!(word(1).as_str(), "session" | "local") {
                2
            } else {
                1
            };
            if word(at) != "search_path" || !matches!(word(at + 1).as_str(), "to" | "=") {
                return None;
            }
            let start = tokens.get(at + 2)?.1;
            let list = sql[start..].trim().trim_end_matches(';').trim();
            if list.eq_ignore_ascii_case("default") {
                Some(None)
            } else {
                Some(Some(SearchPath::List(list.to_string())))
            }
        }
        "reset" if matches!(word(1).as_str(), "search_path" | "all") => Some(None),
        "select" => {
            let call = (1..tokens.len()).find(|&i| word(i) == "set_config")?;
            let args: Vec<&(TokenKind, usize, &str)> = tokens[call + 1..].iter().collect();
            let literal = |i: usize| match args.get(i) {
                Some((TokenKind::Literal { .. }, _, text)) => string(text),
                _ => None,
            };
            if word(call + 1) != "(" || !literal(1)?.eq_ignore_ascii_case("search_path") {
                return None;
            }
            Some(Some(SearchPath::Config(literal(3)?)))
        }
        _ => None,
    }
}

/// The value of a plain `'…'` string literal.
fn string(text: &str) -> Option<String> {
    let inner = text.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("''", "'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_ways_a_migration_sets_it() {
        let list = |s: &str| Some(Some(SearchPath::List(s.into())));
        assert_eq!(
            change("SET search_path = other, public"),
            list("other, public")
        );
        assert_eq!(
            change("set LOCAL search_path TO \"My Schema\", public;"),
            list("\"My Schema\", public")
        );
        assert_eq!(change("SET search_path TO DEFAULT"), Some(None));
        assert_eq!(change("RESET search_path"), Some(None));
        assert_eq!(
            change("SELECT pg_catalog.set_config('search_path', '', false)"),
            Some(Some(SearchPath::Config(String::new())))
        );
        assert_eq!(
            change("select set_config('search_path', 'a, b', true)"),
            Some(Some(SearchPath::Config("a, b".into())))
        );
        assert_eq!(change("SET lock_timeout = '1s'"), None);
        assert_eq!(change("SELECT set_config('work_mem', '1MB', false)"), None);
        assert_eq!(change("ALTER TABLE t DROP COLUMN search_path"), None);
    }
}
