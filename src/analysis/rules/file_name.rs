//! `file-name`: migration folders named `<14-digit UTC version>_<snake_case>`,
//! each version used once.

use super::Rule;
use crate::analysis::finding::{Finding, Severity};
use crate::migration::Version;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub(crate) const RULE: Rule = Rule {
    id: "file-name",
    severity: Severity::Error,
    summary: "a folder not named <version>_<snake_case_name>, or a version used twice",
    check: None,
};

/// Checks migration folder names; `dirs` are the folders to check.
pub(crate) fn check(dirs: &[PathBuf]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut seen: HashMap<Version, &Path> = HashMap::new();
    for dir in dirs {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        // diesel names its folders itself; linting a diesel project's
        // migrations, they are not keel's to rename.
        if crate::analysis::layout::is_diesel_name(name) {
            continue;
        }
        let parsed = name.split_once('_').and_then(|(v, rest)| {
            Version::parse(v).filter(|_| crate::migration::is_migration_name(rest))
        });
        let Some(version) = parsed else {
            out.push(finding(
                dir,
                format!(
                    "`{name}` is not named <version>_<name>: a 14-digit UTC timestamp \
                     (YYYYMMDDHHMMSS), an underscore and a name that starts with a letter or digit; keel will not load it"
                ),
                "rename the folder, e.g. `keel new NAME` prints a well-formed one".into(),
            ));
            continue;
        };
        if let Some(first) = seen.insert(version, dir) {
            out.push(finding(
                dir,
                format!(
                    "version {version} is used twice (also by {}): the order of the two is undefined",
                    first.display()
                ),
                "give one of them a new version: `keel new NAME` picks a free one".into(),
            ));
        }
    }
    out
}

fn finding(dir: &Path, message: String, suggestion: String) -> Finding {
    Finding {
        rule: RULE.id,
        severity: RULE.severity,
        file: dir.display().to_string(),
        line: 1,
        column: 1,
        statement: String::new(),
        message,
        suggestion,
        allowed: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_bad_names_and_duplicate_versions() {
        let dirs: Vec<PathBuf> = [
            "migrations/20260101090000_add_users",
            "migrations/2026_AddPosts",
            "migrations/20260101090000_add_posts",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        let f = check(&dirs);
        assert_eq!(f.len(), 2);
        insta::assert_snapshot!(f.iter().map(Finding::render).collect::<String>());
    }

    #[test]
    fn good_names_pass() {
        assert!(check(&[PathBuf::from("migrations/20260101090000_add_users")]).is_empty());
    }
}
