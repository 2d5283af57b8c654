//! Tables with no primary key: a destructive change backs the table up
//! whole (or by a unique index on NOT NULL columns, which is a key too),
//! `down` puts back exactly the rows that were there, duplicates included,
//! and refuses rather than lose rows written since. A migration declared
//! irreversible needs no backup at all. `validate` and `up --dry-run` say
//! which backup each statement gets before anything runs.

use crate::common::{Db, Project, stderr};

const TABLE: &str = "20260101000000_events";
const DROP: &str = "20260201000000_drop_note";

/// The one archive of a migration's backups folder.
fn archive(p: &Project, id: &str) -> std::path::PathBuf {
    let dir = p.path().join("backups").join(id);
    let mut zips: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "zip"))
        .collect();
    assert_eq!(zips.len(), 1, "{zips:?}");
    zips.remove(0)
}

/// A member of the archive, read with the real `unzip`.
fn unzip(path: &std::path::Path, member: &str) -> String {
    let out = std::process::Command::new("unzip")
        .arg("-p")
        .arg(path)
        .arg(member)
        .output()
        .expect("unzip is installed");
    assert!(out.status.success(), "unzip -p {}: {out:?}", path.display());
    String::from_utf8(out.stdout).unwrap()
}

/// `events`, no key at all, with 40 rows: 10 of them duplicates of others,
/// and NULLs.
fn events(p: &Project) {
    p.migration(
        TABLE,
        "CREATE TABLE events (kind text, n integer, note text);\n",
        Some("DROP TABLE events;\n"),
        None,
    );
    p.test(["up"]).run();
    let mut values = Vec::new();
    for i in 0..30 {
        values.push(format!("('k{}', {}, 'note {i}')", i % 4, i % 7));
    }
    for i in 0..10 {
        values.push(format!("('k{}', {}, 'note {i}')", i % 4, i % 7));
    }
    values.push("(NULL, NULL, NULL)".into());
    values.push("('k1', NULL, 'no n')".into());
    p.exec(&format!("INSERT INTO events VALUES {}", values.join(", ")));
}

const ALL: &str = "SELECT kind, CAST(n AS TEXT), note FROM events ORDER BY kind, n, note";

both!(
    a_dropped_column_of_a_table_without_a_key_comes_back_exactly,
    |p: Project| {
        events(&p);
        let before = p.rows(ALL);
        assert_eq!(before.len(), 42);
        p.migration(
            DROP,
            "ALTER TABLE events DROP COLUMN note;\n",
            Some("ALTER TABLE events ADD COLUMN note text;\n"),
            None,
        );
        p.test(["up"])
            .stderr_contains("(events: 42 rows) before 20260201000000_drop_note")
            .run();
        let zip = archive(&p, DROP);
        let manifest: serde_json::Value =
            serde_json::from_str(&unzip(&zip, "manifest.json")).unwrap();
        let file = &manifest["files"][0];
        assert_eq!(file["kind"], "replace");
        assert_eq!(file["destroyed"], serde_json::json!(["note"]));
        assert_eq!(file["columns"], serde_json::json!(["kind", "n", "note"]));
        assert_eq!(file["rows"], 42);
        let csv = unzip(&zip, "events.csv");
        assert_eq!(csv.lines().next(), Some("kind,n,note"));
        assert_eq!(csv.lines().count(), 43, "{csv}");
        p.test(["down"])
            .stderr_contains("restored backups/20260201000000_drop_note/")
            .run();
        assert_eq!(p.rows(ALL), before);
    }
);

both!(
    a_row_written_since_is_never_lost_by_putting_the_table_back,
    |p: Project| {
        events(&p);
        p.migration(
            DROP,
            "ALTER TABLE events DROP COLUMN note;\n",
            Some("ALTER TABLE events ADD COLUMN note text;\n"),
            None,
        );
        p.test(["up"]).run();
        p.exec("INSERT INTO events (kind, n) VALUES ('late', 1)");
        p.test(["down"])
            .stderr_contains("events has 1 row(s) that backups/20260201000000_drop_note/")
            .stderr_contains(
                "rows were added or changed since the backup was taken, and a backup of a table without a key puts the table back whole, which would lose them; nothing was changed",
            )
            .stderr_contains("the down was rolled back: 20260201000000_drop_note is still applied")
            .stderr_contains("fix: look at those rows and save or delete them")
            .code(4)
            .run();
        assert_eq!(
            p.scalar("SELECT count(*) FROM events").as_deref(),
            Some("43")
        );
        p.exec("DELETE FROM events WHERE kind = 'late'");
        p.test(["down"]).run();
        assert_eq!(
            p.scalar("SELECT count(*) FROM events WHERE note IS NOT NULL")
                .as_deref(),
            Some("41")
        );
    }
);

both!(
    an_empty_table_without_a_key_loses_a_column_and_gets_it_back,
    |p: Project| {
        p.migration(
            TABLE,
            "CREATE TABLE events (kind text, n integer, note text);\n",
            Some("DROP TABLE events;\n"),
            None,
        );
        p.migration(
            DROP,
            "ALTER TABLE events DROP COLUMN note;\n",
            Some("ALTER TABLE events ADD COLUMN note text;\n"),
            None,
        );
        p.test(["up"]).stderr_contains("(events: 0 rows)").run();
        p.test(["down"]).run();
        assert_eq!(
            p.scalar("SELECT count(*) FROM events").as_deref(),
            Some("0")
        );
    }
);

