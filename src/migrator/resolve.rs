//! `keel resolve`: what an operator found after a non-transactional
//! migration stopped part-way, in either direction.

use super::error::RunError;
use super::runner::{Runner, forget_backfill};
use crate::db::{BackupRef, Database, DbError, TrackingState};
use crate::migration::{Migration, Version};

impl Runner<'_> {
    /// Records what an operator found after a failed non-transactional
    /// migration, whichever way it was going: that it is fully applied, or
    /// fully reverted.
    pub(crate) async fn resolve(
        &mut self,
        files: &[Migration],
        version: Version,
        applied: bool,
    ) -> Result<Resolved, RunError> {
        self.lock().await?;
        let result = self.resolve_locked(files, version, applied).await;
        self.unlock(result).await
    }

    async fn resolve_locked(
        &mut self,
        files: &[Migration],
        version: Version,
        applied: bool,
    ) -> Result<Resolved, RunError> {
        let rows = self.db.tracking_rows().await?;
        let v = version.to_string();
        let Some(mut row) = rows.into_iter().find(|r| r.version == v) else {
            return Err(RunError::Refused {
                message: format!(
                    "migration {version} has no tracking row: there is nothing to resolve"
                ),
                fix: "`keel status` lists the failed migrations".into(),
            });
        };
        if !row.state.is_failed() {
            return Err(RunError::Refused {
                message: format!("migration {version} is {}, not failed", row.state.as_str()),
                fix: "only a failed migration needs resolving; `keel status` shows the states"
                    .into(),
            });
        }
        let reverting = row.state == TrackingState::FailedDown;
        let m = files.iter().find(|m| m.version == version);
        if applied {
            // A failed down's row is still the applied row of its up (when,
            // by whom, which checksum); a failed up's is this resolution.
            if !reverting {
                if let Some(m) = m {
                    row.checksum = m.checksum.clone();
                }
                row.applied_by = self.operator.clone();
            }
            row.state = match m {
                Some(m) if backfill_unfinished(self.db, m).await? => TrackingState::Backfilling,
                _ => TrackingState::Applied,
            };
            row.error = None;
            self.db.write_tracking(&row).await?;
        } else {
            if let Some(m) = m {
                forget_backfill(self.db, m).await?;
            }
            self.db.delete_tracking(&v).await?;
        }
        Ok(Resolved {
            reverting,
            backup: row.backup,
            state: if applied {
                row.state.as_str()
            } else {
                "pending"
            },
        })
    }
}

/// What `keel resolve` recorded.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// The migration had stopped part-way through down.sql (not up.sql).
    pub(crate) reverting: bool,
    /// The archive its up took, as its tracking row recorded it.
    pub(crate) backup: Option<BackupRef>,
    /// Its state now: `applied`, `backfilling` or `pending`.
    pub(crate) state: &'static str,
}

/// A migration resolved as applied whose backfill has not finished goes
/// on backfilling (`keel up` resumes it) rather than skip it.
async fn backfill_unfinished(db: &mut dyn Database, m: &Migration) -> Result<bool, DbError> {
    if m.meta.backfill.is_none() {
        return Ok(false);
    }
    crate::backfill::store::ensure(db).await?;
    Ok(crate::backfill::store::load(db, &m.version.to_string())
        .await?
        .is_none_or(|s| s.finished_at.is_none()))
}
