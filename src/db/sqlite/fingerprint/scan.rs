//! SQLite's stored CREATE statements, read just far enough for the
//! fingerprint: tokens that know quotes, comments and parentheses (so a
//! `,` or `)` inside a string or an expression is not taken for the end of
//! a clause), the statement without its `CREATE … name` head, and the
//! parts of a CREATE TABLE that no pragma reports.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A keyword, bare name or number.
    Word,
    /// A quoted name: `"…"`, `` `…` `` or `[…]`.
    Ident,
    /// A string literal.
    Str,
    Open,
    Close,
    Comma,
    Dot,
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
}

/// The tokens of `sql`; whitespace and comments are left out.
fn tokens(sql: &str) -> Vec<Token> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let kind = match c {
            _ if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |p| i + p);
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..].find("*/").map_or(b.len(), |p| i + 2 + p + 2);
                continue;
            }
            b'\'' | b'"' | b'`' | b'[' => {
                let close = if c == b'[' { b']' } else { c };
                i += 1;
                while i < b.len() {
                    if b[i] == close {
                        // A doubled quote is one quote inside.
                        if close != b']' && b.get(i + 1) == Some(&close) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i = (i + 1).min(b.len());
                if c == b'\'' { Kind::Str } else { Kind::Ident }
            }
            b'(' => {
                i += 1;
                Kind::Open
            }
            b')' => {
                i += 1;
                Kind::Close
            }
            b',' => {
                i += 1;
                Kind::Comma
            }
            b'.' => {
                i += 1;
                Kind::Dot
            }
            _ if word(c) => {
                while i < b.len() && word(b[i]) {
                    i += 1;
                }
                Kind::Word
            }
            _ => {
                i += 1;
                Kind::Other
            }
        };
        out.push(Token {
            kind,
            start,
            end: i,
        });
    }
    out
}

/// The tokens' text as written, with one space wherever whitespace or a
/// comment stood between two of them.
fn join(sql: &str, toks: &[Token]) -> String {
    let mut out = String::new();
    for (n, t) in toks.iter().enumerate() {
        if n > 0 && toks[n - 1].end < t.start {
            out.push(' ');
        }
        out.push_str(&sql[t.start..t.end]);
    }
    out
}

/// `sql` with every run of whitespace and every comment, outside quotes,
/// turned into one space, and trimmed.
pub(super) fn normalize(sql: &str) -> String {
    join(sql, &tokens(sql))
}

fn is_word(sql: &str, t: Option<&Token>, word: &str) -> bool {
    t.is_some_and(|t| t.kind == Kind::Word && sql[t.start..t.end].eq_ignore_ascii_case(word))
}

/// A `CREATE [UNIQUE] INDEX|TRIGGER|VIEW|[VIRTUAL] TABLE [IF NOT EXISTS]
/// [schema.]name …` statement without its head: whether it said UNIQUE,
/// and the rest, normalized (`ON posts (title)`, `AS SELECT …`).
pub(super) fn strip_create(sql: &str) -> (bool, String) {
    let toks = tokens(sql);
    let mut unique = false;
    let Some(kind) = toks.iter().position(|t| {
        unique |= is_word(sql, Some(t), "UNIQUE");
        ["INDEX", "TRIGGER", "VIEW", "TABLE"]
            .iter()
            .any(|w| is_word(sql, Some(t), w))
    }) else {
        return (false, normalize(sql));
    };
    let mut i = kind + 1;
    if is_word(sql, toks.get(i), "IF") && is_word(sql, toks.get(i + 2), "EXISTS") {
        i += 3;
    }
    i += 1;
    if toks.get(i).is_some_and(|t| t.kind == Kind::Dot) {
        i += 2;
    }
    (unique, join(sql, toks.get(i..).unwrap_or_default()))
}

/// The name a token stands for: quotes taken off (a doubled quote inside
/// is one).
fn unquote(sql: &str, t: &Token) -> String {
    let text = &sql[t.start..t.end];
    match t.kind {
        Kind::Ident | Kind::Str if text.len() >= 2 => {
            let q = &text[..1];
            let inner = &text[1..text.len() - 1];
            if q == "[" {
                inner.to_string()
            } else {
                inner.replace(&q.repeat(2), q)
            }
        }
        _ => text.to_string(),
    }
}

