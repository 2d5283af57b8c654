//! The tamper run of issue 10 (items 16, 17–21): every way the acceptance
//! run made the audit trail lie or a guard trust a fake, on one project
//! with a staging and a production database. For each case: keel's exact
//! refusal (exit code, the file named, the fix) and that nothing changed in
//! the database. The tamper is undone after each case, and a genuine run
//! at the end shows the chain is still whole.

use crate::common::{Project, pg, stderr, stdout};
use crate::execute::{SIGNER, keygen};
use std::path::{Path, PathBuf};

const A: &str = "20260102090000";
const A_ID: &str = "20260102090000_add_user_profiles";
const B: &str = "20260103090000";
const B_ID: &str = "20260103090000_drop_bio";
const ANSWERS: &str = "rollback-tested = true\ndeployment-plan-reviewed = true\ncode-stops-using-profiles-bio = true\n";

struct Setup {
    p: Project,
    staging: String,
}

impl Setup {
    fn keel(&self) -> assert_cmd::Command {
        let mut cmd = self.p.keel();
        cmd.env("STAGING_DATABASE_URL", &self.staging);
        cmd
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.keel().args(args).output().unwrap()
    }

    fn execute(&self, v: &str, env: &str, extra: &[&str]) -> std::process::Output {
        self.run(
            &[
                &["execute", v, "--env", env, "--answers", "answers.toml"][..],
                extra,
            ]
            .concat(),
        )
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.p.path().join(rel)
    }

    /// `records/<migration>/<env>-*.json`, oldest first.
    fn records(&self, migration: &str, env: &str) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = std::fs::read_dir(self.path("records").join(migration))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        out.retain(|f| {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with(&format!("{env}-2")) && name.ends_with(".json")
        });
        out.sort();
        out
    }

    /// What must not change when keel refuses: B not applied, profiles.bio
    /// with its rows, the records production's database registered.
    fn state(&self) -> (Option<String>, Vec<Vec<Option<String>>>, Option<String>) {
        (
            self.p.scalar(&format!(
                "SELECT count(*) FROM keel_migrations WHERE version = '{B}'"
            )),
            self.p
                .rows("SELECT id::text, bio FROM profiles ORDER BY id"),
            self.p.scalar(
                "SELECT string_agg(path || ' ' || sha256, ',' ORDER BY sequence) FROM keel_records",
            ),
        )
    }
}

fn rel(s: &Setup, path: &Path) -> String {
    path.strip_prefix(s.p.path()).unwrap().display().to_string()
}

/// Copies a record and its signature to `to` (a path relative to the project).
fn copy_record(s: &Setup, from: &Path, to: &str) -> PathBuf {
    let to = s.path(to);
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, &to).unwrap();
    std::fs::copy(
        format!("{}.sig", from.display()),
        format!("{}.sig", to.display()),
    )
    .unwrap();
    to
}

fn remove_record(path: &Path) {
    std::fs::remove_file(path).unwrap();
    std::fs::remove_file(format!("{}.sig", path.display())).unwrap();
}

