//! Signed, hash-chained execution records, checked both ways against the
//! real `ssh-keygen`: what keel signs OpenSSH accepts, and what OpenSSH
//! signs keel accepts.

use crate::common::{Project, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const SIGNER: &str = "ops@example.com";

/// A SQLite project with the sample migrations and an SSH key of `kind`
/// (`ed25519` or `rsa`) in `keys/<name>`, named in keel.toml.
fn project(kind: &str) -> Project {
    let p = Project::sqlite();
    p.sample();
    keygen(&p, kind, "ops");
    std::fs::write(
        p.path().join("keel.toml"),
        format!("signer = \"{SIGNER}\"\nsigning_key = \"keys/ops\"\n"),
    )
    .unwrap();
    allow(&p, &[(SIGNER, "ops")]);
    p
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

/// Writes a record with the hidden `keel record new` and returns its path.
fn new_record(p: &Project, extra: &[&str]) -> PathBuf {
    let out = p
        .keel()
        .args(["record", "new", "20260102090000", "--env", "production"])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    p.path().join(stdout(&out).trim())
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
    let p = project(kind);
    let record = new_record(&p, &[]);
    let rel = record.strip_prefix(p.path()).unwrap().display().to_string();
    assert!(
        rel.starts_with("records/20260102090000_add_user_profiles/production-")
            && rel.ends_with(".json"),
        "{rel}"
    );
    let out = ssh_keygen_verify(&p, &record);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with(&format!("Good \"keel-record\" signature for {SIGNER}")),
        "{}",
        stdout(&out)
    );
    let out = keel_verify(&p, &record);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(json["signer"], SIGNER);
    assert_eq!(json["migration"]["id"], "20260102090000_add_user_profiles");
    assert_eq!(json["sequence"], 1);
}

#[test]
fn ed25519_signed_by_keel_verified_by_ssh_keygen() {
    signed_by_keel_verified_by_ssh_keygen("ed25519");
}

#[test]
fn rsa_signed_by_keel_verified_by_ssh_keygen() {
    signed_by_keel_verified_by_ssh_keygen("rsa");
}

#[test]
fn signed_by_ssh_keygen_verified_by_keel() {
    let p = project("ed25519");
    let record = new_record(&p, &["--unsigned"]);
    // ssh-keygen writes FILE.json.sig beside FILE.json, the name keel reads.
    let status = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-f", "keys/ops", "-n", "keel-record"])
        .arg(&record)
        .current_dir(p.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let out = keel_verify(&p, &record);
    assert!(out.status.success(), "{}", stderr(&out));

    // The same through signing_command, which is how keys in ssh-agent or
    // on hardware tokens sign.
    std::fs::write(
        p.path().join("keel.toml"),
        format!("signer = \"{SIGNER}\"\nsigning_command = \"ssh-keygen -q -Y sign -f keys/ops -n keel-record\"\n"),
    )
    .unwrap();
    let second = new_record(&p, &[]);
    let out = keel_verify(&p, &second);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("signed by {SIGNER} (SHA256:")),
        "{text}"
    );
    assert!(
        text.contains("record #2 of production: 20260102090000_add_user_profiles applied; hash chain intact back to #1 (1 earlier record(s))"),
        "{text}"
    );
    assert!(ssh_keygen_verify(&p, &second).status.success());
}

#[test]
fn a_tampered_record_is_rejected_by_keel_and_ssh_keygen() {
    let p = project("ed25519");
    let record = new_record(&p, &[]);
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
    let p = project("ed25519");
    keygen(&p, "ed25519", "intruder");
    std::fs::write(
        p.path().join("keel.toml"),
        format!("signer = \"{SIGNER}\"\nsigning_key = \"keys/intruder\"\n"),
    )
    .unwrap();
    let record = new_record(&p, &[]);
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

    // A signature made for another purpose (a git commit) is no record signature.
    std::fs::write(
        p.path().join("keel.toml"),
        format!("signer = \"{SIGNER}\"\nsigning_command = \"ssh-keygen -q -Y sign -f keys/ops -n git\"\n"),
    )
    .unwrap();
    let out = p
        .keel()
        .args(["record", "new", "20260102090000", "--env", "production"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stderr(&out).contains("is for namespace `git`, not `keel-record`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_missing_or_locked_key_writes_no_record() {
    let p = project("ed25519");
    std::fs::write(
        p.path().join("keel.toml"),
        format!("signer = \"{SIGNER}\"\nsigning_key = \"keys/nope\"\n"),
    )
    .unwrap();
    let out = p
        .keel()
        .args(["record", "new", "20260102090000", "--env", "production"])
        .output()
        .unwrap();
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
    std::fs::write(
        p.path().join("keel.toml"),
        format!("signer = \"{SIGNER}\"\nsigning_key = \"keys/locked\"\n"),
    )
    .unwrap();
    let out = p
        .keel()
        .args(["record", "new", "20260102090000", "--env", "production"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = stderr(&out);
    assert!(err.contains("is protected by a passphrase"), "{err}");
    assert!(
        err.contains("signing_command = \"ssh-keygen -Y sign -f"),
        "{err}"
    );
}

#[test]
fn the_hash_chain_links_records_of_an_environment() {
    let p = project("ed25519");
    let first = new_record(&p, &[]);
    let second = new_record(&p, &[]);
    let third = new_record(&p, &[]);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&third).unwrap()).unwrap();
    assert_eq!(json["sequence"], 3);
    let link = json["previous"]["path"].as_str().unwrap();
    assert_eq!(
        p.path().join("records").join(link),
        second,
        "links to the previous record"
    );
    assert!(keel_verify(&p, &third).status.success());

    // Editing an earlier record breaks the chain even though each record
    // still carries its own signature.
    let text = std::fs::read_to_string(&first).unwrap();
    std::fs::write(&first, text.replace("\"applied\"", "\"failed\"")).unwrap();
    let out = keel_verify(&p, &third);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains(&format!(
            "hash chain broken: {} changed after",
            first.display()
        )),
        "{}",
        stderr(&out)
    );

    // Removing one is caught too.
    std::fs::remove_file(&second).unwrap();
    let out = keel_verify(&p, &third);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("which is missing"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unsigned_record_or_a_bad_allowed_signers_file_is_reported() {
    let p = project("ed25519");
    let record = new_record(&p, &["--unsigned"]);
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
