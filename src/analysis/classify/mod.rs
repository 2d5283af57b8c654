//! SQL text → one classified [`Operation`] per statement, read once from
//! squawk's PostgreSQL syntax tree. Function bodies, DO blocks and dollar
//! quoting are single tokens to the parser, so they never look like DDL.

mod alter_table;
mod columns;
mod do_block;
mod objects;
mod statements;
pub mod syntax;

use super::allow::{self, Allow};
use super::operation::{Action, ActionKind, InDoBlock, Lock, Operation, TableLock, WrittenName};
use super::schema::Schema;
use crate::sql::Statement;
use squawk_syntax::{Parse, SourceFile, SyntaxKind, SyntaxNode};
use syntax::Lines;

/// A place where the file does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxProblem {
    /// 1-based line of the problem.
    pub line: usize,
    /// 1-based column of the problem.
    pub column: usize,
    /// The parser's message.
    pub message: String,
    /// The whole statement it is in, as the splitter cut it.
    pub statement: String,
}

/// A classified file.
#[derive(Debug, Clone, Default)]
pub struct Classified {
    /// Every statement of the file as it is sent to the server, in order
    /// (those that do not parse too: the server says why).
    pub statements: Vec<Statement>,
    /// The statements that parse, classified, in order.
    pub ops: Vec<Operation>,
    /// Where the file does not parse.
    pub syntax: Vec<SyntaxProblem>,
}

/// Classifies every statement of `text`, reading and updating `schema` so
/// later statements know what earlier ones created. `transaction` is the
/// migration's setting: whether keel wraps the file in one transaction.
///
/// Each statement is parsed on its own and classified at once: the
/// parser's memory is then that of one statement, not of the file (a whole
/// 8 MB file of INSERTs took 25 bytes of parser events and tree per byte of
/// SQL), and a statement that breaks cannot pull the ones after it into its
/// error. [`Parsed`] keeps the parses instead, to classify a file more than
/// once without parsing it again.
pub fn classify(text: &str, schema: &mut Schema, transaction: bool) -> Classified {
    let masked = mask_psql_meta_commands(text);
    let sql = masked.as_deref().unwrap_or(text);
    let lines = Lines::new(sql);
    let mut file = File::new(sql, &lines, transaction);
    let mut from = 0;
    let mut statements = Vec::new();
    crate::sql::split::each(sql, |stmt| {
        PARSES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        file.chunk(from, &stmt, parse(sql, from, stmt.end), schema);
        from = stmt.end;
        if masked.is_none() {
            statements.push(stmt);
        }
    });
    file.finish(from, statements, masked.is_some().then_some(text))
}

/// A file's statements, each parsed once: classified as many times as
/// needed ([`Parsed::classify`]) without parsing again, e.g. once as the
/// reviewed runbook shows it and once with what the server says.
#[derive(Clone)]
pub struct Parsed {
    /// The file as sent to the server.
    text: String,
    /// The file with psql meta-commands blanked, when it has any.
    masked: Option<String>,
    /// Each statement with where its parse began, and the parse (`None`:
    /// the parser failed).
    parses: Vec<(Statement, usize, Option<Parse<SourceFile>>)>,
}

impl Parsed {
    /// Splits `text` into statements and parses each one.
    pub fn new(text: &str) -> Parsed {
        let masked = mask_psql_meta_commands(text);
        let sql = masked.as_deref().unwrap_or(text);
        let mut parses = Vec::new();
        let mut from = 0;
        crate::sql::split::each(sql, |stmt| {
            PARSES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let parse = parse_tree(sql, from, stmt.end);
            let end = stmt.end;
            parses.push((stmt, from, parse));
            from = end;
        });
        Parsed {
            text: text.to_string(),
            masked,
            parses,
        }
    }

