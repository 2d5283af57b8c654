//! Signed, hash-chained execution records, checked both ways against the
//! real `ssh-keygen`: what keel signs OpenSSH accepts, and what OpenSSH
//! signs keel accepts. Every record here is written by a real `keel
//! execute`: there is no other way to make one.

use crate::common::{Project, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::Command;

const SIGNER: &str = "ops@example.com";
const V: &str = "20260102090000";
const ID: &str = "20260102090000_add_user_profiles";

/// A SQLite project with the sample migrations before `add_user_profiles`
/// applied, its runbook rendered, an SSH key of `kind` (`ed25519` or
/// `rsa`) in `keys/ops`, allowed_signers, and keel.toml with `signing`
/// (the signing lines) and a `production` environment that `--yes` may
/// confirm.
fn project(kind: &str, signing: &str) -> Project {
    let p = Project::sqlite();
    p.sample();
    keygen(&p, kind, "ops");
    config(&p, signing);
    allow(&p, &[(SIGNER, "ops")]);
    p.keel()
        .args(["up", "-q", "--to", "20260101090200"])
        .assert()
        .success();
    p.keel().args(["runbook", "-q", V]).assert().success();
    p
}

fn config(p: &Project, signing: &str) {
    std::fs::write(
        p.path().join("keel.toml"),
        format!(
            "{signing}\n[environments.production]\ndatabase_url_env = \"DATABASE_URL\"\nconfirm = \"auto\"\n"
        ),
    )
    .unwrap();
}

fn key_config() -> String {
    format!("signer = \"{SIGNER}\"\nsigning_key = \"keys/ops\"")
}

fn keygen(p: &Project, kind: &str, name: &str) -> PathBuf {
    let dir = p.path().join("keys");
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join(name);
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", kind, "-N", "", "-C", name, "-f"])
        .arg(&key);
    if kind == "rsa" {
        cmd.args(["-b", "3072"]);
    }
    assert!(cmd.status().expect("ssh-keygen is installed").success());
    key
}

/// Writes `allowed_signers` with `(principal, key name)` lines.
fn allow(p: &Project, entries: &[(&str, &str)]) {
    let mut text = String::from("# who may sign keel records\n");
    for (principal, key) in entries {
        let public = std::fs::read_to_string(p.path().join(format!("keys/{key}.pub"))).unwrap();
        text.push_str(&format!(
            "{principal} namespaces=\"keel-record\" {}",
            public.trim_end()
        ));
        text.push('\n');
    }
    std::fs::write(p.path().join("allowed_signers"), text).unwrap();
}

fn execute(p: &Project) -> std::process::Output {
    p.keel()
        .args(["execute", V, "--env", "production", "--yes"])
        .output()
        .unwrap()
}

/// Runs `add_user_profiles` through execute and returns its final record.
fn run(p: &Project) -> PathBuf {
    let out = execute(p);
    assert!(out.status.success(), "{}", stderr(&out));
    let line = stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("record:  ").map(String::from))
        .unwrap();
    p.path().join(line.split(' ').next().unwrap())
}

/// Every record file of the migration, oldest first.
fn records(p: &Project) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(p.path().join("records").join(ID))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|f| f.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn sig(record: &Path) -> PathBuf {
    PathBuf::from(format!("{}.sig", record.display()))
}

/// `ssh-keygen -Y verify` exactly as the runbook tells an auditor to run it.
pub(crate) fn ssh_keygen_verify(p: &Project, record: &Path) -> std::process::Output {
    Command::new("ssh-keygen")
        .args([
            "-Y",
            "verify",
            "-f",
            "allowed_signers",
            "-I",
            SIGNER,
            "-n",
            "keel-record",
            "-s",
        ])
        .arg(sig(record))
        .stdin(std::fs::File::open(record).unwrap())
        .current_dir(p.path())
        .output()
        .unwrap()
}

fn keel_verify(p: &Project, record: &Path) -> std::process::Output {
    p.keel()
        .args(["record", "verify"])
        .arg(record)
        .output()
        .unwrap()
}

fn signed_by_keel_verified_by_ssh_keygen(kind: &str) {
    let p = project(kind, &key_config());
    let record = run(&p);
    let rel = record.strip_prefix(p.path()).unwrap().display().to_string();
    assert!(
        rel.starts_with(&format!("records/{ID}/production-")) && rel.ends_with(".json"),
        "{rel}"
    );
    for r in records(&p) {
        let out = ssh_keygen_verify(&p, &r);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stdout(&out).starts_with(&format!("Good \"keel-record\" signature for {SIGNER}")),
            "{}",
            stdout(&out)
        );
    }
    let out = keel_verify(&p, &record);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(json["signer"], SIGNER);
    assert_eq!(json["migration"]["id"], ID);
    assert_eq!(json["outcome"], "applied");
    assert_eq!(json["sequence"], 2, "the intent record is #1");
}

