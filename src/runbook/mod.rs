//! Runbooks: one Markdown document per migration, rendered from a Tera
//! template for review in a pull request, followed by the operator, and
//! annotated with what happened.

pub(crate) mod annotate;
pub mod binding;
pub(crate) mod check_id;
mod from_analysis;
mod history;
pub(crate) mod markdown;
mod radius;
mod render;
pub(crate) mod sizes;

pub(crate) use history::keep_history;
pub(crate) use render::render;
pub use render::{Marker, marker};

use crate::config::Config;
use crate::migration::Migration;
use check_id::CheckId;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Everything the template sees. Field names are the template's API: a
/// project's own `templates/runbook.md.tera` may use any of them.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Runbook {
    pub(crate) keel_version: String,
    pub(crate) migration: MigrationInfo,
    pub(crate) statements: Vec<StatementInfo>,
    pub(crate) findings: Vec<FindingInfo>,
    pub(crate) checklist: Vec<CheckItem>,
    pub(crate) environments: Vec<EnvironmentInfo>,
    pub(crate) smoke: Vec<SmokeInfo>,
    /// What keel backs up before running (tables/columns), in words.
    pub(crate) backups: Vec<String>,
    pub(crate) rollback: RollbackInfo,
    /// The migration's `[backfill]`, when it has one.
    pub(crate) backfill: Option<BackfillInfo>,
    /// Owner, on-call, communication, window and abort criteria.
    pub(crate) people: crate::migration::People,
    /// The tables up.sql reaches, with their lock, sizes and dependants.
    pub(crate) blast: Vec<radius::BlastTable>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct BackfillInfo {
    pub(crate) table: String,
    pub(crate) key: String,
    pub(crate) set: Vec<BackfillSet>,
    pub(crate) filter: Option<String>,
    pub(crate) batch_size: u64,
    pub(crate) delay_ms: u64,
    /// The command that runs or resumes it.
    pub(crate) command: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct BackfillSet {
    pub(crate) column: String,
    pub(crate) expression: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct MigrationInfo {
    pub(crate) id: String,
    pub(crate) version: String,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) checksum: String,
    pub(crate) reversibility: String,
    pub(crate) transaction: bool,
    pub(crate) lock_timeout: String,
    pub(crate) statement_timeout: String,
    pub(crate) retries: u32,
    pub(crate) up_path: String,
    pub(crate) down_path: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct StatementInfo {
    pub(crate) number: usize,
    pub(crate) line: usize,
    pub(crate) sql: String,
    /// PostgreSQL lock level (`ACCESS EXCLUSIVE`, …), when the analysis knows it.
    pub(crate) lock: Option<String>,
    pub(crate) rewrite: bool,
    pub(crate) scan: bool,
    pub(crate) tables: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct FindingInfo {
    pub(crate) rule: String,
    pub(crate) severity: String,
    pub(crate) line: usize,
    pub(crate) message: String,
    pub(crate) suggestion: String,
    /// The `-- keel:allow` reason, when the finding was allowed.
    pub(crate) allowed_reason: Option<String>,
}

/// A pre-migration checklist item. `id` is stable across renders, so that
/// `execute` can tick it and an auditor can follow it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CheckItem {
    pub(crate) id: CheckId,
    pub(crate) text: String,
    /// keel checks this itself during `execute` instead of asking.
    pub(crate) verified_by_keel: bool,
}

impl CheckItem {
    /// An item; whether keel checks it itself follows from its id.
    pub(crate) fn new(id: CheckId, text: String) -> CheckItem {
        let verified_by_keel = id.verified_by_keel();
        CheckItem {
            id,
            text,
            verified_by_keel,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct EnvironmentInfo {
    pub(crate) name: String,
    /// `--env NAME`, or empty for the default database.
    pub(crate) env_flag: String,
    pub(crate) commands: Vec<String>,
    pub(crate) rollback_commands: Vec<String>,
    /// From the sizes `keel plan --save` stored for this environment.
    pub(crate) estimate: Option<String>,
    pub(crate) require_snapshot: bool,
    pub(crate) require_dry_run: bool,
    pub(crate) require_signature: bool,
    pub(crate) health_url: Option<String>,
    pub(crate) smoke: Vec<String>,
    /// The monitoring window after the migration, in words.
    pub(crate) monitor: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct SmokeInfo {
    pub(crate) name: String,
    pub(crate) sql: String,
    pub(crate) expect: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct RollbackInfo {
    pub(crate) possible: bool,
    pub(crate) down_sql: Option<String>,
    /// The version `keel down --to` goes back to (the one before this).
    pub(crate) previous_version: String,
    pub(crate) note: String,
}

/// Where a migration's runbook lives: `runbooks/<version>_<name>.md`.
pub(crate) fn path_for(dir: &Path, m: &Migration) -> PathBuf {
    dir.join(format!("{}.md", m.id()))
}

impl Runbook {
    /// Assembles the runbook's data from the migration, its analysis, its
    /// neighbours and keel.toml. The analysis is the offline one
    /// ([`crate::analysis::analyze::Analyzer::offline`]): a reviewed runbook
    /// must render the same whichever server it is later run on.
    /// `sizes`: what `keel plan --save` stored of each environment
    /// ([`sizes::load_all`]).
    pub(crate) fn build(
        m: &Migration,
        all: &[Migration],
        config: &Config,
        analysis: &crate::analysis::analyze::MigrationAnalysis,
        sizes: &[sizes::Sizes],
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
        // Declared irreversible: keel takes no backup to verify.
        let backed_up = !backups.is_empty()
            && m.meta.reversibility != Some(crate::migration::Reversibility::Irreversible);
        let checklist = checklist(m, analysis, backed_up);
        let mut environments: Vec<EnvironmentInfo> = config
            .environments
            .iter()
            .map(|(name, env)| {
                let mut info = environment(m, name, env, backed_up);
                info.estimate = sizes
                    .iter()
                    .find(|s| &s.environment == name)
                    .map(|s| radius::expected_time(m, s));
                info
            })
            .collect();
        if environments.is_empty() {
            // No keel.toml environments: the commands use DATABASE_URL or
            // the embedded default, so they carry no --env.
            environments.push(environment(m, "", &Default::default(), backed_up));
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
            backfill: backfill_info(m),
            rollback: rollback_info(m, reversible, has_backups, previous_version),
            people: radius::people(&config.runbook, m),
            blast: radius::tables(analysis, sizes),
        }
    }
}

/// The checklist an operator works through: keel's own checks, then what
/// the analysis says must be deployed first.
fn checklist(
    m: &Migration,
    analysis: &crate::analysis::analyze::MigrationAnalysis,
    backed_up: bool,
) -> Vec<CheckItem> {
    let mut checklist = vec![
        CheckItem::new(CheckId::DryRunReviewed, format!("Dry run reviewed: the SQL, locks and estimate of `keel up --dry-run --to {}` match this runbook", m.version)),
        CheckItem::new(CheckId::RollbackTested, "Rollback tested: `keel down` of this migration ran cleanly on staging (or a copy)".into()),
        CheckItem::new(CheckId::SnapshotTaken, "Snapshot taken: `keel snapshot take --env ENV`; keel checks the file and its SHA-256".into()),
        CheckItem::new(CheckId::DeploymentPlanReviewed, "Deployment plan reviewed: the application code that must be live before (and after) this migration is deployed".into()),
    ];
    if let Some(what) = &m.meta.requires_deploy {
        // Declared in migration.toml: `keel up` stops before this
        // migration for it, so the guarded run asks for it as well.
        checklist.push(CheckItem::new(
            CheckId::Other("required-deploy-live".into()),
            format!("Deployed first, and live on every instance: {what} (`requires_deploy` in migration.toml)"),
        ));
    }
    checklist.extend(from_analysis::deploy_items(analysis));
    if backed_up {
        checklist.insert(
            0,
            CheckItem::new(CheckId::BackupVerified, "Backup verified: keel exports the data this migration destroys and re-reads the archive against its manifest".into()),
        );
    }
    checklist
}

/// The backfill section: what `keel backfill` will do, with keel's defaults
/// filled in where migration.toml leaves them out.
fn backfill_info(m: &Migration) -> Option<BackfillInfo> {
    m.meta.backfill.as_ref().map(|b| BackfillInfo {
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
    })
}

fn rollback_info(
    m: &Migration,
    reversible: bool,
    has_backups: bool,
    previous_version: String,
) -> RollbackInfo {
    RollbackInfo {
        possible: reversible,
        down_sql: m.down.clone().filter(|_| reversible),
        previous_version,
        note: if !reversible {
            "this migration cannot be reverted by keel: restore the snapshot taken before it".into()
        } else if !has_backups {
            "down.sql reverts it".into()
        } else if m.meta.restore_on_down {
            "down.sql recreates the structure; keel restores backed-up data afterwards".into()
        } else {
            "down.sql recreates the structure and rebuilds its data from live columns, so writes made after the migration survive; keel keeps the backup but does not restore it (restore_on_down = false in migration.toml)".into()
        },
    }
}

fn environment(
    m: &Migration,
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
    // Exactly this migration: keel refuses, naming them, when later ones
    // were applied since.
    let mut rollback_commands = Vec::new();
    if has_backups {
        rollback_commands.push(format!("keel backup verify backups/{}/<stamp>.zip", m.id()));
    }
    rollback_commands.push(format!("keel down {v}{flag}"));
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
        monitor: monitor(m, env),
    }
}

/// What `keel execute` watches after the migration in `env`, in words.
fn monitor(m: &Migration, env: &crate::config::Environment) -> Option<String> {
    let length = m.meta.monitor.or(env.monitor).filter(|d| !d.is_zero())?;
    let t = &env.thresholds;
    let every = env
        .monitor_interval
        .unwrap_or(crate::config::MONITOR_INTERVAL);
    let on_breach = if m.meta.reversibility == Some(crate::migration::Reversibility::Irreversible)
        || !m.has_down()
    {
        "a breach alerts and ends the run failed (this migration cannot be rolled back: the operator decides)"
    } else {
        "a breach rolls the migration back and alerts"
    };
    Some(format!(
        "then keel watches for {} (a sample every {}): the checks above fail {} times in a row, rollbacks rise more than {}/s or deadlocks more than {}/min over the rates before the migration, {} sessions wait on locks, or a replica lags more than {}; {on_breach}. Ctrl-C ends the window and keeps the migration",
        humantime::format_duration(length),
        humantime::format_duration(every),
        t.failures,
        t.rollbacks_per_s,
        t.deadlocks_per_min,
        t.lock_waiters,
        humantime::format_duration(t.replica_lag)
    ))
}
