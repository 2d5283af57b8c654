//! `keel test`: every migration up, down to the same schema and rows, and
//! up again, on a fresh database keel makes and removes; the sample passes,
//! broken down.sql files fail with the migration and the object named, and
//! the JUnit report parses.

use crate::common::{Db, Project, stderr, stdout};

/// The server (PostgreSQL) or a file (SQLite) for `--database-url`: keel
/// makes its scratch database there, never in the project's own.
fn server(p: &Project) -> String {
    match p.db {
        Db::Postgres => p.url.clone(),
        Db::Sqlite => format!("sqlite://{}/unused.db", p.path().display()),
    }
}

fn test(p: &Project, extra: &[&str]) -> std::process::Output {
    p.keel()
        .args(["test", "--database-url", &server(p)])
        .args(extra)
        .output()
        .unwrap()
}

/// Writes `tests/fixtures/NAME` with `sql`.
fn fixture(p: &Project, name: &str, sql: &str) {
    let fixtures = p.path().join("tests/fixtures");
    std::fs::create_dir_all(&fixtures).unwrap();
    std::fs::write(fixtures.join(name), sql).unwrap();
}

/// The JUnit file, parsed: (testcases, failures) and the failures' texts.
fn junit(path: &std::path::Path) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("the JUnit report is XML");
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let failures = cases
        .iter()
        .flat_map(|c| c.children().filter(|n| n.has_tag_name("failure")))
        .map(|f| {
            format!(
                "{} {}: {}",
                f.parent().unwrap().attribute("classname").unwrap(),
                f.parent().unwrap().attribute("name").unwrap(),
                f.text().unwrap_or_default()
            )
        })
        .collect();
    (cases.len(), failures)
}

