//! An `execute` that is stopped (issue 10, item 8): SIGTERM and SIGHUP
//! after the commit are handled like the first Ctrl-C (the run finishes);
//! a second signal stops at once; kill -9 after the commit leaves an intent
//! record that `keel status` reports and the next `execute` finishes
//! (checks, rollback if one fails, record); kill -9 before the commit is
//! recorded as interrupted and the run starts afresh; leftover `.partial`
//! records are taken over or removed.

use crate::common::{Db, Project, stderr, stdout};
use crate::execute::{SIGNER, keygen};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

const B: &str = "20260103090000";
const B_ID: &str = "20260103090000_drop_bio";
const ANSWERS: &str = "rollback-tested = true\ndeployment-plan-reviewed = true\ncode-stops-using-profiles-bio = true\n";

/// A health endpoint whose answer the test chooses: hang (accept and never
/// answer, so keel sits in its post-migration checks), 200 or 500.
struct Health {
    port: u16,
    mode: Arc<AtomicU8>,
    /// Requests that came while hanging: answered when the mode changes, so
    /// a check that keel starts just before the test switches the mode
    /// still gets the new answer.
    held: Arc<Mutex<Vec<std::net::TcpStream>>>,
}

fn answer(mut s: std::net::TcpStream, mode: u8) {
    use std::io::{Read, Write};
    let mut buf = [0u8; 1024];
    let _ = s.read(&mut buf);
    let status = if mode == OK { "200 OK" } else { "500 Oops" };
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
}

const HANG: u8 = 0;
const OK: u8 = 1;
const FAIL: u8 = 2;

impl Health {
    fn start() -> Health {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(HANG));
        let m = mode.clone();
        let held = Arc::new(Mutex::new(Vec::new()));
        let h = held.clone();
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                // The lock orders this against `set`: a request is either
                // held before the switch (and answered by it) or sees the
                // new mode.
                let mut held = h.lock().unwrap();
                match m.load(Ordering::SeqCst) {
                    HANG => held.push(s),
                    mode => answer(s, mode),
                }
            }
        });
        Health { port, mode, held }
    }

    fn set(&self, mode: u8) {
        let mut held = self.held.lock().unwrap();
        self.mode.store(mode, Ordering::SeqCst);
        if mode != HANG {
            for s in held.drain(..) {
                answer(s, mode);
            }
        }
    }
}

/// The sample schema with five profiles, `drop_bio` pending (its up.sql
/// given), a signed production environment with the health URL, and its
/// runbook rendered.
fn project(db: Db, up: &str, health: &Health) -> Project {
    let p = Project::new(db);
    p.sample();
    p.migration(
        B_ID,
        up,
        Some("ALTER TABLE profiles ADD COLUMN bio text;\n"),
        Some("description = \"Drop profiles.bio\"\n"),
    );
    keygen(&p);
    std::fs::write(
        p.path().join("keel.toml"),
        format!(
            "signer = \"{SIGNER}\"\nsigning_key = \"keys/ops\"\n\
             [environments.production]\ndatabase_url_env = \"DATABASE_URL\"\n\
             health_url = \"http://127.0.0.1:{}/health\"\n",
            health.port
        ),
    )
    .unwrap();
    std::fs::write(p.path().join("answers.toml"), ANSWERS).unwrap();
    p.keel()
        .args(["up", "-q", "--to", "20260102090000"])
        .assert()
        .success();
    for id in 1..=5 {
        p.exec(&format!(
            "INSERT INTO users (id, email, name) VALUES ({id}, 'u{id}@example.com', 'U{id}');
             INSERT INTO profiles (id, user_id, bio) VALUES ({id}, {id}, 'bio {id}');"
        ));
    }
    p.keel().args(["runbook", "-q", B]).assert().success();
    p
}

/// `keel execute B --env production` running in the background, with its
/// stderr lines arriving on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: String,
}

fn spawn(p: &Project) -> Running {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("keel"))
        .args([
            "execute",
            B,
            "--env",
            "production",
            "--answers",
            "answers.toml",
        ])
        .current_dir(p.path())
        .env("DATABASE_URL", &p.url)
        .env("NO_COLOR", "1")
        .env("USER", "tester")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Running {
        child,
        lines,
        seen: String::new(),
    }
}

