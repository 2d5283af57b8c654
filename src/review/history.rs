//! A migration's files as they were when it was applied, found in git by
//! the checksum its tracking row keeps: what `keel resolve
//! --accept-checksum` compares today's files with.

use super::changed::git_output as git;
use crate::migration::checksum;
use std::path::Path;

/// The files of one commit of a migration's folder.
#[derive(Debug, Clone)]
pub(crate) struct AppliedFiles {
    pub(crate) commit: String,
    pub(crate) up: String,
    pub(crate) down: Option<String>,
    pub(crate) toml: Option<String>,
}

/// The newest commit of `folder` whose files have `wanted` as keel's
/// checksum; `None` when no commit has them (applied from files never
/// committed as they ran). An error when git cannot be asked.
pub(crate) fn applied_files(folder: &Path, wanted: &str) -> Result<Option<AppliedFiles>, String> {
    let commits = git(folder, &["log", "--format=%H", "--", "."])?;
    for commit in commits.lines().filter(|c| !c.is_empty()) {
        let Ok(up) = git(folder, &["show", &format!("{commit}:./up.sql")]) else {
            continue;
        };
        let down = git(folder, &["show", &format!("{commit}:./down.sql")]).ok();
        let toml = git(folder, &["show", &format!("{commit}:./migration.toml")]).ok();
        if checksum(&up, down.as_deref(), toml.as_deref()) == wanted {
            return Ok(Some(AppliedFiles {
                commit: commit.to_string(),
                up,
                down,
                toml,
            }));
        }
    }
    Ok(None)
}
