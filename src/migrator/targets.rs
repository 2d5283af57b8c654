//! Which migrations a run touches, decided here for every command that
//! asks (up, down, their dry runs, execute's guard): what is pending, what
//! is still backfilling, what `down` reverts, and what blocks a run.

use super::error::RunError;
use super::status::{Entry, State};
use crate::migration::{Migration, Reversibility, Version};

/// Pending migrations up to and including `to`, in version order.
pub(crate) fn pending<'m>(entries: &[Entry<'m>], to: Option<Version>) -> Vec<&'m Migration> {
    in_state(entries, State::Pending, to)
}

/// The first pending migration up to `to` that waits for a deploy which
/// `--through` has not vouched for: `keel up` applies what comes before it
/// and stops there, because the code its `requires_deploy` names must be
/// live first (a rename's contract step drops what old code still reads).
pub(crate) fn waiting<'m>(
    entries: &[Entry<'m>],
    to: Option<Version>,
    through: Option<Version>,
) -> Option<&'m Migration> {
    pending(entries, to)
        .into_iter()
        .find(|m| m.meta.requires_deploy.is_some() && through.is_none_or(|t| m.version > t))
}

/// Migrations whose backfill an earlier run left unfinished, up to `to`.
pub(crate) fn unfinished<'m>(entries: &[Entry<'m>], to: Option<Version>) -> Vec<&'m Migration> {
    in_state(entries, State::Backfilling, to)
}

/// What `keel plan` analyses for `wanted`, and the state `wanted` is in: a
/// pending migration runs after the pending ones before it (what they
/// create is new, and empty, by the time it runs), so the set is those and
/// it; any other migration is planned alone.
pub(crate) fn plan_set<'m>(
    entries: &[Entry<'m>],
    wanted: &'m Migration,
) -> (State, Vec<&'m Migration>) {
    let state = entries
        .iter()
        .find(|e| e.version == wanted.version.to_string())
        .map_or(State::Pending, |e| e.state);
    if state == State::Pending {
        (state, pending(entries, Some(wanted.version)))
    } else {
        (state, vec![wanted])
    }
}

fn in_state<'m>(entries: &[Entry<'m>], state: State, to: Option<Version>) -> Vec<&'m Migration> {
    entries
        .iter()
        .filter(|e| e.state == state)
        .filter_map(|e| e.migration)
        .filter(|m| to.is_none_or(|to| m.version <= to))
        .collect()
}

/// A `--to VERSION` that names no migration, in the folder or the tracking
/// table. Its text is the whole message, with the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UnknownTarget(String);

