//! Work around each migration that the runner itself knows nothing about:
//! `up` backs up the data a migration destroys before it runs, `down` puts
//! that data back inside the down's own transaction (see
//! [`crate::backup::BackupHook`]).

use super::error::RunError;
use crate::db::{BackupRef, Database};
use crate::migration::Migration;
use async_trait::async_trait;

#[async_trait]
pub trait Hook: Send {
    /// Before the first migration of an `up`, with every migration the run
    /// will apply, in order: they are analysed together, once.
    async fn prepare(
        &mut self,
        db: &mut dyn Database,
        pending: &[&Migration],
    ) -> Result<(), RunError> {
        let _ = (db, pending);
        Ok(())
    }

    /// Before `m`'s up starts, outside any transaction. An error stops the
    /// run before `m` changed anything. The archive it returns is recorded
    /// in `m`'s tracking row, in the migration's own transaction.
    async fn before_up(
        &mut self,
        db: &mut dyn Database,
        m: &Migration,
    ) -> Result<Option<BackupRef>, RunError> {
        let _ = (db, m);
        Ok(None)
    }

    /// After `m`'s down.sql ran and before its tracking row goes, with the
    /// archive that row recorded. With `in_transaction` the down's
    /// transaction is still open and whatever the hook does commits (or
    /// rolls back) with it; an error rolls the whole down back.
    async fn after_down(
        &mut self,
        db: &mut dyn Database,
        m: &Migration,
        recorded: Option<&BackupRef>,
        in_transaction: bool,
    ) -> Result<(), RunError> {
        let _ = (db, m, recorded, in_transaction);
        Ok(())
    }
}

/// No work around migrations.
pub struct NoHook;

impl Hook for NoHook {}
