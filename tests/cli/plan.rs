//! `keel plan V`: statements with locks, rewrites and scans, the tables
//! touched with their sizes, reversibility, backups, findings and the
//! estimated time — from the files and the live PostgreSQL schema.

use crate::common::{Project, stderr, stdout};

const TIGHTEN: &str = "\
ALTER TABLE users ALTER COLUMN id TYPE text;
-- keel:allow drop-column reason=\"name moved to profiles in v2.3\"
ALTER TABLE users DROP COLUMN name;
CREATE TABLE audit (id bigint PRIMARY KEY, user_id bigint);
CREATE INDEX audit_user_idx ON audit (user_id);
";

fn tighten(p: &Project) {
    p.migration(
        "20260201090000_tighten_users",
        TIGHTEN,
        Some("DROP TABLE audit;\nALTER TABLE users ADD COLUMN name text;\nALTER TABLE users ALTER COLUMN id TYPE bigint USING id::bigint;\n"),
        Some("reversibility = \"partial\"\n"),
    );
}

/// The server's version varies between machines; the rest is fixed on
/// empty tables with the default coefficients.
fn redact_version(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("PostgreSQL ") {
        out.push_str(&rest[..i + "PostgreSQL ".len()]);
        rest = &rest[i + "PostgreSQL ".len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if end > 0 {
            out.push_str("[version]");
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn plan_text_on_the_sample_schema() {
    let p = Project::postgres();
    p.sample();
    p.keel().arg("up").assert().success();
    tighten(&p);
    let out = p.keel().args(["plan", "20260201090000"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    insta::assert_snapshot!(redact_version(&stdout(&out)));
    assert!(!p.table_exists("audit"), "plan changes nothing");
}

#[test]
fn plan_json_has_the_documented_shape_with_table_sizes() {
    let p = Project::postgres();
    p.sample();
    p.keel().arg("up").assert().success();
    p.exec(
        "INSERT INTO users (id, email, name) SELECT g, 'u' || g || '@example.com', 'n' || g
           FROM generate_series(1, 50000) g",
    );
    p.exec("VACUUM ANALYZE users");
    tighten(&p);
    let out = p
        .keel()
        .args(["plan", "20260201090000", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    for key in [
        "version",
        "statements",
        "reversibility",
        "backups",
        "findings",
        "estimated_ms",
    ] {
        assert!(json.get(key).is_some(), "missing {key}: {json:#}");
    }
    assert_eq!(json["version"], "20260201090000");
    assert_eq!(json["state"], "pending");
    let first = &json["statements"][0];
    for key in ["sql", "line", "lock", "rewrite", "scan", "tables"] {
        assert!(first.get(key).is_some(), "missing statements[].{key}");
    }
    assert_eq!(first["sql"], "ALTER TABLE users ALTER COLUMN id TYPE text");
    assert_eq!(first["line"], 1);
    assert_eq!(first["lock"], "ACCESS EXCLUSIVE");
    assert_eq!(first["rewrite"], true);
    assert_eq!(first["cost"], "rewrite");
    assert_eq!(first["tables"][0]["name"], "users");
    assert_eq!(first["tables"][0]["rows"], 50000.0);
    assert_eq!(first["tables"][0]["indexes"], 2);
    assert!(first["tables"][0]["bytes"].as_i64().unwrap() > 1_000_000);
    assert!(first["estimated_ms"].as_u64().unwrap() >= 1);
    assert_eq!(json["statements"][2]["tables"][0]["new"], true);
    assert_eq!(json["reversibility"], "partial");
    assert_eq!(json["backups"][0]["columns"][0], "name");
    assert_eq!(json["findings"][0]["rule"], "change-column-type");
    assert!(
        json["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("(users: 50k rows, "),
        "{}",
        json["findings"][0]["message"]
    );
    let total = json["estimated_ms"].as_u64().unwrap();
    assert!(total >= first["estimated_ms"].as_u64().unwrap());
    assert_eq!(json["locks_held"][0]["table"], "users");
    assert_eq!(json["locks_held"][0]["ms"], total, "held until COMMIT");
}

#[test]
fn a_pending_set_makes_earlier_tables_new_and_calibration_is_used() {
    let p = Project::postgres();
    p.sample();
    p.keel().arg("up").assert().success();
    p.keel()
        .args(["calibrate", "--rows", "10000"])
        .assert()
        .success();
    p.migration(
        "20260201090000_add_audit",
        "CREATE TABLE audit (id bigint PRIMARY KEY, user_id bigint);\n",
        Some("DROP TABLE audit;\n"),
        None,
    );
    p.migration(
        "20260202090000_index_audit",
        "CREATE INDEX audit_user_idx ON audit (user_id);\n",
        Some("DROP INDEX audit_user_idx;\n"),
        None,
    );
    let out = p.keel().args(["plan", "20260202090000"]).output().unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        text.contains("     audit: new in this set, empty\n"),
        "{text}"
    );
    assert!(text.contains("findings: none\n"), "{text}");
    assert!(
        text.contains("  (coefficients from keel calibrate ("),
        "{text}"
    );
    // Once applied, plan still explains it, on its own.
    p.keel().arg("up").assert().success();
    let out = p.keel().args(["plan", "20260202090000"]).output().unwrap();
    assert!(
        stdout(&out).starts_with("plan for 20260202090000_index_audit (applied, one transaction)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn backfill_is_estimated_apart_from_the_statements() {
    let p = Project::postgres();
    p.sample();
    p.keel().arg("up").assert().success();
    p.exec("INSERT INTO users (id, email) SELECT g, 'u' || g FROM generate_series(1, 20000) g");
    p.exec("VACUUM ANALYZE users");
    p.migration(
        "20260201090000_lower_emails",
        "ALTER TABLE users ADD COLUMN email_lower text;\n",
        Some("ALTER TABLE users DROP COLUMN email_lower;\n"),
        Some(
            "[backfill]\ntable = \"users\"\nkey = \"id\"\nset = { email_lower = \"lower(email)\" }\nbatch_size = 500\n",
        ),
    );
    let out = p
        .keel()
        .args(["plan", "20260201090000", "--format", "json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["backfill"]["table"], "users");
    assert_eq!(json["backfill"]["rows"], 20000.0);
    assert_eq!(json["backfill"]["batches"], 40);
    assert!(json["backfill"]["estimated_ms"].as_f64().unwrap() > 0.0);
    let out = p.keel().args(["plan", "20260201090000"]).output().unwrap();
    assert!(
        stdout(&out).contains("backfill of users: up to 20k rows in 40 batches of 500, ~"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn on_sqlite_the_plan_says_what_it_cannot_show() {
    let p = Project::sqlite();
    p.sample();
    let out = p.keel().args(["plan", "20260101090000"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with(
            "plan for 20260101090000_create_users (pending, one transaction) on SQLite\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("lock levels, table sizes and estimates model PostgreSQL; not shown here")
    );
    assert!(text.contains("  1. line 4: CREATE TABLE users ("), "{text}");
    assert!(!text.contains("estimated time"), "{text}");
    let out = p
        .keel()
        .args(["plan", "20260101090000", "--format", "json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["estimated_ms"], serde_json::Value::Null);
    assert_eq!(json["statements"][0]["line"], 4);
}

#[test]
fn an_unknown_version_is_a_usage_error() {
    let p = Project::sqlite();
    p.sample();
    let out = p.keel().args(["plan", "20990101000000"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("there is no migration `20990101000000`"));
}

#[test]
fn plan_save_keeps_the_sizes_that_give_the_runbook_its_expected_time_and_blast_radius() {
    let p = Project::postgres();
    p.sample();
    p.keel().arg("up").assert().success();
    p.keel().args(["seed", "--scale", "1"]).assert().success();
    p.exec("CREATE VIEW active_users AS SELECT id FROM users");
    tighten(&p);
    std::fs::write(
        p.path().join("keel.toml"),
        "[environments.production]\ndatabase_url_env = \"PROD_URL\"\n",
    )
    .unwrap();
    let keel = || {
        let mut c = p.keel();
        c.env("PROD_URL", &p.url).env_remove("DATABASE_URL");
        c
    };
    // Before any measurement the runbook says how to get one.
    keel()
        .args(["runbook", "20260201090000"])
        .assert()
        .success();
    let runbook = p.path().join("runbooks/20260201090000_tighten_users.md");
    let text = std::fs::read_to_string(&runbook).unwrap();
    assert!(
        text.contains("Expected execution time: unknown: run `keel plan 20260201090000 --env production --save`"),
        "{text}"
    );
    let out = keel()
        .args(["plan", "20260201090000", "--env", "production", "--save"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("runbooks/sizes/production.json"),
        "{}",
        stderr(&out)
    );
    let kept = std::fs::read_to_string(p.path().join("runbooks/sizes/production.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&kept).unwrap();
    assert_eq!(json["environment"], "production");
    assert!(!kept.contains(&p.url), "no URL is kept");
    let users = json["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "users")
        .expect("users measured");
    assert!(users["total_bytes"].as_i64().unwrap() > 0);
    assert!(
        !json["tables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "keel_migrations"),
        "keel's own tables are not the project's"
    );
    keel()
        .args(["runbook", "20260201090000"])
        .assert()
        .success();
    let text = std::fs::read_to_string(&runbook).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("Expected execution time:"))
        .unwrap();
    assert!(
        line.starts_with("Expected execution time: \\~") && line.contains("by `keel plan --save`"),
        "{line}"
    );
    let users_row = text.lines().find(|l| l.starts_with("| users |")).unwrap();
    assert!(
        users_row.contains("| ACCESS EXCLUSIVE | yes |"),
        "{users_row}"
    );
    assert!(users_row.contains("production: 1"), "{users_row}");
    assert!(
        users_row.contains("view public.active\\_users"),
        "{users_row}"
    );
    assert!(
        users_row.contains("foreign key public.posts.posts\\_user\\_id\\_fkey"),
        "{users_row}"
    );
    // keel calibrate --save keeps the measured coefficients with the sizes.
    let out = keel()
        .args([
            "calibrate",
            "--env",
            "production",
            "--save",
            "--rows",
            "10000",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let kept = std::fs::read_to_string(p.path().join("runbooks/sizes/production.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&kept).unwrap();
    assert!(
        json["calibration"]["measured_at"].is_string(),
        "the coefficients calibrate measured: {kept}"
    );
    keel()
        .args(["runbook", "20260201090000"])
        .assert()
        .success();
    let text = std::fs::read_to_string(&runbook).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("Expected execution time:")
                && l.contains("coefficients from keel calibrate")),
        "{text}"
    );
    // --save needs an environment to keep the sizes under.
    let out = p
        .keel()
        .args(["plan", "20260201090000", "--save"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--env NAME"), "{}", stderr(&out));
    // A kept file keel cannot read is named, with the fix.
    std::fs::write(
        p.path().join("runbooks/sizes/production.json"),
        "{\"environment\": 1}",
    )
    .unwrap();
    let out = keel().args(["runbook", "20260201090000"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("production.json") && err.contains("fix:"),
        "{err}"
    );
}
