//! `keel new`: folders from templates, always sorting last.

use crate::common::{Project, stderr, stdout};

#[test]
fn creates_a_folder_that_applies() {
    let p = Project::sqlite();
    let out = p
        .keel()
        .args([
            "new",
            "add_widgets",
            "--template",
            "add-table",
            "--table",
            "widgets",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let path = stdout(&out).trim().to_string();
    assert!(
        path.starts_with("migrations/") && path.ends_with("_add_widgets"),
        "{path}"
    );
    let up = std::fs::read_to_string(p.path().join(&path).join("up.sql")).unwrap();
    assert!(up.contains("CREATE TABLE widgets ("), "{up}");
    let toml = std::fs::read_to_string(p.path().join(&path).join("migration.toml")).unwrap();
    assert!(toml.contains("description = \"add widgets\""), "{toml}");
}

#[test]
fn every_built_in_template_renders_valid_files() {
    let p = Project::sqlite();
    for t in [
        "empty",
        "add-table",
        "add-column",
        "drop-column",
        "add-index",
        "backfill",
    ] {
        let name = format!("t_{}", t.replace('-', "_"));
        p.keel()
            .args([
                "new",
                &name,
                "--template",
                t,
                "--table",
                "users",
                "--column",
                "nick",
                "--type",
                "varchar(40)",
            ])
            .assert()
            .success();
    }
    // Every folder loads: names, versions and migration.toml all valid.
    let json = p.status_json(&[]);
    let versions: Vec<&str> = json["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions.len(), 6);
    let mut sorted = versions.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), 6, "six distinct versions: {versions:?}");
}

#[test]
fn bad_names_and_missing_flags_are_usage_errors() {
    let p = Project::sqlite();
    p.test(["new", "AddUsers"])
        .stderr_contains("fix: keel new add_users")
        .code(2)
        .run();
    p.test(["new", "add_nick", "--template", "add-column"])
        .stderr_contains("the add-column template needs --table")
        .code(2)
        .run();
    p.test(["new", "x", "--template", "nope"])
        .stderr_contains("there is no template `nope`")
        .code(2)
        .run();
    assert!(
        !p.path().join("migrations").exists()
            || std::fs::read_dir(p.path().join("migrations"))
                .unwrap()
                .count()
                == 0
    );
}
