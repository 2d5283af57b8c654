//! PostgreSQL snapshots with the real `pg_dump -Fc`, read back with the
//! real `pg_restore --list`.
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
    let program = program("pg_dump", "KEEL_PG_DUMP");
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

/// `$var`, else `name` on PATH, else the newest
/// `/usr/lib/postgresql/*/bin/<name>`.
fn program(name: &str, var: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let on_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()));
    if on_path {
        return PathBuf::from(name);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let p = e.path().join("bin").join(name);
            p.is_file().then_some((v, p))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, p)| p)
        .unwrap_or_else(|| PathBuf::from(name))
}

/// What a custom-format archive's header says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DumpHeader {
    pub dbname: Option<String>,
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Runs `pg_restore --list` on `path`: it reads the whole table of
/// contents, so a truncated or fake archive fails here. Returns the
/// header's database name and creation time.
pub async fn list(path: &Path) -> Result<DumpHeader, DbError> {
    let program = program("pg_restore", "KEEL_PG_RESTORE");
    let out = tokio::process::Command::new(&program)
        .arg("--list")
        .arg(path)
        // The header's time is printed in the local zone with its
        // abbreviation; in UTC it parses unambiguously.
        .env("TZ", "UTC")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| {
            DbError::new(
                DbErrorKind::Connection,
                format!(
                    "cannot run {}: {e}\n  fix: install the PostgreSQL client (apt-get install postgresql-client) or set KEEL_PG_RESTORE to pg_restore's path",
                    program.display()
                ),
            )
        })?;
    if !out.status.success() {
        return Err(DbError::new(
            DbErrorKind::Statement,
            format!(
                "pg_restore --list cannot read {} ({}): {}",
                path.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(parse_header(&String::from_utf8_lossy(&out.stdout)))
}

/// The `database_id` row of `keel_meta` in the archive (every dump of a
/// database keel has run on holds it), without restoring anything:
/// `pg_restore --data-only --table=keel_meta` prints its COPY block.
pub async fn database_id(path: &Path) -> Result<Option<String>, DbError> {
    let program = program("pg_restore", "KEEL_PG_RESTORE");
    let out = tokio::process::Command::new(&program)
        .args([
            "--data-only",
            "--table",
            crate::db::tracking::META,
            "--file",
            "-",
        ])
        .arg(path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| {
            DbError::new(
                DbErrorKind::Connection,
                format!("cannot run {}: {e}", program.display()),
            )
        })?;
    if !out.status.success() {
        return Err(DbError::new(
            DbErrorKind::Statement,
            format!(
                "pg_restore cannot read the data of {} ({}): {}",
                path.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(parse_meta_id(&String::from_utf8_lossy(&out.stdout)))
}

/// `database_id<TAB>value` inside the `COPY … FROM stdin;` block.
fn parse_meta_id(sql: &str) -> Option<String> {
    let mut in_copy = false;
    for line in sql.lines() {
        if line.starts_with("COPY ") && line.ends_with("FROM stdin;") {
            in_copy = true;
        } else if line == "\\." {
            in_copy = false;
        } else if in_copy && let Some(("database_id", v)) = line.split_once('\t') {
            return Some(v.to_string());
        }
    }
    None
}

/// `; Archive created at 2026-01-02 09:00:00 UTC` and `;     dbname: shop`.
fn parse_header(listing: &str) -> DumpHeader {
    let mut h = DumpHeader::default();
    for line in listing.lines().take_while(|l| l.starts_with(';')) {
        let line = line.trim_start_matches(';').trim();
        if let Some(v) = line.strip_prefix("Archive created at ") {
            h.created_at = v
                .strip_suffix(" UTC")
                .and_then(|t| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").ok())
                .map(|t| t.and_utc());
        } else if let Some(v) = line.strip_prefix("dbname: ") {
            h.dbname = Some(v.to_string());
        }
    }
    h
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
    fn the_database_id_is_read_from_the_copy_block() {
        let sql = "--\n-- Data for Name: keel_meta\n--\n\nCOPY public.keel_meta (key, value) FROM stdin;\ndatabase_id\tab12\n\\.\n";
        assert_eq!(parse_meta_id(sql).as_deref(), Some("ab12"));
        assert_eq!(parse_meta_id("database_id\tnot in a copy block\n"), None);
    }

    #[test]
    fn the_archive_header_gives_database_and_time() {
        let h = parse_header(
            ";\n; Archive created at 2026-01-02 09:00:00 UTC\n;     dbname: shop\n;     TOC Entries: 9\n;\n3; 2615 2200 SCHEMA - public pg_database_owner\n",
        );
        assert_eq!(h.dbname.as_deref(), Some("shop"));
        assert_eq!(
            h.created_at.map(|t| t.to_rfc3339()),
            Some("2026-01-02T09:00:00+00:00".into())
        );
    }

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
