use crate::db::{TrackingRow, TrackingState};
use crate::migration::Migration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Applied,
    Pending,
    /// Applied, and its files changed since.
    Modified,
    /// Applied, and its folder is gone.
    Missing,
    /// A non-transactional migration stopped part-way.
    Failed,
    Backfilling,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Applied => "applied",
            State::Pending => "pending",
            State::Modified => "modified",
            State::Missing => "missing",
            State::Failed => "failed",
            State::Backfilling => "backfilling",
        }
    }

    /// States that stop `up` and `down` until someone acts.
    pub fn blocks_runs(self) -> bool {
        matches!(self, State::Modified | State::Missing | State::Failed)
    }
}

/// A migration as files and tracking table see it together.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub version: String,
    pub name: String,
    pub state: State,
    pub migration: Option<&'a Migration>,
    pub row: Option<TrackingRow>,
}

impl Entry<'_> {
    /// For a failed migration, which way it was going: `up` (up.sql) or
    /// `down` (down.sql).
    pub fn failed_direction(&self) -> Option<&'static str> {
        match self.row.as_ref()?.state {
            TrackingState::Failed => Some("up"),
            TrackingState::FailedDown => Some("down"),
            _ => None,
        }
    }
}

/// Joins the files and the tracking rows, in version order.
pub fn reconcile<'a>(files: &'a [Migration], rows: Vec<TrackingRow>) -> Vec<Entry<'a>> {
    let mut rows: std::collections::BTreeMap<String, TrackingRow> =
        rows.into_iter().map(|r| (r.version.clone(), r)).collect();
    let mut out: Vec<Entry<'a>> = files
        .iter()
        .map(|m| {
            let row = rows.remove(&m.version.to_string());
            let state = match &row {
                None => State::Pending,
                Some(r) if r.state.is_failed() => State::Failed,
                Some(r) if r.checksum != m.checksum => State::Modified,
                Some(r) if r.state == TrackingState::Backfilling => State::Backfilling,
                Some(_) => State::Applied,
            };
            Entry {
                version: m.version.to_string(),
                name: m.name.clone(),
                state,
                migration: Some(m),
                row,
            }
        })
        .collect();
    out.extend(rows.into_values().map(|r| Entry {
        version: r.version.clone(),
        name: r.name.clone(),
        state: if r.state.is_failed() {
            State::Failed
        } else {
            State::Missing
        },
        migration: None,
        row: Some(r),
    }));
    out.sort_by(|a, b| a.version.cmp(&b.version));
    out
}
