//! `keel snapshot take | verify | prune`: real pg_dump (SQLite: VACUUM INTO)
//! with a sidecar that the real `sha256sum -c` accepts.

use crate::common::{Db, Project, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::Command;

fn take(p: &Project, env: Option<&str>) -> PathBuf {
    if let Some(env) = env {
        std::fs::write(
            p.path().join("keel.toml"),
            format!("[environments.{env}]\ndatabase_url_env = \"DATABASE_URL\"\n"),
        )
        .unwrap();
    }
    let mut cmd = p.keel();
    cmd.args(["snapshot", "take", "--format", "json"]);
    if let Some(env) = env {
        cmd.args(["--env", env]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    p.path().join(json["path"].as_str().unwrap())
}

fn sha256sum_check(dir: &Path, sidecar: &str) -> std::process::Output {
    Command::new("sha256sum")
        .args(["-c", sidecar])
        .current_dir(dir)
        .output()
        .expect("sha256sum is installed")
}

both!(a_snapshot_checks_with_sha256sum, |p: Project| {
    p.sample();
    p.keel().arg("up").assert().success();
    let dump = take(&p, None);
    let name = dump.file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with("default-") && name.ends_with(".dump"),
        "{name}"
    );
    let out = sha256sum_check(&p.path().join("snapshots"), &format!("{name}.sha256"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{name}: OK\n"));

    let out = p
        .keel()
        .args(["snapshot", "verify"])
        .arg(&dump)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with(&format!("ok {}: sha256 ", dump.display())));
});

/// The dump is a real pg_dump archive: pg_restore lists the sample tables.
#[test]
fn the_postgres_snapshot_is_a_pg_dump_archive() {
    let p = Project::postgres();
    p.sample();
    p.keel().arg("up").assert().success();
    let dump = take(&p, None);
    let pg_restore = ["pg_restore", "/usr/lib/postgresql/15/bin/pg_restore"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok())
        .expect("pg_restore is installed");
    let out = Command::new(pg_restore)
        .arg("--list")
        .arg(&dump)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let toc = stdout(&out);
    assert!(toc.contains("TABLE public profiles"), "{toc}");
}

/// The password goes to pg_dump in PGPASSWORD, never on its command line,
/// and keel prints it nowhere. A wrapper around the real pg_dump records
/// what it was given.
#[test]
fn the_password_stays_off_the_command_line() {
    let p = Project::postgres();
    p.sample();
    p.keel().arg("up").assert().success();
    let url = p
        .url
        .replacen("postgres://postgres@", "postgres://postgres:s3cret-pw@", 1);
    let log = p.path().join("pg_dump.log");
    let wrapper = p.path().join("pg_dump_wrapper");
    let real = ["/usr/lib/postgresql/15/bin/pg_dump", "pg_dump"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok())
        .unwrap();
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"argv: $*\" > '{log}'\necho \"PGPASSWORD=$PGPASSWORD\" >> '{log}'\nexec {real} \"$@\"\n",
            log = log.display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&wrapper)
        .status()
        .unwrap();
    let out = p
        .keel()
        .env("DATABASE_URL", &url)
        .env("KEEL_PG_DUMP", &wrapper)
        .args(["snapshot", "take"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let seen = std::fs::read_to_string(&log).unwrap();
    let argv = seen.lines().next().unwrap();
    assert!(!argv.contains("s3cret-pw"), "{argv}");
    assert!(argv.contains("--format=custom"), "{argv}");
    assert!(seen.contains("PGPASSWORD=s3cret-pw"), "{seen}");
    assert!(!stdout(&out).contains("s3cret-pw") && !stderr(&out).contains("s3cret-pw"));
    assert!(stderr(&out).contains("postgres:***@"), "{}", stderr(&out));
}

#[test]
fn a_changed_snapshot_fails_its_check() {
    let p = Project::sqlite();
    p.sample();
    p.keel().arg("up").assert().success();
    let dump = take(&p, Some("production"));
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&dump)
        .unwrap();
    std::io::Write::write_all(&mut f, b"x").unwrap();
    let out = p
        .keel()
        .args(["snapshot", "verify"])
        .arg(&dump)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("snapshot {} has SHA-256", dump.display())),
        "{err}"
    );
    assert!(
        err.contains("do not restore from it, take a new one"),
        "{err}"
    );
}

#[test]
fn a_deleted_snapshot_or_sidecar_is_reported() {
    let p = Project::sqlite();
    p.sample();
    p.keel().arg("up").assert().success();
    let dump = take(&p, Some("production"));
    let sidecar = PathBuf::from(format!("{}.sha256", dump.display()));
    let kept = std::fs::read(&sidecar).unwrap();
    std::fs::remove_file(&sidecar).unwrap();
    let out = p
        .keel()
        .args(["snapshot", "verify"])
        .arg(&dump)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("has no checksum file"),
        "{}",
        stderr(&out)
    );

    std::fs::write(&sidecar, kept).unwrap();
    std::fs::remove_file(&dump).unwrap();
    let out = p
        .keel()
        .args(["snapshot", "verify"])
        .arg(&dump)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stderr(&out),
        format!(
            "error: snapshot {} does not exist (deleted or moved?)\n  fix: take a new one with `keel snapshot take --env production`\n",
            dump.display()
        )
    );
}