#[test]
fn ed25519_signed_by_keel_verified_by_ssh_keygen() {
    signed_by_keel_verified_by_ssh_keygen("ed25519");
}

#[test]
fn rsa_signed_by_keel_verified_by_ssh_keygen() {
    signed_by_keel_verified_by_ssh_keygen("rsa");
}

/// `signing_command` is how keys in ssh-agent or on hardware tokens sign:
/// here the real ssh-keygen makes the signature and keel checks it.
#[test]
fn signed_by_ssh_keygen_verified_by_keel() {
    let p = project(
        "ed25519",
        &format!(
            "signer = \"{SIGNER}\"\nsigning_command = \"ssh-keygen -q -Y sign -f keys/ops -n keel-record\""
        ),
    );
    let record = run(&p);
    let out = keel_verify(&p, &record);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("signed by {SIGNER} (SHA256:")),
        "{text}"
    );
    assert!(
        text.contains(&format!("record #2 of production: {ID} applied; in its migration's folder under its environment's name; hash chain intact back to #1 (1 earlier record(s))")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "runbooks/{ID}.md: reviewed body, 3 ticked item(s) and its execution record as this run left them"
        )),
        "{text}"
    );
    assert!(
        text.contains("registered it as #2 of `production`; its 2 record(s) of `production` (head #2) are all in"),
        "{text}"
    );
    assert!(ssh_keygen_verify(&p, &record).status.success());
}

#[test]
fn a_tampered_record_is_rejected_by_keel_and_ssh_keygen() {
    let p = project("ed25519", &key_config());
    let record = run(&p);
    let text = std::fs::read_to_string(&record).unwrap();
    std::fs::write(&record, text.replace("\"applied\"", "\"rolled_back\"")).unwrap();
    let out = keel_verify(&p, &record);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stderr(&out),
        format!(
            "error: the signature in {0}.sig does not match {0}: the record was changed after it was signed\n  fix: do not trust this record; recover the signed version from version control\n",
            record.display()
        )
    );
    assert!(!ssh_keygen_verify(&p, &record).status.success());
}

#[test]
fn a_key_not_in_allowed_signers_is_rejected() {
    let p = project("ed25519", &key_config());
    keygen(&p, "ed25519", "intruder");
    config(
        &p,
        &format!("signer = \"{SIGNER}\"\nsigning_key = \"keys/intruder\""),
    );
    let record = run(&p);
    let out = keel_verify(&p, &record);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("for {SIGNER}, which allowed_signers does not allow: {SIGNER} is listed, but with another key")),
        "{err}"
    );
    assert!(
        err.contains("namespaces=\"keel-record\" ssh-ed25519 AAAA"),
        "{err}"
    );
    assert!(!ssh_keygen_verify(&p, &record).status.success());

    // A signature made for another purpose (a git commit) is no record
    // signature: execute refuses before it changes anything.
    p.keel()
        .args(["down", "-q", "--env", "production"])
        .assert()
        .success();
    config(
        &p,
        &format!(
            "signer = \"{SIGNER}\"\nsigning_command = \"ssh-keygen -q -Y sign -f keys/ops -n git\""
        ),
    );
    let before = records(&p).len();
    let out = execute(&p);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stderr(&out).contains("is for namespace `git`, not `keel-record`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(records(&p).len(), before);
}

#[test]
fn a_missing_or_locked_key_writes_no_record() {
    let p = project(
        "ed25519",
        &format!("signer = \"{SIGNER}\"\nsigning_key = \"keys/nope\""),
    );
    let out = execute(&p);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stderr(&out).contains("cannot read the signing key"),
        "{}",
        stderr(&out)
    );
    assert!(!p.path().join("records").exists());

    let status = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "passphrase",
            "-f",
            "keys/locked",
        ])
        .current_dir(p.path())
        .status()
        .unwrap();
    assert!(status.success());
    config(
        &p,
        &format!("signer = \"{SIGNER}\"\nsigning_key = \"keys/locked\""),
    );
    let out = execute(&p);
    assert_eq!(out.status.code(), Some(4));
    let err = stderr(&out);
    assert!(err.contains("is protected by a passphrase"), "{err}");
    assert!(
        err.contains("signing_command = \"ssh-keygen -Y sign -f"),
        "{err}"
    );
    assert!(!p.path().join("records").exists());
}

