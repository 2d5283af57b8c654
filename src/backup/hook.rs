//! Backups around plain `up` and `down`: the [`Hook`] the runner calls
//! before each migration's up and inside each migration's down.

use super::{BackupError, Created, Restored, create, newest, plan_for, restore, restore_within};
use crate::db::{Database, Timeouts};
use crate::migration::Migration;
use crate::migrator::{Hook, RunError};
use async_trait::async_trait;
use std::path::PathBuf;

/// Before a migration whose analysis says it destroys data: export that
/// data into `backups/<version>_<name>/<stamp>.zip` and verify the archive.
/// After its down.sql recreated the structure: put the newest archive's data
/// back in the same transaction, so the down and its data commit together.
/// Which archive the hook restores after a down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restore {
    /// The migration's newest archive in `backups/<version>_<name>/`, when
    /// its analysis says it destroys data (`keel down`).
    Newest,
    /// This one (`execute`'s rollback: the archive it just wrote).
    Archive(PathBuf),
    /// None: nothing was destroyed.
    Nothing,
}

pub struct BackupHook<'a> {
    dir: PathBuf,
    say: &'a (dyn Fn(&str) + Sync),
    /// `false`: the caller made the backup itself (`execute`).
    pub back_up: bool,
    /// Which archive `down` puts back.
    pub restore: Restore,
    /// Archives written, in order.
    pub created: Vec<Created>,
    /// Archives put back, in order.
    pub restored: Vec<(PathBuf, Restored)>,
}

