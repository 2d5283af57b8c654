//! `keel runbook V`: the rendered runbook reviewers read in a pull request.

use crate::common::{Project, stderr, stdout};
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

const KEEL_TOML: &str = r#"
[environments.staging]
database_url_env = "STAGING_DATABASE_URL"
require_dry_run = true

[environments.production]
database_url_env = "PRODUCTION_DATABASE_URL"
require_dry_run = true
require_snapshot = true
require_signature = true
health_url = "http://127.0.0.1:8080/health"
smoke = ["SELECT 1 FROM users LIMIT 1"]
"#;

fn render(p: &Project, version: &str) -> String {
    let out = p.keel().args(["runbook", version]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let path = stdout(&out).trim().to_string();
    std::fs::read_to_string(p.path().join(path)).unwrap()
}

/// What a GFM renderer sees: headings, task items, tables, code blocks.
struct Shape {
    headings: Vec<String>,
    tasks: usize,
    checked: usize,
    tables: usize,
    code_blocks: usize,
}

fn shape(markdown: &str) -> Shape {
    let mut s = Shape {
        headings: vec![],
        tasks: 0,
        checked: 0,
        tables: 0,
        code_blocks: 0,
    };
    let mut in_heading = false;
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES | Options::ENABLE_TASKLISTS) {
        match event {
            Event::Start(Tag::Heading { .. }) => {
                in_heading = true;
                s.headings.push(String::new());
            }
            Event::End(TagEnd::Heading(_)) => in_heading = false,
            Event::Text(t) | Event::Code(t) if in_heading => {
                s.headings.last_mut().unwrap().push_str(&t)
            }
            Event::TaskListMarker(done) => {
                s.tasks += 1;
                s.checked += done as usize;
            }
            Event::Start(Tag::Table(_)) => s.tables += 1,
            Event::Start(Tag::CodeBlock(_)) => s.code_blocks += 1,
            _ => {}
        }
    }
    s
}

