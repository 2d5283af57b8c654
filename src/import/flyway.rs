//! Flyway's layout: `V<version>__<description>.sql` (versioned),
//! `U<version>__<description>.sql` (its undo, Flyway Teams) and
//! `R__<description>.sql` (repeatable), found in the folder and every
//! folder under it, as Flyway scans a location.
//!
//! Flyway versions are dotted (`1`, `1.1`, `2.0.3`; `1_1` is `1.1`) and
//! ordered part by part, so `1.10` comes after `1.9`. keel's are numbers:
//! each part is padded to the widest that part is in the set, and the
//! parts are put side by side (`1.9`, `1.10` become 109 and 110). The same
//! order, as long as it fits keel's 14 digits.
//!
//! A repeatable has no version: Flyway runs it again after the versioned
//! migrations whenever its text changes. keel has no such migration: each
//! repeatable becomes one ordinary migration after the last versioned one
//! (in Flyway's order, by description), holding its current text, so a
//! fresh database ends up where Flyway would bring it. A later change is a
//! new keel migration (`CREATE OR REPLACE …`).

use super::{Foreign, ImportError};
use crate::migration::Version;
use std::path::Path;

/// Every Flyway migration under `src`, by keel version.
pub(crate) fn read(src: &Path) -> Result<Vec<Foreign>, ImportError> {
    let mut files = Vec::new();
    walk(src, src, &mut files)?;
    files.sort();
    let mut versioned: Vec<(Vec<u64>, &str, &str)> = Vec::new();
    let mut undo: Vec<(Vec<u64>, &str)> = Vec::new();
    let mut repeatable: Vec<(&str, &str)> = Vec::new();
    for rel in &files {
        let file = rel.rsplit('/').next().unwrap_or(rel);
        let Some((kind, version, description)) = name_of(file) else {
            continue;
        };
        match kind {
            'V' => versioned.push((parts(version, rel)?, description, rel)),
            'U' => undo.push((parts(version, rel)?, rel)),
            _ => repeatable.push((description, rel)),
        }
    }
    let widths = widths(versioned.iter().map(|(p, ..)| p.as_slice()));
    let mut out: Vec<Foreign> = Vec::new();
    for (p, description, rel) in &versioned {
        let version = number(p, &widths, rel)?;
        if let Some(other) = out.iter().find(|f| f.version == version) {
            return Err(ImportError {
                path: rel.to_string(),
                message: format!("it has the version of {}", other.source),
                fix: "Flyway refuses two migrations of one version too: give one of them another"
                    .into(),
            });
        }
        let up = read_file(src, rel)?;
        let down = undo
            .iter()
            .find(|(u, _)| same_version(u, p))
            .map(|(_, u)| read_file(src, u))
            .transpose()?;
        let transaction = runs_in_transaction(src, rel, &up)?;
        out.push(foreign(version, description, up, down, transaction, rel));
    }
    out.sort_by_key(|f| f.version);
    // Flyway runs the repeatables after every versioned migration, ordered
    // by description.
    repeatable.sort();
    let first = out.last().map_or(1, |f| f.version.0 + 1);
    for (next, (description, rel)) in (first..).zip(repeatable) {
        let up = read_file(src, rel)?;
        let transaction = runs_in_transaction(src, rel, &up)?;
        out.push(foreign(
            Version(next),
            description,
            up,
            None,
            transaction,
            rel,
        ));
    }
    if out.is_empty() {
        return Err(ImportError {
            path: src.display().to_string(),
            message: "no flyway migrations here".into(),
            fix: "give the folder Flyway reads (its location, e.g. src/main/resources/db/migration), with V1__name.sql files".into(),
        });
    }
    Ok(out)
}

/// Flyway's checksum of a file: CRC-32 of its lines' UTF-8 bytes without
/// their line ends (and without a byte-order mark), as a signed 32-bit
/// number, as `flyway_schema_history.checksum` stores it.
pub(crate) fn checksum(text: &str) -> i32 {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut h = crc32fast::Hasher::new();
    for line in text.lines() {
        // Java's readLine also ends a line at a lone '\r'.
        for part in line.split('\r') {
            h.update(part.as_bytes());
        }
    }
    h.finalize() as i32
}

/// The parts of a Flyway version (`1.2`, `1_2`), for comparing two.
pub(crate) fn parts(version: &str, path: &str) -> Result<Vec<u64>, ImportError> {
    let parsed: Option<Vec<u64>> = version
        .split(['.', '_'])
        .map(|p| p.parse::<u64>().ok())
        .collect();
    let mut parsed = parsed
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ImportError {
            path: path.to_string(),
            message: format!("`{version}` is not a Flyway version"),
            fix: "name it V<digits, dots or underscores>__<description>.sql".into(),
        })?;
    // Flyway takes 1.0 for 1.
    while parsed.len() > 1 && parsed.last() == Some(&0) {
        parsed.pop();
    }
    Ok(parsed)
}

/// Two Flyway versions are the same: part by part, missing parts 0.
pub(crate) fn same_version(a: &[u64], b: &[u64]) -> bool {
    (0..a.len().max(b.len())).all(|i| a.get(i).unwrap_or(&0) == b.get(i).unwrap_or(&0))
}

/// `V1_2__add_users.sql` → ('V', "1_2", "add_users"); `R__views.sql` →
/// ('R', "", "views").
fn name_of(file: &str) -> Option<(char, &str, &str)> {
    let stem = file.strip_suffix(".sql")?;
    let kind = stem.chars().next()?;
    let (version, description) = stem.get(1..)?.split_once("__")?;
    match kind {
        'V' | 'U' if !version.is_empty() => Some((kind, version, description)),
        'R' if version.is_empty() => Some((kind, version, description)),
        _ => None,
    }
    .filter(|(.., d)| !d.is_empty())
}