impl Running {
    /// Waits for a stderr line containing `text`.
    fn wait_for(&mut self, text: &str) {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                    if line.contains(text) {
                        return;
                    }
                }
                Err(_) => panic!("no `{text}` from keel:\n{}", self.seen),
            }
        }
    }

    fn signal(&self, sig: i32) {
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    /// Waits for the end; returns the exit code and all of stderr.
    fn finish(mut self) -> (Option<i32>, String, String) {
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push_str(&line);
            self.seen.push('\n');
        }
        let mut out = String::new();
        use std::io::Read;
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        (status.code(), self.seen, out)
    }
}

fn records(p: &Project) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(p.path().join("records").join(B_ID))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|f| f.extension().is_some_and(|e| e == "json"));
    files.sort();
    files
}

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn bios(p: &Project) -> Vec<Vec<Option<String>>> {
    p.rows("SELECT CAST(id AS TEXT), bio FROM profiles ORDER BY id")
}

fn applied(p: &Project) -> bool {
    p.scalar(&format!(
        "SELECT count(*) FROM keel_migrations WHERE version = '{B}'"
    ))
    .as_deref()
        == Some("1")
}

fn execute(p: &Project) -> std::process::Output {
    p.keel()
        .args([
            "execute",
            B,
            "--env",
            "production",
            "--answers",
            "answers.toml",
        ])
        .output()
        .unwrap()
}

fn verify_all(p: &Project) {
    let out = p
        .keel()
        .args(["record", "verify", "--all"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

/// SIGTERM (a CI cancel) and SIGHUP (the SSH session dropped, and with it
/// the terminal keel writes to) after the commit: the run goes on to its
/// checks and record, like after a first Ctrl-C.
#[test]
fn sigterm_and_sighup_after_the_commit_finish_the_run() {
    let health = Health::start();
    let p = project(
        Db::Postgres,
        "ALTER TABLE profiles DROP COLUMN bio;\n",
        &health,
    );
    for (sig, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGHUP, "SIGHUP")] {
        health.set(HANG);
        let mut run = spawn(&p);
        run.wait_for("ok  migrate");
        run.signal(sig);
        run.wait_for(&format!("keel: {name}: finishing this run first"));
        if sig == libc::SIGHUP {
            // The terminal is gone: nobody reads stderr any more.
            drop(std::mem::replace(&mut run.lines, mpsc::channel().1));
        }
        health.set(OK);
        let (code, err, out) = run.finish();
        assert_eq!(code, Some(0), "{name}: {err}");
        assert!(
            out.starts_with(&format!("applied {B_ID} on production in ")),
            "{out}"
        );
        assert!(applied(&p));
        let last = records(&p).pop().unwrap();
        let rec = json(&last);
        assert_eq!(rec["outcome"], "applied");
        let step = rec["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "signal")
            .unwrap_or_else(|| panic!("{rec:#}"));
        assert_eq!(
            step["detail"],
            format!(
                "{name} received during the run; keel finished it (checks, rollback if needed, record) instead of stopping half-way"
            )
        );
        verify_all(&p);
        p.keel()
            .args(["down", "-q", "--env", "production"])
            .assert()
            .success();
    }
}

/// kill -9 while the post-migration checks run: the migration committed,
/// nothing else happened. `keel status` says so, and the next `execute`
/// finishes the run from the intent record: checks against the row counts
/// taken before, the final record linked to the intent, the runbook.
fn killed_after_the_commit_is_finished_by_the_next_execute(p: Project, health: Health) {
    let mut run = spawn(&p);
    run.wait_for("ok  migrate");
    run.signal(libc::SIGKILL);
    let (code, _, _) = run.finish();
    assert_eq!(code, None, "killed");
    assert!(applied(&p), "the migration committed");
    let files = records(&p);
    assert_eq!(files.len(), 1, "only the intent record");
    let intent = json(&files[0]);
    assert_eq!(intent["outcome"], "started");
    assert_eq!(intent["row_counts"]["profiles"], 5);
    let intent_rel = files[0]
        .strip_prefix(p.path())
        .unwrap()
        .display()
        .to_string();

    let out = p
        .keel()
        .args(["status", "--env", "production"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "interrupted: the run of {B_ID} on `production` (intent {intent_rel}, "
        )),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains(&format!("has no final record: keel was stopped during it, or it is still running\n  fix: `keel execute {B} --env production` finishes it (post-migration checks, rollback if one fails, record) or records it as interrupted")),
        "{}",
        stdout(&out)
    );

    health.set(OK);
    let out = execute(&p);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(
            "the newest record of `production` is the intent of a run with no final record"
        ),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "ok  resumed                  the run ({intent_rel} (#1), started "
        )),
        "{err}"
    );
    assert!(
        err.contains("ok  row-counts               unchanged: profiles 5"),
        "{err}"
    );
    let files = records(&p);
    assert_eq!(files.len(), 2);
    let rec = json(&files[1]);
    assert_eq!(rec["outcome"], "applied");
    assert_eq!(rec["sequence"], 2);
    assert_eq!(
        rec["previous"]["path"],
        intent_rel.trim_start_matches("records/"),
        "the final record links to the intent"
    );
    let runbook = std::fs::read_to_string(p.path().join(format!("runbooks/{B_ID}.md"))).unwrap();
    assert!(runbook.contains("### production: applied, "), "{runbook}");
    verify_all(&p);
    assert!(
        !stdout(
            &p.keel()
                .args(["status", "--env", "production"])
                .output()
                .unwrap()
        )
        .contains("interrupted"),
        "finished"
    );
}

