//! keel.toml, environments, the choice of database URL.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The embedded default: a SQLite file in the current folder, created on first use.
pub(crate) const DEFAULT_DATABASE_URL: &str = "sqlite://keel.db";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    pub(crate) migrations_dir: Option<PathBuf>,
    pub(crate) signer: Option<String>,
    pub(crate) signing_key: Option<PathBuf>,
    pub(crate) signing_command: Option<String>,
    /// Who may sign execution records (ssh-keygen's allowed_signers format);
    /// default `allowed_signers` in the project folder.
    pub(crate) allowed_signers: Option<PathBuf>,
    pub(crate) alert_command: Option<String>,
    /// Project-wide defaults for migrations that do not set their own.
    #[serde(default, with = "crate::migration::meta::duration_opt")]
    pub(crate) lock_timeout: Option<Duration>,
    #[serde(default, with = "crate::migration::meta::duration_opt")]
    pub(crate) statement_timeout: Option<Duration>,
    pub(crate) retries: Option<u32>,
    /// How long a run waits for another run's run lock (default 10 min).
    #[serde(default, with = "crate::migration::meta::duration_opt")]
    pub(crate) run_lock_wait: Option<Duration>,
    /// Let migration folders and files resolve (through symlinks) outside
    /// the project folder. Off by default: a migration is untrusted input,
    /// and a link out of the project can make keel read any file.
    #[serde(default)]
    pub(crate) allow_outside_project: bool,
    #[serde(default)]
    pub(crate) environments: BTreeMap<String, Environment>,
    /// Who owns migrations and who is told: the runbook's people sections.
    #[serde(default)]
    pub(crate) runbook: crate::migration::People,
    /// When backfills pause, for migrations that do not say.
    #[serde(default)]
    pub(crate) backfill: crate::migration::meta::Throttle,
    /// What `keel lint` reports (applied by the analysis's lint policy).
    #[serde(default)]
    pub(crate) lint: Lint,
}

/// `[lint]`: rules off, rules at another level, rules off under a path.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Lint {
    /// Rules not reported anywhere.
    #[serde(default)]
    pub(crate) disable: Vec<String>,
    /// A rule's level: "error", "warning" or "info".
    #[serde(default)]
    pub(crate) severity: BTreeMap<String, String>,
    /// `[[lint.paths]]`: rules off for the files under `prefix`.
    #[serde(default)]
    pub(crate) paths: Vec<LintPath>,
}

/// One `[[lint.paths]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LintPath {
    /// Files whose path (as lint names them) starts with this.
    pub(crate) prefix: String,
    pub(crate) disable: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Environment {
    pub(crate) database_url_env: Option<String>,
    pub(crate) confirm: Option<String>,
    #[serde(default)]
    pub(crate) require_dry_run: bool,
    #[serde(default)]
    pub(crate) require_snapshot: bool,
    #[serde(default)]
    pub(crate) require_signature: bool,
    pub(crate) health_url: Option<String>,
    #[serde(default)]
    pub(crate) smoke: Vec<String>,
    /// How old the snapshot `execute` relies on may be (default 24h):
    /// yesterday's dump does not hold today's rows.
    #[serde(default, with = "crate::migration::meta::duration_opt")]
    pub(crate) snapshot_max_age: Option<Duration>,
    /// The environment variable that holds the URL of a webhook alerts are
    /// posted to (Slack-compatible JSON). The URL is a secret: keel.toml
    /// names the variable, never the URL.
    pub(crate) alert_webhook_env: Option<String>,
    /// How long `execute` watches after the migration (absent or 0: no
    /// monitoring window). A migration.toml's `monitor` overrides it.
    #[serde(default, with = "crate::migration::meta::duration_opt")]
    pub(crate) monitor: Option<Duration>,
    /// How often the window samples (default 10s).
    #[serde(default, with = "crate::migration::meta::duration_opt")]
    pub(crate) monitor_interval: Option<Duration>,
    /// What counts as a breach during the window.
    #[serde(default)]
    pub(crate) thresholds: Thresholds,
}