/// Refuses a `--to VERSION` that names no migration (in the folder or the
/// tracking table): a typo must not apply, or revert, everything. `0` is
/// `keel down --to 0` (revert all).
pub(crate) fn check_to(entries: &[Entry<'_>], to: Option<Version>) -> Result<(), UnknownTarget> {
    check_target(entries, "--to", to)
}

/// [`check_to`] for the option `flag` (`--to`, `--through`).
pub(crate) fn check_target(
    entries: &[Entry<'_>],
    flag: &str,
    to: Option<Version>,
) -> Result<(), UnknownTarget> {
    let Some(to) = to else {
        return Ok(());
    };
    if to == Version(0) || entries.iter().any(|e| e.version == to.to_string()) {
        return Ok(());
    }
    let nearest: Vec<String> = entries
        .iter()
        .rev()
        .filter(|e| e.version.as_str() < to.to_string().as_str())
        .take(3)
        .map(|e| format!("{}_{}", e.version, e.name))
        .collect();
    Err(UnknownTarget(format!(
        "{flag} {to} names no migration: there is no {to} in the migrations folder or the tracking table{}; nothing was changed\n  fix: give a version from `keel status`{}",
        if nearest.is_empty() {
            String::new()
        } else {
            format!(" (the ones before it: {})", nearest.join(", "))
        },
        if entries.is_empty() {
            ""
        } else {
            " (`keel down --to 0` reverts every migration)"
        }
    )))
}

/// `keel down VERSION`: reverts exactly that migration, so it must be the
/// newest applied one. Otherwise the refusal names what stands in the way:
/// a later migration was written for the schema this one made.
pub(crate) fn check_only(entries: &[Entry<'_>], only: Version) -> Result<(), String> {
    let v = only.to_string();
    let applied: Vec<&Entry<'_>> = entries
        .iter()
        .rev()
        .filter(|e| matches!(e.state, State::Applied | State::Backfilling))
        .collect();
    let Some(at) = applied.iter().position(|e| e.version == v) else {
        return Err(match entries.iter().find(|e| e.version == v) {
            Some(e) => format!(
                "{v}_{} is {}, not applied: there is nothing of it to revert; nothing was changed\n  fix: `keel status` shows what is applied",
                e.name,
                e.state.as_str()
            ),
            None => format!(
                "there is no migration {v} in the migrations folder or the tracking table; nothing was changed\n  fix: give a version from `keel status`"
            ),
        });
    };
    if at == 0 {
        return Ok(());
    }
    let later: Vec<String> = applied[..at]
        .iter()
        .rev()
        .map(|e| format!("{}_{}", e.version, e.name))
        .collect();
    Err(format!(
        "{v} is not the newest applied migration: {} {} applied after it and may rely on what it made, so keel does not revert it alone; nothing was changed\n  fix: revert the later ones first, newest first (`keel down --to {v}` reverts them all; each has its own runbook), then `keel down {v}`; or restore the snapshot taken before {v}",
        later.join(", "),
        if later.len() == 1 { "was" } else { "were" }
    ))
}

/// Why a migration cannot be the next one to run on its own (a guarded
/// run takes one migration at a time, in order).
#[derive(Debug)]
pub(crate) enum NotNext<'m> {
    /// Applied, its backfill unfinished: nothing left to run but that.
    Backfilling,
    Applied,
    /// Failed, modified, missing… (`None`: keel knows no such migration).
    Other(Option<State>),
    /// Pending migrations before it must run first.
    After(Vec<&'m Migration>),
    /// An earlier migration is still backfilling, and this one may rely on
    /// its data.
    WaitsFor(&'m Migration),
}

/// Whether `m` is the next migration to run, and if so how many are
/// applied before it. The caller refuses blocked runs first
/// ([`refuse_blocked`]).
pub(crate) fn next_in_line<'m>(entries: &[Entry<'m>], m: &Migration) -> Result<usize, NotNext<'m>> {
    let state = entries
        .iter()
        .find(|e| e.migration.is_some_and(|x| x.version == m.version))
        .map(|e| e.state);
    match state {
        Some(State::Pending) => {}
        Some(State::Backfilling) => return Err(NotNext::Backfilling),
        Some(State::Applied) => return Err(NotNext::Applied),
        other => return Err(NotNext::Other(other)),
    }
    let earlier: Vec<&Migration> = pending(entries, None)
        .into_iter()
        .filter(|x| x.version < m.version)
        .collect();
    if !earlier.is_empty() {
        return Err(NotNext::After(earlier));
    }
    if let Some(b) = unfinished(entries, None)
        .into_iter()
        .find(|x| x.version < m.version)
    {
        return Err(NotNext::WaitsFor(b));
    }
    Ok(entries
        .iter()
        .filter(|e| matches!(e.state, State::Applied | State::Backfilling))
        .count())
}

/// Refuses to go on while any migration is modified, missing or failed.
pub(crate) fn refuse_blocked(entries: &[Entry<'_>]) -> Result<(), RunError> {
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
            "applied migrations must not change: restore {v}_{} from version control and write a new migration for the change (`keel new NAME`); if only comments or layout of up.sql, down.sql or migration.toml changed, `keel resolve {v} --accept-checksum --reason \"…\"` records that",
            first.name,
            v = first.version
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

pub(crate) fn refuse_irreversible(m: &Migration) -> Result<(), RunError> {
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
pub(crate) fn down_targets<'m>(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::TrackingState::{Applied, Backfilling, Failed, FailedDown};
    use crate::migrator::fixtures::{migration, row, version};
    use crate::migrator::reconcile;

    fn names(ms: &[&Migration]) -> Vec<String> {
        ms.iter().map(|m| m.name.clone()).collect()
    }

    fn v(n: u32) -> Version {
        version(n).parse().unwrap()
    }

    #[test]
    fn down_of_one_version_is_only_for_the_newest_applied() {
        let files = [migration(1), migration(2), migration(3)];
        let rows = vec![row(1, Applied), row(2, Applied)];
        let entries = reconcile(&files, rows);
        assert!(check_only(&entries, v(2)).is_ok());
        let e = check_only(&entries, v(1)).unwrap_err();
        assert!(
            e.contains(&format!("{}_m2 was applied after it", version(2))),
            "{e}"
        );
        let e = check_only(&entries, v(3)).unwrap_err();
        assert!(e.contains("is pending, not applied"), "{e}");
        let e = check_only(&entries, v(4)).unwrap_err();
        assert!(e.contains("there is no migration"), "{e}");
    }

    /// m1 and m2 applied, m3 backfilling, m4 and m5 pending.
    fn files() -> Vec<Migration> {
        (1..=5).map(migration).collect()
    }

    fn rows() -> Vec<crate::db::TrackingRow> {
        vec![row(1, Applied), row(2, Applied), row(3, Backfilling)]
    }

    #[test]
    fn pending_and_unfinished_stop_at_to() {
        let files = files();
        let entries = reconcile(&files, rows());
        assert_eq!(names(&pending(&entries, None)), ["m4", "m5"]);
        assert_eq!(names(&pending(&entries, Some(v(4)))), ["m4"]);
        assert_eq!(names(&pending(&entries, Some(v(3)))), Vec::<String>::new());
        assert_eq!(names(&unfinished(&entries, None)), ["m3"]);
        assert!(unfinished(&entries, Some(v(2))).is_empty());
    }

    #[test]
    fn only_the_first_pending_migration_is_next_and_not_past_a_backfill() {
        let files = files();
        let entries = reconcile(&files, rows());
        // m4 is the first pending, but m3's backfill is unfinished.
        assert!(
            matches!(next_in_line(&entries, &files[3]), Err(NotNext::WaitsFor(b)) if b.name == "m3")
        );
        assert!(
            matches!(next_in_line(&entries, &files[4]), Err(NotNext::After(e)) if names(&e) == ["m4"])
        );
        assert!(matches!(
            next_in_line(&entries, &files[2]),
            Err(NotNext::Backfilling)
        ));
        assert!(matches!(
            next_in_line(&entries, &files[0]),
            Err(NotNext::Applied)
        ));
        let done = vec![row(1, Applied), row(2, Applied), row(3, Applied)];
        let entries = reconcile(&files, done);
        assert_eq!(next_in_line(&entries, &files[3]).unwrap(), 3);
        let unknown = migration(9);
        assert!(matches!(
            next_in_line(&entries, &unknown),
            Err(NotNext::Other(None))
        ));
    }

    #[test]
    fn a_pending_migration_is_planned_after_the_pending_ones_before_it() {
        let files = files();
        let entries = reconcile(&files, rows());
        let (state, set) = plan_set(&entries, &files[4]);
        assert_eq!(state, State::Pending);
        assert_eq!(names(&set), ["m4", "m5"]);
        let (state, set) = plan_set(&entries, &files[3]);
        assert_eq!((state, names(&set)), (State::Pending, vec!["m4".into()]));
        let (state, set) = plan_set(&entries, &files[1]);
        assert_eq!((state, names(&set)), (State::Applied, vec!["m2".into()]));
        let (state, set) = plan_set(&entries, &files[2]);
        assert_eq!(
            (state, names(&set)),
            (State::Backfilling, vec!["m3".into()])
        );
    }

    #[test]
    fn down_reverts_the_newest_applied_by_default() {
        let files = files();
        let entries = reconcile(&files, rows());
        assert_eq!(names(&down_targets(&entries, None, None)), ["m3"]);
        assert_eq!(names(&down_targets(&entries, Some(2), None)), ["m3", "m2"]);
        assert_eq!(
            names(&down_targets(&entries, Some(9), None)),
            ["m3", "m2", "m1"]
        );
    }

    #[test]
    fn down_to_keeps_that_version_and_zero_reverts_all() {
        let files = files();
        let entries = reconcile(&files, rows());
        assert_eq!(
            names(&down_targets(&entries, None, Some(v(1)))),
            ["m3", "m2"]
        );
        assert_eq!(
            names(&down_targets(&entries, None, Some(Version(0)))),
            ["m3", "m2", "m1"]
        );
        // --to wins over --steps (clap refuses both; the library still decides).
        assert_eq!(
            names(&down_targets(&entries, Some(1), Some(v(1)))),
            ["m3", "m2"]
        );
    }

    #[test]
    fn up_stops_before_a_migration_waiting_for_a_deploy_until_through_vouches_for_it() {
        let mut files = files();
        std::sync::Arc::make_mut(&mut files[4].meta).requires_deploy =
            Some("code that reads only v2".into());
        let entries = reconcile(&files, rows());
        let first = |to, through| waiting(&entries, to, through).map(|m| m.name.clone());
        assert_eq!(first(None, None).as_deref(), Some("m5"));
        // Not reached: m4 is the target.
        assert_eq!(first(Some(v(4)), None), None);
        assert_eq!(first(None, Some(v(5))), None);
        assert_eq!(first(None, Some(v(4))).as_deref(), Some("m5"));
        assert_eq!(
            check_target(&entries, "--through", Some(v(9)))
                .unwrap_err()
                .to_string()
                .split(':')
                .next(),
            Some("--through 20260101000009 names no migration")
        );
    }

    #[test]
    fn to_must_name_a_migration() {
        let files = files();
        let entries = reconcile(&files, rows());
        assert_eq!(check_to(&entries, None), Ok(()));
        assert_eq!(check_to(&entries, Some(Version(0))), Ok(()));
        assert_eq!(check_to(&entries, Some(v(5))), Ok(()));
        let e = check_to(&entries, Some("20260101000004".parse().unwrap()));
        assert_eq!(e, Ok(()));
        let typo: Version = "20260101000010".parse().unwrap();
        let message = check_to(&entries, Some(typo)).unwrap_err().to_string();
        assert_eq!(
            message,
            "--to 20260101000010 names no migration: there is no 20260101000010 in the migrations folder or the tracking table (the ones before it: 20260101000005_m5, 20260101000004_m4, 20260101000003_m3); nothing was changed\n  fix: give a version from `keel status` (`keel down --to 0` reverts every migration)"
        );
    }

    #[test]
    fn to_in_an_empty_project_names_nothing_before_it() {
        let message = check_to(&[], Some(v(1))).unwrap_err().to_string();
        assert_eq!(
            message,
            "--to 20260101000001 names no migration: there is no 20260101000001 in the migrations folder or the tracking table; nothing was changed\n  fix: give a version from `keel status`"
        );
    }

    #[test]
    fn a_clean_history_is_not_blocked() {
        let files = files();
        assert!(refuse_blocked(&reconcile(&files, rows())).is_ok());
    }

    fn refusal(files: &[Migration], rows: Vec<crate::db::TrackingRow>) -> (String, String) {
        match refuse_blocked(&reconcile(files, rows)) {
            Err(RunError::Refused { message, fix }) => (message, fix),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_modified_migration_blocks_and_names_every_blocked_one() {
        let files = files();
        let mut modified = row(2, Applied);
        modified.checksum = "f".repeat(64);
        let (message, fix) = refusal(&files, vec![row(1, Applied), modified, row(3, Failed)]);
        assert_eq!(
            message,
            "refusing to run: 20260101000002_m2 (modified), 20260101000003_m3 (failed)"
        );
        assert!(
            fix.starts_with("applied migrations must not change: restore 20260101000002_m2"),
            "{fix}"
        );
    }

    #[test]
    fn a_missing_migration_asks_for_its_folder() {
        let files = vec![migration(1)];
        let (message, fix) = refusal(&files, vec![row(1, Applied), row(2, Applied)]);
        assert_eq!(message, "refusing to run: 20260101000002_m2 (missing)");
        assert!(
            fix.starts_with("restore the folder migrations/20260101000002_m2 from version control"),
            "{fix}"
        );
    }

    #[test]
    fn a_failed_migration_points_at_resolve_in_its_direction() {
        let files = files();
        let (message, fix) = refusal(&files, vec![row(1, Failed)]);
        assert_eq!(message, "refusing to run: 20260101000001_m1 (failed)");
        assert_eq!(
            fix,
            "check what took effect, then run `keel resolve 20260101000001 --applied` or `keel resolve 20260101000001 --reverted`"
        );
        let (message, fix) = refusal(&files, vec![row(1, FailedDown)]);
        assert_eq!(
            message,
            "refusing to run: 20260101000001_m1 (failed while reverting)"
        );
        assert!(fix.starts_with("its down.sql stopped part-way"), "{fix}");
        assert!(
            fix.contains("`keel resolve 20260101000001 --reverted`"),
            "{fix}"
        );
    }

    #[test]
    fn only_a_reversible_migration_with_a_down_is_reverted() {
        assert!(refuse_irreversible(&migration(1)).is_ok());

        let mut declared = migration(1);
        std::sync::Arc::make_mut(&mut declared.meta).reversibility =
            Some(Reversibility::Irreversible);
        let Err(RunError::Refused { message, .. }) = refuse_irreversible(&declared) else {
            panic!("an irreversible migration was not refused");
        };
        assert!(message.ends_with("is declared irreversible in migration.toml"));

        for down in [None, Some(""), Some("-- nothing to undo\n")] {
            let mut m = migration(1);
            m.down = down.map(String::from);
            let Err(RunError::Refused { message, fix }) = refuse_irreversible(&m) else {
                panic!("{down:?} was not refused");
            };
            assert_eq!(
                message,
                "migration 20260101000001_m1 has no down.sql (or an empty one): keel cannot revert it"
            );
            assert!(
                fix.starts_with("write migrations/20260101000001_m1/down.sql"),
                "{fix}"
            );
        }
    }
}
