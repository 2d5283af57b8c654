//! Migration files on disk → [`Migration`] values (version, name, checksum, metadata).

mod backfill;
pub(crate) mod bounds;
mod checksum;
pub(crate) mod meta;
mod source;

pub(crate) use bounds::Bounds;
pub(crate) use checksum::checksum;
pub(crate) use meta::{Meta, People, Reversibility};
pub(crate) use source::{
    SourceError, is_migration_name, is_snake_case, load_dir, load_dir_on, to_snake_case,
};

use std::fmt;
use std::path::PathBuf;

/// A migration version: a UTC timestamp `YYYYMMDDHHMMSS`, ordered numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Version(pub u64);

impl Version {
    /// Parses exactly 14 ASCII digits.
    pub(crate) fn parse(s: &str) -> Option<Version> {
        if s.len() == 14 && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok().map(Version)
        } else {
            None
        }
    }

    /// The version for a migration created now (UTC).
    pub(crate) fn now() -> Version {
        let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
        Version(stamp.parse().expect("a formatted timestamp is 14 digits"))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:014}", self.0)
    }
}

impl std::str::FromStr for Version {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s).ok_or_else(|| {
            format!("`{s}` is not a migration version: expected 14 digits, YYYYMMDDHHMMSS (UTC)")
        })
    }
}

/// One migration folder, read and checked.
#[derive(Debug, Clone)]
pub(crate) struct Migration {
    pub(crate) version: Version,
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    pub(crate) up: String,
    /// `None` when down.sql is absent; an empty file is `Some("")`.
    pub(crate) down: Option<String>,
    /// Shared: most migrations have no migration.toml, and a run may hold
    /// thousands of them.
    pub(crate) meta: std::sync::Arc<Meta>,
    /// Hex SHA-256 over up.sql, down.sql and migration.toml (see [`checksum`]).
    pub(crate) checksum: String,
}

impl Migration {
    /// `<version>_<name>`, the folder name and the id used in runbooks and records.
    pub(crate) fn id(&self) -> String {
        format!("{}_{}", self.version, self.name)
    }

    pub(crate) fn up_path(&self) -> PathBuf {
        self.dir.join("up.sql")
    }

    pub(crate) fn down_path(&self) -> PathBuf {
        self.dir.join("down.sql")
    }

    /// True when down.sql exists and holds at least one statement.
    pub(crate) fn has_down(&self) -> bool {
        self.down
            .as_deref()
            .is_some_and(|d| !crate::sql::split(d).is_empty())
    }
}

/// A migration a command names (`keel plan V`, `execute V`, …) that is not
/// in the migrations folder. Its text is the whole message, with the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct NoSuchMigration(String);

/// The migration `wanted` names, by version (`20250101120000`) or full id
/// (`20250101120000_add_users`).
pub(crate) fn find<'m>(
    files: &'m [Migration],
    wanted: &str,
) -> Result<&'m Migration, NoSuchMigration> {
    files
        .iter()
        .find(|m| m.version.to_string() == wanted || m.id() == wanted)
        .ok_or_else(|| {
            let known: Vec<String> = files.iter().rev().take(5).map(|m| m.id()).collect();
            NoSuchMigration(format!(
                "there is no migration `{wanted}` in the migrations folder{}\n  fix: give a version from `keel status`",
                if known.is_empty() { String::new() } else { format!(" (newest: {})", known.join(", ")) }
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migration(version: u64, name: &str) -> Migration {
        Migration {
            version: Version(version),
            name: name.into(),
            dir: PathBuf::from(format!("migrations/{version}_{name}")),
            up: String::new(),
            down: None,
            meta: Default::default(),
            checksum: String::new(),
        }
    }

    #[test]
    fn a_migration_is_found_by_version_or_id() {
        let files = [
            migration(20260101000001, "a"),
            migration(20260101000002, "b"),
        ];
        assert_eq!(find(&files, "20260101000002").unwrap().name, "b");
        assert_eq!(find(&files, "20260101000001_a").unwrap().name, "a");
        assert_eq!(
            find(&files, "20260101000001_b").unwrap_err().to_string(),
            "there is no migration `20260101000001_b` in the migrations folder (newest: 20260101000002_b, 20260101000001_a)\n  fix: give a version from `keel status`"
        );
        assert_eq!(
            find(&[], "1").unwrap_err().to_string(),
            "there is no migration `1` in the migrations folder\n  fix: give a version from `keel status`"
        );
    }
}
