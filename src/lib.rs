//! keel: database migrations with reviewed runbooks, guarded execution and
//! signed records. The modules follow the data flow of the design:
//! files → [`migration`] → [`analysis`] → [`migrator`] (run) against [`db`].

pub mod analysis;
pub mod backfill;
pub mod backup;
pub mod cli;
pub mod config;
pub mod csv;
pub mod db;
pub mod digest;
pub mod error;
pub mod execute;
pub mod files;
pub mod import;
pub mod inspect;
pub mod migration;
pub mod migrator;
pub mod record;
pub mod review;
pub mod roundtrip;
pub mod runbook;
pub mod scaffold;
pub mod seed;
pub mod snapshot;
pub mod sql;
pub mod stamp;
pub mod target;