#[test]
fn the_hash_chain_links_records_of_an_environment() {
    let p = project("ed25519", &key_config());
    run(&p);
    p.keel()
        .args(["down", "-q", "--env", "production"])
        .assert()
        .success();
    let last = run(&p);
    let all = records(&p);
    assert_eq!(all.len(), 4, "two runs, each an intent and a final record");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&last).unwrap()).unwrap();
    assert_eq!(json["sequence"], 4);
    let link = json["previous"]["path"].as_str().unwrap();
    assert_eq!(
        p.path().join("records").join(link),
        all[2],
        "the final record links to its run's intent"
    );
    assert!(keel_verify(&p, &last).status.success());

    // Editing an earlier record breaks the chain even though each record
    // still carries its own signature.
    let text = std::fs::read_to_string(&all[0]).unwrap();
    std::fs::write(&all[0], text.replace("\"started\"", "\"failed\"")).unwrap();
    let out = keel_verify(&p, &last);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains(&format!(
            "hash chain broken: {} changed after",
            all[0].display()
        )),
        "{}",
        stderr(&out)
    );

    // Removing one is caught too.
    std::fs::remove_file(&all[1]).unwrap();
    let out = keel_verify(&p, &last);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("which is missing"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unsigned_record_or_a_bad_allowed_signers_file_is_reported() {
    let p = project("ed25519", "");
    let record = run(&p);
    let out = keel_verify(&p, &record);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("is not signed"), "{}", stderr(&out));

    std::fs::write(
        p.path().join("allowed_signers"),
        "ops@example.com ssh-ed25519 garbage\n",
    )
    .unwrap();
    let out = keel_verify(&p, &record);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("error: allowed_signers:1: the key does not parse"),
        "{}",
        stderr(&out)
    );
}

/// `--all` walks every environment's chain end to end, against its
/// database; without one it says plainly what it could not check.
#[test]
fn verify_all_walks_every_chain_and_says_what_it_could_not_check() {
    let p = project("ed25519", &key_config());
    run(&p);
    let out = p
        .keel()
        .args(["record", "verify", "--all"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("ok `production`: 2 record(s), each signed by an allowed signer, in its place, with its runbook as the run left it; one chain from #1 to #2\n"),
        "{text}"
    );
    assert!(
        text.contains("registered exactly these 2 record(s) of `production`"),
        "{text}"
    );

    // Without the environment's database: the signatures, places, chain and
    // runbook are still checked, and the output says what was not.
    let out = p
        .keel()
        .args(["record", "verify", "--all"])
        .env("DATABASE_URL", "")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("`production` not checked against its database: environment `production` reads its database URL from $DATABASE_URL, which is not set"),
        "{}",
        stdout(&out)
    );
    let record = records(&p).pop().unwrap();
    let out = p
        .keel()
        .args(["record", "verify"])
        .arg(&record)
        .env("DATABASE_URL", "")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("not checked against the database: environment `production` reads its database URL from $DATABASE_URL, which is not set; without it keel cannot tell whether a newer record of `production` was deleted or this one was copied from another database"),
        "{}",
        stdout(&out)
    );
}

/// Records an older keel wrote (format 1, before records were registered in
/// the database) are adopted once, when they form one chain; records of
/// this keel that the database does not know are refused.
#[test]
fn records_of_an_older_keel_are_adopted_once() {
    let p = project("ed25519", "");
    run(&p);
    p.exec("DELETE FROM keel_records");
    p.keel()
        .args(["down", "-q", "--env", "production"])
        .assert()
        .success();
    let files = records(&p);
    let out = execute(&p);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let first = files[0]
        .strip_prefix(p.path())
        .unwrap()
        .display()
        .to_string();
    assert!(
        stderr(&out).contains(&format!("  {first} is a record of `production`, but this database holds no records of `production`: keel registers every record it writes in the database it ran on, so this one was written for another database (or this database was re-created, or restored from a snapshot older than the record), or it was planted\n")),
        "{}",
        stderr(&out)
    );

    // Rewritten as an older keel wrote them: format 1, chained by hash.
    let mut previous: Option<(String, String)> = None;
    for f in &files {
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
        json["format"] = 1.into();
        json["previous"] = match &previous {
            Some((path, sha)) => serde_json::json!({"path": path, "sha256": sha}),
            None => serde_json::Value::Null,
        };
        let mut bytes = serde_json::to_vec_pretty(&json).unwrap();
        bytes.push(b'\n');
        std::fs::write(f, &bytes).unwrap();
        previous = Some((
            f.strip_prefix(p.path().join("records"))
                .unwrap()
                .display()
                .to_string(),
            keel::digest::sha256_bytes(&bytes),
        ));
    }
    let out = p
        .keel()
        .args([
            "record",
            "verify",
            "--all",
            "--allowed-signers",
            "/dev/null",
        ])
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("`production` not checked against "),
        "{}",
        stdout(&out)
    );
    let out = execute(&p);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("2 record(s) of `production` written before keel registered records in the database will be adopted"),
        "{err}"
    );
    assert!(
        err.contains("adopted 2 earlier record(s) of `production` into keel_records: they were written before keel registered records in the database"),
        "{err}"
    );
    assert_eq!(
        p.scalar("SELECT count(*) FROM keel_records").as_deref(),
        Some("4")
    );
    let last: serde_json::Value =
        serde_json::from_slice(&std::fs::read(records(&p).pop().unwrap()).unwrap()).unwrap();
    assert_eq!(last["sequence"], 4);
}