/// Copies a real snapshot under an old name, with a matching sidecar.
fn old_copy(real: &Path, env: &str, stamp: &str) -> PathBuf {
    let name = format!("{env}-{stamp}.dump");
    let to = real.with_file_name(&name);
    std::fs::copy(real, &to).unwrap();
    let hash = std::fs::read_to_string(format!("{}.sha256", real.display())).unwrap();
    let hash = hash.split_whitespace().next().unwrap();
    std::fs::write(
        format!("{}.sha256", to.display()),
        format!("{hash}  {name}\n"),
    )
    .unwrap();
    to
}

#[test]
fn prune_deletes_old_snapshots_but_never_the_newest() {
    let p = Project::sqlite();
    p.sample();
    p.keel().arg("up").assert().success();
    let fresh = take(&p, Some("production"));
    let old = old_copy(&fresh, "production", "20200101T000000Z");
    let staging_older = old_copy(&fresh, "staging", "20200101T000000Z");
    let staging_newest = old_copy(&fresh, "staging", "20200102T000000Z");

    let out = p
        .keel()
        .args(["snapshot", "prune", "--older-than", "48h", "--dry-run"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "would delete snapshots/production-20200101T000000Z.dump\nwould delete snapshots/staging-20200101T000000Z.dump\n"
    );
    assert!(old.exists());

    p.keel()
        .args(["snapshot", "prune", "--older-than", "48h"])
        .assert()
        .success();
    assert!(!old.exists() && !PathBuf::from(format!("{}.sha256", old.display())).exists());
    assert!(!staging_older.exists());
    assert!(fresh.exists(), "recent snapshots stay");
    assert!(
        staging_newest.exists(),
        "the newest of an environment stays, however old"
    );
}

/// A `snapshot take` killed mid-dump leaves part of the database in a
/// `.partial` file; the next take (or prune) removes it, and never one a
/// running take is still writing.
#[test]
fn a_killed_takes_partial_dump_is_removed() {
    let p = Project::sqlite();
    p.sample();
    p.keel().arg("up").assert().success();
    let snaps = p.path().join("snapshots");
    std::fs::create_dir_all(&snaps).unwrap();
    let stale = snaps.join("default-20260101T000000Z.dump.partial");
    std::fs::write(&stale, "half of a users table").unwrap();
    let held = snaps.join("default-20260101T000001Z.dump.partial");
    let writer = std::fs::File::create(&held).unwrap();
    writer.lock().unwrap();
    let out = p.keel().args(["snapshot", "take"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("removed snapshots/default-20260101T000000Z.dump.partial: an unfinished snapshot a stopped `keel snapshot take` left"),
        "{}",
        stderr(&out)
    );
    assert!(!stale.exists());
    assert!(held.exists(), "a take still writing keeps its file");
}