impl<'a> BackupHook<'a> {
    /// Backups under `dir` (the project's `backups/`); `say` prints a line.
    pub fn new(dir: impl Into<PathBuf>, say: &'a (dyn Fn(&str) + Sync)) -> BackupHook<'a> {
        BackupHook {
            dir: dir.into(),
            say,
            back_up: true,
            restore: Restore::Newest,
            created: Vec::new(),
            restored: Vec::new(),
        }
    }
}

fn hook_error(m: &Migration, e: BackupError, outcome: &str) -> RunError {
    RunError::Hook {
        migration: m.id(),
        check_failed: e.is_check_failure(),
        message: format!("{}\n  {outcome}", e.to_string().trim_end()),
    }
}

/// What `m` destroys, by the analysis: empty for most migrations.
fn destroys(m: &Migration) -> bool {
    !crate::analysis::analyze::analyze_set(&[m], true, None, None)
        .remove(0)
        .backups
        .is_empty()
}

/// For a down that stopped before keel put `m`'s backed-up data back (a
/// non-transactional down the operator finished by hand): what to do about
/// that data, in words. `None` when `m` destroys nothing or its down.sql
/// rebuilds the data itself (`restore_on_down = false`).
pub fn unrestored_note(dir: &std::path::Path, m: &Migration) -> Option<String> {
    if !m.meta.restore_on_down || !destroys(m) {
        return None;
    }
    let why = format!(
        "the data {} destroyed was not put back: keel restores its backup after down.sql, which stopped part-way",
        m.id()
    );
    Some(match newest(dir, &m.id()) {
        Some(archive) => format!(
            "{why}; put it back with `keel restore {}`",
            archive.display()
        ),
        None => format!(
            "{why}, and {} holds no archive of it: down.sql brought back the structure, not the data",
            dir.join(m.id()).display()
        ),
    })
}

/// Describes an archive in one line: `path (users.bio: 1000 rows)`.
pub fn summary(path: &std::path::Path, tables: &[(String, Vec<String>, u64)]) -> String {
    let parts: Vec<String> = tables
        .iter()
        .map(|(t, cols, rows)| {
            if cols.is_empty() {
                format!("{t}: {rows} rows")
            } else {
                format!("{t}.{}: {rows} rows", cols.join(", "))
            }
        })
        .collect();
    format!("{} ({})", path.display(), parts.join("; "))
}

fn created_summary(c: &Created) -> String {
    let tables: Vec<(String, Vec<String>, u64)> = c
        .manifest
        .files
        .iter()
        .map(|f| {
            let cols = match f.kind {
                super::Kind::Columns => f
                    .columns
                    .iter()
                    .filter(|c| !f.key.contains(c))
                    .cloned()
                    .collect(),
                super::Kind::Table => Vec::new(),
            };
            (f.table.clone(), cols, f.rows)
        })
        .collect();
    summary(&c.path, &tables)
}

/// Creates and verifies the backup `m` needs, if it destroys existing data.
pub async fn back_up(
    db: &mut dyn Database,
    m: &Migration,
    dir: &std::path::Path,
) -> Result<Option<Created>, BackupError> {
    let analysis = crate::analysis::analyze::analyze_set(&[m], true, None, None).remove(0);
    if analysis.backups.is_empty() {
        return Ok(None);
    }
    let Some(plan) = plan_for(db, m, &analysis.backups).await? else {
        return Ok(None);
    };
    Ok(Some(create(db, &plan, dir).await?))
}

#[async_trait]
impl Hook for BackupHook<'_> {
    async fn before_up(&mut self, db: &mut dyn Database, m: &Migration) -> Result<(), RunError> {
        if !self.back_up {
            return Ok(());
        }
        match back_up(db, m, &self.dir).await {
            Ok(Some(created)) => {
                (self.say)(&format!(
                    "backed up {} before {}; archive verified",
                    created_summary(&created),
                    m.id()
                ));
                self.created.push(created);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => Err(hook_error(
                m,
                e,
                "keel backs up what a migration destroys before it runs; the migration did not run",
            )),
        }
    }

    async fn after_down(
        &mut self,
        db: &mut dyn Database,
        m: &Migration,
        in_transaction: bool,
    ) -> Result<(), RunError> {
        let which = std::mem::replace(&mut self.restore, Restore::Newest);
        if !m.meta.restore_on_down && which != Restore::Nothing && destroys(m) {
            let kept = match &which {
                Restore::Archive(p) => p.display().to_string(),
                _ => newest(&self.dir, &m.id())
                    .map_or_else(|| "no archive".into(), |p| p.display().to_string()),
            };
            (self.say)(&format!(
                "not restoring the backup of {}: its migration.toml sets restore_on_down = false (down.sql rebuilds the data); kept: {kept}",
                m.id()
            ));
            return Ok(());
        }
        let path = match which {
            Restore::Archive(p) => p,
            Restore::Nothing => return Ok(()),
            Restore::Newest => {
                if !destroys(m) {
                    return Ok(());
                }
                match newest(&self.dir, &m.id()) {
                    Some(p) => p,
                    None => {
                        (self.say)(&format!(
                            "note: {} destroyed data but {} holds no backup of it (none was needed, or it was removed): down.sql brings back the structure, not the data",
                            m.id(),
                            self.dir.join(m.id()).display()
                        ));
                        return Ok(());
                    }
                }
            }
        };
        let outcome = if in_transaction {
            format!(
                "the down was rolled back: {} is still applied\n  fix: check the archive with `keel backup verify {}`; to revert without its data, move it out of {}",
                m.id(),
                path.display(),
                self.dir.join(m.id()).display()
            )
        } else {
            // Statement by statement, down.sql has taken effect for good.
            format!(
                "down.sql took effect (transaction = false) but its data is not back: {} is marked failed\n  fix: check the archive with `keel backup verify {p}`, put the data back with `keel restore {p}`, then run `keel resolve {} --reverted`",
                m.id(),
                m.version,
                p = path.display(),
            )
        };
        let restored = if in_transaction {
            restore_within(db, &path).await
        } else {
            let t = Timeouts {
                lock: std::time::Duration::from_secs(10),
                statement: std::time::Duration::from_secs(3600),
            };
            restore(db, &path, t).await
        }
        .map_err(|e| hook_error(m, e, &outcome))?;
        if restored.manifest.checksum != m.checksum {
            (self.say)(&format!(
                "note: {} was written for another version of {} (checksum {}…)",
                path.display(),
                m.id(),
                &restored.manifest.checksum[..restored.manifest.checksum.len().min(12)]
            ));
        }
        let tables: Vec<(String, Vec<String>, u64)> = restored
            .tables
            .iter()
            .map(|(t, n)| (t.clone(), Vec::new(), *n))
            .collect();
        (self.say)(&format!("restored {}", summary(&path, &tables)));
        self.restored.push((path, restored));
        Ok(())
    }
}