/// The index of the `)` that closes the `(` at `open` (the last token when
/// it is missing).
fn closing(toks: &[Token], open: usize) -> usize {
    let mut depth = 0;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t.kind {
            Kind::Open => depth += 1,
            Kind::Close => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    toks.len().saturating_sub(1)
}

/// A CHECK constraint, on a column or the table (the two are the same
/// rule), with its name when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Check {
    pub(super) name: Option<String>,
    pub(super) expr: String,
}

impl Check {
    /// Its key and line in the fingerprint of `table` (shown as named): a
    /// named check is keyed by its name, an unnamed one by its expression.
    pub(super) fn entry(&self, table: &str) -> (String, String) {
        match &self.name {
            Some(name) => {
                let key = format!("check {table}.{}", ident(name));
                let line = format!("{key} CHECK ({})", self.expr);
                (key, line)
            }
            None => {
                let line = format!("check {table} CHECK ({})", self.expr);
                (line.clone(), line)
            }
        }
    }
}

/// What a column's definition says that `pragma_table_xinfo` does not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ColumnText {
    /// `COLLATE x`, upper-cased (SQLite's collation names ignore case).
    pub(super) collate: Option<String>,
    /// The expression of `[GENERATED ALWAYS] AS (…)`.
    pub(super) generated: Option<String>,
}

/// What a CREATE TABLE says that the pragmas do not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct TableText {
    /// Column and table CHECK constraints, in the order written.
    pub(super) checks: Vec<Check>,
    /// By column name.
    pub(super) columns: BTreeMap<String, ColumnText>,
    /// `INTEGER PRIMARY KEY AUTOINCREMENT`.
    pub(super) autoincrement: bool,
}

