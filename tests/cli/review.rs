//! `keel review`: the pull request's summary of the migrations a branch
//! adds or changes, and `--post`, which keeps one comment up to date through
//! GitHub's REST API (here a local server that speaks the same endpoints).

use crate::common::{Project, git, stderr, stdout};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// A repository whose main holds the sample's first migrations, and a
/// branch `feature` that adds the drop of users.name (with its runbook).
fn branch(p: &Project) {
    p.sample();
    git(p.path(), &["init", "-q", "-b", "main"]);
    git(p.path(), &["add", "-A"]);
    git(p.path(), &["commit", "-q", "-m", "base"]);
    git(p.path(), &["checkout", "-q", "-b", "feature"]);
    p.migration(
        "20260202090000_drop_bio",
        "-- keel:allow drop-column reason=\"bio moved to the profile service\"\nALTER TABLE profiles DROP COLUMN bio;\n",
        Some("ALTER TABLE profiles ADD COLUMN bio text;\n"),
        Some("reversibility = \"partial\"\n"),
    );
    p.keel()
        .args(["runbook", "20260202090000"])
        .assert()
        .success();
    git(p.path(), &["add", "-A"]);
    git(p.path(), &["commit", "-q", "-m", "drop bio"]);
}

/// `keel review --base main` with `extra` arguments.
fn review(p: &Project, extra: &[&str]) -> std::process::Output {
    p.keel()
        .args(["review", "--base", "main"])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn review_summarizes_what_the_branch_adds_and_checks_its_runbooks() {
    let p = Project::sqlite();
    branch(&p);
    let out = review(&p, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("<!-- keel:review -->\n"), "{text}");
    assert!(
        text.contains("1 migration(s) since main (merge base "),
        "{text}"
    );
    assert!(
        text.contains("| `20260202090000_drop_bio` | added | partial | ACCESS EXCLUSIVE on profiles | none / none | 1 allowed | fresh |"),
        "{text}"
    );
    assert!(text.contains("- Backs up: profiles (bio)"), "{text}");
    assert!(
        text.contains("- Runbook: [runbooks/20260202090000\\_drop\\_bio.md](runbooks/20260202090000_drop_bio.md), committed and current"),
        "{text}"
    );
    assert!(
        !text.contains("create_users"),
        "migrations already on main are not the branch's:\n{text}"
    );

    // A second migration without its runbook, not committed yet.
    p.migration(
        "20260202090100_add_index",
        "CREATE INDEX posts_title_idx ON posts (title);\n",
        Some("DROP INDEX posts_title_idx;\n"),
        None,
    );
    let out = review(&p, &["--check"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("| `20260202090100_add_index` | added |"),
        "{text}"
    );
    assert!(text.contains("SHARE on posts"), "{text}");
    assert!(text.contains("**error** `create-index-blocking`"), "{text}");
    assert!(
        stderr(&out).contains("the runbook of 20260202090100_add_index is missing")
            && stderr(&out).contains("fix: run `keel runbook VERSION`"),
        "{}",
        stderr(&out)
    );
    // Rendered but not committed, then changed after rendering.
    p.keel()
        .args(["runbook", "20260202090100"])
        .assert()
        .success();
    let out = review(&p, &[]);
    assert!(
        stdout(&out).contains("**not committed**"),
        "{}",
        stdout(&out)
    );
    std::fs::write(
        p.path().join("migrations/20260202090100_add_index/up.sql"),
        "CREATE INDEX CONCURRENTLY posts_title_idx ON posts (title);\n",
    )
    .unwrap();
    let out = review(&p, &[]);
    assert!(
        stdout(&out).contains("is **stale** (rendered before the migration last changed)"),
        "{}",
        stdout(&out)
    );
    // A base git cannot resolve is a usage error with the fix.
    let out = p
        .keel()
        .args(["review", "--base", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("fix:"), "{}", stderr(&out));
    let out = p
        .keel()
        .args(["review", "--base", "--output=x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// What the local GitHub got: method, path, Authorization header, body.
type Requests = Arc<Mutex<Vec<(String, String, String, String)>>>;

/// A GitHub REST API for one pull request (OWNER/NAME #7) under `/api/v3`,
/// as GitHub Enterprise serves it: list, create and edit issue comments.
/// One comment of someone else's is already there.
fn fake_github() -> (String, Requests) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/api/v3", listener.local_addr().unwrap());
    let requests: Requests = Arc::default();
    let seen = requests.clone();
    std::thread::spawn(move || {
        let mut comments: Vec<(u64, String)> = vec![(1, "LGTM".into())];
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (method, path) = (
                parts.next().unwrap_or_default().to_string(),
                parts.next().unwrap_or_default().to_string(),
            );
            let (mut length, mut auth) = (0usize, String::new());
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                let (name, value) = h.split_once(':').unwrap();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap(),
                    "authorization" => auth = value.trim().to_string(),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let body = String::from_utf8(body).unwrap();
            seen.lock()
                .unwrap()
                .push((method.clone(), path.clone(), auth, body.clone()));
            let text = |b: &str| {
                serde_json::from_str::<serde_json::Value>(b).unwrap()["body"]
                    .as_str()
                    .unwrap()
                    .to_string()
            };
            let json = |id: u64, b: &str| serde_json::json!({"id": id, "body": b, "html_url": format!("https://github.example/OWNER/NAME/pull/7#issuecomment-{id}")});
            let (status, answer) = match (method.as_str(), path.as_str()) {
                ("GET", p) if p.starts_with("/api/v3/repos/OWNER/NAME/issues/7/comments?") => (
                    200,
                    serde_json::Value::Array(comments.iter().map(|(id, b)| json(*id, b)).collect()),
                ),
                ("POST", "/api/v3/repos/OWNER/NAME/issues/7/comments") => {
                    let id = 100 + comments.len() as u64;
                    comments.push((id, text(&body)));
                    (201, json(id, &text(&body)))
                }
                ("PATCH", p) if p.starts_with("/api/v3/repos/OWNER/NAME/issues/comments/") => {
                    let id: u64 = p.rsplit('/').next().unwrap().parse().unwrap();
                    match comments.iter_mut().find(|(i, _)| *i == id) {
                        Some(c) => {
                            c.1 = text(&body);
                            (200, json(id, &c.1))
                        }
                        None => (404, serde_json::json!({"message": "Not Found"})),
                    }
                }
                _ => (404, serde_json::json!({"message": "Not Found"})),
            };
            let answer = answer.to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (base, requests)
}

#[test]
fn post_creates_one_comment_and_a_second_push_edits_it() {
    let p = Project::sqlite();
    branch(&p);
    let (api, requests) = fake_github();
    let event = p.path().join("event.json");
    std::fs::write(
        &event,
        r#"{"pull_request": {"number": 7, "head": {"sha": "0123abcd"}}}"#,
    )
    .unwrap();
    let post = || {
        let mut c = p.keel();
        c.args(["review", "--base", "main", "--post"])
            .env("GITHUB_TOKEN", "s3cret-token")
            .env("GITHUB_REPOSITORY", "OWNER/NAME")
            .env("GITHUB_EVENT_PATH", &event)
            .env("GITHUB_API_URL", &api)
            .env("GITHUB_SERVER_URL", "https://github.example");
        c.output().unwrap()
    };
    let first = post();
    let out = &first;
    assert!(out.status.success(), "{}", stderr(out));
    assert!(
        stderr(out).contains("created keel's review comment on pull request #7: https://github.example/OWNER/NAME/pull/7#issuecomment-"),
        "{}",
        stderr(out)
    );
    {
        let got = requests.lock().unwrap();
        let methods: Vec<&str> = got.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(methods, ["GET", "POST"], "{got:?}");
        assert!(got.iter().all(|r| r.2 == "Bearer s3cret-token"));
        let body: serde_json::Value = serde_json::from_str(&got[1].3).unwrap();
        let body = body["body"].as_str().unwrap();
        assert!(body.starts_with("<!-- keel:review -->"), "{body}");
        assert!(
            body.contains("(https://github.example/OWNER/NAME/blob/0123abcd/runbooks/20260202090000_drop_bio.md)"),
            "the runbook links to the pull request's head: {body}"
        );
    }
    // Another push: the comment is edited, not added.
    p.migration(
        "20260202090100_add_index",
        "CREATE INDEX CONCURRENTLY posts_title_idx ON posts (title);\n",
        Some("DROP INDEX CONCURRENTLY posts_title_idx;\n"),
        Some("transaction = false\n"),
    );
    let out = post();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("updated keel's review comment"),
        "{}",
        stderr(&out)
    );
    let got = requests.lock().unwrap();
    let methods: Vec<&str> = got.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(methods, ["GET", "POST", "GET", "PATCH"], "{got:?}");
    assert!(got[3].1.ends_with("/issues/comments/101"), "{}", got[3].1);
    assert!(got[3].3.contains("20260202090100_add_index"));
    for out in [&first, &out] {
        assert!(!stdout(out).contains("s3cret") && !stderr(out).contains("s3cret"));
    }
}

#[test]
fn post_outside_a_pull_request_says_what_is_missing() {
    let p = Project::sqlite();
    branch(&p);
    let out = p
        .keel()
        .args(["review", "--base", "main", "--post"])
        .env_remove("GITHUB_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--post needs GITHUB_TOKEN") && stderr(&out).contains("fix:"),
        "{}",
        stderr(&out)
    );
    // A token GitHub refuses: its message, and the fix.
    let (api, _) = fake_github();
    let event = p.path().join("event.json");
    std::fs::write(&event, r#"{"number": 8}"#).unwrap();
    let out = p
        .keel()
        .args(["review", "--base", "main", "--post"])
        .env("GITHUB_TOKEN", "t")
        .env("GITHUB_REPOSITORY", "OWNER/NAME")
        .env("GITHUB_EVENT_PATH", &event)
        .env("GITHUB_API_URL", &api)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("GitHub answered 404")
            && stderr(&out).contains("pull-requests: write"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn with_env_the_estimate_comes_from_that_database_live() {
    let p = Project::postgres();
    branch(&p);
    p.keel()
        .args(["up", "--to", "20260102090000"])
        .assert()
        .success();
    std::fs::write(
        p.path().join("keel.toml"),
        "[environments.production]\ndatabase_url_env = \"PROD_URL\"\n",
    )
    .unwrap();
    let out = p
        .keel()
        .args(["review", "--base", "main", "--env", "production"])
        .env("PROD_URL", &p.url)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.starts_with("- Expected time:"))
        .unwrap_or_default();
    assert!(
        line.starts_with("- Expected time: production (live): \\~")
            && line.contains(
                "production: unknown (`keel plan 20260202090000 --env production --save`)"
            ),
        "{text}"
    );
    // An environment that does not answer: said, and the review goes on.
    let out = p
        .keel()
        .args(["review", "--base", "main", "--env", "production"])
        .env("PROD_URL", "postgres://nobody@127.0.0.1:1/none")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("production did not answer"),
        "{}",
        stderr(&out)
    );
    assert!(!stdout(&out).contains("(live)"));
}

/// `keel lint --since REF`: an old history full of findings stays out of
/// the way; the branch's new migration is linted.
#[test]
fn lint_since_a_ref_checks_only_what_the_branch_adds() {
    let p = Project::sqlite();
    p.sample();
    // An old migration with a finding, already on main.
    p.migration(
        "20260101000000_old_index",
        "CREATE INDEX users_email ON users (email);\n",
        Some("DROP INDEX users_email;\n"),
        None,
    );
    git(p.path(), &["init", "-q", "-b", "main"]);
    git(p.path(), &["add", "-A"]);
    git(p.path(), &["commit", "-q", "-m", "base"]);
    git(p.path(), &["checkout", "-q", "-b", "feature"]);
    p.test(["lint", "--since", "main"])
        .stderr_contains("0 migration(s) added or changed since main")
        .run();
    p.migration(
        "20260301000000_drop_bio",
        "ALTER TABLE profiles DROP COLUMN bio;\n",
        Some("ALTER TABLE profiles ADD COLUMN bio text;\n"),
        None,
    );
    let ran = p
        .test(["lint", "--since", "main"])
        .stderr_contains("1 migration(s) added or changed since main")
        .code(3)
        .run();
    assert!(
        ran.stdout.contains("20260301000000_drop_bio"),
        "{}",
        ran.stdout
    );
    assert!(!ran.stdout.contains("old_index"), "{}", ran.stdout);
    // The whole folder still has the old finding.
    let all = p.test(["lint"]).code(3).run();
    assert!(all.stdout.contains("old_index"), "{}", all.stdout);
    p.test(["lint", "--since", "--upload-pack=x"]).code(2).run();
}
