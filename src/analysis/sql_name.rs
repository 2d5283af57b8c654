//! Names as a fix must spell them in SQL. keel keeps names as PostgreSQL
//! stores them (`User`, `orgId`); printed bare in a fix, `ALTER TABLE User`
//! is a syntax error and `ON Document` names `document`. These quote a
//! name exactly when PostgreSQL would otherwise fold it or read a keyword.

use crate::db::Relation;

/// `name` as SQL spells it: as it is when it is lower case letters, digits,
/// `_` and `$` (not first) and not a reserved word; double-quoted
/// otherwise. The placeholder `…` stays as it is.
pub(crate) fn ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$')
        && !super::keyword::is_reserved(name);
    if plain || name == "…" {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// A relation's text form (`name`, `schema.name`, a part quoted where it
/// holds a dot) as SQL spells it.
pub(crate) fn relation(text: &str) -> String {
    let r = Relation::parse(text);
    match &r.schema {
        Some(s) => format!("{}.{}", ident(s), ident(&r.name)),
        None => ident(&r.name),
    }
}

/// `op`'s own text with ` NOT VALID` after it, when the statement is one
/// `ALTER TABLE … ADD …` clause: the fix keeps its names, quoting and
/// column lists exactly as written. `None` when it has several clauses.
pub(crate) fn with_not_valid(op: &super::operation::Operation) -> Option<String> {
    // A line comment at the end would swallow what is put after it.
    let commented =
        squawk_lexer::tokenize(&op.sql).any(|t| t.kind == squawk_lexer::TokenKind::LineComment);
    (op.actions.len() == 1 && !commented && !op.sql.to_ascii_lowercase().contains("not valid"))
        .then(|| format!("{} NOT VALID", op.sql.trim_end()))
}

/// An `ADD [CONSTRAINT name] CHECK|FOREIGN KEY …` clause of a longer
/// ALTER TABLE, as a statement of its own made `NOT VALID`, and the
/// constraint's name in it: the clause's own name, else `unnamed` (the
/// fix names it, so that the VALIDATE can). `None` when the clause is not
/// known, not an ADD, already NOT VALID, or ends in a line comment.
pub(crate) fn clause_not_valid(
    op: &super::operation::Operation,
    a: &super::operation::Action,
    table: &str,
    unnamed: &str,
) -> Option<(String, String)> {
    let clause = op
        .sql
        .get(a.clause.start.checked_sub(op.offset)?..a.clause.end.checked_sub(op.offset)?)?
        .trim();
    let lower = clause.to_ascii_lowercase();
    let commented =
        squawk_lexer::tokenize(clause).any(|t| t.kind == squawk_lexer::TokenKind::LineComment);
    if commented || !lower.starts_with("add") || lower.contains("not valid") {
        return None;
    }
    let rest = clause[3..].trim_start();
    let t = relation(table);
    if rest.to_ascii_lowercase().starts_with("constraint") {
        let name = match &a.kind {
            super::operation::ActionKind::AddConstraint { name: Some(n), .. } => n.clone(),
            _ => return None,
        };
        Some((format!("ALTER TABLE {t} ADD {rest} NOT VALID"), name))
    } else {
        Some((
            format!(
                "ALTER TABLE {t} ADD CONSTRAINT {} {rest} NOT VALID",
                ident(unnamed)
            ),
            unnamed.to_string(),
        ))
    }
}

/// The words of `text` (lowercased by the caller), each with its byte offset.
fn words(text: &str) -> Vec<(usize, &str)> {
    text.split_whitespace()
        .map(|w| (w.as_ptr() as usize - text.as_ptr() as usize, w))
        .collect()
}

/// `CREATE [UNIQUE] INDEX …` as written, made `CONCURRENTLY` (and `IF NOT
/// EXISTS`, so that a retry after a failed build goes on): the fix keeps
/// the statement's own names, columns and options.
pub(crate) fn concurrently(sql: &str) -> Option<String> {
    let lower = sql.to_ascii_lowercase();
    let words = words(&lower);
    let at = words.iter().position(|(_, w)| *w == "index")?;
    if words.first().map(|(_, w)| *w) != Some("create") || at > 2 {
        return None;
    }
    let end = words[at].0 + "index".len();
    let exists = words
        .get(at + 1..at + 4)
        .is_some_and(|w| w.iter().map(|(_, w)| *w).collect::<Vec<_>>() == ["if", "not", "exists"]);
    let guard = if exists { "" } else { " IF NOT EXISTS" };
    Some(format!(
        "{} CONCURRENTLY{guard}{}",
        &sql[..end],
        &sql[end..]
    ))
}

/// `CREATE [UNIQUE] INDEX … ON table …` as written, made `ON ONLY table`
/// and without `CONCURRENTLY` (refused on a partitioned table).
pub(crate) fn on_only(sql: &str) -> Option<String> {
    let sql = sql.trim_end().trim_end_matches(';');
    let lower = sql.to_ascii_lowercase();
    let words = words(&lower);
    let on = words.iter().position(|(_, w)| *w == "on")?;
    if words.first().map(|(_, w)| *w) != Some("create") {
        return None;
    }
    let at = words[on].0 + "on".len();
    // CONCURRENTLY, written in any case, comes before ON.
    let head = match words[..on].iter().find(|(_, w)| *w == "concurrently") {
        Some((c, w)) => format!("{}{}", &sql[..*c], sql[c + w.len()..at].trim_start()),
        None => sql[..at].to_string(),
    };
    Some(format!("{head} ONLY{}", &sql[at..]))
}

/// The column list right after the word `UNIQUE` or `PRIMARY KEY` (`kind`)
/// of a table constraint, as written; `None` when something else follows
/// (`NULLS NOT DISTINCT`, which an index spells elsewhere).
pub(crate) fn constraint_columns(sql: &str, kind: &str) -> Option<String> {
    let lower = sql.to_ascii_lowercase();
    let kind = kind.to_ascii_lowercase();
    // The keyword as a word: not `unique` inside `unique_things`.
    let at = lower.match_indices(&kind).map(|(i, _)| i).find(|&i| {
        let before = lower[..i].chars().next_back();
        let after = lower[i + kind.len()..].chars().next();
        before.is_none_or(|c| !c.is_alphanumeric() && c != '_' && c != '"')
            && after.is_none_or(|c| c.is_whitespace() || c == '(')
    })? + kind.len();
    let rest = sql[at..].trim_start();
    if !rest.starts_with('(') {
        return None;
    }
    let mut depth = 0;
    for (i, c) in rest.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(rest[..=i].to_string());
                }
            }
            _ => {}
        }
    }
    None
}

