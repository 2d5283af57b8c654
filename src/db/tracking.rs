use chrono::{DateTime, Utc};

/// The tracking table's name in both dialects.
pub const TABLE: &str = "keel_migrations";

/// Every table keel keeps for itself: left out of `tables()` and so of
/// `inspect`, `seed` and schema listings.
pub const KEEL_TABLES: [&str; 4] = [
    TABLE,
    "keel_backfills",
    "keel_backfill_failures",
    "keel_records",
];

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
}
