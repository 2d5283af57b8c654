//! SQL text → one classified [`Operation`] per statement, read once from
//! squawk's PostgreSQL syntax tree. Function bodies, DO blocks and dollar
//! quoting are single tokens to the parser, so they never look like DDL.

mod alter_table;
mod columns;
mod objects;
mod statements;
pub mod syntax;

use super::allow::{self, Allow};
use super::operation::{Action, ActionKind, Lock, Operation, TableLock, WrittenName};
use super::schema::Schema;
use squawk_syntax::{SourceFile, SyntaxKind, SyntaxNode};
use syntax::Lines;

/// A place where the file does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxProblem {
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// The whole statement it is in, as the splitter cut it.
    pub statement: String,
}

/// A classified file.
#[derive(Debug, Clone, Default)]
pub struct Classified {
    pub ops: Vec<Operation>,
    pub syntax: Vec<SyntaxProblem>,
}

/// Classifies every statement of `text`, reading and updating `schema` so
/// later statements know what earlier ones created. `transaction` is the
/// migration's setting: whether keel wraps the file in one transaction.
pub fn classify(text: &str, schema: &mut Schema, transaction: bool) -> Classified {
    let masked = mask_psql_meta_commands(text);
    let text = masked.as_deref().unwrap_or(text);
    let lines = Lines::new(text);
    // squawk is built not to panic on any input; a bug there must still not
    // take keel down, so it becomes a finding like any unparsable file.
    let parsed = std::panic::catch_unwind(|| {
        let parse = SourceFile::parse(text);
        (parse.syntax_node(), parse.errors())
    });
    let (root, errors) = match parsed {
        Ok(p) => p,
        Err(_) => {
            return Classified {
                ops: Vec::new(),
                syntax: vec![SyntaxProblem {
                    line: 1,
                    column: 1,
                    message: "keel's SQL parser failed on this file; please report it".into(),
                    statement: String::new(),
                }],
            };
        }
    };
    // The parser reports several errors where a statement breaks (each
    // expectation, then every token after it as a statement of its own):
    // the first one per statement, as the splitter cuts them at `;`, says
    // it. The rest of that statement is not classified.
    let statements = super::split(text);
    let statement_at = |offset: usize| {
        statements
            .partition_point(|s| s.offset <= offset)
            .saturating_sub(1)
    };
    let mut broken_statements = std::collections::BTreeSet::new();
    let syntax: Vec<SyntaxProblem> = errors
        .iter()
        .filter(|e| broken_statements.insert(statement_at(usize::from(e.range().start()))))
        .map(|e| {
            let at = usize::from(e.range().start());
            let (line, column) = lines.pos(at);
            SyntaxProblem {
                line,
                column,
                message: e.message().to_string(),
                statement: statements
                    .get(statement_at(at))
                    .map(|s| s.sql.clone())
                    .unwrap_or_default(),
            }
        })
        .collect();
    let error_offsets: Vec<usize> = errors
        .iter()
        .map(|e| usize::from(e.range().start()))
        .collect();

    let mut ops = Vec::new();
    let mut in_tx = transaction;
    let mut search_path = None;
    let mut comments: Vec<Allow> = Vec::new();
    for element in root.children_with_tokens() {
        if let Some(t) = element.as_token() {
            match t.kind() {
                // Only a comment on its own line belongs to the statement
                // below; one after a statement's `;` belongs to that one.
                SyntaxKind::COMMENT => {
                    let offset = usize::from(t.text_range().start());
                    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
                    if text[line_start..offset].trim().is_empty() {
                        let (line, column) = lines.pos(offset);
                        comments.extend(allow::parse(t.text(), line, column));
                    }
                }
                // A blank line separates a comment from the statement below.
                SyntaxKind::WHITESPACE if t.text().matches('\n').count() > 1 => comments.clear(),
                SyntaxKind::WHITESPACE => {}
                _ => comments.clear(),
            }
            continue;
        }
        let Some(node) = element.into_node() else {
            continue;
        };
        let allows = std::mem::take(&mut comments);
        if node.kind() == SyntaxKind::ERROR {
            continue;
        }
        let range = node.text_range();
        let start = syntax::start(&node);
        let broken = broken_statements.contains(&statement_at(start))
            || error_offsets
                .iter()
                .any(|&o| o >= usize::from(range.start()) && o <= usize::from(range.end()));
        let (line, column) = lines.pos(start);
        let mut op = Operation {
            kind: statement_kind(&node),
            sql: syntax::text(&node),
            line,
            column,
            actions: Vec::new(),
            in_transaction: in_tx,
            allows,
            names: written_names(&node, &lines),
            search_path: search_path.clone(),
        };
        if !broken {
            let cx = Cx {
                schema,
                lines: &lines,
            };
            op.actions = statements::classify(&cx, &node);
            if let Some(path) = super::search_path::change(&op.sql) {
                search_path = path;
            }
        }
        for a in &op.actions {
            if let ActionKind::Transaction { begin } = a.kind {
                in_tx = begin;
            }
        }
        schema.apply(&op);
        ops.push(op);
    }
    Classified { ops, syntax }
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
    pub schema: &'a Schema,
    pub lines: &'a Lines<'a>,
}

impl Cx<'_> {
    /// An action on `table` positioned at `node`.
    pub fn action(&self, kind: ActionKind, table: Option<String>, node: &SyntaxNode) -> Action {
        let (line, column_no) = self.lines.pos(syntax::start(node));
        let new_table = table
            .as_deref()
            .is_some_and(|t| self.schema.is_new_table(t));
        Action {
            line,
            column_no,
            new_table,
            ..Action::new(kind, table)
        }
    }

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
