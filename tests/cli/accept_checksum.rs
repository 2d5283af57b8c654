//! `keel resolve V --accept-checksum --reason TEXT`: an applied migration
//! whose files changed only in ways that do not change what it did (its
//! down.sql, comments and layout of its up.sql, migration.toml) takes
//! today's checksum, with who and why kept; a change of its SQL is refused
//! with the statement named. The applied files are found in git by the
//! checksum the tracking row keeps.

use crate::common::{Db, Project, git, stderr};

const ID: &str = "20260501000001_posts";

/// `posts`, committed and applied, with a down.sql that drops the wrong
/// index name.
fn applied(p: &Project) {
    p.migration(
        ID,
        "CREATE TABLE posts (id integer PRIMARY KEY, title text);\nCREATE INDEX posts_title ON posts (title);\n",
        Some("DROP INDEX post_title;\nDROP TABLE posts;\n"),
        None,
    );
    git(p.path(), &["init", "-q"]);
    git(p.path(), &["add", "migrations"]);
    git(p.path(), &["commit", "-qm", "posts"]);
    p.keel().args(["up", "-q"]).assert().success();
}

fn write(p: &Project, file: &str, text: &str) {
    std::fs::write(p.path().join("migrations").join(ID).join(file), text).unwrap();
}

both!(
    a_corrected_down_and_comments_are_accepted_with_who_and_why,
    |p: Project| {
        applied(&p);
        // The down fails; its advice leads to resolve, not into a refusal.
        p.test(["down"])
            .stderr_contains("--accept-checksum --reason")
            .code(1)
            .run();
        write(
            &p,
            "down.sql",
            "DROP INDEX posts_title;\nDROP TABLE posts;\n",
        );
        write(
            &p,
            "up.sql",
            "-- Posts, and their titles searchable.\nCREATE TABLE posts (\n  id integer PRIMARY KEY,\n  title text\n);\nCREATE INDEX posts_title ON posts (title); -- by title\n",
        );
        p.test(["up"])
            .stderr_contains("(modified)")
            .stderr_contains("`keel resolve 20260501000001 --accept-checksum --reason")
            .code(4)
            .run();
        p.test(["resolve", "20260501000001", "--accept-checksum"])
            .stderr_contains("--reason")
            .code(2)
            .run();
        p.test([
            "resolve",
            "20260501000001",
            "--accept-checksum",
            "--reason",
            "down.sql dropped the wrong index name; comments in up.sql",
        ])
        .stderr_contains(
            "accepted the checksum of 20260501000001_posts: changed since it was applied (commit ",
        )
        .stderr_contains("): up.sql (comments and layout only), down.sql; recorded by tester@")
        .run();
        p.test(["status"])
            .stdout_contains("applied")
            .stdout_contains("accepted: 20260501000001's changed files (up.sql (comments and layout only), down.sql) by tester@")
            .stdout_contains(": down.sql dropped the wrong index name; comments in up.sql")
            .run();
        let doc = p.test(["status", "--format", "json"]).run().json();
        assert_eq!(
            doc["accepted_checksums"][0]["version"], "20260501000001",
            "{doc:#}"
        );
        // Accepting twice: nothing left to accept.
        p.test([
            "resolve",
            "20260501000001",
            "--accept-checksum",
            "--reason",
            "again",
        ])
        .stderr_contains("files are as they were applied")
        .code(4)
        .run();
        p.test(["down"]).code(0).run();
        assert!(!p.table_exists("posts"));
    }
);

both!(
    a_changed_statement_is_refused_with_its_line,
    |p: Project| {
        applied(&p);
        write(
            &p,
            "up.sql",
            "CREATE TABLE posts (id integer PRIMARY KEY, title text);\nCREATE INDEX posts_title ON posts (lower(title));\n",
        );
        p.test([
            "resolve",
            "20260501000001",
            "--accept-checksum",
            "--reason",
            "same index",
        ])
        .stderr_contains("up.sql runs other SQL than it did when applied (commit ")
        .stderr_contains("statement 2 at line 2: CREATE INDEX posts_title ON posts (lower(title))")
        .stderr_contains("fix: put up.sql back as it ran (`git checkout ")
        .code(4)
        .run();
        p.test(["status"]).stdout_contains("modified").run();
    }
);

#[test]
fn without_the_applied_files_in_git_it_cannot_tell_and_refuses() {
    let p = Project::sqlite();
    p.migration(
        ID,
        "CREATE TABLE posts (id integer PRIMARY KEY);\n",
        Some("DROP TABLE posts;\n"),
        None,
    );
    p.keel().args(["up", "-q"]).assert().success();
    git(p.path(), &["init", "-q"]);
    write(&p, "down.sql", "DROP TABLE IF EXISTS posts;\n");
    git(p.path(), &["add", "migrations"]);
    git(
        p.path(),
        &["commit", "-qm", "posts, edited before the commit"],
    );
    p.test([
        "resolve",
        "20260501000001",
        "--accept-checksum",
        "--reason",
        "r",
    ])
    .stderr_contains("has the files 20260501000001_posts was applied with")
    .stderr_contains("so keel cannot tell what changed")
    .code(4)
    .run();
}

/// Where signing is set up, the decision is also a signed record beside
/// the migration's execution records, which stock `ssh-keygen -Y verify`
/// accepts; a key that does not work records nothing.
#[test]
fn with_signing_set_up_the_decision_is_a_signed_record() {
    let p = Project::postgres();
    applied(&p);
    write(
        &p,
        "down.sql",
        "DROP INDEX posts_title;\nDROP TABLE posts;\n",
    );
    let args = [
        "resolve",
        "20260501000001",
        "--accept-checksum",
        "--reason",
        "wrong index name in down.sql",
    ];
    std::fs::write(
        p.path().join("keel.toml"),
        format!(
            "signer = \"{}\"\nsigning_key = \"keys/missing\"\n",
            crate::execute::SIGNER
        ),
    )
    .unwrap();
    p.test(args)
        .stderr_contains("could not be signed, so nothing was recorded")
        .code(4)
        .run();
    p.test(["status"]).stdout_contains("modified").run();

    crate::execute::keygen(&p);
    std::fs::write(
        p.path().join("keel.toml"),
        format!(
            "signer = \"{}\"\nsigning_key = \"keys/ops\"\n",
            crate::execute::SIGNER
        ),
    )
    .unwrap();
    p.test(args)
        .stderr_contains("signed record: records/")
        .run();
    let dir = p.path().join("records").join(ID).join("accepted");
    let record = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|f| f.extension().is_some_and(|e| e == "json"))
        .expect("the record");
    let verify = crate::record::ssh_keygen_verify(&p, &record);
    assert!(verify.status.success(), "{}", stderr(&verify));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(json["reason"], "wrong index name in down.sql");
    assert_eq!(json["changed"], serde_json::json!(["down.sql"]));
    // An edited record no longer verifies.
    std::fs::write(
        &record,
        std::fs::read_to_string(&record)
            .unwrap()
            .replace("wrong index", "right index"),
    )
    .unwrap();
    assert!(
        !crate::record::ssh_keygen_verify(&p, &record)
            .status
            .success()
    );
}
