//! The SQL inside a `DO $$ … $$` block. To the parser the body is one
//! string, but it runs at once, as one atomic statement: a `CREATE INDEX`
//! in it blocks writes like any other, a "batched" `UPDATE` loop is still
//! one transaction, and `CREATE INDEX CONCURRENTLY` cannot run in it at
//! all. Projects wrap DDL in DO blocks for `IF NOT EXISTS` logic, so the
//! statements of the body are found and classified where they stand in
//! the file (PL/pgSQL's own statements, such as `IF … THEN`, `RAISE` or
//! `PERFORM`, are not SQL that changes the schema and are skipped).
//!
//! Function bodies (`CREATE FUNCTION … AS $$ … $$`) stay opaque: they run
//! when called, not when the migration runs.

use squawk_lexer::{LiteralKind, TokenKind, tokenize};

/// The SQL commands found inside a body: the ones that change schema or
/// data, which the rules judge.
const COMMANDS: [&str; 13] = [
    "alter", "cluster", "comment", "create", "delete", "drop", "grant", "insert", "lock",
    "reindex", "revoke", "truncate", "update",
];

/// Control words after which a new statement starts.
const OPENERS: [&str; 5] = ["then", "else", "loop", "begin", "declare"];

/// For a `DO` statement `sql` that starts at byte `at` of the file, the
/// byte ranges (in the file) of the SQL statements its body runs: each
/// from its first word to its `;` (excluded), and the text of a plain
/// `EXECUTE '…'` literal.
/// Each with whether it stands inside a `LOOP`.
pub(super) fn statements(sql: &str, at: usize) -> Vec<(usize, usize, bool)> {
    // Every statement of a file comes here: most are not DO blocks, and a
    // look at the first word saves lexing them.
    let is_do = sql.get(..2).is_some_and(|w| w.eq_ignore_ascii_case("do"))
        && sql[2..].starts_with(|c: char| c.is_whitespace() || c == '$');
    if !is_do {
        return Vec::new();
    }
    let Some((body_start, body_end)) = body(sql) else {
        return Vec::new();
    };
    let body = &sql[body_start..body_end];
    let mut out = Vec::new();
    let mut loops = 0usize;
    for (from, to) in pieces(body) {
        let piece = &body[from..to];
        let words: Vec<String> = piece
            .split_whitespace()
            .map(str::to_ascii_lowercase)
            .collect();
        if words.first().is_some_and(|w| w == "end") && words.get(1).is_some_and(|w| w == "loop") {
            loops = loops.saturating_sub(1);
            continue;
        }
        // `… LOOP` opens a loop its statement is the first of.
        loops += words.iter().filter(|w| *w == "loop").count();
        if let Some((s, e)) = command(piece) {
            let base = at + body_start + from;
            out.push((base + s, base + e, loops > 0));
        }
    }
    out
}

/// The body of `DO [LANGUAGE plpgsql] $tag$ … $tag$`: the range between
/// the quotes. `None` for any other statement, or another language.
fn body(sql: &str) -> Option<(usize, usize)> {
    let mut at = 0;
    let mut words = Vec::new();
    for t in tokenize(sql) {
        let text = &sql[at..at + t.len as usize];
        let start = at;
        at += t.len as usize;
        match t.kind {
            TokenKind::Whitespace | TokenKind::LineComment | TokenKind::BlockComment { .. } => {}
            TokenKind::Ident => words.push(text.to_ascii_lowercase()),
            TokenKind::Literal {
                kind: LiteralKind::DollarQuotedString { terminated: true },
            } => {
                let is_do = words.first().is_some_and(|w| w == "do");
                let language = words
                    .iter()
                    .position(|w| w == "language")
                    .and_then(|i| words.get(i + 1));
                if !is_do || language.is_some_and(|l| l != "plpgsql") {
                    return None;
                }
                let tag = text[1..].find('$')? + 2;
                return Some((start + tag, start + text.len() - tag));
            }
            _ => return None,
        }
    }
    None
}

/// The body cut at its top-level `;`s (outside strings, comments and
/// parentheses): byte ranges of each piece, `;` excluded.
fn pieces(body: &str) -> Vec<(usize, usize)> {
    let (mut out, mut at, mut from, mut depth) = (Vec::new(), 0, 0, 0usize);
    for t in tokenize(body) {
        match t.kind {
            TokenKind::OpenParen => depth += 1,
            TokenKind::CloseParen => depth = depth.saturating_sub(1),
            TokenKind::Semi if depth == 0 => {
                out.push((from, at));
                from = at + 1;
            }
            _ => {}
        }
        at += t.len as usize;
    }
    if !body[from..].trim().is_empty() {
        out.push((from, body.len()));
    }
    out
}