/// The widest each part is, over a set of versions.
fn widths<'a>(all: impl Iterator<Item = &'a [u64]>) -> Vec<usize> {
    let mut widths: Vec<usize> = Vec::new();
    for p in all {
        for (i, n) in p.iter().enumerate() {
            let w = n.to_string().len();
            match widths.get_mut(i) {
                Some(have) => *have = (*have).max(w),
                None => widths.push(w),
            }
        }
    }
    widths
}

/// A version's keel number: its parts side by side, each padded.
fn number(parts: &[u64], widths: &[usize], path: &str) -> Result<Version, ImportError> {
    let digits: String = widths
        .iter()
        .enumerate()
        .map(|(i, w)| format!("{:0w$}", parts.get(i).unwrap_or(&0)))
        .collect();
    match digits.parse::<u64>() {
        Ok(n) if digits.len() <= 14 => Ok(Version(n)),
        _ => Err(ImportError {
            path: path.to_string(),
            message: format!(
                "its version needs {} digits in keel's numbering of this set (parts padded to {:?}), more than keel's 14",
                digits.len(),
                widths
            ),
            fix: "import a set whose versions have fewer or shorter parts, or renumber them in the source".into(),
        }),
    }
}

/// Flyway runs a migration in a transaction unless its `.sql.conf` says
/// `executeInTransaction=false`, or (PostgreSQL) a statement of it cannot
/// run in one (`CREATE INDEX CONCURRENTLY`, `VACUUM`, …), which Flyway
/// detects.
fn runs_in_transaction(src: &Path, rel: &str, up: &str) -> Result<bool, ImportError> {
    let conf = src.join(format!("{rel}.conf"));
    if conf.is_file() {
        let text = read_file(src, &format!("{rel}.conf"))?;
        if text.lines().any(|l| {
            l.replace(' ', "")
                .eq_ignore_ascii_case("executeInTransaction=false")
        }) {
            return Ok(false);
        }
    }
    let mut schema = crate::analysis::schema::Schema::new(None);
    let classified = crate::analysis::classify::classify(up, &mut schema, false);
    Ok(!classified.ops.iter().any(|op| op.no_transaction()))
}

fn foreign(
    version: Version,
    description: &str,
    up: String,
    down: Option<String>,
    transaction: bool,
    rel: &str,
) -> Foreign {
    Foreign {
        version,
        name: description.to_string(),
        up,
        down: down.filter(|d| !d.trim().is_empty()),
        transaction,
        source: rel.to_string(),
    }
}

/// Every file under `dir`, as paths relative to `root` with `/`.
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), ImportError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ImportError {
        path: dir.display().to_string(),
        message: format!("cannot read the folder: {e}"),
        fix: "give the folder that holds the Flyway migrations".into(),
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(parts.join("/"));
        }
    }
    Ok(())
}

fn read_file(src: &Path, rel: &str) -> Result<String, ImportError> {
    std::fs::read_to_string(src.join(rel)).map_err(|e| ImportError {
        path: src.join(rel).display().to_string(),
        message: format!("cannot read it: {e}"),
        fix: "make it a readable UTF-8 file".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_keep_flyways_order() {
        let set: Vec<Vec<u64>> = ["1", "1.1", "1.9", "1.10", "2", "2.0.1"]
            .iter()
            .map(|v| parts(v, "f").unwrap())
            .collect();
        let w = widths(set.iter().map(Vec::as_slice));
        let numbers: Vec<u64> = set.iter().map(|p| number(p, &w, "f").unwrap().0).collect();
        assert_eq!(numbers, [1000, 1010, 1090, 1100, 2000, 2001]);
        assert!(numbers.windows(2).all(|n| n[0] < n[1]));
        assert!(same_version(&parts("1.0", "f").unwrap(), &[1]));
        assert_eq!(parts("1_1", "f").unwrap(), [1, 1]);
        assert!(parts("1.a", "f").is_err());
        let stamp = parts("20240101120000", "f").unwrap();
        assert_eq!(
            number(&stamp, &widths([stamp.as_slice()].into_iter()), "f")
                .unwrap()
                .0,
            20240101120000
        );
    }

    #[test]
    fn names_and_kinds() {
        assert_eq!(
            name_of("V1_2__add_users.sql"),
            Some(('V', "1_2", "add_users"))
        );
        assert_eq!(name_of("R__views.sql"), Some(('R', "", "views")));
        assert_eq!(name_of("U3__x.sql"), Some(('U', "3", "x")));
        assert_eq!(name_of("V1__.sql"), None);
        assert_eq!(name_of("R1__x.sql"), None);
        assert_eq!(name_of("notes.sql"), None);
    }

    /// The value Flyway stores for a file: java.util.zip.CRC32 over the
    /// lines without their ends.
    #[test]
    fn checksum_is_crc32_of_the_lines() {
        let unix = checksum("CREATE TABLE a (id int);\nSELECT 1;\n");
        assert_eq!(unix, checksum("CREATE TABLE a (id int);\r\nSELECT 1;"));
        assert_eq!(
            unix,
            checksum("\u{feff}CREATE TABLE a (id int);\nSELECT 1;")
        );
        let mut h = crc32fast::Hasher::new();
        h.update(b"CREATE TABLE a (id int);SELECT 1;");
        assert_eq!(unix, h.finalize() as i32);
    }
}