mod killed_after_the_commit {
    use super::*;

    #[test]
    fn postgres() {
        let health = Health::start();
        let p = project(
            Db::Postgres,
            "ALTER TABLE profiles DROP COLUMN bio;\n",
            &health,
        );
        killed_after_the_commit_is_finished_by_the_next_execute(p, health);
    }

    #[test]
    fn sqlite() {
        let health = Health::start();
        let p = project(
            Db::Sqlite,
            "ALTER TABLE profiles DROP COLUMN bio;\n",
            &health,
        );
        killed_after_the_commit_is_finished_by_the_next_execute(p, health);
    }
}

/// The run finished after kill -9 fails its check: keel rolls the
/// migration back and puts the backup the interrupted run took back.
#[test]
fn killed_after_the_commit_then_a_failing_check_rolls_back_with_the_data() {
    let health = Health::start();
    let p = project(
        Db::Postgres,
        "ALTER TABLE profiles DROP COLUMN bio;\n",
        &health,
    );
    let before = bios(&p);
    let mut run = spawn(&p);
    run.wait_for("ok  migrate");
    run.signal(libc::SIGKILL);
    run.finish();
    assert!(applied(&p));
    health.set(FAIL);
    let out = execute(&p);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("ok  rollback-verified"), "{err}");
    assert!(!applied(&p));
    assert_eq!(bios(&p), before, "every bio is back");
    let rec = json(records(&p).last().unwrap());
    assert_eq!(rec["outcome"], "rolled_back");
    verify_all(&p);
}

/// A second signal stops at once (exit 130); the intent stays and the
/// next `execute` finishes the run.
#[test]
fn a_second_signal_stops_at_once_and_the_next_execute_finishes() {
    let health = Health::start();
    let p = project(
        Db::Postgres,
        "ALTER TABLE profiles DROP COLUMN bio;\n",
        &health,
    );
    let mut run = spawn(&p);
    run.wait_for("ok  migrate");
    run.signal(libc::SIGTERM);
    run.wait_for("keel: SIGTERM: finishing this run first");
    run.signal(libc::SIGTERM);
    let (code, err, _) = run.finish();
    assert_eq!(code, Some(130), "{err}");
    assert!(
        err.contains(&format!("error: stopped by a second signal while executing {B_ID} on `production`: an open transaction rolled back; what committed before stays, and so does the intent record\n  fix: `keel execute {B} --env production` finishes the run")),
        "{err}"
    );
    assert_eq!(records(&p).len(), 1);
    health.set(OK);
    let out = execute(&p);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(records(&p).last().unwrap())["outcome"], "applied");
    verify_all(&p);
}

