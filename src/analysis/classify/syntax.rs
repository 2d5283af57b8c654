//! Small readers over squawk's syntax tree: names, keywords, positions.

use squawk_syntax::{SyntaxKind, SyntaxNode, SyntaxToken};

/// The first direct child node of `kind`.
pub(crate) fn child(node: &SyntaxNode, kind: SyntaxKind) -> Option<SyntaxNode> {
    node.children().find(|c| c.kind() == kind)
}

/// The first descendant node (including `node`) of any of `kinds`.
pub(crate) fn find(node: &SyntaxNode, kinds: &[SyntaxKind]) -> Option<SyntaxNode> {
    node.descendants().find(|c| kinds.contains(&c.kind()))
}

/// A direct child token (a keyword of this clause, not of a nested one).
pub(crate) fn has_token(node: &SyntaxNode, kind: SyntaxKind) -> bool {
    node.children_with_tokens()
        .any(|e| e.as_token().is_some_and(|t| t.kind() == kind))
}

/// Anywhere below `node`, node or token.
pub(crate) fn has_desc(node: &SyntaxNode, kind: SyntaxKind) -> bool {
    node.descendants_with_tokens().any(|e| e.kind() == kind)
}

pub(crate) fn significant_tokens(node: &SyntaxNode) -> impl Iterator<Item = SyntaxToken> {
    node.descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .filter(|t| !t.kind().is_trivia())
}

/// First non-trivia byte offset of a node: where a reader's eye lands.
pub(crate) fn start(node: &SyntaxNode) -> usize {
    significant_tokens(node)
        .next()
        .map(|t| usize::from(t.text_range().start()))
        .unwrap_or_else(|| usize::from(node.text_range().start()))
}

/// An identifier as PostgreSQL stores it: unquoted folds to lower case,
/// quoted keeps its case with `""` unescaped.
pub(crate) fn ident(raw: &str) -> String {
    match raw.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => raw.to_lowercase(),
    }
}

/// The dotted name inside a name node (`public."Users"` → `Users`), with the
/// default `public` schema left out so `users` and `public.users` match.
/// A relation's name (table, index, view…) is in the text form of
/// [`Relation`](crate::db::Relation), so a dot inside a quoted name stays
/// part of it (`"audit.log"`); a column's or constraint's is its plain name.
pub(crate) fn qualified(node: &SyntaxNode) -> String {
    use SyntaxKind::*;
    let parts = name_parts(node);
    let plain = matches!(
        node.kind(),
        COLUMN_NAME | COLUMN_NAME_REF | CONSTRAINT_NAME | CONSTRAINT_NAME_REF | NAME_REF
    );
    if plain || parts.len() > 2 {
        return parts.join(".");
    }
    let mut parts = parts;
    let name = parts.pop().unwrap_or_default();
    crate::db::Relation {
        schema: parts.pop(),
        name,
    }
    .to_string()
}

/// The identifiers of a dotted name, as PostgreSQL stores them, with a
/// leading `public` dropped.
fn name_parts(node: &SyntaxNode) -> Vec<String> {
    let mut parts = written_parts(node);
    if parts.len() > 1 && parts[0] == "public" {
        parts.remove(0);
    }
    parts
}

/// A relation exactly as the statement names it: its schema only when one
/// is written (`public` included), so that it resolves the way the server
/// resolves it.
pub(crate) fn written_relation(node: &SyntaxNode) -> crate::db::Relation {
    let mut parts = written_parts(node);
    let name = parts.pop().unwrap_or_default();
    crate::db::Relation {
        schema: parts.pop(),
        name,
    }
}

/// The first descendant name of one of `kinds`, as [`written_relation`].
pub(crate) fn written_in(node: &SyntaxNode, kinds: &[SyntaxKind]) -> Option<crate::db::Relation> {
    find(node, kinds)
        .map(|n| written_relation(&n))
        .filter(|r| !r.name.is_empty())
}

fn written_parts(node: &SyntaxNode) -> Vec<String> {
    let mut parts: Vec<String> = vec![String::new()];
    for t in significant_tokens(node) {
        match t.kind() {
            SyntaxKind::DOT => parts.push(String::new()),
            SyntaxKind::ONLY_KW | SyntaxKind::STAR | SyntaxKind::L_PAREN | SyntaxKind::R_PAREN => {}
            _ => {
                if let Some(last) = parts.last_mut()
                    && last.is_empty()
                {
                    *last = ident(t.text());
                }
            }
        }
    }
    parts
}

/// The name of the first descendant of one of `kinds`.
pub(crate) fn name_in(node: &SyntaxNode, kinds: &[SyntaxKind]) -> Option<String> {
    find(node, kinds)
        .map(|n| qualified(&n))
        .filter(|s| !s.is_empty())
}

