//! `keel lint` inputs: migration folders, migrations folders and plain .sql
//! files, read leniently so that a broken folder is a finding, not a stop.

use super::analyze::{MigrationFiles, analyze, analyze_sql};
use super::finding::{self, Finding, Severity};
use super::live::LiveSchema;
use super::rules;
use super::schema::Schema;
use super::version::PgVersion;
use crate::migration::Meta;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Every finding of one lint run, and how many SQL files were read.
#[derive(Debug, Clone, Default)]
pub struct LintReport {
    pub findings: Vec<Finding>,
    pub files: usize,
}

impl LintReport {
    /// Findings not silenced by `keel:allow`.
    pub fn active(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.is_active())
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.active().filter(|f| f.severity == severity).count()
    }

    pub fn has_errors(&self) -> bool {
        self.count(Severity::Error) > 0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LintError {
    #[error(
        "{0}: no such file or folder\n  fix: give a migration folder, a migrations folder or .sql files"
    )]
    NotFound(PathBuf),
    #[error("{0}: cannot read: {1}")]
    Io(PathBuf, std::io::Error),
}

/// Lints every path. Each migration is judged on its own: the migrations
/// before it are assumed applied (lint has no database to ask which are
/// pending), so only tables created in the same migration count as new.
///
/// With `live` (a database was given), rules read the live schema and
/// findings say how big each table is and how long its lock is held.
pub fn lint_paths(
    paths: &[PathBuf],
    version: Option<PgVersion>,
    live: Option<Arc<LiveSchema>>,
) -> Result<LintReport, LintError> {
    let mut folders: BTreeSet<PathBuf> = BTreeSet::new();
    let mut sets: Vec<Vec<PathBuf>> = Vec::new();
    let mut plain: BTreeSet<PathBuf> = BTreeSet::new();
    for path in paths {
        if path.is_dir() {
            if is_migration(path) {
                sets.push(vec![path.clone()]);
                folders.insert(path.clone());
            } else {
                let (dirs, sql) = read_migrations_folder(path)?;
                folders.extend(dirs.iter().cloned());
                sets.push(dirs);
                plain.extend(sql);
            }
        } else if path.is_file() {
            match path.parent().filter(|p| is_migration(p)) {
                Some(dir) if is_migration_file(path) => {
                    folders.insert(dir.to_path_buf());
                }
                _ => {
                    plain.insert(path.clone());
                }
            }
        } else {
            return Err(LintError::NotFound(path.clone()));
        }
    }
    let mut report = LintReport::default();
    for set in &sets {
        report.findings.extend(rules::file_name::check(set));
    }
    for dir in &folders {
        lint_folder(dir, version, live.clone(), &mut report)?;
    }
    for file in &plain {
        let text = match read(file)? {
            Ok(text) => text,
            Err(f) => {
                report.findings.push(f);
                continue;
            }
        };
        report.files += 1;
        let path = file.display().to_string();
        report.findings.extend(analyze_sql(
            &path,
            &text,
            &mut Schema::with_live(version, live.clone()),
            version,
        ));
    }
    finding::sort(&mut report.findings);
    report.findings.dedup();
    Ok(report)
}

fn is_migration(dir: &Path) -> bool {
    ["up.sql", "down.sql", "migration.toml"]
        .iter()
        .any(|f| dir.join(f).is_file())
}

fn is_migration_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    matches!(name, "up.sql" | "down.sql" | "migration.toml")
}

/// Subfolders (migrations) and loose .sql files of a migrations folder.
fn read_migrations_folder(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>), LintError> {
    let entries = std::fs::read_dir(dir).map_err(|e| LintError::Io(dir.to_path_buf(), e))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let hidden = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'))
    };
    let dirs = paths
        .iter()
        .filter(|p| p.is_dir() && !hidden(p))
        .cloned()
        .collect();
    let sql = paths
        .iter()
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "sql"))
        .cloned()
        .collect();
    Ok((dirs, sql))
}

fn lint_folder(
    dir: &Path,
    version: Option<PgVersion>,
    live: Option<Arc<LiveSchema>>,
    report: &mut LintReport,
) -> Result<(), LintError> {
    let optional = |name: &str, report: &mut LintReport| -> Result<Option<String>, LintError> {
        let path = dir.join(name);
        if !path.is_file() {
            return Ok(None);
        }
        Ok(match read(&path)? {
            Ok(text) => Some(text),
            Err(f) => {
                report.findings.push(f);
                None
            }
        })
    };
    let up = optional("up.sql", report)?;
    let down = optional("down.sql", report)?;
    let toml = optional("migration.toml", report)?;
    let Some(up) = up else {
        if !dir.join("up.sql").is_file() {
            report.findings.push(file_finding(
                rules::file_name::RULE.id,
                &dir.join("up.sql"),
                (1, 1),
                "up.sql is missing: every migration folder needs one, and keel will not load it",
                "add up.sql with the migration's SQL",
            ));
        }
        return Ok(());
    };
    let meta = match toml.as_deref().map(Meta::parse) {
        Some(Ok(meta)) => meta,
        None => Meta {
            transaction: true,
            ..Meta::default()
        },
        Some(Err(e)) => {
            report.findings.push(file_finding(
                rules::syntax_error::RULE.id,
                &dir.join("migration.toml"),
                (e.line, e.column),
                &format!("migration.toml: {}", e.message),
                "valid keys: description, reversibility, transaction, lock_timeout, \
                 statement_timeout, retries, [[smoke]], [backfill]",
            ));
            return Ok(());
        }
    };
    report.files += 1 + usize::from(down.is_some());
    let files = MigrationFiles {
        dir,
        up: &up,
        down: down.as_deref(),
        meta: &meta,
    };
    let analysis = analyze(&files, &mut Schema::with_live(version, live), version);
    report.findings.extend(analysis.findings);
    Ok(())
}

/// The file's text, or a finding when it is not UTF-8.
fn read(path: &Path) -> Result<Result<String, Finding>, LintError> {
    let bytes = std::fs::read(path).map_err(|e| LintError::Io(path.to_path_buf(), e))?;
    Ok(String::from_utf8(bytes).map_err(|e| {
        file_finding(
            rules::syntax_error::RULE.id,
            path,
            (1, 1),
            &format!("not valid UTF-8 (byte {})", e.utf8_error().valid_up_to()),
            "save the file as UTF-8",
        )
    }))
}

fn file_finding(
    rule: &'static str,
    path: &Path,
    (line, column): (usize, usize),
    message: &str,
    suggestion: &str,
) -> Finding {
    Finding {
        rule,
        severity: Severity::Error,
        file: path.display().to_string(),
        line,
        column,
        statement: String::new(),
        message: message.to_string(),
        suggestion: suggestion.to_string(),
        allowed: None,
    }
}
