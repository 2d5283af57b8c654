//! The lock probe: for every statement kind the analysis classifies, run a
//! sample in a rolled-back transaction on the real test server and check
//! that what the model claims is what PostgreSQL does — the lock mode in
//! `pg_locks`, a rewrite (`pg_class.relfilenode` changes) and a scan
//! (`pg_stat_xact_user_tables.seq_scan` grows). This keeps lint-rules.md
//! true on whatever server version the suite runs against.

use crate::common::{Project, block_on};
use keel::analysis::{Lock, Operation, PgVersion, Schema, Tri, classify};
use sqlx::{Connection, PgConnection, Row};
use std::collections::BTreeMap;

/// Committed before the probes; the model reads it too, so it knows the
/// column types, indexes and constraints the samples rely on.
const SETUP: &str = "
CREATE TABLE users (id bigint PRIMARY KEY, email text, name varchar(20), age int,
                    seen timestamp, score numeric(10,2));
INSERT INTO users SELECT g, 'u' || g || '@example.com', 'n' || g, g, now(), g
  FROM generate_series(1, 200) g;
CREATE INDEX users_email_idx ON users (email);
ALTER TABLE users ADD CONSTRAINT users_age_nn CHECK (age IS NOT NULL);
CREATE TABLE posts (id bigint PRIMARY KEY, user_id bigint, title text);
INSERT INTO posts SELECT g, g, 't' FROM generate_series(1, 200) g;
ALTER TABLE posts ADD CONSTRAINT posts_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
CREATE TABLE tags (id bigint NOT NULL, label text);
INSERT INTO tags SELECT g, 'l' FROM generate_series(1, 200) g;
CREATE UNIQUE INDEX tags_label_key ON tags (label, id);
CREATE TABLE events (id bigint, at date) PARTITION BY RANGE (at);
CREATE TABLE events_2023 PARTITION OF events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE events_2024 (id bigint, at date);
CREATE UNLOGGED TABLE scratch (id bigint);
INSERT INTO scratch SELECT generate_series(1, 200);
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER users_touch BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION touch();
CREATE VIEW user_emails AS SELECT id, email FROM users;
CREATE TABLE ruled (id bigint);
CREATE POLICY ruled_positive ON ruled USING (id > 0);
CREATE RULE ruled_keep AS ON DELETE TO ruled DO INSTEAD NOTHING;
CREATE STATISTICS users_deps (dependencies) ON id, age FROM users;
ANALYZE;
";

/// One sample statement, with what the model cannot know by itself.
struct Case {
    sql: &'static str,
    /// Run inside the transaction first (e.g. the session TimeZone).
    prep: &'static str,
    /// The expected rewrite where the model says "depends".
    rewrite: Option<bool>,
    /// TRUNCATE swaps in a new empty file: a new relfilenode, no copy.
    new_file: bool,
}

fn case(sql: &'static str) -> Case {
    Case {
        sql,
        prep: "",
        rewrite: None,
        new_file: false,
    }
}