both!(an_irreversible_migration_needs_no_backup, |p: Project| {
    events(&p);
    p.migration(
        DROP,
        "ALTER TABLE events DROP COLUMN note;\n",
        None,
        Some("reversibility = \"irreversible\"\n"),
    );
    p.test(["up", "--dry-run"])
            .stdout_contains(
                "--   backup, line 1 (DROP COLUMN on events): none: 20260201000000_drop_note declares reversibility = \"irreversible\" in its migration.toml: keel takes no backup of what it destroys",
            )
            .run();
    p.test(["up"])
        .stderr_contains("note: 20260201000000_drop_note declares reversibility = \"irreversible\"")
        .stderr_contains("applied  20260201000000_drop_note")
        .run();
    assert!(!p.path().join("backups").join(DROP).exists());
    assert_eq!(
        p.scalar("SELECT count(*) FROM events").as_deref(),
        Some("42")
    );
});

// A unique index on NOT NULL columns tells rows apart as well as a primary
// key: the backup is by key, so rows written after the migration stay.
both!(a_unique_not_null_index_is_a_key, |p: Project| {
    p.migration(
        TABLE,
        "CREATE TABLE codes (code text NOT NULL, label text, spare text);\nCREATE UNIQUE INDEX codes_code ON codes (code);\n",
        Some("DROP TABLE codes;\n"),
        None,
    );
    p.test(["up"]).run();
    let values: Vec<String> = (0..25)
        .map(|i| format!("('c{i}', 'label {i}', 's')"))
        .collect();
    p.exec(&format!("INSERT INTO codes VALUES {}", values.join(", ")));
    let all = "SELECT code, label FROM codes ORDER BY code";
    let before = p.rows(all);
    p.migration(
        DROP,
        "ALTER TABLE codes DROP COLUMN label;\n",
        Some("ALTER TABLE codes ADD COLUMN label text;\n"),
        None,
    );
    p.test(["validate"])
        .stdout_contains("backup   20260201000000_drop_note line 1 (DROP COLUMN on codes): by-key: code and label of every row of codes; down sets those values back by key")
        .run();
    p.test(["up"])
        .stderr_contains("(codes.label: 25 rows)")
        .run();
    p.exec("INSERT INTO codes (code, spare) VALUES ('late', 's')");
    p.test(["down"]).run();
    let mut expected = before;
    expected.push(vec![Some("late".into()), None]);
    expected.sort();
    let mut after = p.rows(all);
    after.sort();
    assert_eq!(after, expected);
});

// Before anything runs, each destructive statement's backup is named: by
// key, the statement's own rows, the whole table, or none and why.
both!(
    validate_and_dry_run_say_what_each_statement_gets,
    |p: Project| {
        events(&p);
        p.migration(
            "20260102000000_orders",
            "CREATE TABLE orders (id bigint PRIMARY KEY, status text, total integer);\n",
            Some("DROP TABLE orders;\n"),
            None,
        );
        p.test(["up"]).run();
        p.exec("INSERT INTO orders VALUES (1, 'void', 5), (2, 'paid', 7)");
        p.migration(
            DROP,
            "ALTER TABLE events DROP COLUMN note;\nDELETE FROM orders WHERE status = 'void';\n",
            // The column back as it was: validate runs down.sql after up.sql
            // and compares the schema.
            Some("ALTER TABLE events ADD COLUMN note text;\n"),
            Some("reversibility = \"partial\"\n"),
        );
        let whole = "whole-table: every row and column of events: events has no primary key and no unique index on NOT NULL columns, so nothing tells its rows apart; down replaces the table's rows with the backup's, and refuses if a row was added or changed since (compared on the columns the migration leaves as they are)";
        let rows = "by-key: the rows of orders where status = 'void', every column, keyed by id; down inserts those whose key is gone";
        p.test(["validate"])
            .stdout_contains(&format!(
                "backup   20260201000000_drop_note line 1 (DROP COLUMN on events): {whole}\n"
            ))
            .stdout_contains(&format!(
                "backup   20260201000000_drop_note line 2 (DELETE on orders): {rows}\n"
            ))
            .run();
        let dry = p.test(["up", "--dry-run"]).run();
        assert!(
            dry.stdout.contains(&format!(
                "--   backup, line 1 (DROP COLUMN on events): {whole}\n"
            )) && dry
                .stdout
                .contains(&format!("--   backup, line 2 (DELETE on orders): {rows}\n")),
            "{}",
            dry.stdout
        );
        let json = p.test(["up", "--dry-run", "--format", "json"]).run().json();
        let plan = &json["migrations"][0]["backup_plan"];
        assert_eq!(plan[0]["backup"], "whole-table");
        assert_eq!(plan[1]["backup"], "by-key");
        if p.db == Db::Postgres {
            p.migration(
            "20260301000000_merge",
            "MERGE INTO orders o USING events e ON o.status = e.kind WHEN MATCHED THEN DELETE;\n",
            Some("SELECT 1;\n"),
            Some("reversibility = \"partial\"\n"),
        );
            p.test(["validate"])
            .stdout_contains("backup   20260301000000_merge line 1 (MERGE into orders): none: keel does not back up what a MERGE changes")
            .run();
        }
        let out = p.keel().arg("up").output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
);
