//! One SQL expression, checked with the PostgreSQL grammar before keel
//! pastes it into SQL of its own (a backfill's `set` values and `where`
//! filter go inside parentheses in an UPDATE).
//!
//! The text is parsed as `SELECT (<text>)`; it is one expression when that
//! parses without error as exactly one statement whose single target is the
//! parenthesised expression keel wrote, from its `(` to the very end. Text
//! that closes keel's parenthesis early (`true) OR (true`), adds a second
//! target or assignment (`upper(v)), v = ('x'`), ends in a comment that
//! swallows the `)`, or opens a quote it never closes fails one of those.

use squawk_syntax::{SourceFile, SyntaxKind, SyntaxNode};

/// Why a text is not exactly one SQL expression, for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotOneExpression(pub String);

const PREFIX: &str = "SELECT (";

/// `Ok` when `text` is exactly one SQL expression.
pub fn check(text: &str) -> Result<(), NotOneExpression> {
    let no = |why: String| Err(NotOneExpression(why));
    let text = text.trim();
    if text.is_empty() {
        return no("it is empty".into());
    }
    if squawk_lexer::tokenize(text).any(|t| t.kind == squawk_lexer::TokenKind::LineComment) {
        return no(
            "it holds a `--` comment, which would swallow the `)` keel writes after it; \
             write comments as /* … */"
                .into(),
        );
    }
    let sql = format!("{PREFIX}{text})");
    let open = PREFIX.len() - 1;
    // squawk is built not to panic; if it did, the text is refused, not run.
    let Ok((root, errors)) = std::panic::catch_unwind(|| {
        let parse = SourceFile::parse(&sql);
        (parse.syntax_node(), parse.errors())
    }) else {
        return no("keel's SQL parser failed on it; please report it".into());
    };
    if let Some(e) = errors.first() {
        let at = usize::from(e.range().start()).clamp(PREFIX.len(), PREFIX.len() + text.len());
        let column = text[..text.floor_char_boundary(at - PREFIX.len())]
            .chars()
            .count()
            + 1;
        return no(format!(
            "it does not parse as one expression ({} at character {column}), \
             or it leaves a quote, comment or parenthesis open",
            e.message()
        ));
    }
    let statements: Vec<SyntaxNode> = root.children().collect();
    if statements.len() != 1 {
        return no(format!(
            "it holds {} statements: a `;` ends the expression",
            statements.len()
        ));
    }
    // The node keel's `(` opens: it must end at keel's `)`.
    let Some(wrapped) = statements[0]
        .descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .find(|t| usize::from(t.text_range().start()) == open)
        .and_then(|t| t.parent())
    else {
        return no("it is not an expression".into());
    };
    let end = usize::from(wrapped.text_range().end());
    if end != sql.len() {
        let closed_at = end - PREFIX.len();
        let rest = text[text.floor_char_boundary(closed_at)..].trim();
        return no(format!(
            "its `)` at character {} closes the parenthesis keel puts around it, \
             so `{}` would run as SQL of its own",
            text[..text.floor_char_boundary(closed_at.saturating_sub(1))]
                .chars()
                .count()
                + 1,
            rest
        ));
    }
    if wrapped.kind() == SyntaxKind::TUPLE_EXPR {
        return no("it is a list of expressions separated by commas, not one".into());
    }
    let single_target = wrapped.parent().is_some_and(|t| {
        t.kind() == SyntaxKind::TARGET
            && t.parent().is_some_and(|list| {
                list.kind() == SyntaxKind::TARGET_LIST && list.children().count() == 1
            })
    });
    if wrapped.kind() != SyntaxKind::PAREN_EXPR || !single_target {
        return no("it is not exactly one expression".into());
    }
    if wrapped
        .descendants_with_tokens()
        .any(|e| e.kind() == SyntaxKind::POSITIONAL_PARAM)
    {
        return no(
            "it uses a `$N` parameter: keel binds its own parameters (the key range) there".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(text: &str) -> String {
        check(text).unwrap_err().0
    }

    #[test]
    fn expressions_pass() {
        for ok in [
            "upper(v)",
            "split_part(btrim(regexp_replace(name, '[[:space:]]+', ' ', 'g')), ' ', 1)",
            "first_name IS NULL AND name IS NOT NULL",
            "(SELECT max(n) FROM other WHERE other.id = items.id)",
            "CASE WHEN a > 0 THEN 'x' ELSE NULL END",
            "n * 2 /* doubled */",
            "'it''s ) fine'",
            "$$ a ) b $$",
            "\"Weird)Name\" || 'x'",
            "  n + 1  ",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn the_exploits_of_issue_10_are_refused() {
        assert!(
            why("upper(v)), v = ('overwritten'")
                .contains("closes the parenthesis keel puts around it"),
            "{}",
            why("upper(v)), v = ('overwritten'")
        );
        let w = why("true) OR (true");
        assert!(w.contains("character 5") && w.contains("`OR (true`"), "{w}");
    }

    #[test]
    fn comments_quotes_statements_and_lists_are_refused() {
        assert!(why("v -- a comment").contains("`--` comment"));
        assert!(why("'open").contains("does not parse"));
        assert!(why("v /* open").contains("does not parse"));
        assert!(why("1); DELETE FROM t; SELECT (1").contains("statements"));
        assert!(why("a, b").contains("list of expressions"));
        assert!(why("").contains("empty"));
        assert!(why("id > $1").contains("parameter"));
        assert!(why("1) FROM t WHERE (true").contains("closes the parenthesis"));
        assert!(why("SELECT 1) UNION (SELECT 2").contains("closes the parenthesis"));
    }
}
