//! The monitoring window of `keel execute`: a health endpoint (a local
//! server) that turns unhealthy during the window makes keel roll back and
//! post one alert to the webhook (another local server that records what
//! it got); a healthy window ends and the migration stays; the record and
//! the runbook hold every sample.

use crate::common::{Db, Project, stderr};
use crate::execute::{applied, bios, project, record_files, record_json, runbook};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// A local HTTP server: `/health` answers 200 for the first `healthy`
/// requests, then 503; `/hook` answers each POST with the next status of
/// `hook_answers` (200 once they run out). It keeps every request.
struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<(String, String)>>>,
}

impl Server {
    fn start(healthy: usize, hook_answers: &[u16]) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let mut answers: Vec<u16> = hook_answers.to_vec();
        answers.reverse();
        std::thread::spawn(move || {
            let mut health_hits = 0;
            for s in listener.incoming() {
                let Ok(mut s) = s else { continue };
                let (path, body) = read_request(&mut s);
                let status = if path.starts_with("/health") {
                    health_hits += 1;
                    if health_hits <= healthy { 200 } else { 503 }
                } else {
                    answers.pop().unwrap_or(200)
                };
                seen.lock().unwrap().push((path, body));
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                );
            }
        });
        Server { port, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The bodies of the webhook's requests.
    fn hooks(&self) -> Vec<serde_json::Value> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == "/hook")
            .map(|(_, b)| serde_json::from_str(b).unwrap())
            .collect()
    }

    fn health_hits(&self) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == "/health")
            .count()
    }
}

/// The request line's path and the body (by content-length).
fn read_request(s: &mut std::net::TcpStream) -> (String, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let path = text.split(' ').nth(1).unwrap_or_default().to_string();
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or_default();
    (path, body.to_string())
}

fn monitored(db: Db, server: &Server, window: &str, smoke: &str) -> Project {
    project(
        db,
        "",
        &format!(
            "health_url = \"{}\"\nmonitor = \"{window}\"\nmonitor_interval = \"1s\"\nalert_webhook_env = \"KEEL_TEST_WEBHOOK\"",
            server.url("/health")
        ),
        smoke,
    )
}

