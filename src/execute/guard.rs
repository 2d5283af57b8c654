//! What `execute` checks before it changes anything: the signing key, the
//! runbook's checksum, that the migration is the next pending one, the
//! snapshot, and a dry run in a transaction that is rolled back.

use super::ExecuteError;
use crate::config::{Config, Environment};
use crate::db::{Database, Timeouts};
use crate::migration::Migration;
use crate::migrator::{NotNext, next_in_line, reconcile, refuse_blocked};
use crate::record::Signer;
use crate::snapshot;
use std::path::Path;

/// The configured signer, with its key tried on a throwaway message so a
/// missing or unusable key refuses the run before anything changes.
pub(crate) fn signer(
    config: &Config,
    project: &Path,
    env_name: &str,
    env: &Environment,
) -> Result<Option<Signer>, ExecuteError> {
    let signer = Signer::from_config(config, project)
        .map_err(|e| ExecuteError::Refused(format!("{e}\n  nothing was changed")))?;
    match signer {
        None if env.require_signature => Err(ExecuteError::Refused(format!(
            "environment `{env_name}` requires a signed execution record (require_signature = true), but keel.toml sets neither signing_key nor signing_command; nothing was changed\n  \
             fix: add signer = \"you@example.com\" and signing_key = \"~/.ssh/id_ed25519\" (or signing_command) to keel.toml"
        ))),
        None => Ok(None),
        Some(s) => {
            s.sign(b"keel execute: the signing key works before anything changes\n")
                .map_err(|e| {
                    ExecuteError::Refused(format!(
                        "{e}\n  execute tries the signing key before it changes anything; nothing was changed"
                    ))
                })?;
            Ok(Some(s))
        }
    }
}

/// A runbook that passed its guard.
pub(crate) struct CheckedRunbook {
    /// SHA-256 of the file as read.
    pub(crate) sha256: String,
    /// The reviewed body (unticked): where the checklist is read from, so
    /// nothing appended below the records marker can add an item.
    pub(crate) reviewed: String,
    /// SHA-256 binding the reviewed body to the migration (the marker's `body=`).
    pub(crate) digest: String,
}

/// The runbook as reviewed, refused when it is missing, was rendered from
/// another checksum, or its reviewed body is not the one rendered: neither
/// the SHA-256 on its first line nor what keel renders for the migration
/// now (SQL shown, checklist items, commands) may differ. A body edited and
/// its SHA-256 recomputed still differs from the render.
pub(crate) fn runbook(
    path: &Path,
    m: &Migration,
    files: &[Migration],
    config: &Config,
    project: &Path,
    reviewed_analysis: &crate::analysis::analyze::MigrationAnalysis,
) -> Result<CheckedRunbook, ExecuteError> {
    let fix = format!(
        "render it with `keel runbook {}`, review it, and commit it",
        m.version
    );
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ExecuteError::Refused(format!(
                "there is no runbook {} for {}: execute follows a reviewed runbook\n  fix: {fix}",
                path.display(),
                m.id()
            )));
        }
        Err(e) => {
            return Err(ExecuteError::Refused(format!(
                "cannot read the runbook {}: {e}\n  fix: {fix}",
                path.display()
            )));
        }
    };
    let Some(marker) = crate::runbook::marker(&text) else {
        return Err(ExecuteError::Refused(format!(
            "{} does not start with keel's `<!-- keel:runbook migration=… checksum=… body=… -->` line, so keel cannot tell which migration it was rendered from\n  fix: {fix}",
            path.display()
        )));
    };
    if marker.migration != m.id() {
        return Err(ExecuteError::Refused(format!(
            "{} was rendered for migration {}, not {}\n  fix: {fix}",
            path.display(),
            marker.migration,
            m.id()
        )));
    }
    if marker.checksum != m.checksum {
        return Err(ExecuteError::Refused(format!(
            "the runbook {} is stale: it was rendered from checksum {}, but {} now has checksum {}; the migration changed after its runbook was reviewed\n  fix: {fix}",
            path.display(),
            marker.checksum,
            m.id(),
            m.checksum
        )));
    }
    let reviewed = crate::runbook::binding::reviewed(&text);
    // The sizes beside the runbook, which it was rendered with.
    let sizes = crate::runbook::sizes::load_all(path.parent().unwrap_or(project), config)
        .map_err(|e| ExecuteError::Refused(format!("{e}\n  nothing was changed")))?;
    let rendered = crate::runbook::render(
        project,
        &crate::runbook::Runbook::build(m, files, config, reviewed_analysis, &sizes),
    )
    .map_err(|e| ExecuteError::Refused(format!("{e}\n  nothing was changed")))?;
    let expected = crate::runbook::binding::reviewed(&rendered);
    let differs = || match crate::runbook::binding::first_difference(&reviewed, &expected) {
        Some((line, has, want)) => {
            format!("; line {line} reads `{has}` where keel renders `{want}`")
        }
        None => String::new(),
    };
    let digest = crate::runbook::binding::digest(&marker.migration, &marker.checksum, &reviewed);
    let Some(body) = marker.body else {
        return Err(ExecuteError::Refused(format!(
            "the runbook {} has no SHA-256 of its reviewed body on its first line (it was rendered by an older keel), so keel cannot tell whether the SQL and checklist in it are the ones reviewed\n  fix: {fix}",
            path.display()
        )));
    };
    if body != digest {
        return Err(ExecuteError::Refused(format!(
            "the runbook {} was edited after it was rendered: its reviewed body (everything above the execution records, ticks aside) no longer matches the SHA-256 on its first line{}; execute follows only the runbook that was reviewed\n  fix: {fix}",
            path.display(),
            differs()
        )));
    }
    if reviewed != expected {
        return Err(ExecuteError::Refused(format!(
            "the runbook {} is not what keel renders for {} now{} (edited with its SHA-256 recomputed, or keel.toml, the template or keel changed since it was rendered); execute follows only a runbook that shows what it will do\n  fix: {fix}",
            path.display(),
            m.id(),
            differs()
        )));
    }
    let sha256 = crate::digest::sha256_bytes(text.as_bytes());
    Ok(CheckedRunbook {
        sha256,
        reviewed,
        digest,
    })
}