/// `[environments.NAME.thresholds]`: the monitoring window's limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Thresholds {
    /// Failing samples in a row (health, smoke queries) that make a breach:
    /// one failed request is noise, two in a row are not.
    pub(crate) failures: u32,
    /// Rollbacks per second above the rate before the migration.
    pub(crate) rollbacks_per_s: f64,
    /// Deadlocks per minute above the rate before the migration.
    pub(crate) deadlocks_per_min: f64,
    /// Sessions waiting on a lock at one sample.
    pub(crate) lock_waiters: usize,
    /// Any replica's replay lag.
    #[serde(deserialize_with = "crate::migration::meta::duration_opt::plain")]
    pub(crate) replica_lag: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            failures: 2,
            rollbacks_per_s: 5.0,
            deadlocks_per_min: 1.0,
            lock_waiters: 5,
            replica_lag: Duration::from_secs(30),
        }
    }
}

/// The default `monitor_interval`.
pub(crate) const MONITOR_INTERVAL: Duration = Duration::from_secs(10);

/// The default `snapshot_max_age`.
pub(crate) const SNAPSHOT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}:{line}:{column}: {message}\n  fix: valid top-level keys: migrations_dir, signer, signing_key, signing_command, allowed_signers, alert_command, lock_timeout, statement_timeout, retries, run_lock_wait, allow_outside_project, [runbook], [backfill], [lint], [environments.NAME]"
    )]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "environment `{name}` is not in keel.toml{known}\n  fix: add [environments.{name}] with database_url_env = \"...\" to keel.toml"
    )]
    UnknownEnvironment { name: String, known: String },
    #[error(
        "environment `{name}` reads its database URL from ${var}, which is not set\n  fix: export {var}=postgres://user@host/db, or pass --database-url"
    )]
    MissingUrl { name: String, var: String },
}

impl Config {
    /// Reads `keel.toml` in `dir`; no file means all defaults.
    pub(crate) fn load(dir: &Path) -> Result<Config, ConfigError> {
        let path = dir.join("keel.toml");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        toml::from_str(&text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|s| crate::migration::meta::line_col(&text, s.start))
                .unwrap_or((1, 1));
            ConfigError::Parse {
                path,
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })
    }

    /// The migrations folder: `--migrations DIR`, else `migrations_dir`,
    /// else `./migrations`.
    pub(crate) fn migrations_dir(&self, flag: Option<&Path>) -> PathBuf {
        flag.map(Path::to_path_buf)
            .or_else(|| self.migrations_dir.clone())
            .unwrap_or_else(|| PathBuf::from("migrations"))
    }

    /// The database URL: `--database-url`, else `--env` through keel.toml,
    /// else `$DATABASE_URL`, else the embedded SQLite default.
    pub(crate) fn database_url(
        &self,
        explicit: Option<&str>,
        env: Option<&str>,
    ) -> Result<String, ConfigError> {
        if let Some(url) = explicit {
            return Ok(url.to_string());
        }
        if let Some(name) = env {
            let environment = self.environments.get(name).ok_or_else(|| {
                let names: Vec<&str> = self.environments.keys().map(String::as_str).collect();
                ConfigError::UnknownEnvironment {
                    name: name.to_string(),
                    known: if names.is_empty() {
                        String::new()
                    } else {
                        format!(" (it has: {})", names.join(", "))
                    },
                }
            })?;
            let var = environment
                .database_url_env
                .clone()
                .unwrap_or_else(|| "DATABASE_URL".into());
            return std::env::var(&var).ok().filter(|v| !v.is_empty()).ok_or(
                ConfigError::MissingUrl {
                    name: name.to_string(),
                    var,
                },
            );
        }
        Ok(std::env::var("DATABASE_URL")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_environment_lists_the_known_ones() {
        let config: Config =
            toml::from_str("[environments.staging]\ndatabase_url_env = \"S\"\n").unwrap();
        let err = config
            .database_url(None, Some("prod"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("it has: staging"), "{err}");
    }
}
