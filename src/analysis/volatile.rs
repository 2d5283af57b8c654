//! Whether a statement's condition selects the same rows twice: a backup
//! evaluates an UPDATE's or DELETE's WHERE clause before the migration
//! runs, in another transaction, and only a condition without random or
//! clock-dependent calls selects there the rows the statement touches.

/// Functions whose value differs between two evaluations in different
/// transactions (PostgreSQL volatile functions, and the stable ones that
/// read the transaction's clock), and SQLite's counterparts.
const CALLS: &[&str] = &[
    "random",
    "random_normal",
    "setseed",
    "randomblob",
    "now",
    "clock_timestamp",
    "statement_timestamp",
    "transaction_timestamp",
    "timeofday",
    "nextval",
    "currval",
    "lastval",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "txid_current",
    "pg_current_xact_id",
    "changes",
    "last_insert_rowid",
];

/// SQL's clock keywords, written without parentheses.
const KEYWORDS: &[&str] = &[
    "current_timestamp",
    "current_date",
    "current_time",
    "localtimestamp",
    "localtime",
];

/// The first call in `sql` whose value can differ between the backup and
/// the statement (`random()`, `now()`, `'now'`, `CURRENT_DATE`…), as
/// written; `None` when there is none. Text in string literals and quoted
/// identifiers is not code, except the literal `'now'` that both
/// PostgreSQL's casts and SQLite's date functions read as the clock.
pub(crate) fn volatile_call(sql: &str) -> Option<String> {
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' || c == '"' {
            let start = i + 1;
            let mut j = start;
            while j < chars.len() {
                if chars[j] == c {
                    if chars.get(j + 1) == Some(&c) {
                        j += 2;
                        continue;
                    }
                    break;
                }
                j += 1;
            }
            let inner: String = chars[start..j.min(chars.len())].iter().collect();
            if c == '\'' && inner.trim().eq_ignore_ascii_case("now") {
                return Some("'now'".into());
            }
            i = j + 1;
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect::<String>().to_lowercase();
            let called = chars[i..]
                .iter()
                .find(|c| !c.is_whitespace())
                .is_some_and(|&c| c == '(');
            if called && CALLS.contains(&word.as_str()) {
                return Some(format!("{word}()"));
            }
            if KEYWORDS.contains(&word.as_str()) {
                return Some(word.to_uppercase());
            }
            continue;
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::volatile_call;

    #[test]
    fn finds_calls_that_differ_between_backup_and_statement() {
        assert_eq!(volatile_call("random() < 0.1").as_deref(), Some("random()"));
        assert_eq!(
            volatile_call("created_at < NOW () - interval '1 day'").as_deref(),
            Some("now()")
        );
        assert_eq!(
            volatile_call("d < CURRENT_DATE").as_deref(),
            Some("CURRENT_DATE")
        );
        assert_eq!(
            volatile_call("at < date('now', '-1 day')").as_deref(),
            Some("'now'")
        );
    }

    #[test]
    fn leaves_plain_conditions_and_text_alone() {
        assert_eq!(volatile_call("status = 'random()' AND id > 5"), None);
        assert_eq!(volatile_call("\"now\" = 1 AND random_id = 3"), None);
        assert_eq!(volatile_call("lower(email) = 'x@y.z'"), None);
    }
}