/// Refuses unless `m` is the next pending migration and nothing blocks runs.
pub(crate) async fn next_pending(
    db: &mut dyn Database,
    files: &[Migration],
    m: &Migration,
    env_name: &str,
) -> Result<String, ExecuteError> {
    let rows = db.tracking_rows().await.map_err(ExecuteError::Db)?;
    let entries = reconcile(files, rows);
    refuse_blocked(&entries).map_err(|e| ExecuteError::Refused(e.to_string()))?;
    let refuse = |why: String| Err(ExecuteError::Refused(why));
    let applied = match next_in_line(&entries, m) {
        Ok(applied) => applied,
        Err(NotNext::Backfilling) => {
            return refuse(format!(
                "{} is applied on `{env_name}` but its backfill has not finished: there is nothing to execute\n  fix: finish it with `keel backfill {} --env {env_name}` (it goes on from the last committed batch)",
                m.id(),
                m.version
            ));
        }
        Err(NotNext::Applied) => {
            return refuse(format!(
                "{} is already applied on `{env_name}`: there is nothing to execute\n  fix: `keel status --env {env_name}` shows what is applied; write a new migration for a further change",
                m.id()
            ));
        }
        Err(NotNext::Other(state)) => {
            return refuse(format!(
                "{} is {} on `{env_name}`, not pending\n  fix: `keel status --env {env_name}`",
                m.id(),
                state.map(|s| s.as_str()).unwrap_or("unknown")
            ));
        }
        Err(NotNext::After(earlier)) => {
            let list: Vec<String> = earlier.iter().map(|x| x.id()).collect();
            return refuse(format!(
                "{} is not the next migration on `{env_name}`: {} must run before it; nothing was changed\n  fix: execute them first, in order (`keel execute {} --env {env_name}`)",
                m.id(),
                list.join(", "),
                earlier[0].version
            ));
        }
        // A later migration (a contract step, a drop) may rely on the data
        // an unfinished backfill is still writing.
        Err(NotNext::WaitsFor(b)) => {
            return refuse(format!(
                "{} is still backfilling on `{env_name}`, and {} may rely on its data; nothing was changed\n  fix: finish it first with `keel backfill {} --env {env_name}`",
                b.id(),
                m.id(),
                b.version
            ));
        }
    };
    Ok(format!(
        "next pending migration ({applied} applied before it)"
    ))
}

/// The snapshot to rely on: `--snapshot FILE`, else the environment's
/// newest; checked against its `.sha256`, read back by the database's own
/// tools, and required to be of this environment and database and recent
/// ([`snapshot::check`]). Required where keel.toml says so.
pub(crate) async fn snapshot(
    db: &mut dyn Database,
    explicit: Option<&Path>,
    dir: &Path,
    env_name: &str,
    env: &Environment,
) -> Result<Option<snapshot::Checked>, ExecuteError> {
    let path = match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => snapshot::newest(dir, env_name)
            .map_err(|e| ExecuteError::Refused(format!("{e}\n  nothing was changed")))?,
    };
    match path {
        None if env.require_snapshot => Err(ExecuteError::Refused(format!(
            "environment `{env_name}` requires a verified snapshot (require_snapshot = true), and {}/ holds none for it; nothing was changed\n  \
             fix: take one with `keel snapshot take --env {env_name}`, or pass --snapshot FILE",
            dir.display()
        ))),
        None => Ok(None),
        Some(p) => {
            let max_age = env
                .snapshot_max_age
                .unwrap_or(crate::config::SNAPSHOT_MAX_AGE);
            snapshot::check(db, &p, env_name, max_age)
                .await
                .map(Some)
                .map_err(|e| {
                    ExecuteError::Refused(format!(
                        "{e}\n  execute does not run on a snapshot it cannot rely on; nothing was changed"
                    ))
                })
        }
    }
}

/// Runs the migration's up in a transaction that is always rolled back
/// (like `keel validate`); `transaction = false` migrations cannot run
/// inside one and are split and checked statically.
pub(crate) async fn dry_run(
    db: &mut dyn Database,
    m: &Migration,
    analysis: &crate::analysis::analyze::MigrationAnalysis,
    timeouts: Timeouts,
) -> Result<String, ExecuteError> {
    let statements = &analysis.up.statements;
    if !m.meta.transaction {
        return Ok(format!(
            "{} statement(s) split cleanly; not executed (transaction = false cannot run in a rolled-back transaction)",
            statements.len()
        ));
    }
    let tried = crate::migrator::trial::trial_run(db, statements, timeouts)
        .await
        .map_err(ExecuteError::Db)?;
    if let Err((stmt, e)) = tried {
        let (line, _) = e.position.map_or((stmt.line, stmt.column), |p| {
            stmt.position_in_file(p as usize)
        });
        return Err(ExecuteError::DryRun(format!(
            "the dry run of {} failed at {}:{line}: {e}\n  it ran in a transaction that was rolled back; nothing was changed\n  \
             fix: correct up.sql (then render and review its runbook again: `keel runbook {}`), or the schema it expects",
            m.id(),
            m.up_path().display(),
            m.version
        )));
    }
    Ok(format!(
        "{} statement(s) ran against the live schema in a transaction that was rolled back",
        statements.len()
    ))
}
