//! `keel up`, `down`, `status`: the everyday loop, on both databases.

use crate::common::{Db, Project, stderr, stdout};

both!(sample_schema_goes_up_and_down, |p: Project| {
    p.sample();
    p.keel().arg("up").assert().success();
    for t in ["users", "posts", "comments", "profiles"] {
        assert!(p.table_exists(t), "{t} after up");
    }
    assert_eq!(
        p.scalar("SELECT count(*) FROM keel_migrations WHERE state = 'applied'")
            .as_deref(),
        Some("4")
    );

    p.keel().args(["down", "--steps", "2"]).assert().success();
    assert!(!p.table_exists("profiles"));
    assert!(!p.table_exists("comments"));
    assert!(p.table_exists("posts"));

    let out = p
        .keel()
        .args(["status", "--format", "json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let states: Vec<&str> = json["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["applied", "applied", "pending", "pending"]);
    assert_eq!(
        json["migrations"][0]["applied_by"]
            .as_str()
            .unwrap()
            .split('@')
            .next(),
        Some("tester")
    );
});

both!(
    down_of_one_version_reverts_exactly_it_or_names_what_came_after,
    |p: Project| {
        p.sample();
        p.keel().arg("up").assert().success();
        // posts is not the newest applied: comments and profiles came after it.
        let out = p.keel().args(["down", "20260101090100"]).output().unwrap();
        assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
        err.contains("20260101090200_create_comments, 20260102090000_add_user_profiles were applied after it")
            && err.contains("nothing was changed")
            && err.contains("fix: revert the later ones first"),
        "{err}"
    );
        assert!(
            p.table_exists("posts") && p.table_exists("profiles"),
            "nothing reverted"
        );
        let out = p.keel().args(["down", "20260102090000"]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(!p.table_exists("profiles"));
        assert!(p.table_exists("comments"), "only that one");
        let out = p.keel().args(["down", "20260102090000"]).output().unwrap();
        assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("is pending, not applied"),
            "{}",
            stderr(&out)
        );
        let out = p
            .keel()
            .args(["down", "20260102090000", "--steps", "1"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "a version and --steps conflict");
    }
);

both!(
    dry_run_prints_sql_in_order_and_changes_nothing,
    |p: Project| {
        p.sample();
        let out = p.keel().args(["up", "--dry-run"]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        let users = text.find("CREATE TABLE users").expect("users SQL");
        let profiles = text.find("CREATE TABLE profiles").expect("profiles SQL");
        assert!(users < profiles);
        assert!(!p.table_exists("users"));
        assert!(!p.table_exists("keel_migrations"));
    }
);

#[test]
fn a_deleted_applied_migration_is_missing_and_blocks_runs() {
    let p = Project::sqlite();
    p.sample();
    p.keel().arg("up").assert().success();
    std::fs::remove_dir_all(p.path().join("migrations/20260102090000_add_user_profiles")).unwrap();
    let json = p.test(["status", "--format", "json"]).run().json();
    assert_eq!(json["migrations"][3]["state"], "missing");
    p.test(["down"])
        .stderr_contains("restore the folder migrations/20260102090000_add_user_profiles")
        .code(4)
        .run();
}

#[test]
fn down_to_a_version_keeps_that_version() {
    let p = Project::sqlite();
    p.sample();
    p.keel().arg("up").assert().success();
    let dry = p
        .keel()
        .args(["down", "--to", "20260101090000", "--dry-run"])
        .output()
        .unwrap();
    let text = stdout(&dry);
    assert!(text.contains("3 migration(s)"), "{text}");
    assert!(
        text.find("DROP TABLE profiles").unwrap() < text.find("DROP TABLE posts").unwrap(),
        "newest first: {text}"
    );
    p.keel()
        .args(["down", "--to", "20260101090000"])
        .assert()
        .success();
    assert!(p.table_exists("users"));
    assert!(!p.table_exists("posts"));
    p.keel().args(["down", "--to", "0"]).assert().success();
    assert!(!p.table_exists("users"));
    assert_eq!(
        p.scalar("SELECT count(*) FROM keel_migrations").as_deref(),
        Some("0")
    );
}

both!(
    an_up_to_date_database_says_so_and_prints_no_data,
    |p: Project| {
        p.sample();
        p.test(["up"])
            .stdout("")
            .stderr_contains("4 migration(s) applied\n")
            .run();
        p.test(["up"])
            .stdout("")
            .stderr("nothing to apply: the database is up to date\n")
            .run();
        p.test(["up", "--quiet"]).stdout("").stderr("").run();
    }
);