/// In one piece of a body, the statement it runs after its control words
/// (`IF … THEN`, `ELSE`, `LOOP`, `BEGIN`…): its range in the piece when it
/// is one of [`COMMANDS`], or the SQL of `EXECUTE 'literal'`.
fn command(piece: &str) -> Option<(usize, usize)> {
    let mut at = 0;
    let mut depth = 0usize;
    // Each significant top-level token: (start, end, lower-case word).
    let mut tokens: Vec<(usize, usize, Option<String>, TokenKind)> = Vec::new();
    for t in tokenize(piece) {
        let (start, end) = (at, at + t.len as usize);
        at = end;
        match t.kind {
            TokenKind::Whitespace | TokenKind::LineComment | TokenKind::BlockComment { .. } => {
                continue;
            }
            TokenKind::OpenParen => depth += 1,
            TokenKind::CloseParen => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth == 0 || t.kind == TokenKind::OpenParen {
            let word = (t.kind == TokenKind::Ident).then(|| piece[start..end].to_ascii_lowercase());
            tokens.push((start, end, word, t.kind));
        }
    }
    let first = tokens
        .iter()
        .rposition(|(_, _, w, _)| w.as_deref().is_some_and(|w| OPENERS.contains(&w)))
        .map_or(0, |i| i + 1);
    let (start, _, word, _) = tokens.get(first)?;
    match word.as_deref()? {
        // PL/pgSQL's `RETURNING … INTO var`: the SQL ends before the INTO.
        "insert" | "update" | "delete" => {
            let words = || {
                tokens[first..]
                    .iter()
                    .filter_map(|(s, _, w, _)| Some((*s, w.as_deref()?)))
            };
            let returning = words().find(|(_, w)| *w == "returning").map(|(s, _)| s);
            let into = returning.and_then(|r| words().find(|(s, w)| *s > r && *w == "into"));
            let end = into.map_or(piece, |(s, _)| &piece[..s]).trim_end().len();
            Some((*start, end))
        }
        w if COMMANDS.contains(&w) => Some((*start, piece.trim_end().len())),
        "execute" => match tokens.get(first + 1..) {
            // One plain literal and nothing after it: its text is the SQL.
            Some(
                [
                    (
                        s,
                        e,
                        None,
                        TokenKind::Literal {
                            kind: LiteralKind::Str { terminated: true },
                        },
                    ),
                ],
            ) if !piece[*s..*e].contains("''") && piece[*s..].starts_with('\'') => {
                Some((s + 1, e - 1))
            }
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(sql: &str) -> Vec<&str> {
        statements(sql, 0)
            .into_iter()
            .map(|(s, e, _)| &sql[s..e])
            .collect()
    }

    #[test]
    fn the_statements_of_a_body_through_its_guards() {
        let sql = "DO $$\nBEGIN\n  IF NOT EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'i') THEN\n    CREATE INDEX i ON t (a);\n  END IF;\n  ALTER TABLE t RENAME COLUMN a TO b;\n  RAISE NOTICE 'done';\n  EXECUTE 'DROP INDEX old_i';\nEXCEPTION WHEN others THEN NULL;\nEND\n$$";
        assert_eq!(
            found(sql),
            [
                "CREATE INDEX i ON t (a)",
                "ALTER TABLE t RENAME COLUMN a TO b",
                "DROP INDEX old_i"
            ]
        );
    }

    #[test]
    fn plpgsql_into_after_returning_is_not_sql() {
        assert_eq!(
            found(
                "DO $$ DECLARE x int; BEGIN INSERT INTO t (a) VALUES (1) RETURNING id INTO x; \
                 UPDATE t SET a = 2 WHERE id = x; END $$"
            ),
            [
                "INSERT INTO t (a) VALUES (1) RETURNING id",
                "UPDATE t SET a = 2 WHERE id = x"
            ]
        );
    }

    #[test]
    fn a_loop_is_one_statement_each_time_round() {
        let sql = "DO $body$ DECLARE n int; BEGIN LOOP UPDATE t SET a = 1 WHERE id IN (SELECT id FROM t WHERE a IS NULL LIMIT 1000); GET DIAGNOSTICS n = ROW_COUNT; EXIT WHEN n = 0; END LOOP; END $body$";
        assert_eq!(
            found(sql),
            ["UPDATE t SET a = 1 WHERE id IN (SELECT id FROM t WHERE a IS NULL LIMIT 1000)"]
        );
        assert!(statements(sql, 0)[0].2, "in the loop");
        let after = "DO $$ BEGIN LOOP EXIT; END LOOP; DROP TABLE t; END $$";
        assert!(!statements(after, 0)[0].2, "after the loop");
    }

    #[test]
    fn only_do_blocks_in_plpgsql() {
        assert!(
            found(
                "CREATE FUNCTION f() RETURNS void AS $$ BEGIN DROP TABLE t; END $$ LANGUAGE plpgsql"
            )
            .is_empty()
        );
        assert!(found("DO LANGUAGE plperl $$ 1; $$").is_empty());
        assert_eq!(
            found("DO LANGUAGE plpgsql $$ BEGIN DROP TABLE t; END $$"),
            ["DROP TABLE t"]
        );
        // A dynamic statement built at run time cannot be read.
        assert!(found("DO $$ BEGIN EXECUTE format('DROP TABLE %I', 't'); END $$").is_empty());
        assert!(found("DO $$ BEGIN EXECUTE 'DROP TABLE ''t'''; END $$").is_empty());
    }
}
