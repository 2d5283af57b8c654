//! `keel validate`: checksums of applied migrations and a rolled-back trial
//! of every pending one.

use crate::common::{Db, Project, stderr, stdout};

both!(pending_migrations_run_and_roll_back, |p: Project| {
    p.sample();
    let out = p.keel().arg("validate").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("ok       20260102090000_add_user_profiles: 2 statement(s) ran against the current schema"), "{text}");
    assert!(!p.table_exists("users"), "validate keeps no change");
});

both!(
    a_broken_pending_migration_fails_with_its_line,
    |p: Project| {
        p.migration(
            "20250101000001_ok",
            "CREATE TABLE a (id bigint);\n",
            Some("DROP TABLE a;"),
            None,
        );
        p.migration(
            "20250101000002_broken",
            "CREATE TABLE b (id bigint);\nALTER TABLE nowhere ADD COLUMN x text;\n",
            Some("DROP TABLE b;"),
            None,
        );
        p.migration(
            "20250101000003_uses_a",
            "INSERT INTO a (id) VALUES (1);\n",
            Some("DELETE FROM a;"),
            None,
        );
        let out = p
            .keel()
            .args(["validate", "--format", "json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["ok"], false);
        assert_eq!(json["problems"][0]["version"], "20250101000002");
        assert_eq!(json["problems"][0]["line"], 2);
        // Later migrations are still tried, against the earlier pending ones.
        assert_eq!(json["checked"].as_array().unwrap().len(), 2);
        assert!(!p.table_exists("a") && !p.table_exists("b"));
    }
);

both!(modified_applied_migration_fails_validate, |p: Project| {
    let dir = p.migration(
        "20250101000001_ok",
        "CREATE TABLE a (id bigint);\n",
        Some("DROP TABLE a;"),
        None,
    );
    p.keel().arg("up").assert().success();
    std::fs::write(dir.join("down.sql"), "DROP TABLE IF EXISTS a;").unwrap();
    let out = p.keel().arg("validate").output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stdout(&out).contains("modified 20250101000001_ok: its files changed after it was applied"),
        "{}",
        stdout(&out)
    );
});