#[test]
fn sample_runbook_renders_cleanly_as_github_markdown() {
    let p = Project::sqlite();
    p.sample();
    std::fs::write(p.path().join("keel.toml"), KEEL_TOML).unwrap();
    let text = render(&p, "20260102090000");
    let s = shape(&text);
    assert_eq!(
        s.headings,
        [
            "Runbook 20260102090000_add_user_profiles",
            "People and timing",
            "What it does",
            "Blast radius",
            "Safety findings",
            "Pre-migration checklist",
            "Commands",
            "production",
            "staging",
            "Abort criteria",
            "What to watch during execution",
            "Post-migration verification",
            "Rollback procedure",
            "Execution records"
        ]
    );
    assert_eq!(
        (s.tasks, s.checked),
        (4, 0),
        "four unticked checklist items"
    );
    assert_eq!(
        s.tables, 4,
        "summary, people, statements and blast radius tables"
    );
    assert!(s.code_blocks >= 7, "{}", s.code_blocks);
    assert!(text.contains("keel snapshot take --env production"));
    assert!(
        !text.contains("keel snapshot take --env staging"),
        "only production requires a snapshot"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn untrusted_text_cannot_break_the_document() {
    let p = Project::sqlite();
    p.migration(
        "20250101000001_tricky",
        "-- ``` not a fence\nSELECT '```' AS ticks, '| pipe' AS pipe;\n",
        Some("SELECT 1;"),
        Some("description = \"drop *everything* | # [link](http://x) <b>\\n- [ ] fake task\"\n"),
    );
    let text = render(&p, "20250101000001_tricky");
    let s = shape(&text);
    assert_eq!(
        s.tasks, 4,
        "the description's fake task is not a task:\n{text}"
    );
    assert!(
        text.contains(
            "> drop \\*everything\\* \\| \\# \\[link\\](http://x) \\<b\\> - \\[ \\] fake task"
        ),
        "{text}"
    );
    assert!(
        text.contains("````sql\nSELECT '```'"),
        "the fence outgrows the SQL's backticks:\n{text}"
    );
    assert_eq!(
        s.headings
            .iter()
            .filter(|h| *h == "Safety findings")
            .count(),
        1,
        "the SQL did not close its fence early"
    );
}

#[test]
fn first_line_records_the_checksum_it_was_rendered_from() {
    let p = Project::sqlite();
    p.sample();
    let text = render(&p, "20260101090000");
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("<!-- keel:runbook migration=20260101090000_create_users checksum="),
        "{first}"
    );
    let json = p
        .keel()
        .args(["runbook", "20260101090000", "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(first.contains(v["checksum"].as_str().unwrap()));
}

#[test]
fn a_projects_own_template_wins_and_template_errors_are_named() {
    let p = Project::sqlite();
    p.sample();
    std::fs::create_dir_all(p.path().join("templates")).unwrap();
    std::fs::write(
        p.path().join("templates/runbook.md.tera"),
        "# {{ migration.id | code }} for ACME\n",
    )
    .unwrap();
    let text = render(&p, "20260101090000");
    assert!(
        text.lines().nth(1) == Some("# `20260101090000_create_users` for ACME"),
        "{text}"
    );
    std::fs::write(
        p.path().join("templates/runbook.md.tera"),
        "{{ migration.nope }}\n",
    )
    .unwrap();
    let out = p
        .keel()
        .args(["runbook", "20260101090000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("templates/runbook.md.tera"),
        "{}",
        stderr(&out)
    );
    let out = p
        .keel()
        .args(["runbook", "20990101000000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("there is no migration `20990101000000`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_destructive_migration_asks_for_the_deploy_and_names_the_backup() {
    let p = Project::sqlite();
    p.sample();
    p.migration(
        "20260201090000_drop_bio",
        "-- keel:allow drop-column reason=\"bio moved to the CMS in v2.3\"\nALTER TABLE profiles DROP COLUMN bio;\n",
        Some("ALTER TABLE profiles ADD COLUMN bio text;\n"),
        Some("description = \"Drop profiles.bio\"\nreversibility = \"partial\"\n"),
    );
    let text = render(&p, "20260201090000");
    let s = shape(&text);
    assert_eq!(s.tasks, 6, "{text}");
    assert!(text.contains("- [ ] Deployed code no longer reads or writes `profiles.bio` (every running version) <!-- keel:check code-stops-using-profiles-bio -->"), "{text}");
    assert!(text.contains("- [ ] Backup verified"), "{text}");
    assert!(
        text.contains("- profiles (bio) with its key: line 2, DROP COLUMN"),
        "{text}"
    );
    assert!(
        text.contains("Allowed: bio moved to the CMS in v2.3"),
        "{text}"
    );
    assert!(
        text.contains("| 1 | 2 | ACCESS EXCLUSIVE | no | no | profiles |"),
        "{text}"
    );
}

/// What a reader sees of a runbook on GitHub, by a real GFM parser: the
/// text of every inline code span and paragraph, table header cells, and
/// the list items nested under another.
struct Seen {
    /// Rendered text outside code blocks (code spans included).
    text: Vec<String>,
    header_cells: Vec<String>,
    nested_items: Vec<String>,
}

fn seen(markdown: &str) -> Seen {
    let mut s = Seen {
        text: vec![],
        header_cells: vec![],
        nested_items: vec![],
    };
    let (mut in_head, mut in_block, mut depth) = (false, false, 0usize);
    let mut cell = String::new();
    let mut item = String::new();
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_TASKLISTS | Options::ENABLE_STRIKETHROUGH;
    for event in Parser::new_ext(markdown, options) {
        match event {
            Event::Start(Tag::TableHead) => in_head = true,
            Event::End(TagEnd::TableHead) => in_head = false,
            Event::Start(Tag::TableCell) => cell.clear(),
            Event::End(TagEnd::TableCell) if in_head => s.header_cells.push(cell.trim().into()),
            Event::Start(Tag::CodeBlock(_)) => in_block = true,
            Event::End(TagEnd::CodeBlock) => in_block = false,
            Event::Start(Tag::Item) => {
                depth += 1;
                item.clear();
            }
            Event::End(TagEnd::Item) => {
                if depth > 1 {
                    s.nested_items.push(item.clone());
                }
                depth -= 1;
            }
            Event::Text(t) | Event::Code(t) if !in_block => {
                cell.push_str(&t);
                item.push_str(&t);
                s.text.push(t.to_string());
            }
            _ => {}
        }
    }
    s
}

#[test]
fn on_github_no_backslash_shows_no_header_is_empty_and_fixes_are_their_own_items() {
    let p = Project::sqlite();
    p.sample_all();
    std::fs::write(p.path().join("keel.toml"), KEEL_TOML).unwrap();
    // A destructive migration: a finding with code in its fix, an allow
    // reason, a backup path with underscores.
    let text = render(&p, "20260202090000");
    let s = seen(&text);
    let shown: Vec<&String> = s.text.iter().filter(|t| t.contains('\\')).collect();
    assert!(
        shown.is_empty(),
        "backslashes a reader sees: {shown:?}\n{text}"
    );
    assert!(
        s.text
            .iter()
            .any(|t| t == "backups/20260202090000_drop_users_name/"),
        "the archive folder is one code span, underscores and all:\n{text}"
    );
    assert!(
        s.text
            .iter()
            .any(|t| t.starts_with("-- keel:allow drop-column reason=")),
        "the fix's SQL is a code span, not escaped backticks:\n{text}"
    );
    let empty: Vec<&String> = s.header_cells.iter().filter(|c| c.is_empty()).collect();
    assert!(empty.is_empty(), "empty header cells:\n{text}");
    assert!(s.header_cells.contains(&"Migration".to_string()));
    assert!(
        s.nested_items
            .iter()
            .any(|i| i.starts_with("Safe alternative: expand-contract")),
        "the fix is an item of its own under the finding: {:?}",
        s.nested_items
    );
    assert!(
        s.nested_items
            .iter()
            .any(|i| i.starts_with("Allowed: split")),
        "{:?}",
        s.nested_items
    );
    // The rollback reverts exactly this migration.
    assert!(
        text.contains("keel down 20260202090000 --env production\n"),
        "{text}"
    );
    assert!(!text.contains("keel down --to"), "{text}");
}

#[test]
fn people_sections_come_from_keel_toml_and_migration_toml_or_say_what_is_unset() {
    let p = Project::sqlite();
    p.sample();
    std::fs::write(
        p.path().join("keel.toml"),
        format!(
            "{KEEL_TOML}\n[runbook]\nowner = \"team-accounts\"\non_call = \"#accounts-oncall\"\nnotify_before = [\"#deploys\", \"support@example.com\"]\nabort_if = [\"checkout errors over 1%\"]\n"
        ),
    )
    .unwrap();
    let toml = p
        .path()
        .join("migrations/20260102090000_add_user_profiles/migration.toml");
    let mut meta = std::fs::read_to_string(&toml).unwrap_or_default();
    meta.push_str("\n[runbook]\nowner = \"team-profiles\"\nwindow = \"Tue-Thu 09:00-16:00 UTC\"\n");
    std::fs::write(&toml, meta).unwrap();
    let text = render(&p, "20260102090000");
    for expected in [
        "| Owner | team-profiles |",
        "| On call while it runs | \\#accounts-oncall |",
        "| Tell before it starts | \\#deploys, support@example.com |",
        "| Allowed time window | Tue-Thu 09:00-16:00 UTC |",
        "- checkout errors over 1%\n",
    ] {
        assert!(text.contains(expected), "{expected}\n{text}");
    }
    assert!(
        text.contains("| Tell when it is done or rolled back | *not set*: `notify_after = [\"…\"]` under `[runbook]` |"),
        "{text}"
    );
    // A misspelt key is an error naming the file, line and the fix.
    std::fs::write(p.path().join("keel.toml"), "[runbook]\nonwer = \"x\"\n").unwrap();
    let out = p
        .keel()
        .args(["runbook", "20260102090000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("keel.toml:2") && err.contains("onwer"),
        "{err}"
    );
}
