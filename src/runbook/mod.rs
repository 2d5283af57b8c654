//! Runbooks: one Markdown document per migration, rendered from a Tera
//! template for review in a pull request, followed by the operator, and
//! annotated with what happened.

pub mod annotate;
pub mod binding;
pub mod check_id;
mod from_analysis;
mod history;
pub mod markdown;
mod render;

pub use history::keep_history;
pub use render::{Marker, RenderError, marker, render};

use crate::config::Config;
use crate::migration::Migration;
use check_id::CheckId;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Everything the template sees. Field names are the template's API: a
/// project's own `templates/runbook.md.tera` may use any of them.
#[derive(Debug, Clone, Serialize)]
pub struct Runbook {
    pub keel_version: String,
    pub migration: MigrationInfo,
    pub statements: Vec<StatementInfo>,
    pub findings: Vec<FindingInfo>,
    pub checklist: Vec<CheckItem>,
    pub environments: Vec<EnvironmentInfo>,
    pub smoke: Vec<SmokeInfo>,
    /// What keel backs up before running (tables/columns), in words.
    pub backups: Vec<String>,
    pub rollback: RollbackInfo,
    /// The migration's `[backfill]`, when it has one.
    pub backfill: Option<BackfillInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackfillInfo {
    pub table: String,
    pub key: String,
    pub set: Vec<BackfillSet>,
    pub filter: Option<String>,
    pub batch_size: u64,
    pub delay_ms: u64,
    /// The command that runs or resumes it.
    pub command: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackfillSet {
    pub column: String,
    pub expression: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MigrationInfo {
    pub id: String,
    pub version: String,
    pub name: String,
    pub description: Option<String>,
    pub checksum: String,
    pub reversibility: String,
    pub transaction: bool,
    pub lock_timeout: String,
    pub statement_timeout: String,
    pub retries: u32,
    pub up_path: String,
    pub down_path: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatementInfo {
    pub number: usize,
    pub line: usize,
    pub sql: String,
    /// PostgreSQL lock level (`ACCESS EXCLUSIVE`, …), when the analysis knows it.
    pub lock: Option<String>,
    pub rewrite: bool,
    pub scan: bool,
    pub tables: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FindingInfo {
    pub rule: String,
    pub severity: String,
    pub line: usize,
    pub message: String,
    pub suggestion: String,
    /// The `-- keel:allow` reason, when the finding was allowed.
    pub allowed_reason: Option<String>,
}

/// A pre-migration checklist item. `id` is stable across renders, so that
/// `execute` can tick it and an auditor can follow it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckItem {
    pub id: CheckId,
    pub text: String,
    /// keel checks this itself during `execute` instead of asking.
    pub verified_by_keel: bool,
}

impl CheckItem {
    /// An item; whether keel checks it itself follows from its id.
    pub fn new(id: CheckId, text: String) -> CheckItem {
        let verified_by_keel = id.verified_by_keel();
        CheckItem {
            id,
            text,
            verified_by_keel,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentInfo {
    pub name: String,
    /// `--env NAME`, or empty for the default database.
    pub env_flag: String,
    pub commands: Vec<String>,
    pub rollback_commands: Vec<String>,
    pub estimate: Option<String>,
    pub require_snapshot: bool,
    pub require_dry_run: bool,
    pub require_signature: bool,
    pub health_url: Option<String>,
    pub smoke: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SmokeInfo {
    pub name: String,
    pub sql: String,
    pub expect: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RollbackInfo {
    pub possible: bool,
    pub down_sql: Option<String>,
    /// The version `keel down --to` goes back to (the one before this).
    pub previous_version: String,
    pub note: String,
}

/// Where a migration's runbook lives: `runbooks/<version>_<name>.md`.
pub fn path_for(dir: &Path, m: &Migration) -> PathBuf {
    dir.join(format!("{}.md", m.id()))
}

impl Runbook {
    /// Assembles the runbook's data from the migration, its analysis, its
    /// neighbours and keel.toml. The analysis is the offline one
    /// ([`crate::analysis::analyze::Analyzer::offline`]): a reviewed runbook
    /// must render the same whichever server it is later run on.
    pub fn build(
        m: &Migration,
        all: &[Migration],
        config: &Config,
        analysis: &crate::analysis::analyze::MigrationAnalysis,
    ) -> Runbook {
        let statements = from_analysis::statements(analysis);
        let findings = from_analysis::findings(analysis);
        let backups = from_analysis::backups(analysis);
        let has_backups = !backups.is_empty();
        let settings = crate::migrator::RunSettings::project(
            config.lock_timeout,
            config.statement_timeout,
            config.retries,
        );
        let timeouts = settings.timeouts(m);
        let fmt = |d: std::time::Duration| humantime::format_duration(d).to_string();
        let previous_version = all
            .iter()
            .filter(|o| o.version < m.version)
            .map(|o| o.version.to_string())
            .next_back()
            .unwrap_or_else(|| "0".into());
        let reversible = m.has_down()
            && m.meta.reversibility != Some(crate::migration::Reversibility::Irreversible);
        let mut checklist = vec![
            CheckItem::new(CheckId::DryRunReviewed, format!("Dry run reviewed: the SQL, locks and estimate of `keel up --dry-run --to {}` match this runbook", m.version)),
            CheckItem::new(CheckId::RollbackTested, "Rollback tested: `keel down` of this migration ran cleanly on staging (or a copy)".into()),
            CheckItem::new(CheckId::SnapshotTaken, "Snapshot taken: `keel snapshot take --env ENV`; keel checks the file and its SHA-256".into()),
            CheckItem::new(CheckId::DeploymentPlanReviewed, "Deployment plan reviewed: the application code that must be live before (and after) this migration is deployed".into()),
        ];
        checklist.extend(from_analysis::deploy_items(analysis));
        if !backups.is_empty() {
            checklist.insert(
                0,
                CheckItem::new(CheckId::BackupVerified, "Backup verified: keel exports the data this migration destroys and re-reads the archive against its manifest".into()),
            );
        }
        let mut environments: Vec<EnvironmentInfo> = config
            .environments
            .iter()
            .map(|(name, env)| environment(m, &previous_version, name, env, !backups.is_empty()))
            .collect();
        if environments.is_empty() {
            // No keel.toml environments: the commands use DATABASE_URL or
            // the embedded default, so they carry no --env.
            environments.push(environment(
                m,
                &previous_version,
                "",
                &Default::default(),
                !backups.is_empty(),
            ));
        }
        Runbook {
            keel_version: env!("CARGO_PKG_VERSION").into(),
            migration: MigrationInfo {
                id: m.id(),
                version: m.version.to_string(),
                name: m.name.clone(),
                description: m.meta.description.clone(),
                checksum: m.checksum.clone(),
                reversibility: m.meta.reversibility.unwrap_or_default().to_string(),
                transaction: m.meta.transaction,
                lock_timeout: fmt(timeouts.lock),
                statement_timeout: fmt(timeouts.statement),
                retries: settings.retries(m),
                up_path: m.up_path().display().to_string(),
                down_path: m.down_path().display().to_string(),
            },
            statements,
            findings,
            checklist,
            environments,
            smoke: m
                .meta
                .smoke
                .iter()
                .map(|s| SmokeInfo {
                    name: s.name.clone(),
                    sql: s.sql.clone(),
                    expect: s.expect.to_string(),
                })
                .collect(),
            backups,
            backfill: m.meta.backfill.as_ref().map(|b| BackfillInfo {
                table: b.table.clone(),
                key: b.key.clone(),
                set: b
                    .set
                    .iter()
                    .map(|(column, expression)| BackfillSet {
                        column: column.clone(),
                        expression: expression.clone(),
                    })
                    .collect(),
                filter: b.filter.clone(),
                batch_size: b.batch_size.unwrap_or(crate::backfill::DEFAULT_BATCH_SIZE),
                delay_ms: b
                    .delay_ms
                    .unwrap_or(crate::backfill::DEFAULT_DELAY.as_millis() as u64),
                command: format!("keel backfill {}", m.version),
            }),
            rollback: RollbackInfo {
                possible: reversible,
                down_sql: m.down.clone().filter(|_| reversible),
                previous_version,
                note: if !reversible {
                    "this migration cannot be reverted by keel: restore the snapshot taken before it".into()
                } else if !has_backups {
                    "down.sql reverts it".into()
                } else if m.meta.restore_on_down {
                    "down.sql recreates the structure; keel restores backed-up data afterwards"
                        .into()
                } else {
                    "down.sql recreates the structure and rebuilds its data from live columns, so writes made after the migration survive; keel keeps the backup but does not restore it (restore_on_down = false in migration.toml)".into()
                },
            },
        }
    }
}

fn environment(
    m: &Migration,
    previous: &str,
    name: &str,
    env: &crate::config::Environment,
    has_backups: bool,
) -> EnvironmentInfo {
    let v = m.version;
    let flag = if name.is_empty() {
        String::new()
    } else {
        format!(" --env {name}")
    };
    let mut commands = vec![
        format!("keel plan {v}{flag}"),
        format!("keel up --dry-run --to {v}{flag}"),
    ];
    if env.require_snapshot {
        commands.push(format!("keel snapshot take{flag}"));
    }
    commands.push(format!("keel execute {v}{flag}"));
    let mut rollback_commands = vec![format!("keel down --to {previous}{flag}")];
    if has_backups {
        rollback_commands.push(format!("keel backup verify backups/{}/<stamp>.zip", m.id()));
    }
    EnvironmentInfo {
        name: if name.is_empty() {
            "default database (DATABASE_URL, else sqlite://keel.db)".into()
        } else {
            name.into()
        },
        env_flag: flag.trim().to_string(),
        commands,
        rollback_commands,
        estimate: None,
        require_snapshot: env.require_snapshot,
        require_dry_run: env.require_dry_run,
        require_signature: env.require_signature,
        health_url: env.health_url.clone(),
        smoke: env.smoke.clone(),
    }
}