fn samples(rec: &serde_json::Value) -> Vec<String> {
    rec["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "monitor")
        .map(|s| s["detail"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn an_unhealthy_app_during_the_window_rolls_back_and_alerts_once() {
    // Healthy for the post-migration check and two samples, then 503.
    let server = Server::start(3, &[]);
    let p = monitored(Db::Postgres, &server, "30s", "");
    let before = bios(&p);
    let out = execute_with_hook(&p, &server);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("watching for 30s, a sample every 1s"), "{err}");
    assert!(
        err.contains("BREACH: ")
            && err.contains("answered 503, not 200: failed 2 samples in a row"),
        "{err}"
    );
    // Rolled back with the data; the window did not run its 30 s.
    assert_eq!(bios(&p), before);
    assert!(!applied(&p));
    assert_eq!(server.health_hits(), 5, "{err}");

    let hooks = server.hooks();
    assert_eq!(hooks.len(), 1, "{hooks:#?}");
    let text = hooks[0]["text"].as_str().unwrap();
    assert!(text.contains("ROLLED BACK"), "{text}");
    assert!(text.contains("monitoring window breached"), "{text}");
    assert_eq!(hooks[0]["keel"]["outcome"], "rolled_back");
    assert_eq!(hooks[0]["keel"]["migration"], "20260103090000_drop_bio");
    assert!(
        !err.contains(&server.url("/hook")),
        "the webhook URL is a secret: {err}"
    );

    let rec = record_json(record_files(&p).last().unwrap());
    assert_eq!(rec["outcome"], "rolled_back");
    let s = samples(&rec);
    // Four samples, then the window's verdict.
    assert_eq!(s.len(), 5, "{s:#?}");
    assert!(
        s[0].starts_with("sample 1 at +1s: 1 check(s) ok; rollbacks "),
        "{s:#?}"
    );
    assert!(s[0].contains("session(s) waiting on locks"), "{s:#?}");
    assert!(
        s[2].contains("(1 sample(s) in a row)") && !s[2].contains("BREACH"),
        "{s:#?}"
    );
    assert!(s[3].contains("BREACH: "), "{s:#?}");
    assert!(
        s[4].starts_with("monitoring window breached 4s into 30s: ")
            && s[4].ends_with(": rolling back"),
        "{s:#?}"
    );
    let rb = runbook(&p);
    assert!(
        rb.contains("- (production) then keel watches for 30s (a sample every 1s): the checks above fail 2 times in a row"),
        "{rb}"
    );
    assert!(rb.contains("| monitor | FAILED |"), "{rb}");
    assert!(rb.contains("monitoring window breached"), "{rb}");
}

#[test]
fn a_healthy_window_ends_and_the_migration_stays_with_its_samples() {
    let server = Server::start(usize::MAX, &[]);
    let p = monitored(
        Db::Sqlite,
        &server,
        "3s",
        "[[smoke]]\nname = \"profiles remain\"\nsql = \"SELECT count(*) FROM profiles\"\nexpect = 5\n",
    );
    let out = execute_with_hook(&p, &server);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("watched 3s: 3 sample(s), no breach"), "{err}");
    assert!(applied(&p));
    assert!(server.hooks().is_empty(), "no alert for a good run");
    let rec = record_json(record_files(&p).last().unwrap());
    let s = samples(&rec);
    assert_eq!(s.len(), 4, "three samples and the window's end: {s:#?}");
    assert_eq!(s[0], "sample 1 at +1s: 2 check(s) ok");
    assert!(runbook(&p).contains("watched 3s: 3 sample(s), no breach"));
}

#[test]
fn an_irreversible_migration_is_not_rolled_back_and_the_alert_says_what_to_decide() {
    // The webhook fails once (503): keel tries a second time.
    let server = Server::start(1, &[503]);
    let p = monitored(
        Db::Postgres,
        &server,
        "30s",
        "reversibility = \"irreversible\"\n",
    );
    let out = execute_with_hook(&p, &server);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("NOT rolled back, because it is declared irreversible"),
        "{err}"
    );
    assert!(
        err.contains("decide: fix forward, or restore the snapshot"),
        "{err}"
    );
    assert!(applied(&p), "it stays applied");
    let hooks = server.hooks();
    assert_eq!(hooks.len(), 2, "{hooks:#?}");
    assert_eq!(hooks[0], hooks[1]);
    assert!(
        hooks[1]["text"]
            .as_str()
            .unwrap()
            .contains("keel did not roll")
    );
    assert!(
        err.contains("webhook $KEEL_TEST_WEBHOOK answered 200 (second attempt)"),
        "{err}"
    );
}

#[test]
fn a_webhook_variable_that_is_not_set_is_refused_before_anything_changes() {
    let server = Server::start(usize::MAX, &[]);
    let p = monitored(Db::Sqlite, &server, "3s", "");
    let out = execute_with(&p, None);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("alert_webhook_env names $KEEL_TEST_WEBHOOK, which is not set"),
        "{err}"
    );
    assert!(!applied(&p));
    let out = execute_with(&p, Some("not a url with secret-token-123"));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("$KEEL_TEST_WEBHOOK does not hold an http(s) URL"),
        "{err}"
    );
    assert!(!err.contains("secret-token-123"), "{err}");
    assert!(!applied(&p));
}

