//! The sample's zero-downtime examples on PostgreSQL: the name split
//! (expand + backfill, then the drop of name), the expand-contract rename
//! of posts.body, the concurrent index; end to end and back.

use crate::common::{Project, stderr, stdout};

fn count(p: &Project, sql: &str) -> i64 {
    p.scalar(sql).unwrap().parse().unwrap()
}

/// Every body copied to content (bodies_before holds them), and the
/// concurrently built index valid.
fn assert_rename_and_index_done(p: &Project) {
    assert_eq!(
        count(
            p,
            "SELECT count(*) FROM posts p JOIN bodies_before b USING (id) WHERE p.content IS DISTINCT FROM b.body"
        ),
        0
    );
    assert_eq!(
        p.scalar(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'posts_user_id_idx'::regclass"
        ),
        Some("true".into())
    );
}

#[test]
fn the_examples_run_end_to_end_on_seeded_data_and_back() {
    let p = Project::postgres();
    p.sample_all();
    p.keel()
        .args(["up", "-q", "--to", "20260102090000"])
        .assert()
        .success();
    p.keel()
        .args([
            "seed",
            "-q",
            "--users",
            "3000",
            "--posts",
            "2000",
            "--comments",
            "0",
        ])
        .assert()
        .success();
    // Every case the split must handle deliberately.
    p.exec(
        "INSERT INTO users (id, email, name) VALUES
         (100001, 'a@x', 'Cher'), (100002, 'b@x', ''), (100003, 'c@x', NULL),
         (100004, 'd@x', '  Seán   O''Brien '), (100005, 'e@x', 'John van der Berg'),
         (100006, 'f@x', '   '), (100007, 'g@x', 'José María López García')",
    );
    p.exec("CREATE TABLE names_before AS SELECT id, name FROM users");
    p.exec("CREATE TABLE bodies_before AS SELECT id, body FROM posts");

    // The rename's migrate step waits for a deploy: `keel up` stops there.
    let out = p.keel().arg("up").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "2 migration(s) applied; stopped before 20260201090101_rename_posts_body_migrate: it waits for a deploy: code that writes posts.content (the sync trigger keeps body equal for instances still on the old code)\n  then: once that is live everywhere, `keel up --through 20260201090101`"
        ),
        "{err}"
    );
    let status = p.keel().args(["status"]).output().unwrap();
    let listed = String::from_utf8_lossy(&status.stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("20260201090101") && l.contains(" waiting")),
        "{listed}"
    );
    assert!(
        listed.contains("waiting: `keel up` stops before 20260201090101_rename_posts_body_migrate"),
        "{listed}"
    );

    // Both deploys done: through the contract.
    let out = p
        .keel()
        .args(["up", "--through", "20260202090100"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = err + &stderr(&out);
    assert!(
        err.contains("backfill 20260201090000_split_user_names: 3007 rows visited"),
        "{err}"
    );
    assert!(
        err.contains("applied  20260202090100_rename_posts_body_contract"),
        "{err}"
    );
    let row = |id: &str, first: Option<&str>, last: Option<&str>| {
        vec![
            Some(id.to_string()),
            first.map(String::from),
            last.map(String::from),
        ]
    };
    assert_eq!(
        p.rows("SELECT id::text, first_name, last_name FROM users WHERE id > 100000 ORDER BY id"),
        vec![
            row("100001", Some("Cher"), Some("")),
            row("100002", Some(""), Some("")),
            row("100003", None, None),
            row("100004", Some("Seán"), Some("O'Brien")),
            row("100005", Some("John"), Some("van der Berg")),
            row("100006", Some(""), Some("")),
            row("100007", Some("José"), Some("María López García")),
        ]
    );
    assert!(p.scalar("SELECT to_regclass('users')::text").is_some());
    assert_eq!(
        count(
            &p,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'name'"
        ),
        0
    );
    assert_rename_and_index_done(&p);
    let out = p.keel().args(["status"]).output().unwrap();
    assert!(!stdout(&out).contains("backfilling"), "{}", stdout(&out));

    // And back to the portable schema with the data intact.
    let out = p
        .keel()
        .args(["down", "--to", "20260102090000"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        count(
            &p,
            "SELECT count(*) FROM posts p JOIN bodies_before b USING (id) WHERE p.body IS DISTINCT FROM b.body"
        ),
        0
    );
    // Names come back exactly: keel backed users.name up before the drop
    // and restores it after the down.
    assert_eq!(
        count(
            &p,
            "SELECT count(*) FROM users u JOIN names_before b USING (id) WHERE u.name IS DISTINCT FROM b.name"
        ),
        0
    );
}

#[test]
fn the_whole_sample_lints_clean_with_its_reasons() {
    let p = Project::sqlite();
    p.sample_all();
    let out = p.keel().arg("lint").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(
        stdout(&out),
        "no findings in 20 files; 8 silenced by keel:allow\n"
    );
}

#[test]
fn the_rendered_runbooks_are_committed_and_current() {
    let p = Project::sqlite();
    p.sample_all();
    for id in [
        "20260201090000_split_user_names",
        "20260201090100_rename_posts_body_expand",
        "20260201090101_rename_posts_body_migrate",
        "20260201090200_add_posts_user_id_index",
        "20260202090000_drop_users_name",
        "20260202090100_rename_posts_body_contract",
    ] {
        let version = &id[..14];
        p.keel().args(["runbook", version]).assert().success();
        let rendered = std::fs::read_to_string(p.path().join(format!("runbooks/{id}.md"))).unwrap();
        let committed = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("runbooks/{id}.md")),
        )
        .unwrap();
        assert_eq!(
            rendered, committed,
            "runbooks/{id}.md is stale: run `keel runbook {version}`"
        );
        assert!(rendered.contains("Deploy before"), "{id}");
    }
}

