use chrono::{DateTime, Utc};

/// The tracking table's name in both dialects.
pub const TABLE: &str = "keel_migrations";

/// keel's facts about the database itself: its random id (`database_id`),
/// written once with the tracking table, so that backups and snapshots can
/// say which database they came from.
pub const META: &str = "keel_meta";

/// Every table keel keeps for itself: left out of `tables()` and so of
/// `inspect`, `seed` and schema listings.
pub const KEEL_TABLES: [&str; 5] = [
    TABLE,
    META,
    "keel_backfills",
    "keel_backfill_failures",
    "keel_records",
];

/// The columns a tracking table made by an earlier keel lacks, with their
/// type: added on first use (`ensure_tracking`).
pub const ADDED_COLUMNS: [(&str, &str); 2] = [("backup", "text"), ("backup_sha256", "text")];

/// A new random database id: 128 bits from the operating system, in hex.
pub fn new_database_id() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex::encode(bytes))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackingState {
    Applied,
    /// A non-transactional migration stopped part-way; needs `keel resolve`.
    Failed,
    /// The SQL is applied and its backfill has not finished.
    Backfilling,
}

impl TrackingState {
    pub fn as_str(self) -> &'static str {
        match self {
            TrackingState::Applied => "applied",
            TrackingState::Failed => "failed",
            TrackingState::Backfilling => "backfilling",
        }
    }

    pub fn parse(s: &str) -> TrackingState {
        match s {
            "applied" => TrackingState::Applied,
            "backfilling" => TrackingState::Backfilling,
            // Anything else (including text written by a newer keel) blocks runs
            // until an operator looks, which is the safe reading.
            _ => TrackingState::Failed,
        }
    }
}

/// One row of the tracking table.
#[derive(Debug, Clone)]
pub struct TrackingRow {
    pub version: String,
    pub name: String,
    pub checksum: String,
    pub state: TrackingState,
    pub applied_at: DateTime<Utc>,
    pub applied_by: String,
    pub execution_ms: i64,
    /// Statements that completed, for a failed non-transactional migration.
    pub statements_done: i64,
    pub error: Option<String>,
    /// The archive of the data this migration destroyed, taken right before
    /// its up ran: the only archive its `down` may restore.
    pub backup: Option<BackupRef>,
}

/// An archive as the tracking table binds it: its path (relative to the
/// project folder) and the SHA-256 of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRef {
    pub path: String,
    pub sha256: String,
}

impl BackupRef {
    /// From the two nullable columns; a half-filled pair is no binding.
    pub fn from_columns(path: Option<String>, sha256: Option<String>) -> Option<BackupRef> {
        Some(BackupRef {
            path: path?,
            sha256: sha256?,
        })
    }
}
