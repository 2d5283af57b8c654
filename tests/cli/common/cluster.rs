//! Starting a throwaway PostgreSQL cluster with the installed server binaries
//! (`initdb` + `pg_ctl`), listening only on a Unix socket in a temporary
//! folder, stopped and deleted by a watcher when the starting process ends,
//! however it ends. Shared by the test harness (`pg.rs`) and every
//! benchmark (which include this file with `#[path]`), so it depends on
//! nothing but `std` and `tempfile`.

// Each includer uses a different part (tests: `Off`; the benchmark: `Default`).
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// How much the cluster trades durability for speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fsync = off`, `full_page_writes = off`: tests, where a crash loses nothing of value.
    Off,
    /// PostgreSQL's defaults (fsync on): what a real server does, for benchmarks.
    Default,
}

pub struct Cluster {
    /// The temporary folder: the socket lives here, the data in `data/`.
    pub dir: PathBuf,
    /// The server's options (`pg_ctl -o`), for a restart.
    options: String,
}

impl Cluster {
    /// Stops the server the way a crash does (`pg_ctl stop -m immediate`):
    /// no checkpoint, and WAL the server had not written out is gone.
    pub fn crash(&self) {
        self.pg_ctl(&["-w", "stop", "-m", "immediate"]);
    }

    /// Stops the server cleanly (`pg_ctl stop -m fast`).
    pub fn stop(&self) {
        self.pg_ctl(&["-w", "stop", "-m", "fast"]);
    }

    /// Starts the stopped server again; it recovers from its WAL first.
    pub fn restart(&self) {
        self.pg_ctl(&["-w", "-o", &self.options, "start"]);
    }

    fn pg_ctl(&self, args: &[&str]) {
        let out = as_server_user(&bindir().join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(args)
            .stdout(Stdio::null())
            .output()
            .expect("run pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// URL of database `db` as the `postgres` superuser, over the Unix socket.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@localhost/{db}?host={}&port=5432",
            self.dir.display()
        )
    }
}

/// Where the server binaries are: found as `keel test` finds them
/// (`pg_config --bindir`, else the newest `/usr/lib/postgresql/<N>/bin`).
pub fn bindir() -> PathBuf {
    keel::roundtrip::scratch::bindir()
        .expect("no PostgreSQL server binaries (initdb) found: install the postgresql package or set KEEL_TEST_DATABASE_URL")
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// The user the server runs as when we are root (initdb refuses root).
fn server_user() -> &'static str {
    if Command::new("id")
        .arg("postgres")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        "postgres"
    } else {
        "nobody"
    }
}

/// `program`, run as the server user when we are root.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.arg("-u").arg(server_user()).arg("--").arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Starts a fresh cluster; panics with the server's own words if it cannot.
pub fn start(durability: Durability) -> Cluster {
    start_with(durability, &[])
}

/// [`start`] with more server settings, each `name=value` as `postgres -c`
/// takes it (a benchmark sizes the server like a production one).
pub fn start_with(durability: Durability, settings: &[&str]) -> Cluster {
    let bin = bindir();
    // The server user must own its folder; root can still reach the socket.
    let dir = own_dir();
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
    let mut options = format!(
        "-k {} -c listen_addresses='' -p 5432 -c max_connections=300",
        dir.display()
    );
    if durability == Durability::Off {
        options.push_str(" -c fsync=off -c full_page_writes=off");
    }
    for setting in settings {
        options.push_str(" -c ");
        options.push_str(setting);
    }
    launch(dir, options)
}

/// Starts the server whose data is in `dir/data` with `options`, and has
/// it stopped and deleted when this process ends.
fn launch(dir: PathBuf, options: String) -> Cluster {
    let out = as_server_user(&bindir().join("pg_ctl"))
        .arg("-D")
        .arg(dir.join("data"))
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
    watch(&dir);
    Cluster { dir, options }
}

impl Cluster {
    /// A streaming replica of this cluster: `pg_basebackup -R` into a
    /// folder of its own, started as a hot standby that connects as
    /// `application_name = name`; stopped and deleted like its primary.
    pub fn replica(&self, name: &str) -> Cluster {
        let bin = bindir();
        let dir = own_dir();
        let data = dir.join("data");
        let conn = format!(
            "host={} port=5432 user=postgres application_name={name}",
            self.dir.display()
        );
        let out = as_server_user(&bin.join("pg_basebackup"))
            // A fast checkpoint: the default spreads it over minutes (a
            // benchmark's replica once waited 12 of them for it).
            .args(["-d", &conn, "-X", "stream", "-R", "--no-sync"])
            .args(["--checkpoint=fast", "-D"])
            .arg(&data)
            .output()
            .expect("run pg_basebackup");
        assert!(
            out.status.success(),
            "pg_basebackup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The primary's settings (a standby needs max_connections and the
        // like at least as high), on a socket of its own.
        let options = format!(
            "{} -c hot_standby=on",
            self.options.replacen(
                &format!("-k {}", self.dir.display()),
                &format!("-k {}", dir.display()),
                1
            )
        );
        launch(dir, options)
    }
}

/// A temporary folder the server user owns.
fn own_dir() -> PathBuf {
    let dir = tempfile::Builder::new()
        .prefix("keel-pg-")
        .tempdir()
        .expect("temp dir")
        .keep();
    if is_root() {
        let user = server_user();
        let status = Command::new("chown")
            .arg(user)
            .arg(&dir)
            .status()
            .expect("chown");
        assert!(status.success(), "chown {user} {}", dir.display());
    }
    dir
}

/// Stops and deletes the cluster in `dir` when this process ends, however
/// it ends.
fn watch(dir: &Path) {
    let pg_ctl = bindir().join("pg_ctl");
    let data = dir.join("data");
    let stop = if is_root() {
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
}