/// kill -9 before the commit: nothing of the migration is applied. The
/// next `execute` records the stopped run as interrupted and then runs
/// afresh, through its guards and checklist.
#[test]
fn killed_before_the_commit_is_recorded_as_interrupted_and_runs_afresh() {
    let health = Health::start();
    health.set(OK);
    let p = project(
        Db::Postgres,
        "SELECT pg_sleep(2);\nALTER TABLE profiles DROP COLUMN bio;\n",
        &health,
    );
    let before = bios(&p);
    let mut run = spawn(&p);
    run.wait_for("ok  intent");
    run.signal(libc::SIGKILL);
    run.finish();
    // The server notices the lost client once the sleep ends; until then
    // its backend holds the run lock and the transaction.
    for _ in 0..100 {
        let busy = p.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(2)%' AND pid <> pg_backend_pid()",
        );
        if busy.as_deref() == Some("0") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!applied(&p));
    assert_eq!(bios(&p), before);
    let out = execute(&p);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "recorded the stopped run as interrupted: records/{B_ID}/production-"
        )),
        "{err}"
    );
    let outcomes: Vec<String> = records(&p)
        .iter()
        .map(|f| json(f)["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(outcomes, ["started", "interrupted", "started", "applied"]);
    let interrupted = json(&records(&p)[1]);
    let step = &interrupted["steps"].as_array().unwrap().last().unwrap()["detail"];
    assert!(
        step.as_str().unwrap().contains(&format!(
            "was stopped and never finished; {B_ID} is pending on `production` now, so nothing of this run is left applied"
        )),
        "{step}"
    );
    assert!(applied(&p));
    verify_all(&p);
}

/// A record registered in the database whose rename keel did not live to
/// make is taken over; a partial record and a signature the database never
/// registered are removed.
#[test]
fn leftover_partial_records_are_taken_over_or_removed() {
    let health = Health::start();
    health.set(OK);
    let p = project(
        Db::Sqlite,
        "ALTER TABLE profiles DROP COLUMN bio;\n",
        &health,
    );
    let out = execute(&p);
    assert!(out.status.success(), "{}", stderr(&out));
    p.keel()
        .args(["down", "-q", "--env", "production"])
        .assert()
        .success();
    let files = records(&p);
    let last = files.last().unwrap().clone();
    let partial = PathBuf::from(format!("{}.partial", last.display()));
    std::fs::rename(&last, &partial).unwrap();
    let dir = p.path().join("records").join(B_ID);
    let stray = dir.join("production-29991231T235959Z.json.partial");
    std::fs::write(&stray, "{}").unwrap();
    let orphan = dir.join("production-29991231T235958Z.json.sig");
    std::fs::write(&orphan, "-----BEGIN SSH SIGNATURE-----\n").unwrap();
    // keel stopped between its record and the runbook: the section is
    // missing and the half-written runbook is beside it.
    let runbook = p.path().join(format!("runbooks/{B_ID}.md"));
    let annotated = std::fs::read_to_string(&runbook).unwrap();
    std::fs::write(format!("{}.partial", runbook.display()), &annotated).unwrap();
    let (reviewed, section) = annotated.split_once("\n### production: ").unwrap();
    std::fs::write(&runbook, format!("{reviewed}\n")).unwrap();

    let out = execute(&p);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let rel = last.strip_prefix(p.path()).unwrap().display().to_string();
    assert!(
        err.contains(&format!(
            "took over {rel} (registered as #2 before keel was stopped)"
        )),
        "{err}"
    );
    assert!(
        err.contains("a record keel never registered (it was stopped while writing it)"),
        "{err}"
    );
    assert!(
        err.contains("the signature of a record keel never registered"),
        "{err}"
    );
    assert!(last.exists() && !partial.exists() && !stray.exists() && !orphan.exists());
    assert!(
        err.contains(&format!("added the execution record of {rel} (#2) to runbooks/{B_ID}.md: keel was stopped before it wrote it there")),
        "{err}"
    );
    let now = std::fs::read_to_string(&runbook).unwrap();
    assert!(
        now.contains(&format!("\n### production: {section}")),
        "{now}"
    );
    assert!(!std::path::Path::new(&format!("{}.partial", runbook.display())).exists());
    verify_all(&p);
}
