//! Where statements end: a SQL file cut into statements at top-level
//! semicolons, each with its position in the file.

use squawk_lexer::{TokenKind, tokenize};

/// One statement of a SQL file, with where it starts in that file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The statement text from its first token to its end, without the `;`.
    pub sql: String,
    /// Byte offset of the first token in the file.
    pub offset: usize,
    /// 1-based line of the first token.
    pub line: usize,
    /// 1-based column (in characters) of the first token.
    pub column: usize,
    /// Byte offset just past the `;` that ends it (the end of the file for
    /// the last statement without one): where the next one's text begins.
    pub end: usize,
}

impl Statement {
    /// 1-based line and column in the file of a 1-based character position
    /// inside this statement (PostgreSQL's error `position`).
    pub fn position_in_file(&self, char_position: usize) -> (usize, usize) {
        let before: String = self
            .sql
            .chars()
            .take(char_position.saturating_sub(1))
            .collect();
        let newlines = before.matches('\n').count();
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        if newlines == 0 {
            (self.line, column + self.column - 1)
        } else {
            (self.line + newlines, column)
        }
    }
}

/// Splits SQL into statements at top-level semicolons.
///
/// The lexer knows PostgreSQL's quoting, so `;` inside strings, dollar-quoted
/// function bodies, quoted identifiers and comments never splits. SQL-standard
/// function bodies (`BEGIN ATOMIC … END`) and SQLite trigger bodies
/// (`CREATE TRIGGER … BEGIN … END`) contain top-level semicolons and are kept
/// whole. Statements made only of comments are dropped.
pub fn split(sql: &str) -> Vec<Statement> {
    let mut out = Vec::new();
    each(sql, |s| out.push(s));
    out
}

/// [`split`] one statement at a time, for callers that need not hold every
/// statement of a large file at once.
pub fn each(sql: &str, mut on: impl FnMut(Statement)) {
    let mut offset = 0usize;
    let mut start: Option<usize> = None;
    let mut words: Vec<String> = Vec::new();
    let mut block_depth = 0usize;
    // `CREATE RULE … DO (INSERT …; UPDATE …)` lists its actions in
    // parentheses, separated by `;`: one statement. Counted in rules only,
    // so that an unbalanced `(` elsewhere cannot swallow the rest of a file.
    let mut parens = 0usize;
    // Where the scan is, kept up to date token by token: recounting lines
    // from the start of the file for every statement made a file of many
    // small statements quadratic (8 MB of INSERTs took 83 s to lint).
    let mut line = 1usize;
    let mut column = 1usize;
    let mut start_at = (1usize, 1usize);

    let mut finish =
        |start: &mut Option<usize>, end: usize, after: usize, (line, column): (usize, usize)| {
            if let Some(s) = start.take() {
                on(Statement {
                    sql: sql[s..end].trim_end().to_string(),
                    offset: s,
                    line,
                    column,
                    end: after,
                });
            }
        };

    for token in tokenize(sql) {
        let len = token.len as usize;
        let text = &sql[offset..offset + len];
        match token.kind {
            TokenKind::Whitespace | TokenKind::LineComment | TokenKind::BlockComment { .. } => {}
            TokenKind::Semi if block_depth == 0 && (parens == 0 || !is_rule(&words)) => {
                finish(&mut start, offset, offset + len, start_at);
                words.clear();
                parens = 0;
            }
            kind => {
                if start.is_none() {
                    start = Some(offset);
                    start_at = (line, column);
                }
                match kind {
                    TokenKind::OpenParen => parens += 1,
                    TokenKind::CloseParen => parens = parens.saturating_sub(1),
                    _ => {}
                }
                if kind == TokenKind::Ident {
                    let word = text.to_ascii_lowercase();
                    match word.as_str() {
                        "atomic" if words.last().is_some_and(|w| w == "begin") => block_depth += 1,
                        // A trigger body in SQLite: CREATE TRIGGER … BEGIN stmt; … END
                        "begin"
                            if block_depth == 0
                                && words.first().is_some_and(|w| w == "create")
                                && words.contains(&"trigger".to_string()) =>
                        {
                            block_depth += 1
                        }
                        "case" if block_depth > 0 => block_depth += 1,
                        "end" if block_depth > 0 => block_depth -= 1,
                        _ => {}
                    }
                    if words.len() < 64 {
                        words.push(word);
                    }
                }
            }
        }
        match text.rfind('\n') {
            Some(i) => {
                line += text.matches('\n').count();
                column = text[i + 1..].chars().count() + 1;
            }
            None => column += text.chars().count(),
        }
        offset += len;
    }
    finish(&mut start, sql.len(), sql.len(), start_at);
}

fn is_rule(words: &[String]) -> bool {
    words.first().is_some_and(|w| w == "create") && words.iter().take(4).any(|w| w == "rule")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<String> {
        split(sql).into_iter().map(|s| s.sql).collect()
    }

    #[test]
    fn splits_at_top_level_semicolons_only() {
        let sql = "-- head; comment\nCREATE TABLE a (x text DEFAULT ';');\n\nINSERT INTO \"we;ird\" VALUES ($$a;b$$); /* c; */ SELECT 1";
        assert_eq!(
            texts(sql),
            vec![
                "CREATE TABLE a (x text DEFAULT ';')",
                "INSERT INTO \"we;ird\" VALUES ($$a;b$$)",
                "SELECT 1"
            ]
        );
        let lines: Vec<_> = split(sql).iter().map(|s| s.line).collect();
        assert_eq!(lines, vec![2, 4, 4]);
    }

    #[test]
    fn function_bodies_stay_whole() {
        let sql = "CREATE FUNCTION f() RETURNS trigger AS $body$\nBEGIN\n  NEW.a := 1;\n  RETURN NEW;\nEND;\n$body$ LANGUAGE plpgsql;\nSELECT 2;";
        assert_eq!(split(sql).len(), 2);
        let atomic = "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; SELECT 2; END; SELECT 3;";
        assert_eq!(texts(atomic).len(), 2, "{:?}", texts(atomic));
    }

    #[test]
    fn sqlite_trigger_bodies_stay_whole() {
        let sql = "CREATE TRIGGER t AFTER UPDATE ON a BEGIN UPDATE b SET x = 1; UPDATE c SET y = 2; END;\nSELECT 1;";
        assert_eq!(texts(sql).len(), 2);
        // A transaction BEGIN is a statement of its own.
        assert_eq!(texts("BEGIN; SELECT 1; COMMIT;").len(), 3);
    }

    #[test]
    fn rule_actions_in_parentheses_stay_whole() {
        let sql = "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); DELETE FROM b);\nSELECT 1;";
        assert_eq!(
            texts(sql),
            vec![
                "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); DELETE FROM b)",
                "SELECT 1"
            ]
        );
    }

    #[test]
    fn each_statement_ends_past_its_semicolon() {
        let sql = "SELECT 1 ;\n-- tail\nSELECT 2";
        let ends: Vec<usize> = split(sql).iter().map(|s| s.end).collect();
        assert_eq!(ends, vec![10, sql.len()]);
    }

    #[test]
    fn comments_only_is_empty() {
        assert!(split("-- nothing here;\n/* ; */\n").is_empty());
    }

    #[test]
    fn error_positions_map_to_file_lines() {
        let stmts = split("\n\nSELECT 1,\n  nope FROM x;");
        let (line, col) = stmts[0].position_in_file(13);
        assert_eq!((line, col), (4, 3));
    }
}
