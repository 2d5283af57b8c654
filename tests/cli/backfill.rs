//! `[backfill]`: batched, resumable data changes. Each batch commits with
//! its progress, so a `kill -9` resumes from the last committed batch and
//! every row ends up changed exactly once; rows the expressions cannot
//! transform are skipped, logged to failures.csv, and retried later.

use crate::common::{Db, Project, stderr, stdout};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const V: &str = "20250101000002";

/// `items (id, n)` with `rows` rows, ids 1..rows, and an audit table that a
/// trigger fills on every update, so a test can count how often each row
/// was changed (a rolled-back batch leaves no audit rows).
fn items(p: &Project, rows: u64) {
    p.migration(
        "20250101000001_items",
        "CREATE TABLE items (id bigint PRIMARY KEY, n bigint NOT NULL);\n",
        Some("DROP TABLE items;\n"),
        None,
    );
    p.keel().args(["up", "-q"]).assert().success();
    match p.db {
        Db::Postgres => p.exec(&format!(
            "INSERT INTO items SELECT i, i FROM generate_series(1, {rows}) i;
             CREATE TABLE audit (id bigint NOT NULL);
             CREATE FUNCTION audit_items() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN INSERT INTO audit VALUES (NEW.id); RETURN NEW; END $$;
             CREATE TRIGGER items_audit AFTER UPDATE ON items FOR EACH ROW EXECUTE FUNCTION audit_items();"
        )),
        Db::Sqlite => p.exec(&format!(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {rows})
             INSERT INTO items SELECT i, i FROM s;
             CREATE TABLE audit (id bigint NOT NULL);
             CREATE TRIGGER items_audit AFTER UPDATE ON items BEGIN INSERT INTO audit VALUES (NEW.id); END;"
        )),
    }
}

/// The migration under test: a new column filled with `n * 2`.
fn doubled(p: &Project, column_sql: &str, batch_size: u64, delay_ms: u64) {
    p.migration(
        &format!("{V}_add_doubled"),
        &format!("ALTER TABLE items ADD COLUMN doubled bigint{column_sql};\n"),
        Some("ALTER TABLE items DROP COLUMN doubled;\n"),
        Some(&format!(
            "description = \"doubled, filled in batches\"\n\n[backfill]\ntable = \"items\"\nkey = \"id\"\n\
             set = {{ doubled = \"n * 2\" }}\nwhere = \"doubled IS NULL\"\nbatch_size = {batch_size}\ndelay_ms = {delay_ms}\n"
        )),
    );
}

fn count(p: &Project, sql: &str) -> i64 {
    p.scalar(sql).unwrap().parse().unwrap()
}

