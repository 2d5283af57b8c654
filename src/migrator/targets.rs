//! Which migrations a run touches, decided here for every command that
//! asks (up, down, their dry runs, execute's guard): what is pending, what
//! is still backfilling, what `down` reverts, and what blocks a run.

use super::error::RunError;
use super::status::{Entry, State};
use crate::migration::{Migration, Reversibility, Version};

/// Pending migrations up to and including `to`, in version order.
pub fn pending<'m>(entries: &[Entry<'m>], to: Option<Version>) -> Vec<&'m Migration> {
    in_state(entries, State::Pending, to)
}

/// Migrations whose backfill an earlier run left unfinished, up to `to`.
pub fn unfinished<'m>(entries: &[Entry<'m>], to: Option<Version>) -> Vec<&'m Migration> {
    in_state(entries, State::Backfilling, to)
}

fn in_state<'m>(entries: &[Entry<'m>], state: State, to: Option<Version>) -> Vec<&'m Migration> {
    entries
        .iter()
        .filter(|e| e.state == state)
        .filter_map(|e| e.migration)
        .filter(|m| to.is_none_or(|to| m.version <= to))
        .collect()
}

/// Refuses to go on while any migration is modified, missing or failed.
pub fn refuse_blocked(entries: &[Entry<'_>]) -> Result<(), RunError> {
    let blocked: Vec<&Entry> = entries.iter().filter(|e| e.state.blocks_runs()).collect();
    let Some(first) = blocked.first() else {
        return Ok(());
    };
    let list: Vec<String> = blocked
        .iter()
        .map(|e| match e.failed_direction() {
            Some("down") => format!("{}_{} (failed while reverting)", e.version, e.name),
            _ => format!("{}_{} ({})", e.version, e.name, e.state.as_str()),
        })
        .collect();
    let fix = match first.state {
        State::Modified => format!(
            "applied migrations must not change: restore {}_{} from version control and write a new migration for the change (`keel new NAME`)",
            first.version, first.name
        ),
        State::Missing => format!(
            "restore the folder migrations/{}_{} from version control; keel will not run with applied history it cannot see",
            first.version, first.name
        ),
        _ if first.failed_direction() == Some("down") => format!(
            "its down.sql stopped part-way: check what took effect, then finish the revert by hand and run `keel resolve {v} --reverted`, or redo what down.sql undid and run `keel resolve {v} --applied`",
            v = first.version
        ),
        _ => format!(
            "check what took effect, then run `keel resolve {} --applied` or `keel resolve {} --reverted`",
            first.version, first.version
        ),
    };
    Err(RunError::Refused {
        message: format!("refusing to run: {}", list.join(", ")),
        fix,
    })
}

pub fn refuse_irreversible(m: &Migration) -> Result<(), RunError> {
    if m.meta.reversibility == Some(Reversibility::Irreversible) {
        return Err(RunError::Refused {
            message: format!(
                "migration {} is declared irreversible in migration.toml",
                m.id()
            ),
            fix: "restore from a backup or snapshot, or write a new migration that undoes it"
                .into(),
        });
    }
    if !m.has_down() {
        return Err(RunError::Refused {
            message: format!(
                "migration {} has no down.sql (or an empty one): keel cannot revert it",
                m.id()
            ),
            fix: format!(
                "write {} that undoes up.sql, or declare reversibility = \"irreversible\"",
                m.down_path().display()
            ),
        });
    }
    Ok(())
}

/// Applied migrations to revert, newest first.
pub fn down_targets<'m>(
    entries: &[Entry<'m>],
    steps: Option<usize>,
    to: Option<Version>,
) -> Vec<&'m Migration> {
    let applied = entries
        .iter()
        .rev()
        .filter(|e| matches!(e.state, State::Applied | State::Backfilling))
        .filter_map(|e| e.migration);
    match (steps, to) {
        (_, Some(to)) => applied.filter(|m| m.version > to).collect(),
        (Some(n), None) => applied.take(n).collect(),
        (None, None) => applied.take(1).collect(),
    }
}
