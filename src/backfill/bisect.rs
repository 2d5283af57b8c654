//! A batch the data of some row broke, done again in one transaction with
//! its progress: its key range is split in halves under savepoints, and a
//! half that fails is split again, until the rows that break it stand
//! alone. Those are skipped and logged; every other row is updated exactly
//! once, by the one attempt of its part that went through (a failed attempt
//! is rolled back to its savepoint). A crash anywhere in here loses the
//! whole transaction, progress included, so the batch runs again from the
//! last committed one.
//!
//! PostgreSQL runs this same bisection on the server, in one statement a
//! batch ([`crate::db::Transactions::bisect`]): there a statement is a round
//! trip, and on a busy machine the round trips were most of what dirty
//! data cost. Here the client does it, for SQLite, where a statement is a
//! call. One bad row in a batch of n costs about 1.5·log2(n) attempts of two
//! statements each (a savepoint and the UPDATE, or the UPDATE and the
//! rollback to the savepoint it reuses), where redoing the batch row by row
//! cost 3n statements. A part whose outcome is
//! known is not attempted: when the left half of a failed part goes
//! through, the bad row is in the right half, which is split straight
//! away. A single row is always attempted, so a row is only ever logged
//! with its own error, even when a concurrent write or an expression that
//! is not deterministic changed the outcome in between.

use super::Engine;
use crate::db::{Bisected, DbError};

const SAVEPOINT: &str = "keel_part";

/// The keys `keys[from..to]` of the batch being bisected, as the key range
/// from the key before `from` (or the batch's lower end) to `keys[to - 1]`
/// (or the batch's upper end), so that the parts cover the batch's whole
/// range, rows inserted since its keys were read included.
#[derive(Debug, Clone, Copy)]
struct Part {
    from: usize,
    to: usize,
    /// Some row of it fails: split it without an attempt.
    known_bad: bool,
    /// The left half of its parent, whose right half is just below it on
    /// the stack.
    left: bool,
}

impl Engine<'_> {
    /// Runs the batch `lo < key <= hi`, whose keys are `keys`, again in
    /// parts inside the open transaction; a data error of a single row
    /// skips it, any other error is returned (the caller rolls back). On
    /// a database that bisects on the server (PostgreSQL) that is one
    /// statement; otherwise two a part, from here.
    pub(super) async fn isolate(
        &mut self,
        lo: Option<i64>,
        hi: i64,
        keys: &[i64],
    ) -> Result<Bisected, DbError> {
        if self.server_bisect == Some(true) {
            self.sent(1);
            let (update, from_start) = (self.plan.update(false), self.plan.update(true));
            return self.db.bisect(&update, &from_start, lo, hi, keys).await;
        }
        let mut done = Bisected::default();
        // Set while a savepoint is established that no attempt has used
        // since: after ROLLBACK TO it stays, ready for the next attempt.
        let mut armed = false;
        // Depth first, left half first, so that parts run in key order.
        let mut parts = vec![Part {
            from: 0,
            to: keys.len(),
            known_bad: true,
            left: false,
        }];
        while let Some(part) = parts.pop() {
            if part.from >= part.to {
                continue;
            }
            let single = part.to - part.from == 1;
            if single || !part.known_bad {
                let lower = match part.from {
                    0 => lo,
                    i => Some(keys[i - 1]),
                };
                let upper = if part.to == keys.len() {
                    hi
                } else {
                    keys[part.to - 1]
                };
                done.attempts += 1;
                match self.attempt(lower, upper, &mut armed).await? {
                    Ok(rows) => {
                        done.updated += rows;
                        if part.left
                            && let Some(right) = parts.last_mut()
                        {
                            right.known_bad = true;
                        }
                        continue;
                    }
                    Err(e) if single => {
                        done.failed.push((keys[part.from], e));
                        continue;
                    }
                    Err(_) => {}
                }
            }
            let mid = part.from + (part.to - part.from) / 2;
            parts.push(Part {
                from: mid,
                to: part.to,
                known_bad: false,
                left: false,
            });
            parts.push(Part {
                from: part.from,
                to: mid,
                known_bad: false,
                left: true,
            });
        }
        Ok(done)
    }

    /// The rows `lo < key <= hi` under a savepoint: `Ok(Ok(rows changed))`
    /// when they went through, `Ok(Err(e))` when the data of a row broke
    /// them and they were rolled back to the savepoint.
    ///
    /// A part that went through is not released: the next attempt's
    /// SAVEPOINT of the same name nests inside it, and ROLLBACK TO undoes
    /// only the newest. That keeps every attempt at two statements (a
    /// released subtransaction keeps its transaction id until the COMMIT
    /// all the same, so nesting costs the server nothing more).
    async fn attempt(
        &mut self,
        lo: Option<i64>,
        hi: i64,
        armed: &mut bool,
    ) -> Result<Result<u64, DbError>, DbError> {
        if !*armed {
            self.sent(1);
            self.db.savepoint(SAVEPOINT).await?;
        }
        let params = Self::bounds(lo, Some(hi));
        self.sent(1);
        match self
            .db
            .execute_with(&self.plan.update(lo.is_none()), &params)
            .await
        {
            Ok(rows) => {
                *armed = false;
                Ok(Ok(rows))
            }
            Err(e) if e.is_data_error() => {
                self.sent(1);
                self.db.rollback_to_savepoint(SAVEPOINT).await?;
                // The savepoint stays after ROLLBACK TO: the next attempt
                // uses it.
                *armed = true;
                Ok(Err(e))
            }
            Err(e) => Err(e),
        }
    }
}
