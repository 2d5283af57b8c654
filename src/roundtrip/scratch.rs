//! Where `keel test` gets its fresh database, and how it leaves nothing
//! behind: a scratch database on the server `--database-url` names (what
//! CI with a PostgreSQL service gives), else a throwaway cluster of the
//! PostgreSQL server binaries installed here, else an embedded SQLite file
//! in a temporary folder. Never the project's own databases.

use super::Error;
use crate::db::{quote_ident, redact};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A fresh, empty database that goes away when this is dropped (or, for a
/// cluster, when keel's process ends however it ends).
pub(crate) struct Scratch {
    /// The URL the test connects to.
    pub(crate) url: String,
    /// What it is, for the first line of the output.
    pub(crate) about: String,
    cleanup: Cleanup,
}

enum Cleanup {
    /// `DROP DATABASE` through the server's maintenance URL.
    Database { server: String, name: String },
    /// A cluster folder (the server stops and the folder goes with it) or
    /// a SQLite folder.
    Folder(#[allow(dead_code)] tempfile::TempDir),
    /// A cluster: its stop script already waits for keel to end.
    Cluster,
}

impl Scratch {
    /// Makes the fresh database: on `server` when given, else as the
    /// machine allows.
    pub(crate) async fn make(server: Option<&str>) -> Result<Scratch, Error> {
        match server {
            Some(url) if url.starts_with("sqlite:") => Scratch::sqlite(),
            Some(url) => Scratch::on_server(url).await,
            None => match bindir() {
                Some(bin) => Scratch::cluster(&bin),
                None => Scratch::sqlite(),
            },
        }
    }

    /// Drops the scratch database; a cluster or folder goes on its own.
    pub(crate) async fn remove(self) -> Result<(), Error> {
        if let Cleanup::Database { server, name } = &self.cleanup {
            let mut db = crate::db::connect(server).await?;
            let dropped = db
                .execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    quote_ident(name)
                ))
                .await;
            db.close().await;
            dropped?;
        }
        Ok(())
    }

    async fn on_server(server: &str) -> Result<Scratch, Error> {
        let name = format!("keel_test_{}_{}", std::process::id(), nonce());
        let mut db = crate::db::connect(server).await?;
        let made = db
            .execute(&format!("CREATE DATABASE {}", quote_ident(&name)))
            .await;
        if made.is_ok() {
            // No JIT in it: its queries are keel's lookups of a few catalog
            // rows and migrations on test rows, and the planner's estimate of
            // some lookups passes jit_above_cost (25 ms of compiling for a
            // 1 ms query, in a run of crates.io's history). As the database's
            // own setting it is what RESET goes back to. Only a saving: were
            // it refused, the test runs all the same, and the database is
            // still dropped at the end.
            let _ = db
                .execute(&format!(
                    "ALTER DATABASE {} SET jit = off",
                    quote_ident(&name)
                ))
                .await;
        }
        db.close().await;
        made.map_err(|e| {
            Error::Setup(format!(
                "could not create a scratch database on {}: {e}\n  fix: give a role that may CREATE DATABASE, or leave out --database-url to let keel start its own server",
                redact(server)
            ))
        })?;
        let mut url = url::Url::parse(server)
            .map_err(|e| Error::Setup(format!("`{}` is not a URL: {e}", redact(server))))?;
        url.set_path(&name);
        Ok(Scratch {
            url: url.to_string(),
            about: format!("a scratch database {name} on {}", redact(server)),
            cleanup: Cleanup::Database {
                server: server.to_string(),
                name,
            },
        })
    }

    fn sqlite() -> Result<Scratch, Error> {
        let dir = tempfile::Builder::new().prefix("keel-test-").tempdir()?;
        let file = dir.path().join("test.db");
        Ok(Scratch {
            url: format!("sqlite://{}", file.display()),
            about: "an embedded SQLite database in a temporary folder".into(),
            cleanup: Cleanup::Folder(dir),
        })
    }

    fn cluster(bin: &Path) -> Result<Scratch, Error> {
        let dir = tempfile::Builder::new()
            .prefix("keel-test-pg-")
            .tempdir()?
            .keep();
        let cluster = start_cluster(bin, &dir);
        // Whatever happens from here, the folder and the server go when
        // keel ends: a watcher outlives keel and cleans up after it.
        watch(bin, &dir);
        cluster?;
        let version = bin
            .parent()
            .and_then(|p| p.file_name())
            .map(|v| format!(" {}", v.to_string_lossy()))
            .unwrap_or_default();
        Ok(Scratch {
            url: format!(
                "postgres://postgres@localhost/postgres?host={}&port=5432",
                dir.display()
            ),
            about: format!(
                "a throwaway PostgreSQL{version} cluster in {} (removed when keel ends)",
                dir.display()
            ),
            cleanup: Cleanup::Cluster,
        })
    }
}

