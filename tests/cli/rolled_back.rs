//! What the runbook says after a guarded run that did not go through: at
//! the top of its execution record, that it was rolled back (or failed),
//! why, when and by what; in the checklist, only the items that still
//! hold are ticked, and the section strikes through what was undone.

use crate::common::{Db, Project, stderr};
use crate::execute::{
    ID, SIGNER, applied, bios, execute, keygen, project, record_files, record_json, runbook, step,
};

/// `12:34:56` and `2026-01-02` masked, so a snapshot holds no clock.
fn redact(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let digits = |from: usize, n: usize| {
        b.get(from..from + n)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    while i < b.len() {
        if digits(i, 2) && b.get(i + 2) == Some(&b':') && digits(i + 3, 2) && digits(i + 6, 2) {
            out.push_str("HH:MM:SS");
            i += 8;
        } else if digits(i, 4)
            && b.get(i + 4) == Some(&b'-')
            && digits(i + 5, 2)
            && digits(i + 8, 2)
        {
            out.push_str("YYYY-MM-DD");
            i += 10;
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The checklist, the section's heading and summary, and its steps with
/// their outcomes: what a reader of the runbook sees of the run.
fn outcome_view(rb: &str) -> String {
    let checklist: Vec<&str> = rb.lines().filter(|l| l.starts_with("- [")).collect();
    let records = rb
        .find("<!-- keel:records -->")
        .expect("the records marker");
    let section = &rb[records + rb[records..].find("\n### ").expect("a record") + 1..];
    let summary = &section[..section.find("- Environment:").unwrap()];
    let steps: Vec<String> = section
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| step |"))
        .map(|l| l.split(" | ").take(2).collect::<Vec<_>>().join(" | ") + " |")
        .collect();
    redact(&format!(
        "{}\n\n{}{}\n",
        checklist.join("\n"),
        summary,
        steps.join("\n")
    ))
}

/// A failed smoke check on PostgreSQL with rows in the table: the run is
/// rolled back, and the runbook says so at the top of its record; the
/// backup it spent is no longer ticked; the record agrees; both records
/// still verify against the runbook.
#[test]
fn a_rolled_back_run_says_so_and_unticks_what_it_undid() {
    let p = project(
        Db::Postgres,
        &format!("signer = \"{SIGNER}\"\nsigning_key = \"keys/ops\""),
        "",
        "[[smoke]]\nname = \"bios still readable\"\nsql = \"SELECT count(*) FROM profiles WHERE id < 0\"\nexpect = 1\n",
    );
    keygen(&p);
    let before = bios(&p);
    let reviewed = runbook(&p);
    let out = execute(&p, &["--answers", "answers.toml"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert_eq!(bios(&p), before);
    assert!(!applied(&p));

    let rb = runbook(&p);
    insta::assert_snapshot!(outcome_view(&rb));
    // Only boxes changed in the reviewed part.
    let body_end = rb.find("<!-- keel:records -->").unwrap();
    assert_eq!(
        rb[..body_end].replace("- [x] ", "- [ ] "),
        reviewed[..body_end]
    );

    let records = record_files(&p);
    assert_eq!(records.len(), 2, "the intent and the final record");
    let rec = record_json(&records[1]);
    assert_eq!(rec["outcome"], "rolled_back");
    assert_eq!(step(&rec, "backup-verified")["outcome"], "ok");
    let ticked: Vec<&str> = rec["runbook"]["ticked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(
        ticked,
        [
            "dry-run-reviewed",
            "rollback-tested",
            "deployment-plan-reviewed",
            "code-stops-using-profiles-bio"
        ]
    );
    for record in &records {
        let out = p
            .keel()
            .args(["record", "verify"])
            .arg(record)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
}

/// An applied run's section is as it always was: no summary, nothing
/// undone, every box ticked.
#[test]
fn an_applied_run_reads_as_before() {
    let p = project(Db::Postgres, "", "", "");
    let out = execute(&p, &["--answers", "answers.toml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rb = runbook(&p);
    let items: Vec<&str> = rb.lines().filter(|l| l.starts_with("- [")).collect();
    assert_eq!(items.len(), 6, "{rb}");
    assert!(
        items
            .iter()
            .filter(|l| !l.contains("snapshot-taken"))
            .all(|l| l.starts_with("- [x] ")),
        "{rb}"
    );
    let section = &rb[rb.find("\n### production: applied, ").expect("applied") + 1..];
    let second = section.lines().nth(2).unwrap();
    assert!(second.starts_with("- Environment: "), "{section}");
    assert!(!section.contains("undone"), "{section}");
    assert!(!section.contains("**Rolled back"), "{section}");
    assert_eq!(ID, "20260103090000_drop_bio");
}

const PARENTS: &str = "20260301000001_parents";
const ORPHAN: &str = "20260301000002_orphan";

/// A migration whose dry run passes (a rolled-back transaction never
/// checks a deferred foreign key) and whose commit fails: the run failed
/// mid-way and did not apply.
#[test]
fn a_run_that_failed_mid_way_says_it_did_not_apply() {
    let p = Project::postgres();
    p.migration(
        PARENTS,
        "CREATE TABLE parent (id bigint PRIMARY KEY);\n\
         CREATE TABLE child (id bigint PRIMARY KEY, parent_id bigint REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED, note text);\n\
         INSERT INTO parent (id) SELECT g FROM generate_series(1, 20) g;\n\
         INSERT INTO child (id, parent_id, note) SELECT g, g, 'note ' || g FROM generate_series(1, 20) g;\n",
        Some("DROP TABLE child;\nDROP TABLE parent;\n"),
        None,
    );
    p.migration(
        ORPHAN,
        "ALTER TABLE child DROP COLUMN note;\n\
         INSERT INTO child (id, parent_id) VALUES (999, 12345);\n",
        Some("DELETE FROM child WHERE id = 999;\nALTER TABLE child ADD COLUMN note text;\n"),
        Some("description = \"Drop child.note\"\n"),
    );
    std::fs::write(
        p.path().join("keel.toml"),
        "[environments.production]\ndatabase_url_env = \"DATABASE_URL\"\n",
    )
    .unwrap();
    std::fs::write(
        p.path().join("answers.toml"),
        "rollback-tested = true\ndeployment-plan-reviewed = true\ncode-stops-using-child-note = true\n",
    )
    .unwrap();
    p.test(["up", "--to", "20260301000001"]).run();
    p.test(["runbook", "20260301000002"])
        .stdout_contains("runbooks/")
        .run();
    let notes = p.scalar("SELECT count(note) FROM child");

    let out = p
        .keel()
        .args(["execute", "20260301000002", "--env", "production"])
        .args(["--answers", "answers.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(p.scalar("SELECT count(note) FROM child"), notes);
    assert_eq!(
        p.scalar("SELECT count(*) FROM child").as_deref(),
        Some("20")
    );

    let rb = std::fs::read_to_string(p.path().join(format!("runbooks/{ORPHAN}.md"))).unwrap();
    insta::assert_snapshot!(outcome_view(&rb));
    let dir = p.path().join("records").join(ORPHAN);
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|f| f.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let rec = record_json(files.last().unwrap());
    assert_eq!(rec["outcome"], "failed");
    assert!(
        !rec["runbook"]["ticked"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "backup-verified"),
        "{rec:#}"
    );
}