#[test]
fn the_sample_application_passes_on_both_databases() {
    for db in [Db::Postgres, Db::Sqlite] {
        let p = Project::new(db);
        match db {
            Db::Postgres => p.sample_all(),
            Db::Sqlite => p.sample(),
        }
        let out = test(&p, &["--junit", "report.xml"]);
        let text = stdout(&out);
        assert!(out.status.success(), "{db:?}: {text}\n{}", stderr(&out));
        let migrations = std::fs::read_dir(p.path().join("migrations"))
            .unwrap()
            .count();
        assert_eq!(
            text.lines().filter(|l| l.starts_with("ok  ")).count(),
            migrations,
            "{text}"
        );
        assert!(text.contains("schema"), "{text}");
        let (cases, failures) = junit(&p.path().join("report.xml"));
        assert!(cases >= migrations * 2, "{cases} testcases");
        assert!(failures.is_empty(), "{failures:?}");
        // Generated rows were there to compare.
        assert!(text.contains("generated rows"), "{text}");
        if db == Db::Postgres {
            // The scratch database is gone, and the project's own was never touched.
            let err = stderr(&out);
            let scratch = err
                .split("scratch database ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .unwrap_or_else(|| panic!("no scratch database named: {err}"));
            assert!(scratch.starts_with("keel_test_"), "{scratch}");
            assert_eq!(
                p.scalar(&format!(
                    "SELECT count(*) FROM pg_database WHERE datname = '{scratch}'"
                )),
                Some("0".into())
            );
            assert_eq!(
                p.scalar("SELECT count(*) FROM pg_tables WHERE tablename = 'users'"),
                Some("0".into())
            );
        }
    }
}

/// A table with a NOT NULL boolean with a default, an index, and rows.
fn base(p: &Project) {
    p.migration(
        "20260101000000_create_posts",
        "CREATE TABLE posts (id bigint PRIMARY KEY, title text NOT NULL, published boolean NOT NULL DEFAULT false);\n",
        Some("DROP TABLE posts;\n"),
        None,
    );
}

/// [`base`], then a migration that drops `published` and whose down
/// re-adds it without its NOT NULL and DEFAULT.
fn base_and_drop_published(p: &Project) {
    base(p);
    p.migration(
        "20260101000200_drop_published",
        "ALTER TABLE posts DROP COLUMN published;\n",
        Some("ALTER TABLE posts ADD COLUMN published boolean;\n"),
        Some("reversibility = \"partial\"\n"),
    );
}

#[test]
fn broken_down_files_fail_naming_the_migration_and_the_object() {
    for db in [Db::Postgres, Db::Sqlite] {
        let p = Project::new(db);
        base(&p);
        // The index's down drops another name: the index stays (and the
        // second up, IF NOT EXISTS, goes through, so the run goes on).
        p.migration(
            "20260101000100_index_titles",
            "CREATE INDEX IF NOT EXISTS posts_title_idx ON posts (title);\n",
            Some("DROP INDEX IF EXISTS posts_titel_idx;\n"),
            None,
        );
        // The column comes back without its NOT NULL and DEFAULT.
        p.migration(
            "20260101000200_drop_published",
            "ALTER TABLE posts DROP COLUMN published;\n",
            Some("ALTER TABLE posts ADD COLUMN published boolean;\n"),
            Some("reversibility = \"partial\"\n"),
        );
        // An UPDATE that its down does not undo, in a migration declared full.
        p.migration(
            "20260101000300_shout_titles",
            "UPDATE posts SET title = upper(title);\n",
            Some("SELECT 1;\n"),
            Some("reversibility = \"full\"\n"),
        );
        let out = test(&p, &["--junit", "report.xml"]);
        let text = stdout(&out);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{db:?}: {text}\n{}",
            stderr(&out)
        );
        for id in [
            "20260101000100_index_titles",
            "20260101000200_drop_published",
            "20260101000300_shout_titles",
        ] {
            assert!(
                text.lines()
                    .any(|l| l.starts_with("FAIL") && l.contains(id)),
                "{db:?}: {id} not failed:\n{text}"
            );
        }
        assert!(
            text.lines()
                .any(|l| l.starts_with("ok  ") && l.contains("create_posts")),
            "{text}"
        );
        assert!(text.contains("posts_title_idx"), "{text}");
        assert!(text.contains("published"), "{text}");
        assert!(
            text.contains("posts holds") && text.contains("values differ"),
            "{db:?}: {text}"
        );
        assert!(text.contains("fix: "), "{text}");
        let (_, failures) = junit(&p.path().join("report.xml"));
        assert!(
            failures
                .iter()
                .any(|f| f.contains("20260101000200_drop_published schema")
                    && f.contains("- ")
                    && f.contains("+ ")),
            "{failures:#?}"
        );
        assert!(stderr(&out).contains("3 failed"), "{}", stderr(&out));
        // The error names them once, with how many of how many.
        assert!(
            stderr(&out).contains(
                "3 of 4 migration(s) failed the round trip: 20260101000100_index_titles, \
                 20260101000200_drop_published, 20260101000300_shout_titles\n"
            ),
            "{}",
            stderr(&out)
        );
    }
}

/// A down that drops a column the table had before up: the data check
/// names the table it can no longer read (PostgreSQL checks every table in
/// one round trip first, and on a failure takes each alone), and the run
/// still ends with its report and exit 3.
#[test]
fn a_down_that_drops_a_column_it_did_not_add_is_named_in_the_data_check() {
    for db in [Db::Postgres, Db::Sqlite] {
        let p = Project::new(db);
        base(&p);
        p.migration(
            "20260101000100_add_rank",
            "ALTER TABLE posts ADD COLUMN rank int;\n",
            Some("ALTER TABLE posts DROP COLUMN title;\n"),
            None,
        );
        let out = test(&p, &["--rows", "2"]);
        let text = stdout(&out);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{db:?}: {text}\n{}",
            stderr(&out)
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("FAIL") && l.contains("add_rank")),
            "{db:?}: {text}"
        );
        assert!(
            text.lines()
                .any(|l| l.contains("posts could not be read after down") && l.contains("title")),
            "{db:?}: {text}"
        );
    }
}

