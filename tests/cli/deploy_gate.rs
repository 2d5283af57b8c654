//! `requires_deploy`: `keel up` applies what comes before a migration that
//! waits for a deploy, stops there (exit 0) and names the deploy; `status`
//! shows it `waiting`; `--through V` goes past it.

use crate::common::{Db, Project};

const FIRST: &str = "20260401000001_add_slug";
const SECOND: &str = "20260401000002_drop_old_name";
const THIRD: &str = "20260401000003_audit";

fn three_with_a_deploy_before_the_second(p: &Project) {
    p.migration(
        FIRST,
        "CREATE TABLE items (id integer PRIMARY KEY, old_name text, slug text);\n",
        Some("DROP TABLE items;\n"),
        None,
    );
    p.migration(
        SECOND,
        "CREATE TABLE items_archive (id integer PRIMARY KEY);\n",
        Some("DROP TABLE items_archive;\n"),
        Some("requires_deploy = \"code that reads items.slug, never items.old_name\"\n"),
    );
    p.migration(
        THIRD,
        "CREATE TABLE audit (id integer PRIMARY KEY);\n",
        Some("DROP TABLE audit;\n"),
        None,
    );
}

both!(
    up_stops_before_a_migration_that_waits_for_a_deploy,
    |p: Project| {
        three_with_a_deploy_before_the_second(&p);
        p.test(["up", "-q"])
        .stderr_contains(
            "1 migration(s) applied; stopped before 20260401000002_drop_old_name: it waits for a deploy: code that reads items.slug, never items.old_name\n  then: once that is live everywhere, `keel up --through 20260401000002`",
        )
        .code(0)
        .run();
        // Stopping is not progress: a second `up` stops at the same place.
        p.test(["up"])
            .stderr_contains("0 migration(s) applied; stopped before 20260401000002_drop_old_name")
            .code(0)
            .run();

        let doc = p.test(["status", "--format", "json"]).code(0).run().json();
        let states: Vec<(&str, &str)> = doc["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["name"].as_str().unwrap(), m["state"].as_str().unwrap()))
            .collect();
        assert_eq!(
            states,
            [
                ("add_slug", "applied"),
                ("drop_old_name", "waiting"),
                ("audit", "pending")
            ]
        );
        assert_eq!(
            doc["migrations"][1]["requires_deploy"],
            "code that reads items.slug, never items.old_name"
        );
        p.test(["status"])
            .stdout_contains("waiting: `keel up` stops before 20260401000002_drop_old_name")
            .code(0)
            .run();

        // A --through that names nothing changes nothing.
        p.test(["up", "--through", "20260401000009"])
            .stderr_contains("--through 20260401000009 names no migration")
            .code(2)
            .run();
        p.test([
            "up",
            "--through",
            "20260401000002",
            "--to",
            "20260401000002",
        ])
        .code(2)
        .run();

        // The deploy is live: through the second; the third runs with a plain up.
        p.test(["up", "--through", "20260401000002"])
            .stderr_contains("1 migration(s) applied")
            .code(0)
            .run();
        let doc = p.test(["up", "--format", "json"]).code(0).run().json();
        assert_eq!(doc["waiting"], serde_json::Value::Null, "{doc:#}");
        assert_eq!(doc["applied"][0]["name"], "audit", "{doc:#}");
    }
);

both!(a_dry_run_shows_where_up_would_stop, |p: Project| {
    three_with_a_deploy_before_the_second(&p);
    let ran = p
        .test(["up", "--dry-run"])
        .stderr_contains("stopped before 20260401000002_drop_old_name: it waits for a deploy")
        .code(0)
        .run();
    assert!(
        ran.stdout.contains("20260401000001_add_slug"),
        "{}",
        ran.stdout
    );
    assert!(!ran.stdout.contains("items_archive"), "{}", ran.stdout);
});

#[test]
fn an_empty_requires_deploy_is_refused_with_its_line() {
    let p = Project::sqlite();
    p.migration(
        FIRST,
        "CREATE TABLE items (id integer PRIMARY KEY);\n",
        None,
        Some("description = \"x\"\nrequires_deploy = \"  \"\n"),
    );
    p.test(["up"])
        .stderr_contains("migration.toml:2:")
        .stderr_contains("requires_deploy is empty")
        .code(2)
        .run();
}

both!(
    a_first_migration_of_version_0_that_waits_applies_nothing,
    |p: Project| {
        // Nothing comes before version 0: `up` used to compute "up to
        // version 0 - 1", which panics, or wraps and applies everything.
        p.migration(
            "00000000000000_first",
            "CREATE TABLE first (id integer PRIMARY KEY);\n",
            Some("DROP TABLE first;\n"),
            Some("requires_deploy = \"the new app\"\n"),
        );
        p.migration(
            "00000000000001_second",
            "CREATE TABLE second (id integer PRIMARY KEY);\n",
            Some("DROP TABLE second;\n"),
            None,
        );
        p.test(["up"])
            .stderr_contains("0 migration(s) applied; stopped before 00000000000000_first")
            .code(0)
            .run();
        let doc = p.test(["up", "--format", "json"]).code(0).run().json();
        assert_eq!(doc["applied"].as_array().map(Vec::len), Some(0), "{doc}");
        assert_eq!(doc["waiting"]["version"], "00000000000000", "{doc}");
        assert!(!p.table_exists("first"));
        assert!(!p.table_exists("second"));
    }
);
