//! Database snapshots: `snapshots/<env>-<UTC stamp>.dump` (PostgreSQL:
//! `pg_dump -Fc`; SQLite: `VACUUM INTO`) beside `X.dump.sha256` in
//! `sha256sum` format, so `sha256sum -c X.dump.sha256` (run in the
//! snapshots folder) checks it without keel.
//!
//! For `execute`: [`newest`] finds the environment's latest snapshot and
//! [`verify`] checks it right before the run.

use crate::db::{Database, DbError};
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::time::Duration;

const EXT: &str = ".dump";
const SIDECAR_EXT: &str = ".sha256";

/// A snapshot file with its checked SHA-256.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Snapshot {
    pub(crate) path: PathBuf,
    pub(crate) sha256: String,
    pub(crate) bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SnapshotError {
    #[error(
        "snapshot {path} does not exist (deleted or moved?)\n  fix: take a new one with `keel snapshot take{env_flag}`"
    )]
    Missing { path: PathBuf, env_flag: String },
    #[error(
        "snapshot {path} has no checksum file {sidecar}\n  fix: keel writes both; take a new snapshot, or restore the .sha256 file from where the snapshot was copied from"
    )]
    NoSidecar { path: PathBuf, sidecar: PathBuf },
    #[error("{sidecar}: {detail}\n  fix: the checksum file is damaged; take a new snapshot")]
    BadSidecar { sidecar: PathBuf, detail: String },
    #[error(
        "snapshot {path} has SHA-256 {actual}, but {sidecar} says {expected}\n  fix: the snapshot changed after it was taken (corrupted or truncated); do not restore from it, take a new one"
    )]
    Mismatch {
        path: PathBuf,
        sidecar: PathBuf,
        expected: String,
        actual: String,
    },
    #[error(
        "{path} is not a snapshot keel knows (neither a pg_dump custom-format archive nor a SQLite database)\n  fix: point at a snapshots/<env>-<stamp>.dump file"
    )]
    UnknownFormat { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("taking a snapshot of {url}: {source}")]
    Db { url: String, source: Box<DbError> },
    #[error(
        "{path} is a snapshot of environment `{other}`, not of `{env}`\n  fix: take one of `{env}` with `keel snapshot take --env {env}`"
    )]
    OtherEnvironment {
        path: PathBuf,
        env: String,
        other: String,
    },
    #[error(
        "{path} is not named like a snapshot (<env>-<stamp>.dump), so keel cannot tell which environment it is of or when it was taken\n  fix: take one with `keel snapshot take --env {env}`"
    )]
    Unnamed { path: PathBuf, env: String },
    #[error(
        "{path} matches its SHA-256 but is not a readable dump: {detail}\n  fix: take a new snapshot with `keel snapshot take --env {env}`; do not rely on this file"
    )]
    Unreadable {
        path: PathBuf,
        env: String,
        detail: String,
    },
    #[error(
        "{path} is a dump of {dumped}, but `{env}` is {this}: a snapshot of another database cannot restore this one\n  fix: take one of this database with `keel snapshot take --env {env}`"
    )]
    OtherDatabase {
        path: PathBuf,
        env: String,
        dumped: String,
        this: String,
    },
    #[error(
        "{path} was taken {age} ago ({taken}), longer ago than `{env}`'s snapshot_max_age of {max}: restoring it would lose everything written since\n  fix: take a fresh one with `keel snapshot take --env {env}` (or raise snapshot_max_age for [environments.{env}] in keel.toml)"
    )]
    TooOld {
        path: PathBuf,
        env: String,
        taken: String,
        age: String,
        max: String,
    },
}

impl SnapshotError {
    /// True when a snapshot failed its check rather than an I/O or database failure.
    pub(crate) fn is_check_failure(&self) -> bool {
        !matches!(self, SnapshotError::Io { .. } | SnapshotError::Db { .. })
    }