fn setup() -> Setup {
    let p = Project::postgres();
    let staging = pg::server().fresh_database();
    p.sample();
    p.migration(
        B_ID,
        "ALTER TABLE profiles DROP COLUMN bio;\n",
        Some("ALTER TABLE profiles ADD COLUMN bio text;\n"),
        Some("description = \"Drop profiles.bio\"\n"),
    );
    keygen(&p);
    std::fs::write(
        p.path().join("keel.toml"),
        format!(
            "signer = \"{SIGNER}\"\nsigning_key = \"keys/ops\"\n\
             [environments.staging]\ndatabase_url_env = \"STAGING_DATABASE_URL\"\n\
             [environments.production]\ndatabase_url_env = \"DATABASE_URL\"\n\
             require_snapshot = true\nrequire_signature = true\n"
        ),
    )
    .unwrap();
    std::fs::write(p.path().join("answers.toml"), ANSWERS).unwrap();
    let s = Setup { p, staging };
    for env in ["staging", "production"] {
        let out = s.run(&["up", "-q", "--to", "20260101090200", "--env", env]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    for v in [A, B] {
        let out = s.run(&["runbook", "-q", v]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = s.run(&["snapshot", "take", "-q", "--env", "production"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = s.run(&["snapshot", "take", "-q", "--env", "staging"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for env in ["staging", "production"] {
        let out = s.execute(A, env, &[]);
        assert!(out.status.success(), "{env}: {}", stderr(&out));
    }
    s.p.exec(
        "INSERT INTO users (id, email, name) VALUES (1, 'a@example.com', 'A'), (2, 'b@example.com', 'B');
         INSERT INTO profiles (id, user_id, bio) VALUES (1, 1, 'first'), (2, 2, NULL);",
    );
    s
}

#[test]
fn every_tamper_is_refused_and_changes_nothing() {
    let s = setup();
    let before = s.state();
    let check = |out: &std::process::Output| -> String {
        let err = stderr(out);
        assert_eq!(out.status.code(), Some(4), "{err}");
        assert!(err.contains("\n  fix: "), "{err}");
        assert_eq!(s.state(), before, "nothing changed in the database");
        // The progress lines before it; the refusal is the rest.
        err[err.find("error: ").unwrap()..].to_string()
    };
    let prod = s.records(A_ID, "production");
    assert_eq!(prod.len(), 2, "intent and final record of A on production");
    let newest = prod[1].clone();
    let newest_rel = rel(&s, &newest);

    // 17. Deleting the newest record: the database still lists it.
    let saved = std::fs::read(&newest).unwrap();
    std::fs::remove_file(&newest).unwrap();
    let err = check(&s.execute(B, "production", &[]));
    assert!(
        err.contains(&format!(
            "error: the records folder does not match the database's keel_records for `production`:\n  {newest_rel} is missing: the database lists it as record #2 of `production` ({A_ID}, applied, SHA-256 "
        )),
        "{err}"
    );
    assert!(
        err.contains("fix: restore it from version control (git checkout -- records/, or git pull if another machine ran it): keel links the next record to it"),
        "{err}"
    );
    let out = s.run(&["record", "verify", &rel(&s, &prod[0])]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{newest_rel} is missing")),
        "{}",
        stderr(&out)
    );
    std::fs::write(&newest, saved).unwrap();

    // 18a. A staging record copied under a production name.
    let staging = s.records(A_ID, "staging");
    let planted = copy_record(
        &s,
        &staging[1],
        &format!("records/{A_ID}/production-29991231T235959Z.json"),
    );
    let planted_rel = rel(&s, &planted);
    let err = check(&s.execute(B, "production", &[]));
    assert!(
        err.contains(&format!("  {planted_rel} is not one of the records keel wrote for `production` on this database (it registered #1–#2): a record copied from another environment, database or migration, or a planted file\n")),
        "{err}"
    );
    assert!(
        err.contains("fix: move it out of records/ (put a copy back where it came from)"),
        "{err}"
    );
    let out = s.run(&["record", "verify", &planted_rel]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stderr(&out),
        format!(
            "error: {planted_rel} is record #2 of environment `staging`, but its file name says `production`: keel names every record after its environment, so this is a copy under another environment's name and proves nothing about `production`\n  fix: do not trust it; `staging`'s genuine record is in records/{A_ID}/ named staging-<stamp>.json\n"
        )
    );
    remove_record(&planted);

    // 18b. A record copied into another migration's folder.
    let name = newest.file_name().unwrap().to_string_lossy().into_owned();
    let planted = copy_record(&s, &newest, &format!("records/{B_ID}/{name}"));
    let planted_rel = rel(&s, &planted);
    let err = check(&s.execute(B, "production", &[]));
    assert!(
        err.contains(&format!(
            "  {planted_rel} is not one of the records keel wrote for `production`"
        )),
        "{err}"
    );
    let out = s.run(&["record", "verify", &planted_rel]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stderr(&out),
        format!(
            "error: {planted_rel} is a record of migration {A_ID}, but it sits in the folder of {B_ID}: keel writes each record into its own migration's folder, so this is a copy and proves nothing about {B_ID}\n  fix: do not trust it; the genuine record is in records/{A_ID}/\n"
        )
    );
    remove_record(&planted);

    // 18c. A planted file that would have become the next record's
    // `previous` (the newest production-* name).
    let planted = s.path(&format!("records/{A_ID}/production-29991231T235959Z.json"));
    std::fs::write(&planted, "{\"not\": \"a record keel wrote\"}\n").unwrap();
    let err = check(&s.execute(B, "production", &[]));
    assert!(
        err.contains(&format!("  records/{A_ID}/production-29991231T235959Z.json is not one of the records keel wrote for `production`")),
        "{err}"
    );
    std::fs::remove_file(&planted).unwrap();

    // 19a. SQL edited in the runbook: the body no longer matches its SHA-256.
    let runbook = s.path(&format!("runbooks/{B_ID}.md"));
    let reviewed = std::fs::read_to_string(&runbook).unwrap();
    let sql_line = reviewed
        .lines()
        .position(|l| l == "ALTER TABLE profiles DROP COLUMN bio")
        .unwrap()
        + 1;
    let edited = reviewed.replace(
        "\nALTER TABLE profiles DROP COLUMN bio\n",
        "\nALTER TABLE profiles RENAME COLUMN bio TO bio_old\n",
    );
    std::fs::write(&runbook, &edited).unwrap();
    let err = check(&s.execute(B, "production", &[]));
    assert_eq!(
        err,
        format!(
            "error: the runbook runbooks/{B_ID}.md was edited after it was rendered: its reviewed body (everything above the execution records, ticks aside) no longer matches the SHA-256 on its first line; line {sql_line} reads `ALTER TABLE profiles RENAME COLUMN bio TO bio_old` where keel renders `ALTER TABLE profiles DROP COLUMN bio`; execute follows only the runbook that was reviewed\n  fix: render it with `keel runbook {B}`, review it, and commit it\n"
        )
    );

    // 19b. The same edit with the SHA-256 on the first line recomputed: the
    // body is still not what keel renders for the migration.
    let forged = reseal(&edited);
    std::fs::write(&runbook, &forged).unwrap();
    let err = check(&s.execute(B, "production", &[]));
    assert!(
        err.contains(&format!(
            "error: the runbook runbooks/{B_ID}.md is not what keel renders for {B_ID} now; line {sql_line} reads `ALTER TABLE profiles RENAME COLUMN bio TO bio_old` where keel renders `ALTER TABLE profiles DROP COLUMN bio` (edited with its SHA-256 recomputed, or keel.toml, the template or keel changed since it was rendered)"
        )),
        "{err}"
    );

    // 19c. A checklist item deleted, and one renamed to an id keel checks
    // itself (so nobody would be asked to confirm it).
    let item = reviewed
        .lines()
        .find(|l| l.contains("keel:check rollback-tested"))
        .unwrap();
    let item_line = reviewed.lines().position(|l| l == item).unwrap() + 1;
    let deleted = reseal(&reviewed.replace(&format!("{item}\n"), ""));
    std::fs::write(&runbook, &deleted).unwrap();
    let err = check(&s.execute(B, "production", &[]));
    assert!(
        err.starts_with(&format!("error: the runbook runbooks/{B_ID}.md is not what keel renders for {B_ID} now; line {item_line} reads `- [ ] Snapshot taken:")),
        "{err}"
    );
    assert!(
        err.contains("where keel renders `- [ ] Rollback tested:"),
        "{err}"
    );
    let renamed =
        reseal(&reviewed.replace("keel:check rollback-tested", "keel:check dry-run-reviewed"));
    std::fs::write(&runbook, &renamed).unwrap();
    let err = check(&s.execute(B, "production", &[]));
    assert!(
        err.starts_with(&format!("error: the runbook runbooks/{B_ID}.md is not what keel renders for {B_ID} now; line {item_line} reads `…")),
        "{err}"
    );
    assert!(
        err.contains("<!-- keel:check dry-run-reviewed -->` where keel renders `…")
            && err.contains("<!-- keel:check rollback-tested -->`"),
        "{err}"
    );

    // 19d. A stale body under an edited first line: the migration changed,
    // and only the checksum on the first line was brought up to date.
    let up = s.path(&format!("migrations/{B_ID}/up.sql"));
    std::fs::write(&up, "ALTER TABLE profiles DROP COLUMN bio CASCADE;\n").unwrap();
    let status = s.run(&["runbook", "-q", B, "--dir", "fresh"]);
    assert!(status.status.success());
    let fresh = std::fs::read_to_string(s.path(&format!("fresh/{B_ID}.md"))).unwrap();
    let marker = keel::runbook::marker(&fresh).unwrap();
    let old = keel::runbook::marker(&reviewed).unwrap();
    let stale = reviewed.replacen(&old.checksum, &marker.checksum, 1);
    std::fs::write(&runbook, &stale).unwrap();
    let err = check(&s.execute(B, "production", &[]));
    assert!(
        err.starts_with(&format!(
            "error: the runbook runbooks/{B_ID}.md was edited after it was rendered: its reviewed body (everything above the execution records, ticks aside) no longer matches the SHA-256 on its first line; line "
        )),
        "{err}"
    );
    std::fs::write(&up, "ALTER TABLE profiles DROP COLUMN bio;\n").unwrap();
    std::fs::write(&runbook, &reviewed).unwrap();

    // 20. Snapshots that are not what they claim.
    let snaps = s.path("snapshots");
    let write_snapshot = |name: &str, bytes: &[u8]| -> String {
        std::fs::write(snaps.join(name), bytes).unwrap();
        let sha = keel::digest::sha256_bytes(bytes);
        std::fs::write(
            snaps.join(format!("{name}.sha256")),
            format!("{sha}  {name}\n"),
        )
        .unwrap();
        format!("snapshots/{name}")
    };
    // A 5-byte PGDMP file with a matching sidecar.
    let fake = write_snapshot("production-29991231T235959Z.dump", b"PGDMP");
    let err = check(&s.execute(B, "production", &["--snapshot", &fake]));
    assert!(
        err.starts_with(&format!(
            "error: {fake} matches its SHA-256 but is not a readable dump: pg_restore --list cannot read {fake} "
        )),
        "{err}"
    );
    assert!(
        err.contains("fix: take a new snapshot with `keel snapshot take --env production`; do not rely on this file"),
        "{err}"
    );
    // Staging's real dump, renamed as production's: another database.
    let staging_dump = std::fs::read_dir(&snaps)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("staging-") && n.ends_with(".dump"))
        .unwrap();
    let copied = write_snapshot(
        "production-29991231T235959Z.dump",
        &std::fs::read(snaps.join(&staging_dump)).unwrap(),
    );
    let db_name = |u: &str| url::Url::parse(u).unwrap().path()[1..].to_string();
    let (staging_db, prod_db) = (db_name(&s.staging), db_name(&s.p.url));
    let prod_id =
        s.p.scalar("SELECT value FROM keel_meta WHERE key = 'database_id'")
            .unwrap();
    let err = check(&s.execute(B, "production", &["--snapshot", &copied]));
    assert!(
        err.starts_with(&format!(
            "error: {copied} is a dump of database `{staging_db}` (keel id "
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "), but `production` is database `{prod_db}` (keel id {prod_id}): a snapshot of another database cannot restore this one\n  fix: take one of this database with `keel snapshot take --env production`\n"
        )),
        "{err}"
    );
    // A dump of a copy of production (CREATE DATABASE … TEMPLATE copies
    // keel_meta's id along), under production's name: another database.
    let copy_db = format!("{prod_db}_copy");
    let copy_sql = format!("CREATE DATABASE \"{copy_db}\" TEMPLATE \"{prod_db}\"");
    let staging_url = s.staging.clone();
    crate::common::block_on(async move {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&staging_url).await.unwrap();
        sqlx::Executor::execute(&mut c, copy_sql.as_str())
            .await
            .unwrap();
    });
    let mut copy_url = url::Url::parse(&s.p.url).unwrap();
    copy_url.set_path(&format!("/{copy_db}"));
    std::fs::remove_file(snaps.join("production-29991231T235959Z.dump")).unwrap();
    std::fs::remove_file(snaps.join("production-29991231T235959Z.dump.sha256")).unwrap();
    let out = s.run(&[
        "snapshot",
        "take",
        "--format",
        "json",
        "--env",
        "production",
        "--database-url",
        copy_url.as_str(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let copy_dump = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string();
    let err = check(&s.execute(B, "production", &["--snapshot", &copy_dump]));
    assert!(
        err.starts_with(&format!(
            "error: {copy_dump} is a dump of database `{copy_db}` (keel id {prod_id}), but `production` is database `{prod_db}` (keel id {prod_id}): a snapshot of another database cannot restore this one\n"
        )),
        "{err}"
    );
    std::fs::remove_file(s.path(&copy_dump)).unwrap();
    std::fs::remove_file(s.path(&format!("{copy_dump}.sha256"))).unwrap();
    write_snapshot(
        "production-29991231T235959Z.dump",
        &std::fs::read(snaps.join(&staging_dump)).unwrap(),
    );
    // Another environment's snapshot, as it is.
    let err = check(&s.execute(
        B,
        "production",
        &["--snapshot", &format!("snapshots/{staging_dump}")],
    ));
    assert!(
        err.starts_with(&format!(
            "error: snapshots/{staging_dump} is a snapshot of environment `staging`, not of `production`\n  fix: take one of `production` with `keel snapshot take --env production`\n"
        )),
        "{err}"
    );
    std::fs::remove_file(snaps.join("production-29991231T235959Z.dump")).unwrap();
    std::fs::remove_file(snaps.join("production-29991231T235959Z.dump.sha256")).unwrap();
    // An old one: older than snapshot_max_age by the archive's own clock.
    let toml = std::fs::read_to_string(s.path("keel.toml")).unwrap();
    std::fs::write(
        s.path("keel.toml"),
        toml.replace(
            "require_snapshot = true",
            "require_snapshot = true\nsnapshot_max_age = \"1s\"",
        ),
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let out = s.execute(B, "production", &[]);
    // keel.toml is part of what the runbook shows; this setting is not.
    let err = check(&out);
    assert!(err.contains(" ago ("), "{err}");
    assert!(
        err.contains("), longer ago than `production`'s snapshot_max_age of 1s: restoring it would lose everything written since\n  fix: take a fresh one with `keel snapshot take --env production` (or raise snapshot_max_age for [environments.production] in keel.toml)\n"),
        "{err}"
    );
    std::fs::write(s.path("keel.toml"), &toml).unwrap();

    // 16. A signing key others can read.
    let key = s.path("keys/ops");
    set_mode(&key, 0o644);
    let err = check(&s.execute(B, "production", &[]));
    assert_eq!(
        err,
        "error: the signing key ./keys/ops can be read by other users (mode 0644): a private key must be its owner's alone, and ssh-keygen refuses such a key too; nothing was signed\n  fix: chmod 600 ./keys/ops\n  execute tries the signing key before it changes anything; nothing was changed\n"
    );
    set_mode(&key, 0o600);

    // 21. A runbook edited after execution: `record verify` checks the
    // runbook as the run left it (its body, ticks and section).
    let a_runbook = s.path(&format!("runbooks/{A_ID}.md"));
    let left = std::fs::read_to_string(&a_runbook).unwrap();
    for (edit, why) in [
        (
            left.replacen("### production: applied", "### production: rolled back", 1),
            "the execution record this run appended is gone or was edited",
        ),
        (
            left.replacen("- [x] Rollback tested", "- [ ] Rollback tested", 1),
            "checklist item `rollback-tested`, which this run ticked, is no longer ticked",
        ),
        (
            left.replacen(
                "CREATE TABLE profiles",
                "CREATE TABLE IF NOT EXISTS profiles",
                1,
            ),
            "its reviewed body (SQL, checklist, commands) has SHA-256 ",
        ),
    ] {
        std::fs::write(&a_runbook, &edit).unwrap();
        let out = s.run(&["record", "verify", &newest_rel]);
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!(
                "error: the runbook runbooks/{A_ID}.md was changed after this run (applied of `production`, #2): {why}"
            )),
            "{err}"
        );
        assert!(
            err.contains(&format!("fix: do not trust the runbook as it is; recover the version this run left from version control (git log -p runbooks/{A_ID}.md)")),
            "{err}"
        );
    }
    std::fs::write(&a_runbook, &left).unwrap();

    // Everything undone: the genuine run links to the database's head, and
    // every chain verifies end to end against its database.
    let out = s.execute(B, "production", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = s.run(&["record", "verify", "--all"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("ok `production`: 4 record(s)"), "{text}");
    assert!(text.contains("ok `staging`: 2 record(s)"), "{text}");

    // 13. A self-consistent archive planted beside the run's own, with a
    // newer stamp: `keel down` restores only the archive the run recorded.
    let genuine = std::fs::read_dir(s.path(&format!("backups/{B_ID}")))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|f| f.extension().is_some_and(|e| e == "zip"))
        .unwrap();
    let planted = s.path(&format!("backups/{B_ID}/29991231T235959Z.zip"));
    plant_archive(&genuine, &planted, "first", "planted");
    let out = s.run(&["backup", "verify", &rel(&s, &planted)]);
    assert!(out.status.success(), "self-consistent: {}", stderr(&out));
    let out = s.run(&["down", "--env", "production"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("restored {}", rel(&s, &genuine))),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        s.state().1,
        before.1,
        "the bios the run backed up, not the planted ones"
    );
}

/// Copies `archive` to `to` with `from` replaced by `with` in its CSV and
/// the manifest's SHA-256 brought up to date: an archive that passes every
/// check of its own.
fn plant_archive(archive: &Path, to: &Path, from: &str, with: &str) {
    use std::process::Command;
    let dir = to.with_extension("unpacked");
    assert!(
        Command::new("unzip")
            .args(["-q", "-o"])
            .arg(archive)
            .arg("-d")
            .arg(&dir)
            .status()
            .unwrap()
            .success()
    );
    let manifest_path = dir.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    for f in manifest["files"].as_array_mut().unwrap() {
        let csv = dir.join(f["name"].as_str().unwrap());
        let text = std::fs::read_to_string(&csv).unwrap().replace(from, with);
        std::fs::write(&csv, &text).unwrap();
        f["sha256"] = keel::digest::sha256_bytes(text.as_bytes()).into();
    }
    std::fs::write(
        &manifest_path,
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    assert!(
        Command::new("zip")
            .args(["-q", "-X", "-r"])
            .arg(to)
            .arg(".")
            .current_dir(&dir)
            .status()
            .expect("zip is installed")
            .success()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Recomputes the SHA-256 on a runbook's first line for its body, as
/// someone who edits the body and knows keel's format would.
fn reseal(text: &str) -> String {
    let m = keel::runbook::marker(text).unwrap();
    let body = keel::runbook::binding::reviewed(text);
    let digest = keel::runbook::binding::digest(&m.migration, &m.checksum, &body);
    text.replacen(m.body.as_deref().unwrap(), &digest, 1)
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// SQLite's snapshots are checked the same way: opened read-only and
/// integrity-checked, and compared by keel's database id.
#[test]
fn fake_sqlite_snapshots_are_refused() {
    let p = Project::sqlite();
    p.sample();
    p.migration(
        B_ID,
        "ALTER TABLE profiles DROP COLUMN bio;\n",
        Some("ALTER TABLE profiles ADD COLUMN bio text;\n"),
        None,
    );
    std::fs::write(
        p.path().join("keel.toml"),
        "[environments.production]\ndatabase_url_env = \"DATABASE_URL\"\nrequire_snapshot = true\n",
    )
    .unwrap();
    std::fs::write(p.path().join("answers.toml"), ANSWERS).unwrap();
    p.keel().args(["up", "-q", "--to", A]).assert().success();
    p.keel().args(["runbook", "-q", B]).assert().success();
    let snaps = p.path().join("snapshots");
    std::fs::create_dir_all(&snaps).unwrap();
    let plant = |bytes: &[u8]| {
        let name = "production-29991231T235959Z.dump";
        std::fs::write(snaps.join(name), bytes).unwrap();
        let sha = keel::digest::sha256_bytes(bytes);
        std::fs::write(
            snaps.join(format!("{name}.sha256")),
            format!("{sha}  {name}\n"),
        )
        .unwrap();
    };
    let execute = || {
        let out = p
            .keel()
            .args([
                "execute",
                B,
                "--env",
                "production",
                "--answers",
                "answers.toml",
            ])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(4), "{err}");
        assert_eq!(
            p.scalar(&format!(
                "SELECT count(*) FROM keel_migrations WHERE version = '{B}'"
            ))
            .as_deref(),
            Some("0")
        );
        err[err.find("error: ").unwrap()..].to_string()
    };
    // The SQLite header and nothing else.
    plant(b"SQLite format 3\0");
    let err = execute();
    assert!(
        err.starts_with("error: snapshots/production-29991231T235959Z.dump matches its SHA-256 but is not a readable dump: snapshots/production-29991231T235959Z.dump is not a readable SQLite database: "),
        "{err}"
    );
    // Another database's real snapshot under this environment's name.
    let other = Project::sqlite();
    other.sample();
    other
        .keel()
        .args(["up", "-q", "--to", A])
        .assert()
        .success();
    let out = other
        .keel()
        .args(["snapshot", "take", "--format", "json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    plant(&std::fs::read(other.path().join(json["path"].as_str().unwrap())).unwrap());
    let other_id = other
        .scalar("SELECT value FROM keel_meta WHERE key = 'database_id'")
        .unwrap();
    let this_id = p
        .scalar("SELECT value FROM keel_meta WHERE key = 'database_id'")
        .unwrap();
    assert_eq!(
        execute(),
        format!(
            "error: snapshots/production-29991231T235959Z.dump is a dump of the database with keel id {other_id}, but `production` is the database with keel id {this_id}: a snapshot of another database cannot restore this one\n  fix: take one of this database with `keel snapshot take --env production`\n  execute does not run on a snapshot it cannot rely on; nothing was changed\n"
        )
    );
}
