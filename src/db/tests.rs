//! The SQL both dialects share, run on a real SQLite database in memory:
//! the tracking rows' upsert and read, keel_meta's id, and the counting
//! defaults of [`Bulk`]. (PostgreSQL runs the same SQL in the CLI tests.)

use super::*;
use chrono::{TimeZone, Utc};

fn row(version: &str, state: TrackingState) -> TrackingRow {
    TrackingRow {
        version: version.to_string(),
        name: "add_things".to_string(),
        checksum: "abc".to_string(),
        state,
        applied_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
        applied_by: "me".to_string(),
        execution_ms: 12,
        statements_done: 0,
        error: None,
        backup: None,
        schema_before: None,
    }
}

#[tokio::test]
async fn tracking_rows_are_written_replaced_read_and_deleted() {
    let mut db = connect("sqlite::memory:").await.unwrap();
    assert!(db.tracking_rows().await.unwrap().is_empty());
    assert_eq!(db.database_id().await.unwrap(), None);
    db.ensure_tracking().await.unwrap();
    let id = db.database_id().await.unwrap().expect("an id");
    // A second ensure keeps the id the database was given.
    db.ensure_tracking().await.unwrap();
    assert_eq!(db.database_id().await.unwrap(), Some(id));

    db.write_tracking(&row("2", TrackingState::Applied))
        .await
        .unwrap();
    let mut failed = row("1", TrackingState::Failed);
    failed.error = Some("boom".to_string());
    db.write_tracking(&failed).await.unwrap();
    let mut applied = row("1", TrackingState::Applied);
    applied.backup = Some(BackupRef {
        path: "backups/1.tar".to_string(),
        sha256: "f00".to_string(),
    });
    db.write_tracking(&applied).await.unwrap();

    let rows = db.tracking_rows().await.unwrap();
    let versions: Vec<&str> = rows.iter().map(|r| r.version.as_str()).collect();
    assert_eq!(versions, ["1", "2"]);
    assert_eq!(rows[0].state, TrackingState::Applied);
    assert_eq!(rows[0].error, None);
    assert_eq!(rows[0].backup, applied.backup);
    assert_eq!(rows[0].applied_at, applied.applied_at);

    db.delete_tracking("1").await.unwrap();
    assert_eq!(db.tracking_rows().await.unwrap().len(), 1);
    db.close().await;
}

#[tokio::test]
async fn rows_are_counted_and_summed_up_with_shared_sql() {
    let mut db = connect("sqlite::memory:").await.unwrap();
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
        .await
        .unwrap();
    assert_eq!(db.count_rows("t").await.unwrap(), 0);
    assert_eq!(db.max_int("t", "id").await.unwrap(), None);
    db.execute("INSERT INTO t VALUES (3, 'b'), (7, NULL), (5, 'a')")
        .await
        .unwrap();
    assert_eq!(db.count_rows("t").await.unwrap(), 3);
    assert_eq!(db.max_int("t", "id").await.unwrap(), Some(7));
    let s = db.summarize("t", "name").await.unwrap();
    assert_eq!((s.rows, s.nulls), (3, 1));
    assert_eq!((s.min.as_deref(), s.max.as_deref()), (Some("a"), Some("b")));
    let mut seen = Vec::new();
    let n = db
        .scan_text("t", "id", &mut |v| seen.push(v.map(str::to_string)))
        .await
        .unwrap();
    assert_eq!(n, 3);
    seen.sort();
    assert_eq!(seen, [Some("3".into()), Some("5".into()), Some("7".into())]);
    db.close().await;
}
