//! `[backfill]` checked when migration.toml is read, before anything runs:
//! keel pastes each `set` value and the `where` filter into an UPDATE inside
//! parentheses, so each must be exactly one SQL expression (one that closes
//! those parentheses early would overwrite undeclared columns, or widen the
//! filter to every row). Names are quoted, but must be names keel can write.
//! The check is the PostgreSQL grammar's and applies to SQLite too.

use super::meta::{Backfill, MetaError, Pos};
use crate::sql::expr;

/// PostgreSQL keeps the first 63 bytes of an identifier (NAMEDATALEN - 1)
/// and drops the rest with only a NOTICE, so a longer name means another
/// column.
const MAX_NAME_BYTES: usize = 63;

/// Every problem of `b`, in the order they are written.
pub(crate) fn check(b: &Backfill) -> Vec<MetaError> {
    let mut problems = Vec::new();
    let mut problem = |(line, column): Pos, message: String, fix: &str| {
        problems.push(MetaError {
            line,
            column,
            message,
            fix: fix.to_string(),
        })
    };
    if let Some(why) = bad_name(&b.table, false) {
        problem(
            b.at.table,
            format!("[backfill] table = {:?}: {why}", b.table),
            "write the table's name as it is in the database, e.g. table = \"users\" or \"app.users\"",
        );
    }
    if let Some(why) = bad_name(&b.key, true) {
        problem(
            b.at.key,
            format!("[backfill] key = {:?}: {why}", b.key),
            "write the name of the table's integer primary key column, e.g. key = \"id\"",
        );
    }
    if b.set.is_empty() {
        problem(
            b.at.section,
            "[backfill] has an empty `set`: there is nothing to backfill".into(),
            "name each column to fill and its expression: set = { column = \"expression\" }",
        );
    }
    for (column, expression) in &b.set {
        let (key_at, value_at) = b.at.set.get(column).copied().unwrap_or_default();
        if let Some(why) = bad_name(column, true) {
            problem(
                key_at,
                format!("[backfill] set: column {column:?}: {why}"),
                "each key of `set` is one column's name; write one key per column",
            );
        }
        if *column == b.key {
            problem(
                key_at,
                format!(
                    "[backfill] set changes the key column {column:?}, which the batches walk by: \
                     rows would move between batches, be missed or done twice"
                ),
                "backfill other columns; change keys in up.sql",
            );
        }
        if let Err(why) = expr::check(expression) {
            problem(
                value_at,
                format!(
                    "[backfill] set: the expression for {column:?} is not one SQL expression: {}",
                    why.0
                ),
                "write one expression per column, e.g. \"upper(name)\"; \
                 to fill another column, give it its own key in `set`",
            );
        }
    }
    if let Some(filter) = b.filter.as_deref().filter(|f| !f.trim().is_empty())
        && let Err(why) = expr::check(filter)
    {
        problem(
            b.at.filter,
            format!("[backfill] where is not one SQL condition: {}", why.0),
            "write one condition, e.g. \"first_name IS NULL AND name IS NOT NULL\" \
             (combine conditions with AND / OR inside it)",
        );
    }
    if b.batch_size == Some(0) {
        problem(
            b.at.batch_size,
            "[backfill] batch_size = 0: a batch of no rows never gets through the table".into(),
            "set batch_size to 1 or more (the default is 1000), or leave it out",
        );
    }
    problems
}

/// Why `name` is not a name keel can quote and mean what it says.
fn bad_name(name: &str, single: bool) -> Option<String> {
    if name.trim().is_empty() {
        return Some("the name is empty".into());
    }
    if name.chars().any(char::is_control) {
        return Some("the name holds a control character (a NUL, tab or line break)".into());
    }
    if name.trim() != name {
        return Some(
            "the name starts or ends with a space, which would be part of the quoted name".into(),
        );
    }
    if single && name.len() > MAX_NAME_BYTES {
        return Some(format!(
            "the name is {} bytes long; PostgreSQL keeps only the first {MAX_NAME_BYTES}, \
             so it would name another column",
            name.len()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::migration::Meta;

    fn problems(backfill: &str) -> Vec<String> {
        match Meta::parse(&format!(
            "[backfill]\ntable = \"items\"\nkey = \"id\"\n{backfill}"
        )) {
            Ok(_) => Vec::new(),
            Err(e) => e
                .into_iter()
                .map(|e| format!("{}:{}: {}", e.line, e.column, e.message))
                .collect(),
        }
    }

    #[test]
    fn a_good_backfill_passes() {
        assert!(problems("set = { w = \"upper(v)\" }\nwhere = \"w IS NULL\"\n").is_empty());
    }

    #[test]
    fn each_problem_names_its_place() {
        let p = problems(
            "set = { w = \"upper(v)), v = ('overwritten'\", id = \"1\" }\n\
             where = \"true) OR (true\"\nbatch_size = 0\n",
        );
        assert_eq!(p.len(), 4, "{p:#?}");
        assert!(
            p[0].starts_with("4:13: [backfill] set: the expression for \"w\""),
            "{p:#?}"
        );
        assert!(
            p[1].starts_with("4:46: [backfill] set changes the key column \"id\""),
            "{p:#?}"
        );
        assert!(
            p[2].starts_with("5:9: [backfill] where is not one SQL condition"),
            "{p:#?}"
        );
        assert!(
            p[3].starts_with("6:14: [backfill] batch_size = 0"),
            "{p:#?}"
        );
    }

    #[test]
    fn names_must_be_writable() {
        let long = "c".repeat(64);
        let p = problems(&format!("set = {{ \"{long}\" = \"1\", \" v\" = \"2\" }}\n"));
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(p.iter().any(|p| p.contains("64 bytes long")), "{p:#?}");
        assert!(
            p.iter().any(|p| p.contains("starts or ends with a space")),
            "{p:#?}"
        );
        assert!(problems("set = {}\n")[0].contains("empty `set`"));
    }
}