    pub(crate) fn db(&self) -> Option<&DbError> {
        match self {
            SnapshotError::Db { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// The sidecar beside a snapshot: `X.dump.sha256`.
pub(crate) fn sidecar(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(SIDECAR_EXT);
    path.with_file_name(name)
}

/// Takes a snapshot of the database into `dir/<env>-<stamp>.dump` and
/// writes its sidecar. The file gets its name only once it is complete.
pub(crate) async fn take(
    db: &mut dyn Database,
    dir: &Path,
    env: &str,
) -> Result<Snapshot, SnapshotError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SnapshotError::Io { path, source }
    };
    crate::files::private_ignored_dir(dir).map_err(io(dir))?;
    let path = crate::stamp::unique_path(dir, &format!("{env}-"), EXT);
    let partial = crate::stamp::partial(&path);
    // Made owner-only before the dump writes into it (pg_dump and VACUUM
    // INTO both accept an existing empty file and keep its mode), and
    // locked while it is written: [`remove_stale`] leaves it alone.
    let holder = crate::files::create_private(&partial).map_err(io(&partial))?;
    holder.lock().map_err(io(&partial))?;
    if let Err(source) = db.snapshot(&partial).await {
        let _ = std::fs::remove_file(&partial);
        return Err(SnapshotError::Db {
            url: db.display_url().to_string(),
            source: Box::new(source),
        });
    }
    let sha256 = crate::digest::sha256_file(&partial).map_err(io(&partial))?;
    let bytes = std::fs::metadata(&partial).map_err(io(&partial))?.len();
    std::fs::rename(&partial, &path).map_err(io(&path))?;
    drop(holder);
    let side = sidecar(&path);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    crate::files::write_private(&side, format!("{sha256}  {name}\n").as_bytes())
        .map_err(io(&side))?;
    Ok(Snapshot {
        path,
        sha256,
        bytes,
    })
}

/// Removes the `*.dump.partial` files in `dir` that no running `take`
/// holds: what a `snapshot take` that was killed left behind, part of a
/// database's data that nothing will ever use. Returns what it removed.
pub(crate) fn remove_stale(dir: &Path) -> Result<Vec<PathBuf>, SnapshotError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(SnapshotError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".dump.partial") {
            continue;
        }
        let path = e.path();
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        // A `take` in progress holds the lock; a killed one held it no more.
        if file.try_lock().is_ok() {
            std::fs::remove_file(&path).map_err(|source| SnapshotError::Io {
                path: path.clone(),
                source,
            })?;
            removed.push(path);
        }
    }
    removed.sort();
    Ok(removed)
}

/// Checks a snapshot against its sidecar and that it is a dump keel knows.
pub(crate) fn verify(path: &Path) -> Result<Snapshot, SnapshotError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SnapshotError::Missing {
                path: path.to_path_buf(),
                env_flag: env_of(path)
                    .map(|e| format!(" --env {e}"))
                    .unwrap_or_default(),
            });
        }
        Err(source) => {
            return Err(SnapshotError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let side = sidecar(path);
    let text = match std::fs::read_to_string(&side) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SnapshotError::NoSidecar {
                path: path.to_path_buf(),
                sidecar: side,
            });
        }
        Err(source) => return Err(SnapshotError::Io { path: side, source }),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let expected = parse_sidecar(&text, &name).map_err(|detail| SnapshotError::BadSidecar {
        sidecar: side.clone(),
        detail,
    })?;
    let io = |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut magic = [0u8; 16];
    let n =
        std::io::Read::read(&mut std::fs::File::open(path).map_err(io)?, &mut magic).map_err(io)?;
    let actual = crate::digest::sha256_file(path).map_err(io)?;
    if actual != expected {
        return Err(SnapshotError::Mismatch {
            path: path.to_path_buf(),
            sidecar: side,
            expected,
            actual,
        });
    }
    // pg_dump's custom format starts with "PGDMP"; a SQLite database with
    // "SQLite format 3\0".
    let known = magic[..n].starts_with(b"PGDMP") || magic[..n].starts_with(b"SQLite format 3\0");
    if !known {
        return Err(SnapshotError::UnknownFormat {
            path: path.to_path_buf(),
        });
    }
    Ok(Snapshot {
        path: path.to_path_buf(),
        sha256: actual,
        bytes: meta.len(),
    })
}

/// A snapshot `execute` may rely on, and what keel found out about it.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    pub(crate) snapshot: Snapshot,
    /// `a readable pg_dump archive of database shop, taken 3 min ago`.
    pub(crate) detail: String,
}

/// Everything `execute` requires of a snapshot before relying on it: it
/// matches its sidecar ([`verify`]); it is named as a snapshot of `env`; the
/// database's own tools read it back completely; it is a dump of this
/// database (the archive's database name); and it is no older than
/// `max_age` (the archive's own creation time, else the stamp in its name).
pub(crate) async fn check(
    db: &mut dyn Database,
    path: &Path,
    env: &str,
    max_age: Duration,
) -> Result<Checked, SnapshotError> {
    let snapshot = verify(path)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let Some((named_env, named_at)) = parse_name(&name) else {
        return Err(SnapshotError::Unnamed {
            path: path.to_path_buf(),
            env: env.to_string(),
        });
    };
    if named_env != env {
        return Err(SnapshotError::OtherEnvironment {
            path: path.to_path_buf(),
            env: env.to_string(),
            other: named_env,
        });
    }
    let facts = db
        .read_snapshot(path)
        .await
        .map_err(|e| SnapshotError::Unreadable {
            path: path.to_path_buf(),
            env: env.to_string(),
            detail: e.message.clone(),
        })?;
    // keel_meta's random id tells two databases apart even where their
    // names are the same (staging and production on different servers);
    // the archive's database name tells a copy apart that carried the id
    // along (staging restored from production's dump). Both must agree.
    let differs =
        |a: &Option<String>, b: &Option<String>| matches!((a, b), (Some(a), Some(b)) if a != b);
    let other = differs(&facts.database_id, &facts.this_database_id)
        || differs(&facts.database, &facts.this_database);
    if other {
        let describe = |name: &Option<String>, id: &Option<String>| match (name, id) {
            (Some(n), Some(i)) => format!("database `{n}` (keel id {i})"),
            (Some(n), None) => format!("database `{n}`"),
            (None, Some(i)) => format!("the database with keel id {i}"),
            (None, None) => "an unknown database".to_string(),
        };
        return Err(SnapshotError::OtherDatabase {
            path: path.to_path_buf(),
            env: env.to_string(),
            dumped: describe(&facts.database, &facts.database_id),
            this: describe(&facts.this_database, &facts.this_database_id),
        });
    }
    let taken = facts.created_at.unwrap_or(named_at);
    let age = (Utc::now() - taken).to_std().unwrap_or_default();
    let round =
        |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs())).to_string();
    if age > max_age {
        return Err(SnapshotError::TooOld {
            path: path.to_path_buf(),
            env: env.to_string(),
            taken: taken.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            age: round(age),
            max: round(max_age),
        });
    }
    let detail = match &facts.database {
        Some(d) => format!(
            "a readable pg_dump archive of database {d}, taken {} ago",
            round(age)
        ),
        None => format!(
            "a readable database that passes its integrity check, taken {} ago",
            round(age)
        ),
    };
    Ok(Checked { snapshot, detail })
}