    /// [`classify`], from the parses.
    pub fn classify(&self, schema: &mut Schema, transaction: bool) -> Classified {
        let sql = self.masked.as_deref().unwrap_or(&self.text);
        let lines = Lines::new(sql);
        let mut file = File::new(sql, &lines, transaction);
        let mut from = 0;
        for (stmt, at, parse) in &self.parses {
            let tree = parse
                .as_ref()
                .map(|p| (p.syntax_node(), p.errors()))
                .ok_or(());
            file.chunk(*at, stmt, tree, schema);
            from = stmt.end;
        }
        let statements = if self.masked.is_none() {
            self.parses.iter().map(|(s, _, _)| s.clone()).collect()
        } else {
            Vec::new()
        };
        file.finish(
            from,
            statements,
            self.masked.is_some().then_some(&self.text),
        )
    }
}

/// How many statements keel has parsed in this process: a check that a
/// run parses each migration once.
pub fn statements_parsed() -> usize {
    PARSES.load(std::sync::atomic::Ordering::Relaxed)
}

static PARSES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The state carried from one statement of a file to the next.
struct File<'t> {
    text: &'t str,
    lines: &'t Lines<'t>,
    out: Classified,
    /// Whether the next statement runs inside a transaction.
    in_tx: bool,
    /// The search_path a `SET search_path` earlier in the file left.
    search_path: Option<super::search_path::SearchPath>,
    /// `keel:allow` comments waiting for the statement below them.
    comments: Vec<Allow>,
}

type Tree = Result<(SyntaxNode, Vec<squawk_syntax::syntax_error::SyntaxError>), ()>;

/// Parses `text[from..end]` with squawk. squawk is built not to panic on
/// any input; a bug there must still not take keel down, so it becomes a
/// syntax problem like any unparsable statement.
fn parse_tree(text: &str, from: usize, end: usize) -> Option<Parse<SourceFile>> {
    let chunk = &text[from..end];
    std::panic::catch_unwind(|| SourceFile::parse(chunk)).ok()
}

fn parse(text: &str, from: usize, end: usize) -> Tree {
    parse_tree(text, from, end)
        .map(|p| (p.syntax_node(), p.errors()))
        .ok_or(())
}

/// The first error of a piece of the file, which says what broke: the
/// parser reports several where a statement breaks (each expectation, then
/// every token after it as a statement of its own).
fn parse_errors(
    text: &str,
    lines: &Lines,
    from: usize,
    stmt: Option<&crate::sql::split::Statement>,
) -> Option<SyntaxProblem> {
    let end = stmt.map_or(text.len(), |s| s.end);
    let statement = stmt.map(|s| s.sql.clone()).unwrap_or_default();
    match parse(text, from, end) {
        Ok((_, errors)) => errors.first().map(|e| {
            let (line, column) = lines.pos(from + usize::from(e.range().start()));
            SyntaxProblem {
                line,
                column,
                message: e.message().to_string(),
                statement,
            }
        }),
        Err(()) => Some(crash(lines, from, statement)),
    }
}

fn crash(lines: &Lines, at: usize, statement: String) -> SyntaxProblem {
    let (line, column) = lines.pos(at);
    SyntaxProblem {
        line,
        column,
        message: "keel's SQL parser failed on this statement; please report it".into(),
        statement,
    }
}

