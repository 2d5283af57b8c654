//! End-to-end scenarios: the real `keel` binary against real databases.
//! One binary for all of them, so the PostgreSQL cluster starts once per run.

mod common;

mod backfill;
mod backup;
mod calibrate;
mod concurrent_index;
mod config;
mod demo;
mod execute;
mod failures;
mod inspect;
mod lint;
mod live;
mod lock_probe;
mod migrate;
mod new;
mod plan;
mod record;
mod rename;
mod resolve;
mod runbook;
mod sample;
mod seed;
mod snapshot;
mod validate;
