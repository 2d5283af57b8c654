//! `cargo +nightly fuzz run analysis`: any bytes, split at the first NUL
//! into up.sql and down.sql, go through split + parse + classify + every
//! rule as a migration folder and as a plain up/down pair. No input may panic.
#![no_main]

use keel::analysis::analyze::{MigrationFiles, PlainPair, analyze, analyze_sql_pair};
use keel::analysis::{Schema, split};
use keel::migration::Meta;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (up, down) = text.split_once('\0').unwrap_or((text, ""));
    let version = ["9.6", "11", "14.2", "15"][data.len() % 4].parse().ok();
    let _ = split(up);
    let meta = Meta {
        transaction: data.len() % 2 == 0,
        ..Meta::default()
    };
    let files = MigrationFiles {
        dir: Path::new("m"),
        up,
        down: Some(down),
        meta: &meta,
    };
    let _ = analyze(&files, &mut Schema::default(), version);
    let _ = analyze_sql_pair(
        &PlainPair {
            up_path: "1.up.sql",
            up,
            report_up: true,
            down_path: "1.down.sql",
            down,
        },
        version,
    );
});
