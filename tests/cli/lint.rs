//! `keel lint`: the safety checker on migration folders and SQL files.
//! Linting reads files only, so these scenarios use the SQLite project.

use crate::common::{Project, stderr, stdout};

const TIGHTEN_UP: &str = "\
ALTER TABLE users ADD COLUMN tenant_id bigint NOT NULL;
-- keel:allow drop-column reason=\"name moved to profiles in v2.3\"
ALTER TABLE users DROP COLUMN name;
CREATE TABLE audit (id int PRIMARY KEY);
";

fn write(p: &Project, file: &str, sql: &str) {
    std::fs::write(p.path().join(file), sql).unwrap();
}

fn tighten(p: &Project) {
    p.migration(
        "20260201090000_tighten_users",
        TIGHTEN_UP,
        Some("ALTER TABLE users DROP COLUMN tenant_id;\nALTER TABLE users ADD COLUMN name text;\nDROP TABLE audit;\n"),
        Some("reversibility = \"partial\"\n"),
    );
}

#[test]
fn the_sample_migrations_are_clean() {
    let p = Project::sqlite();
    p.sample();
    let out = p.keel().arg("lint").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "no findings in 8 files\n");
}

#[test]
fn text_output_and_exit_code_3_on_errors() {
    let p = Project::sqlite();
    tighten(&p);
    let out = p.keel().arg("lint").output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stdout(&out),
        "\
migrations/20260201090000_tighten_users/up.sql:1:19: error[add-column-required] adding users.tenant_id as NOT NULL without a DEFAULT fails on any table that has rows (\"column contains null values\"): it works in development and breaks in production
    ALTER TABLE users ADD COLUMN tenant_id bigint NOT NULL
    fix: give it a constant DEFAULT (PostgreSQL 11+ stores it without a rewrite), or add it nullable, backfill, and follow the set-not-null path

migrations/20260201090000_tighten_users/up.sql:4:21: info[prefer-bigint] key column audit.id is integer: it runs out at 2,147,483,647 and widening it later rewrites the table (and every table that references it)
    CREATE TABLE audit (id int PRIMARY KEY)
    fix: declare id as bigint

2 findings (1 error, 0 warnings, 1 info) in 2 files; 1 silenced by keel:allow
"
    );
    assert_eq!(
        stderr(&out),
        "error: lint found 1 error; fix them or silence one with `-- keel:allow RULE reason=\"…\"` above the statement\n"
    );
}

#[test]
fn warnings_and_info_alone_exit_0() {
    let p = Project::sqlite();
    p.migration(
        "20260201090000_add_audit",
        "CREATE TABLE audit (id serial PRIMARY KEY, at timestamp);\n",
        Some("DROP TABLE audit;\n"),
        None,
    );
    let out = p.keel().arg("lint").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).ends_with("3 findings (0 errors, 0 warnings, 3 info) in 2 files\n"));
}

