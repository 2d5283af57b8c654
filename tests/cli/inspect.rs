//! `keel inspect`: schema, row counts and the text profile of a column, on a
//! small dataset whose numbers are known.

use crate::common::{Db, Project, stderr, stdout};

/// users, posts and comments, with ten users whose names are every case a
/// name split must handle.
fn known_names(p: &Project) {
    p.sample();
    p.keel()
        .args(["up", "-q", "--to", "20260101090200"])
        .assert()
        .success();
    p.exec(
        "INSERT INTO users (id, email, name) VALUES
         (1, 'u1@example.com', 'Maria Garcia'),
         (2, 'u2@example.com', 'John van der Berg'),
         (3, 'u3@example.com', 'Cher'),
         (4, 'u4@example.com', ''),
         (5, 'u5@example.com', NULL),
         (6, 'u6@example.com', '  Seán O''Brien'),
         (7, 'u7@example.com', 'Emma  Smith-Jones'),
         (8, 'u8@example.com', '   '),
         (9, 'u9@example.com', 'John F. Kennedy'),
         (10, 'u10@example.com', 'José María López García')",
    );
}

fn has_lines(text: &str, lines: &[&str]) {
    for line in lines {
        assert!(
            text.lines().any(|l| l == *line),
            "missing line {line:?} in:\n{text}"
        );
    }
}

both!(column_profile_counts_every_case, |p: Project| {
    known_names(&p);
    let out = p.keel().args(["inspect", "users.name"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    has_lines(
        &stdout(&out),
        &[
            "users.name: text, nullable",
            "  rows                    10",
            "  nulls                    1   10.0%",
            "  empty ('')               1   10.0%  \"\"",
            "  blank (only spaces)      1   10.0%  \"   \"",
            "  1 word                   1   10.0%  \"Cher\"",
            "  2 words                  3   30.0%  \"Maria Garcia\", \"  Seán O'Brien\", \"Emma  Smith-Jones\"",
            "  3+ words                 3   30.0%  \"John van der Berg\", \"John F. Kennedy\", \"José María López García\"",
            "  length                  0..23 characters",
            "  special characters (one value can be in several)",
            "    non-ASCII (accents)    2   20.0%  \"  Seán O'Brien\", \"José María López García\"",
            "    apostrophes            1   10.0%  \"  Seán O'Brien\"",
            "    hyphens                1   10.0%  \"Emma  Smith-Jones\"",
            "    other punctuation      1   10.0%  \"John F. Kennedy\"",
            "    leading/trailing space 1   10.0%  \"  Seán O'Brien\"",
            "    repeated/odd space     1   10.0%  \"Emma  Smith-Jones\"",
        ],
    );
});

both!(table_shows_schema_and_every_column, |p: Project| {
    known_names(&p);
    let out = p.keel().args(["inspect", "users"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    has_lines(
        &text,
        &[
            "users: 10 rows",
            "  columns",
            "  constraints",
            "    users_email_key  unique       UNIQUE (email)",
            "    users_pkey       primary key  PRIMARY KEY (id)",
            "id: bigint, not null",
            "  min                     1",
            "  max                     10",
            "email: text, not null",
            "name: text, nullable",
            "  nulls                    1   10.0%",
            "  3+ words                 3   30.0%  \"John van der Berg\", \"John F. Kennedy\", \"José María López García\"",
        ],
    );
    // Text columns get the word and character profile, others do not.
    assert_eq!(text.matches("  special characters").count(), 2, "{text}");
});

both!(overview_lists_tables_with_counts_and_keys, |p: Project| {
    known_names(&p);
    let out = p.keel().arg("inspect").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    has_lines(
        &text,
        &["comments: 0 rows", "posts: 0 rows", "users: 10 rows"],
    );
    assert!(
        text.contains(
            "posts_user_id_fkey  foreign key  FOREIGN KEY (user_id) REFERENCES users(id)"
        ),
        "{text}"
    );
    assert!(!text.contains("keel_migrations"), "{text}");
});

both!(json_has_the_same_data, |p: Project| {
    known_names(&p);
    let out = p
        .keel()
        .args(["inspect", "users.name", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["table"], "users");
    assert_eq!(json["name"], "name");
    assert_eq!(json["nullable"], true);
    let stats = &json["stats"];
    assert_eq!(stats["rows"], 10);
    assert_eq!(stats["nulls"], 1);
    let text = &stats["text"];
    assert_eq!(text["empty"]["count"], 1);
    assert_eq!(text["blank"]["count"], 1);
    assert_eq!(text["words"]["one"]["count"], 1);
    assert_eq!(text["words"]["two"]["count"], 3);
    assert_eq!(text["words"]["three_plus"]["count"], 3);
    assert_eq!(
        text["special"]["apostrophe"]["examples"][0],
        "  Seán O'Brien"
    );
    assert_eq!(text["length"]["max"], 23);

    let out = p
        .keel()
        .args(["inspect", "--format", "json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tables: Vec<(&str, i64)> = json["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["table"].as_str().unwrap(), t["rows"].as_i64().unwrap()))
        .collect();
    assert_eq!(tables, [("comments", 0), ("posts", 0), ("users", 10)]);
    assert_eq!(json["tables"][2]["columns"][2]["name"], "name");
    assert!(json["tables"][2]["constraints"].is_array());
    assert!(json["tables"][2]["indexes"].is_array());
});

both!(seed_then_inspect_agree_with_sql, |p: Project| {
    p.sample();
    p.keel().args(["up", "-q"]).assert().success();
    p.keel().arg("seed").assert().success();
    let out = p
        .keel()
        .args(["inspect", "users.name", "--format", "json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sql = |q: &str| -> i64 { p.scalar(q).unwrap().parse().unwrap() };
    assert_eq!(
        json["stats"]["nulls"],
        sql("SELECT count(*) FROM users WHERE name IS NULL")
    );
    assert_eq!(
        json["stats"]["text"]["empty"]["count"],
        sql("SELECT count(*) FROM users WHERE name = ''")
    );
    assert_eq!(
        json["stats"]["text"]["special"]["apostrophe"]["count"],
        sql("SELECT count(*) FROM users WHERE name LIKE '%''%' OR name LIKE '%’%'")
    );
});

both!(unknown_names_are_named_with_what_exists, |p: Project| {
    let out = p.keel().args(["inspect", "users"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: no table `users` in this database; there are no tables yet\n  \
         fix: run `keel up` to create the schema\n"
    );

    known_names(&p);
    let out = p.keel().args(["inspect", "usr"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: no table `usr` in this database; tables: comments, posts, users\n"
    );
    let out = p.keel().args(["inspect", "users.nam"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: table users has no column `nam`; columns: id, email, name, created_at\n"
    );
    assert_eq!(stdout(&out), "");
});
