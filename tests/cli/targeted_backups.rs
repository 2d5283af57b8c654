//! `DELETE … WHERE` and `UPDATE … WHERE` back up exactly the rows they
//! touch, read back here with the real `unzip`, and `down` puts exactly
//! those back with no collision against the rows that stayed. A condition
//! that would select other rows at backup time (random(), the clock)
//! widens to every row, and a table without a key is put back whole.

use crate::common::{Db, Project};

const ITEMS: &str = "20260101000000_items";
const CHANGE: &str = "20260201000000_change_items";
const ALL: &str = "SELECT CAST(id AS TEXT), status, CAST(n AS TEXT) FROM items ORDER BY id";

/// `items` with 15,000 rows, 10 of them `stale`; `keyed` says whether it
/// has a primary key.
fn items(p: &Project, keyed: bool) {
    let id = if keyed {
        "bigint PRIMARY KEY"
    } else {
        "bigint"
    };
    p.migration(
        ITEMS,
        &format!("CREATE TABLE items (id {id}, status text, n bigint);\n"),
        Some("DROP TABLE items;\n"),
        None,
    );
    p.test(["up"]).run();
    let series = match p.db {
        Db::Postgres => "SELECT i FROM generate_series(1, 15000) AS g (i)",
        Db::Sqlite => {
            "WITH RECURSIVE g (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < 15000) SELECT i FROM g"
        }
    };
    p.exec(&format!(
        "INSERT INTO items (id, status, n) SELECT i, CASE WHEN i % 1500 = 0 THEN 'stale' ELSE 'live' END, i FROM ({series}) AS s"
    ));
}

/// The archive of `CHANGE`, its manifest and one CSV, read with `unzip`.
fn archive(p: &Project) -> (serde_json::Value, String) {
    let dir = p.path().join("backups").join(CHANGE);
    let zips: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "zip"))
        .collect();
    assert_eq!(zips.len(), 1, "{zips:?}");
    let unzip = |member: &str| {
        let out = std::process::Command::new("unzip")
            .arg("-p")
            .arg(&zips[0])
            .arg(member)
            .output()
            .expect("unzip is installed");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let manifest: serde_json::Value = serde_json::from_str(&unzip("manifest.json")).unwrap();
    let csv = unzip(manifest["files"][0]["name"].as_str().unwrap());
    (manifest, csv)
}

both!(
    a_delete_of_ten_rows_in_fifteen_thousand_backs_up_those_ten,
    |p: Project| {
        items(&p, true);
        let before = p.rows(ALL);
        p.migration(
            CHANGE,
            "DELETE FROM items WHERE status = 'stale';\n",
            Some("SELECT 1;\n"),
            Some("reversibility = \"partial\"\n"),
        );
        p.test(["up"]).stderr_contains("(items: 10 rows)").run();
        let (manifest, csv) = archive(&p);
        let f = &manifest["files"][0];
        assert_eq!(f["kind"], "rows");
        assert_eq!(f["key"], serde_json::json!(["id"]));
        assert_eq!(f["rows_where"], "status = 'stale'");
        assert_eq!(f["rows"], 10);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "id,status,n");
        let ids: Vec<&str> = lines[1..]
            .iter()
            .map(|l| l.split(',').next().unwrap())
            .collect();
        let mut ids: Vec<u64> = ids.iter().map(|i| i.parse().unwrap()).collect();
        ids.sort();
        assert_eq!(ids, (1..=10).map(|i| i * 1500).collect::<Vec<u64>>());
        p.test(["down"]).stderr_contains("(items: 10 rows)").run();
        assert_eq!(p.rows(ALL), before);
    }
);

both!(
    an_update_of_ten_rows_sets_back_exactly_their_old_values,
    |p: Project| {
        items(&p, true);
        p.exec("UPDATE items SET n = n + 1 WHERE id > 14990");
        let before = p.rows(ALL);
        p.migration(
            CHANGE,
            "UPDATE items SET n = -1, status = 'gone' WHERE status = 'stale';\n",
            Some("SELECT 1;\n"),
            Some("reversibility = \"partial\"\n"),
        );
        p.test(["up"])
            .stderr_contains("(items.n, status: 10 rows)")
            .run();
        let (manifest, csv) = archive(&p);
        assert_eq!(manifest["files"][0]["kind"], "columns");
        assert_eq!(csv.lines().next(), Some("id,n,status"));
        assert_eq!(csv.lines().count(), 11);
        // Written after the migration, on rows it did not touch: kept.
        p.exec("UPDATE items SET n = 0 WHERE id = 1");
        p.test(["down"]).run();
        let mut expected = before;
        expected[0][2] = Some("0".into());
        assert_eq!(p.rows(ALL), expected);
    }
);

