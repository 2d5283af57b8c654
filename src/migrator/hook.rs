//! Work around each migration that the runner itself knows nothing about:
//! `up` backs up the data a migration destroys before it runs, `down` puts
//! that data back inside the down's own transaction (see
//! [`crate::backup::BackupHook`]).

use super::error::RunError;
use crate::db::Database;
use crate::migration::Migration;
use async_trait::async_trait;

#[async_trait]
pub trait Hook: Send {
    /// Before `m`'s up starts, outside any transaction. An error stops the
    /// run before `m` changed anything.
    async fn before_up(&mut self, db: &mut dyn Database, m: &Migration) -> Result<(), RunError> {
        let _ = (db, m);
        Ok(())
    }

    /// After `m`'s down.sql ran and before its tracking row goes. With
    /// `in_transaction` the down's transaction is still open and whatever
    /// the hook does commits (or rolls back) with it; an error rolls the
    /// whole down back.
    async fn after_down(
        &mut self,
        db: &mut dyn Database,
        m: &Migration,
        in_transaction: bool,
    ) -> Result<(), RunError> {
        let _ = (db, m, in_transaction);
        Ok(())
    }
}

/// No work around migrations.
pub struct NoHook;

impl Hook for NoHook {}