fn state(p: &Project) -> String {
    let out = p
        .keel()
        .args(["status", "--format", "json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["version"] == V)
        .map(|m| m["state"].as_str().unwrap().to_string())
        .unwrap()
}

/// keel.toml with a `production` environment on the test database that
/// confirms with --yes.
fn production(p: &Project) {
    std::fs::write(
        p.path().join("keel.toml"),
        "[environments.production]\ndatabase_url_env = \"DATABASE_URL\"\nconfirm = \"auto\"\n",
    )
    .unwrap();
}

both!(execute_runs_the_backfill_and_records_it, |p: Project| {
    items(&p, 2500);
    doubled(&p, "", 1000, 100);
    production(&p);
    p.keel().args(["runbook", "-q", V]).assert().success();
    let out = p
        .keel()
        .args([
            "execute",
            V,
            "--env",
            "production",
            "--yes",
            "--delay-ms",
            "0",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(state(&p), "applied");
    assert_eq!(
        count(&p, "SELECT count(*) FROM items WHERE doubled = n * 2"),
        2500
    );
    let rb =
        std::fs::read_to_string(p.path().join(format!("runbooks/{V}_add_doubled.md"))).unwrap();
    assert!(
        rb.contains("| backfill | ok |") && rb.contains("2500 of 2500 rows in 3 batches of 1000"),
        "{rb}"
    );
});

both!(
    execute_rolls_back_a_backfill_that_cannot_transform_every_row,
    |p: Project| {
        items(&p, 3000);
        doubled(&p, " CHECK (doubled <> 84)", 1000, 0);
        production(&p);
        p.keel().args(["runbook", "-q", V]).assert().success();
        let out = p
            .keel()
            .args(["execute", V, "--env", "production", "--yes"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
        assert!(stderr(&out).contains("backfill: "), "{}", stderr(&out));
        assert_eq!(state(&p), "pending");
        assert_eq!(count(&p, "SELECT count(*) FROM keel_backfills"), 0);
        let rb =
            std::fs::read_to_string(p.path().join(format!("runbooks/{V}_add_doubled.md"))).unwrap();
        assert!(rb.contains("| backfill | FAILED |"), "{rb}");
        assert!(rb.contains("1 row(s) could not be transformed"), "{rb}");
        assert!(rb.contains(": rolled back, "), "{rb}");
    }
);

both!(up_runs_the_backfill_and_validates, |p: Project| {
    items(&p, 2500);
    doubled(&p, "", 1000, 0);
    let out = p.keel().arg("up").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    for line in [
        "backfill 20250101000002_add_doubled: 2500 rows\n",
        "backfill 20250101000002_add_doubled: 2500 rows visited, 2500 updated, 0 skipped; this run 3 batches of 1000",
        "  ok   unexpected NULLs in doubled: 0\n",
        "  ok   row count unchanged: 2500\n",
        "  ok   100 random rows recomputed: 0 differ\n",
    ] {
        assert!(err.contains(line), "missing {line:?} in:\n{err}");
    }
    assert_eq!(
        count(&p, "SELECT count(*) FROM items WHERE doubled = n * 2"),
        2500
    );
    assert_eq!(count(&p, "SELECT count(*) FROM audit"), 2500);
    assert_eq!(state(&p), "applied");
    assert!(!p.path().join("backfills").exists(), "no failures, no file");
});

both!(
    kill_9_resumes_from_the_last_committed_batch,
    |p: Project| {
        let rows = 20_000;
        items(&p, rows);
        doubled(&p, "", 200, 30);
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("keel"))
            .arg("up")
            .current_dir(p.path())
            .env("DATABASE_URL", &p.url)
            .env("NO_COLOR", "1")
            .env_remove("KEEL_TEST_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait for a progress line that shows committed batches, then kill -9.
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = String::new();
        loop {
            let line = lines
                .next()
                .expect("keel ended before any progress")
                .unwrap();
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(" rows (") && !line.contains(": 0/") {
                break;
            }
            assert!(Instant::now() < deadline, "no progress line:\n{seen}");
        }
        child.kill().unwrap();
        child.wait().unwrap();

        assert_eq!(state(&p), "backfilling", "{seen}");
        let last_key = count(&p, "SELECT last_key FROM keel_backfills");
        let done = count(&p, "SELECT rows_done FROM keel_backfills");
        assert!(
            last_key > 0 && last_key < rows as i64,
            "last key {last_key}"
        );
        // The progress row committed with its batches: exactly the rows it
        // claims were changed, once each.
        assert_eq!(count(&p, "SELECT count(*) FROM audit"), done);
        assert_eq!(
            count(&p, "SELECT count(*) FROM items WHERE doubled IS NOT NULL"),
            last_key
        );

        // execute will not run a later migration on data still being
        // written, nor run the half-done one again.
        production(&p);
        p.migration(
            "20250101000003_later",
            "CREATE TABLE later (id bigint);\n",
            Some("DROP TABLE later;\n"),
            None,
        );
        p.keel()
            .args(["runbook", "-q", "20250101000003"])
            .assert()
            .success();
        p.keel().args(["runbook", "-q", V]).assert().success();
        for (version, says) in [
            (
                "20250101000003",
                "20250101000002_add_doubled is still backfilling on `production`",
            ),
            (V, "its backfill has not finished"),
        ] {
            let out = p
                .keel()
                .args(["execute", version, "--env", "production", "--yes"])
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
            assert!(stderr(&out).contains(says), "{}", stderr(&out));
            assert!(
                stderr(&out).contains(&format!("keel backfill {V} --env production")),
                "{}",
                stderr(&out)
            );
        }
        assert!(!p.table_exists("later"));

        let out = p
            .keel()
            .args(["backfill", V, "--delay-ms", "0", "--batch-size", "1000"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
        stderr(&out).contains(&format!(
            "backfill 20250101000002_add_doubled: resuming after key {last_key}, {done} of {rows} rows done\n"
        )),
        "{}",
        stderr(&out)
    );
        assert_eq!(state(&p), "applied");
        assert_eq!(
            count(&p, "SELECT count(*) FROM items WHERE doubled = n * 2"),
            rows as i64
        );
        // Every row changed exactly once across both runs.
        assert_eq!(count(&p, "SELECT count(*) FROM audit"), rows as i64);
        assert_eq!(
            count(&p, "SELECT count(DISTINCT id) FROM audit"),
            rows as i64
        );
    }
);

both!(
    rows_that_cannot_be_transformed_are_skipped_logged_and_retried,
    |p: Project| {
        items(&p, 3000);
        // Row 42 (doubled 84) and row 2500 break the constraint.
        doubled(&p, " CHECK (doubled <> 84 AND doubled <> 5000)", 1000, 0);
        let out = p.keel().arg("up").output().unwrap();
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("backfill 20250101000002_add_doubled: skipped key 42: "),
            "{err}"
        );
        assert!(
        err.contains("error: the backfill of 20250101000002_add_doubled did every other row, but: 2 row(s) could not be transformed and were skipped (key and error in backfills/20250101000002_add_doubled/failures.csv)"),
        "{err}"
    );
        assert!(
            err.contains("`keel backfill 20250101000002` retries the skipped rows"),
            "{err}"
        );
        let csv_path = p
            .path()
            .join("backfills/20250101000002_add_doubled/failures.csv");
        let csv = std::fs::read_to_string(&csv_path).unwrap();
        // The errors can quote the row's values: owner-only, kept out of git.
        {
            use std::os::unix::fs::PermissionsExt;
            let mode =
                |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&csv_path), 0o600);
            assert_eq!(mode(csv_path.parent().unwrap()), 0o700);
            assert!(p.path().join("backfills/.gitignore").exists());
        }
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3, "{csv}");
        assert_eq!(lines[0], "key,error");
        assert!(
            lines[1].starts_with("42,") && lines[2].starts_with("2500,"),
            "{csv}"
        );
        let expected = match p.db {
            // CSV doubles the quotes PostgreSQL puts around names.
            Db::Postgres => "violates check constraint \"\"items_doubled_check\"\" (23514)",
            Db::Sqlite => "CHECK constraint failed",
        };
        assert!(lines[1].contains(expected), "{csv}");
        // Every other row is done, once.
        assert_eq!(
            count(&p, "SELECT count(*) FROM items WHERE doubled = n * 2"),
            2998
        );
        assert_eq!(count(&p, "SELECT count(*) FROM audit"), 2998);
        assert_eq!(state(&p), "backfilling");

        // A later migration waits for the backfill.
        p.migration(
            "20250101000003_later",
            "CREATE TABLE later (id bigint PRIMARY KEY);\n",
            Some("DROP TABLE later;\n"),
            None,
        );
        let out = p.keel().arg("up").output().unwrap();
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert!(!p.table_exists("later"));

        // Fix the data; the retry does the two rows and the migration is applied.
        p.exec("UPDATE items SET n = 41 WHERE id = 42; UPDATE items SET n = 1 WHERE id = 2500");
        let out = p.keel().args(["backfill", V]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(state(&p), "applied");
        assert_eq!(
            count(&p, "SELECT count(*) FROM items WHERE doubled = n * 2"),
            3000
        );
        assert!(
            !p.path()
                .join("backfills/20250101000002_add_doubled/failures.csv")
                .exists()
        );
        p.keel().args(["up", "-q"]).assert().success();
        assert!(p.table_exists("later"));
    }
);

both!(
    status_shows_backfilling_until_done_and_down_forgets_progress,
    |p: Project| {
        items(&p, 100);
        doubled(&p, " CHECK (doubled <> 84)", 30, 0);
        p.keel().arg("up").assert().code(3);
        let out = p.keel().arg("status").output().unwrap();
        assert!(
            stdout(&out).contains("20250101000002  add_doubled  backfilling"),
            "{}",
            stdout(&out)
        );
        // A backfilling migration can be reverted; its progress goes with it.
        p.keel().arg("down").assert().success();
        assert_eq!(count(&p, "SELECT count(*) FROM keel_backfills"), 0);
        assert_eq!(count(&p, "SELECT count(*) FROM keel_backfill_failures"), 0);
        p.exec("UPDATE items SET n = 0 WHERE id = 42; DELETE FROM audit");
        let out = p.keel().arg("up").output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("this run 4 batches of 30"),
            "{}",
            stderr(&out)
        );
        assert_eq!(state(&p), "applied");
        assert_eq!(count(&p, "SELECT count(*) FROM audit"), 100);
        let out = p.keel().args(["backfill", V]).output().unwrap();
        assert!(out.status.success());
        assert!(
            stderr(&out).contains("has finished already"),
            "{}",
            stderr(&out)
        );
    }
);

#[test]
fn backfill_of_a_pending_migration_says_to_apply_it() {
    let p = Project::sqlite();
    items(&p, 10);
    doubled(&p, "", 1000, 0);
    let out = p.keel().args(["backfill", V]).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stderr(&out).contains("migration 20250101000002_add_doubled is pending: its SQL has not run yet\n  fix: `keel up --to 20250101000002` applies it and runs the backfill"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_wrong_expression_stops_with_the_database_error() {
    let p = Project::postgres();
    items(&p, 10);
    p.migration(
        &format!("{V}_add_doubled"),
        "ALTER TABLE items ADD COLUMN doubled bigint;\n",
        Some("ALTER TABLE items DROP COLUMN doubled;\n"),
        Some("[backfill]\ntable = \"items\"\nkey = \"id\"\nset = { doubled = \"nope * 2\" }\n"),
    );
    // Checked before the migration commits: nothing of it is kept.
    let out = p.keel().arg("up").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(
            "the backfill of 20250101000002_add_doubled cannot run: \
             migrations/20250101000002_add_doubled/migration.toml:4:19: [backfill] set: \
             the expression for \"doubled\" does not work on \"items\": column \"nope\" does not exist (42703)\n  \
             nothing of the migration was kept; it is still pending\n  fix: correct the expression, then run `keel up` again"
        ),
        "{err}"
    );
    assert_eq!(state(&p), "pending");
}
