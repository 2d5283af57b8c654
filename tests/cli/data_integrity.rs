//! Data integrity for `keel test`: rows generated into every empty table
//! from the catalog (`keel seed --generate`), and a digest of each table's
//! rows that ignores their order (`keel inspect --digest`).

use crate::common::{Db, Project, stderr, stdout};

/// parent ← child ← grandchild, with the constraints generation must meet:
/// unique, varchar(3), NOT NULL without default, identity, a generated
/// column, an enum (PostgreSQL), a self-reference, a two-column foreign
/// key; and `odd`, whose CHECK no generated value passes.
fn schema(p: &Project) {
    let sql = match p.db {
        Db::Postgres => {
            "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
             CREATE TABLE parent (
               id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
               code varchar(3) NOT NULL UNIQUE,
               name text NOT NULL,
               feeling mood NOT NULL,
               price numeric(5,2) CHECK (price >= 0),
               born date,
               doubled bigint GENERATED ALWAYS AS (id * 2) STORED,
               boss bigint REFERENCES parent);
             CREATE TABLE child (
               id serial PRIMARY KEY,
               parent_id bigint NOT NULL REFERENCES parent,
               a int NOT NULL, b int NOT NULL, UNIQUE (a, b),
               created timestamptz NOT NULL DEFAULT now());
             CREATE TABLE grandchild (
               child_a int NOT NULL, child_b int NOT NULL,
               note text NOT NULL,
               FOREIGN KEY (child_a, child_b) REFERENCES child (a, b));
             CREATE TABLE odd (id int PRIMARY KEY, name text NOT NULL CHECK (name = 'only-this'));"
        }
        Db::Sqlite => {
            "CREATE TABLE parent (
               id INTEGER PRIMARY KEY,
               code varchar(3) NOT NULL UNIQUE CHECK (length(code) <= 3),
               name TEXT NOT NULL,
               price NUMERIC CHECK (price >= 0),
               born DATE,
               doubled INTEGER GENERATED ALWAYS AS (id * 2) STORED,
               boss INTEGER REFERENCES parent);
             CREATE TABLE child (
               id INTEGER PRIMARY KEY AUTOINCREMENT,
               parent_id INTEGER NOT NULL REFERENCES parent,
               a INTEGER NOT NULL, b INTEGER NOT NULL,
               created TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
               UNIQUE (a, b));
             CREATE TABLE grandchild (
               child_a INTEGER NOT NULL, child_b INTEGER NOT NULL,
               note TEXT NOT NULL,
               FOREIGN KEY (child_a, child_b) REFERENCES child (a, b));
             CREATE TABLE odd (id INTEGER PRIMARY KEY, name TEXT NOT NULL CHECK (name = 'only-this'));"
        }
    };
    p.exec(sql);
}

fn count(p: &Project, sql: &str) -> i64 {
    p.scalar(sql).unwrap().parse().unwrap()
}

