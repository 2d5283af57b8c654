//! What `down` (and `execute`'s automatic rollback) puts back: exactly the
//! data the migration destroyed, into exactly the table it came from.
//! Each scenario applies a destructive migration on real data, reverts it,
//! and compares every value with what was there before.

use crate::common::{Db, Project, stderr, stdout};

const V: &str = "20260201000000";

fn up(p: &Project) -> String {
    let out = p.keel().arg("up").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stderr(&out)
}

fn down(p: &Project) -> String {
    let out = p.keel().arg("down").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stderr(&out)
}

/// The manifest of the one archive the migration's backup folder holds.
fn manifest(p: &Project, id: &str) -> serde_json::Value {
    let dir = p.path().join("backups").join(id);
    let archives: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".zip"))
        .collect();
    assert_eq!(archives.len(), 1, "{}", dir.display());
    let out = p
        .keel()
        .args(["backup", "verify", "--format", "json"])
        .arg(archives[0].path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["manifest"].clone()
}

/// Item 1: a lossy type change is backed up by `up` exactly as `keel plan`
/// lists it, and `down` brings the exact values back.
#[test]
fn lossy_type_changes_come_back_exactly() {
    let p = Project::postgres();
    p.migration(
        "20260101000000_measures",
        "CREATE TABLE measures (id bigint PRIMARY KEY, amount numeric(12,4), at timestamptz, ratio float8, code text);\n",
        Some("DROP TABLE measures;\n"),
        None,
    );
    up(&p);
    p.exec(
        "SET TIME ZONE 'UTC';
         INSERT INTO measures SELECT i, 1.1234 + i, '2026-01-02 03:04:05.678+00'::timestamptz + i * interval '1 hour',
           0.1234567890123 * i, 'ABCDEF' || i FROM generate_series(1, 50) i",
    );
    let before = p.rows(
        "SELECT id::text, amount::text, at::text, ratio::text, code FROM measures ORDER BY id",
    );
    p.migration(
        &format!("{V}_narrow"),
        "ALTER TABLE measures ALTER COLUMN amount TYPE numeric(12,0);\n\
         ALTER TABLE measures ALTER COLUMN at TYPE date;\n\
         ALTER TABLE measures ALTER COLUMN ratio TYPE real;\n\
         ALTER TABLE measures ALTER COLUMN code TYPE text USING left(code, 2);\n",
        Some(
            "ALTER TABLE measures ALTER COLUMN amount TYPE numeric(12,4);\n\
             ALTER TABLE measures ALTER COLUMN at TYPE timestamptz;\n\
             ALTER TABLE measures ALTER COLUMN ratio TYPE float8;\n",
        ),
        Some("reversibility = \"partial\"\n"),
    );
    let plan = p
        .keel()
        .args(["plan", V, "--format", "json"])
        .output()
        .unwrap();
    assert!(plan.status.success(), "{}", stderr(&plan));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let mut planned: Vec<String> = plan["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["columns"][0].as_str().unwrap().to_string())
        .collect();
    planned.sort();
    assert_eq!(planned, ["amount", "at", "code", "ratio"]);

    let err = up(&p);
    assert!(
        err.contains("measures.amount, at, ratio, code: 50 rows"),
        "{err}"
    );
    // The run backed up what the plan listed, no more, no less.
    let m = manifest(&p, &format!("{V}_narrow"));
    let mut backed_up: Vec<String> = m["files"][0]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .filter(|c| c != "id")
        .collect();
    backed_up.sort();
    assert_eq!(backed_up, planned);
    assert_eq!(
        p.scalar("SELECT amount::text FROM measures WHERE id = 1")
            .as_deref(),
        Some("2")
    );

    down(&p);
    p.exec("SET TIME ZONE 'UTC'");
    let after = p.rows(
        "SELECT id::text, amount::text, at::text, ratio::text, code FROM measures ORDER BY id",
    );
    // `at` prints in the server's zone, the same for both reads.
    assert_eq!(after, before, "every value exactly as before the migration");
}

both!(names_with_dots_are_backed_up_and_restored, |p: Project| {
    p.migration(
        "20260101000000_audit",
        "CREATE TABLE \"audit.log\" (id bigint PRIMARY KEY, \"a.b\" text, note text);\n",
        Some("DROP TABLE \"audit.log\";\n"),
        None,
    );
    up(&p);
    for i in 1..=20 {
        p.exec(&format!(
            "INSERT INTO \"audit.log\" VALUES ({i}, 'dotted {i}', 'note {i}')"
        ));
    }
    let query = "SELECT CAST(id AS TEXT), \"a.b\", note FROM \"audit.log\" ORDER BY id";
    let before = p.rows(query);
    p.migration(
        &format!("{V}_drop_dotted"),
        "ALTER TABLE \"audit.log\" DROP COLUMN \"a.b\";\n",
        Some("ALTER TABLE \"audit.log\" ADD COLUMN \"a.b\" text;\n"),
        Some("reversibility = \"partial\"\n"),
    );
    p.migration(
        "20260201000001_drop_audit",
        "DROP TABLE \"audit.log\";\n",
        Some("CREATE TABLE \"audit.log\" (id bigint PRIMARY KEY, note text);\n"),
        Some("reversibility = \"partial\"\n"),
    );
    let err = up(&p);
    assert!(
        err.contains("(\"audit.log\".a.b: 20 rows)") && err.contains("(\"audit.log\": 20 rows)"),
        "{err}"
    );
    let m = manifest(&p, &format!("{V}_drop_dotted"));
    assert_eq!(m["files"][0]["table"], "audit.log");
    p.keel().args(["down", "--steps", "2"]).assert().success();
    assert_eq!(p.rows(query), before);
});

/// Item 4: `SET search_path` inside the migration decides which table an
/// unqualified name means: the backup comes from that one, and down puts
/// the values back into that one only.
#[test]
fn the_search_path_the_migration_sets_picks_the_table() {
    let p = Project::postgres();
    p.exec(
        "CREATE SCHEMA other;
         CREATE TABLE public.items (id bigint PRIMARY KEY, v text);
         CREATE TABLE other.items (id bigint PRIMARY KEY, v text);
         INSERT INTO public.items SELECT i, 'public ' || i FROM generate_series(1, 100) i;
         INSERT INTO other.items SELECT i, 'other ' || i FROM generate_series(1, 100) i;",
    );
    let public = "SELECT id::text, v FROM public.items ORDER BY id";
    let other = "SELECT id::text, v FROM other.items ORDER BY id";
    let (public_before, other_before) = (p.rows(public), p.rows(other));
    p.migration(
        &format!("{V}_drop_other_v"),
        "SET search_path = other, public;\nALTER TABLE items DROP COLUMN v;\n",
        Some("SET search_path = other, public;\nALTER TABLE items ADD COLUMN v text;\n"),
        Some("reversibility = \"partial\"\n"),
    );
    // pg_dump's way of setting it, and a second migration in the same run:
    // keel's own tracking must not follow the migration's search path.
    p.migration(
        "20260201000001_set_config",
        "SELECT pg_catalog.set_config('search_path', 'other', false);\nDELETE FROM items WHERE id > 90;\n",
        Some("SELECT 1;\n"),
        Some("reversibility = \"partial\"\n"),
    );
    let err = up(&p);
    assert!(err.contains("(other.items.v: 100 rows)"), "{err}");
    assert!(err.contains("(other.items: 10 rows)"), "{err}");
    assert_eq!(p.rows(public), public_before, "public.items is untouched");
    let m = manifest(&p, &format!("{V}_drop_other_v"));
    assert_eq!(m["files"][0]["schema"], "other");
    let status = p.keel().arg("status").output().unwrap();
    assert!(status.status.success(), "{}", stderr(&status));

    p.keel().args(["down", "--steps", "2"]).assert().success();
    assert_eq!(
        p.rows(other),
        other_before,
        "other.items has every value back"
    );
    assert_eq!(
        p.rows(public),
        public_before,
        "and public.items still its own"
    );
}

// Item 6: two tables with a foreign key between them, dropped together,
// come back (parent before child whatever the order in the archive); a
// table with a generated column comes back with it computed again.
both!(related_and_generated_tables_come_back, |p: Project| {
    p.migration(
        "20260101000000_shop",
        "CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, upper_name text GENERATED ALWAYS AS (upper(name)) STORED);\n\
         CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers (id), total numeric);\n",
        Some("DROP TABLE orders;\nDROP TABLE customers;\n"),
        None,
    );
    up(&p);
    for i in 1..=30 {
        p.exec(&format!(
            "INSERT INTO customers (id, name) VALUES ({i}, 'customer {i}');
             INSERT INTO orders VALUES ({i}, {i}, {i}.5), ({}, {i}, 2);",
            i + 100
        ));
    }
    let customers = "SELECT CAST(id AS TEXT), name, upper_name FROM customers ORDER BY id";
    let orders = "SELECT CAST(id AS TEXT), CAST(customer_id AS TEXT), CAST(total AS TEXT) FROM orders ORDER BY id";
    let before = (p.rows(customers), p.rows(orders));
    p.migration(
        &format!("{V}_drop_shop"),
        "DROP TABLE orders;\nDROP TABLE customers;\n",
        Some(
            "CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, upper_name text GENERATED ALWAYS AS (upper(name)) STORED);\n\
             CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers (id), total numeric);\n",
        ),
        Some("reversibility = \"partial\"\n"),
    );
    up(&p);
    let m = manifest(&p, &format!("{V}_drop_shop"));
    // The generated column is the database's to compute, not the backup's.
    let columns: Vec<&str> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["columns"].as_array().unwrap())
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(!columns.contains(&"upper_name"), "{columns:?}");
    let err = down(&p);
    assert!(
        err.contains("customers: 30 rows") && err.contains("orders: 60 rows"),
        "{err}"
    );
    assert_eq!((p.rows(customers), p.rows(orders)), before);
});

