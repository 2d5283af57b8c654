//! A backup belongs to the run that took it: its SHA-256 sits in the
//! migration's tracking row, its manifest names the database it came from,
//! and `down` restores that archive and no other, into that database only.

use crate::common::{Db, Project, pg, stderr};
use std::path::{Path, PathBuf};

const V: &str = "20260201000000";
const ID: &str = "20260201000000_drop_plan";

/// `accounts (id, email, plan, is_admin)` with `rows` rows whose `plan` says
/// which database they are in, and a migration that drops `plan`.
fn accounts(p: &Project, url: &str, tag: &str, rows: u32) {
    let keel = |args: &[&str]| {
        let out = p
            .keel()
            .env("DATABASE_URL", url)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    };
    keel(&["up", "--to", "20260101000000", "-q"]);
    let sql = format!(
        "INSERT INTO accounts SELECT i, 'a' || i || '@{tag}', '{tag} plan ' || i, false \
         FROM generate_series(1, {rows}) i"
    );
    exec(url, &sql);
}

fn exec(url: &str, sql: &str) {
    let (url, sql) = (url.to_string(), sql.to_string());
    crate::common::block_on(async move {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(&sql).execute(&mut c).await.unwrap();
    });
}

fn plans(url: &str) -> Vec<String> {
    let url = url.to_string();
    crate::common::block_on(async move {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query_scalar("SELECT coalesce(plan, 'NULL') FROM accounts ORDER BY id")
            .fetch_all(&mut c)
            .await
            .unwrap()
    })
}

fn migrations(p: &Project) {
    p.migration(
        "20260101000000_accounts",
        "CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL, plan text, is_admin boolean NOT NULL DEFAULT false);\n",
        Some("DROP TABLE accounts;\n"),
        None,
    );
    p.migration(
        ID,
        "ALTER TABLE accounts DROP COLUMN plan;\n",
        Some("ALTER TABLE accounts ADD COLUMN plan text;\n"),
        Some("reversibility = \"partial\"\n"),
    );
}

fn archives(p: &Project) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(p.path().join("backups").join(ID))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "zip"))
        .collect();
    found.sort();
    found
}

/// Item 2: one project folder, the same migration applied on production
/// and then on staging. `down --env production` puts production's rows back
/// (not staging's, although staging's archive is newer), and staging's
/// archive is refused by production.
#[test]
fn a_backup_goes_back_only_into_the_database_it_came_from() {
    let p = Project::postgres();
    let staging = pg::server().fresh_database();
    migrations(&p);
    std::fs::write(
        p.path().join("keel.toml"),
        "[environments.production]\ndatabase_url_env = \"PROD_URL\"\n\
         [environments.staging]\ndatabase_url_env = \"STAGING_URL\"\n",
    )
    .unwrap();
    let keel = || {
        let mut k = p.keel();
        k.env("PROD_URL", &p.url).env("STAGING_URL", &staging);
        k
    };
    accounts(&p, &p.url, "prod", 40);
    accounts(&p, &staging, "staging", 30);
    let (prod_before, staging_before) = (plans(&p.url), plans(&staging));

    keel()
        .args(["up", "--env", "production", "-q"])
        .assert()
        .success();
    // A second later, so staging's archive is the newest in the folder.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    keel()
        .args(["up", "--env", "staging", "-q"])
        .assert()
        .success();
    let both = archives(&p);
    assert_eq!(both.len(), 2);

    let out = keel()
        .args(["down", "--env", "production"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(plans(&p.url), prod_before, "production's own rows");

    // Staging's archive names staging's database: production refuses it.
    let staging_archive = both
        .iter()
        .find(|a| {
            let text = std::process::Command::new("unzip")
                .args(["-p"])
                .arg(a)
                .arg("manifest.json")
                .output()
                .unwrap();
            String::from_utf8_lossy(&text.stdout).contains("\"environment\": \"staging\"")
        })
        .expect("staging's archive says so in its manifest")
        .clone();
    keel()
        .args(["up", "--env", "production", "-q"])
        .assert()
        .success();
    let out = keel()
        .args(["restore", "--env", "production"])
        .arg(&staging_archive)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("was taken from another database")
            && err.contains("environment `staging`")
            && err.contains("fix: connect to that database (`--env staging`)"),
        "{err}"
    );
    keel().args(["down", "--env", "staging"]).assert().success();
    assert_eq!(plans(&staging), staging_before, "staging's own rows");
}

/// Item 13: a self-consistent archive planted in the migration's folder
/// with a newer stamp is never restored; the genuine one, replaced by other
/// bytes, is refused.
#[test]
fn down_restores_only_the_archive_its_run_recorded() {
    let p = Project::postgres();
    migrations(&p);
    accounts(&p, &p.url, "prod", 100);
    let before = plans(&p.url);
    p.keel().args(["up", "-q"]).assert().success();
    let genuine = archives(&p).remove(0);

    // The planted archive: every account an admin, made by keel itself so
    // that it passes every check of its own (manifest, SHA-256s, rows).
    p.exec("UPDATE accounts SET is_admin = true");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    p.keel()
        .args([
            "backup",
            "create",
            V,
            "--table",
            "accounts",
            "--columns",
            "is_admin",
        ])
        .assert()
        .success();
    p.exec("UPDATE accounts SET is_admin = false");
    assert_eq!(archives(&p).len(), 2);

    let out = p.keel().arg("down").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("restored {}", relative(&p, &genuine))),
        "{}",
        stderr(&out)
    );
    assert_eq!(plans(&p.url), before);
    assert_eq!(
        p.scalar("SELECT count(*) FROM accounts WHERE is_admin")
            .as_deref(),
        Some("0"),
        "the planted archive was not restored"
    );

    // Up again; then the recorded archive's bytes are swapped for the
    // planted one's: down refuses (exit 4) and keeps the migration applied.
    p.keel().args(["up", "-q"]).assert().success();
    let recorded = archives(&p)
        .into_iter()
        .find(|a| *a != genuine && !is_planted(a))
        .expect("the second up's archive");
    let planted = archives(&p).into_iter().find(|a| is_planted(a)).unwrap();
    std::fs::copy(&planted, &recorded).unwrap();
    let out = p.keel().arg("down").output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("is not the archive 20260201000000_drop_plan recorded when it was applied")
            && err.contains("the down was rolled back: 20260201000000_drop_plan is still applied")
            && err.contains("fix: the file was replaced or changed"),
        "{err}"
    );
    assert_eq!(
        p.scalar("SELECT count(*) FROM keel_migrations WHERE version = '20260201000000'")
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        p.scalar("SELECT count(*) FROM accounts WHERE is_admin")
            .as_deref(),
        Some("0")
    );
    // The operator's way out, on purpose: revert without the data.
    let out = p.keel().args(["down", "--no-restore"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("(--no-restore)"), "{}", stderr(&out));
    assert_eq!(
        p.scalar("SELECT count(*) FROM accounts WHERE plan IS NULL")
            .as_deref(),
        Some("100")
    );
}

