//! Work around each migration that the runner itself knows nothing about:
//! `up` backs up the data a migration destroys before it runs, `down` puts
//! that data back inside the down's own transaction (the backups' hook).

use super::error::RunError;
use crate::analysis::analyze::MigrationAnalysis;
use crate::db::{BackupRef, Database, Relation};
use crate::migration::Migration;
use async_trait::async_trait;

#[async_trait]
pub(crate) trait Hook: Send {
    /// Before `m`'s up starts, outside any transaction, with the run's
    /// analysis of it. An error stops the run before `m` changed anything.
    /// The archive it returns is recorded in `m`'s tracking row, in the
    /// migration's own transaction. A hook may instead prepare here and
    /// take its backup inside that transaction ([`Hook::within_up`]).
    async fn before_up(
        &mut self,
        db: &mut dyn Database,
        m: &Migration,
        analysis: &MigrationAnalysis,
    ) -> Result<Option<BackupRef>, RunError> {
        let _ = (db, m, analysis);
        Ok(None)
    }

    /// The tables whose backup `m`'s up takes inside its own transaction,
    /// right after it opens ([`Hook::within_up`]); the runner locks them
    /// first. `None`: nothing is backed up there (the archive, if any, came
    /// from [`Hook::before_up`]). Asked after `before_up`.
    fn backs_up_within(&self) -> Option<Vec<Relation>> {
        None
    }

    /// Inside `m`'s open transaction, the tables of
    /// [`Hook::backs_up_within`] locked: takes the backup on that same
    /// connection and returns the archive, which the tracking row written
    /// in that transaction records. Called again on each retry.
    async fn within_up(
        &mut self,
        db: &mut dyn Database,
        m: &Migration,
    ) -> Result<Option<BackupRef>, RunError> {
        let _ = (db, m);
        Ok(None)
    }

    /// `m`'s transaction rolled back after [`Hook::within_up`] made an
    /// archive: no tracking row points to it.
    fn up_rolled_back(&mut self, m: &Migration) {
        let _ = m;
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
