//! `keel demo`: the newcomer's first command, with no server at all.

use crate::common::{Project, stderr, stdout};

#[test]
fn demo_tells_the_whole_story_on_the_embedded_default() {
    let p = Project::sqlite();
    // A configured database must not be touched by the demo.
    let out = p
        .keel()
        .arg("demo")
        .env("DATABASE_URL", "postgres://app:secret@127.0.0.1:1/prod")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for step in [
        "$ keel status",
        "$ keel up --dry-run",
        "$ keel seed",
        "$ keel inspect users.name",
        "$ keel validate",
        "$ keel down",
        "$ keel runbook 20260102090000",
        "$ keel execute 20260102090000 --env demo --yes",
        "applied 20260102090000_add_user_profiles on demo in ",
        "(signed by demo@keel.invalid: records/20260102090000_add_user_profiles/demo-",
        "$ keel record verify records/20260102090000_add_user_profiles/demo-",
        "  signed by demo@keel.invalid (SHA256:",
        "record #2 of demo: 20260102090000_add_user_profiles applied; in its migration's folder under its environment's name; hash chain intact",
    ] {
        assert!(text.contains(step), "missing step {step}:\n{text}");
    }
    assert!(text.contains("3+ words"), "{text}");
    assert!(
        stderr(&out).contains("reverted 20260102090000_add_user_profiles"),
        "{}",
        stderr(&out)
    );
    assert!(
        !p.path().join("keel.db").exists(),
        "the demo works in its own temporary folder"
    );
    assert!(!stderr(&out).contains("secret"));
    for line in [
        "ok  dry-run-reviewed",
        "confirmed  rollback-tested",
        "ok  smoke                    every user has a profile: `0` as expected",
    ] {
        assert!(
            stderr(&out).contains(line),
            "missing {line}:\n{}",
            stderr(&out)
        );
    }
    // The story ends rolled back: the guarded run's migration was reverted.
    let err = stderr(&out);
    assert_eq!(
        err.matches("reverted 20260102090000_add_user_profiles")
            .count(),
        2,
        "{err}"
    );
}