fn is_planted(archive: &Path) -> bool {
    let out = std::process::Command::new("unzip")
        .args(["-p"])
        .arg(archive)
        .arg("manifest.json")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains("is_admin")
}

fn relative(p: &Project, path: &Path) -> String {
    path.strip_prefix(p.path()).unwrap().display().to_string()
}

/// Item 16: an archive whose manifest inflates to gigabytes is refused
/// without reading it whole.
#[test]
fn a_manifest_bomb_is_refused() {
    let p = Project::sqlite();
    let bomb = p.path().join("bomb.zip");
    let status = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile\n\
             with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:\n\
             \x20   with z.open('manifest.json', 'w', force_zip64=True) as f:\n\
             \x20       block = b' ' * (1 << 20)\n\
             \x20       for _ in range(600): f.write(block)\n",
        ])
        .arg(&bomb)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(std::fs::metadata(&bomb).unwrap().len() < 2 << 20);
    let out = p
        .keel()
        .args(["backup", "verify"])
        .arg(&bomb)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("manifest.json is larger than 4 MiB"),
        "{}",
        stderr(&out)
    );
}

// A tracking table made by an earlier keel (without the backup columns)
// is upgraded in place and keeps its history.
both!(an_older_tracking_table_is_upgraded, |p: Project| {
    p.sample();
    let ts = match p.db {
        Db::Postgres => "timestamptz NOT NULL DEFAULT now()",
        Db::Sqlite => "TEXT NOT NULL",
    };
    p.exec(&format!(
        "CREATE TABLE keel_migrations (version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, \
         state text NOT NULL, applied_at {ts}, applied_by text NOT NULL, execution_ms bigint NOT NULL, \
         statements_done bigint NOT NULL DEFAULT 0, error text)"
    ));
    let out = p.keel().arg("status").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    p.keel().args(["up", "-q"]).assert().success();
    assert_eq!(
        p.scalar("SELECT count(*) FROM keel_migrations WHERE backup_sha256 IS NULL")
            .as_deref(),
        Some("4")
    );
    assert!(
        p.scalar("SELECT value FROM keel_meta WHERE key = 'database_id'")
            .is_some()
    );
});

/// A copy of the database (CREATE DATABASE … TEMPLATE, or a restored dump)
/// carries keel's id along, but not the server's identity: the archive
/// stays with the original.
#[test]
fn a_copy_of_the_database_does_not_take_its_backups() {
    let p = Project::postgres();
    migrations(&p);
    accounts(&p, &p.url, "prod", 10);
    p.keel().args(["up", "-q"]).assert().success();
    let archive = archives(&p).remove(0);
    let (base, query) = p.url.split_once('?').unwrap();
    let (server, name) = base.rsplit_once('/').unwrap();
    let copy_name = format!("{name}_copy");
    p.exec(&format!("CREATE DATABASE {copy_name} TEMPLATE {name}"));
    let copy = format!("{server}/{copy_name}?{query}");
    exec(&copy, "UPDATE accounts SET email = 'copy'");
    let out = p
        .keel()
        .env("DATABASE_URL", &copy)
        .arg("restore")
        .arg(&archive)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("was taken from another database"),
        "{}",
        stderr(&out)
    );
    let out = p.keel().arg("restore").arg(&archive).output().unwrap();
    assert!(
        !stderr(&out).contains("another database"),
        "{}",
        stderr(&out)
    );
}
