//! Taking over a project from another migration tool: its files
//! ([`layouts`], written into keel's layout by [`write`]) and its tracking
//! table ([`adopt`]), so that `keel up` then applies exactly what is
//! really pending.

pub(crate) mod adopt;
pub(crate) mod flyway;
pub(crate) mod layouts;
pub(crate) mod write;

use crate::migration::Version;

/// The tools keel reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Tool {
    Sqlx,
    Dbmate,
    #[value(name = "golang-migrate")]
    GolangMigrate,
    Goose,
    Prisma,
    Flyway,
    Diesel,
}

impl Tool {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Tool::Sqlx => "sqlx",
            Tool::Dbmate => "dbmate",
            Tool::GolangMigrate => "golang-migrate",
            Tool::Goose => "goose",
            Tool::Prisma => "prisma",
            Tool::Flyway => "flyway",
            Tool::Diesel => "diesel",
        }
    }

    /// Every tool, for the look for another tool's tracking table.
    pub(crate) const ALL: [Tool; 7] = [
        Tool::Sqlx,
        Tool::Dbmate,
        Tool::GolangMigrate,
        Tool::Goose,
        Tool::Prisma,
        Tool::Flyway,
        Tool::Diesel,
    ];
}

/// One migration as another tool wrote it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Foreign {
    pub(crate) version: Version,
    /// The tool's name for it, kept even where keel would not choose it.
    pub(crate) name: String,
    pub(crate) up: String,
    pub(crate) down: Option<String>,
    /// The tool runs it in one transaction (its own default and markers).
    pub(crate) transaction: bool,
    /// The file(s) it came from, relative to the source folder.
    pub(crate) source: String,
}

/// What went wrong reading another tool's layout: the file and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}\n  fix: {fix}")]
pub struct ImportError {
    pub(crate) path: String,
    pub(crate) message: String,
    pub(crate) fix: String,
}

/// A version another tool wrote (`20240101120000`, `000001`,
/// `2024-01-01-120000`): its digits, which must fit keel's 14.
pub(crate) fn version_of(text: &str, path: &str) -> Result<Version, ImportError> {
    let mut digits: String = text.chars().filter(|c| *c != '-').collect();
    // diesel 2.2 names folders `2025-11-19-091444-0000_…` and records
    // `202511190914440000`: a zero counter after the second is dropped.
    if digits.len() > 14 && digits.bytes().skip(14).all(|b| b == b'0') {
        digits.truncate(14);
    }
    let ok = !digits.is_empty() && digits.len() <= 14 && digits.bytes().all(|b| b.is_ascii_digit());
    match digits.parse::<u64>() {
        // 0 too: diesel's `00000000000000_diesel_initial_setup`.
        Ok(v) if ok => Ok(Version(v)),
        _ => Err(ImportError {
            path: path.to_string(),
            message: format!(
                "`{text}` is not a version keel can keep: it takes a number of at most 14 digits (dashes are dropped, and zeros after the 14th digit)"
            ),
            fix: "rename the file with a numeric version (a UTC timestamp YYYYMMDDHHMMSS is keel's own), in the tool and in its tracking table alike".into(),
        }),
    }
}
