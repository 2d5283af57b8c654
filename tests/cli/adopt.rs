//! Coming from another tool: `keel import` writes its migrations in keel's
//! layout, `keel adopt` takes over its tracking table, and `keel up` then
//! applies exactly what is really pending. Each tool's layout and table are
//! built as the tool builds them: by sqlx-cli itself, and for the others
//! from their documented table definitions.

use crate::common::{Db, Project, stderr, stdout};
use sha2::{Digest, Sha256};

/// One tool's project: its files, its table with the rows it writes after
/// applying them, and the SQL the migrations ran.
struct Case {
    files: Vec<(String, String)>,
    table: String,
    schema: &'static str,
}

const USERS: &str = "CREATE TABLE users (id integer PRIMARY KEY);\n";
const EMAIL: &str = "ALTER TABLE users ADD COLUMN email text;\n";

/// `flyway_schema_history` as Flyway creates it (its documented columns).
const FLYWAY_TABLE: &str = "CREATE TABLE flyway_schema_history (installed_rank integer NOT NULL PRIMARY KEY, version varchar(50), description varchar(200) NOT NULL, type varchar(20) NOT NULL, script varchar(1000) NOT NULL, checksum integer, installed_by varchar(100) NOT NULL, installed_on timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, execution_time integer NOT NULL, success boolean NOT NULL);";

