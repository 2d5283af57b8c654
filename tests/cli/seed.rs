//! `keel seed`: the sample application's data, exact counts, appends that
//! stay consistent, and names messy enough to test a first/last-name split.

use crate::common::{Db, Project, stderr, stdout};

/// A project with the sample schema applied.
fn sample_up(p: &Project) {
    p.sample();
    p.keel().args(["up", "-q"]).assert().success();
}

fn count(p: &Project, sql: &str) -> i64 {
    p.scalar(sql).unwrap().parse().unwrap()
}

/// Every foreign key of the sample points at a row, emails are unique,
/// every user has a profile.
fn assert_consistent(p: &Project) {
    for (what, sql) in [
        (
            "posts without their user",
            "SELECT count(*) FROM posts p LEFT JOIN users u ON u.id = p.user_id WHERE u.id IS NULL",
        ),
        (
            "comments without their post",
            "SELECT count(*) FROM comments c LEFT JOIN posts p ON p.id = c.post_id WHERE p.id IS NULL",
        ),
        (
            "comments without their user",
            "SELECT count(*) FROM comments c LEFT JOIN users u ON u.id = c.user_id WHERE u.id IS NULL",
        ),
        (
            "users without a profile",
            "SELECT count(*) FROM users u LEFT JOIN profiles p ON p.user_id = u.id WHERE p.id IS NULL",
        ),
        (
            "duplicate emails",
            "SELECT count(*) - count(DISTINCT email) FROM users",
        ),
    ] {
        assert_eq!(count(p, sql), 0, "{what}");
    }
}

both!(default_counts_land_exactly, |p: Project| {
    sample_up(&p);
    let out = p.keel().arg("seed").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "text mode prints the summary on stderr");
    let err = stderr(&out);
    assert!(
        err.contains("users          1000 rows  ids 1..1000\n"),
        "{err}"
    );
    assert!(
        err.contains("comments      15000 rows  ids 1..15000\n"),
        "{err}"
    );
    assert!(err.contains("seeded 22000 rows in "), "{err}");
    for (table, n) in [
        ("users", 1000),
        ("profiles", 1000),
        ("posts", 5000),
        ("comments", 15000),
    ] {
        assert_eq!(
            count(&p, &format!("SELECT count(*) FROM {table}")),
            n,
            "{table}"
        );
    }
    assert_consistent(&p);
    // Some drafts without a body, some unpublished, over the past year.
    assert!(count(&p, "SELECT count(*) FROM posts WHERE body IS NULL") > 100);
    assert!(count(&p, "SELECT count(*) FROM posts WHERE published") > 2500);
    assert!(count(&p, "SELECT count(*) FROM posts WHERE NOT published") > 500);
});

both!(
    scale_multiplies_all_three_and_json_gives_counts,
    |p: Project| {
        sample_up(&p);
        let out = p
            .keel()
            .args(["seed", "--scale", "2", "--format", "json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["users"], 2000);
        assert_eq!(json["posts"], 10000);
        assert_eq!(json["comments"], 30000);
        assert!(json["ms"].is_u64(), "{json}");
        assert_eq!(count(&p, "SELECT count(*) FROM users"), 2000);
        assert_eq!(count(&p, "SELECT count(*) FROM posts"), 10000);
        assert_eq!(count(&p, "SELECT count(*) FROM comments"), 30000);
    }
);

both!(seeding_twice_appends_consistently, |p: Project| {
    sample_up(&p);
    let small = [
        "seed",
        "--users",
        "40",
        "--posts",
        "100",
        "--comments",
        "300",
    ];
    p.keel().args(small).assert().success();
    let out = p.keel().args(small).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("users            40 rows  ids 41..80\n"),
        "{}",
        stderr(&out)
    );
    assert_eq!(count(&p, "SELECT count(*) FROM users"), 80);
    assert_eq!(count(&p, "SELECT max(id) FROM users"), 80);
    assert_eq!(count(&p, "SELECT count(*) FROM posts"), 200);
    assert_eq!(count(&p, "SELECT max(id) FROM comments"), 600);
    assert_consistent(&p);
    // The second run's posts are by users of both runs.
    assert!(
        count(
            &p,
            "SELECT count(*) FROM posts WHERE id > 100 AND user_id <= 40"
        ) > 0
    );
});

both!(names_include_every_edge_case, |p: Project| {
    sample_up(&p);
    p.keel().arg("seed").assert().success();
    for (what, at_least, filter) in [
        ("NULL", 20, "name IS NULL"),
        ("empty", 10, "name = ''"),
        ("blank", 2, "name <> '' AND trim(name) = ''"),
        (
            "one word",
            20,
            "trim(name) <> '' AND trim(name) NOT LIKE '% %'",
        ),
        (
            "three or more words",
            60,
            "trim(name) LIKE '% % %' AND name NOT LIKE '%  %'",
        ),
        ("apostrophes", 20, "name LIKE '%''%'"),
        (
            "accents",
            100,
            "name LIKE '%é%' OR name LIKE '%ñ%' OR name LIKE '%ü%' OR name LIKE '%ø%' OR name LIKE '%á%'",
        ),
        ("hyphens", 20, "name LIKE '%-%'"),
        (
            "leading or trailing spaces",
            20,
            "name <> trim(name) AND trim(name) <> ''",
        ),
        ("double spaces inside", 10, "trim(name) LIKE '%_  _%'"),
    ] {
        let n = count(&p, &format!("SELECT count(*) FROM users WHERE {filter}"));
        assert!(n >= at_least, "{what}: {n} of 1000, wanted {at_least}+");
    }
    assert!(
        count(
            &p,
            "SELECT count(*) FROM users WHERE name = 'John van der Berg'"
        ) >= 1
    );
    let two = count(
        &p,
        "SELECT count(*) FROM users WHERE trim(name) LIKE '_% %_' AND trim(name) NOT LIKE '% % %'",
    );
    assert!((650..850).contains(&two), "mostly two words: {two}");
});

both!(seed_before_up_fails_and_says_what_to_do, |p: Project| {
    p.sample();
    let out = p.keel().arg("seed").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        "error: the sample tables users, posts, comments do not exist in this database; \
         keel seed fills the sample application's tables\n  \
         fix: run `keel up` first to create them, then `keel seed`\n"
    );
});

both!(posts_need_users_to_reference, |p: Project| {
    sample_up(&p);
    let out = p.keel().args(["seed", "--users", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: cannot add posts: table users is empty and no new users were asked for, \
         so there is nothing for them to reference\n  fix: seed some users too (--users N)\n"
    );
    assert_eq!(count(&p, "SELECT count(*) FROM users"), 0);
});

both!(a_failure_late_in_the_load_leaves_nothing, |p: Project| {
    sample_up(&p);
    // Comments repeat ("Great post!"), so the last table fails after users,
    // profiles and posts were loaded.
    p.exec("CREATE UNIQUE INDEX comments_body_once ON comments (body)");
    let out = p.keel().arg("seed").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));
    for table in ["users", "profiles", "posts", "comments"] {
        assert_eq!(
            count(&p, &format!("SELECT count(*) FROM {table}")),
            0,
            "{table}"
        );
    }
});
