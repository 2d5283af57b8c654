//! The guarded run (`keel execute V --env E`): guard, checklist, backup,
//! run, post-migration checks, automatic rollback, record.

pub mod confirm;
