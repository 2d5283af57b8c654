//! No input may panic the parser-plus-model-plus-rules path: mutated and
//! truncated migrations from a seed corpus go through the whole analysis.

use super::analyze::{MigrationFiles, analyze};
use super::schema::Schema;
use crate::migration::Meta;
use std::path::Path;

const SEEDS: &[&str] = &[
    "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, name varchar(20));",
    "ALTER TABLE users ADD COLUMN a int NOT NULL DEFAULT 0, ALTER COLUMN name TYPE text USING name::text, DROP COLUMN b;",
    "ALTER TABLE posts ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;\nALTER TABLE posts VALIDATE CONSTRAINT fk;",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix ON public.\"Users\" USING btree (lower(email)) WHERE email IS NOT NULL;",
    "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $b$ BEGIN NEW.x := 1; RETURN NEW; END $b$;",
    "DO $$ BEGIN EXECUTE 'DROP TABLE users'; END $$; -- keel:allow drop-table reason=\"x\"",
    "ALTER TYPE mood ADD VALUE 'x' BEFORE 'y'; UPDATE t SET m = 'x'; TRUNCATE a, b CASCADE;",
    "BEGIN; LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE; REINDEX TABLE CONCURRENTLY users; COMMIT;",
    "ALTER TABLE p DETACH PARTITION c CONCURRENTLY; VACUUM (FULL, ANALYZE) t; CLUSTER t USING ix;",
    "ALTER TABLE t ADD CONSTRAINT c CHECK (c IS NOT NULL) NOT VALID, ADD EXCLUDE USING gist (r WITH &&);",
];

/// xorshift: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 as usize
    }
}

const PIECES: &[&str] = &[
    "(",
    ")",
    ";",
    "$$",
    "'",
    "\"",
    "--",
    "/*",
    "*/",
    ",",
    " NOT VALID",
    " CONCURRENTLY",
    " DROP ",
    " TABLE ",
    " ALTER COLUMN x TYPE ",
    "\n",
    "é",
    "\u{0}",
    " USING ",
    " DEFAULT random()",
];

fn mutate(rng: &mut Rng, seed: &str) -> String {
    let mut chars: Vec<char> = seed.chars().collect();
    for _ in 0..1 + rng.next() % 4 {
        let at = rng.next() % (chars.len() + 1);
        match rng.next() % 3 {
            0 if at < chars.len() => {
                let n = 1 + rng.next() % 8;
                chars.drain(at..(at + n).min(chars.len()));
            }
            1 => {
                let piece = PIECES[rng.next() % PIECES.len()];
                chars.splice(at..at, piece.chars());
            }
            _ => chars.truncate(at),
        }
    }
    chars.into_iter().collect()
}

