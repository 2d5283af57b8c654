//! PostgreSQL snapshots with the real `pg_dump -Fc`.
//!
//! The password never reaches the command line (where `ps` shows it): it is
//! taken out of the URL and handed over in `PGPASSWORD`.

use super::{DbError, DbErrorKind};
use std::path::{Path, PathBuf};

/// Query parameters of sqlx URLs that libpq does not know and would reject.
const SQLX_ONLY: &[&str] = &["statement-cache-capacity"];

/// Runs `pg_dump -Fc` of the database at `url` into `dest`.
pub async fn dump(url: &str, display: &str, dest: &Path) -> Result<(), DbError> {
    let (dbname, password) = split_password(url)
        .ok_or_else(|| DbError::usage(format!("cannot read the database URL {display}")))?;
    let program = program();
    let mut cmd = tokio::process::Command::new(&program);
    cmd.arg("--format=custom")
        .arg("--no-password")
        .arg("--file")
        .arg(dest)
        .arg("--dbname")
        .arg(&dbname)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    match password {
        Some(p) => cmd.env("PGPASSWORD", p),
        None => cmd.env_remove("PGPASSWORD"),
    };
    let out = cmd.output().await.map_err(|e| {
        DbError::new(
            DbErrorKind::Connection,
            format!(
                "cannot run {}: {e}\n  fix: install the PostgreSQL client (apt-get install postgresql-client) or set KEEL_PG_DUMP to pg_dump's path",
                program.display()
            ),
        )
    })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut message = format!(
        "pg_dump of {display} failed ({}): {}",
        out.status,
        stderr.trim()
    );
    if stderr.contains("server version mismatch") {
        message.push_str(
            "\n  fix: pg_dump must be at least the server's version; install a newer client or set KEEL_PG_DUMP",
        );
    }
    Err(DbError::new(DbErrorKind::Connection, message))
}

/// `KEEL_PG_DUMP`, else `pg_dump` on PATH, else the newest
/// `/usr/lib/postgresql/*/bin/pg_dump`.
fn program() -> PathBuf {
    if let Some(p) = std::env::var_os("KEEL_PG_DUMP").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let on_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("pg_dump").is_file()));
    if on_path {
        return PathBuf::from("pg_dump");
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let p = e.path().join("bin/pg_dump");
            p.is_file().then_some((v, p))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, p)| p)
        .unwrap_or_else(|| PathBuf::from("pg_dump"))
}

/// The URL without any password (from the user part or a `password=`
/// parameter), and the password.
fn split_password(url: &str) -> Option<(String, Option<String>)> {
    let mut parsed = url::Url::parse(url).ok()?;
    let mut password = parsed.password().map(percent_decode);
    if password.is_some() {
        parsed.set_password(None).ok()?;
    }
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if !pairs.is_empty() {
        let mut kept = Vec::new();
        for (k, v) in pairs {
            if k == "password" {
                password = Some(v);
            } else if !SQLX_ONLY.contains(&k.as_str()) {
                kept.push((k, v));
            }
        }
        parsed.set_query(None);
        if !kept.is_empty() {
            parsed.query_pairs_mut().extend_pairs(kept);
        }
    }
    Some((parsed.to_string(), password))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url() {
        let (url, pw) =
            split_password("postgres://app:s%40cret@db:5432/prod?sslmode=require").unwrap();
        assert_eq!(url, "postgres://app@db:5432/prod?sslmode=require");
        assert_eq!(pw.as_deref(), Some("s@cret"));
        let (url, pw) = split_password(
            "postgres://app@db/prod?password=x&host=%2Ftmp%2Fs&statement-cache-capacity=0",
        )
        .unwrap();
        assert!(
            !url.contains("password") && !url.contains("statement-cache"),
            "{url}"
        );
        assert!(url.contains("host="), "{url}");
        assert_eq!(pw.as_deref(), Some("x"));
    }
}
