//! `--format json` prints one JSON document on stdout however a command
//! ends: on a failure it says what the run applied or reverted before it
//! stopped, and the error (message, fix, exit code, migration, statement).

use crate::common::{Db, Project};

const FIRST: &str = "20260301000001_accounts";
const SECOND: &str = "20260301000002_bad_backfill";
const THIRD: &str = "20260301000003_audit";

/// Three migrations on a table with rows; the second's up.sql fails on its
/// second statement.
fn three_with_a_bad_second(p: &Project) {
    p.migration(
        FIRST,
        "CREATE TABLE accounts (id integer PRIMARY KEY, email text NOT NULL);\n\
         INSERT INTO accounts (id, email) VALUES (1, 'a@example.com'), (2, 'b@example.com'), (3, 'c@example.com');\n",
        Some("DROP TABLE accounts;\n"),
        None,
    );
    p.migration(
        SECOND,
        "ALTER TABLE accounts ADD COLUMN plan text;\n\
         UPDATE accounts SET plan = tier;\n",
        Some("ALTER TABLE accounts DROP COLUMN plan;\n"),
        None,
    );
    p.migration(
        THIRD,
        "CREATE TABLE audit (id integer PRIMARY KEY);\n",
        Some("DROP TABLE audit;\n"),
        None,
    );
}