/// Names of the direct children of `kind`.
pub(crate) fn names(node: &SyntaxNode, kind: SyntaxKind) -> Vec<String> {
    node.children()
        .filter(|c| c.kind() == kind)
        .map(|c| qualified(&c))
        .filter(|s| !s.is_empty())
        .collect()
}

/// Where statements name their table.
const TABLE_NAMES: [SyntaxKind; 5] = [
    SyntaxKind::TABLE_RELATION_NAME,
    SyntaxKind::TABLE_NAME,
    SyntaxKind::TABLE_NAME_REF,
    SyntaxKind::RELATION_NAME,
    SyntaxKind::RELATION_NAME_REF,
];

/// The table a statement names in its usual places.
pub(crate) fn table_name(node: &SyntaxNode) -> Option<String> {
    name_in(node, &TABLE_NAMES)
}

/// [`table_name`] as [`written_relation`].
pub(crate) fn table_relation(node: &SyntaxNode) -> Option<crate::db::Relation> {
    written_in(node, &TABLE_NAMES)
}

/// Trimmed source text of a node, without its trailing `;`.
pub(crate) fn text(node: &SyntaxNode) -> String {
    let t = node.text().to_string();
    t.trim().trim_end_matches(';').trim_end().to_string()
}

/// Converts byte offsets into 1-based line and character column, in time
/// independent of the file's size: a column is counted from the nearest
/// checkpoint, not from the start of its line, so a file that is one long
/// line of statements does not make every lookup walk that line.
pub(crate) struct Lines<'a> {
    text: &'a str,
    index: std::borrow::Cow<'a, LineIndex>,
    /// Offsets given to [`Lines::pos`] count from here: a statement parsed
    /// on its own has its own offsets.
    base: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct LineIndex {
    starts: Vec<usize>,
    /// Characters before each `CHECKPOINT`-th byte (rounded down to a
    /// character boundary), paired with that boundary.
    checkpoints: Vec<(usize, usize)>,
}

const CHECKPOINT: usize = 512;

impl<'a> Lines<'a> {
    pub(crate) fn new(text: &'a str) -> Lines<'a> {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let mut checkpoints = Vec::with_capacity(text.len() / CHECKPOINT + 1);
        let (mut at, mut chars) = (0, 0);
        while at <= text.len() {
            checkpoints.push((at, chars));
            let next = text.floor_char_boundary(at + CHECKPOINT);
            if next <= at {
                break;
            }
            chars += text[at..next].chars().count();
            at = next;
        }
        Lines {
            text,
            index: std::borrow::Cow::Owned(LineIndex {
                starts,
                checkpoints,
            }),
            base: 0,
        }
    }

    /// The same file, for offsets that count from `base` bytes further.
    pub(crate) fn shifted(&self, base: usize) -> Lines<'_> {
        Lines {
            text: self.text,
            index: std::borrow::Cow::Borrowed(&*self.index),
            base: self.base + base,
        }
    }

    /// Characters before the byte `offset` (a character boundary).
    fn chars_before(&self, offset: usize) -> usize {
        let checkpoints = &self.index.checkpoints;
        let i = checkpoints
            .partition_point(|&(at, _)| at <= offset)
            .saturating_sub(1);
        let (at, chars) = checkpoints.get(i).copied().unwrap_or((0, 0));
        chars + self.text[at..offset].chars().count()
    }

    /// `offset` (from this statement's start) as a byte offset in the file.
    pub(crate) fn absolute(&self, offset: usize) -> usize {
        self.base + offset
    }

    pub(crate) fn pos(&self, offset: usize) -> (usize, usize) {
        let offset = self
            .text
            .floor_char_boundary((self.base + offset).min(self.text.len()));
        let line = self.index.starts.partition_point(|&s| s <= offset);
        let from = self.index.starts[line - 1].min(offset);
        (
            line,
            self.chars_before(offset) - self.chars_before(from) + 1,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_fold_like_postgres() {
        assert_eq!(ident("Users"), "users");
        assert_eq!(ident("\"Users\""), "Users");
        assert_eq!(ident("\"a\"\"b\""), "a\"b");
    }

    #[test]
    fn positions_are_one_based_characters() {
        let l = Lines::new("ab\nçd\n");
        assert_eq!(l.pos(0), (1, 1));
        assert_eq!(l.pos(3), (2, 1));
        assert_eq!(l.pos(5), (2, 2));
        assert_eq!(l.pos(100), (3, 1));
    }

    #[test]
    fn positions_on_a_long_line_cross_checkpoints() {
        let text = format!("x\n{}é{}", "a".repeat(1000), "b".repeat(1000));
        let l = Lines::new(&text);
        assert_eq!(l.pos(2 + 1000), (2, 1001));
        assert_eq!(l.pos(2 + 1000 + 2 + 600), (2, 1602));
        // Inside the two bytes of `é`: its own column.
        assert_eq!(l.pos(2 + 1001), (2, 1001));
    }
}