/// The done-when of the zero-downtime issue: the three examples (name
/// split with its later drop, the three-step rename, the concurrent index)
/// go through `keel execute` one by one, each on a verified snapshot and
/// with a record that stock OpenSSH accepts, on a million users and a
/// million posts. `KEEL_TEST_EXAMPLE_ROWS` makes it smaller for a quick run.
#[test]
fn the_examples_run_through_execute_on_a_million_rows() {
    use crate::execute::{SIGNER, keygen};
    let rows: u64 = std::env::var("KEEL_TEST_EXAMPLE_ROWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let p = Project::postgres();
    p.sample_all();
    p.keel()
        .args(["up", "-q", "--to", "20260102090000"])
        .assert()
        .success();
    let n = rows.to_string();
    p.keel()
        .args([
            "seed",
            "-q",
            "--users",
            &n,
            "--posts",
            &n,
            "--comments",
            "0",
        ])
        .assert()
        .success();
    p.exec("CREATE TABLE names_before AS SELECT id, name FROM users");
    p.exec("CREATE TABLE bodies_before AS SELECT id, body FROM posts");
    keygen(&p);
    std::fs::write(
        p.path().join("keel.toml"),
        format!(
            "signer = \"{SIGNER}\"\nsigning_key = \"keys/ops\"\n\
             [environments.production]\ndatabase_url_env = \"DATABASE_URL\"\n\
             require_snapshot = true\nrequire_signature = true\n"
        ),
    )
    .unwrap();
    std::fs::write(
        p.path().join("answers.toml"),
        "rollback-tested = true\ndeployment-plan-reviewed = true\n\
         code-stops-using-users-name = true\ncode-stops-using-posts-body = true\n\
         required-deploy-live = true\n",
    )
    .unwrap();
    p.keel()
        .args(["snapshot", "take", "-q", "--env", "production"])
        .assert()
        .success();

    for id in [
        "20260201090000_split_user_names",
        "20260201090100_rename_posts_body_expand",
        "20260201090101_rename_posts_body_migrate",
        "20260201090200_add_posts_user_id_index",
        "20260202090000_drop_users_name",
        "20260202090100_rename_posts_body_contract",
    ] {
        let version = &id[..14];
        p.keel().args(["runbook", "-q", version]).assert().success();
        let out = p
            .keel()
            .args([
                "execute",
                version,
                "--env",
                "production",
                "--answers",
                "answers.toml",
                "--delay-ms",
                "0",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{id}: {}", stderr(&out));
        assert!(
            stdout(&out).contains(&format!("signed by {SIGNER}")),
            "{id}: {}",
            stdout(&out)
        );
        let records = p.path().join("records").join(id);
        let record = std::fs::read_dir(&records)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|f| f.extension().is_some_and(|e| e == "json"))
            .unwrap();
        let verify = crate::record::ssh_keygen_verify(&p, &record);
        assert!(verify.status.success(), "{id}: {}", stderr(&verify));
        let runbook = std::fs::read_to_string(p.path().join(format!("runbooks/{id}.md"))).unwrap();
        assert!(
            runbook.contains("### production: applied, "),
            "{id}: {runbook}"
        );
        assert!(
            runbook.contains(&format!("signed by `{SIGNER}`")),
            "{id}: {runbook}"
        );
    }

    // Every name split as the SQL reference says, every body kept as
    // content, the index valid, nothing left backfilling.
    let wrong = p.rows(
        "SELECT u.id::text, b.name, u.first_name, u.last_name FROM users u JOIN names_before b USING (id), \
         LATERAL (SELECT btrim(regexp_replace(b.name, '[[:space:]]+', ' ', 'g')) AS n) t \
         WHERE u.first_name IS DISTINCT FROM split_part(t.n, ' ', 1) \
            OR u.last_name IS DISTINCT FROM substr(t.n, length(split_part(t.n, ' ', 1)) + 2) \
         LIMIT 5",
    );
    assert!(wrong.is_empty(), "names split wrongly: {wrong:?}");
    assert_eq!(count(&p, "SELECT count(*) FROM users"), rows as i64);
    assert_eq!(count(&p, "SELECT count(*) FROM posts"), rows as i64);
    assert_rename_and_index_done(&p);
    let out = p.keel().arg("status").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let applied = stdout(&out)
        .lines()
        .filter(|l| l.contains("  applied  "))
        .count();
    assert_eq!(applied, 10, "{}", stdout(&out));
}