// random() picks other rows when the backup runs than when the DELETE
// does: every row is backed up, and down puts back exactly the ones whose
// key is gone.
both!(
    a_random_condition_backs_up_every_row_and_down_restores_what_went,
    |p: Project| {
        items(&p, true);
        let before = p.rows(ALL);
        let random = match p.db {
            Db::Postgres => "random() < 0.5",
            Db::Sqlite => "random() % 2 = 0",
        };
        p.migration(
            CHANGE,
            &format!("DELETE FROM items WHERE {random};\n"),
            Some("SELECT 1;\n"),
            Some("reversibility = \"partial\"\n"),
        );
        let dry = p.test(["up", "--dry-run"]).run();
        let up = p.test(["up"]).run();
        let left: usize = p
            .scalar("SELECT count(*) FROM items")
            .unwrap()
            .parse()
            .unwrap();
        assert!(left < 15000, "{left}");
        let down = p.test(["down"]).run();
        // Every deleted row is back, and nothing else changed.
        assert_eq!(p.rows(ALL), before);
        assert!(up.stderr.contains("(items: 15000 rows)"), "{}", up.stderr);
        assert!(
            down.stderr.contains(&format!(
                "{left} deleted row(s) were there again and were left as they are"
            )),
            "{}",
            down.stderr
        );
        assert!(dry.stdout.contains("(DELETE on items): by-key: every row of items (every row is exported: the clause calls random(), which gives another answer when the backup runs than when the statement does), every column, keyed by id; down inserts those whose key is gone"), "{}", dry.stdout);
    }
);

// Without a key, an UPDATE's old values cannot be set back row by row:
// the table is backed up whole and down puts it back whole.
both!(
    an_update_and_a_delete_on_a_table_without_a_key_come_back_exactly,
    |p: Project| {
        items(&p, false);
        // A duplicate of a stale row: two rows nothing tells apart.
        p.exec("INSERT INTO items VALUES (1500, 'stale', 1500)");
        let before = p.rows(ALL);
        p.migration(
            CHANGE,
            "UPDATE items SET n = 0 WHERE status = 'stale';\nDELETE FROM items WHERE id > 14000;\n",
            Some("SELECT 1;\n"),
            Some("reversibility = \"partial\"\n"),
        );
        p.test(["validate"])
            .stdout_contains("line 1 (UPDATE overwrites on items): whole-table: every row and column of items: items has no primary key and no unique index on NOT NULL columns")
            .run();
        p.test(["up"]).stderr_contains("(items: 15001 rows)").run();
        let (manifest, _) = archive(&p);
        let f = &manifest["files"][0];
        assert_eq!(f["kind"], "replace");
        assert_eq!(f["destroyed"], serde_json::json!(["n"]));
        assert_eq!(
            p.scalar("SELECT count(*) FROM items").as_deref(),
            Some("14001")
        );
        p.test(["down"]).run();
        assert_eq!(p.rows(ALL), before);
    }
);

// PostgreSQL runs a data change inside a WITH clause; keel used to see
// only the statement around it (and took the INSERT's table for the first
// table of the clause), so the rows it deleted were neither flagged nor
// backed up. (SQLite allows only SELECT in a WITH clause.)
#[test]
fn a_delete_inside_a_with_clause_is_backed_up_and_put_back_on_postgres() {
    let p = Project::postgres();
    items(&p, true);
    let before = p.rows(ALL);
    p.migration(
        CHANGE,
        "CREATE TABLE gone_items (id bigint, status text, n bigint);\n\
         WITH gone AS (DELETE FROM items WHERE status = 'stale' RETURNING *)\n\
         INSERT INTO gone_items SELECT * FROM gone;\n",
        Some("DROP TABLE gone_items;\n"),
        Some("reversibility = \"partial\"\n"),
    );
    // Its WHERE may read the clause's other queries: the whole table.
    p.test(["up"]).stderr_contains("(items: 15000 rows)").run();
    assert_eq!(
        p.rows("SELECT count(*) FROM gone_items")[0][0].as_deref(),
        Some("10")
    );
    let (manifest, _) = archive(&p);
    assert_eq!(manifest["files"][0]["rows"], 15000);
    p.test(["down"]).run();
    assert_eq!(p.rows(ALL), before);
}

#[test]
fn a_delete_inside_a_with_clause_is_flagged_on_postgres() {
    let p = Project::postgres();
    p.migration(
        CHANGE,
        "WITH gone AS (DELETE FROM items RETURNING id)\nSELECT count(*) FROM gone;\n",
        Some("SELECT 1;\n"),
        None,
    );
    let out = p.keel().arg("lint").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("up.sql:1:15: warning[backfill-in-migration] DELETE without WHERE touches every row of items"),
        "{text}"
    );
}