fn cases() -> Vec<Case> {
    let mut c: Vec<Case> = [
        "CREATE TABLE profiles (id bigint PRIMARY KEY, user_id bigint REFERENCES users (id))",
        "CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')",
        "DROP TABLE tags",
        "ALTER TABLE tags RENAME TO labels",
        "ALTER TABLE users ADD COLUMN bio text",
        "ALTER TABLE users ADD COLUMN active boolean NOT NULL DEFAULT true",
        "ALTER TABLE users ADD COLUMN token float8 DEFAULT random()",
        "ALTER TABLE users ADD COLUMN n bigserial",
        "ALTER TABLE users ADD COLUMN m bigint GENERATED ALWAYS AS IDENTITY",
        "ALTER TABLE users ADD COLUMN g bigint GENERATED ALWAYS AS (id * 2) STORED",
        "ALTER TABLE users ADD COLUMN ck int CHECK (ck > 0)",
        "ALTER TABLE posts ADD COLUMN editor_id bigint REFERENCES users (id)",
        // With a default, every row holds a value the foreign key checks.
        "ALTER TABLE posts ADD COLUMN owner_id bigint DEFAULT 1 REFERENCES users (id)",
        "ALTER TABLE users DROP COLUMN name",
        "WITH gone AS (DELETE FROM scratch RETURNING id) SELECT count(*) FROM gone",
        "COMMENT ON TABLE users IS 'who signs in'",
        "COMMENT ON COLUMN users.email IS 'lower case'",
        "COMMENT ON CONSTRAINT users_age_nn ON users IS 'checked'",
        "COMMENT ON TRIGGER users_touch ON users IS 'keeps seen'",
        "COMMENT ON VIEW user_emails IS 'for the mailer'",
        "COMMENT ON INDEX users_email_idx IS 'for sign-in'",
        "CREATE POLICY ruled_small ON ruled USING (id < 100)",
        "ALTER POLICY ruled_positive ON ruled USING (id > 1)",
        "ALTER POLICY ruled_positive ON ruled RENAME TO ruled_plus",
        "DROP POLICY ruled_positive ON ruled",
        "CREATE RULE ruled_stay AS ON UPDATE TO ruled DO INSTEAD NOTHING",
        "CREATE OR REPLACE RULE ruled_keep AS ON DELETE TO ruled DO ALSO NOTHING",
        "ALTER RULE ruled_keep ON ruled RENAME TO ruled_hold",
        "DROP RULE ruled_keep ON ruled",
        "CREATE STATISTICS users_more (ndistinct) ON id, email FROM users",
        "ALTER STATISTICS users_deps SET STATISTICS 50",
        "DROP STATISTICS users_deps",
        "ALTER TABLE users RENAME COLUMN name TO full_name",
        "ALTER TABLE users ALTER COLUMN age TYPE bigint",
        "ALTER TABLE users ALTER COLUMN name TYPE varchar(50)",
        "ALTER TABLE users ALTER COLUMN name TYPE text",
        "ALTER TABLE users ALTER COLUMN name TYPE varchar(10)",
        "ALTER TABLE users ALTER COLUMN score TYPE numeric(12,2)",
        "ALTER TABLE users ALTER COLUMN email SET NOT NULL",
        "ALTER TABLE users ALTER COLUMN age SET NOT NULL",
        "ALTER TABLE users ALTER COLUMN email DROP NOT NULL",
        "ALTER TABLE users ALTER COLUMN email SET DEFAULT ''",
        "ALTER TABLE users ALTER COLUMN email DROP DEFAULT",
        "ALTER TABLE posts ADD CONSTRAINT posts_user_fk2 FOREIGN KEY (user_id) REFERENCES users (id)",
        "ALTER TABLE posts ADD CONSTRAINT posts_user_fk2 FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID",
        "ALTER TABLE posts VALIDATE CONSTRAINT posts_user_fk",
        "ALTER TABLE users ADD CONSTRAINT users_id_pos CHECK (id > 0)",
        "ALTER TABLE users ADD CONSTRAINT users_id_pos CHECK (id > 0) NOT VALID",
        "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email)",
        "ALTER TABLE tags ADD CONSTRAINT tags_label_key UNIQUE USING INDEX tags_label_key",
        "ALTER TABLE tags ADD PRIMARY KEY (id)",
        "ALTER TABLE tags ADD CONSTRAINT tags_excl EXCLUDE USING btree (id WITH =)",
        "ALTER TABLE posts DROP CONSTRAINT posts_user_fk",
        "CREATE INDEX users_name_idx ON users (name)",
        "CREATE UNIQUE INDEX users_email_uq ON users (email)",
        "CREATE INDEX CONCURRENTLY users_name_idx ON users (name)",
        // The parent's index alone: built at once, no partition scanned.
        "CREATE INDEX events_at_idx ON ONLY events (at)",
        "DROP INDEX users_email_idx",
        "DROP INDEX CONCURRENTLY users_email_idx",
        "ALTER INDEX users_email_idx RENAME TO users_mail_idx",
        "REINDEX TABLE users",
        "REINDEX INDEX users_email_idx",
        "REINDEX INDEX CONCURRENTLY users_email_idx",
        "ALTER TABLE events DETACH PARTITION events_2023",
        "ALTER TABLE events DETACH PARTITION events_2023 CONCURRENTLY",
        "ALTER TABLE events ATTACH PARTITION events_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
        "ALTER TABLE tags SET UNLOGGED",
        "ALTER TABLE scratch SET LOGGED",
        "CLUSTER users USING users_pkey",
        "VACUUM FULL users",
        "VACUUM users",
        "ALTER TYPE mood ADD VALUE 'curious'",
        "ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'",
        "UPDATE users SET email = lower(email)",
        "DELETE FROM posts",
        "INSERT INTO tags VALUES (1000, 'x')",
        "CREATE TRIGGER posts_touch BEFORE UPDATE ON posts FOR EACH ROW EXECUTE FUNCTION touch()",
        "DROP TRIGGER users_touch ON users",
        "ALTER TABLE users DISABLE TRIGGER users_touch",
        "DROP VIEW user_emails",
        "DROP FUNCTION touch() CASCADE",
        "LOCK TABLE users IN SHARE MODE",
        "ALTER TABLE users SET (fillfactor = 90)",
    ]
    .into_iter()
    .map(case)
    .collect();
    c.push(Case {
        new_file: true,
        ..case("TRUNCATE posts")
    });
    // timestamp → timestamptz rewrites unless the session TimeZone is UTC (12+).
    c.push(Case {
        prep: "SET LOCAL TimeZone = 'UTC'",
        rewrite: Some(false),
        ..case("ALTER TABLE users ALTER COLUMN seen TYPE timestamptz")
    });
    c.push(Case {
        prep: "SET LOCAL TimeZone = 'Europe/Amsterdam'",
        rewrite: Some(true),
        ..case("ALTER TABLE users ALTER COLUMN seen TYPE timestamptz")
    });
    c
}