both!(a_failed_up_still_prints_what_it_applied, |p: Project| {
    three_with_a_bad_second(&p);
    let ran = p
        .test(["up", "--format", "json"])
        .stderr_contains(&format!("migration {SECOND} failed at"))
        .code(1)
        .run();
    let doc = ran.json();
    assert_eq!(doc["ok"], false);
    let applied = doc["applied"].as_array().expect("applied is a list");
    assert_eq!(applied.len(), 1, "{doc:#}");
    assert_eq!(applied[0]["version"], "20260301000001");
    assert_eq!(applied[0]["name"], "accounts");
    assert!(applied[0]["applied_at"].as_str().is_some(), "{doc:#}");
    assert!(applied[0]["execution_ms"].as_u64().is_some(), "{doc:#}");
    assert_eq!(doc["reverted"], serde_json::json!([]));

    let error = &doc["error"];
    assert_eq!(error["exit_code"], 1);
    assert_eq!(error["migration"], SECOND);
    assert!(
        error["message"].as_str().unwrap().contains("tier"),
        "{doc:#}"
    );
    assert_eq!(
        error["fix"],
        "correct the SQL (or the schema it expects) and run `keel up` again"
    );
    let statement = &error["statement"];
    assert_eq!(
        statement["file"],
        format!("migrations/{SECOND}/up.sql").as_str()
    );
    assert_eq!(statement["line"], 2);
    assert_eq!(statement["sql"], "UPDATE accounts SET plan = tier");

    // The document tells the truth: the first stays applied with its rows.
    assert_eq!(
        p.scalar("SELECT count(*) FROM accounts").as_deref(),
        Some("3")
    );
    let status = p.test(["status", "--format", "json"]).run().json();
    let states: Vec<_> = status["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(states, ["applied", "pending", "pending"]);
});

both!(a_failed_down_still_prints_what_it_reverted, |p: Project| {
    three_with_a_bad_second(&p);
    // Fix the second so that everything applies, then break its down.sql.
    std::fs::write(
        p.path().join("migrations").join(SECOND).join("up.sql"),
        "ALTER TABLE accounts ADD COLUMN plan text;\nUPDATE accounts SET plan = 'free';\n",
    )
    .unwrap();
    std::fs::write(
        p.path().join("migrations").join(SECOND).join("down.sql"),
        "ALTER TABLE accounts DROP COLUMN tier;\n",
    )
    .unwrap();
    let up = p.test(["up", "--format", "json"]).run().json();
    assert_eq!(up["applied"].as_array().unwrap().len(), 3, "{up:#}");

    let doc = p
        .test(["down", "--steps", "3", "--format", "json"])
        .code(1)
        .run()
        .json();
    assert_eq!(doc["ok"], false);
    let reverted = doc["reverted"].as_array().unwrap();
    assert_eq!(reverted.len(), 1, "{doc:#}");
    assert_eq!(reverted[0]["version"], "20260301000003");
    assert_eq!(reverted[0]["name"], "audit");
    assert!(reverted[0]["reverted_at"].as_str().is_some(), "{doc:#}");
    assert_eq!(doc["applied"], serde_json::json!([]));
    assert_eq!(doc["error"]["migration"], SECOND);
    assert_eq!(doc["error"]["exit_code"], 1);
    assert_eq!(doc["error"]["statement"]["line"], 1);
    assert_eq!(
        doc["error"]["fix"],
        format!(
            "correct down.sql, record that with `keel resolve {} --accept-checksum --reason \"…\"` (down.sql is part of the applied migration's checksum), then run `keel down` again",
            &SECOND[..14]
        )
    );
    assert!(!p.table_exists("audit"));
    assert_eq!(
        p.scalar("SELECT count(*) FROM accounts WHERE plan = 'free'")
            .as_deref(),
        Some("3")
    );
});

/// Every command that takes `--format json`, with arguments that get it
/// past clap; what it does with them does not matter here.
const COMMANDS: &[&[&str]] = &[
    &["status"],
    &["validate"],
    &["up"],
    &["down"],
    &["resolve", "20260301000002", "--applied"],
    &["plan", "20260301000002"],
    &["runbook", "20260301000002"],
    &["execute", "20260301000002", "--env", "prod"],
    &["backfill", "20260301000002"],
    &["inspect"],
    &["lint"],
    &["seed"],
    &["calibrate"],
    &["new", "add_things"],
    &["restore", "backups/x.zip"],
    &["backup", "verify", "backups/x.zip"],
    &["snapshot", "take"],
    &["record", "verify", "records/x.json"],
];

/// Runs `args --format json`, expecting `code`, and returns the one
/// document stdout holds.
fn failure(p: &Project, args: &[&str], code: i32) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let doc = p.test(&all).code(code).run().json();
    assert_eq!(doc["ok"], false, "keel {all:?}: {doc:#}");
    assert_eq!(doc["error"]["exit_code"], code, "keel {all:?}: {doc:#}");
    assert!(
        !doc["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "keel {all:?}: {doc:#}"
    );
    assert_eq!(doc["applied"], serde_json::json!([]), "keel {all:?}");
    assert_eq!(doc["reverted"], serde_json::json!([]), "keel {all:?}");
    doc
}

both!(
    a_config_error_is_a_json_document_for_every_command,
    |p: Project| {
        three_with_a_bad_second(&p);
        std::fs::write(p.path().join("keel.toml"), "[environments.prod\nurl = 1\n").unwrap();
        for args in COMMANDS {
            let doc = failure(&p, args, 2);
            assert!(
                doc["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("keel.toml"),
                "keel {args:?}: {doc:#}"
            );
        }
        // Nothing ran.
        assert!(!p.table_exists("accounts"));
    }
);

#[test]
fn an_unreachable_database_is_a_json_document_for_every_command_that_connects() {
    let p = Project::postgres();
    three_with_a_bad_second(&p);
    let closed = "postgres://keel@127.0.0.1:1/nowhere";
    for args in [
        &["status"][..],
        &["validate"],
        &["up"],
        &["down"],
        &["resolve", "20260301000002", "--applied"],
        &["backfill", "20260301000002"],
        &["inspect"],
        &["seed"],
        &["plan", "20260301000002"],
    ] {
        let mut all = args.to_vec();
        all.extend(["--database-url", closed]);
        let doc = failure(&p, &all, 1);
        assert!(
            doc["error"]["message"]
                .as_str()
                .unwrap()
                .contains("cannot reach the database"),
            "keel {all:?}: {doc:#}"
        );
    }
}

#[test]
fn bad_arguments_with_format_json_are_a_json_document() {
    let p = Project::sqlite();
    let doc = failure(&p, &["plan"], 2);
    assert_eq!(
        doc["error"]["message"],
        "the following required arguments were not provided: <VERSION>"
    );
}

both!(
    a_check_that_fails_puts_its_error_in_the_commands_own_document,
    |p: Project| {
        three_with_a_bad_second(&p);
        p.test(["up", "--to", "20260301000001"]).run();
        let doc = p
            .test(["validate", "--format", "json"])
            .code(3)
            .run()
            .json();
        assert_eq!(doc["ok"], false);
        assert_eq!(doc["problems"].as_array().unwrap().len(), 1, "{doc:#}");
        assert_eq!(doc["error"]["exit_code"], 3);
        assert_eq!(doc["applied"], serde_json::json!([]));
    }
);

#[test]
fn a_successful_run_prints_only_its_own_document() {
    let p = Project::postgres();
    three_with_a_bad_second(&p);
    std::fs::remove_dir_all(p.path().join("migrations").join(SECOND)).unwrap();
    let doc = p.test(["up", "--format", "json"]).run().json();
    assert!(
        doc.get("ok").is_none() && doc.get("error").is_none(),
        "{doc:#}"
    );
    let versions: Vec<_> = doc["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["version"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(versions, ["20260301000001", "20260301000003"]);
    // A refusal (resolve of a migration that did not fail) is a document too.
    let doc = p
        .test(["resolve", "20260301000001", "--applied", "--format", "json"])
        .code(4)
        .run()
        .json();
    assert_eq!(doc["error"]["exit_code"], 4);
}

/// A guarded run that rolled back: its own document (outcome, steps) with
/// the error and exit 5, and the migration listed as applied, then reverted.
#[test]
fn a_rolled_back_execute_prints_its_document_with_the_error() {
    let p = crate::execute::project(
        Db::Postgres,
        "",
        "",
        "[[smoke]]\nname = \"bios still readable\"\nsql = \"SELECT count(*) FROM profiles WHERE id < 0\"\nexpect = 1\n",
    );
    let doc = p
        .test([
            "execute",
            crate::execute::V,
            "--env",
            "production",
            "--answers",
            "answers.toml",
            "--format",
            "json",
        ])
        .code(5)
        .run()
        .json();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["outcome"], "rolled_back");
    assert_eq!(doc["error"]["exit_code"], 5);
    assert_eq!(doc["error"]["outcome"], "rolled_back");
    assert_eq!(doc["error"]["migration"], crate::execute::ID);
    assert_eq!(doc["applied"][0]["name"], "drop_bio", "{doc:#}");
    assert_eq!(doc["reverted"][0]["name"], "drop_bio", "{doc:#}");
    assert!(doc["steps"].as_array().unwrap().len() > 10, "{doc:#}");
}
