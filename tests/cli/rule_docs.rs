//! docs/rules stays true: every lint rule has a page and a row in the
//! index (docs/rules/README.md), and on each page the `Flagged:` example
//! makes `keel lint` report the rule while the `Safe:` example does not.
//! Linting reads files only, so these scenarios use the SQLite project.
//!
//! What a page gives the test (see "How the examples on these pages are
//! checked" in docs/rules/README.md): the first ```sql block after the line
//! `Flagged:` and after the line `Safe:`; a line `PostgreSQL version: N`
//! passes `--pg-version N` to both; a line `migration.toml:` and a ```toml
//! block right after an example's SQL make it a migration folder
//! (transactional unless that migration.toml says `transaction = false`),
//! otherwise it is a plain .sql file (read as running outside a transaction).

use crate::common::{Project, stderr};
use std::path::{Path, PathBuf};

/// Rules whose pages describe files and folders rather than one statement,
/// so they have no `Flagged:`/`Safe:` SQL pair.
const EXEMPT: &[(&str, &str)] = &[
    (
        "syntax-error",
        "also reports unreadable files and migration.toml errors; the page shows a file layout",
    ),
    ("missing-down", "about a migration folder's down.sql"),
    ("file-name", "about migration folder names"),
    (
        "reversibility-mismatch",
        "about migration.toml's declaration against what up.sql does",
    ),
    (
        "invalid-allow",
        "about the keel:allow comment, not the statement below it",
    ),
];

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/rules")
}

fn page(id: &str) -> String {
    std::fs::read_to_string(docs().join(format!("{id}.md")))
        .unwrap_or_else(|e| panic!("docs/rules/{id}.md: {e}"))
}

/// Every rule keel has, with its level as the pages write it (`error`,
/// `warning`, `info`): the SARIF output lists them all.
fn rules() -> Vec<(String, String)> {
    let p = Project::sqlite();
    std::fs::write(p.path().join("empty.sql"), "SELECT 1;\n").unwrap();
    let out = p
        .keel()
        .env_remove("DATABASE_URL")
        .args(["lint", "--format", "sarif", "empty.sql"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let level = match r["defaultConfiguration"]["level"].as_str().unwrap() {
                "note" => "info",
                level => level,
            };
            (r["id"].as_str().unwrap().to_string(), level.to_string())
        })
        .collect()
}

#[test]
fn every_rule_has_a_page_and_a_row_in_the_index() {
    let rules = rules();
    assert!(!rules.is_empty());
    let index = std::fs::read_to_string(docs().join("README.md")).unwrap();
    for (id, level) in &rules {
        let name = format!("docs/rules/{id}.md");
        let text = page(id);
        assert!(
            text.starts_with(&format!("# `{id}`\n")),
            "{name}: the first line should be # `{id}`"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("Level: {level}"))),
            "{name}: no line `Level: {level}`"
        );
        let row = index
            .lines()
            .find(|l| l.starts_with(&format!("| `{id}` |")))
            .unwrap_or_else(|| panic!("docs/rules/README.md: no row for {name}"));
        assert!(
            row.contains(&format!("| {level} |")) && row.contains(&format!("]({id}.md)")),
            "docs/rules/README.md: the row for {name} should say {level} and link {id}.md: {row}"
        );
    }
    for entry in std::fs::read_dir(docs()).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(id) = file.strip_suffix(".md") {
            assert!(
                id == "README" || rules.iter().any(|(r, _)| r == id),
                "docs/rules/{file}: keel has no rule {id}"
            );
        }
    }
}

/// One example of a page: its SQL, and its migration.toml when it is to be
/// linted as a migration folder.
struct Example {
    sql: String,
    toml: Option<String>,
}

/// The fenced block that opens with `fence` on the first non-blank line
/// from `from`, and the index of the line after it.
fn block(lines: &[&str], from: usize, fence: &str, name: &str) -> (String, usize) {
    let start = (from..lines.len())
        .find(|&i| !lines[i].trim().is_empty())
        .filter(|&i| lines[i] == fence)
        .unwrap_or_else(|| panic!("{name}: expected a {fence} block after line {from}"));
    let len = lines[start + 1..]
        .iter()
        .position(|l| *l == "```")
        .unwrap_or_else(|| panic!("{name}: the block at line {} is not closed", start + 1));
    let body = lines[start + 1..start + 1 + len]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    (body, start + len + 2)
}

/// The example after the line `label` (`Flagged:` or `Safe:`), if any.
fn example(text: &str, label: &str, name: &str) -> Option<Example> {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| *l == label)?;
    let (sql, next) = block(&lines, at + 1, "```sql", name);
    let toml = (next..lines.len())
        .find(|&i| !lines[i].trim().is_empty())
        .filter(|&i| lines[i] == "migration.toml:")
        .map(|i| block(&lines, i + 1, "```toml", name).0);
    Some(Example { sql, toml })
}

/// The rules `keel lint` reports for an example (findings silenced by
/// keel:allow are not reported), in a project of its own.
fn reported(ex: &Example, version: Option<&str>, name: &str, label: &str) -> Vec<String> {
    let p = Project::sqlite();
    let path = match &ex.toml {
        None => {
            std::fs::write(p.path().join("example.sql"), &ex.sql).unwrap();
            "example.sql"
        }
        Some(toml) => {
            p.migration("20260101090000_example", &ex.sql, None, Some(toml.as_str()));
            "migrations/20260101090000_example"
        }
    };
    let mut cmd = p.keel();
    cmd.env_remove("DATABASE_URL")
        .args(["lint", "--format", "json", path]);
    if let Some(v) = version {
        cmd.args(["--pg-version", v]);
    }
    let out = cmd.output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{name}: {label} example: keel lint printed no JSON ({e}): {}",
            stderr(&out)
        )
    });
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn flagged_examples_are_reported_and_safe_ones_are_not() {
    for (id, _) in rules() {
        let name = format!("docs/rules/{id}.md");
        let text = page(&id);
        let flagged = example(&text, "Flagged:", &name);
        let safe = example(&text, "Safe:", &name);
        if let Some((_, why)) = EXEMPT.iter().find(|(r, _)| id == *r) {
            assert!(
                flagged.is_none() && safe.is_none(),
                "{name}: exempt ({why}), but has a Flagged: or Safe: example"
            );
            continue;
        }
        let (Some(flagged), Some(safe)) = (flagged, safe) else {
            panic!("{name}: needs a `Flagged:` and a `Safe:` example, or an entry in EXEMPT");
        };
        let version = text
            .lines()
            .find_map(|l| l.strip_prefix("PostgreSQL version: "))
            .map(str::trim);
        let found = reported(&flagged, version, &name, "Flagged:");
        assert!(
            found.contains(&id),
            "{name}: the Flagged: example does not make keel report {id}; it reports {found:?}"
        );
        let found = reported(&safe, version, &name, "Safe:");
        assert!(
            !found.contains(&id),
            "{name}: the Safe: example makes keel report {id}: {found:?}"
        );
    }
}