#[test]
fn the_column_diff_reads_as_before_and_after_on_postgres() {
    let p = Project::postgres();
    base_and_drop_published(&p);
    let out = test(&p, &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    let minus = text
        .lines()
        .find(|l| l.trim_start().starts_with("- ") && l.contains("published"))
        .unwrap_or_else(|| panic!("{text}"));
    let plus = text
        .lines()
        .find(|l| l.trim_start().starts_with("+ ") && l.contains("published"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(minus.contains("boolean NOT NULL DEFAULT false"), "{minus}");
    assert!(
        !plus.contains("NOT NULL") && !plus.contains("DEFAULT"),
        "{plus}"
    );
}

#[test]
fn an_irreversible_migration_is_applied_and_its_down_is_not_run() {
    let p = Project::sqlite();
    base(&p);
    p.migration(
        "20260101000100_drop_posts",
        "DROP TABLE posts;\n",
        None,
        Some("reversibility = \"irreversible\"\n"),
    );
    let out = test(&p, &["--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], true);
    let last = &doc["migrations"][1];
    assert_eq!(last["migration"], "20260101000100_drop_posts");
    assert_eq!(last["steps"][0]["phase"], "up");
    assert_eq!(last["steps"][1]["status"], "skipped");
    assert!(
        last["steps"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("declared irreversible"),
        "{last:#}"
    );
}

/// An up that fails leaves nothing later migrations could start from: the
/// run stops there, and the summary and the error say how many were not
/// reached, so that a CI log does not read as if they had passed.
#[test]
fn a_failed_up_stops_the_run_and_the_rest_are_counted_as_not_reached() {
    for db in [Db::Postgres, Db::Sqlite] {
        let p = Project::new(db);
        base(&p);
        p.migration(
            "20260101000100_add_to_a_missing_table",
            "ALTER TABLE missing ADD COLUMN rank int;\n",
            Some("ALTER TABLE missing DROP COLUMN rank;\n"),
            None,
        );
        p.migration(
            "20260101000200_index_titles",
            "CREATE INDEX posts_title_idx ON posts (title);\n",
            Some("DROP INDEX posts_title_idx;\n"),
            None,
        );
        let out = test(&p, &[]);
        let (text, err) = (stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(3), "{db:?}: {text}\n{err}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("FAIL") && l.contains("add_to_a_missing_table")),
            "{db:?}: {text}"
        );
        assert!(!text.contains("index_titles"), "{db:?}: {text}");
        assert!(
            err.contains("2 migration(s) tested: 1 passed the round trip, 1 failed")
                && err.contains("; 1 not reached (a failed up stops the run"),
            "{db:?}: {err}"
        );
        assert!(
            err.contains(
                "1 of 3 migration(s) failed the round trip: \
                 20260101000100_add_to_a_missing_table; 1 not reached\n"
            ),
            "{db:?}: {err}"
        );
    }
}

#[test]
fn fixtures_are_loaded_after_their_migration_and_a_misnamed_one_is_refused() {
    let p = Project::sqlite();
    base(&p);
    p.migration(
        "20260101000100_shout_titles",
        "UPDATE posts SET title = upper(title) WHERE title = 'from a fixture';\n",
        Some("SELECT 1;\n"),
        None,
    );
    fixture(
        &p,
        "20260101000000_posts.sql",
        "INSERT INTO posts (id, title) VALUES (1, 'from a fixture');\n",
    );
    // Only the fixture's row is one the UPDATE changes: the failure proves it was loaded.
    let out = test(&p, &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("fixture tests/fixtures/20260101000000_posts.sql"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("FAIL") && l.contains("shout_titles")),
        "{text}"
    );

    fixture(&p, "posts.sql", "SELECT 1;\n");
    let out = test(&p, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("tests/fixtures/posts.sql") && err.contains("fix: rename it"),
        "{err}"
    );
}

#[test]
fn only_the_named_migrations_are_tested_and_junit_goes_to_stdout() {
    let p = Project::sqlite();
    base(&p);
    p.migration(
        "20260101000100_index_titles",
        "CREATE INDEX posts_title_idx ON posts (title);\n",
        Some("DROP INDEX IF EXISTS posts_titel_idx;\n"),
        None,
    );
    let out = test(&p, &["20260101000000", "--format", "junit"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let xml = stdout(&out);
    let doc = roxmltree::Document::parse(&xml).expect("JUnit XML on stdout");
    let names: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|n| n.attribute("classname").unwrap())
        .collect();
    assert!(
        !names.is_empty() && names.iter().all(|n| *n == "20260101000000_create_posts"),
        "{names:?}"
    );
    // Both asked: the same document on stdout and in the file.
    let out = test(
        &p,
        &["20260101000000", "--format", "junit", "--junit", "both.xml"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let file = std::fs::read_to_string(p.path().join("both.xml")).unwrap();
    roxmltree::Document::parse(&file).expect("JUnit XML in the file");
    let cases = |xml: &str| xml.lines().filter(|l| l.contains("<testcase")).count();
    assert_eq!(cases(&file), cases(&stdout(&out)));
    assert_eq!(cases(&file), names.len());

    let out = p.keel().args(["test", "20991231000000"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = p
        .keel()
        .args(["status", "--format", "junit"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// Without --database-url keel starts its own PostgreSQL from the server
/// binaries, and removes it when it ends.
#[test]
fn without_a_url_keel_runs_on_a_throwaway_cluster_and_removes_it() {
    let p = Project::sqlite();
    base(&p);
    let out = p.keel().arg("test").output().unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}\n{}", stdout(&out));
    let dir = err
        .lines()
        .find_map(|l| l.split("cluster in ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no cluster folder named: {err}"))
        .to_string();
    let gone = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        !std::path::Path::new(&dir).exists()
    });
    assert!(gone, "{dir} is still there");
    // The project's own database was never made.
    assert!(!p.path().join("keel.db").exists());
}

/// The scratch database has JIT off, on a server keel makes it on and in
/// the cluster keel starts: some of keel's catalog lookups pass the
/// planner's jit_above_cost, and compiling them took 25 times as long as
/// running them. A migration that fails when JIT is on says so.
#[test]
fn the_scratch_database_runs_without_jit() {
    const CHECK: &str = "DO $$ BEGIN IF current_setting('jit') <> 'off' THEN \
        RAISE EXCEPTION 'JIT is on in the scratch database'; END IF; END $$;\n";
    for p in [Project::postgres(), Project::sqlite()] {
        p.migration("20260101000000_no_jit", CHECK, Some(CHECK), None);
        let out = match p.db {
            // On a server: a scratch database made there.
            Db::Postgres => test(&p, &[]),
            // Without a URL: the throwaway cluster.
            Db::Sqlite => p.keel().arg("test").output().unwrap(),
        };
        assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    }
}

/// The guarded run's rollback with a down.sql that gives the column back
/// with another type: the rollback-verified step fails with the diff in the
/// record and the runbook, and execute exits 5 (rolled back) rather than
/// saying ok.
#[test]
fn a_rollback_that_does_not_restore_the_schema_fails_its_verification() {
    use crate::execute::{ID, V, execute, project, record_files, record_json, runbook, step};
    let p = project(
        Db::Postgres,
        "",
        "",
        "[[smoke]]\nname = \"fails\"\nsql = \"SELECT count(*) FROM profiles WHERE id < 0\"\nexpect = 1\n",
    );
    std::fs::write(
        p.path().join(format!("migrations/{ID}/down.sql")),
        "ALTER TABLE profiles ADD COLUMN bio varchar(1000);\n",
    )
    .unwrap();
    let out = p.keel().args(["runbook", V]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = execute(&p, &["--answers", "answers.toml"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("did not give back the schema"), "{err}");
    let rec = record_json(record_files(&p).last().unwrap());
    let verified = step(&rec, "rollback-verified");
    assert_eq!(verified["outcome"], "failed", "{verified:#}");
    let detail = verified["detail"].as_str().unwrap();
    assert!(
        detail.contains("- column public.profiles.bio text")
            && detail.contains("+ column public.profiles.bio character varying(1000)"),
        "{detail}"
    );
    assert!(
        runbook(&p).contains("character varying(1000)"),
        "{}",
        runbook(&p)
    );
}

/// keel compares only what a migration can reach: the tables it names and,
/// found on the server, what hangs on them (foreign keys of other tables,
/// views) — or everything, for a statement it cannot follow. A down.sql
/// that forgets any of these still fails, naming the object.
#[test]
fn what_a_migration_reaches_beyond_the_tables_it_names_is_compared_on_postgres() {
    let p = Project::postgres();
    p.migration(
        "20260101000000_create",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n\
         CREATE TABLE posts (id bigint PRIMARY KEY, user_id bigint REFERENCES users);\n\
         CREATE VIEW emails AS SELECT email FROM users;\n\
         CREATE TABLE other (id bigint PRIMARY KEY);\n",
        Some("DROP VIEW emails;\nDROP TABLE posts, users, other;\n"),
        None,
    );
    // posts' foreign key goes with the primary key it needs; down.sql
    // puts the key back but not the foreign key.
    p.migration(
        "20260101000100_rekey_users",
        "ALTER TABLE users DROP CONSTRAINT users_pkey CASCADE;\n",
        Some("ALTER TABLE users ADD PRIMARY KEY (id);\n"),
        None,
    );
    // The view goes with the column; down.sql brings back the column only.
    p.migration(
        "20260101000200_drop_email",
        "ALTER TABLE users DROP COLUMN email CASCADE;\n",
        Some("ALTER TABLE users ADD COLUMN email text;\n"),
        Some("reversibility = \"partial\"\n"),
    );
    // A DO block may change any table: the whole schema is compared.
    p.migration(
        "20260101000300_hidden_change",
        "DO $$ BEGIN EXECUTE 'ALTER TABLE other ADD COLUMN note text'; END $$;\n",
        Some("SELECT 1;\n"),
        None,
    );
    let out = test(&p, &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text}\n{}", stderr(&out));
    for (id, object) in [
        (
            "20260101000100_rekey_users",
            "constraint public.posts.posts_user_id_fkey",
        ),
        ("20260101000200_drop_email", "view public.emails"),
        ("20260101000300_hidden_change", "column public.other.note"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("FAIL") && l.contains(id)),
            "{id} not failed:\n{text}"
        );
        assert!(text.contains(object), "{object} not named:\n{text}");
    }
}

/// Whatever a down.sql leaves behind on a table (one kind per table here,
/// each on a table that had none) or takes away (a grant, when it makes
/// the table again) is named: comments (on a table, a column, an index, a
/// constraint, a function), triggers, rules, policies, extended
/// statistics, privileges, views and sequences. (Each up.sql runs again
/// over what its down left, as up-again does.) A policy or a rule once
/// reached a relation of its own name instead of its table, and such a
/// down passed; so did one that left statistics or a comment on anything
/// but a table or column.
#[test]
fn what_a_down_leaves_on_a_table_is_named_whatever_its_kind_on_postgres() {
    let p = Project::postgres();
    p.exec(
        "DO $$ BEGIN CREATE ROLE round_trip_reader; \
         EXCEPTION WHEN duplicate_object THEN NULL; END $$;",
    );
    // A down that forgets everything, and names nothing itself (a SELECT
    // would widen the comparison to the whole schema).
    const NOTHING: &str = "SET lock_timeout = '1s'";
    // A down that makes its table again, without the grant it had.
    const REMAKE: &str = "DROP TABLE t_{kind}; CREATE TABLE t_{kind} (id bigint PRIMARY KEY)";
    let kinds = [
        (
            "comment",
            "COMMENT ON TABLE t_comment IS 'kept'",
            NOTHING,
            "comment public.t_comment",
        ),
        (
            "column_comment",
            "COMMENT ON COLUMN t_column_comment.id IS 'kept'",
            NOTHING,
            "comment public.t_column_comment.id",
        ),
        (
            "trigger",
            "CREATE OR REPLACE TRIGGER kept BEFORE UPDATE ON t_trigger \
             FOR EACH ROW EXECUTE FUNCTION noop()",
            NOTHING,
            "trigger public.t_trigger.kept",
        ),
        (
            "rule",
            "CREATE OR REPLACE RULE kept AS ON DELETE TO t_rule DO INSTEAD NOTHING",
            NOTHING,
            "rule public.t_rule.kept",
        ),
        (
            "policy",
            "DROP POLICY IF EXISTS kept ON t_policy; CREATE POLICY kept ON t_policy USING (id > 0)",
            NOTHING,
            "policy public.t_policy.kept",
        ),
        (
            "grant",
            "ALTER TABLE t_grant ADD COLUMN note text",
            REMAKE,
            "grant SELECT ON TABLE public.t_grant TO round_trip_reader",
        ),
        (
            "column_grant",
            "ALTER TABLE t_column_grant ADD COLUMN note text",
            REMAKE,
            "grant SELECT ON COLUMN public.t_column_grant.id TO round_trip_reader",
        ),
        (
            "statistics",
            "CREATE STATISTICS IF NOT EXISTS kept ON id, n FROM t_statistics",
            NOTHING,
            "statistics public.kept ON id, n FROM t_statistics",
        ),
        (
            "index_comment",
            "COMMENT ON INDEX t_index_comment_pkey IS 'kept'",
            NOTHING,
            "constraint public.t_index_comment.t_index_comment_pkey PRIMARY KEY (id) INDEX COMMENT 'kept'",
        ),
        (
            "constraint_comment",
            "COMMENT ON CONSTRAINT t_constraint_comment_pkey ON t_constraint_comment IS 'kept'",
            NOTHING,
            "constraint public.t_constraint_comment.t_constraint_comment_pkey PRIMARY KEY (id) COMMENT 'kept'",
        ),
        (
            "function_comment",
            "COMMENT ON FUNCTION noop() IS 'kept'",
            NOTHING,
            "function public.noop() RETURNS trigger LANGUAGE plpgsql VOLATILE BODY md5:f3b69a4489d6 COMMENT 'kept'",
        ),
        (
            "view",
            "CREATE OR REPLACE VIEW t_view AS SELECT 1 AS one",
            NOTHING,
            "view public.t_view",
        ),
        (
            "sequence",
            "CREATE SEQUENCE IF NOT EXISTS t_sequence",
            NOTHING,
            "sequence public.t_sequence",
        ),
    ];
    let mut tables = String::from(
        "CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;\n\
         GRANT SELECT ON t_grant TO round_trip_reader;\n\
         GRANT SELECT (id) ON t_column_grant TO round_trip_reader;\n",
    );
    // The view and the sequence, last, are made by their own migration.
    for (kind, ..) in kinds[..kinds.len() - 2].iter().rev() {
        tables.insert_str(
            0,
            &format!("CREATE TABLE t_{kind} (id bigint PRIMARY KEY);\n"),
        );
    }
    tables.push_str("ALTER TABLE t_statistics ADD COLUMN n int;\n");
    p.migration("20260101000000_create", &tables, None, None);
    for (i, (kind, up, down, _)) in kinds.iter().enumerate() {
        p.migration(
            &format!("2026010100{:02}00_{kind}", i + 1),
            &format!("{up};\n"),
            Some(&format!("{};\n", down.replace("{kind}", kind))),
            None,
        );
    }
    let out = test(&p, &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text}\n{}", stderr(&out));
    for (kind, .., object) in kinds {
        assert!(
            text.lines()
                .any(|l| l.starts_with("FAIL") && l.contains(&format!("00_{kind} "))),
            "{kind} not failed:\n{text}"
        );
        assert!(text.contains(object), "{object} not named:\n{text}");
    }
}

/// A table that points at a migration's table is compared by its foreign
/// keys alone (nothing else of it can change), while its rows and those
/// further down the chain still are: a DELETE cascades to every level.
#[test]
fn a_referencing_table_is_compared_by_its_keys_and_rows_down_the_chain_on_postgres() {
    let p = Project::postgres();
    p.migration(
        "20260101000000_create",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n\
         CREATE TABLE posts (id bigint PRIMARY KEY, user_id bigint REFERENCES users ON DELETE CASCADE, \
         title text NOT NULL DEFAULT '', body text);\n\
         CREATE INDEX posts_title ON posts (title);\n\
         CREATE TABLE comments (id bigint PRIMARY KEY, post_id bigint REFERENCES posts ON DELETE CASCADE);\n",
        Some("DROP TABLE comments, posts, users;\n"),
        None,
    );
    // A faithful round trip: users' 4 objects (the table, two columns, the
    // key) and posts' foreign key; none of posts' columns or its index.
    p.migration(
        "20260101000100_rename_email",
        "ALTER TABLE users RENAME COLUMN email TO mail;\n",
        Some("ALTER TABLE users RENAME COLUMN mail TO email;\n"),
        None,
    );
    // Two levels down: the comment of user 1's post goes with the user.
    p.migration(
        "20260101000200_purge_user",
        "DELETE FROM users WHERE id = 1;\n",
        Some("SELECT 1;\n"),
        None,
    );
    fixture(
        &p,
        "20260101000000_create.sql",
        "INSERT INTO users VALUES (1, 'a@example.com');\n\
         INSERT INTO posts (id, user_id) VALUES (1, 1);\n\
         INSERT INTO comments VALUES (1, 1);\n",
    );
    let out = test(&p, &["--rows", "0", "--format", "json"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text}\n{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    let detail = |id: &str, phase: &str| {
        let m = report["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["migration"].as_str().unwrap().ends_with(id))
            .unwrap_or_else(|| panic!("{id} not in {text}"));
        let step = m["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["phase"] == phase)
            .unwrap_or_else(|| panic!("no {phase} step for {id}: {text}"));
        (
            step["status"].as_str().unwrap().to_string(),
            step.to_string(),
        )
    };
    let (status, schema) = detail("rename_email", "schema");
    assert_eq!(status, "passed", "{text}");
    assert!(
        schema.contains("the same 5 schema objects it can reach as before up"),
        "{schema}"
    );
    let (_, data) = detail("rename_email", "data");
    assert!(data.contains("the 3 tables it can reach"), "{data}");
    let (status, data) = detail("purge_user", "data");
    assert_eq!(status, "failed", "{text}");
    assert!(data.contains("comments held 1 rows before up"), "{data}");
}

/// `keel up` keeps the schema each migration starts from (what it can
/// reach); `keel down` compares and, when down.sql does not give it back,
/// keeps the revert, shows the diff and exits 3. A faithful down says
/// nothing and exits 0.
#[test]
fn keel_down_says_when_down_sql_does_not_give_back_the_schema_on_both_databases() {
    for db in [Db::Postgres, Db::Sqlite] {
        let p = Project::new(db);
        base_and_drop_published(&p);
        p.keel().arg("up").assert().success();
        let out = p.keel().arg("down").output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{db:?}: {err}");
        assert!(err.contains("20260101000200_drop_published"), "{err}");
        assert!(err.contains("did not give back the schema"), "{err}");
        let minus = err
            .lines()
            .find(|l| l.trim_start().starts_with("- ") && l.contains("published"))
            .unwrap_or_else(|| panic!("{db:?}: {err}"));
        assert!(minus.contains("NOT NULL DEFAULT"), "{minus}");
        assert!(err.contains("fix: "), "{err}");
        // The revert itself stays: the migration is pending again.
        let status = p.keel().arg("status").output().unwrap();
        assert!(
            stdout(&status)
                .lines()
                .any(|l| l.contains("20260101000200") && l.contains("pending")),
            "{}",
            stdout(&status)
        );
        // The first migration's down.sql gives back the empty schema.
        let out = p.keel().arg("down").output().unwrap();
        assert!(out.status.success(), "{db:?}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("did not give back"),
            "{}",
            stderr(&out)
        );
    }
}
