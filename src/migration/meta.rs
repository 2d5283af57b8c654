//! `migration.toml`: optional per-migration settings, parsed strictly.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Reversibility {
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
pub(crate) struct Meta {
    pub(crate) description: Option<String>,
    pub(crate) reversibility: Option<Reversibility>,
    #[serde(default = "yes")]
    pub(crate) transaction: bool,
    #[serde(default, with = "duration_opt")]
    pub(crate) lock_timeout: Option<Duration>,
    #[serde(default, with = "duration_opt")]
    pub(crate) statement_timeout: Option<Duration>,
    pub(crate) retries: Option<u32>,
    #[serde(default)]
    pub(crate) smoke: Vec<Smoke>,
    pub(crate) backfill: Option<Backfill>,
    /// `false`: `down` does not put the pre-up backup back, because down.sql
    /// rebuilds the destroyed data from live data (the contract step of a
    /// rename copies `content` back into `body`). Restoring the archive
    /// there would undo every write made since the migration ran. The
    /// backup is still taken, for `keel restore` by hand.
    #[serde(default = "yes")]
    pub(crate) restore_on_down: bool,
    /// Owner, on-call, communication, window and abort criteria for this
    /// migration's runbook, over keel.toml's `[runbook]`.
    #[serde(default)]
    pub(crate) runbook: People,
    /// Application code that must be live before this migration runs, in
    /// words (the contract step of a rename: code that no longer uses the
    /// old name). `keel up` stops before it until told `--through`.
    pub(crate) requires_deploy: Option<String>,
    /// The monitoring window after `execute` for this migration, over the
    /// environment's `monitor` ("0s": none).
    #[serde(default, with = "duration_opt")]
    pub(crate) monitor: Option<Duration>,
    /// Where `keel import` took it from: `TOOL: file`.
    pub(crate) imported_from: Option<String>,
}

/// keel.toml's `[runbook]` (a migration.toml's `[runbook]` overrides it
/// key by key): what an on-call operator needs that SQL cannot say.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct People {
    /// The team or person answerable for the change.
    pub(crate) owner: Option<String>,
    /// How to reach whoever is on call while it runs (pager, channel, phone).
    pub(crate) on_call: Option<String>,
    /// Who is told before the run starts (channels, lists).
    #[serde(default)]
    pub(crate) notify_before: Vec<String>,
    /// Who is told once it is done, or rolled back.
    #[serde(default)]
    pub(crate) notify_after: Vec<String>,
    /// When the migration may run, in words (e.g. "Tue–Thu 09:00–16:00 UTC").
    pub(crate) window: Option<String>,
    /// Reasons to stop besides keel's own, one sentence each.
    #[serde(default)]
    pub(crate) abort_if: Vec<String>,
}

impl People {
    /// `over`'s values where it sets them, else these.
    pub(crate) fn overridden_by(&self, over: &People) -> People {
        let pick = |a: &Option<String>, b: &Option<String>| b.clone().or_else(|| a.clone());
        let list =
            |a: &Vec<String>, b: &Vec<String>| if b.is_empty() { a.clone() } else { b.clone() };
        People {
            owner: pick(&self.owner, &over.owner),
            on_call: pick(&self.on_call, &over.on_call),
            notify_before: list(&self.notify_before, &over.notify_before),
            notify_after: list(&self.notify_after, &over.notify_after),
            window: pick(&self.window, &over.window),
            abort_if: list(&self.abort_if, &over.abort_if),
        }
    }
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
            runbook: Default::default(),
            requires_deploy: None,
            monitor: None,
            imported_from: None,
        }
    }
}

/// A post-migration check: `sql` must return one value equal to `expect`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Smoke {
    pub(crate) name: String,
    pub(crate) sql: String,
    pub(crate) expect: toml::Value,
}

/// A batched, resumable data change that runs after the migration's SQL.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Backfill {
    pub(crate) table: String,
    pub(crate) key: String,
    pub(crate) set: BTreeMap<String, String>,
    #[serde(rename = "where")]
    pub(crate) filter: Option<String>,
    pub(crate) batch_size: Option<u64>,
    pub(crate) delay_ms: Option<u64>,
    /// Pause while a replica lags more than this (default 5s).
    #[serde(default, with = "duration_opt")]
    pub(crate) max_replica_lag: Option<Duration>,
    /// Pause while more sessions than this run a statement (default 64).
    pub(crate) max_active_sessions: Option<u32>,
    /// Where each setting is written in migration.toml, for messages.
    #[serde(skip)]
    pub(crate) at: BackfillPositions,
}

/// When a backfill pauses between batches: `[backfill]` of migration.toml,
/// over keel.toml's `[backfill]`, over keel's defaults.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Throttle {
    /// Any replica further behind than this (default 5s).
    #[serde(default, with = "duration_opt")]
    pub(crate) max_replica_lag: Option<Duration>,
    /// More sessions than this running a statement at once (default 64):
    /// the server is busy, the backfill can wait.
    pub(crate) max_active_sessions: Option<u32>,
}