#[test]
fn mutated_sql_never_panics() {
    let meta = Meta {
        transaction: true,
        ..Meta::default()
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..2500 {
        let up = mutate(&mut rng, SEEDS[i % SEEDS.len()]);
        let down = mutate(&mut rng, SEEDS[(i + 3) % SEEDS.len()]);
        let files = MigrationFiles {
            dir: Path::new("m"),
            up: &up,
            down: Some(&down),
            meta: &meta,
            layout: None,
        };
        let version = ["9.6", "11", "14.2", "15"][i % 4].parse().ok();
        let result = std::panic::catch_unwind(|| analyze(&files, &mut Schema::default(), version));
        assert!(
            result.is_ok(),
            "panicked on up.sql:\n{up}\n--- down.sql:\n{down}"
        );
    }
}

/// Property tests: random token soup, arbitrary text and mutated seeds go
/// through split + parse + classify + every rule, for up, down, plain and
/// plain-pair files. Raise the case count with `PROPTEST_CASES=100000`.
mod properties {
    use super::{PIECES, SEEDS};
    use crate::analysis::analyze::{
        MigrationFiles, PlainPair, analyze, analyze_sql, analyze_sql_pair,
    };
    use crate::analysis::schema::Schema;
    use crate::migration::Meta;
    use crate::sql::split;
    use proptest::prelude::*;
    use std::path::Path;

    const WORDS: &[&str] = &[
        "CREATE",
        "ALTER",
        "DROP",
        "TABLE",
        "INDEX",
        "CONCURRENTLY",
        "IF",
        "NOT",
        "EXISTS",
        "ADD",
        "COLUMN",
        "CONSTRAINT",
        "FOREIGN",
        "KEY",
        "REFERENCES",
        "CHECK",
        "UNIQUE",
        "PRIMARY",
        "VALID",
        "VALIDATE",
        "TYPE",
        "USING",
        "SET",
        "DEFAULT",
        "NULL",
        "RENAME",
        "TO",
        "ON",
        "ONLY",
        "TRUNCATE",
        "CASCADE",
        "UPDATE",
        "DELETE",
        "WHERE",
        "INSERT",
        "INTO",
        "VALUES",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "DO",
        "FUNCTION",
        "TRIGGER",
        "REINDEX",
        "DETACH",
        "PARTITION",
        "ATTACH",
        "VACUUM",
        "FULL",
        "CLUSTER",
        "LOGGED",
        "UNLOGGED",
        "TABLESPACE",
        "ENUM",
        "VALUE",
        "BEFORE",
        "AFTER",
        "ATOMIC",
        "END",
        "CASE",
        "WHEN",
        "THEN",
        "GENERATED",
        "ALWAYS",
        "STORED",
        "IDENTITY",
        "EXCLUDE",
        "GIST",
        "WITH",
        "LOCK",
        "IN",
        "MODE",
        "SHARE",
        "EXCLUSIVE",
        "SCHEMA",
        "VIEW",
        "MATERIALIZED",
        "users",
        "posts",
        "\"Odd Name\"",
        "public.t",
        "x",
        "id",
        "bigint",
        "int",
        "text",
        "varchar(20)",
        "numeric(10,2)",
        "timestamp",
        "timestamptz",
        "jsonb",
        "uuid",
        "serial",
        "random()",
        "now()",
        "gen_random_uuid()",
        "1",
        "-2",
        "3.5e9",
        "'s'",
        "'it''s'",
        "E'\\n'",
        "$$",
        "$b$",
        "$1",
        "(",
        ")",
        ",",
        ";",
        ".",
        "::",
        "=",
        "*",
        "[",
        "]",
        "--c\n",
        "/*",
        "*/",
        "/* c */",
        "\n",
        "\t",
        " ",
        "é",
        "\u{0}",
        "\u{feff}",
        "-- keel:allow drop-table reason=\"x\"\n",
        "-- keel:allow\n",
        "\\",
        "`",
        "#",
    ];

    fn token_soup() -> impl Strategy<Value = String> {
        prop::collection::vec(
            (
                prop::sample::select(WORDS),
                prop::sample::select(&[" ", "", "\n"][..]),
            ),
            0..60,
        )
        .prop_map(|ts| ts.into_iter().flat_map(|(t, sep)| [t, sep]).collect())
    }

    #[derive(Debug, Clone)]
    enum Edit {
        Insert(usize, &'static str),
        Delete(usize, usize),
        Truncate(usize),
        Duplicate(usize, usize),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            (any::<usize>(), prop::sample::select(PIECES)).prop_map(|(at, p)| Edit::Insert(at, p)),
            (any::<usize>(), 1usize..12).prop_map(|(at, n)| Edit::Delete(at, n)),
            any::<usize>().prop_map(Edit::Truncate),
            (any::<usize>(), 1usize..40).prop_map(|(at, n)| Edit::Duplicate(at, n)),
        ]
    }

    fn mutated() -> impl Strategy<Value = String> {
        (
            prop::sample::select(SEEDS),
            prop::sample::select(SEEDS),
            prop::collection::vec(edit(), 0..8),
        )
            .prop_map(|(a, b, edits)| {
                let mut chars: Vec<char> = format!("{a}\n{b}").chars().collect();
                for e in edits {
                    let at = |i: usize| i % (chars.len() + 1);
                    match e {
                        Edit::Insert(i, p) => {
                            let i = at(i);
                            chars.splice(i..i, p.chars());
                        }
                        Edit::Delete(i, n) => {
                            let i = at(i);
                            chars.drain(i..(i + n).min(chars.len()));
                        }
                        Edit::Truncate(i) => chars.truncate(at(i)),
                        Edit::Duplicate(i, n) => {
                            let i = at(i);
                            let piece: Vec<char> = chars[i..(i + n).min(chars.len())].to_vec();
                            chars.splice(i..i, piece);
                        }
                    }
                }
                chars.into_iter().collect()
            })
    }

    fn sql() -> impl Strategy<Value = String> {
        prop_oneof![3 => mutated(), 3 => token_soup(), 1 => any::<String>()]
    }

    /// Everything the analysis does with two files; checks what it reports
    /// points inside them.
    fn run(up: &str, down: &str, v: usize) {
        let version = ["9.6", "11", "14.2", "15", "18"][v % 5].parse().ok();
        for stmt in split(up) {
            assert!(
                up.get(stmt.offset..).is_some(),
                "offset off a char boundary"
            );
            let _ = stmt.position_in_file(stmt.sql.chars().count() + 1);
        }
        for transaction in [true, false] {
            let meta = Meta {
                transaction,
                ..Meta::default()
            };
            let files = MigrationFiles {
                dir: Path::new("m"),
                up,
                down: Some(down),
                meta: &meta,
                layout: None,
            };
            let a = analyze(&files, &mut Schema::default(), version);
            let lines = |f: &str| {
                if f.ends_with("down.sql") { down } else { up }
                    .lines()
                    .count()
                    + 1
            };
            for f in &a.findings {
                assert!(
                    f.line >= 1 && f.line <= lines(&f.file),
                    "finding outside its file: {f:?}"
                );
            }
        }
        let _ = analyze_sql(
            "x.sql",
            up,
            (&mut Schema::new(version), false, None),
            version,
        );
        let _ = analyze_sql_pair(
            &PlainPair {
                up_path: "1.up.sql",
                up,
                report_up: true,
                down_path: "1.down.sql",
                down,
                transaction: (true, true),
                layout: None,
            },
            version,
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn analysis_never_panics(up in sql(), down in sql(), v in 0usize..5) {
            run(&up, &down, v);
        }
    }
}
