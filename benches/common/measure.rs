//! Timing a command the way the benchmarks report it: wall time, the CPU
//! of the client and of the PostgreSQL server's processes, and peak memory,
//! with medians and medians of paired ratios over interleaved rounds.
#![allow(dead_code)] // Each benchmark uses its own part of it.

use anyhow::{Context, Result, bail};
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one run cost.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cost {
    pub wall: Duration,
    /// CPU of the client process plus the server's processes.
    pub cpu: Duration,
    pub max_rss_kib: u64,
}

/// Runs `cmd` to completion with its output in `log_dir/<name>.{out,err}`.
/// Wall time, client CPU and max RSS come from `wait4`, so only this child
/// counts; server CPU from the cluster's processes. A non-zero exit is an
/// error that quotes the end of its stderr.
pub fn measure(cmd: &mut Command, server: &ServerCpu, log_dir: &Path, name: &str) -> Result<Cost> {
    let server_before = server.total()?;
    let mut cost = measure_client(cmd, log_dir, name, &[0])?;
    cost.cpu += server.total()?.saturating_sub(server_before);
    Ok(cost)
}

/// [`measure`] without the server: `cpu` is the child's own. Exit codes
/// other than `ok_codes` are errors quoting the end of stderr.
pub fn measure_client(
    cmd: &mut Command,
    log_dir: &Path,
    name: &str,
    ok_codes: &[i32],
) -> Result<Cost> {
    let out = log_dir.join(format!("{name}.out"));
    let err = log_dir.join(format!("{name}.err"));
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out)?)
        .stderr(File::create(&err)?);
    let started = Instant::now();
    let child = cmd.spawn().with_context(|| format!("start {cmd:?}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain old data that wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own child, not yet waited for; the pointers are valid.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            bail!("wait4 for {cmd:?}: {e}");
        }
    }
    let wall = started.elapsed();
    // Reaped above; `Child` has no Drop, so nothing waits twice.
    drop(child);
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    if !code.is_some_and(|c| ok_codes.contains(&c)) {
        let stderr = std::fs::read_to_string(&err).unwrap_or_default();
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "{cmd:?} failed (wait status {status:#x}):\n{}",
            tail.join("\n")
        );
    }
    Ok(Cost {
        wall,
        cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss as u64,
    })
}

pub fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

/// CPU used by the cluster: the postmaster's reaped children (ended
/// backends) plus its live children (background processes, open sessions).
pub struct ServerCpu {
    postmaster: u32,
    /// Children of an idle cluster (checkpointer, WAL writer, …).
    idle_children: usize,
    tick: f64,
}

/// A process's state letter, parent pid, and utime, stime, cutime, cstime in ticks.
pub fn proc_times(pid: u32) -> Option<(char, u32, [u64; 4])> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let n = |i: usize| rest.get(i)?.parse::<u64>().ok();
    // rest[0] is field 3 (state): ppid is field 4, utime..cstime fields 14..17.
    let state = rest.first()?.chars().next()?;
    Some((state, n(1)? as u32, [n(11)?, n(12)?, n(13)?, n(14)?]))
}

impl ServerCpu {
    /// Before the cluster is up: counts nothing until replaced by [`ServerCpu::new`].
    pub fn unread() -> ServerCpu {
        ServerCpu {
            postmaster: 0,
            idle_children: 0,
            tick: 100.0,
        }
    }

    pub fn new(data_dir: &Path) -> Result<ServerCpu> {
        let pid_file = std::fs::read_to_string(data_dir.join("postmaster.pid"))
            .context("read postmaster.pid")?;
        let postmaster: u32 = pid_file
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .parse()
            .context("postmaster.pid names a pid")?;
        // SAFETY: sysconf has no preconditions.
        let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let mut cpu = ServerCpu {
            postmaster,
            idle_children: 0,
            tick: if tick > 0.0 { tick } else { 100.0 },
        };
        // The fewest seen for a while: sessions that just closed may linger.
        cpu.idle_children = (0..20)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(20));
                cpu.children().len()
            })
            .min()
            .unwrap_or_default();
        Ok(cpu)
    }

    /// State letter and CPU ticks of each child of the postmaster.
    pub fn children(&self) -> Vec<(char, u64)> {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter_map(proc_times)
            .filter(|(_, ppid, _)| *ppid == self.postmaster)
            .map(|(state, _, t)| (state, t[0] + t[1]))
            .collect()
    }

    /// Total server CPU so far. Waits (briefly) for sessions that just
    /// closed to be gone, so that their time has moved to the postmaster
    /// (an exited child that is not reaped yet shows none).
    pub fn total(&self) -> Result<Duration> {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let children = self.children();
            let settled = children.len() <= self.idle_children
                && children.iter().all(|(state, _)| *state != 'Z');
            if settled || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let (_, _, pm) = proc_times(self.postmaster).context("the postmaster is gone")?;
        let ticks = pm[2] + pm[3] + self.children().iter().map(|(_, t)| t).sum::<u64>();
        Ok(Duration::from_secs_f64(ticks as f64 / self.tick))
    }
}

/// Several measurements of one thing.
#[derive(Default)]
pub struct Samples(pub Vec<Cost>);

impl Samples {
    pub fn median_by(&self, f: impl Fn(&Cost) -> Duration) -> Duration {
        let mut v: Vec<Duration> = self.0.iter().map(f).collect();
        v.sort();
        match v.len() {
            0 => Duration::ZERO,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2,
        }
    }
    pub fn wall(&self) -> Duration {
        self.median_by(|c| c.wall)
    }
    pub fn cpu(&self) -> Duration {
        self.median_by(|c| c.cpu)
    }
    pub fn min(&self) -> Duration {
        self.0.iter().map(|c| c.wall).min().unwrap_or_default()
    }
    pub fn max(&self) -> Duration {
        self.0.iter().map(|c| c.wall).max().unwrap_or_default()
    }
    pub fn median_rss(&self) -> u64 {
        let mut v: Vec<u64> = self.0.iter().map(|c| c.max_rss_kib).collect();
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or_default()
    }
    pub fn max_rss(&self) -> u64 {
        self.0
            .iter()
            .map(|c| c.max_rss_kib)
            .max()
            .unwrap_or_default()
    }
}

pub fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.3} s", d.as_secs_f64())
    }
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// The 1-minute load average, for the report.
pub fn load() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// A new order of `0..n` from the xorshift state `rng`, so that no tool
/// always runs first or right after the same other one.
pub fn shuffled(n: usize, rng: &mut u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        order.swap(i, (*rng % (i as u64 + 1)) as usize);
    }
    order
}

/// The median of `a[i] ÷ b[i]` (pairs measured next to each other).
pub fn paired(a: &Samples, b: &Samples, f: impl Fn(&Cost) -> f64) -> f64 {
    let mut r: Vec<f64> = a.0.iter().zip(&b.0).map(|(x, y)| f(x) / f(y)).collect();
    r.sort_by(f64::total_cmp);
    match r.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => r[n / 2],
        n => (r[n / 2 - 1] + r[n / 2]) / 2.0,
    }
}

pub fn wall(c: &Cost) -> f64 {
    c.wall.as_secs_f64()
}
pub fn cpu(c: &Cost) -> f64 {
    c.cpu.as_secs_f64()
}
pub fn rss(c: &Cost) -> f64 {
    c.max_rss_kib as f64
}