impl Backfill {
    pub(crate) fn throttle(&self) -> Throttle {
        Throttle {
            max_replica_lag: self.max_replica_lag,
            max_active_sessions: self.max_active_sessions,
        }
    }
}

impl Throttle {
    /// These settings where set, else `under`'s.
    pub(crate) fn over(self, under: Throttle) -> Throttle {
        Throttle {
            max_replica_lag: self.max_replica_lag.or(under.max_replica_lag),
            max_active_sessions: self.max_active_sessions.or(under.max_active_sessions),
        }
    }
}

/// A 1-based (line, column) in migration.toml.
pub(crate) type Pos = (usize, usize);

/// Where the settings of `[backfill]` are written.
#[derive(Debug, Clone, Default)]
pub(crate) struct BackfillPositions {
    pub(crate) section: Pos,
    pub(crate) table: Pos,
    pub(crate) key: Pos,
    /// Per column of `set`: where its name and where its expression is.
    pub(crate) set: BTreeMap<String, (Pos, Pos)>,
    pub(crate) filter: Pos,
    pub(crate) batch_size: Pos,
}

/// A problem in migration.toml, with the 1-based position of the offending
/// key or value and what to do about it.
#[derive(Debug)]
pub(crate) struct MetaError {
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) message: String,
    pub(crate) fix: String,
}

impl Meta {
    /// Parses migration.toml strictly and checks what keel will paste into
    /// SQL of its own (see [`super::backfill::check`]): every problem found.
    pub(crate) fn parse(text: &str) -> Result<Meta, Vec<MetaError>> {
        let mut meta: Meta = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            vec![MetaError {
                line,
                column,
                message: e.message().trim().to_string(),
                fix: "valid keys: description, reversibility, transaction, lock_timeout, \
                      statement_timeout, retries, restore_on_down, requires_deploy, monitor, imported_from, \
                      [[smoke]], [backfill], [runbook]"
                    .into(),
            }]
        })?;
        if meta
            .requires_deploy
            .as_deref()
            .is_some_and(|d| d.trim().is_empty())
        {
            let at = text.find("requires_deploy").unwrap_or(0);
            let (line, column) = line_col(text, at);
            return Err(vec![MetaError {
                line,
                column,
                message: "requires_deploy is empty: it says what must be deployed first".into(),
                fix: "describe the deploy, e.g. requires_deploy = \"code that reads only posts.content\"; or remove the key".into(),
            }]);
        }
        if let Some(backfill) = meta.backfill.as_mut() {
            backfill.at = positions(text);
            let mut problems = super::backfill::check(backfill);
            problems.sort_by_key(|p| (p.line, p.column));
            if !problems.is_empty() {
                return Err(problems);
            }
        }
        Ok(meta)
    }
}

/// The positions of `[backfill]`'s settings, read from the same text a
/// second time with spans (the typed parse has none).
fn positions(text: &str) -> BackfillPositions {
    use toml::Spanned;
    #[derive(Deserialize)]
    struct File {
        backfill: Option<Spanned<Section>>,
    }
    #[derive(Deserialize)]
    struct Section {
        table: Option<Spanned<toml::Value>>,
        key: Option<Spanned<toml::Value>>,
        set: Option<BTreeMap<Spanned<String>, Spanned<toml::Value>>>,
        #[serde(rename = "where")]
        filter: Option<Spanned<toml::Value>>,
        batch_size: Option<Spanned<toml::Value>>,
    }
    let Ok(File {
        backfill: Some(section),
    }) = toml::from_str::<File>(text)
    else {
        return BackfillPositions::default();
    };
    let pos = |s: std::ops::Range<usize>| line_col(text, s.start);
    let section_at = pos(section.span());
    let s = section.into_inner();
    let at = |v: Option<Spanned<toml::Value>>| v.map_or(section_at, |v| pos(v.span()));
    BackfillPositions {
        section: section_at,
        table: at(s.table),
        key: at(s.key),
        set: s
            .set
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                let key_at = pos(k.span());
                (k.into_inner(), (key_at, pos(v.span())))
            })
            .collect(),
        filter: at(s.filter),
        batch_size: at(s.batch_size),
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

pub(crate) mod duration_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        humantime::parse_duration(&text).map(Some).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration ({e}); write it like \"500ms\", \"2s\", \"15min\" or \"1h\""
            ))
        })
    }

    /// A duration that is there when its key is (the struct's default
    /// fills it otherwise).
    pub(crate) fn plain<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        deserialize(d)?.ok_or_else(|| serde::de::Error::custom("a duration is needed here"))
    }

    pub(crate) fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
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
        let err = Meta::parse("description = \"x\"\nlock_timout = \"2s\"\n")
            .unwrap_err()
            .remove(0);
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
        let err = Meta::parse("lock_timeout = \"soon\"\n")
            .unwrap_err()
            .remove(0);
        assert_eq!(err.line, 1);
        assert!(err.message.contains("\"2s\""), "{}", err.message);
    }
}