fn nonce() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{:x}", now.subsec_nanos())
}

/// The PostgreSQL server binaries: `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/<N>/bin` (Debian and Ubuntu's layout). The test
/// harness finds its server the same way.
pub fn bindir() -> Option<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Some(dir);
        }
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, dir)| dir)
}

/// initdb refuses to run as root: as root, the server runs as `postgres`
/// (the user the packages create), through `runuser`.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
    })
}

fn start_cluster(bin: &Path, dir: &Path) -> Result<(), Error> {
    if is_root() {
        let owned = Command::new("chown").arg("postgres").arg(dir).status()?;
        if !owned.success() {
            return Err(Error::Setup(
                "keel runs as root and there is no `postgres` user for the throwaway server (initdb refuses root)\n  fix: run keel as another user, create the postgres user, or give --database-url".into(),
            ));
        }
    }
    let data = dir.join("data");
    let init = as_server_user(&bin.join("initdb"))
        .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
        .args(["--no-sync", "--no-instructions", "-D"])
        .arg(&data)
        .output()?;
    if !init.status.success() {
        return Err(Error::Setup(format!(
            "initdb failed: {}\n  fix: give --database-url to a server keel may create a database on",
            String::from_utf8_lossy(&init.stderr).trim()
        )));
    }
    // Unix socket in its own folder only: nothing else on the machine can
    // reach it, and no port can clash. Throwaway, so no fsync; no JIT, as
    // in a scratch database on a server.
    let options = format!(
        "-k {} -c listen_addresses='' -p 5432 -c fsync=off -c full_page_writes=off -c jit=off",
        dir.display()
    );
    let start = as_server_user(&bin.join("pg_ctl"))
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(dir.join("server.log"))
        .args(["-w", "-o", &options, "start"])
        .stdout(Stdio::null())
        .output()?;
    if !start.status.success() {
        return Err(Error::Setup(format!(
            "the throwaway PostgreSQL did not start: {}\n{}\n  fix: give --database-url to a server keel may create a database on",
            String::from_utf8_lossy(&start.stderr).trim(),
            std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
        )));
    }
    Ok(())
}

/// A shell that waits for keel's process to end, then stops the server
/// and removes its folder: a kill -9 of keel leaves nothing running.
fn watch(bin: &Path, dir: &Path) {
    let pg_ctl = bin.join("pg_ctl");
    let data = dir.join("data");
    let stop = format!(
        "{}'{}' -D '{}' stop -m immediate",
        if is_root() {
            "runuser -u postgres -- "
        } else {
            ""
        },
        pg_ctl.display(),
        data.display()
    );
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.2; done; [ -f '{data}/postmaster.pid' ] && {stop} >/dev/null 2>&1; rm -rf '{dir}'",
        pid = std::process::id(),
        data = data.display(),
        dir = dir.display()
    );
    // Deliberately not waited for: it outlives keel.
    #[allow(clippy::zombie_processes)]
    let _ = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}
