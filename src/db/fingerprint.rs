//! A schema as one readable line per object, comparable between two points
//! in time (before and after a migration's round trip) or two environments.
//!
//! Each dialect builds a [`Fingerprint`] from its catalog
//! ([`Catalog::fingerprint`](super::Catalog::fingerprint)): the key says
//! what an object is (`"<kind> <qualified name>"`, e.g. `column
//! public.posts.published`), the line what it is like (`column
//! public.posts.published boolean NOT NULL DEFAULT false`). Keys and lines
//! carry the schema on PostgreSQL (`public.` included); SQLite has one
//! schema and names objects without it.
//!
//! What is left out on purpose: OIDs and anything else the server numbers,
//! and the order of a table's columns. A column dropped and added again
//! comes back last, which is the same schema to every query that names its
//! columns; two fingerprints that differ only in column order are equal.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

/// Every schema object as one readable line, keyed by what it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    objects: BTreeMap<String, String>,
}

impl Fingerprint {
    /// Records one object; a second line under the same key replaces the
    /// first.
    pub fn insert(&mut self, key: impl Into<String>, line: impl Into<String>) {
        self.objects.insert(key.into(), line.into());
    }

    /// How many objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// No objects at all (an empty database).
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The lines, sorted by key.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.objects.values().map(String::as_str)
    }

    /// SHA-256 (hex) of the lines in key order, each ended by a newline:
    /// equal fingerprints have equal digests.
    pub fn digest(&self) -> String {
        let mut hash = Sha256::new();
        for line in self.lines() {
            hash.update(line.as_bytes());
            hash.update(b"\n");
        }
        hex::encode(hash.finalize())
    }

    /// What changed from `self` to `after`, in key order: objects only in
    /// `self` are removed, only in `after` added, in both with another line
    /// changed.
    pub fn diff(&self, after: &Fingerprint) -> SchemaDiff {
        let mut changes = Vec::new();
        let mut before = self.objects.iter().peekable();
        let mut later = after.objects.iter().peekable();
        loop {
            let change = match (before.peek(), later.peek()) {
                (None, None) => break,
                (Some((k, line)), None) => {
                    let change = removed(k, line);
                    before.next();
                    change
                }
                (None, Some((k, line))) => {
                    let change = added(k, line);
                    later.next();
                    change
                }
                (Some((kb, lb)), Some((ka, la))) => match kb.cmp(ka) {
                    std::cmp::Ordering::Less => {
                        let change = removed(kb, lb);
                        before.next();
                        change
                    }
                    std::cmp::Ordering::Greater => {
                        let change = added(ka, la);
                        later.next();
                        change
                    }
                    std::cmp::Ordering::Equal => {
                        let change = (lb != la).then(|| SchemaChange::Changed {
                            key: kb.to_string(),
                            before: lb.to_string(),
                            after: la.to_string(),
                        });
                        before.next();
                        later.next();
                        match change {
                            Some(change) => change,
                            None => continue,
                        }
                    }
                },
            };
            changes.push(change);
        }
        SchemaDiff { changes }
    }
}

fn removed(key: &str, line: &str) -> SchemaChange {
    SchemaChange::Removed {
        key: key.to_string(),
        line: line.to_string(),
    }
}

fn added(key: &str, line: &str) -> SchemaChange {
    SchemaChange::Added {
        key: key.to_string(),
        line: line.to_string(),
    }
}

/// How one schema differs from another, object by object in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SchemaDiff {
    /// One entry per object that is not the same in both.
    pub changes: Vec<SchemaChange>,
}

/// One object that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum SchemaChange {
    /// Only in the first fingerprint.
    Removed { key: String, line: String },
    /// Only in the second.
    Added { key: String, line: String },
    /// In both, with another line.
    Changed {
        key: String,
        before: String,
        after: String,
    },
}

impl SchemaChange {
    /// The object's key.
    pub fn key(&self) -> &str {
        match self {
            SchemaChange::Removed { key, .. }
            | SchemaChange::Added { key, .. }
            | SchemaChange::Changed { key, .. } => key,
        }
    }
}

impl SchemaDiff {
    /// The two schemas are the same.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The keys of the objects that differ, in order.
    pub fn objects(&self) -> Vec<&str> {
        self.changes.iter().map(SchemaChange::key).collect()
    }
}

