//! What keel last measured of each environment, so that a runbook rendered
//! offline (in review, in CI) still gives an expected time and a blast
//! radius per environment: `runbooks/sizes/<env>.json`, written by
//! `keel plan V --env E --save`. Table names, sizes, dependants, the cost
//! coefficients and when they were read: no rows, no URL, nothing secret,
//! so it is committed with the runbooks. Read back as untrusted input.

use crate::analysis::estimate::Calibration;
use crate::analysis::live::LiveSchema;
use crate::db::{Dependent, TableStats};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A sizes file larger than this is not one keel wrote.
const MAX_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Sizes {
    pub(crate) environment: String,
    pub(crate) measured_at: DateTime<Utc>,
    /// `15.4`, when the server said.
    pub(crate) postgres: Option<String>,
    pub(crate) calibration: Calibration,
    pub(crate) tables: Vec<TableStats>,
    #[serde(default)]
    pub(crate) dependents: Vec<Dependent>,
}

/// An environment name keel will put into a file name: keel.toml's names
/// are free text, a path is not.
pub(crate) fn file_safe(env: &str) -> bool {
    !env.is_empty()
        && env.len() <= 64
        && env
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The stored sizes of every environment keel.toml names that has them.
pub(crate) fn load_all(
    runbooks: &Path,
    config: &crate::config::Config,
) -> Result<Vec<Sizes>, String> {
    let mut all = Vec::new();
    for name in config.environments.keys() {
        all.extend(Sizes::load(runbooks, name)?);
    }
    Ok(all)
}

impl Sizes {
    /// `DIR/sizes/<env>.json`; `None` for a name that cannot be a file name.
    pub(crate) fn path(runbooks: &Path, env: &str) -> Option<PathBuf> {
        file_safe(env).then(|| runbooks.join("sizes").join(format!("{env}.json")))
    }

    /// Writes the file (through a temporary one), tables in name order so
    /// that a new measurement diffs line by line in review.
    pub(crate) fn save(mut self, runbooks: &Path) -> std::io::Result<PathBuf> {
        let Some(path) = Self::path(runbooks, &self.environment) else {
            return Err(std::io::Error::other(format!(
                "environment name `{}` cannot name a file (letters, digits, - and _ only)",
                self.environment
            )));
        };
        self.tables
            .sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
        self.dependents.sort();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let json = serde_json::to_string_pretty(&self).map_err(std::io::Error::other)?;
        let partial = crate::stamp::partial(&path);
        std::fs::write(&partial, json + "\n")?;
        std::fs::rename(&partial, &path)?;
        Ok(path)
    }

    /// The environment's stored sizes, if measured. A file keel cannot
    /// read is an error naming it, never a silent "unknown".
    pub(crate) fn load(runbooks: &Path, env: &str) -> Result<Option<Sizes>, String> {
        let Some(path) = Self::path(runbooks, env) else {
            return Ok(None);
        };
        let fix = |e: String| {
            format!(
                "{}: {e}\n  fix: measure again with `keel plan VERSION --env {env} --save`, or delete the file",
                path.display()
            )
        };
        match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(fix(e.to_string())),
            Ok(m) if m.len() > MAX_BYTES => {
                return Err(fix(format!("larger than {} MiB", MAX_BYTES >> 20)));
            }
            Ok(_) => {}
        }
        let text = std::fs::read_to_string(&path).map_err(|e| fix(e.to_string()))?;
        let sizes: Sizes = serde_json::from_str(&text).map_err(|e| fix(e.to_string()))?;
        if sizes.environment != env {
            return Err(fix(format!(
                "it holds the sizes of `{}`, not of `{env}`",
                sizes.environment
            )));
        }
        Ok(Some(sizes))
    }

    /// The live schema the estimate reads, as it was when measured.
    pub(crate) fn live(&self) -> LiveSchema {
        let mut live = LiveSchema::default();
        live.calibration = self.calibration.clone();
        for t in &self.tables {
            live.insert_stats(t.clone());
        }
        live
    }

    /// A table the migration names (`users`, `public.users`), as measured.
    pub(crate) fn table(&self, name: &str) -> Option<&TableStats> {
        let rel = crate::db::Relation::parse(name);
        let schema = rel.schema.as_deref().unwrap_or("public");
        self.tables
            .iter()
            .find(|t| t.name == rel.name && t.schema == schema)
    }

    /// What depends on a table the migration names, in words.
    pub(crate) fn dependents_of(&self, name: &str) -> Vec<String> {
        let rel = crate::db::Relation::parse(name);
        let schema = rel.schema.as_deref().unwrap_or("public");
        self.dependents
            .iter()
            .filter(|d| d.table == rel.name && d.schema == schema)
            .map(|d| format!("{} {}", d.kind, d.name))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_environment_names_become_file_names() {
        assert!(file_safe("production"));
        assert!(file_safe("eu-west_2"));
        assert!(!file_safe("../etc"));
        assert!(!file_safe("a/b"));
        assert!(!file_safe(""));
    }

    #[test]
    fn a_file_for_another_environment_or_unreadable_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let sizes = Sizes {
            environment: "staging".into(),
            measured_at: Utc::now(),
            postgres: Some("15.4".into()),
            calibration: Calibration::default(),
            tables: vec![TableStats {
                schema: "public".into(),
                name: "users".into(),
                ..TableStats::default()
            }],
            dependents: Vec::new(),
        };
        let path = sizes.clone().save(dir.path()).unwrap();
        let back = Sizes::load(dir.path(), "staging").unwrap().unwrap();
        assert_eq!(back.tables, sizes.tables);
        assert!(back.table("users").is_some());
        std::fs::copy(&path, dir.path().join("sizes/production.json")).unwrap();
        let e = Sizes::load(dir.path(), "production").unwrap_err();
        assert!(
            e.contains("production.json") && e.contains("not of `production`"),
            "{e}"
        );
        std::fs::write(&path, "{").unwrap();
        let e = Sizes::load(dir.path(), "staging").unwrap_err();
        assert!(e.contains("staging.json") && e.contains("fix:"), "{e}");
        assert!(Sizes::load(dir.path(), "absent").unwrap().is_none());
    }
}
