//! UTC stamps in file names: `20260102T090000Z`, unambiguous, and sorting
//! by name sorts by time. A second file with the same prefix in the same
//! second waits for the next second rather than getting a suffix that would
//! sort before the first.

use chrono::{DateTime, NaiveDateTime, Utc};
use std::path::{Path, PathBuf};

const FORMAT: &str = "%Y%m%dT%H%M%SZ";

pub(crate) fn format(at: DateTime<Utc>) -> String {
    at.format(FORMAT).to_string()
}

/// A path `dir/<prefix><stamp of now><ext>` that does not exist yet.
pub(crate) fn unique_path(dir: &Path, prefix: &str, ext: &str) -> PathBuf {
    loop {
        let now = Utc::now();
        let path = dir.join(format!("{prefix}{}{ext}", format(now)));
        if !path.exists() && !partial(&path).exists() {
            return path;
        }
        let into_second = now.timestamp_subsec_millis() as u64;
        std::thread::sleep(std::time::Duration::from_millis(
            1001 - into_second.min(1000),
        ));
    }
}

/// Where a file is written before it is complete and verified.
pub(crate) fn partial(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

/// The time in a file name made by [`unique_path`] with this prefix and
/// extension; `None` for any other name.
pub(crate) fn parse(file_name: &str, prefix: &str, ext: &str) -> Option<DateTime<Utc>> {
    let stamp = file_name.strip_prefix(prefix)?.strip_suffix(ext)?;
    if stamp.len() != 16 {
        return None;
    }
    let t = NaiveDateTime::parse_from_str(stamp, FORMAT).ok()?;
    Some(t.and_utc())
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
            Some(t)
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