/// How many claims the probe compared, and how many effects it saw.
#[derive(Default)]
struct Checked {
    locks: usize,
    rewrites: usize,
    scans: usize,
    no_transaction: usize,
}

/// What PostgreSQL did to one relation.
struct Seen {
    lock: Option<Lock>,
    rewritten: bool,
    scanned: bool,
}

#[test]
fn postgres_agrees_with_the_model() {
    let p = Project::postgres();
    p.exec(SETUP);
    let url = p.url.clone();
    let mismatches = block_on(async move {
        let mut conn = PgConnection::connect(&url).await.unwrap();
        let num: String = sqlx::query_scalar("SHOW server_version_num")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let version = PgVersion::from_num(num.parse().unwrap());
        let mut schema = Schema::new(Some(version));
        classify(SETUP, &mut schema, true);
        let schema = schema.after_up();
        let mut out = Vec::new();
        let mut checked = Checked::default();
        for c in cases() {
            let op = model(&schema, c.sql);
            out.extend(probe(&mut conn, &c, &op, &mut checked).await);
        }
        // Guard against a probe that silently compares nothing.
        assert!(
            checked.locks >= 60,
            "only {} lock claims compared",
            checked.locks
        );
        assert!(
            checked.rewrites >= 8,
            "only {} rewrites seen",
            checked.rewrites
        );
        assert!(checked.scans >= 8, "only {} scans seen", checked.scans);
        assert!(
            checked.no_transaction >= 5,
            "only {} non-transactional",
            checked.no_transaction
        );
        out
    });
    assert!(
        mismatches.is_empty(),
        "the model disagrees with PostgreSQL:\n{}",
        mismatches.join("\n")
    );
}

fn model(schema: &Schema, sql: &str) -> Operation {
    let mut schema = schema.clone();
    let c = classify(sql, &mut schema, true);
    assert!(c.syntax.is_empty(), "{sql}: {:?}", c.syntax);
    c.ops.into_iter().next().expect("one statement")
}

async fn probe(
    conn: &mut PgConnection,
    c: &Case,
    op: &Operation,
    checked: &mut Checked,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut claimed: BTreeMap<String, Lock> = BTreeMap::new();
    for l in op.actions.iter().flat_map(|a| &a.locks) {
        let e = claimed.entry(l.table.clone()).or_insert(l.lock);
        *e = (*e).max(l.lock);
    }
    let mut tx = conn.begin().await.unwrap();
    if !c.prep.is_empty() {
        sqlx::raw_sql(c.prep).execute(&mut *tx).await.unwrap();
    }
    let mut before = BTreeMap::new();
    for t in op.tables().iter().chain(claimed.keys()) {
        if let Some(state) = relation(&mut tx, t).await {
            before.insert(t.clone(), state);
        }
    }
    let result = sqlx::raw_sql(c.sql).execute(&mut *tx).await;
    if op.no_transaction() {
        checked.no_transaction += 1;
        match result {
            Err(e)
                if e.to_string()
                    .contains("cannot run inside a transaction block") => {}
            other => out.push(format!(
                "{}: model says it cannot run in a transaction, PostgreSQL: {other:?}",
                c.sql
            )),
        }
        let _ = tx.rollback().await;
        return out;
    }
    if let Err(e) = result {
        let _ = tx.rollback().await;
        return vec![format!("{}: failed: {e}", c.sql)];
    }
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    for t in op.tables().iter().chain(claimed.keys()) {
        let b = before.get(t).copied();
        let oid = match b {
            Some((oid, _, _)) => Some(oid),
            None => relation(&mut tx, t).await.map(|r| r.0),
        };
        let Some(oid) = oid else { continue };
        let after = state_of(&mut tx, oid).await;
        seen.insert(
            t.clone(),
            Seen {
                lock: strongest_lock(&mut tx, oid).await,
                rewritten: b.is_some_and(|(_, file, _)| after.0.is_some_and(|f| f != file)),
                scanned: b.is_some_and(|(_, _, scans)| after.1 > scans),
            },
        );
    }
    tx.rollback().await.unwrap();

    for (table, lock) in &claimed {
        checked.locks += 1;
        let got = seen.get(table).and_then(|s| s.lock);
        if got != Some(*lock) {
            out.push(format!(
                "{}: lock on {table}: model {}, PostgreSQL {}",
                c.sql,
                lock.name(),
                got.map_or("none", Lock::name)
            ));
        }
    }
    // Rewrite and scan are claims about the statement's main table.
    let Some(main) = op.actions.first().and_then(|a| a.table.clone()) else {
        return out;
    };
    let Some(s) = seen.get(&main).filter(|_| before.contains_key(&main)) else {
        return out;
    };
    checked.rewrites += usize::from(s.rewritten);
    checked.scans += usize::from(s.scanned);
    let rewrite = match (op.rewrite(), c.rewrite) {
        (_, Some(expected)) => Some(expected),
        (Tri::Depends(_), None) => None,
        (t, None) => Some(t.is_yes() || c.new_file),
    };
    if let Some(expected) = rewrite
        && expected != s.rewritten
    {
        out.push(format!(
            "{}: rewrite of {main}: model {expected}, PostgreSQL {}",
            c.sql, s.rewritten
        ));
    }
    if let Tri::Yes | Tri::No = op.scan()
        && op.scan().is_yes() != s.scanned
        && !(op.rewrite().maybe() || c.new_file)
    {
        out.push(format!(
            "{}: scan of {main}: model {}, PostgreSQL {}",
            c.sql,
            op.scan().is_yes(),
            s.scanned
        ));
    }
    out
}

