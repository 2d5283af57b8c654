//! End-to-end scenarios: the real `keel` binary against real databases.
//! One binary for all of them, so the PostgreSQL cluster starts once per run.

/// Writes a scenario once and runs it on PostgreSQL and on SQLite: the
/// scenario file imports `Project` and `Db`, the macro makes two tests.
macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn postgres() {
                ($body)(Project::new(Db::Postgres))
            }
            #[test]
            fn sqlite() {
                ($body)(Project::new(Db::Sqlite))
            }
        }
    };
}

mod common;

mod accept_checksum;
mod adopt;
mod architecture;
mod backfill;
mod backfill_bisect;
mod backfill_check;
mod backup;
mod backup_binding;
mod backup_in_transaction;
mod blockers;
mod calibrate;
mod concurrent_index;
mod config;
mod data_integrity;
mod demo;
mod deploy_gate;
mod docs;
mod down_restores;
mod execute;
mod failures;
mod faults;
mod fingerprint;
mod init;
mod inspect;
mod interrupt;
mod json_output;
mod lint;
mod lint_history;
mod lint_layouts;
mod live;
mod lock_probe;
mod migrate;
mod monitor;
mod new;
mod no_key_backups;
mod permissions;
mod plan;
mod record;
mod rename;
mod resolve;
mod review;
mod rolled_back;
mod round_trip;
mod rule_docs;
mod runbook;
mod sample;
mod seed;
mod server_crash;
mod snapshot;
mod source;
mod tamper;
mod targeted_backups;
mod throttle;
mod validate;