/// `keel inspect --digest`'s line for `table`: (rows, digest).
fn digest(p: &Project, table: &str) -> (String, String) {
    let out = p.keel().args(["inspect", "--digest"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.split(' ').next() == Some(table))
        .unwrap_or_else(|| panic!("no line for {table} in:\n{text}"));
    let parts: Vec<&str> = line.split(' ').collect();
    assert_eq!(parts.len(), 4, "{line}");
    assert_eq!(parts[2], "rows", "{line}");
    assert_eq!(parts[3].len(), 64, "{line}");
    (parts[1].to_string(), parts[3].to_string())
}

both!(generated_rows_fill_every_table_they_can, |p: Project| {
    schema(&p);
    let out = p
        .keel()
        .args(["seed", "--generate", "--rows", "5"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for table in ["parent", "child", "grandchild"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(table) && l.ends_with(" 5 rows")),
            "{table} not filled with 5 rows:\n{text}"
        );
        assert_eq!(
            count(&p, &format!("SELECT count(*) FROM {table}")),
            5,
            "{table}"
        );
    }
    // Parents first: the report lists them in the order they were filled.
    let at = |t: &str| text.find(&format!("{t} ")).unwrap();
    assert!(
        at("parent") < at("child") && at("child") < at("grandchild"),
        "{text}"
    );
    // The table no generated value fits: said, with the server's error and the fix.
    let odd = text.lines().position(|l| l.starts_with("odd")).unwrap();
    assert!(
        text.lines().nth(odd).unwrap().ends_with(" 0 rows"),
        "{text}"
    );
    let note = text.lines().nth(odd + 1).unwrap();
    assert!(
        note.contains("could not:") && note.contains("check constraint")
            || note.contains("CHECK constraint failed"),
        "{note}"
    );
    assert!(note.contains("fix: add tests/fixtures/*.sql"), "{note}");
    assert_eq!(count(&p, "SELECT count(*) FROM odd"), 0);
    // The self-reference is left NULL and said so.
    assert!(
        text.contains("left NULL: boss (references its own table)"),
        "{text}"
    );

    // Foreign keys hold, unique values are unique, varchar(3) fits.
    for (what, sql) in [
        (
            "children without their parent",
            "SELECT count(*) FROM child c LEFT JOIN parent p ON p.id = c.parent_id WHERE p.id IS NULL",
        ),
        (
            "grandchildren without their child",
            "SELECT count(*) FROM grandchild g LEFT JOIN child c ON c.a = g.child_a AND c.b = g.child_b WHERE c.id IS NULL",
        ),
        (
            "duplicate codes",
            "SELECT count(*) - count(DISTINCT code) FROM parent",
        ),
        (
            "codes longer than 3",
            "SELECT count(*) FROM parent WHERE length(code) > 3",
        ),
        (
            "parents without a name",
            "SELECT count(*) FROM parent WHERE name IS NULL",
        ),
        (
            "generated column not computed",
            "SELECT count(*) FROM parent WHERE doubled <> id * 2",
        ),
    ] {
        assert_eq!(count(&p, sql), 0, "{what}");
    }
    // Every child row points at a different parent: the keys are spread.
    assert_eq!(count(&p, "SELECT count(DISTINCT parent_id) FROM child"), 5);
    if p.db == Db::Postgres {
        assert_eq!(count(&p, "SELECT count(DISTINCT feeling) FROM parent"), 3);
    }

    // Tables that hold rows are left alone.
    let again = p
        .keel()
        .args(["seed", "--generate", "--rows", "5"])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(count(&p, "SELECT count(*) FROM parent"), 5);
    assert!(!stdout(&again).contains("parent"), "{}", stdout(&again));

    let json = p
        .keel()
        .args(["--format", "json", "seed", "--generate"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let odd = &doc["tables"][0];
    assert_eq!(odd["table"], "odd", "{doc}");
    assert_eq!(odd["inserted"], 0, "{doc}");
    assert!(
        odd["note"].as_str().unwrap().starts_with("could not: "),
        "{doc}"
    );
});

both!(digests_see_content_not_order, |p: Project| {
    p.exec(
        "CREATE TABLE t (id int, name text, note text);
         INSERT INTO t VALUES (1, 'a', NULL), (2, 'b', 'x'), (3, 'c', 'y'), (3, 'c', 'y');",
    );
    let (rows, first) = digest(&p, "t");
    assert_eq!(rows, "4");
    // Same rows, another physical order.
    p.exec(
        "DELETE FROM t;
         INSERT INTO t VALUES (3, 'c', 'y'), (2, 'b', 'x'), (3, 'c', 'y'), (1, 'a', NULL);",
    );
    assert_eq!(
        digest(&p, "t"),
        (rows.clone(), first.clone()),
        "order changed the digest"
    );
    // One value changed.
    p.exec("UPDATE t SET name = 'B' WHERE id = 2");
    let changed = digest(&p, "t");
    assert_eq!(changed.0, "4");
    assert_ne!(changed.1, first, "a changed value kept the digest");
    p.exec("UPDATE t SET name = 'b' WHERE id = 2");
    assert_eq!(digest(&p, "t").1, first, "changed back");
    // NULL → ''.
    p.exec("UPDATE t SET note = '' WHERE id = 1");
    assert_ne!(digest(&p, "t").1, first, "NULL → '' kept the digest");
    p.exec("UPDATE t SET note = NULL WHERE id = 1");
    assert_eq!(digest(&p, "t").1, first);
    // One duplicate row more, then one fewer.
    p.exec("INSERT INTO t VALUES (2, 'b', 'x')");
    let more = digest(&p, "t");
    assert_eq!(more.0, "5");
    assert_ne!(more.1, first);
    p.exec("DELETE FROM t WHERE id = 3");
    p.exec("INSERT INTO t VALUES (3, 'c', 'y')");
    let one_dup_less = digest(&p, "t");
    assert_eq!(one_dup_less.0, "4");
    assert_ne!(
        one_dup_less.1, first,
        "a duplicate moved from one row to another"
    );

    let out = p
        .keel()
        .args(["--format", "json", "inspect", "--digest", "t"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["tables"][0]["table"], "t", "{doc}");
    assert_eq!(doc["tables"][0]["rows"], 4, "{doc}");
    assert_eq!(doc["tables"][0]["digest"], one_dup_less.1.as_str(), "{doc}");
});

both!(generated_data_digests_survive_a_reload, |p: Project| {
    schema(&p);
    p.keel()
        .args(["seed", "--generate", "--rows", "7"])
        .assert()
        .success();
    let before = digest(&p, "parent");
    assert_eq!(before.0, "7");
    // The same rows written back in reverse order, generated column and all.
    p.exec(
        "CREATE TABLE saved AS SELECT * FROM grandchild;
         DELETE FROM grandchild;
         INSERT INTO grandchild SELECT * FROM saved ORDER BY note DESC;
         DROP TABLE saved;",
    );
    let g = digest(&p, "grandchild");
    assert_eq!(g.0, "7");
    p.exec("UPDATE grandchild SET note = note || '!' WHERE child_a = 1");
    assert_ne!(digest(&p, "grandchild"), g);
    assert_eq!(digest(&p, "parent"), before);
});