/// `- <line before>` and `+ <line after>`, one object after the other: a
/// removed object has only its `-` line, an added one only its `+` line.
impl fmt::Display for SchemaDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for change in &self.changes {
            match change {
                SchemaChange::Removed { line, .. } => writeln!(f, "- {line}")?,
                SchemaChange::Added { line, .. } => writeln!(f, "+ {line}")?,
                SchemaChange::Changed { before, after, .. } => {
                    writeln!(f, "- {before}")?;
                    writeln!(f, "+ {after}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprint(objects: &[(&str, &str)]) -> Fingerprint {
        let mut f = Fingerprint::default();
        for (key, line) in objects {
            f.insert(*key, *line);
        }
        f
    }

    const PUBLISHED: &str = "column public.posts.published";

    #[test]
    fn equal_fingerprints_have_no_diff_and_one_digest() {
        let a = fingerprint(&[
            ("table public.posts", "table public.posts"),
            (PUBLISHED, "column public.posts.published boolean"),
        ]);
        // Inserted in another order: still equal.
        let b = fingerprint(&[
            (PUBLISHED, "column public.posts.published boolean"),
            ("table public.posts", "table public.posts"),
        ]);
        assert_eq!(a, b);
        assert!(a.diff(&b).is_empty());
        assert_eq!(a.diff(&b).to_string(), "");
        assert_eq!(a.digest(), b.digest());
        assert_eq!(a.len(), 2);
        assert!(!a.is_empty());
        assert!(Fingerprint::default().is_empty());
        assert_eq!(
            a.lines().collect::<Vec<_>>(),
            [
                "column public.posts.published boolean",
                "table public.posts"
            ]
        );
    }

    #[test]
    fn a_changed_line_shows_before_and_after() {
        let before = fingerprint(&[
            ("table public.posts", "table public.posts"),
            (
                PUBLISHED,
                "column public.posts.published boolean NOT NULL DEFAULT false",
            ),
        ]);
        let after = fingerprint(&[
            ("table public.posts", "table public.posts"),
            (PUBLISHED, "column public.posts.published boolean"),
        ]);
        let diff = before.diff(&after);
        assert_eq!(diff.objects(), [PUBLISHED]);
        assert_eq!(
            diff.to_string(),
            "- column public.posts.published boolean NOT NULL DEFAULT false\n\
             + column public.posts.published boolean\n"
        );
        assert_ne!(before.digest(), after.digest());
    }

    #[test]
    fn removed_and_added_objects_are_listed_in_key_order() {
        let before = fingerprint(&[
            ("index public.a_idx", "index public.a_idx ON public.t (a)"),
            ("table public.t", "table public.t"),
            ("view public.v", "view public.v AS SELECT 1"),
        ]);
        let after = fingerprint(&[
            ("index public.b_idx", "index public.b_idx ON public.t (b)"),
            ("table public.t", "table public.t"),
            ("table public.u", "table public.u"),
        ]);
        let diff = before.diff(&after);
        assert_eq!(
            diff.objects(),
            [
                "index public.a_idx",
                "index public.b_idx",
                "table public.u",
                "view public.v"
            ]
        );
        assert_eq!(
            diff.to_string(),
            "- index public.a_idx ON public.t (a)\n\
             + index public.b_idx ON public.t (b)\n\
             + table public.u\n\
             - view public.v AS SELECT 1\n"
        );
        // The other way round, every change is the reverse.
        assert_eq!(
            after.diff(&before).to_string(),
            "+ index public.a_idx ON public.t (a)\n\
             - index public.b_idx ON public.t (b)\n\
             - table public.u\n\
             + view public.v AS SELECT 1\n"
        );
    }

    #[test]
    fn empty_fingerprints_compare() {
        let empty = Fingerprint::default();
        let one = fingerprint(&[("table public.t", "table public.t")]);
        assert_eq!(empty.diff(&one).to_string(), "+ table public.t\n");
        assert_eq!(one.diff(&empty).to_string(), "- table public.t\n");
        assert!(empty.diff(&empty).is_empty());
    }

    #[test]
    fn diff_serializes_tagged_by_change() {
        let before = fingerprint(&[("table public.t", "table public.t")]);
        let after = fingerprint(&[("table public.t", "table public.t UNLOGGED")]);
        let json = serde_json::to_value(before.diff(&after)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"changes": [{
                "change": "changed",
                "key": "table public.t",
                "before": "table public.t",
                "after": "table public.t UNLOGGED",
            }]})
        );
    }

    #[test]
    fn a_fingerprint_round_trips_through_json() {
        let f = fingerprint(&[("table public.t", "table public.t")]);
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(json, r#"{"objects":{"table public.t":"table public.t"}}"#);
        assert_eq!(serde_json::from_str::<Fingerprint>(&json).unwrap(), f);
    }
}
