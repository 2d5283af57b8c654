//! UTC stamps in file names: `20260102T090000Z`, sortable and unambiguous.
//! Two files in the same second get `-2`, `-3`, … after the stamp.

use chrono::{DateTime, NaiveDateTime, Utc};
use std::path::{Path, PathBuf};

const FORMAT: &str = "%Y%m%dT%H%M%SZ";

pub fn format(at: DateTime<Utc>) -> String {
    at.format(FORMAT).to_string()
}

/// A path `dir/<prefix><stamp>[-n]<ext>` that does not exist yet.
pub fn unique_path(dir: &Path, prefix: &str, at: DateTime<Utc>, ext: &str) -> PathBuf {
    let stamp = format(at);
    let mut n = 1u32;
    loop {
        let name = if n == 1 {
            format!("{prefix}{stamp}{ext}")
        } else {
            format!("{prefix}{stamp}-{n}{ext}")
        };
        let path = dir.join(name);
        if !path.exists() && !partial(&path).exists() {
            return path;
        }
        n += 1;
    }
}

/// Where a file is written before it is complete and verified.
pub fn partial(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

/// `(time, n)` from a file name made by [`unique_path`] with this prefix and
/// extension; `None` for any other name. Orders files oldest first.
pub fn parse(file_name: &str, prefix: &str, ext: &str) -> Option<(DateTime<Utc>, u32)> {
    let rest = file_name.strip_prefix(prefix)?.strip_suffix(ext)?;
    let (stamp, n) = match rest.split_once('-') {
        Some((s, n)) => (s, n.parse().ok().filter(|&n| n >= 2)?),
        None => (rest, 1),
    };
    if stamp.len() != 16 {
        return None;
    }
    let t = NaiveDateTime::parse_from_str(stamp, FORMAT).ok()?;
    Some((t.and_utc(), n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_order() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format(t), "20260102T090000Z");
        assert_eq!(
            parse("prod-20260102T090000Z.dump", "prod-", ".dump"),
            Some((t, 1))
        );
        assert_eq!(
            parse("prod-20260102T090000Z-3.dump", "prod-", ".dump"),
            Some((t, 3))
        );
        // Another environment whose name starts the same is not this one's.
        assert_eq!(
            parse("prod-eu-20260102T090000Z.dump", "prod-", ".dump"),
            None
        );
        assert_eq!(
            parse("prod-20260102T090000Z.dump.sha256", "prod-", ".dump"),
            None
        );
    }
}