impl<'t> File<'t> {
    fn new(text: &'t str, lines: &'t Lines<'t>, transaction: bool) -> File<'t> {
        File {
            text,
            lines,
            out: Classified::default(),
            in_tx: transaction,
            search_path: None,
            comments: Vec::new(),
        }
    }

    /// The classified file, once every statement went through [`chunk`]:
    /// `from` is where the last one ended. Statements go to the server as
    /// the file has them: from `original`, when psql meta-commands were
    /// blanked for the parser, else `statements` as split.
    fn finish(
        mut self,
        from: usize,
        statements: Vec<Statement>,
        original: Option<&str>,
    ) -> Classified {
        if from < self.text.len() {
            // Comments after the last statement: nothing to classify.
            self.out
                .syntax
                .extend(parse_errors(self.text, self.lines, from, None));
        }
        self.out.statements = match original {
            Some(text) => crate::sql::split::split(text),
            None => statements,
        };
        self.out
    }

    /// Classifies one statement, parsed (`tree`) from `from` (the end of the
    /// one before) to its end.
    fn chunk(&mut self, from: usize, stmt: &Statement, tree: Tree, schema: &mut Schema) {
        let (root, errors) = match tree {
            Ok(p) => p,
            Err(()) => {
                let problem = crash(self.lines, stmt.offset, stmt.sql.clone());
                self.out.syntax.push(problem);
                return;
            }
        };
        let lines = self.lines.shifted(from);
        let broken = !errors.is_empty();
        if let Some(e) = errors.first() {
            let (line, column) = lines.pos(usize::from(e.range().start()));
            self.out.syntax.push(SyntaxProblem {
                line,
                column,
                message: e.message().to_string(),
                statement: stmt.sql.clone(),
            });
        }
        for element in root.children_with_tokens() {
            if let Some(t) = element.as_token() {
                match t.kind() {
                    // Only a comment on its own line belongs to the statement
                    // below; one after a statement's `;` belongs to that one.
                    SyntaxKind::COMMENT => {
                        let offset = from + usize::from(t.text_range().start());
                        let line_start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
                        if self.text[line_start..offset].trim().is_empty() {
                            let (line, column) = self.lines.pos(offset);
                            self.comments.extend(allow::parse(t.text(), line, column));
                        }
                    }
                    // A blank line separates a comment from the statement below.
                    SyntaxKind::WHITESPACE if t.text().matches('\n').count() > 1 => {
                        self.comments.clear()
                    }
                    SyntaxKind::WHITESPACE => {}
                    _ => self.comments.clear(),
                }
                continue;
            }
            let Some(node) = element.into_node() else {
                continue;
            };
            let allows = std::mem::take(&mut self.comments);
            if node.kind() == SyntaxKind::ERROR {
                continue;
            }
            let start = syntax::start(&node);
            let (line, column) = lines.pos(start);
            let mut op = Operation {
                kind: statement_kind(&node),
                sql: syntax::text(&node),
                offset: from + start,
                line,
                column,
                actions: Vec::new(),
                in_transaction: self.in_tx,
                allows,
                names: written_names(&node, &lines),
                search_path: self.search_path.clone(),
                in_do_block: None,
            };
            // The rest of a statement that does not parse is not classified.
            if !broken {
                let cx = Cx {
                    schema,
                    lines: &lines,
                };
                op.actions = statements::classify(&cx, &node);
                if let Some(path) = super::search_path::change(&op.sql) {
                    self.search_path = path;
                }
            }
            for a in &op.actions {
                if let ActionKind::Transaction { begin } = a.kind {
                    self.in_tx = begin;
                }
            }
            schema.apply(&op);
            let inner = match broken {
                false => do_block::statements(&op.sql, op.offset),
                true => Vec::new(),
            };
            self.out.ops.push(op);
            self.do_block(&inner, schema);
        }
    }

    /// Classifies the statements a DO block runs (see [`do_block`]), each
    /// where it stands in the file. A DO block is one atomic statement:
    /// they run inside a transaction whatever the migration says.
    fn do_block(&mut self, inner: &[(usize, usize, bool)], schema: &mut Schema) {
        let outside = self.in_tx;
        for &(start, end, in_loop) in inner {
            let (line, column) = self.lines.pos(start);
            let stmt = Statement {
                sql: self.text[start..end].to_string(),
                offset: start,
                line,
                column,
                end,
            };
            self.in_tx = true;
            let before = self.out.ops.len();
            let problems = self.out.syntax.len();
            self.chunk(start, &stmt, parse(self.text, start, end), schema);
            // PL/pgSQL's own syntax in a statement (a variable where SQL
            // has none, …) is no syntax error: the server checks it when
            // the block runs. The statement stays opaque, as before keel
            // read bodies.
            if self.out.syntax.len() > problems {
                self.out.syntax.truncate(problems);
                self.out.ops.truncate(before);
                continue;
            }
            for op in &mut self.out.ops[before..] {
                op.in_do_block = Some(match in_loop {
                    true => InDoBlock::Loop,
                    false => InDoBlock::Once,
                });
            }
        }
        self.in_tx = outside;
    }
}

/// psql meta-commands (`\\echo … \\quit`, `\\set`, `\\connect`) are not SQL
/// but common in migration files run with psql. A line that starts with a
/// backslash outside any string, comment or function body is blanked
/// (byte for byte, so every position stays where it was) before parsing.
fn mask_psql_meta_commands(text: &str) -> Option<String> {
    if !text.lines().any(|l| l.trim_start().starts_with('\\')) {
        return None;
    }
    let mut out = text.as_bytes().to_vec();
    let mut offset = 0usize;
    let mut line_start = true;
    let mut masked_to = 0usize;
    for token in squawk_lexer::tokenize(text) {
        let len = token.len as usize;
        let here = offset;
        offset += len;
        if here < masked_to {
            continue;
        }
        let t = &text[here..offset];
        match token.kind {
            squawk_lexer::TokenKind::Whitespace => {
                if t.contains('\n') {
                    line_start = true;
                }
            }
            _ if line_start && t.starts_with('\\') => {
                let end = text[here..].find('\n').map_or(text.len(), |i| here + i);
                out[here..end].fill(b' ');
                masked_to = end;
            }
            _ => line_start = false,
        }
    }
    // Only ASCII bytes replaced whole characters: still UTF-8.
    String::from_utf8(out).ok()
}

/// What the classifiers read: the schema so far and where things are.
pub struct Cx<'a> {
    /// The schema as the statements before this one left it.
    pub schema: &'a Schema,
    pub(crate) lines: &'a Lines<'a>,
}

