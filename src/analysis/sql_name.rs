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
        assert_eq!(relation("app.User"), "app.\"User\"");
        assert_eq!(relation("\"audit.log\""), "\"audit.log\"");
    }
}
