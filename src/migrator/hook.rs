//! Work around each migration that the runner itself knows nothing about:
//! `up` backs up the data a migration destroys before it runs, `down` puts
//! that data back inside the down's own transaction (the backups' hook).

use super::error::RunError;
use crate::analysis::analyze::MigrationAnalysis;
use crate::db::{BackupRef, Database};
use crate::migration::Migration;
use async_trait::async_trait;

#[async_trait]
pub(crate) trait Hook: Send {
    /// Before `m`'s up starts, outside any transaction, with the run's
    /// analysis of it. An error stops the run before `m` changed anything.
    /// The archive it returns is recorded in `m`'s tracking row, in the
    /// migration's own transaction.
    async fn before_up(
        &mut self,
        db: &mut dyn Database,
        m: &Migration,
        analysis: &MigrationAnalysis,
    ) -> Result<Option<BackupRef>, RunError> {
        let _ = (db, m, analysis);
        Ok(None)
    }

    /// Before `m`'s down starts, with the archive its tracking row recorded:
    /// refuse here what the restore after down.sql would refuse, since a
    /// `transaction = false` down cannot take its statements back.
    async fn before_down(
        &mut self,
        db: &mut dyn Database,
        m: &Migration,
        recorded: Option<&BackupRef>,
    ) -> Result<(), RunError> {
        let _ = (db, m, recorded);
        Ok(())
    }

    /// After `m`'s down.sql ran and before its tracking row goes, with the
    /// run's analysis of it and the archive that row recorded. With
    /// `in_transaction` the down's transaction is still open and whatever
    /// the hook does commits (or rolls back) with it; an error rolls the
    /// whole down back.
    async fn after_down(
        &mut self,
        db: &mut dyn Database,
        m: &Migration,
        analysis: &MigrationAnalysis,
        recorded: Option<&BackupRef>,
        in_transaction: bool,
    ) -> Result<(), RunError> {
        let _ = (db, m, analysis, recorded, in_transaction);
        Ok(())
    }
}