/// `REINDEX [(…)] {INDEX|TABLE|SCHEMA|DATABASE|SYSTEM} name` as written,
/// with CONCURRENTLY where PostgreSQL takes it: after the kind.
pub(crate) fn reindex_concurrently(sql: &str) -> String {
    let sql = sql.trim_end().trim_end_matches(';');
    let lower = sql.to_ascii_lowercase();
    let kinds = ["index", "table", "schema", "database", "system"];
    match words(&lower).into_iter().find(|(_, w)| kinds.contains(w)) {
        Some((at, w)) => format!(
            "{} CONCURRENTLY{}",
            &sql[..at + w.len()],
            &sql[at + w.len()..]
        ),
        None => "REINDEX … CONCURRENTLY".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_only_where_postgres_needs_it() {
        assert_eq!(ident("users"), "users");
        assert_eq!(ident("user_id2"), "user_id2");
        assert_eq!(ident("User"), "\"User\"");
        assert_eq!(ident("orgId"), "\"orgId\"");
        assert_eq!(ident("user"), "\"user\"");
        assert_eq!(ident("2fa"), "\"2fa\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(ident("…"), "…");
        assert_eq!(relation("Document"), "\"Document\"");
        assert_eq!(
            constraint_columns(
                "ALTER TABLE unique_things ADD CONSTRAINT k UNIQUE(a, b)",
                "UNIQUE"
            ),
            Some("(a, b)".to_string())
        );
        assert_eq!(
            on_only("CREATE INDEX Concurrently i ON p (a);"),
            Some("CREATE INDEX i ON ONLY p (a)".to_string())
        );
        assert_eq!(relation("app.User"), "app.\"User\"");
        assert_eq!(relation("\"audit.log\""), "\"audit.log\"");
    }

    #[test]
    fn index_statements_made_concurrent_as_written() {
        assert_eq!(
            concurrently(
                "CREATE INDEX \"User_email_idx\" ON \"User\" (\"email\") WHERE deleted_at IS NULL"
            )
            .as_deref(),
            Some(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS \"User_email_idx\" ON \"User\" (\"email\") WHERE deleted_at IS NULL"
            )
        );
        assert_eq!(
            concurrently("create unique index if not exists i on t (a)").as_deref(),
            Some("create unique index CONCURRENTLY if not exists i on t (a)")
        );
        assert_eq!(concurrently("ALTER TABLE t ADD c int"), None);
    }
}
