//! `keel calibrate`: measures this server on a scratch table, stores the
//! coefficients in keel_calibration, and leaves no scratch data behind.

use crate::common::{Project, stderr, stdout};

#[test]
fn measures_stores_and_cleans_up() {
    let p = Project::postgres();
    let out = p
        .keel()
        .args(["calibrate", "--rows", "20000"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("calibrated postgres://"), "{text}");
    for step in [
        "catalog change",
        "validation scan",
        "index build (integer key)",
        "index build (text key)",
        "table rewrite",
        "backfill",
    ] {
        assert!(
            text.contains(&format!("  {step} ")),
            "missing {step}:\n{text}"
        );
    }
    assert!(text.ends_with(
        "stored in keel_calibration: keel plan, up --dry-run and lint use it for this database\n"
    ));
    assert_eq!(
        p.scalar("SELECT count(*) FROM keel_calibration").as_deref(),
        Some("1")
    );
    assert_eq!(
        p.scalar("SELECT (coefficients->>'rows') FROM keel_calibration")
            .as_deref(),
        Some("20000")
    );
    assert_eq!(
        p.scalar("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'keel_calibrate%'")
            .as_deref(),
        Some("0"),
        "the scratch schema is dropped"
    );
    // keel's own table is not part of the user's schema.
    let out = p.keel().args(["inspect"]).output().unwrap();
    assert!(
        !stdout(&out).contains("keel_calibration"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn json_reports_the_coefficients() {
    let p = Project::postgres();
    let out = p
        .keel()
        .args(["calibrate", "--rows", "10000", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &json["calibration"]["coefficients"];
    for key in [
        "rewrite_ns_per_byte",
        "scan_ns_per_byte",
        "index_ns_per_row_log",
        "update_ns_per_row",
        "batch_ms",
        "catalog_ms",
    ] {
        assert!(c[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {c}");
    }
    assert_eq!(json["measurements"].as_array().unwrap().len(), 6);
}

#[test]
fn sqlite_has_nothing_to_calibrate() {
    let p = Project::sqlite();
    let out = p.keel().arg("calibrate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("keel calibrate times PostgreSQL's rewrites, index builds and scans; SQLite has none to time"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn too_few_rows_is_a_usage_error() {
    let p = Project::sqlite();
    let out = p
        .keel()
        .args(["calibrate", "--rows", "10"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
