//! Identifiers in SQL. Every identifier keel puts into SQL goes through
//! here; values never do: they travel as bind parameters.
//!
//! A table is named by a [`Relation`]. Its text form (what the analysis,
//! keel.toml, migration.toml and manifests hold) is `schema.name`, or `name`
//! alone for "whatever the search path finds"; a part that contains a `.`
//! or a `"` is written double-quoted, so `"audit.log"` is one table and
//! `audit.log` is table `log` in schema `audit`. Case is kept as written in
//! the text form (`Users` is the table `Users`).

use std::fmt;

/// Quotes one identifier for PostgreSQL and SQLite (both use double quotes,
/// with an embedded quote doubled). A dot is part of the name: a qualified
/// table name goes through [`quote_relation`].
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A table (or other relation), optionally schema-qualified.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Relation {
    /// The schema, when given; `None`: resolved through the search path.
    pub schema: Option<String>,
    /// The relation's own name.
    pub name: String,
}

impl Relation {
    /// A relation from its parts, taken as they are (no unquoting or folding).
    pub fn new(schema: Option<&str>, name: &str) -> Relation {
        Relation {
            schema: schema.map(str::to_string),
            name: name.to_string(),
        }
    }

    /// Reads the text form: parts split at dots outside double quotes, a
    /// part that starts with `"` read up to its closing quote (`""` inside
    /// is one quote). A quote anywhere else is an ordinary character, so
    /// hand-written names never lose or gain characters. More than two
    /// parts keep the last two (a database name in front is PostgreSQL's to
    /// check, not keel's).
    pub fn parse(text: &str) -> Relation {
        let mut parts: Vec<String> = Vec::new();
        let mut chars = text.chars().peekable();
        loop {
            let mut part = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    if c == '"' {
                        if chars.peek() == Some(&'"') {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    part.push(c);
                }
            }
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                part.push(c);
                chars.next();
            }
            parts.push(part);
            if chars.next().is_none() {
                break;
            }
        }
        let name = parts.pop().unwrap_or_default();
        Relation {
            schema: parts.pop(),
            name,
        }
    }

    /// The text form for people: without the default schemas (`public`,
    /// SQLite's `main`), as the rest of keel names tables.
    pub fn shown(&self) -> String {
        match self.schema.as_deref() {
            Some("public" | "main") => Relation {
                schema: None,
                name: self.name.clone(),
            }
            .to_string(),
            _ => self.to_string(),
        }
    }

    /// The relation in SQL, every part quoted.
    pub fn quoted(&self) -> String {
        match &self.schema {
            Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&self.name)),
            None => quote_ident(&self.name),
        }
    }
}

/// One part of the text form: quoted only when a dot or quote in it would
/// otherwise be read as syntax.
fn part(f: &mut fmt::Formatter<'_>, p: &str) -> fmt::Result {
    if p.contains(['.', '"']) || p.is_empty() {
        write!(f, "\"{}\"", p.replace('"', "\"\""))
    } else {
        f.write_str(p)
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = &self.schema {
            part(f, s)?;
            f.write_str(".")?;
        }
        part(f, &self.name)
    }
}

/// A table's text form (see the module docs) quoted for SQL.
pub fn quote_relation(text: &str) -> String {
    Relation::parse(text).quoted()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_escapes_one_identifier() {
        assert_eq!(quote_ident("users"), "\"users\"");
        assert_eq!(quote_ident("audit.log"), "\"audit.log\"");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }

    #[test]
    fn relations_round_trip_through_their_text() {
        for (text, schema, name) in [
            ("users", None, "users"),
            ("public.users", Some("public"), "users"),
            ("\"audit.log\"", None, "audit.log"),
            ("audit.\"log.2024\"", Some("audit"), "log.2024"),
            ("\"we\"\"ird\"", None, "we\"ird"),
            ("Users", None, "Users"),
        ] {
            let r = Relation::parse(text);
            assert_eq!(r, Relation::new(schema, name), "{text}");
            assert_eq!(r.to_string(), text);
        }
        assert_eq!(quote_relation("audit.log"), "\"audit\".\"log\"");
        assert_eq!(quote_relation("\"audit.log\""), "\"audit.log\"");
        // A stray quote is a character, not syntax.
        assert_eq!(Relation::parse("we\"ird"), Relation::new(None, "we\"ird"));
    }
}
