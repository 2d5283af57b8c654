//! The steps of the guarded run, one file per step or small family, in the
//! order [`super::pipeline`] runs them.

pub mod backfill;
pub mod backup;
pub mod checklist;
pub mod checks;
pub mod finish;
pub mod guards;
pub mod lock;
pub mod migrate;
pub mod record;
pub mod rollback;
