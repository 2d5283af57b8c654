//! Choosing the database: --database-url, --env through keel.toml,
//! DATABASE_URL, else the embedded default.

use crate::common::{Project, stderr, stdout};

#[test]
fn env_reads_the_url_from_the_variable_keel_toml_names() {
    let p = Project::sqlite();
    p.sample();
    std::fs::write(
        p.path().join("keel.toml"),
        "[environments.staging]\ndatabase_url_env = \"STAGING_DATABASE_URL\"\n",
    )
    .unwrap();
    let staging = format!("sqlite://{}/staging.db", p.path().display());
    p.keel()
        .args(["--env", "staging", "up"])
        .env("STAGING_DATABASE_URL", &staging)
        .assert()
        .success();
    assert!(p.path().join("staging.db").exists());
    assert!(
        !p.path().join("keel.db").exists(),
        "DATABASE_URL was not used"
    );

    let out = p
        .keel()
        .args(["--env", "staging", "status"])
        .env_remove("STAGING_DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("environment `staging` reads its database URL from $STAGING_DATABASE_URL, which is not set"), "{}", stderr(&out));

    let out = p.keel().args(["--env", "prod", "status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("environment `prod` is not in keel.toml (it has: staging)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn without_any_url_the_embedded_default_is_created_in_the_current_folder() {
    let p = Project::sqlite();
    p.sample();
    p.keel()
        .arg("up")
        .env_remove("DATABASE_URL")
        .assert()
        .success();
    assert!(p.path().join("keel.db").exists());
    let out = p
        .keel()
        .args(["status", "-v"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("database: sqlite://keel.db (SQLite)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn keel_toml_is_parsed_strictly() {
    let p = Project::sqlite();
    std::fs::write(
        p.path().join("keel.toml"),
        "migrations_dir = \"db\"\n\n[environments.prod]\ndatabase_url = \"x\"\n",
    )
    .unwrap();
    let out = p.keel().arg("status").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("keel.toml:4:1: unknown field `database_url`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn migrations_dir_from_keel_toml_and_flag() {
    let p = Project::sqlite();
    std::fs::create_dir_all(p.path().join("db/migrations/20250101000001_a")).unwrap();
    std::fs::write(
        p.path().join("db/migrations/20250101000001_a/up.sql"),
        "CREATE TABLE a (id bigint);",
    )
    .unwrap();
    std::fs::write(
        p.path().join("keel.toml"),
        "migrations_dir = \"db/migrations\"\n",
    )
    .unwrap();
    let out = p.keel().arg("status").output().unwrap();
    assert!(
        stdout(&out).contains("20250101000001  a     pending"),
        "{}",
        stdout(&out)
    );
    let out = p
        .keel()
        .args(["status", "--migrations", "nowhere"])
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("no migrations in nowhere"),
        "{}",
        stdout(&out)
    );
}
