//! Dirty data in a backfill: a batch some rows break is bisected under
//! savepoints down to those rows, so each bad row costs a few statements
//! (about 2·log2 of the batch), not a statement per row of its batch;
//! every bad row is logged with its key and error, and every good row is
//! changed exactly once.

use crate::common::{Db, Project};
use std::time::Duration;

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
        // keel's own count (`-v`): the UPDATEs of the bisected parts within
        // the same bound, and the statements sent: on PostgreSQL one a
        // bisected batch (the parts run on the server), on SQLite two a part;
        // at most 10 more a batch and one a skipped row either way.
        let line = ran
            .lines()
            .find(|l| l.contains("this run sent "))
            .unwrap_or_else(|| panic!("no statement count with -v:\n{ran}"));
        let number_after = |what: &str| -> u64 {
            line.split(what)
                .nth(1)
                .and_then(|s| s.split(' ').next())
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("no number after {what:?}: {line}"))
        };
        let (sent, parts) = (number_after("this run sent "), number_after(" in "));
        assert!(
            parts + 11 <= bound,
            "{parts} part UPDATEs, bound {bound}: {line}"
        );
        let per_part = match p.db {
            Db::Postgres => 0,
            Db::Sqlite => 2,
        };
        let most = per_part * parts + 10 * 11 + 54;
        assert!(sent <= most, "{sent} statements, bound {most}: {line}");
        assert!(
            line.contains("for 11 batches (4 bisected to isolate the rows that broke them, in "),
            "{line}"
        );
    }
);

/// A crash in the middle of a bisection loses that batch's transaction,
/// its good parts and its progress together: the stored progress still
/// names the last committed batch, and the resumed run does every good row
/// of the batch once.
#[test]
fn kill_9_in_the_middle_of_a_bisection_resumes_from_the_last_committed_batch() {
    let p = Project::postgres();
    dirty_items(&p);
    // Each failed attempt sleeps on its bad row, so that keel can be caught
    // in a bisection: a sleep well into the bisecting statement comes after
    // an earlier failed part, and after the parts that went through. The
    // fourth batch's (bad row 3500, three batches committed) is the one
    // waited for.
    p.exec(
        "CREATE OR REPLACE FUNCTION count_hits() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.n < 0 AND NEW.doubled IS NOT NULL THEN PERFORM pg_sleep(0.3); END IF;
             NEW.hits := OLD.hits + 1; RETURN NEW;
         END $$;",
    );
    let mut keel = p.spawn_keel(&["up"]);
    keel.wait_for(
        &format!("backfill {V}_add_doubled: "),
        Duration::from_secs(30),
    );
    crate::common::process::wait_until("keel in a bisection", Duration::from_secs(60), || {
        count(
            &p,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event = 'PgSleep' AND query LIKE '%keel_bisect%' \
             AND clock_timestamp() - query_start > interval '400 ms' \
             AND (SELECT max(last_key) FROM keel_backfills) = 3000",
        ) == 1
    });
    let killed = keel.kill();
    // The server ends keel's session when its sleep is over.
    crate::common::process::wait_until("keel's session to end", Duration::from_secs(10), || {
        count(
            &p,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
        ) == 0
    });

    // Exactly the committed batches' good rows are done, once each.
    let last_key = p
        .scalar("SELECT last_key FROM keel_backfills")
        .map_or(0, |k| k.parse::<i64>().unwrap());
    assert!(last_key < ROWS, "last key {last_key}:\n{}", killed.stderr);
    let bad_done = bad_keys().iter().filter(|&&k| k <= last_key).count() as i64;
    assert_eq!(
        count(&p, "SELECT count(*) FROM items WHERE hits = 1"),
        last_key - bad_done,
        "{}",
        killed.stderr
    );
    assert_eq!(
        count(
            &p,
            "SELECT count(*) FROM items WHERE hits > 1 OR (hits = 1) <> (id <= (SELECT coalesce(last_key, 0) FROM keel_backfills) AND n >= 0)"
        ),
        0
    );
    assert_eq!(
        count(&p, "SELECT count(*) FROM keel_backfill_failures"),
        bad_done
    );

    // Resumed, without the sleeps: every bad row logged once, every good
    // row done once.
    p.exec(
        "CREATE OR REPLACE FUNCTION count_hits() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN NEW.hits := OLD.hits + 1; RETURN NEW; END $$;",
    );
    p.test(["backfill", V])
        .stderr_contains(&format!(
            "backfill {V}_add_doubled: resuming after key {last_key}"
        ))
        .stderr_contains("54 row(s) could not be transformed and were skipped")
        .code(3)
        .run();
    let logged: Vec<i64> = p
        .rows("SELECT key_value FROM keel_backfill_failures ORDER BY key_value")
        .into_iter()
        .map(|r| r[0].as_deref().unwrap().parse().unwrap())
        .collect();
    assert_eq!(logged, bad_keys());
    assert_eq!(
        count(
            &p,
            "SELECT count(*) FROM items WHERE doubled = n * 2 AND hits = 1"
        ),
        ROWS - 54
    );
    assert_eq!(count(&p, "SELECT count(*) FROM items WHERE hits > 1"), 0);
}
