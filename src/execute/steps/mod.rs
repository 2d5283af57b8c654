//! The steps of the guarded run, one file per step or small family, in the
//! order [`super::pipeline`] runs them.

pub(crate) mod backfill;
pub(crate) mod backup;
pub(crate) mod checklist;
pub(crate) mod checks;
pub(crate) mod finish;
pub(crate) mod guards;
pub(crate) mod lock;
pub(crate) mod migrate;
pub(crate) mod monitor;
pub(crate) mod record;
pub(crate) mod rollback;
