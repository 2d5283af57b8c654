//! Which migrations a branch adds, changes or removes: `git diff` of the
//! migrations folder against the merge base with the base branch, the
//! working tree included (a reviewer runs it before committing too).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Change {
    Added,
    Changed,
    Removed,
}

impl Change {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Changed => "changed",
            Change::Removed => "removed",
        }
    }
}

/// The branch's changes to the migrations folder.
#[derive(Debug)]
pub(crate) struct Changes {
    /// The base as given or found (`origin/main`).
    pub(crate) base: String,
    /// The merge base's commit, abbreviated.
    pub(crate) merge_base: String,
    /// By migration folder name (`<version>_<name>`).
    pub(crate) folders: BTreeMap<String, Change>,
}

/// `None` when `project` is not in a git work tree.
pub(crate) fn changes(
    project: &Path,
    migrations: &Path,
    base: Option<&str>,
) -> Result<Option<Changes>, String> {
    if git(project, &["rev-parse", "--is-inside-work-tree"]).is_err() {
        return Ok(None);
    }
    let base = match base {
        // A ref git would read as an option is no ref.
        Some(b) if b.starts_with('-') || b.is_empty() => {
            return Err(format!(
                "--base {b:?} is not a git ref\n  fix: give a branch, tag or commit (`--base main`)"
            ));
        }
        Some(b) => b.to_string(),
        None => default_base(project)?,
    };
    let merge_base = git(project, &["merge-base", &base, "HEAD"]).map_err(|e| {
        format!("no merge base of {base} and HEAD: {e}\n  fix: fetch the base branch (`git fetch origin {base}`), or give another with --base REF")
    })?;
    let dir = migrations
        .to_string_lossy()
        .trim_end_matches('/')
        .to_string();
    let mut folders: BTreeMap<String, Change> = BTreeMap::new();
    let diff = git(
        project,
        &[
            "diff",
            "--relative",
            "--name-status",
            "--no-renames",
            &merge_base,
            "--",
            &dir,
        ],
    )?;
    let untracked = git(
        project,
        &["ls-files", "--others", "--exclude-standard", "--", &dir],
    )?;
    let lines = diff
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(status, path)| (status.chars().next().unwrap_or('M'), path.to_string()))
        .chain(untracked.lines().map(|p| ('A', p.to_string())));
    for (status, path) in lines {
        let Some(folder) = path
            .strip_prefix(&dir)
            .map(|p| p.trim_start_matches('/'))
            .and_then(|p| p.split('/').next())
            .filter(|f| !f.is_empty())
        else {
            continue;
        };
        let change = if status == 'A' {
            Change::Added
        } else {
            Change::Changed
        };
        folders
            .entry(folder.to_string())
            .and_modify(|c| {
                if change == Change::Changed {
                    *c = Change::Changed;
                }
            })
            .or_insert(change);
    }
    for (folder, change) in folders.iter_mut() {
        if !migrations.join(folder).is_dir() {
            *change = Change::Removed;
        } else if *change == Change::Added && existed(project, &merge_base, &dir, folder) {
            // A file added to a migration that was already there.
            *change = Change::Changed;
        }
    }
    let merge_base = merge_base.chars().take(12).collect();
    Ok(Some(Changes {
        base,
        merge_base,
        folders,
    }))
}

fn existed(project: &Path, commit: &str, dir: &str, folder: &str) -> bool {
    git(
        project,
        &["ls-tree", "--name-only", commit, &format!("{dir}/{folder}")],
    )
    .is_ok_and(|out| !out.trim().is_empty())
}

/// The default branch: the remote's HEAD, else `origin/main`, `origin/master`,
/// `main` or `master`, whichever exists.
fn default_base(project: &Path) -> Result<String, String> {
    if let Ok(r) = git(
        project,
        &[
            "symbolic-ref",
            "--quiet",
            "--short",
            "refs/remotes/origin/HEAD",
        ],
    ) {
        return Ok(r);
    }
    for r in ["origin/main", "origin/master", "main", "master"] {
        if git(
            project,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{r}^{{commit}}"),
            ],
        )
        .is_ok()
        {
            return Ok(r.to_string());
        }
    }
    Err("no default branch to compare with (no origin/HEAD, main or master)\n  fix: give the base with --base REF".into())
}

/// A git command's trimmed stdout, or its stderr as the error.
fn git(project: &Path, args: &[&str]) -> Result<String, String> {
    git_output(project, args).map(|out| out.trim().to_string())
}

/// A git command's stdout as it is (a file's text keeps its last line
/// end), or its stderr as the error.
pub(super) fn git_output(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        String::from_utf8(out.stdout).map_err(|e| e.to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Whether `path` is committed as it is in the work tree.
pub(crate) fn committed(project: &Path, path: &Path) -> bool {
    let p = path.to_string_lossy();
    git(project, &["ls-files", "--error-unmatch", "--", &p]).is_ok()
        && git(project, &["diff", "--quiet", "HEAD", "--", &p]).is_ok()
}
