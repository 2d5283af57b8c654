//! The harness every scenario is written on: a temporary project folder, a
//! fresh database (PostgreSQL from [`pg`] or SQLite), and the real `keel`
//! binary run the way a user runs it.

pub mod cluster;
pub mod pg;
pub mod process;
pub mod session;
pub mod test;

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Postgres,
    Sqlite,
}

/// The newest sample migration that SQLite runs too (see `keel demo`).
pub const PORTABLE_UNTIL: &str = "20260102090000";

pub struct Project {
    pub dir: TempDir,
    pub url: String,
    pub db: Db,
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

impl Project {
    pub fn new(db: Db) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("keel-test-")
            .tempdir()
            .unwrap();
        let url = match db {
            Db::Postgres => pg::server().fresh_database(),
            Db::Sqlite => format!("sqlite://{}/keel.db", dir.path().display()),
        };
        Project { dir, url, db }
    }

    pub fn postgres() -> Project {
        Project::new(Db::Postgres)
    }

    pub fn sqlite() -> Project {
        Project::new(Db::Sqlite)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `migrations/<folder>/` with the given files (`None` leaves one out).
    pub fn migration(
        &self,
        folder: &str,
        up: &str,
        down: Option<&str>,
        toml: Option<&str>,
    ) -> PathBuf {
        let dir = self.path().join("migrations").join(folder);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("up.sql"), up).unwrap();
        if let Some(down) = down {
            std::fs::write(dir.join("down.sql"), down).unwrap();
        }
        if let Some(toml) = toml {
            std::fs::write(dir.join("migration.toml"), toml).unwrap();
        }
        dir
    }

    /// Copies the sample application's portable migrations into the
    /// project: users, posts, comments and profiles, which PostgreSQL and
    /// SQLite both run (the ones `keel demo` uses).
    pub fn sample(&self) {
        self.sample_until(PORTABLE_UNTIL);
    }

    /// Copies every sample migration, including the PostgreSQL-only
    /// zero-downtime examples after the portable ones.
    pub fn sample_all(&self) {
        self.sample_until("99999999999999");
    }

    fn sample_until(&self, last: &str) {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let dst = self.path().join("migrations");
        for entry in std::fs::read_dir(&src).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_dir() && name.get(..14).is_some_and(|v| v <= last) {
                copy_dir(&entry.path(), &dst.join(&name));
            }
        }
    }

    /// The keel binary, in the project folder, pointed at this project's database.
    pub fn keel(&self) -> Command {
        let mut cmd = Command::cargo_bin("keel").unwrap();
        cmd.current_dir(self.path())
            .env("DATABASE_URL", &self.url)
            .env("NO_COLOR", "1")
            .env("USER", "tester")
            .env_remove("KEEL_TEST_DATABASE_URL");
        cmd
    }

    /// The keel binary started in the background (see [`process::Running`]).
    pub fn spawn_keel(&self, args: &[&str]) -> process::Running {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("keel"));
        cmd.current_dir(self.path())
            .args(args)
            .env("DATABASE_URL", &self.url)
            .env("NO_COLOR", "1")
            .env("USER", "tester")
            .env_remove("KEEL_TEST_DATABASE_URL");
        process::Running::start(cmd)
    }

    /// First column of the first row, as text (NULL as None).
    pub fn scalar(&self, sql: &str) -> Option<String> {
        self.rows(sql)
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .flatten()
    }

    /// Every row of a query, each column cast to text by the database.
    pub fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let url = self.url.clone();
        let sql = sql.to_string();
        let db = self.db;
        block_on(async move {
            use sqlx::{Connection, Row, ValueRef};
            match db {
                Db::Postgres => {
                    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                    let rows = sqlx::query(&sql)
                        .fetch_all(&mut c)
                        .await
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                    rows.iter()
                        .map(|r| (0..r.columns().len()).map(|i| text_pg(r, i)).collect())
                        .collect()
                }
                Db::Sqlite => {
                    let mut c = sqlx::SqliteConnection::connect(&format!("{url}?mode=rwc"))
                        .await
                        .unwrap();
                    let rows = sqlx::query(&sql)
                        .fetch_all(&mut c)
                        .await
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                    rows.iter()
                        .map(|r| {
                            (0..r.columns().len())
                                .map(|i| {
                                    if r.try_get_raw(i).map(|v| v.is_null()).unwrap_or(true) {
                                        None
                                    } else {
                                        r.try_get::<String, _>(i)
                                            .ok()
                                            .or_else(|| {
                                                r.try_get::<i64, _>(i).ok().map(|v| v.to_string())
                                            })
                                            .or_else(|| {
                                                r.try_get::<f64, _>(i).ok().map(|v| v.to_string())
                                            })
                                    }
                                })
                                .collect()
                        })
                        .collect()
                }
            }
        })
    }

    /// Runs SQL directly (setup the test needs outside keel).
    pub fn exec(&self, sql: &str) {
        let url = self.url.clone();
        let sql = sql.to_string();
        let db = self.db;
        block_on(async move {
            use sqlx::Connection;
            match db {
                Db::Postgres => {
                    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                    sqlx::raw_sql(&sql)
                        .execute(&mut c)
                        .await
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                }
                Db::Sqlite => {
                    let mut c = sqlx::SqliteConnection::connect(&format!("{url}?mode=rwc"))
                        .await
                        .unwrap();
                    sqlx::raw_sql(&sql)
                        .execute(&mut c)
                        .await
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                }
            }
        });
    }

    pub fn table_exists(&self, table: &str) -> bool {
        match self.db {
            Db::Postgres => self
                .scalar(&format!("SELECT to_regclass('{table}')::text"))
                .is_some(),
            Db::Sqlite => {
                self.scalar(&format!(
                    "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='{table}'"
                ))
                .as_deref()
                    == Some("1")
            }
        }
    }
}

fn text_pg(row: &sqlx::postgres::PgRow, i: usize) -> Option<String> {
    use sqlx::Row;
    row.try_get::<Option<String>, _>(i)
        .ok()
        .flatten()
        .or_else(|| {
            row.try_get::<Option<i64>, _>(i)
                .ok()
                .flatten()
                .map(|v| v.to_string())
        })
        .or_else(|| {
            row.try_get::<Option<i32>, _>(i)
                .ok()
                .flatten()
                .map(|v| v.to_string())
        })
        .or_else(|| {
            row.try_get::<Option<bool>, _>(i)
                .ok()
                .flatten()
                .map(|v| v.to_string())
        })
}

pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), to).unwrap();
        }
    }
}

impl Project {
    /// The findings of `keel lint --format json ARGS…`, run on files alone
    /// (no database).
    pub fn lint_findings(&self, args: &[&str]) -> Vec<serde_json::Value> {
        let out = self
            .keel()
            .env_remove("DATABASE_URL")
            .args(["lint", "--format", "json"])
            .args(args)
            .output()
            .unwrap();
        let doc: serde_json::Value = serde_json::from_str(&stdout(&out))
            .unwrap_or_else(|e| panic!("keel lint printed no JSON ({e}): {}", stderr(&out)));
        doc["findings"].as_array().cloned().unwrap_or_default()
    }

    /// `keel status --format json ARGS…`, which must succeed.
    pub fn status_json(&self, args: &[&str]) -> serde_json::Value {
        let out = self
            .keel()
            .args(["status", "--format", "json"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// stdout of a finished command as a string.
pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `git ARGS` in `dir`, as a fixed author; fails the test when git does.
pub fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
}