// Item 6: a DELETE with a WHERE clause backs up exactly the rows it
// deletes, and down puts exactly those back (no duplicate keys).
both!(
    a_delete_backs_up_and_restores_exactly_its_rows,
    |p: Project| {
        p.migration(
            "20260101000000_items",
            "CREATE TABLE items (id bigint PRIMARY KEY, status text, n bigint);\n",
            Some("DROP TABLE items;\n"),
            None,
        );
        up(&p);
        for i in 1..=200 {
            let status = if i % 10 == 0 { "stale" } else { "live" };
            p.exec(&format!("INSERT INTO items VALUES ({i}, '{status}', {i})"));
        }
        let all = "SELECT CAST(id AS TEXT), status, CAST(n AS TEXT) FROM items ORDER BY id";
        let before = p.rows(all);
        p.migration(
            &format!("{V}_purge_stale"),
            "DELETE FROM items WHERE status = 'stale';\nUPDATE items SET n = 0 WHERE id <= 5;\n",
            Some("SELECT 1;\n"),
            Some("reversibility = \"partial\"\n"),
        );
        let err = up(&p);
        assert!(
            err.contains("items: 20 rows") && err.contains("items.n: 5 rows"),
            "{err}"
        );
        assert_eq!(
            p.scalar("SELECT count(*) FROM items").as_deref(),
            Some("180")
        );
        let m = manifest(&p, &format!("{V}_purge_stale"));
        let rows: Vec<(String, u64)> = m["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["kind"].as_str().unwrap().to_string(),
                    f["rows"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(rows, [("rows".to_string(), 20), ("columns".to_string(), 5)]);
        down(&p);
        assert_eq!(p.rows(all), before);
    }
);

// Item 6, through `execute`: a smoke check fails, and the automatic
// rollback puts back related tables and deleted rows.
both!(
    execute_rolls_back_related_tables_and_deleted_rows,
    |p: Project| {
        p.migration(
        "20260101000000_shop",
        "CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL);\n\
         CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers (id), status text);\n\
         CREATE TABLE notes (id bigint PRIMARY KEY, body text);\n",
        Some("DROP TABLE notes;\nDROP TABLE orders;\nDROP TABLE customers;\n"),
        None,
    );
        up(&p);
        for i in 1..=20 {
            let status = if i % 4 == 0 { "void" } else { "paid" };
            p.exec(&format!(
            "INSERT INTO customers VALUES ({i}, 'c{i}'); INSERT INTO orders VALUES ({i}, {i}, '{status}');
             INSERT INTO notes VALUES ({i}, 'note {i}');"
        ));
        }
        let dump = |p: &Project| {
            (
            p.rows("SELECT CAST(id AS TEXT), name FROM customers ORDER BY id"),
            p.rows("SELECT CAST(id AS TEXT), CAST(customer_id AS TEXT), status FROM orders ORDER BY id"),
            p.rows("SELECT CAST(id AS TEXT), body FROM notes ORDER BY id"),
        )
        };
        let before = dump(&p);
        p.migration(
        &format!("{V}_consolidate"),
        "DELETE FROM notes WHERE id > 15;\nDROP TABLE orders;\nDROP TABLE customers;\n",
        Some(
            "CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL);\n\
             CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers (id), status text);\n",
        ),
        Some(
            "reversibility = \"partial\"\n[[smoke]]\nname = \"the notes are all there\"\nsql = \"SELECT count(*) FROM notes\"\nexpect = 20\n",
        ),
    );
        std::fs::write(
            p.path().join("keel.toml"),
            "[environments.staging]\ndatabase_url_env = \"DATABASE_URL\"\nconfirm = \"auto\"\n",
        )
        .unwrap();
        p.keel().args(["runbook", V]).assert().success();
        let out = p
            .keel()
            .args(["execute", V, "--env", "staging", "--yes"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(!err.contains("AUTOMATIC ROLLBACK FAILED"), "{err}");
        assert!(err.contains("ok  rollback-verified"), "{err}");
        assert_eq!(dump(&p), before);
        let _ = stdout(&out);
    }
);

// Item 5: `down --to` a version that is no migration (a typo) reverts
// nothing; so does `up --to`.
both!(an_unknown_target_is_refused, |p: Project| {
    p.sample();
    up(&p);
    let applied = || p.scalar("SELECT count(*) FROM keel_migrations");
    let before = applied();
    let out = p
        .keel()
        .args(["down", "--to", "20260101090001"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--to 20260101090001 names no migration")
            && err.contains("nothing was changed")
            && err.contains("fix: give a version from `keel status`"),
        "{err}"
    );
    assert_eq!(applied(), before);
    let out = p
        .keel()
        .args(["down", "--dry-run", "--to", "2026010109000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = p
        .keel()
        .args(["up", "--to", "20991231000000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // A real version still works, and 0 still means every migration.
    p.keel()
        .args(["down", "--to", "20260101090000", "-q"])
        .assert()
        .success();
    p.keel()
        .args(["down", "--to", "0", "-q"])
        .assert()
        .success();
    assert_eq!(applied().as_deref(), Some("0"));
});