impl Cx<'_> {
    /// An action on `table` positioned at `node`.
    pub fn action(&self, kind: ActionKind, table: Option<String>, node: &SyntaxNode) -> Action {
        let start = syntax::start(node);
        let (line, column_no) = self.lines.pos(start);
        let new_table = table
            .as_deref()
            .is_some_and(|t| self.schema.is_new_table(t));
        let end = usize::from(node.text_range().end()).max(start);
        Action {
            line,
            column_no,
            new_table,
            clause: self.lines.absolute(start)..self.lines.absolute(end),
            ..Action::new(kind, table)
        }
    }

    /// `lock` taken on `table`.
    pub fn lock(table: &str, lock: Lock) -> TableLock {
        TableLock {
            table: table.to_string(),
            lock,
        }
    }
}

/// Names the statement defines (tables, columns, indexes, constraints),
/// as written: unquoted upper case folds silently, which `quote-identifier`
/// points out.
fn written_names(node: &SyntaxNode, lines: &Lines) -> Vec<WrittenName> {
    use SyntaxKind::*;
    node.descendants()
        .filter(|n| {
            matches!(n.kind(), TABLE_NAME | COLUMN_NAME | CONSTRAINT_NAME)
                || (n.kind() == INDEX
                    && n.parent()
                        .is_some_and(|p| matches!(p.kind(), CREATE_INDEX | INDEX_RENAME_TO)))
        })
        .filter_map(|n| {
            let t = syntax::significant_tokens(&n).last()?;
            let (line, column) = lines.pos(usize::from(t.text_range().start()));
            Some(WrittenName {
                raw: t.text().to_string(),
                line,
                column,
            })
        })
        .collect()
}

/// `ALTER TABLE`, `CREATE INDEX`: the statement's leading keywords.
fn statement_kind(node: &SyntaxNode) -> String {
    match node.kind() {
        SyntaxKind::COMMIT_TRANSACTION => "COMMIT".into(),
        SyntaxKind::ROLLBACK_TRANSACTION => "ROLLBACK".into(),
        kind => format!("{kind:?}").replace('_', " "),
    }
}

#[cfg(test)]
mod tests;