/// The hash from a `sha256sum` line for `name` (`HASH  NAME` or `HASH *NAME`).
fn parse_sidecar(text: &str, name: &str) -> Result<String, String> {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let (hash, file) = line
        .split_once(' ')
        .ok_or_else(|| "not a sha256sum line (HASH  FILE)".to_string())?;
    let file = file.trim_start_matches([' ', '*']);
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("the checksum is not 64 hex digits".into());
    }
    if file != name {
        return Err(format!("it is the checksum of {file}, not of {name}"));
    }
    Ok(hash.to_ascii_lowercase())
}

/// `(env, time)` of a snapshot file name `<env>-<stamp>.dump`.
fn parse_name(name: &str) -> Option<(String, DateTime<Utc>)> {
    name.match_indices('-').find_map(|(i, _)| {
        let prefix = &name[..=i];
        crate::stamp::parse(name, prefix, EXT).map(|t| (name[..i].to_string(), t))
    })
}

fn env_of(path: &Path) -> Option<String> {
    parse_name(&path.file_name()?.to_string_lossy()).map(|(e, _)| e)
}

/// Every snapshot in `dir` as `(env, time, path)`, oldest first.
fn list(dir: &Path) -> Result<Vec<(String, DateTime<Utc>, PathBuf)>, SnapshotError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(SnapshotError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut all: Vec<_> = entries
        .flatten()
        .filter_map(|e| {
            let (env, t) = parse_name(&e.file_name().to_string_lossy())?;
            Some((env, t, e.path()))
        })
        .collect();
    all.sort_by_key(|a| a.1);
    Ok(all)
}

/// The newest snapshot of `env` in `dir`.
pub(crate) fn newest(dir: &Path, env: &str) -> Result<Option<PathBuf>, SnapshotError> {
    Ok(list(dir)?
        .into_iter()
        .rev()
        .find(|(e, ..)| e == env)
        .map(|(.., p)| p))
}

/// Deletes snapshots (and sidecars) older than `older_than`, of `env` or of
/// every environment; the newest snapshot of each environment always stays.
/// Returns what was (or, with `dry_run`, would be) deleted.
pub(crate) fn prune(
    dir: &Path,
    older_than: Duration,
    env: Option<&str>,
    dry_run: bool,
) -> Result<Vec<PathBuf>, SnapshotError> {
    let cutoff =
        Utc::now() - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::MAX);
    let all = list(dir)?;
    let mut deleted = Vec::new();
    for (i, (e, t, path)) in all.iter().enumerate() {
        let newest_of_env = !all[i + 1..].iter().any(|(other, ..)| other == e);
        if newest_of_env || env.is_some_and(|want| want != e) || *t >= cutoff {
            continue;
        }
        if !dry_run {
            for p in [path.clone(), sidecar(path)] {
                match std::fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(SnapshotError::Io { path: p, source }),
                }
            }
        }
        deleted.push(path.clone());
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_environment() {
        let (env, _) = parse_name("prod-eu-20260102T090000Z.dump").unwrap();
        assert_eq!(env, "prod-eu");
        assert!(parse_name("prod-20260102T090000Z.dump.sha256").is_none());
        assert!(parse_name("notes.dump").is_none());
    }

    #[test]
    fn sidecars_are_sha256sum_lines() {
        let h = "a".repeat(64);
        assert_eq!(
            parse_sidecar(&format!("{h}  x.dump\n"), "x.dump").unwrap(),
            h
        );
        assert_eq!(
            parse_sidecar(&format!("{h} *x.dump\n"), "x.dump").unwrap(),
            h
        );
        assert!(parse_sidecar(&format!("{h}  y.dump\n"), "x.dump").is_err());
        assert!(parse_sidecar("garbage", "x.dump").is_err());
    }
}