/// Flyway's checksums of USERS and EMAIL: java.util.zip.CRC32 of the
/// lines without their ends, signed (computed apart, with Python's
/// zlib.crc32).
const USERS_CRC: i32 = -1203868596;
const EMAIL_CRC: i32 = -596222700;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn case(tool: &'static str, db: Db) -> Case {
    let schema = "CREATE TABLE users (id integer PRIMARY KEY, email text);";
    let f = |p: &str, t: &str| (p.to_string(), t.to_string());
    let serial = if db == Db::Postgres {
        "serial"
    } else {
        "integer"
    };
    match tool {
        "dbmate" => Case {
            files: vec![
                f("20240101000001_users.sql", &format!("-- migrate:up\n{USERS}\n-- migrate:down\nDROP TABLE users;\n")),
                f("20240101000002_add-email.sql", &format!("-- migrate:up transaction:false\n{EMAIL}\n-- migrate:down\nALTER TABLE users DROP COLUMN email;\n")),
            ],
            table: "CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY);
                    INSERT INTO schema_migrations (version) VALUES ('20240101000001'), ('20240101000002');".into(),
            schema,
        },
        "golang-migrate" => Case {
            files: vec![
                f("000001_users.up.sql", USERS),
                f("000001_users.down.sql", "DROP TABLE users;\n"),
                f("000002_add-email.up.sql", EMAIL),
                f("000002_add-email.down.sql", "ALTER TABLE users DROP COLUMN email;\n"),
            ],
            table: "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
                    INSERT INTO schema_migrations (version, dirty) VALUES (2, false);".into(),
            schema,
        },
        "goose" => Case {
            files: vec![
                f("20240101000001_users.sql", &format!("-- +goose Up\n{USERS}-- +goose Down\nDROP TABLE users;\n")),
                f("20240101000002_add-email.sql", &format!("-- +goose NO TRANSACTION\n-- +goose Up\n-- +goose StatementBegin\n{EMAIL}-- +goose StatementEnd\n-- +goose Down\nALTER TABLE users DROP COLUMN email;\n")),
            ],
            table: format!("CREATE TABLE goose_db_version (id {serial} PRIMARY KEY, version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp NULL DEFAULT CURRENT_TIMESTAMP);
                    INSERT INTO goose_db_version (id, version_id, is_applied) VALUES (1, 0, true), (2, 20240101000001, true), (3, 20240101000002, true);"),
            schema,
        },
        "prisma" => Case {
            files: vec![
                f("20240101000001_users/migration.sql", USERS),
                f("20240101000002_add_email/migration.sql", EMAIL),
                f("migration_lock.toml", "provider = \"postgresql\"\n"),
            ],
            table: format!(
                "CREATE TABLE _prisma_migrations (id varchar(36) PRIMARY KEY, checksum varchar(64) NOT NULL, finished_at timestamp, migration_name varchar(255) NOT NULL, logs text, rolled_back_at timestamp, started_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP, applied_steps_count integer NOT NULL DEFAULT 0);
                 INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count) VALUES
                 ('a', '{}', CURRENT_TIMESTAMP, '20240101000001_users', 1),
                 ('b', '{}', CURRENT_TIMESTAMP, '20240101000002_add_email', 1);",
                hex(&Sha256::digest(USERS)),
                hex(&Sha256::digest(EMAIL))
            ),
            schema,
        },
        "diesel" => Case {
            files: vec![
                f("2024-01-01-000001_users/up.sql", USERS),
                f("2024-01-01-000001_users/down.sql", "DROP TABLE users;\n"),
                f("2024-01-01-000002_add-email/up.sql", EMAIL),
                f("2024-01-01-000002_add-email/down.sql", "ALTER TABLE users DROP COLUMN email;\n"),
                f("2024-01-01-000002_add-email/metadata.toml", "run_in_transaction = false\n"),
            ],
            table: "CREATE TABLE __diesel_schema_migrations (version varchar(50) PRIMARY KEY NOT NULL, run_on timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP);
                    INSERT INTO __diesel_schema_migrations (version) VALUES ('20240101000001'), ('20240101000002');".into(),
            schema,
        },
        "flyway" => Case {
            // V1 and V1.1 become keel's 10 and 11; U1 is V1's down; the
            // .conf runs V1.1 outside a transaction.
            files: vec![
                f("V1__users.sql", USERS),
                f("U1__users.sql", "DROP TABLE users;\n"),
                f("sub/V1.1__add_email.sql", EMAIL),
                f("sub/V1.1__add_email.sql.conf", "executeInTransaction=false\n"),
            ],
            table: format!("{FLYWAY_TABLE}
                    INSERT INTO flyway_schema_history VALUES
                    (1, '1', 'users', 'SQL', 'V1__users.sql', {USERS_CRC}, 'app', CURRENT_TIMESTAMP, 12, true),
                    (2, '1.1', 'add email', 'SQL', 'sub/V1.1__add_email.sql', {EMAIL_CRC}, 'app', CURRENT_TIMESTAMP, 3, true);"),
            schema,
        },
        other => panic!("no case for {other}"),
    }
}

/// The tool's folder in the project, as the tool left the database.
fn migrated_by(p: &Project, c: &Case) {
    for (path, text) in &c.files {
        let path = p.path().join("theirs").join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    p.exec(c.schema);
    p.exec(&c.table);
}

fn the_whole_way(p: &Project, tool: &'static str) {
    let c = case(tool, p.db);
    migrated_by(p, &c);
    // Before adopting: keel would run everything again, so it refuses.
    p.test(["import", "--from", tool, "theirs"])
        .stderr_contains(&format!(
            "imported 2 {tool} migration(s) into migrations: 2 new, 0 already there"
        ))
        .run();
    p.test(["up"])
        .stderr_contains(&format!("this database was migrated by {tool}"))
        .stderr_contains(&format!(
            "fix: `keel import --from {tool} SRC` if its files"
        ))
        .code(4)
        .run();
    p.test(["status"])
        .stdout_contains(&format!("this database was migrated by {tool}"))
        .run();
    // A re-import changes nothing.
    p.test(["import", "--from", tool, "theirs"])
        .stderr_contains("0 new, 2 already there and unchanged")
        .run();
    p.test(["adopt", "--from", tool])
        .stderr_contains("2 migration(s) recorded as applied")
        .run();
    let doc = p.test(["status", "--format", "json"]).run().json();
    let states: Vec<&str> = doc["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["applied", "applied"], "{doc:#}");
    // The second one ran outside a transaction in the tool: so it does in keel.
    let dirs: Vec<String> = std::fs::read_dir(p.path().join("migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let second = dirs.iter().find(|d| d.ends_with("email")).unwrap();
    let toml = std::fs::read_to_string(
        p.path()
            .join("migrations")
            .join(second)
            .join("migration.toml"),
    )
    .unwrap();
    assert!(
        toml.contains(&format!("imported_from = \"{tool}: ")),
        "{toml}"
    );
    if tool != "prisma" && tool != "golang-migrate" {
        assert!(toml.contains("transaction = false"), "{tool}: {toml}");
    }
    only_a_new_migration_runs(p);
    // The tool's own table is left as it was.
    assert!(
        p.scalar(&format!("SELECT count(*) FROM {}", table(tool)))
            .unwrap()
            != "0"
    );
}

fn table(tool: &str) -> &'static str {
    match tool {
        "dbmate" | "golang-migrate" => "schema_migrations",
        "goose" => "goose_db_version",
        "prisma" => "_prisma_migrations",
        "flyway" => "flyway_schema_history",
        _ => "__diesel_schema_migrations",
    }
}

both!(from_dbmate, |p: Project| the_whole_way(&p, "dbmate"));
both!(from_diesel, |p: Project| the_whole_way(&p, "diesel"));
both!(from_goose, |p: Project| the_whole_way(&p, "goose"));
both!(from_flyway, |p: Project| {
    the_whole_way(&p, "flyway");
    // Dotted versions keep Flyway's order in keel's numbers; U1 is V1's down.
    let users = p.path().join("migrations/00000000000010_users");
    assert_eq!(
        std::fs::read_to_string(users.join("down.sql")).unwrap(),
        "DROP TABLE users;\n"
    );
    assert!(
        p.path()
            .join("migrations/00000000000011_add_email/up.sql")
            .is_file()
    );
});

/// A Flyway baseline stands for every version up to it; a repeatable
/// becomes one migration after the versioned ones, applied when Flyway's
/// latest run of it had the file's checksum, pending when the file changed
/// since (Flyway would run it again; so does `keel up`); a changed
/// versioned file is refused with both CRC-32s.
#[test]
fn flyway_baseline_repeatables_and_a_changed_file() {
    let p = Project::postgres();
    let view_then = "CREATE VIEW user_emails AS SELECT email FROM users;\n";
    let view_now = "CREATE OR REPLACE VIEW user_emails AS SELECT email, id FROM users;\n";
    for (path, text) in [
        ("V1__users.sql", USERS),
        ("V2__add_email.sql", EMAIL),
        ("R__user_emails.sql", view_now),
    ] {
        let path = p.path().join("theirs").join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    p.exec("CREATE TABLE users (id integer PRIMARY KEY, email text)");
    p.exec(view_then);
    // Flyway baselined the database at 1, then ran V2 and the repeatable's
    // older text (329799201 is CRC-32 of `view_then`'s line).
    p.exec(&format!(
        "{FLYWAY_TABLE}
         INSERT INTO flyway_schema_history VALUES
         (1, '1', '<< Flyway Baseline >>', 'BASELINE', '<< Flyway Baseline >>', NULL, 'app', now(), 0, true),
         (2, '2', 'add email', 'SQL', 'V2__add_email.sql', {EMAIL_CRC}, 'app', now(), 4, true),
         (3, NULL, 'user emails', 'SQL', 'R__user_emails.sql', 329799201, 'app', now(), 2, true);"
    ));
    p.test(["import", "--from", "flyway", "theirs"])
        .stderr_contains("imported 3 flyway migration(s)")
        .run();
    assert!(
        p.path()
            .join("migrations/00000000000003_user_emails/up.sql")
            .is_file()
    );
    p.test(["adopt", "--from", "flyway"])
        .stdout_contains("applied  00000000000001_users (adopted from flyway)")
        .stdout_contains("applied  00000000000002_add_email (adopted from flyway)")
        .stderr_contains("2 migration(s) recorded as applied")
        .run();
    p.test(["up"])
        .stderr_contains("1 migration(s) applied")
        .run();
    assert_eq!(
        p.scalar(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'user_emails'"
        ),
        Some("2".into())
    );

    // A versioned file that changed after Flyway ran it is refused.
    let q = Project::postgres();
    std::fs::create_dir_all(q.path().join("theirs")).unwrap();
    std::fs::write(
        q.path().join("theirs/V1__users.sql"),
        "-- edited\n".to_string() + USERS,
    )
    .unwrap();
    q.exec(USERS);
    q.exec(&format!(
        "{FLYWAY_TABLE}
         INSERT INTO flyway_schema_history VALUES
         (1, '1', 'users', 'SQL', 'V1__users.sql', {USERS_CRC}, 'app', now(), 12, true);"
    ));
    q.test(["import", "--from", "flyway", "theirs"]).run();
    q.test(["adopt", "--from", "flyway"])
        .stderr_contains(&format!(
            "the file differs from what flyway applied (CRC32 {USERS_CRC} in flyway_schema_history"
        ))
        .code(4)
        .run();
}

#[test]
fn from_golang_migrate() {
    let p = Project::postgres();
    the_whole_way(&p, "golang-migrate");
    // Its versions are kept: 1 and 2, as keel's 14 digits.
    assert!(
        p.path()
            .join("migrations/00000000000001_users/up.sql")
            .is_file()
    );
    assert!(
        p.path()
            .join("migrations/00000000000002_add-email/down.sql")
            .is_file()
    );
}

#[test]
fn from_prisma_with_its_checksums() {
    let p = Project::postgres();
    the_whole_way(&p, "prisma");
}

#[test]
fn a_prisma_file_changed_since_it_ran_is_refused() {
    let p = Project::postgres();
    let c = case("prisma", p.db);
    migrated_by(&p, &c);
    p.test(["import", "--from", "prisma", "theirs"]).run();
    std::fs::write(
        p.path().join("migrations/20240101000002_add_email/up.sql"),
        "ALTER TABLE users ADD COLUMN email varchar(200);\n",
    )
    .unwrap();
    p.test(["adopt", "--from", "prisma"])
        .stderr_contains(
            "20240101000002_add_email: the file differs from what prisma applied (SHA-256 ",
        )
        .stderr_contains("nothing was written")
        .code(4)
        .run();
    // Refused before keel made its own table.
    assert_eq!(
        p.scalar("SELECT count(*) FROM pg_tables WHERE tablename = 'keel_migrations'")
            .as_deref(),
        Some("0")
    );
}

#[test]
fn a_dirty_golang_migrate_database_is_refused() {
    let p = Project::postgres();
    let c = case("golang-migrate", p.db);
    migrated_by(&p, &c);
    p.exec("UPDATE schema_migrations SET dirty = true");
    p.test(["import", "--from", "golang-migrate", "theirs"])
        .run();
    p.test(["adopt", "--from", "golang-migrate"])
        .stderr_contains("schema_migrations says version 00000000000002 is dirty")
        .code(4)
        .run();
}

#[test]
fn baseline_marks_a_history_less_database_and_up_runs_the_rest() {
    let p = Project::sqlite();
    p.migration("20240101000001_users", USERS, None, None);
    p.migration("20240101000002_email", EMAIL, None, None);
    p.migration(
        "20240101000003_audit",
        "CREATE TABLE audit (id integer);\n",
        None,
        None,
    );
    p.exec(USERS);
    p.exec(EMAIL);
    p.test(["baseline", "20240101000009"]).code(2).run();
    p.test(["baseline", "20240101000002"])
        .stdout_contains("applied  20240101000002_email (baselined)")
        .run();
    p.test(["up"])
        .stderr_contains("1 migration(s) applied")
        .run();
    p.test(["baseline", "20240101000002"])
        .stderr_contains("keel already tracks 3 migration(s)")
        .code(4)
        .run();
}

/// sqlx-cli itself makes the layout's table: `sqlx migrate run`.
#[test]
fn from_sqlx_with_sqlx_cli_and_its_sha384_checksums() {
    let p = Project::postgres();
    let theirs = p.path().join("theirs");
    std::fs::create_dir_all(&theirs).unwrap();
    for (name, text) in [
        ("20240101000001_create-users.up.sql", USERS.to_string()),
        (
            "20240101000001_create-users.down.sql",
            "DROP TABLE users;\n".to_string(),
        ),
        ("20240101000002_add.email.up.sql", EMAIL.to_string()),
        (
            "20240101000002_add.email.down.sql",
            "ALTER TABLE users DROP COLUMN email;\n".to_string(),
        ),
        (
            "20240101000003_index.up.sql",
            "-- no-transaction\nCREATE INDEX CONCURRENTLY users_email ON users (email);\n"
                .to_string(),
        ),
        (
            "20240101000003_index.down.sql",
            "DROP INDEX CONCURRENTLY users_email;\n".to_string(),
        ),
    ] {
        std::fs::write(theirs.join(name), text).unwrap();
    }
    let sqlx = sqlx_cli();
    let ran = std::process::Command::new(&sqlx)
        .args(["migrate", "run", "--source"])
        .arg(&theirs)
        .args(["--database-url", &p.url])
        .output()
        .unwrap_or_else(|e| panic!("sqlx-cli ({}): {e}", sqlx.display()));
    assert!(ran.status.success(), "{}", stderr(&ran));
    p.test(["import", "--from", "sqlx", "theirs"])
        .stderr_contains("3 new")
        .stderr_contains("1 run outside a transaction")
        .run();
    let out = p.keel().args(["adopt", "--from", "sqlx"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("applied  20240101000002_add.email (adopted from sqlx)"),
        "{}",
        stdout(&out)
    );
    only_a_new_migration_runs(&p);
    let by: Vec<Vec<Option<String>>> =
        p.rows("SELECT applied_by FROM keel_migrations ORDER BY version");
    assert!(
        by[0][0]
            .as_deref()
            .unwrap()
            .ends_with("(adopted from sqlx)"),
        "{by:?}"
    );
}

/// sqlx-cli: `KEEL_TEST_SQLX`, else `sqlx` on the PATH, else installed
/// once from crates.io into the test target folder (a few minutes, the
/// first time only).
fn sqlx_cli() -> std::path::PathBuf {
    if let Some(p) = given("KEEL_TEST_SQLX", "sqlx") {
        return p;
    }
    let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sqlx-cli");
    let bin = root.join("bin").join("sqlx");
    if !bin.is_file() {
        eprintln!("installing sqlx-cli 0.8.6 into {} (once)", root.display());
        let out = std::process::Command::new(env!("CARGO"))
            .args([
                "install",
                "sqlx-cli",
                "--version",
                "0.8.6",
                "--locked",
                "--quiet",
                "--no-default-features",
                "--features",
                "postgres,rustls",
                "--root",
            ])
            .arg(&root)
            .env("CARGO_TARGET_DIR", root.join("build"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cargo install sqlx-cli: {}",
            stderr(&out)
        );
    }
    bin
}

/// dbmate itself (its npm build) makes the layout's table.
#[test]
fn from_dbmate_with_dbmate_itself() {
    let p = Project::postgres();
    let c = case("dbmate", Db::Postgres);
    for (path, text) in &c.files {
        let path = p.path().join("theirs").join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    // dbmate takes the socket folder as `socket=`.
    let (base, query) = p.url.split_once('?').unwrap();
    let socket = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("host="))
        .unwrap();
    let db = base.rsplit('/').next().unwrap();
    let url = format!("postgres://postgres@/{db}?socket={socket}&port=5432&sslmode=disable");
    let ran = std::process::Command::new(dbmate())
        .args(["--url", &url, "--migrations-dir"])
        .arg(p.path().join("theirs"))
        .args(["--no-dump-schema", "migrate"])
        .output()
        .unwrap();
    assert!(ran.status.success(), "{}{}", stdout(&ran), stderr(&ran));
    p.test(["import", "--from", "dbmate", "theirs"]).run();
    p.test(["up"])
        .stderr_contains("this database was migrated by dbmate")
        .code(4)
        .run();
    p.test(["adopt", "--from", "dbmate"])
        .stderr_contains("2 migration(s) recorded as applied")
        .run();
    only_a_new_migration_runs(&p);
    assert_eq!(
        p.scalar("SELECT count(*) FROM schema_migrations")
            .as_deref(),
        Some("2"),
        "dbmate's own table is left as it was"
    );
}

/// dbmate: `KEEL_TEST_DBMATE`, else `dbmate` on the PATH, else its npm
/// build installed once into the test target folder.
fn dbmate() -> std::path::PathBuf {
    if let Some(p) = given("KEEL_TEST_DBMATE", "dbmate") {
        return p;
    }
    let prefix = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dbmate-2.36.0");
    let bin = prefix.join("node_modules/.bin/dbmate");
    if !bin.is_file() {
        std::fs::create_dir_all(&prefix).unwrap();
        let out = std::process::Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .arg("dbmate@2.36.0")
            .output()
            .expect("npm (node) is needed to install dbmate; .ci/run installs it");
        assert!(out.status.success(), "npm install dbmate: {}", stderr(&out));
    }
    bin
}

/// A tool's binary from `$var`, else `name` on the PATH.
fn given(var: &str, name: &str) -> Option<std::path::PathBuf> {
    if let Ok(p) = std::env::var(var) {
        return Some(p.into());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

// A table of the same name that holds another history (Rails keeps its
// versions in `schema_migrations` too) names none of keel's migrations:
// keel goes on beside it.
both!(
    an_unrelated_history_of_the_same_name_does_not_block_keel,
    |p: Project| {
        p.exec(
            "CREATE TABLE schema_migrations (version varchar(255) PRIMARY KEY);
         INSERT INTO schema_migrations (version) VALUES ('20190101000000'), ('20190102000000');",
        );
        p.migration(
            "20240101000001_users",
            USERS,
            Some("DROP TABLE users;\n"),
            None,
        );
        p.migration("20240101000002_email", EMAIL, None, None);
        p.test(["status"])
            .stdout_contains("0 applied, 2 pending")
            .run();
        p.test(["baseline", "20240101000001"])
            .stdout_contains("applied  20240101000001_users (baselined)")
            .run();
        p.exec(USERS);
        p.test(["up"])
            .stderr_contains("1 migration(s) applied")
            .run();
    }
);

/// A keel migration written after the takeover: `keel up` runs it, alone.
fn only_a_new_migration_runs(p: &Project) {
    p.migration(
        "20260601000000_audit",
        "CREATE TABLE audit (id integer);\n",
        None,
        None,
    );
    p.test(["up"])
        .stderr_contains("applied  20260601000000_audit")
        .stderr_contains("1 migration(s) applied")
        .run();
}
