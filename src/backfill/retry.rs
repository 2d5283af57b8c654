//! A run after a finished backfill: the operator fixed the rows it
//! skipped, so each is tried again on its own, one transaction each; a row
//! that now works leaves the failure list, one that still fails keeps its
//! place with the new error.

use super::{BackfillError, Engine, Progress, one_line, store};
use crate::db::{DbError, Value};

impl Engine<'_> {
    /// Tries each skipped row again, one transaction each; a row that now
    /// works leaves the failure list.
    pub(super) async fn retry_failures(&mut self) -> Result<(), BackfillError> {
        self.sent(1);
        let failures = store::failures(self.db, &self.version).await?;
        let sql = self.plan.update(false);
        for f in failures {
            self.sent(1);
            self.db.begin(self.opts.timeouts, false).await?;
            let outcome = async {
                self.sent(1);
                let updated = self
                    .db
                    .execute_with(&sql, &[Value::Int(f.key - 1), Value::Int(f.key)])
                    .await?;
                self.sent(2);
                store::remove_failure(self.db, &self.version, f.key).await?;
                let mut next = self.state().clone();
                next.rows_updated += updated as i64;
                next.failures = (next.failures - 1).max(0);
                store::save(self.db, &next).await?;
                Ok::<_, DbError>(next)
            }
            .await;
            self.sent(1);
            match outcome {
                Ok(next) => {
                    self.db.commit().await?;
                    self.committed(next);
                }
                Err(e) => {
                    let _ = self.db.rollback().await;
                    if !e.is_data_error() {
                        return Err(BackfillError::Batch {
                            migration: self.m.id(),
                            range: format!("{} = {}", self.plan.key_name, f.key),
                            error: e,
                        });
                    }
                    let message = one_line(&e);
                    (self.on)(Progress::RowFailed {
                        migration: self.m,
                        key: f.key,
                        error: &message,
                    });
                    let next = self.state().clone();
                    self.commit_state(next, Some((f.key, message)), false)
                        .await?;
                }
            }
        }
        Ok(())
    }
}
