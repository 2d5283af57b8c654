//! `migration.toml`: optional per-migration settings, parsed strictly.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Reversibility {
    #[default]
    Full,
    Partial,
    Irreversible,
}

impl std::fmt::Display for Reversibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reversibility::Full => "full",
            Reversibility::Partial => "partial",
            Reversibility::Irreversible => "irreversible",
        })
    }
}

/// Every key of migration.toml; unknown keys are an error so that a typo
/// (`lock_timout`) never silently drops a safety setting.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub description: Option<String>,
    pub reversibility: Option<Reversibility>,
    #[serde(default = "yes")]
    pub transaction: bool,
    #[serde(default, with = "duration_opt")]
    pub lock_timeout: Option<Duration>,
    #[serde(default, with = "duration_opt")]
    pub statement_timeout: Option<Duration>,
    pub retries: Option<u32>,
    #[serde(default)]
    pub smoke: Vec<Smoke>,
    pub backfill: Option<Backfill>,
    /// `false`: `down` does not put the pre-up backup back, because down.sql
    /// rebuilds the destroyed data from live data (the contract step of a
    /// rename copies `content` back into `body`). Restoring the archive
    /// there would undo every write made since the migration ran. The
    /// backup is still taken, for `keel restore` by hand.
    #[serde(default = "yes")]
    pub restore_on_down: bool,
}

fn yes() -> bool {
    true
}

/// What an empty (or absent) migration.toml means.
impl Default for Meta {
    fn default() -> Meta {
        Meta {
            description: None,
            reversibility: None,
            transaction: true,
            lock_timeout: None,
            statement_timeout: None,
            retries: None,
            smoke: Vec::new(),
            backfill: None,
            restore_on_down: true,
        }
    }
}

/// A post-migration check: `sql` must return one value equal to `expect`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Smoke {
    pub name: String,
    pub sql: String,
    pub expect: toml::Value,
}

/// A batched, resumable data change that runs after the migration's SQL.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Backfill {
    pub table: String,
    pub key: String,
    pub set: BTreeMap<String, String>,
    #[serde(rename = "where")]
    pub filter: Option<String>,
    pub batch_size: Option<u64>,
    pub delay_ms: Option<u64>,
}

/// A problem in migration.toml, with the 1-based position of the offending key.
#[derive(Debug)]
pub struct MetaError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Meta {
    pub fn parse(text: &str) -> Result<Meta, MetaError> {
        toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            MetaError {
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

pub mod duration_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        humantime::parse_duration(&text).map(Some).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration ({e}); write it like \"500ms\", \"2s\", \"15min\" or \"1h\""
            ))
        })
    }

    pub fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_and_empty_mean_the_same() {
        let empty = Meta::parse("").unwrap();
        let absent = Meta::default();
        assert!(empty.transaction && absent.transaction);
        assert!(empty.restore_on_down && absent.restore_on_down);
    }

    #[test]
    fn full_example_parses() {
        let meta = Meta::parse(
            r#"
description = "Add profiles"
reversibility = "partial"
transaction = false
lock_timeout = "2s"
statement_timeout = "15min"
retries = 3

[[smoke]]
name = "one"
sql = "SELECT 1"
expect = 1

[backfill]
table = "users"
key = "id"
set = { first_name = "split_part(name, ' ', 1)" }
where = "first_name IS NULL"
batch_size = 1000
delay_ms = 100
"#,
        )
        .unwrap();
        assert!(!meta.transaction);
        assert_eq!(meta.lock_timeout, Some(Duration::from_secs(2)));
        assert_eq!(meta.statement_timeout, Some(Duration::from_secs(900)));
        assert_eq!(meta.reversibility, Some(Reversibility::Partial));
        assert_eq!(
            meta.backfill.unwrap().filter.as_deref(),
            Some("first_name IS NULL")
        );
    }

    #[test]
    fn unknown_key_names_line_and_valid_keys() {
        let err = Meta::parse("description = \"x\"\nlock_timout = \"2s\"\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 1));
        assert!(
            err.message.contains("unknown field `lock_timout`"),
            "{}",
            err.message
        );
        assert!(err.message.contains("lock_timeout"), "{}", err.message);
    }

    #[test]
    fn bad_duration_says_how_to_write_one() {
        let err = Meta::parse("lock_timeout = \"soon\"\n").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("\"2s\""), "{}", err.message);
    }
}
