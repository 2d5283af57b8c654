//! Migrations and tracking rows for the migrator's unit tests: the pure
//! decisions (what is pending, what `down` reverts, what blocks a run) are
//! tested on these, without files or a database.

use crate::db::{TrackingRow, TrackingState};
use crate::migration::Migration;

/// Migration `n`: version `202601010000nn`, name `mN`, an up and a down.
pub(crate) fn migration(n: u32) -> Migration {
    Migration {
        version: version(n).parse().unwrap(),
        name: format!("m{n}"),
        dir: format!("migrations/{}_m{n}", version(n)).into(),
        up: format!("CREATE TABLE t{n} (id int);"),
        down: Some(format!("DROP TABLE t{n};")),
        meta: Default::default(),
        checksum: checksum(n),
    }
}

/// The version of migration `n`.
pub(crate) fn version(n: u32) -> String {
    format!("202601010000{n:02}")
}

/// The checksum migration `n`'s files have.
pub(crate) fn checksum(n: u32) -> String {
    format!("{n:064}")
}

/// The tracking row of migration `n` in `state`, written when its files
/// had their current checksum.
pub(crate) fn row(n: u32, state: TrackingState) -> TrackingRow {
    TrackingRow {
        version: version(n),
        name: format!("m{n}"),
        checksum: checksum(n),
        state,
        applied_at: chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap(),
        applied_by: "tester@host".into(),
        execution_ms: 5,
        statements_done: 0,
        error: None,
        backup: None,
        schema_before: None,
    }
}
