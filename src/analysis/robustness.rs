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
        };
        let version = ["9.6", "11", "14.2", "15"][i % 4].parse().ok();
        let result = std::panic::catch_unwind(|| analyze(&files, &mut Schema::default(), version));
        assert!(
            result.is_ok(),
            "panicked on up.sql:\n{up}\n--- down.sql:\n{down}"
        );
    }
}
