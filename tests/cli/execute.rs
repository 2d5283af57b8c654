//! `keel execute V --env E`: the guarded run against real databases, with
//! real `pg_dump` snapshots and real `ssh-keygen` checking the signed record.

use crate::common::{Db, Project, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) const V: &str = "20260103090000";
pub(crate) const ID: &str = "20260103090000_drop_bio";
/// keel's run lock on PostgreSQL: the advisory lock key ("keel" and a tag).
pub(crate) const RUN_LOCK_KEY: i64 = 0x6b65_656c_0000_0001;
pub(crate) const SIGNER: &str = "ops@example.com";

/// Every checklist item of the drop_bio runbook that a person confirms.
const ANSWERS: &str = "rollback-tested = true\ndeployment-plan-reviewed = true\ncode-stops-using-profiles-bio = true\n";

const BIOS: &[Option<&str>] = &[
    Some("hello, \"world\"\nsecond line"),
    None,
    Some(""),
    Some("ünïcødé ✓"),
    Some("it's | a pipe"),
];

/// The sample schema up to profiles with one user and profile per BIOS
/// entry, a pending migration that drops `profiles.bio` (with `smoke`
/// appended to its migration.toml), keel.toml with `environment` (its
/// settings in `env_toml`) and `top` at the top level, and the runbook.
pub(crate) fn project(db: Db, top: &str, env_toml: &str, smoke: &str) -> Project {
    let p = Project::new(db);
    p.sample();
    p.migration(
        "20260103090000_drop_bio",
        "ALTER TABLE profiles DROP COLUMN bio;\n",
        Some("ALTER TABLE profiles ADD COLUMN bio text;\n"),
        Some(&format!("description = \"Drop profiles.bio\"\n{smoke}")),
    );
    std::fs::write(
        p.path().join("keel.toml"),
        format!(
            "{top}\n[environments.production]\ndatabase_url_env = \"DATABASE_URL\"\n{env_toml}\n"
        ),
    )
    .unwrap();
    p.keel()
        .args(["up", "--to", "20260102090000"])
        .assert()
        .success();
    for (i, bio) in BIOS.iter().enumerate() {
        let id = i + 1;
        let bio = match bio {
            None => "NULL".to_string(),
            Some(s) => format!("'{}'", s.replace('\'', "''")),
        };
        p.exec(&format!(
            "INSERT INTO users (id, email, name) VALUES ({id}, 'u{id}@example.com', 'User {id}');
             INSERT INTO profiles (id, user_id, bio) VALUES ({id}, {id}, {bio});"
        ));
    }
    let out = p.keel().args(["runbook", V]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::write(p.path().join("answers.toml"), ANSWERS).unwrap();
    p
}

pub(crate) fn runbook(p: &Project) -> String {
    std::fs::read_to_string(p.path().join(format!("runbooks/{ID}.md"))).unwrap()
}

pub(crate) fn bios(p: &Project) -> Vec<Vec<Option<String>>> {
    p.rows("SELECT CAST(id AS TEXT), bio FROM profiles ORDER BY id")
}

pub(crate) fn applied(p: &Project) -> bool {
    p.scalar(&format!(
        "SELECT count(*) FROM keel_migrations WHERE version = '{V}'"
    ))
    .as_deref()
        == Some("1")
}

fn has_bio(p: &Project) -> bool {
    match p.db {
        Db::Postgres => p
            .scalar("SELECT count(*) FROM information_schema.columns WHERE table_name = 'profiles' AND column_name = 'bio'")
            .as_deref()
            == Some("1"),
        Db::Sqlite => p
            .scalar("SELECT count(*) FROM pragma_table_info('profiles') WHERE name = 'bio'")
            .as_deref()
            == Some("1"),
    }
}

pub(crate) fn execute(p: &Project, extra: &[&str]) -> std::process::Output {
    p.keel()
        .args(["execute", V, "--env", "production"])
        .args(extra)
        .output()
        .unwrap()
}

/// Nothing changed: the column and its data, no tracking row, no record,
/// the runbook byte for byte as rendered.
fn assert_untouched(p: &Project, runbook_before: &str, bios_before: &[Vec<Option<String>>]) {
    assert!(has_bio(p));
    assert_eq!(bios(p), bios_before);
    assert!(!applied(p));
    assert!(!p.path().join("records").exists(), "no record is written");
    assert_eq!(runbook(p), runbook_before);
}

pub(crate) fn keygen(p: &Project) -> PathBuf {
    let dir = p.path().join("keys");
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("ops");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "ops", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen is installed");
    assert!(status.success());
    let public = std::fs::read_to_string(dir.join("ops.pub")).unwrap();
    std::fs::write(
        p.path().join("allowed_signers"),
        format!(
            "{SIGNER} namespaces=\"keel-record\" {}\n",
            public.trim_end()
        ),
    )
    .unwrap();
    key
}

pub(crate) fn record_files(p: &Project) -> Vec<PathBuf> {
    let dir = p.path().join("records").join(ID);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|f| f.extension().is_some_and(|e| e == "json"));
    files.sort();
    files
}

