//! Dirty data in a backfill: a batch some rows break is bisected under
//! savepoints down to those rows, so each bad row costs a few statements
//! (about 2·log2 of the batch), not a statement per row of its batch;
//! every bad row is logged with its key and error, and every good row is
//! changed exactly once.

use crate::common::{Db, Project};

const V: &str = "20250101000002";
const BATCH: u64 = 1000;
/// 10 batches of 1000 and a last one of 50.
const ROWS: i64 = 10_050;

/// The rows that break the batch: one in the first batch, one in the
/// fourth, two in the sixth, and every row of the last batch (50).
fn bad_keys() -> Vec<i64> {
    [42, 3500, 5100, 5900]
        .into_iter()
        .chain(10_001..=ROWS)
        .collect()
}

/// `items (id, n, hits)` where a trigger counts in `hits` how often each
/// row was changed (a rolled-back change leaves no count), and
/// `n` is negative for the bad rows, which the new column's CHECK refuses.
/// On PostgreSQL a sequence counts every UPDATE statement run on `items`,
/// rolled back or not (nextval is not transactional).
fn dirty_items(p: &Project) {
    p.migration(
        "20250101000001_items",
        "CREATE TABLE items (id bigint PRIMARY KEY, n bigint NOT NULL, hits bigint NOT NULL DEFAULT 0);\n",
        Some("DROP TABLE items;\n"),
        None,
    );
    p.keel().args(["up", "-q"]).assert().success();
    let bad: Vec<String> = bad_keys().iter().map(i64::to_string).collect();
    let bad = bad.join(", ");
    match p.db {
        Db::Postgres => p.exec(&format!(
            "INSERT INTO items (id, n) SELECT i, i FROM generate_series(1, {ROWS}) i;
             UPDATE items SET n = -n WHERE id IN ({bad});
             CREATE FUNCTION count_hits() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN NEW.hits := OLD.hits + 1; RETURN NEW; END $$;
             CREATE TRIGGER items_hits BEFORE UPDATE ON items
                 FOR EACH ROW EXECUTE FUNCTION count_hits();
             CREATE SEQUENCE item_updates;
             CREATE FUNCTION count_update() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN PERFORM nextval('item_updates'); RETURN NULL; END $$;
             CREATE TRIGGER items_updates BEFORE UPDATE ON items
                 FOR EACH STATEMENT EXECUTE FUNCTION count_update();"
        )),
        Db::Sqlite => p.exec(&format!(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {ROWS})
             INSERT INTO items (id, n) SELECT i, i FROM s;
             UPDATE items SET n = -n WHERE id IN ({bad});
             CREATE TRIGGER items_hits AFTER UPDATE ON items
             BEGIN UPDATE items SET hits = hits + 1 WHERE id = NEW.id; END;"
        )),
    }
    p.migration(
        &format!("{V}_add_doubled"),
        "ALTER TABLE items ADD COLUMN doubled bigint CHECK (doubled >= 0);\n",
        Some("ALTER TABLE items DROP COLUMN doubled;\n"),
        Some(&format!(
            "description = \"doubled, filled in batches\"\n\n[backfill]\ntable = \"items\"\nkey = \"id\"\n\
             set = {{ doubled = \"n * 2\" }}\nwhere = \"doubled IS NULL\"\nbatch_size = {BATCH}\ndelay_ms = 0\n"
        )),
    );
}

fn count(p: &Project, sql: &str) -> i64 {
    p.scalar(sql).unwrap().parse().unwrap()
}

/// ⌈log2 n⌉ for n ≥ 1.
fn log2_ceil(n: u64) -> u64 {
    u64::from(64 - (n.max(1) - 1).leading_zeros())
}

/// The most UPDATEs bisection may send for a batch of `m` keys with `k`
/// bad ones: the failed batch, then per bad row at most two halves a level
/// and the row itself, and never more than the 2m - 2 parts of the whole
/// tree.
fn updates_bound(m: u64, k: u64) -> u64 {
    if k == 0 {
        return 1;
    }
    1 + (k * (2 * log2_ceil(m) + 1)).min(2 * m - 2)
}

both!(
    bad_rows_are_bisected_out_of_their_batches_and_each_good_row_is_done_once,
    |p: Project| {
        dirty_items(&p);
        let error = match p.db {
            Db::Postgres => "new row for relation \"items\" violates check constraint",
            Db::Sqlite => "CHECK constraint failed",
        };
        let ran = p
            .test(["up", "-v"])
            .stderr_contains(&format!(
                "backfill {V}_add_doubled: skipped key 42: {error}"
            ))
            .stderr_contains("54 row(s) could not be transformed and were skipped")
            .code(3)
            .run();
        let ran = ran.stderr;

        // Every bad row logged with its key and its own error, once.
        let csv = std::fs::read_to_string(
            p.path()
                .join(format!("backfills/{V}_add_doubled/failures.csv")),
        )
        .unwrap();
        let logged: Vec<i64> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(logged, bad_keys(), "{csv}");
        let check = match p.db {
            Db::Postgres => "violates check constraint \"\"items_doubled_check\"\" (23514)",
            Db::Sqlite => "CHECK constraint failed",
        };
        assert!(csv.lines().skip(1).all(|l| l.contains(check)), "{csv}");

        // Every good row changed exactly once, no bad row changed.
        let good = ROWS - bad_keys().len() as i64;
        assert_eq!(
            count(
                &p,
                "SELECT count(*) FROM items WHERE doubled = n * 2 AND hits = 1"
            ),
            good
        );
        assert_eq!(count(&p, "SELECT count(*) FROM items WHERE hits <> 1"), 54);
        assert_eq!(
            count(
                &p,
                "SELECT count(*) FROM items WHERE n < 0 AND doubled IS NULL AND hits = 0"
            ),
            54
        );

        // The mechanism: a few UPDATEs per bad row, not one per row of its
        // batch (which was 3 statements for each of 3050 rows here).
        let batches = [(1000, 1), (1000, 1), (1000, 2), (50, 50)];
        let clean = 11 - batches.len() as u64;
        let bound = clean
            + batches
                .iter()
                .map(|&(m, k)| updates_bound(m, k))
                .sum::<u64>();
        if p.db == Db::Postgres {
            let updates = count(&p, "SELECT last_value FROM item_updates") as u64;
            assert!(
                updates <= bound,
                "{updates} UPDATE statements on items, bound {bound}"
            );
        }
        // keel's own count: each UPDATE with its savepoint and release or
        // rollback, at most 10 more statements a batch, one per skipped row.
        let line = ran
            .lines()
            .find(|l| l.contains("this run sent "))
            .unwrap_or_else(|| panic!("no statement count with -v:\n{ran}"));
        let sent: u64 = line
            .split("this run sent ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|s| s.parse().ok())
            .unwrap();
        assert!(
            sent <= 3 * bound + 10 * 11 + 54,
            "{sent} statements, bound {}: {line}",
            3 * bound + 10 * 11 + 54
        );
        assert!(
            line.ends_with("for 11 batches (4 bisected to isolate the rows that broke them)"),
            "{line}"
        );
    }
);