impl TableText {
    /// Reads a stored CREATE TABLE: each item of its parenthesized list, a
    /// column definition or a table constraint.
    pub(super) fn parse(sql: &str) -> TableText {
        let toks = tokens(sql);
        let mut text = TableText::default();
        let Some(open) = toks.iter().position(|t| t.kind == Kind::Open) else {
            return text;
        };
        let close = closing(&toks, open);
        let mut start = open + 1;
        let mut depth = 0;
        for i in open + 1..=close {
            match toks[i].kind {
                Kind::Open => depth += 1,
                Kind::Close if depth > 0 => depth -= 1,
                Kind::Comma | Kind::Close if depth == 0 => {
                    text.item(sql, &toks[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        text
    }

    fn item(&mut self, sql: &str, item: &[Token]) {
        let Some(first) = item.first() else {
            return;
        };
        let constraint = ["CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"]
            .iter()
            .any(|w| is_word(sql, Some(first), w));
        let mut column = ColumnText::default();
        let mut j = usize::from(!constraint);
        while j < item.len() {
            let at = |w: &str| is_word(sql, item.get(j), w);
            let open_next = item.get(j + 1).is_some_and(|t| t.kind == Kind::Open);
            if at("CONSTRAINT") && is_word(sql, item.get(j + 2), "CHECK") {
                let name = item.get(j + 1).map(|t| unquote(sql, t));
                let open = j + 3;
                let close = closing(item, open);
                self.checks.push(Check {
                    name,
                    expr: join(sql, item.get(open + 1..close).unwrap_or_default()),
                });
                j = close + 1;
            } else if (at("CHECK") || (!constraint && at("AS"))) && open_next {
                let close = closing(item, j + 1);
                let expr = join(sql, &item[j + 2..close]);
                if at("CHECK") {
                    self.checks.push(Check { name: None, expr });
                } else {
                    column.generated = Some(expr);
                }
                j = close + 1;
            } else if !constraint && at("COLLATE") {
                column.collate = item.get(j + 1).map(|t| unquote(sql, t).to_uppercase());
                j += 2;
            } else if item[j].kind == Kind::Open {
                j = closing(item, j) + 1;
            } else {
                self.autoincrement |= at("AUTOINCREMENT");
                j += 1;
            }
        }
        if !constraint {
            self.columns.insert(unquote(sql, first), column);
        }
    }
}

/// A name as SQL would need it: bare when it is a plain identifier, else
/// double-quoted.
pub(super) fn ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        name.to_string()
    } else {
        crate::db::quote_ident(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_collapses_space_and_comments_outside_quotes() {
        assert_eq!(
            normalize(
                "CREATE VIEW v AS\n  SELECT 'a  b' -- two spaces\n,  \"x  y\" /* c */ FROM t"
            ),
            "CREATE VIEW v AS SELECT 'a  b' , \"x  y\" FROM t"
        );
        assert_eq!(normalize("f(x)"), "f(x)");
    }

    #[test]
    fn strip_create_keeps_what_follows_the_name() {
        assert_eq!(
            strip_create("CREATE UNIQUE INDEX IF NOT EXISTS \"my idx\" ON t (a,\n b) WHERE a > 0"),
            (true, "ON t (a, b) WHERE a > 0".to_string())
        );
        assert_eq!(
            strip_create("CREATE TRIGGER main.trg AFTER INSERT ON t BEGIN SELECT 1; END"),
            (false, "AFTER INSERT ON t BEGIN SELECT 1; END".to_string())
        );
        assert_eq!(
            strip_create("CREATE VIRTUAL TABLE docs USING fts5(body)"),
            (false, "USING fts5(body)".to_string())
        );
    }

    #[test]
    fn table_text_finds_checks_collations_generation_and_autoincrement() {
        let text = TableText::parse(
            "CREATE TABLE \"po,sts\" (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                title TEXT NOT NULL COLLATE nocase CHECK (length(title) > 0 AND title <> ')'),
                [slug] TEXT GENERATED ALWAYS AS (lower(title)) STORED,
                n INT AS (id * 2),
                price NUMERIC(10, 2) DEFAULT (0) CONSTRAINT positive CHECK (price >= 0),
                CONSTRAINT title_short CHECK (length(title) < 200),
                CHECK (n <> 3),
                FOREIGN KEY (n) REFERENCES other (id)
            )",
        );
        assert!(text.autoincrement);
        assert_eq!(
            text.checks,
            [
                Check {
                    name: None,
                    expr: "length(title) > 0 AND title <> ')'".into()
                },
                Check {
                    name: Some("positive".into()),
                    expr: "price >= 0".into()
                },
                Check {
                    name: Some("title_short".into()),
                    expr: "length(title) < 200".into()
                },
                Check {
                    name: None,
                    expr: "n <> 3".into()
                },
            ]
        );
        assert_eq!(
            text.columns.keys().collect::<Vec<_>>(),
            ["id", "n", "price", "slug", "title"]
        );
        assert_eq!(text.columns["title"].collate.as_deref(), Some("NOCASE"));
        assert_eq!(
            text.columns["slug"].generated.as_deref(),
            Some("lower(title)")
        );
        assert_eq!(text.columns["n"].generated.as_deref(), Some("id * 2"));
        assert_eq!(text.columns["price"], ColumnText::default());
    }

    #[test]
    fn a_table_without_a_column_list_has_nothing_to_add() {
        assert_eq!(TableText::parse("CREATE TABLE t"), TableText::default());
        assert!(!TableText::parse("CREATE TABLE t (a INT)").autoincrement);
    }

    #[test]
    fn check_entries_key_named_checks_by_name() {
        let named = Check {
            name: Some("title short".into()),
            expr: "a < 2".into(),
        };
        assert_eq!(
            named.entry("posts"),
            (
                "check posts.\"title short\"".to_string(),
                "check posts.\"title short\" CHECK (a < 2)".to_string()
            )
        );
        let unnamed = Check {
            name: None,
            expr: "a < 2".into(),
        };
        assert_eq!(unnamed.entry("posts").0, "check posts CHECK (a < 2)");
    }

    #[test]
    fn ident_quotes_only_when_needed() {
        assert_eq!(ident("posts"), "posts");
        assert_eq!(ident("Posts_2"), "Posts_2");
        assert_eq!(ident("my table"), "\"my table\"");
        assert_eq!(ident("2x"), "\"2x\"");
    }
}