#[test]
fn json_has_the_documented_shape() {
    let p = Project::sqlite();
    tighten(&p);
    let out = p
        .keel()
        .args(["lint", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let findings = json["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2);
    for key in [
        "rule",
        "severity",
        "file",
        "line",
        "column",
        "statement",
        "message",
        "suggestion",
    ] {
        assert!(findings[0].get(key).is_some(), "missing {key}");
    }
    assert_eq!(findings[0]["rule"], "add-column-required");
    assert_eq!(findings[0]["line"], 1);
    assert_eq!(json["allowed"][0]["rule"], "drop-column");
    assert_eq!(
        json["allowed"][0]["allowed"],
        "name moved to profiles in v2.3"
    );
}

#[test]
fn github_annotations() {
    let p = Project::sqlite();
    tighten(&p);
    let out = p
        .keel()
        .args(["lint", "--format", "github"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].starts_with(
            "::error file=migrations/20260201090000_tighten_users/up.sql,line=1,col=19,title=keel add-column-required::adding users.tenant_id"
        ),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("%0Afix: give it a constant DEFAULT"));
    assert!(lines[1].starts_with("::notice file="), "{}", lines[1]);
}

#[test]
fn sarif_is_2_1_0() {
    let p = Project::sqlite();
    tighten(&p);
    let out = p
        .keel()
        .args(["lint", "--format", "sarif"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "keel");
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "two findings and one suppressed");
    let region = &results[0]["locations"][0]["physicalLocation"]["region"];
    assert_eq!(
        (region["startLine"].as_u64(), region["startColumn"].as_u64()),
        (Some(1), Some(19))
    );
    let suppressed = results
        .iter()
        .find(|r| r["ruleId"] == "drop-column")
        .unwrap();
    assert_eq!(suppressed["suppressions"][0]["kind"], "inSource");
}

#[test]
fn github_and_sarif_are_for_lint_only() {
    let p = Project::sqlite();
    let out = p
        .keel()
        .args(["status", "--format", "sarif"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("are for `keel lint`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn version_gates_compare_numerically() {
    let p = Project::sqlite();
    write(
        &p,
        "change.sql",
        "ALTER TABLE users ADD COLUMN active boolean NOT NULL DEFAULT true;\n",
    );
    let run = |v: &str| {
        p.keel()
            .args(["lint", "change.sql", "--pg-version", v])
            .output()
            .unwrap()
    };
    for v in ["11", "11.0", "15.4"] {
        let out = run(v);
        assert_eq!(out.status.code(), Some(0), "{v}: {}", stdout(&out));
        assert_eq!(stdout(&out), "no findings in 1 file\n");
    }
    for v in ["10", "9.6"] {
        let out = run(v);
        assert_eq!(out.status.code(), Some(3), "{v}");
        assert!(
            stdout(&out).contains("error[add-column-rewrite]"),
            "{}",
            stdout(&out)
        );
    }
    let out = run("eleven");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn plain_sql_files_and_syntax_errors() {
    let p = Project::sqlite();
    write(
        &p,
        "broken.sql",
        "SELECT 1;\nALTER TABLE users ADD COLUMN;\n",
    );
    let out = p.keel().args(["lint", "broken.sql"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stdout(&out)
            .starts_with("broken.sql:2:29: error[syntax-error] syntax error: expected name\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn missing_paths_are_usage_errors() {
    let p = Project::sqlite();
    let out = p.keel().args(["lint", "nope.sql"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nope.sql: no such file or folder"));
}

#[test]
fn allow_without_reason_silences_nothing() {
    let p = Project::sqlite();
    write(
        &p,
        "drop.sql",
        "-- keel:allow drop-column\nALTER TABLE users DROP COLUMN name;\n",
    );
    let out = p.keel().args(["lint", "drop.sql"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let text = stdout(&out);
    assert!(
        text.contains("drop.sql:1:1: warning[invalid-allow]"),
        "{text}"
    );
    assert!(text.contains("error[drop-column]"), "{text}");
}

#[test]
fn folder_names_and_missing_down_are_checked() {
    let p = Project::sqlite();
    p.migration("2026_AddThing", "SELECT 1;", Some("SELECT 1;"), None);
    p.migration(
        "20260101090000_no_down",
        "CREATE TABLE t (id bigint);",
        None,
        None,
    );
    let out = p
        .keel()
        .args(["lint", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rules: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["missing-down", "file-name"]);
}

#[test]
fn the_new_migration_templates_lint_clean() {
    let p = Project::sqlite();
    let make = |name: &str, template: &str, extra: &[&str]| {
        let out = p
            .keel()
            .args(["new", name, "--template", template])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    };
    make("add_widgets", "add-table", &["--table", "widgets"]);
    make(
        "add_colour",
        "add-column",
        &["--table", "users", "--column", "colour"],
    );
    make(
        "index_email",
        "add-index",
        &["--table", "users", "--column", "email"],
    );
    let out = p.keel().arg("lint").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(stdout(&out), "no findings in 6 files\n");
}

#[test]
fn dry_run_shows_locks_reversibility_backups_and_findings() {
    let p = Project::postgres();
    p.sample();
    p.keel().arg("up").assert().success();
    tighten(&p);
    p.migration(
        "20260202090000_index_tenant",
        "CREATE INDEX CONCURRENTLY users_tenant_idx ON users (tenant_id);\n",
        Some("DROP INDEX CONCURRENTLY users_tenant_idx;\n"),
        Some("transaction = false\n"),
    );
    let out = p.keel().args(["up", "--dry-run"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for expected in [
        "--   line 1: ALTER TABLE: ACCESS EXCLUSIVE on users; ~2 ms for the catalog change\n",
        "--   line 3: ALTER TABLE: ACCESS EXCLUSIVE on users; destroys data; ~2 ms for the catalog change\n",
        "--   estimated time: ~6 ms (default coefficients (run `keel calibrate` to measure this server))\n",
        "--   reversibility: partial (declared partial)\n",
        "--   backup, line 3 (DROP COLUMN on users): by-key: id and name of every row of users; down sets those values back by key\n",
        "--   error[add-column-required] line 1:19: adding users.tenant_id",
        "--   allowed[drop-column] line 3: name moved to profiles in v2.3\n",
        "--   line 1: CREATE INDEX: SHARE UPDATE EXCLUSIVE on users; scans the table; cannot run in a transaction; ~4 ms for the index build\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(!p.table_exists("audit"), "a dry run changes nothing");

    let out = p
        .keel()
        .args(["up", "--dry-run", "--format", "json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &json["migrations"][0];
    assert_eq!(first["statements"][0]["lock"], "ACCESS EXCLUSIVE");
    assert_eq!(first["statements"][0]["estimated_ms"], 2);
    assert_eq!(first["estimated_ms"], 6);
    assert_eq!(first["statements"][0]["tables"][0], "users");
    assert_eq!(first["reversibility"]["derived"], "partial");
    assert_eq!(first["backups"][0]["columns"][0], "name");
    assert_eq!(first["findings"][0]["rule"], "add-column-required");
}

fn lint_json(p: &Project, args: &[&str]) -> Vec<serde_json::Value> {
    let out = p
        .keel()
        .arg("lint")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    json["findings"].as_array().unwrap().clone()
}

fn rules_of(findings: &[serde_json::Value]) -> Vec<&str> {
    findings
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect()
}

#[test]
fn create_table_if_not_exists_does_not_make_the_table_new() {
    // mattermost-style: the file also runs on databases where the table
    // exists and holds rows.
    let up = |create: &str, index: &str| {
        format!(
            "CREATE TABLE {create} channels (id bigint PRIMARY KEY, team_id bigint, name text);\n\
             CREATE INDEX {index} idx_channels_team ON channels (team_id);\n\
             DROP INDEX IF EXISTS idx_channels_name;\n\
             DROP INDEX IF EXISTS idx_channels_team;\n"
        )
    };
    let lines_of = |findings: &[serde_json::Value], rule: &str| {
        findings
            .iter()
            .filter(|f| f["rule"] == rule)
            .map(|f| f["line"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    let p = Project::sqlite();
    write(&p, "existing.sql", &up("IF NOT EXISTS", "IF NOT EXISTS"));
    let findings = lint_json(&p, &["existing.sql"]);
    assert_eq!(
        lines_of(&findings, "create-index-blocking"),
        [2],
        "{findings:#?}"
    );
    assert_eq!(
        lines_of(&findings, "drop-index-blocking"),
        [3, 4],
        "{findings:#?}"
    );

    // A plain CREATE TABLE makes the table new: its index builds and drops
    // block nobody.
    write(&p, "new.sql", &up("", ""));
    let findings = lint_json(&p, &["new.sql"]);
    assert_eq!(
        lines_of(&findings, "create-index-blocking"),
        [] as [u64; 0],
        "{findings:#?}"
    );
    assert_eq!(
        lines_of(&findings, "drop-index-blocking"),
        [3],
        "{findings:#?}"
    );
}

#[test]
fn a_statement_that_does_not_parse_gives_one_syntax_error() {
    let p = Project::sqlite();
    write(
        &p,
        "mysql.sql",
        "SELECT 1;\n\
         ALTER TABLE `twofactor_incomplete` ADD COLUMN `device_type` INTEGER NOT NULL DEFAULT 14;\n\
         ALTER TABLE t DROP COLUMN is_flow_step NOT NULL DEFAULT false;\n\
         ALTER TABLE users DROP COLUMN name;\n",
    );
    let findings = lint_json(&p, &["mysql.sql"]);
    let syntax: Vec<_> = findings
        .iter()
        .filter(|f| f["rule"] == "syntax-error")
        .collect();
    assert_eq!(syntax.len(), 2, "one per broken statement: {findings:#?}");
    assert_eq!(
        (&syntax[0]["line"], &syntax[0]["column"]),
        (&2.into(), &12.into())
    );
    assert_eq!(
        syntax[0]["statement"],
        "ALTER TABLE `twofactor_incomplete` ADD COLUMN `device_type` INTEGER NOT NULL DEFAULT 14"
    );
    assert_eq!(
        (&syntax[1]["line"], &syntax[1]["column"]),
        (&3.into(), &39.into())
    );
    assert_eq!(
        syntax[1]["statement"],
        "ALTER TABLE t DROP COLUMN is_flow_step NOT NULL DEFAULT false"
    );
    // The statements after the broken ones are still checked.
    assert!(
        rules_of(&findings).contains(&"drop-column"),
        "{findings:#?}"
    );
}

#[test]
fn style_rules_give_one_finding_per_statement() {
    let p = Project::sqlite();
    write(
        &p,
        "wide.sql",
        "CREATE TABLE accounts (id serial PRIMARY KEY, org_id int, name varchar(100), \
         email varchar(255), code char(2), created_at timestamp, updated_at timestamp, \
         ticket serial);\n\
         CREATE TABLE notes (id bigint PRIMARY KEY, body varchar(10));\n",
    );
    let findings = lint_json(&p, &["wide.sql"]);
    let of = |rule: &str| -> Vec<&serde_json::Value> {
        findings.iter().filter(|f| f["rule"] == rule).collect()
    };
    let text = of("prefer-text");
    assert_eq!(text.len(), 2, "{findings:#?}");
    assert_eq!(
        text[0]["message"],
        "varchar(n)/char(n) columns accounts.name (varchar(100)), accounts.email (varchar(255)), \
         accounts.code (char(2)): the length limit is no faster than text, char pads with spaces, \
         and shrinking a limit later rewrites the table"
    );
    assert_eq!(
        (&text[0]["line"], &text[0]["column"]),
        (&1.into(), &59.into())
    );
    assert!(
        text[1]["message"]
            .as_str()
            .unwrap()
            .starts_with("notes.body is varchar(10): "),
        "{:?}",
        text[1]
    );
    let bigint = of("prefer-bigint");
    assert_eq!(bigint.len(), 1, "{findings:#?}");
    let message = bigint[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("key columns accounts.id (serial), accounts.org_id (integer): they run out at 2,147,483,647 and widening one later "),
        "{message}"
    );
    let tz = of("prefer-timestamptz");
    assert_eq!(tz.len(), 1, "{findings:#?}");
    assert!(
        tz[0]["message"].as_str().unwrap().starts_with(
            "timestamp without time zone columns accounts.created_at, accounts.updated_at: "
        ),
        "{:?}",
        tz[0]
    );
    assert_eq!(
        tz[0]["suggestion"],
        "declare created_at, updated_at as timestamptz"
    );
    let identity = of("prefer-identity");
    assert_eq!(identity.len(), 1, "{findings:#?}");
    assert!(
        identity[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("serial columns accounts.id (serial), accounts.ticket (serial): "),
        "{:?}",
        identity[0]
    );
}

#[test]
fn dropping_a_trigger_says_what_stops() {
    let p = Project::sqlite();
    write(&p, "trigger.sql", "DROP TRIGGER users_audit ON users;\n");
    let findings = lint_json(&p, &["trigger.sql"]);
    let drop: Vec<_> = findings
        .iter()
        .filter(|f| f["rule"] == "drop-dependency")
        .collect();
    assert_eq!(drop.len(), 1, "{findings:#?}");
    assert_eq!(drop[0]["severity"], "warning");
    let message = drop[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "dropping trigger users_audit silently stops what it did on every write to users: "
        ),
        "{message}"
    );
    assert!(
        !message.contains("queries, defaults and triggers that use it fail"),
        "{message}"
    );
}

/// keel.toml's `[lint]`: a rule off everywhere, a rule at another level
/// (which decides the exit code), and a rule off under a path; a rule name
/// keel does not know is a usage error naming it.
#[test]
fn lint_configuration_in_keel_toml() {
    let p = Project::sqlite();
    p.migration(
        "20190101000000_legacy",
        "CREATE INDEX legacy_idx ON users (email);\n",
        Some("DROP INDEX legacy_idx;\n"),
        None,
    );
    p.migration(
        "20260101000000_new",
        "CREATE INDEX new_idx ON users (email);\nALTER TABLE users ALTER COLUMN email DROP DEFAULT;\nCREATE TABLE audit (id int PRIMARY KEY);\n",
        Some("DROP TABLE audit;\nDROP INDEX new_idx;\n"),
        None,
    );
    let rules = |p: &Project| -> (Option<i32>, Vec<(String, String)>) {
        let out = p
            .keel()
            .args(["lint", "--format", "json"])
            .output()
            .unwrap();
        let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        let mut found: Vec<(String, String)> = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    format!(
                        "{}:{}",
                        f["file"].as_str().unwrap().split('/').nth(1).unwrap(),
                        f["rule"].as_str().unwrap()
                    ),
                    f["severity"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        found.sort();
        (out.status.code(), found)
    };
    let (code, before) = rules(&p);
    assert_eq!(code, Some(3));
    assert!(before.contains(&("20260101000000_new:prefer-bigint".into(), "info".into())));
    assert!(before.contains(&(
        "20190101000000_legacy:create-index-blocking".into(),
        "error".into()
    )));
    std::fs::write(
        p.path().join("keel.toml"),
        "[lint]\ndisable = [\"prefer-bigint\"]\nseverity = { \"create-index-blocking\" = \"warning\", \"drop-dependency\" = \"error\" }\n\n[[lint.paths]]\nprefix = \"migrations/2019\"\ndisable = [\"create-index-blocking\"]\n",
    )
    .unwrap();
    let (code, after) = rules(&p);
    assert_eq!(
        after,
        [
            (
                "20260101000000_new:create-index-blocking".to_string(),
                "warning".to_string()
            ),
            (
                "20260101000000_new:drop-dependency".to_string(),
                "error".to_string()
            ),
        ]
    );
    assert_eq!(code, Some(3), "drop-dependency is an error now");

    std::fs::write(
        p.path().join("keel.toml"),
        "[lint]\ndisable = [\"prefer-bigints\"]\n",
    )
    .unwrap();
    let out = p.keel().arg("lint").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("keel.toml [lint]: `prefer-bigints` is not a keel lint rule"),
        "{}",
        stderr(&out)
    );
}
