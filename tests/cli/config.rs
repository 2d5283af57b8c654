//! Choosing the database: --database-url, --env through keel.toml,
//! DATABASE_URL, else the embedded default.

use crate::common::{Project, stderr};

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
    p.test(["--env", "staging", "up"])
        .env("STAGING_DATABASE_URL", &staging)
        .run();
    assert!(p.path().join("staging.db").exists());
    assert!(
        !p.path().join("keel.db").exists(),
        "DATABASE_URL was not used"
    );

    p.test(["--env", "staging", "status"])
        .env_remove("STAGING_DATABASE_URL")
        .stderr_contains("environment `staging` reads its database URL from $STAGING_DATABASE_URL, which is not set")
        .code(2)
        .run();

    p.test(["--env", "prod", "status"])
        .stderr_contains("environment `prod` is not in keel.toml (it has: staging)")
        .code(2)
        .run();
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
    p.test(["status"])
        .stderr_contains("keel.toml:4:1: unknown field `database_url`")
        .code(2)
        .run();
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
    p.test(["status"])
        .stdout_contains("20250101000001  a     pending")
        .run();
    // A folder that is not there is a mistake, not an empty project.
    p.test(["status", "--migrations", "nowhere"])
        .stderr_contains("there is no migrations folder `nowhere` here")
        .code(2)
        .run();
    p.test(["up", "--migrations", "nowhere"])
        .stderr_contains("fix: run keel in the project folder")
        .code(2)
        .run();
}

#[test]
fn dot_env_is_read_and_the_real_environment_wins() {
    let p = Project::sqlite();
    p.migration(
        "20250101000001_a",
        "CREATE TABLE a (id integer);\n",
        None,
        None,
    );
    std::fs::write(
        p.path().join(".env"),
        "# as sqlx-cli and dbmate read it\nDATABASE_URL=\"sqlite://from-dotenv.db\"\n",
    )
    .unwrap();
    p.test(["up", "-q"]).env_remove("DATABASE_URL").run();
    assert!(p.path().join("from-dotenv.db").is_file());
    // With DATABASE_URL set, .env does not change it.
    p.test(["up", "-q"]).run();
    assert_eq!(
        p.scalar("SELECT count(*) FROM keel_migrations").as_deref(),
        Some("1")
    );
}