/// oid, relfilenode and sequential scans so far in this transaction. An
/// extended statistics object's name stands for its table: DROP
/// STATISTICS locks the table without naming it, and the model puts that
/// lock on the name.
async fn relation(tx: &mut PgConnection, name: &str) -> Option<(u32, u32, i64)> {
    let oid: Option<sqlx::postgres::types::Oid> = sqlx::query_scalar(
        "SELECT coalesce(to_regclass($1)::oid, \
         (SELECT stxrelid FROM pg_statistic_ext WHERE stxname = $1 LIMIT 1))",
    )
    .bind(name)
    .fetch_one(&mut *tx)
    .await
    .ok()
    .flatten();
    let oid = oid?.0;
    let (file, scans) = state_of(tx, oid).await;
    Some((oid, file?, scans))
}

async fn state_of(tx: &mut PgConnection, oid: u32) -> (Option<u32>, i64) {
    let row = sqlx::query(
        "SELECT (SELECT relfilenode FROM pg_class WHERE oid = $1::oid), \
                (SELECT coalesce(seq_scan, 0) FROM pg_stat_xact_user_tables WHERE relid = $1::oid)",
    )
    .bind(oid as i64)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let file: Option<sqlx::postgres::types::Oid> = row.get(0);
    let scans: Option<i64> = row.get(1);
    (file.map(|f| f.0), scans.unwrap_or(0))
}

async fn strongest_lock(tx: &mut PgConnection, oid: u32) -> Option<Lock> {
    let modes: Vec<String> = sqlx::query_scalar(
        "SELECT mode FROM pg_locks WHERE pid = pg_backend_pid() \
         AND locktype = 'relation' AND relation = $1::oid",
    )
    .bind(oid as i64)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    modes
        .iter()
        .filter_map(|m| Lock::ALL.iter().copied().find(|l| l.pg_locks_mode() == m))
        .max()
}

