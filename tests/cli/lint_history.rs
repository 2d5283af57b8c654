//! `keel lint` on a migrations folder reads it as a history: each migration
//! starts from the tables, column types and indexes the ones before it
//! left, in the order the folder's tool applies them. A table an earlier
//! migration created is an existing table (its indexes block writes), an
//! index it built makes a later `CREATE INDEX IF NOT EXISTS` a no-op, and a
//! type change is judged from the declared type. Each case is checked
//! against the same file linted without its history.

use crate::lint_layouts::lint;

const CREATE: &str = "\
CREATE TABLE users (id bigint PRIMARY KEY, email varchar(100));
CREATE INDEX users_email ON users (email);
";
/// A widening (no rewrite once the old type is known), a no-op, and an
/// index on a table that may hold rows by now.
const LATER: &str = "\
ALTER TABLE users ALTER COLUMN email TYPE varchar(200);
CREATE INDEX IF NOT EXISTS users_email ON users (email);
CREATE INDEX users_id_email ON users (id, email);
";

/// The findings in `file`, as (line, rule).
fn in_file(found: &[(String, u64, String)], file: &str) -> Vec<(u64, String)> {
    found
        .iter()
        .filter(|(f, ..)| f == file)
        .map(|(_, line, rule)| (*line, rule.clone()))
        .collect()
}

fn with_history() -> Vec<(u64, String)> {
    vec![(3, "create-index-blocking".to_string())]
}

fn alone() -> Vec<(u64, String)> {
    vec![
        (1, "change-column-type".to_string()),
        (2, "create-index-blocking".to_string()),
        (3, "create-index-blocking".to_string()),
    ]
}

#[test]
fn keel_folders_start_from_what_the_earlier_migrations_left() {
    let later = "20240102000000_later/up.sql";
    let found = lint(
        &[
            ("20240101000000_users/up.sql", CREATE),
            ("20240101000000_users/down.sql", "DROP TABLE users;\n"),
            (later, LATER),
            (
                "20240102000000_later/down.sql",
                "DROP INDEX users_id_email;\n",
            ),
        ],
        None,
    );
    assert_eq!(in_file(&found, later), with_history(), "{found:?}");
    let found = lint(&[(later, LATER)], None);
    assert_eq!(in_file(&found, later), alone(), "{found:?}");
}

#[test]
fn sqlx_files_start_from_the_earlier_files() {
    let later = "2_later.up.sql";
    let found = lint(
        &[
            ("1_users.up.sql", CREATE),
            ("1_users.down.sql", "DROP TABLE users;\n"),
            (later, LATER),
            ("2_later.down.sql", "DROP INDEX users_id_email;\n"),
        ],
        None,
    );
    assert_eq!(in_file(&found, later), with_history(), "{found:?}");
}

#[test]
fn goose_up_sections_make_the_history() {
    let later = "00002_later.sql";
    let found = lint(
        &[
            (
                "00001_users.sql",
                &format!("-- +goose Up\n{CREATE}\n-- +goose Down\nDROP TABLE users;\n"),
            ),
            (later, &format!("-- +goose Up\n{LATER}")),
        ],
        None,
    );
    let shifted: Vec<(u64, String)> = with_history()
        .into_iter()
        .map(|(line, rule)| (line + 1, rule))
        .collect();
    assert_eq!(in_file(&found, later), shifted, "{found:?}");
}

/// Flyway applies V1_9 before V1_10; sorted as text, V1_10 would come
/// first and find no users table.
#[test]
fn flyway_versions_are_read_in_flyways_order() {
    let later = "V1_10__later.sql";
    let found = lint(&[("V1_9__users.sql", CREATE), (later, LATER)], None);
    assert_eq!(in_file(&found, later), with_history(), "{found:?}");
}

/// In the migration that creates it, a table is new: no lock finding,
/// only the advice on its varchar column.
#[test]
fn a_table_created_in_the_same_migration_is_still_new() {
    let file = "20240101000000_users/up.sql";
    let found = lint(&[(file, &format!("{CREATE}{LATER}"))], None);
    assert_eq!(
        in_file(&found, file),
        vec![(1, "prefer-text".to_string())],
        "{found:?}"
    );
}

/// An index on a table an earlier migration partitioned: PostgreSQL
/// builds it on every partition and refuses CONCURRENTLY, so the fix is
/// the parent's index `ON ONLY`, each partition's built concurrently and
/// attached. `ON ONLY` itself builds nothing and is not reported.
#[test]
fn an_index_on_a_partitioned_table_gets_the_partition_path() {
    let p = crate::common::Project::sqlite();
    let dir = p.path().join("theirs");
    for (file, text) in [
        (
            "1_measurements.up.sql",
            "CREATE TABLE measurements (id bigint, at timestamptz) PARTITION BY RANGE (at);\n\
             CREATE TABLE measurements_2024 PARTITION OF measurements \
             FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');\n",
        ),
        (
            "2_index.up.sql",
            "CREATE INDEX measurements_at ON measurements (at);\n\
             CREATE INDEX CONCURRENTLY measurements_at_c ON measurements (at);\n\
             CREATE INDEX measurements_at_p ON ONLY measurements (at);\n",
        ),
    ] {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(file), text).unwrap();
    }
    let found: Vec<(u64, String, String)> = p
        .lint_findings(&["theirs"])
        .iter()
        .filter(|f| f["rule"] == "create-index-blocking")
        .map(|f| {
            (
                f["line"].as_u64().unwrap(),
                f["message"].as_str().unwrap().to_string(),
                f["suggestion"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        found.iter().map(|f| f.0).collect::<Vec<_>>(),
        [1, 2],
        "{found:#?}"
    );
    // (finding, part of its message, start of its fix, part of its fix)
    let expected = [
        (
            0,
            "partitioned table measurements",
            "`CREATE INDEX measurements_at ON ONLY measurements (at)`",
            "ALTER INDEX measurements_at ATTACH PARTITION measurements_at_<partition>",
        ),
        (
            1,
            "refuses CREATE INDEX CONCURRENTLY",
            "`CREATE INDEX measurements_at_c ON ONLY measurements (at)`",
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS measurements_at_c_<partition>",
        ),
    ];
    for (i, message, fix_start, fix_part) in expected {
        let (_, got_message, got_fix) = &found[i];
        assert!(got_message.contains(message), "{found:#?}");
        assert!(got_fix.starts_with(fix_start), "{found:#?}");
        assert!(got_fix.contains(fix_part), "{found:#?}");
    }
}