pub(crate) fn record_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

pub(crate) fn step<'a>(rec: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    rec["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {rec:#}"))
}

#[test]
fn happy_path_on_postgres_signed_and_checked_by_ssh_keygen() {
    let p = project(
        Db::Postgres,
        &format!("signer = \"{SIGNER}\"\nsigning_key = \"keys/ops\""),
        "require_snapshot = true\nrequire_signature = true\nsmoke = [\"SELECT 1 FROM profiles LIMIT 1\"]",
        "[[smoke]]\nname = \"every profile kept\"\nsql = \"SELECT count(*) FROM profiles\"\nexpect = 5\n",
    );
    keygen(&p);
    let out = p
        .keel()
        .args(["snapshot", "take", "--env", "production"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    let out = execute(&p, &["--answers", "answers.toml"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("applied {ID} on production in ")),
        "{text}"
    );
    assert!(text.contains(&format!("signed by {SIGNER}")), "{text}");
    for line in [
        "ok  snapshot-taken",
        "ok  dry-run-reviewed",
        "confirmed  code-stops-using-profiles-bio",
        "ok  backup-verified",
        "ok  migrate",
        "ok  smoke                    every profile kept: `5` as expected",
        "ok  env-smoke",
        "ok  row-counts",
    ] {
        assert!(err.contains(line), "missing `{line}`:\n{err}");
    }
    assert!(!has_bio(&p));
    assert!(applied(&p));

    // The records: the intent written before the migration ran, then the
    // final one linked to it; both signed, checked by stock OpenSSH and keel.
    let records = record_files(&p);
    assert_eq!(records.len(), 2);
    let intent = record_json(&records[0]);
    assert_eq!(intent["outcome"], "started");
    assert_eq!(intent["sequence"], 1);
    assert!(
        crate::record::ssh_keygen_verify(&p, &records[0])
            .status
            .success()
    );
    let record = &records[1];
    let verify = crate::record::ssh_keygen_verify(&p, record);
    assert!(verify.status.success(), "{}", stderr(&verify));
    assert!(stdout(&verify).starts_with(&format!("Good \"keel-record\" signature for {SIGNER}")));
    let out = p
        .keel()
        .args(["record", "verify"])
        .arg(record)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let rec = record_json(record);
    assert_eq!(rec["outcome"], "applied");
    assert_eq!(rec["environment"], "production");
    assert_eq!(rec["signer"], SIGNER);
    assert_eq!(rec["backups"].as_array().unwrap().len(), 1);
    assert!(
        rec["snapshot"]["path"]
            .as_str()
            .unwrap()
            .starts_with("snapshots/production-")
    );
    assert_eq!(step(&rec, "migrate")["outcome"], "ok");
    assert_eq!(step(&rec, "rollback-tested")["outcome"], "confirmed");
    assert!(
        step(&rec, "backup-verified")["detail"]
            .as_str()
            .unwrap()
            .contains("profiles.bio (5 rows)")
    );

    // The runbook: every item ticked, the execution appended.
    let rb = runbook(&p);
    let items: Vec<&str> = rb.lines().filter(|l| l.starts_with("- [")).collect();
    assert_eq!(items.len(), 6, "{rb}");
    assert!(items.iter().all(|l| l.starts_with("- [x] ")), "{rb}");
    assert!(rb.contains("### production: applied, "), "{rb}");
    assert!(rb.contains("| migrate | ok |"), "{rb}");
    let rel = record.strip_prefix(p.path()).unwrap().display().to_string();
    assert!(
        rb.contains(&format!("- Record: `{rel}`, signed by `{SIGNER}`")),
        "{rb}"
    );
    // A runbook that went through execute is still the one that was reviewed.
    assert!(rb.starts_with("<!-- keel:runbook migration=20260103090000_drop_bio checksum="));

    // Running it again is refused: it is applied.
    let out = execute(&p, &["--answers", "answers.toml"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is already applied"),
        "{}",
        stderr(&out)
    );

    // And `keel down` brings the column back with exactly its data.
    p.keel()
        .args(["down", "--env", "production"])
        .assert()
        .success();
    assert!(has_bio(&p));
    let expected: Vec<Vec<Option<String>>> = BIOS
        .iter()
        .enumerate()
        .map(|(i, b)| vec![Some((i + 1).to_string()), b.map(String::from)])
        .collect();
    assert_eq!(bios(&p), expected);
}

#[test]
fn a_stale_runbook_is_refused_naming_both_checksums() {
    let p = project(Db::Sqlite, "", "", "");
    let before = (runbook(&p), bios(&p));
    let rendered = crate_marker_checksum(&before.0);
    std::fs::write(
        p.path().join(format!("migrations/{ID}/up.sql")),
        "-- reviewed? no.\nALTER TABLE profiles DROP COLUMN bio;\n",
    )
    .unwrap();
    let out = execute(&p, &["--answers", "answers.toml"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("rendered from checksum {rendered}")),
        "{err}"
    );
    assert!(err.contains(&format!("{ID} now has checksum ")), "{err}");
    assert!(
        err.contains(&format!(
            "fix: render it with `keel runbook {V}`, review it, and commit it"
        )),
        "{err}"
    );
    assert_untouched(&p, &before.0, &before.1);

    // No runbook at all.
    std::fs::remove_file(p.path().join(format!("runbooks/{ID}.md"))).unwrap();
    let out = execute(&p, &["--answers", "answers.toml"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stderr(&out).contains(&format!("there is no runbook runbooks/{ID}.md")),
        "{}",
        stderr(&out)
    );
}

fn crate_marker_checksum(runbook: &str) -> String {
    let first = runbook.lines().next().unwrap();
    first
        .split("checksum=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn yes_is_refused_unless_the_environment_allows_it() {
    let p = project(Db::Sqlite, "", "", "");
    let before = (runbook(&p), bios(&p));
    let out = execute(&p, &["--yes"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--yes is not allowed for environment `production`"),
        "{}",
        stderr(&out)
    );
    assert_untouched(&p, &before.0, &before.1);
    // No terminal and no answers: refused too.
    let out = execute(&p, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("execute needs a terminal"),
        "{}",
        stderr(&out)
    );
    assert_untouched(&p, &before.0, &before.1);
}

#[test]
fn an_answers_file_missing_an_item_changes_nothing() {
    let p = project(Db::Sqlite, "", "", "");
    let before = (runbook(&p), bios(&p));
    std::fs::write(
        p.path().join("answers.toml"),
        "rollback-tested = true\ndeployment-plan-reviewed = true\n",
    )
    .unwrap();
    let out = execute(&p, &["--answers", "answers.toml"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("has no answer for checklist item `code-stops-using-profiles-bio`"),
        "{}",
        stderr(&out)
    );
    assert_untouched(&p, &before.0, &before.1);
    assert!(!p.path().join("backups").exists(), "no backup either");

    // A "no" stops it the same way.
    std::fs::write(
        p.path().join("answers.toml"),
        ANSWERS.replace("rollback-tested = true", "rollback-tested = false"),
    )
    .unwrap();
    let out = execute(&p, &["--answers", "answers.toml"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("`rollback-tested` was not confirmed"),
        "{}",
        stderr(&out)
    );
    assert_untouched(&p, &before.0, &before.1);

    // An answers file that is not TOML is a usage error.
    std::fs::write(
        p.path().join("answers.toml"),
        "rollback-tested = yes please\n",
    )
    .unwrap();
    let out = execute(&p, &["--answers", "answers.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("answers.toml"), "{}", stderr(&out));
}

#[test]
fn a_required_snapshot_that_is_missing_or_damaged_is_refused() {
    let p = project(Db::Sqlite, "", "require_snapshot = true", "");
    let before = (runbook(&p), bios(&p));
    let out = execute(&p, &["--answers", "answers.toml"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("requires a verified snapshot"), "{err}");
    assert!(err.contains("keel snapshot take --env production"), "{err}");
    assert_untouched(&p, &before.0, &before.1);

    // A snapshot whose bytes changed after it was taken.
    let out = p
        .keel()
        .args(["snapshot", "take", "--env", "production"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let snap = std::fs::read_dir(p.path().join("snapshots"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "dump"))
        .unwrap();
    let mut bytes = std::fs::read(&snap).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&snap, bytes).unwrap();
    let out = execute(&p, &["--answers", "answers.toml"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("SHA-256"), "{}", stderr(&out));
    assert_untouched(&p, &before.0, &before.1);
}

#[test]
fn a_required_signature_without_a_key_is_refused_before_anything_changes() {
    let p = project(Db::Sqlite, "", "require_signature = true", "");
    let before = (runbook(&p), bios(&p));
    let out = execute(&p, &["--answers", "answers.toml"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("requires a signed execution record"),
        "{}",
        stderr(&out)
    );
    assert_untouched(&p, &before.0, &before.1);

    // A configured key that does not exist is refused the same way.
    std::fs::write(
        p.path().join("keel.toml"),
        format!("signer = \"{SIGNER}\"\nsigning_key = \"keys/nope\"\n[environments.production]\ndatabase_url_env = \"DATABASE_URL\"\nrequire_signature = true\n"),
    )
    .unwrap();
    let out = execute(&p, &["--answers", "answers.toml"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("keys/nope"), "{}", stderr(&out));
    assert_untouched(&p, &before.0, &before.1);
}

#[test]
fn only_the_next_pending_migration_runs() {
    let p = project(Db::Sqlite, "", "", "");
    p.keel().arg("down").assert().success();
    let out = execute(&p, &["--answers", "answers.toml"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("20260102090000_add_user_profiles must run before it"),
        "{}",
        stderr(&out)
    );
}

/// A failed smoke check on PostgreSQL: the down runs, the backup comes
/// back, the record says so, and the alert command gets the summary.
#[test]
fn a_failing_smoke_check_rolls_back_and_restores_the_data() {
    let p = project(
        Db::Postgres,
        "alert_command = \"cat > alert.txt\"",
        "",
        "[[smoke]]\nname = \"bios still readable\"\nsql = \"SELECT count(*) FROM profiles WHERE id < 0\"\nexpect = 1\n",
    );
    let before = bios(&p);
    let out = execute(&p, &["--answers", "answers.toml"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(
        err.contains("FAILED  smoke                    bios still readable: got `0`, expected `1`"),
        "{err}"
    );
    assert!(err.contains("ok  rollback"), "{err}");
    assert!(err.contains("ok  rollback-verified"), "{err}");
    assert!(
        err.contains("ALERT: keel execute 20260103090000_drop_bio on `production`: ROLLED BACK"),
        "{err}"
    );
    assert!(
        err.contains("keel rolled 20260103090000_drop_bio back"),
        "{err}"
    );

    // As before: the column with exactly its data, no tracking row.
    assert!(has_bio(&p));
    assert_eq!(bios(&p), before);
    assert!(!applied(&p));

    let alert = std::fs::read_to_string(p.path().join("alert.txt")).unwrap();
    assert!(alert.contains("ROLLED BACK"), "{alert}");
    assert!(
        alert.contains("bios still readable: got `0`, expected `1`"),
        "{alert}"
    );

    let records = record_files(&p);
    assert_eq!(records.len(), 2, "the intent and the final record");
    let rec = record_json(&records[1]);
    assert_eq!(rec["outcome"], "rolled_back");
    assert_eq!(step(&rec, "smoke")["outcome"], "failed");
    assert_eq!(step(&rec, "rollback")["outcome"], "ok");
    assert_eq!(step(&rec, "alert")["outcome"], "ok");
    assert!(rec["signer"].is_null());
    let rb = runbook(&p);
    assert!(rb.contains("### production: rolled back, "), "{rb}");
    assert!(rb.contains("| smoke | FAILED |"), "{rb}");
}

#[test]
fn a_health_url_that_does_not_answer_rolls_back() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = project(
        Db::Postgres,
        "",
        &format!("health_url = \"http://127.0.0.1:{port}/health\""),
        "",
    );
    let before = bios(&p);
    let out = execute(&p, &["--answers", "answers.toml"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(
        err.contains(&format!(
            "FAILED  health                   http://127.0.0.1:{port}/health did not answer"
        )),
        "{err}"
    );
    assert!(has_bio(&p));
    assert_eq!(bios(&p), before);
    assert!(!applied(&p));
}

#[test]
fn a_health_url_that_answers_200_passes() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    let p = project(
        Db::Sqlite,
        "",
        &format!("health_url = \"http://127.0.0.1:{port}/health\""),
        "",
    );
    let out = execute(&p, &["--answers", "answers.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("answered 200"), "{}", stderr(&out));
    server.join().unwrap();
}

#[test]
fn sqlite_happy_path_unsigned_then_down() {
    let p = project(Db::Sqlite, "", "confirm = \"auto\"", "");
    let before = bios(&p);
    let out = execute(&p, &["--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("(unsigned)"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("confirmed with --yes"),
        "{}",
        stderr(&out)
    );
    assert!(!has_bio(&p));
    assert!(applied(&p));
    let rec = record_json(&record_files(&p)[1]);
    assert_eq!(rec["outcome"], "applied");
    assert!(runbook(&p).contains("- [x] Backup verified"));
    // JSON output carries the outcome and the record's path.
    p.keel()
        .args(["down", "--env", "production"])
        .assert()
        .success();
    assert_eq!(bios(&p), before);
    let out = execute(&p, &["--yes", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["outcome"], "applied");
    assert!(
        json["record"]
            .as_str()
            .unwrap()
            .starts_with("records/20260103090000_drop_bio/production-")
    );
    assert_eq!(record_files(&p).len(), 4);
    let second = record_json(&record_files(&p)[3]);
    assert_eq!(second["sequence"], 4, "records are hash-chained");
    assert_eq!(second["outcome"], "applied");
}

/// One analysis per run: the migration's two files (one statement each) are
/// parsed once, though the runbook check, the dry run, the backup, the
/// runner and the row counts all read what they say.
#[test]
fn one_execute_parses_the_migration_once() {
    let p = project(Db::Postgres, "", "", "");
    let out = execute(&p, &["--answers", "answers.toml", "-v"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("\n2 SQL statement(s) parsed in this run\n"),
        "{err}"
    );
}

/// A migration that gives up waiting for a lock: the record of the failed
/// run names the session it waited for, as the error does.
#[test]
fn a_failed_runs_record_names_the_session_it_waited_for() {
    let p = project(Db::Postgres, "", "", "lock_timeout = \"1s\"\nretries = 0\n");
    let before = bios(&p);
    // The dry run must pass: the run waits for the run lock (held here)
    // until the reader holds profiles, then the migration times out.
    let run_lock = crate::common::session::Session::open(&p.url);
    run_lock.exec(&format!("SELECT pg_advisory_lock({RUN_LOCK_KEY})"));
    let mut run = p.spawn_keel(&[
        "execute",
        V,
        "--env",
        "production",
        "--answers",
        "answers.toml",
    ]);
    run.wait_for(
        "waiting for another keel run on this database to finish",
        std::time::Duration::from_secs(30),
    );
    let reader = crate::common::session::Session::open(&p.url);
    reader.exec("SET application_name = 'nightly-report'");
    reader.exec("BEGIN; SELECT count(*) FROM profiles");
    let pid = p
        .scalar("SELECT pid FROM pg_stat_activity WHERE application_name = 'nightly-report' AND datname = current_database()")
        .unwrap();
    run_lock.exec(&format!("SELECT pg_advisory_unlock({RUN_LOCK_KEY})"));
    let out = run.finish();
    let err = out.stderr;
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("pid {pid} (user ")), "{err}");
    let records = record_files(&p);
    let rec = record_json(records.last().unwrap());
    assert_eq!(rec["outcome"], "failed", "{rec:#}");
    let blocker = &rec["blockers"][0];
    assert_eq!(blocker["pid"].to_string(), pid, "{rec:#}");
    assert_eq!(blocker["application"], "nightly-report");
    assert_eq!(blocker["state"], "idle in transaction");
    assert_eq!(blocker["query"], "BEGIN; SELECT count(*) FROM profiles");
    assert!(blocker["transaction_start"].is_string(), "{rec:#}");
    reader.exec("COMMIT");
    assert!(has_bio(&p));
    assert_eq!(bios(&p), before);
    assert!(!applied(&p));
}