/// Each rule's fix, as `keel lint` prints it, runs on the real server as
/// printed, and takes the locks the model (checked above) says it takes.
/// The flagged statements follow SETUP in a folder that lint reads as a
/// history, so the tables are existing ones and their fixes are for them.
/// Each statement of a fix (the backticked SQL in the suggestion) is
/// probed in a rolled-back transaction like the cases above, then run for
/// real on its own, as a migration without a transaction runs it.
#[test]
fn every_fix_runs_as_printed_and_takes_the_lock_the_model_says() {
    const FLAGGED: &[(&str, &str)] = &[
        (
            "create-index-blocking",
            "CREATE INDEX users_name_fix ON users (name);",
        ),
        (
            "create-index-blocking",
            "CREATE INDEX events_at_fix ON events (at);",
        ),
        (
            "add-foreign-key",
            "ALTER TABLE posts ADD CONSTRAINT posts_user_fix FOREIGN KEY (user_id) REFERENCES users (id);",
        ),
        (
            "add-check",
            "ALTER TABLE users ADD CONSTRAINT users_age_fix CHECK (age > 0);",
        ),
        (
            "add-unique",
            "ALTER TABLE users ADD CONSTRAINT users_email_fix UNIQUE (email);",
        ),
        // A clause among others, without a name: the fix is the clause on
        // its own, named so that its VALIDATE can name it.
        (
            "add-check",
            "ALTER TABLE users ADD COLUMN nick text, ADD CHECK (age >= 0);",
        ),
        (
            "add-foreign-key",
            "ALTER TABLE posts ADD COLUMN note text, ADD FOREIGN KEY (user_id) REFERENCES users (id);",
        ),
        ("drop-index-blocking", "DROP INDEX users_email_idx;"),
        ("reindex-blocking", "REINDEX TABLE tags;"),
        (
            "set-not-null",
            "ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
        ),
        (
            "add-column-rewrite",
            "ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();",
        ),
        (
            "add-column-rewrite",
            "ALTER TABLE users ADD COLUMN seq_no serial;",
        ),
        (
            "add-foreign-key",
            "ALTER TABLE posts ADD COLUMN owner bigint DEFAULT 5 REFERENCES users (id);",
        ),
        (
            "detach-partition-blocking",
            "ALTER TABLE events DETACH PARTITION events_2023;",
        ),
        // Its fix goes with the flagged statement, in the same migration.
        ("rename-table", "ALTER TABLE tags RENAME TO labels;"),
    ];
    /// Fixes that run after the flagged statement rather than instead of it.
    const ALONGSIDE: &[&str] = &["rename-table"];
    let p = Project::postgres();
    p.exec(SETUP);
    let lint = Project::sqlite();
    let dir = lint.path().join("fixes");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("1_setup.up.sql"), SETUP).unwrap();
    for (i, (_, sql)) in FLAGGED.iter().enumerate() {
        std::fs::write(dir.join(format!("{}_case.up.sql", i + 2)), sql).unwrap();
    }
    let findings = lint.lint_findings(&["fixes"]);
    let mut fixes: Vec<(String, Vec<String>)> = Vec::new();
    for (i, (rule, sql)) in FLAGGED.iter().enumerate() {
        let file = format!("fixes/{}_case.up.sql", i + 2);
        let f = findings
            .iter()
            .find(|f| f["file"] == file.as_str() && f["rule"] == *rule)
            .unwrap_or_else(|| panic!("{sql}: no {rule} finding in {findings:#?}"));
        let mut statements = statements_in(f["suggestion"].as_str().unwrap());
        assert!(!statements.is_empty(), "{sql}: no SQL in the fix {f:#}");
        if ALONGSIDE.contains(rule) {
            statements.insert(0, sql.trim_end_matches(';').to_string());
        }
        fixes.push((sql.to_string(), statements));
    }
    let url = p.url.clone();
    let failures = block_on(async move {
        let mut conn = PgConnection::connect(&url).await.unwrap();
        let mut schema = Schema::new(None);
        classify(SETUP, &mut schema, true);
        let mut schema = schema.after_up();
        let mut out = Vec::new();
        let mut checked = Checked::default();
        for (flagged, statements) in fixes {
            for sql in statements {
                let op = model(&schema, &sql);
                let sql: &'static str = Box::leak(sql.into_boxed_str());
                if !op.no_transaction() {
                    out.extend(probe(&mut conn, &case(sql), &op, &mut checked).await);
                }
                if let Err(e) = sqlx::raw_sql(sql).execute(&mut conn).await {
                    out.push(format!("fix of `{flagged}`: `{sql}` failed: {e}"));
                }
                // The model knows what the fix's earlier steps made (a
                // valid CHECK that proves NOT NULL), as lint of the history
                // would.
                classify(sql, &mut schema, true);
                schema = schema.after_up();
            }
        }
        assert!(
            checked.locks >= 5,
            "only {} lock claims compared",
            checked.locks
        );
        out
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The SQL statements among a suggestion's backticked spans, in order:
/// the spans that begin with a statement keyword and hold no placeholder.
fn statements_in(suggestion: &str) -> Vec<String> {
    const KEYWORDS: &[&str] = &["CREATE ", "ALTER ", "DROP ", "REINDEX ", "UPDATE ", "SET "];
    suggestion
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::trim)
        .filter(|s| KEYWORDS.iter().any(|k| s.starts_with(k)))
        .filter(|s| !s.contains('…') && !s.contains('<'))
        .map(str::to_string)
        .collect()
}