/// `psql -c SQL` on the project's database, in the background.
fn psql(p: &Project, sql: &str) -> std::process::Child {
    std::process::Command::new("psql")
        .args(["-X", "-q", "-d", &p.url, "-c", sql])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn sessions_piling_up_on_a_lock_are_a_breach_that_names_the_blocker() {
    let server = Server::start(usize::MAX, &[]);
    let p = project(
        Db::Postgres,
        "",
        &format!(
            "health_url = \"{}\"\nmonitor = \"60s\"\nmonitor_interval = \"1s\"\n\
             [environments.production.thresholds]\nlock_waiters = 2\n",
            server.url("/health")
        ),
        "",
    );
    let mut run = Background::execute(&p, &[]);
    run.wait_for("sample 1 at");
    // Now an application transaction holds users; two requests wait.
    let mut sessions = vec![psql(
        &p,
        "BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(8);",
    )];
    std::thread::sleep(std::time::Duration::from_millis(300));
    sessions.push(psql(&p, "SELECT count(*) FROM users"));
    sessions.push(psql(&p, "SELECT count(*) FROM users"));
    let (code, err) = run.finish();
    for c in &mut sessions {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert_eq!(code, Some(5), "{err}");
    assert!(
        err.contains("2 sessions waiting on locks (threshold 2); the longest: pid "),
        "{err}"
    );
    assert!(err.contains("blocked by pid "), "{err}");
    assert!(!applied(&p));
}

/// `keel execute` of the project's migration in the background, its
/// stderr read line by line.
struct Background {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStderr>>,
    seen: String,
}

impl Background {
    fn execute(p: &Project, env: &[(&str, &str)]) -> Background {
        use std::io::BufRead;
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("keel"))
            .args(EXECUTE)
            .current_dir(p.path())
            .env("DATABASE_URL", &p.url)
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        Background {
            child,
            lines,
            seen: String::new(),
        }
    }

    fn wait_for(&mut self, text: &str) {
        for line in self.lines.by_ref().map_while(Result::ok) {
            self.seen.push_str(&line);
            self.seen.push('\n');
            if line.contains(text) {
                return;
            }
        }
        panic!("no `{text}` from keel:\n{}", self.seen);
    }

    fn finish(mut self) -> (Option<i32>, String) {
        for line in self.lines.by_ref().map_while(Result::ok) {
            self.seen.push_str(&line);
            self.seen.push('\n');
        }
        (self.child.wait().unwrap().code(), self.seen)
    }
}

#[test]
fn ctrl_c_during_the_window_ends_it_and_keeps_the_migration() {
    let server = Server::start(usize::MAX, &[]);
    let p = monitored(Db::Sqlite, &server, "10min", "");
    let hook = server.url("/hook");
    let mut run = Background::execute(&p, &[("KEEL_TEST_WEBHOOK", hook.as_str())]);
    run.wait_for("sample 1 at");
    assert!(run.seen.contains("watching for 10m"), "{}", run.seen);
    // SAFETY: kill has no memory preconditions; the pid is our child's.
    assert_eq!(
        unsafe { libc::kill(run.child.id() as i32, libc::SIGINT) },
        0
    );
    let (code, seen) = run.finish();
    assert_eq!(code, Some(0), "{seen}");
    assert!(
        seen.contains("the operator stopped watching after"),
        "{seen}"
    );
    assert!(applied(&p));
    assert!(server.hooks().is_empty());
    let rec = record_json(record_files(&p).last().unwrap());
    assert_eq!(rec["outcome"], "applied");
    assert!(
        samples(&rec)
            .last()
            .unwrap()
            .contains("the operator stopped watching"),
        "{rec:#}"
    );
}

#[test]
fn a_migration_can_turn_the_window_off() {
    let server = Server::start(usize::MAX, &[]);
    let p = monitored(Db::Sqlite, &server, "10min", "monitor = \"0s\"\n");
    // The runbook is rendered with the migration's own setting.
    let out = execute_with_hook(&p, &server);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("monitor"), "{err}");
    assert!(!runbook(&p).contains("keel watches for"));
}

/// `keel execute` of the project's migration, as an operator types it.
const EXECUTE: [&str; 6] = [
    "execute",
    "20260103090000",
    "--env",
    "production",
    "--answers",
    "answers.toml",
];

/// `keel execute`, the webhook's URL in `KEEL_TEST_WEBHOOK`.
fn execute_with_hook(p: &Project, server: &Server) -> std::process::Output {
    execute_with(p, Some(&server.url("/hook")))
}

/// `keel execute` with `KEEL_TEST_WEBHOOK` set to `hook`, or unset.
fn execute_with(p: &Project, hook: Option<&str>) -> std::process::Output {
    let mut keel = p.keel();
    keel.args(EXECUTE);
    match hook {
        Some(url) => keel.env("KEEL_TEST_WEBHOOK", url),
        None => keel.env_remove("KEEL_TEST_WEBHOOK"),
    };
    keel.output().unwrap()
}

/// A session holding an exclusive lock on an unrelated table: the reads
/// before the migration (row counts, the schema, which takes a share lock
/// on every table) give up after the lock timeout and the run stops with
/// nothing changed, instead of hanging until that session ends.
#[test]
fn an_exclusive_lock_elsewhere_stops_the_run_instead_of_hanging_it() {
    let p = project(Db::Postgres, "", "", "");
    let mut holder = psql(
        &p,
        "BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60);",
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    let started = std::time::Instant::now();
    let out = crate::execute::execute(&p, &["--answers", "answers.toml"]);
    let waited = started.elapsed();
    let _ = holder.kill();
    let _ = holder.wait();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("before the migration failed, so it did not run"),
        "{err}"
    );
    assert!(err.contains("lock timeout"), "{err}");
    assert!(
        waited < std::time::Duration::from_secs(45),
        "it waited {waited:?}"
    );
    assert!(!applied(&p));
}
