//! PostgreSQL's table-level lock modes and what each means for the
//! application while a migration holds it.

use serde::Serialize;

/// PostgreSQL's table-level lock modes, weakest first, so `max` is the
/// strongest lock a statement takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Lock {
    /// Taken by SELECT; conflicts only with ACCESS EXCLUSIVE.
    AccessShare,
    /// Taken by SELECT … FOR UPDATE / FOR SHARE.
    RowShare,
    /// Taken by INSERT, UPDATE, DELETE.
    RowExclusive,
    /// Taken by VACUUM, CREATE INDEX CONCURRENTLY, VALIDATE CONSTRAINT: reads
    /// and writes go on.
    ShareUpdateExclusive,
    /// Taken by CREATE INDEX (without CONCURRENTLY): blocks writes.
    Share,
    /// Taken by CREATE TRIGGER and ADD FOREIGN KEY: blocks writes.
    ShareRowExclusive,
    /// Taken by REFRESH MATERIALIZED VIEW CONCURRENTLY: only reads go on.
    Exclusive,
    /// Taken by most ALTER TABLE forms, DROP, TRUNCATE, VACUUM FULL: blocks
    /// reads and writes.
    AccessExclusive,
}

impl Lock {
    /// Every mode, weakest first.
    pub const ALL: [Lock; 8] = [
        Lock::AccessShare,
        Lock::RowShare,
        Lock::RowExclusive,
        Lock::ShareUpdateExclusive,
        Lock::Share,
        Lock::ShareRowExclusive,
        Lock::Exclusive,
        Lock::AccessExclusive,
    ];

    /// The mode [`Lock::name`] spells `name`.
    pub fn from_name(name: &str) -> Option<Lock> {
        Lock::ALL.into_iter().find(|l| l.name() == name)
    }

    /// The name PostgreSQL's documentation uses (`ACCESS EXCLUSIVE`).
    pub fn name(self) -> &'static str {
        match self {
            Lock::AccessShare => "ACCESS SHARE",
            Lock::RowShare => "ROW SHARE",
            Lock::RowExclusive => "ROW EXCLUSIVE",
            Lock::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            Lock::Share => "SHARE",
            Lock::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            Lock::Exclusive => "EXCLUSIVE",
            Lock::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }

    /// The mode as `pg_locks.mode` spells it (`AccessExclusiveLock`).
    pub fn pg_locks_mode(self) -> &'static str {
        match self {
            Lock::AccessShare => "AccessShareLock",
            Lock::RowShare => "RowShareLock",
            Lock::RowExclusive => "RowExclusiveLock",
            Lock::ShareUpdateExclusive => "ShareUpdateExclusiveLock",
            Lock::Share => "ShareLock",
            Lock::ShareRowExclusive => "ShareRowExclusiveLock",
            Lock::Exclusive => "ExclusiveLock",
            Lock::AccessExclusive => "AccessExclusiveLock",
        }
    }

    /// What the lock means for the application while it is held.
    pub fn blocks(self) -> &'static str {
        match self {
            Lock::AccessExclusive => "blocks reads and writes",
            Lock::Exclusive | Lock::ShareRowExclusive | Lock::Share => "blocks writes",
            Lock::ShareUpdateExclusive => "blocks only DDL and VACUUM",
            _ => "blocks only conflicting DDL",
        }
    }

    /// Stronger than SHARE UPDATE EXCLUSIVE: the application's writes wait.
    pub fn blocks_writes(self) -> bool {
        self >= Lock::Share
    }
}
