//! Which database a command works on: `--database-url`, else `--env` through
//! keel.toml, else `$DATABASE_URL`, else the embedded SQLite default; the
//! environment's name that backups, snapshots and records carry; and the
//! connection itself.
//!
//! The command line only hands over its two flags; every choice made from
//! them is here, so `keel up`, `keel record verify` and `keel execute` pick
//! the same database the same way.

use crate::config::{Config, Environment};
use crate::db::Database;
use crate::error::{Error, Result};

/// The name backups, snapshots and records use for a database chosen
/// without `--env`.
pub(crate) const DEFAULT_ENVIRONMENT: &str = "default";

/// The database the command line names, read against keel.toml.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    config: &'a Config,
    /// `--database-url`.
    url: Option<&'a str>,
    /// `--env`.
    env: Option<&'a str>,
}

/// Why a command that can go on without a database has none: the reason
/// is printed, the command does not fail.
pub(crate) type Unavailable = String;

impl<'a> Target<'a> {
    /// The target of `--database-url URL` and `--env NAME` (either may be absent).
    pub(crate) fn new(
        config: &'a Config,
        url: Option<&'a str>,
        env: Option<&'a str>,
    ) -> Target<'a> {
        Target { config, url, env }
    }

    /// The database URL: `--database-url`, else `--env` through keel.toml,
    /// else `$DATABASE_URL`, else the embedded SQLite default.
    pub(crate) fn url(&self) -> Result<String> {
        Ok(self.config.database_url(self.url, self.env)?)
    }

    /// Opens the database [`Target::url`] names.
    pub(crate) async fn connect(&self) -> Result<Box<dyn Database>> {
        Ok(crate::db::connect_waiting(&self.url()?, self.lock_timeout()).await?)
    }

    /// How long any statement of the session waits for a lock: the
    /// project's `lock_timeout` (see [`crate::db::connect_waiting`]).
    fn lock_timeout(&self) -> Option<std::time::Duration> {
        Some(
            self.config
                .lock_timeout
                .unwrap_or(crate::db::DEFAULT_LOCK_TIMEOUT),
        )
    }

    /// The environment's name for backups, snapshots and records: `--env
    /// NAME`, or [`DEFAULT_ENVIRONMENT`] for the database chosen without one.
    pub(crate) fn environment(&self) -> &'a str {
        self.env.unwrap_or(DEFAULT_ENVIRONMENT)
    }

    /// `--env NAME` as given, for commands that act on one environment only
    /// when asked (snapshot prune, record verify --all).
    pub(crate) fn env(&self) -> Option<&'a str> {
        self.env
    }

    /// Whether the command line named a database (`--database-url` or
    /// `--env`): one named there must answer, a `$DATABASE_URL` set for
    /// other tools may not.
    pub(crate) fn named(&self) -> bool {
        self.url.is_some() || self.env.is_some()
    }

    /// Whether a database was named at all: on the command line or by
    /// `$DATABASE_URL`, never the embedded default. `keel lint` reads the
    /// live schema only then.
    pub(crate) fn given(&self) -> bool {
        self.named() || std::env::var("DATABASE_URL").is_ok_and(|v| !v.is_empty())
    }

    /// The environment a guarded run (`keel execute`) runs on: `--env` is
    /// required and must be an `[environments.NAME]` of keel.toml, and its
    /// URL must be known (it may come from `--database-url`).
    pub(crate) fn guarded_environment(&self) -> Result<(&'a str, &'a Environment)> {
        let Some(name) = self.env else {
            return Err(Error::Usage(
                "execute needs the environment it runs on\n  fix: pass --env NAME (an [environments.NAME] of keel.toml)".into(),
            ));
        };
        self.url()?;
        let Some(env) = self.config.environments.get(name) else {
            return Err(Error::Usage(format!(
                "environment `{name}` is not in keel.toml\n  fix: add [environments.{name}] to keel.toml"
            )));
        };
        Ok((name, env))
    }

    /// The database of environment `env` (a record's, say): the one the
    /// command line names when it names one (an error if it cannot be
    /// reached), else keel.toml's environment of that name when its URL is
    /// set; otherwise why there is none.
    pub(crate) async fn connect_environment(
        &self,
        env: &str,
    ) -> Result<std::result::Result<Box<dyn Database>, Unavailable>> {
        if self.named() {
            return Ok(Ok(self.connect().await?));
        }
        if !self.config.environments.contains_key(env) {
            return Ok(Err(format!(
                "`{env}` is not an environment in keel.toml; pass --env NAME or --database-url to check it"
            )));
        }
        let url = match self.config.database_url(None, Some(env)) {
            Ok(u) => u,
            Err(e) => {
                let why = e.to_string();
                return Ok(Err(why.lines().next().unwrap_or_default().to_string()));
            }
        };
        Ok(crate::db::connect_waiting(&url, self.lock_timeout())
            .await
            .map_err(|e| format!("cannot reach `{env}`'s database: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> Config {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn the_flag_wins_over_the_environment() {
        let c = config("[environments.prod]\ndatabase_url_env = \"KEEL_TARGET_TEST_UNSET\"\n");
        let t = Target::new(&c, Some("sqlite://x.db"), Some("prod"));
        assert_eq!(t.url().unwrap(), "sqlite://x.db");
        assert_eq!(t.environment(), "prod");
        assert!(t.named());
    }

    #[test]
    fn without_env_the_environment_is_default() {
        let c = Config::default();
        let t = Target::new(&c, Some("sqlite://x.db"), None);
        assert_eq!(t.environment(), DEFAULT_ENVIRONMENT);
        assert_eq!(t.env(), None);
    }

    #[test]
    fn a_guarded_run_needs_an_environment_of_keel_toml() {
        let c = config("[environments.staging]\n");
        let none = Target::new(&c, Some("sqlite://x.db"), None);
        let e = none.guarded_environment().unwrap_err().to_string();
        assert!(
            e.starts_with("execute needs the environment it runs on"),
            "{e}"
        );

        let unknown = Target::new(&c, Some("sqlite://x.db"), Some("prod"));
        let e = unknown.guarded_environment().unwrap_err().to_string();
        assert!(
            e.starts_with("environment `prod` is not in keel.toml"),
            "{e}"
        );

        let known = Target::new(&c, Some("sqlite://x.db"), Some("staging"));
        assert_eq!(known.guarded_environment().unwrap().0, "staging");
    }
}
