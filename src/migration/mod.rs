//! Migration files on disk → [`Migration`] values (version, name, checksum, metadata).

mod backfill;
pub mod bounds;
mod checksum;
pub mod meta;
mod source;

pub use bounds::Bounds;
pub use checksum::checksum;
pub use meta::{Meta, Reversibility};
pub use source::{SourceError, is_snake_case, load_dir, to_snake_case};

use std::fmt;
use std::path::PathBuf;

/// A migration version: a UTC timestamp `YYYYMMDDHHMMSS`, ordered numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u64);

impl Version {
    /// Parses exactly 14 ASCII digits.
    pub fn parse(s: &str) -> Option<Version> {
        if s.len() == 14 && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok().map(Version)
        } else {
            None
        }
    }

    /// The version for a migration created now (UTC).
    pub fn now() -> Version {
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
pub struct Migration {
    pub version: Version,
    pub name: String,
    pub dir: PathBuf,
    pub up: String,
    /// `None` when down.sql is absent; an empty file is `Some("")`.
    pub down: Option<String>,
    pub meta: Meta,
    /// Hex SHA-256 over up.sql, down.sql and migration.toml (see [`checksum`]).
    pub checksum: String,
}

impl Migration {
    /// `<version>_<name>`, the folder name and the id used in runbooks and records.
    pub fn id(&self) -> String {
        format!("{}_{}", self.version, self.name)
    }

    pub fn up_path(&self) -> PathBuf {
        self.dir.join("up.sql")
    }

    pub fn down_path(&self) -> PathBuf {
        self.dir.join("down.sql")
    }

    /// True when down.sql exists and holds at least one statement.
    pub fn has_down(&self) -> bool {
        self.down
            .as_deref()
            .is_some_and(|d| !crate::sql::split(d).is_empty())
    }
}
