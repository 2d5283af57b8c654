//! `keel new NAME --template rename-column`: expand, migrate and contract
//! migrations that keep old and new writers in sync both ways and reverse
//! with the data intact.

use crate::common::{Project, stderr, stdout};

fn count(p: &Project, sql: &str) -> i64 {
    p.scalar(sql).unwrap().parse().unwrap()
}

fn generate(p: &Project) -> Vec<String> {
    let out = p
        .keel()
        .args([
            "new",
            "rename_posts_body",
            "--template",
            "rename-column",
            "--table",
            "posts",
            "--column",
            "body",
            "--to",
            "content",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).lines().map(String::from).collect()
}

#[test]
fn writes_three_reversible_migrations_that_lint_clean() {
    let p = Project::sqlite();
    let paths = generate(&p);
    assert_eq!(paths.len(), 3, "{paths:?}");
    for (path, step) in paths.iter().zip(["expand", "migrate", "contract"]) {
        assert!(
            path.ends_with(&format!("_rename_posts_body_{step}")),
            "{path}"
        );
        let dir = p.path().join(path);
        let down = std::fs::read_to_string(dir.join("down.sql")).unwrap();
        assert!(!down.trim().is_empty(), "{step} has a down.sql");
        let toml = std::fs::read_to_string(dir.join("migration.toml")).unwrap();
        assert!(toml.contains("Deploy before it:"), "{step}: {toml}");
    }
    let migrate = std::fs::read_to_string(p.path().join(&paths[1]).join("migration.toml")).unwrap();
    assert!(
        migrate.contains("set = { \"content\" = \"body\" }"),
        "{migrate}"
    );
    assert!(
        migrate.contains("where = \"content IS NULL AND body IS NOT NULL\""),
        "{migrate}"
    );
    let out = p.keel().arg("lint").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn needs_to_and_a_new_name() {
    let p = Project::sqlite();
    let out = p
        .keel()
        .args([
            "new",
            "r",
            "--template",
            "rename-column",
            "--table",
            "posts",
            "--column",
            "body",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the rename-column template needs --to\n  fix: keel new r --template rename-column --table TABLE --column COLUMN --to NEW"),
        "{}",
        stderr(&out)
    );
    let out = p
        .keel()
        .args([
            "new",
            "r",
            "--template",
            "rename-column",
            "--table",
            "posts",
            "--column",
            "body",
            "--to",
            "body",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn old_and_new_writers_stay_in_sync_and_it_reverses_with_data_intact() {
    let p = Project::postgres();
    p.sample();
    p.keel().args(["up", "-q"]).assert().success();
    p.keel()
        .args([
            "seed",
            "-q",
            "--users",
            "200",
            "--posts",
            "1500",
            "--comments",
            "0",
        ])
        .assert()
        .success();
    generate(&p);

    // Expand only: old code writes body, new code writes content.
    let expand = std::fs::read_dir(p.path().join("migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with("_expand"))
        .unwrap();
    p.keel()
        .args(["up", "-q", "--to", &expand[..14]])
        .assert()
        .success();
    p.exec(
        "INSERT INTO posts (id, user_id, title, body) VALUES (90001, 1, 'old writer', 'from old code');
         INSERT INTO posts (id, user_id, title, content) VALUES (90002, 1, 'new writer', 'from new code');
         UPDATE posts SET body = 'old update' WHERE id = 1;
         UPDATE posts SET content = 'new update' WHERE id = 2;",
    );
    let pair =
        |id: i64| p.rows(&format!("SELECT body, content FROM posts WHERE id = {id}"))[0].clone();
    let both = |s: &str| vec![Some(s.to_string()), Some(s.to_string())];
    assert_eq!(pair(90001), both("from old code"));
    assert_eq!(pair(90002), both("from new code"));
    assert_eq!(pair(1), both("old update"));
    assert_eq!(pair(2), both("new update"));

    // Migrate (backfill); new code writes content only, then contract.
    p.exec("UPDATE posts SET content = 'new code only' WHERE id = 3");
    p.exec("CREATE TABLE bodies_before AS SELECT id, body FROM posts");
    // Migrate and contract each wait for a deploy: plain `up` applies neither.
    let out = p.keel().args(["up", "--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["applied"], serde_json::json!([]), "{doc}");
    let waiting = &doc["waiting"];
    assert!(
        waiting["name"].as_str().unwrap().ends_with("_migrate"),
        "{doc}"
    );
    assert_eq!(
        waiting["requires_deploy"],
        "code that writes posts.content (the sync trigger keeps body equal for instances still on the old code)"
    );
    let migrate = waiting["version"].as_str().unwrap().to_string();
    assert_eq!(waiting["then"], format!("keel up --through {migrate}"));
    assert!(
        stderr(&out).contains("it waits for a deploy"),
        "{}",
        stderr(&out)
    );
    // Through migrate only: contract still waits for its own deploy.
    let migrated = p
        .keel()
        .args(["up", "--through", &migrate])
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    assert!(
        stderr(&migrated).ends_with("\n1 migration(s) applied\n"),
        "{}",
        stderr(&migrated)
    );
    let out = p.keel().arg("up").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("0 migration(s) applied; stopped before")
            && stderr(&out).contains("_contract: it waits for a deploy: code that reads and writes only posts.content, never posts.body"),
        "{}",
        stderr(&out)
    );
    let out = p
        .keel()
        .args(["up", "--through", "99991231235959"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--through 99991231235959 names no migration"));
    let contract = std::fs::read_dir(p.path().join("migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with("_contract"))
        .unwrap();
    let out = p
        .keel()
        .args(["up", "--through", &contract[..14]])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&migrated).contains("100 random rows recomputed: 0 differ"),
        "{}",
        stderr(&migrated)
    );
    assert_eq!(
        count(
            &p,
            "SELECT count(*) FROM posts p JOIN bodies_before b USING (id) WHERE p.content IS DISTINCT FROM b.body"
        ),
        0
    );
    // New code keeps writing content after the contract.
    p.exec(
        "UPDATE posts SET content = 'after contract' WHERE id = 4;
         INSERT INTO posts (id, user_id, title, content) VALUES (90003, 1, 'late', 'written after contract');",
    );
    p.exec("UPDATE bodies_before SET body = 'after contract' WHERE id = 4");
    p.exec("INSERT INTO bodies_before VALUES (90003, 'written after contract')");
    // Everything is reverted: the contract's down rebuilds body from content
    // (keel keeps its backup but does not put it back, which would undo the
    // writes above), then the migrate and expand steps go.
    let out = p.keel().args(["down", "--steps", "3"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not restoring the backup")
            && stderr(&out).contains("restore_on_down = false"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        count(
            &p,
            "SELECT count(*) FROM posts p FULL JOIN bodies_before b USING (id) WHERE p.id IS NULL OR b.id IS NULL"
        ),
        0
    );
    assert_eq!(
        count(
            &p,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'posts' AND column_name = 'content'"
        ),
        0
    );
    assert_eq!(
        count(
            &p,
            "SELECT count(*) FROM posts p JOIN bodies_before b USING (id) WHERE p.body IS DISTINCT FROM b.body"
        ),
        0
    );
    assert_eq!(
        p.scalar("SELECT body FROM posts WHERE id = 3"),
        Some("new code only".into())
    );
    assert_eq!(
        count(&p, "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal"),
        0
    );
}
