use crate::db::{TrackingRow, TrackingState};
use crate::migration::Migration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum State {
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
    pub(crate) fn as_str(self) -> &'static str {
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
    pub(crate) fn blocks_runs(self) -> bool {
        matches!(self, State::Modified | State::Missing | State::Failed)
    }
}

/// A migration as files and tracking table see it together.
#[derive(Debug, Clone)]
pub(crate) struct Entry<'a> {
    pub(crate) version: String,
    pub(crate) name: String,
    pub(crate) state: State,
    pub(crate) migration: Option<&'a Migration>,
    /// Boxed: a row is large, a run of thousands of pending migrations
    /// has none, and a status list is sorted by moving entries.
    pub(crate) row: Option<Box<TrackingRow>>,
}

impl Entry<'_> {
    /// For a failed migration, which way it was going: `up` (up.sql) or
    /// `down` (down.sql).
    pub(crate) fn failed_direction(&self) -> Option<&'static str> {
        match self.row.as_ref()?.state {
            TrackingState::Failed => Some("up"),
            TrackingState::FailedDown => Some("down"),
            _ => None,
        }
    }
}

/// Joins the files and the tracking rows, in version order.
pub(crate) fn reconcile<'a>(files: &'a [Migration], rows: Vec<TrackingRow>) -> Vec<Entry<'a>> {
    let mut rows: std::collections::BTreeMap<String, TrackingRow> =
        rows.into_iter().map(|r| (r.version.clone(), r)).collect();
    let mut out: Vec<Entry<'a>> = files
        .iter()
        .map(|m| {
            let row = rows.remove(&m.version.to_string()).map(Box::new);
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
        row: Some(Box::new(r)),
    }));
    // Versions are unique here (a row joins its file), so the unstable
    // sort orders the same and needs no buffer as large as the list.
    out.sort_unstable_by(|a, b| a.version.cmp(&b.version));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::TrackingState::{Applied, Backfilling, Failed, FailedDown};
    use crate::migrator::fixtures::{migration, row, version};

    fn states(entries: &[Entry<'_>]) -> Vec<(String, State)> {
        entries
            .iter()
            .map(|e| (e.version.clone(), e.state))
            .collect()
    }

    #[test]
    fn files_without_rows_are_pending_in_version_order() {
        let files = vec![migration(1), migration(2)];
        let entries = reconcile(&files, vec![]);
        assert_eq!(
            states(&entries),
            [(version(1), State::Pending), (version(2), State::Pending)]
        );
        assert!(
            entries
                .iter()
                .all(|e| e.migration.is_some() && e.row.is_none())
        );
    }

    #[test]
    fn a_row_gives_its_file_the_row_state() {
        let files: Vec<Migration> = (1..=4).map(migration).collect();
        let rows = vec![
            row(1, Applied),
            row(2, Backfilling),
            row(3, Failed),
            row(4, FailedDown),
        ];
        assert_eq!(
            states(&reconcile(&files, rows)),
            [
                (version(1), State::Applied),
                (version(2), State::Backfilling),
                (version(3), State::Failed),
                (version(4), State::Failed),
            ]
        );
    }

    #[test]
    fn changed_files_are_modified_unless_the_migration_failed() {
        let files = vec![migration(1), migration(2)];
        let mut applied = row(1, Applied);
        applied.checksum = "f".repeat(64);
        let mut failed = row(2, Failed);
        failed.checksum = "f".repeat(64);
        assert_eq!(
            states(&reconcile(&files, vec![applied, failed])),
            [(version(1), State::Modified), (version(2), State::Failed)]
        );
    }

    #[test]
    fn rows_without_files_are_missing_and_sorted_among_the_files() {
        let files = vec![migration(1), migration(3)];
        let rows = vec![row(1, Applied), row(2, Applied), row(4, FailedDown)];
        let entries = reconcile(&files, rows);
        assert_eq!(
            states(&entries),
            [
                (version(1), State::Applied),
                (version(2), State::Missing),
                (version(3), State::Pending),
                (version(4), State::Failed),
            ]
        );
        assert!(entries[1].migration.is_none());
        assert_eq!(entries[1].name, "m2");
    }

    #[test]
    fn a_failed_migration_says_which_way_it_was_going() {
        let files: Vec<Migration> = (1..=4).map(migration).collect();
        let rows = vec![row(1, Failed), row(2, FailedDown), row(3, Applied)];
        let directions: Vec<Option<&str>> = reconcile(&files, rows)
            .iter()
            .map(Entry::failed_direction)
            .collect();
        assert_eq!(directions, [Some("up"), Some("down"), None, None]);
    }

    #[test]
    fn only_modified_missing_and_failed_block_runs() {
        let blocking: Vec<State> = [
            State::Applied,
            State::Pending,
            State::Modified,
            State::Missing,
            State::Failed,
            State::Backfilling,
        ]
        .into_iter()
        .filter(|s| s.blocks_runs())
        .collect();
        assert_eq!(blocking, [State::Modified, State::Missing, State::Failed]);
    }
}
