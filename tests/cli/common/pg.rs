//! A throwaway PostgreSQL cluster for the test run: `initdb` + `pg_ctl` from
//! the installed server binaries, listening only on a Unix socket in a
//! temporary folder. Started once per test process, stopped and deleted by a
//! watcher when the process ends. `KEEL_TEST_DATABASE_URL` uses an existing
//! server instead.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

pub struct Server {
    /// URL of a database to connect to for CREATE DATABASE.
    admin_url: String,
    /// How to build a URL for database `name`.
    url_for: Box<dyn Fn(&str) -> String + Send + Sync>,
}

static SERVER: OnceLock<Server> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

pub fn server() -> &'static Server {
    SERVER.get_or_init(|| match std::env::var("KEEL_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => external(url),
        _ => start_cluster(),
    })
}

impl Server {
    /// Creates a new, empty database and returns its URL.
    pub fn fresh_database(&self) -> String {
        let n = NEXT_DB.fetch_add(1, Ordering::SeqCst);
        let name = format!("keel_test_{}_{n}", std::process::id());
        let admin = self.admin_url.clone();
        let sql = format!("CREATE DATABASE \"{name}\"");
        super::block_on(async move {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("connect to the test server");
            sqlx::Executor::execute(&mut conn, sql.as_str())
                .await
                .expect("CREATE DATABASE");
        });
        (self.url_for)(&name)
    }
}

fn external(url: String) -> Server {
    let base = url.clone();
    Server {
        admin_url: url,
        url_for: Box::new(move |db| {
            let mut u = url::Url::parse(&base).expect("KEEL_TEST_DATABASE_URL is a URL");
            u.set_path(&format!("/{db}"));
            u.to_string()
        }),
    }
}

fn bindir() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    candidates.sort();
    candidates
        .pop()
        .map(|(_, dir)| dir)
        .expect("no PostgreSQL server binaries (initdb) found: install the postgresql package or set KEEL_TEST_DATABASE_URL")
}

/// initdb refuses to run as root; drop to the `postgres` user (or `nobody`) then.
fn as_server_user(program: &Path) -> Command {
    let root = unsafe_is_root();
    if root {
        let user = if Command::new("id")
            .arg("postgres")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            "postgres"
        } else {
            "nobody"
        };
        let mut c = Command::new("runuser");
        c.arg("-u").arg(user).arg("--").arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn unsafe_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn start_cluster() -> Server {
    // A throwaway cluster: durability is not what the tests check.
    start_cluster_with("-c fsync=off -c full_page_writes=off -c max_connections=300")
}

/// Starts a throwaway cluster with extra server options (`-c name=value …`);
/// the benchmarks use PostgreSQL's defaults (fsync on), like a real server.
pub fn start_cluster_with(settings: &str) -> Server {
    let bin = bindir();
    let dir = tempfile::Builder::new()
        .prefix("keel-pg-")
        .tempdir()
        .expect("temp dir")
        .keep();
    if unsafe_is_root() {
        // The server user must own its folder; root can still reach the socket.
        let user = if Command::new("id")
            .arg("postgres")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            "postgres"
        } else {
            "nobody"
        };
        let status = Command::new("chown")
            .arg(user)
            .arg(&dir)
            .status()
            .expect("chown");
        assert!(status.success(), "chown {user} {}", dir.display());
    }
    let data = dir.join("data");
    let out = as_server_user(&bin.join("initdb"))
        .args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
            "-D",
        ])
        .arg(&data)
        .output()
        .expect("run initdb");
    assert!(
        out.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let options = format!(
        "-k {} -c listen_addresses='' -p 5432 {settings}",
        dir.display()
    );
    let out = as_server_user(&bin.join("pg_ctl"))
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(dir.join("server.log"))
        .args(["-w", "-o", &options, "start"])
        .stdout(Stdio::null())
        .output()
        .expect("run pg_ctl");
    assert!(
        out.status.success(),
        "pg_ctl start failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
    );
    // Stop and delete the cluster when this test process ends, however it ends.
    let pg_ctl = bin.join("pg_ctl");
    let stop = if unsafe_is_root() {
        format!(
            "runuser -u $(stat -c %U '{d}') -- '{}' -D '{}' stop -m immediate",
            pg_ctl.display(),
            data.display(),
            d = dir.display()
        )
    } else {
        format!(
            "'{}' -D '{}' stop -m immediate",
            pg_ctl.display(),
            data.display()
        )
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf '{dir}'",
        pid = std::process::id(),
        dir = dir.display()
    );
    // Deliberately never waited for: it must outlive this process.
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start the cluster watcher");
    let socket = dir.display().to_string();
    let admin_url = format!("postgres://postgres@localhost/postgres?host={socket}&port=5432");
    Server {
        admin_url,
        url_for: Box::new(move |db| {
            format!("postgres://postgres@localhost/{db}?host={socket}&port=5432")
        }),
    }
}
