//! Reading the migrations folder.

use super::bounds::{Bounds, Kind, Refusal};
use super::{Meta, Migration, Version, checksum};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Everything wrong with a migrations folder, collected so that one run
/// shows every problem rather than the first.
#[derive(Debug)]
pub(crate) struct SourceError {
    pub(crate) problems: Vec<Problem>,
}

#[derive(Debug)]
pub(crate) struct Problem {
    pub(crate) path: PathBuf,
    pub(crate) line: Option<(usize, usize)>,
    pub(crate) message: String,
    pub(crate) fix: String,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "{n} problem{} in the migration files:",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            match p.line {
                Some((l, c)) => writeln!(f, "  {}:{l}:{c}: {}", p.path.display(), p.message)?,
                None => writeln!(f, "  {}: {}", p.path.display(), p.message)?,
            }
            writeln!(f, "    fix: {}", p.fix)?;
        }
        Ok(())
    }
}

impl std::error::Error for SourceError {}

/// Loads every migration under `dir`, sorted by version. Every folder and
/// file must resolve inside `bounds` (see [`Bounds`]); an entry keel cannot
/// follow or read is a problem, never skipped in silence.
///
/// A missing folder is an empty list: a new project has no migrations yet.
pub(crate) fn load_dir(dir: &Path, bounds: &Bounds) -> Result<Vec<Migration>, SourceError> {
    load_dir_on(dir, bounds, 1)
}

/// [`load_dir`] with a long history's files read by up to `threads`
/// threads: for `status`, whose time is the reading; each thread costs
/// memory (its stack and allocator arena), which `up` keeps for itself.
pub(crate) fn load_dir_on(
    dir: &Path,
    bounds: &Bounds,
    threads: usize,
) -> Result<Vec<Migration>, SourceError> {
    let mut problems = Vec::new();
    let resolved = match bounds.check(dir, Kind::Folder) {
        Ok(Some(resolved)) => resolved,
        Ok(None) => return Ok(Vec::new()),
        Err(r) => {
            return Err(SourceError {
                problems: vec![refused(dir, r)],
            });
        }
    };
    let entries = match std::fs::read_dir(&resolved) {
        Ok(entries) => entries,
        Err(e) => {
            return Err(SourceError {
                problems: vec![Problem {
                    path: dir.to_path_buf(),
                    line: None,
                    message: format!("cannot read the migrations folder: {e}"),
                    fix: "check the path given with --migrations or migrations_dir in keel.toml"
                        .into(),
                }],
            });
        }
    };
    let mut entries_found: Vec<(PathBuf, bool)> = Vec::new();
    for entry in entries {
        match entry {
            // The folder listing says which entries are plain folders
            // (d_type), so the common case costs no stat of its own.
            Ok(e) => entries_found.push((
                dir.join(e.file_name()),
                e.file_type().is_ok_and(|t| t.is_dir()),
            )),
            Err(e) => problems.push(Problem {
                path: dir.to_path_buf(),
                line: None,
                message: format!("cannot read an entry of the migrations folder: {e}"),
                fix: "check the folder's permissions and file system".into(),
            }),
        }
    }
    entries_found.sort();
    let folders: Vec<Folder> = entries_found
        .into_iter()
        .filter_map(|(path, plain_dir)| {
            migration_folder(path, plain_dir, &resolved, bounds, &mut problems)
        })
        .collect();
    let mut by_version: BTreeMap<Version, Migration> = BTreeMap::new();
    for ((path, _, version, _), read) in folders.iter().zip(read_all(&folders, bounds, threads)) {
        match read {
            Ok(m) => {
                if let Some(existing) = by_version.get(version) {
                    problems.push(Problem {
                        path: path.clone(),
                        line: None,
                        message: format!(
                            "version {version} is used twice: here and by {}",
                            existing.dir.display()
                        ),
                        fix: "give one of them a new version: `keel new NAME` picks a free one"
                            .into(),
                    });
                } else {
                    by_version.insert(*version, m);
                }
            }
            Err(mut p) => problems.append(&mut p),
        }
    }
    if problems.is_empty() {
        Ok(by_version.into_values().collect())
    } else {
        Err(SourceError { problems })
    }
}

/// A migration's folder: as listed, as resolved, its version and name.
type Folder = (PathBuf, PathBuf, Version, String);

fn refused(path: &Path, r: Refusal) -> Problem {
    Problem {
        path: path.to_path_buf(),
        line: None,
        message: r.message,
        fix: r.fix,
    }
}

/// The migration folder an entry of the migrations folder is, if it is
/// one; what is wrong with it goes to `problems`. `plain_dir`: the listing
/// says it is a folder, not a symlink.
fn migration_folder(
    path: PathBuf,
    plain_dir: bool,
    resolved: &Path,
    bounds: &Bounds,
    problems: &mut Vec<Problem>,
) -> Option<Folder> {
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if file_name.starts_with('.') {
        return None;
    }
    let folder = if plain_dir {
        // Not a symlink: it resolves beside its parent, which the bounds
        // already accepted.
        resolved.join(file_name)
    } else {
        let is_link = path
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink());
        // A file beside the migrations (a README), or a link to one, is not
        // read; a link that cannot be followed is a problem below.
        if !path.is_dir() && (!is_link || path.is_file()) {
            if file_name.ends_with(".sql") {
                problems.push(Problem {
                    path: path.clone(),
                    line: None,
                    message: "a migration is a folder, not a single .sql file".into(),
                    fix: "run `keel new NAME` and move the SQL into its up.sql".into(),
                });
            }
            return None;
        }
        match bounds.check(&path, Kind::Folder) {
            Ok(Some(folder)) => folder,
            Ok(None) => return None,
            Err(r) => {
                problems.push(refused(&path, r));
                return None;
            }
        }
    };
    let Some((version, name)) = parse_folder_name(file_name) else {
        problems.push(Problem {
            path: path.clone(),
            line: None,
            message: format!(
                "`{file_name}` is not named <version>_<name> (14-digit UTC version, then an ASCII name that starts with a letter or digit)"
            ),
            fix: suggest_name(file_name),
        });
        return None;
    };
    let name = name.to_string();
    Some((path, folder, version, name))
}

/// Reads the folders' files, in order; a long history by two threads when
/// `threads` allows (the reads are system calls, each thread waits for its
/// own).
fn read_all(
    folders: &[Folder],
    bounds: &Bounds,
    threads: usize,
) -> Vec<Result<Migration, Vec<Problem>>> {
    let read = |part: &[Folder]| {
        part.iter()
            .map(|(path, folder, version, name)| {
                read_migration(path, folder, *version, name, bounds)
            })
            .collect::<Vec<_>>()
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads.min(cores) < 2 || folders.len() < 200 {
        return read(folders);
    }
    let (first, second) = folders.split_at(folders.len() / 2);
    std::thread::scope(|scope| {
        let other = scope.spawn(|| read(second));
        let mut all = read(first);
        match other.join() {
            Ok(rest) => all.extend(rest),
            Err(panic) => std::panic::resume_unwind(panic),
        }
        all
    })
}

/// Splits `20240101120000_add_users` into its version and name.
pub(crate) fn parse_folder_name(name: &str) -> Option<(Version, &str)> {
    let (version, rest) = name.split_once('_')?;
    let version = Version::parse(version)?;
    is_migration_name(rest).then_some((version, rest))
}

/// A name keel takes: its own snake_case, or one another tool wrote and
/// `keel import` kept (`add-users`, `v2.1_fix`, `Add email to owners`):
/// ASCII, it starts with a letter or digit, ends without a space, and
/// holds no slash, backslash or control character. (A name with other
/// letters gets an ASCII spelling suggested instead.)
pub(crate) fn is_migration_name(s: &str) -> bool {
    is_snake_case(s)
        || (s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && !s.ends_with(' ')
            && s.bytes()
                .all(|b| (b.is_ascii_graphic() || b == b' ') && b != b'/' && b != b'\\'))
}

pub(crate) fn is_snake_case(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !s.ends_with('_')
        && !s.contains("__")
}

fn suggest_name(folder: &str) -> String {
    let digits: String = folder.chars().take_while(|c| c.is_ascii_digit()).collect();
    let rest = folder[digits.len()..].trim_start_matches(['_', '-']);
    let snake = to_snake_case(rest);
    let snake = if snake.is_empty() {
        "describe_the_change".to_string()
    } else {
        snake
    };
    let version = if digits.len() == 14 {
        digits
    } else {
        Version::now().to_string()
    };
    format!("rename the folder to `{version}_{snake}`")
}

/// `AddUsers`, `add-users`, `Add Users` → `add_users`; letters beyond
/// ASCII are spelled in ASCII first (`ünïcode` → `unicode`, `Straße` →
/// `strasse`), never dropped.
pub(crate) fn to_snake_case(text: &str) -> String {
    let mut spaced = String::new();
    let mut prev_lower = false;
    for c in deunicode::deunicode(text).chars() {
        // CamelCase → camel_case
        if c.is_ascii_uppercase() && prev_lower {
            spaced.push('_');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        spaced.push(if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '_'
        });
    }
    spaced
        .split('_')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// Reads one migration folder; `folder` is `dir` with its symlinks resolved.
fn read_migration(
    dir: &Path,
    folder: &Path,
    version: Version,
    name: &str,
    bounds: &Bounds,
) -> Result<Migration, Vec<Problem>> {
    let mut problems = Vec::new();
    let read = |file: &str| -> Result<Option<String>, Problem> {
        let path = dir.join(file);
        let problem = |message: String, line: Option<(usize, usize)>, fix: &str| Problem {
            path: path.clone(),
            line,
            message,
            fix: fix.into(),
        };
        let inside = folder.join(file);
        // A regular file (not a symlink) in a folder the bounds accepted
        // resolves inside them: one lstat instead of the full check.
        let plain = match std::fs::symlink_metadata(&inside) {
            Ok(meta) if meta.is_file() => Some(meta.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            _ => None,
        };
        let resolved = match plain {
            Some(_) => inside,
            None => match bounds.check(&inside, Kind::File) {
                Ok(Some(resolved)) => resolved,
                Ok(None) => return Ok(None),
                Err(r) => return Err(problem(r.message, None, &r.fix)),
            },
        };
        let bytes = read_file(&resolved, plain).map_err(|e| {
            problem(
                format!("cannot read: {e}"),
                None,
                "check the file's permissions",
            )
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            problem(
                format!("not valid UTF-8 (byte {})", e.utf8_error().valid_up_to()),
                None,
                "save the file as UTF-8",
            )
        })?;
        if let Some(at) = text.find('\0') {
            // PostgreSQL's protocol ends a query at a NUL byte: the server
            // would answer `invalid message format` with no position.
            return Err(problem(
                "holds a NUL byte (\\0), which no SQL text or TOML may contain".into(),
                Some(super::meta::line_col(&text, at)),
                "delete it; a file full of NUL bytes was usually saved as UTF-16, so save it as UTF-8",
            ));
        }
        Ok(Some(text))
    };
    let up = match read("up.sql") {
        Ok(Some(up)) => Some(up),
        Ok(None) => {
            problems.push(Problem {
                path: dir.join("up.sql"),
                line: None,
                message: "missing: every migration needs an up.sql".into(),
                fix: "add up.sql with the migration's SQL".into(),
            });
            None
        }
        Err(p) => {
            problems.push(p);
            None
        }
    };
    let down = read("down.sql").unwrap_or_else(|p| {
        problems.push(p);
        None
    });
    let toml = read("migration.toml").unwrap_or_else(|p| {
        problems.push(p);
        None
    });
    let meta = match toml.as_deref().map(Meta::parse) {
        None => no_meta(),
        Some(Ok(meta)) => std::sync::Arc::new(meta),
        Some(Err(errors)) => {
            problems.extend(errors.into_iter().map(|e| Problem {
                path: dir.join("migration.toml"),
                line: Some((e.line, e.column)),
                message: e.message,
                fix: e.fix,
            }));
            no_meta()
        }
    };
    match up {
        Some(up) if problems.is_empty() => Ok(Migration {
            version,
            name: name.to_string(),
            dir: dir.to_path_buf(),
            checksum: checksum(&up, down.as_deref(), toml.as_deref()),
            up,
            down,
            meta,
        }),
        _ => Err(problems),
    }
}

/// The settings of a migration without migration.toml: one copy for all.
fn no_meta() -> std::sync::Arc<Meta> {
    static DEFAULT: std::sync::LazyLock<std::sync::Arc<Meta>> =
        std::sync::LazyLock::new(Default::default);
    DEFAULT.clone()
}

/// The file's bytes; `size` (from the lstat just made) saves the stat
/// `std::fs::read` would make for its buffer, and the read that would find
/// the end: a file is read as it was when it was looked at, as
/// `std::fs::read` would have read it a moment earlier.
fn read_file(path: &Path, size: Option<u64>) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let Some(size) = size.and_then(|s| usize::try_from(s).ok()) else {
        return std::fs::read(path);
    };
    let mut file = std::fs::File::open(path)?;
    let mut bytes = vec![0; size];
    match file.read_exact(&mut bytes) {
        Ok(()) => Ok(bytes),
        // It shrank meanwhile: read what is there now.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => std::fs::read(path),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names() {
        assert!(parse_folder_name("20240101120000_add_users").is_some());
        assert!(parse_folder_name("2024_add_users").is_none());
        // Names another tool wrote are kept (`keel import`).
        assert!(parse_folder_name("20240101120000_AddUsers").is_some());
        assert!(parse_folder_name("20240101120000_add-users.v2").is_some());
        assert!(parse_folder_name("20240101120000_Add email to owners").is_some());
        assert!(parse_folder_name("20240101120000_").is_none());
        assert!(parse_folder_name("20240101120000_.hidden").is_none());
        assert!(parse_folder_name("20240101120000_-x").is_none());
        assert!(parse_folder_name("20240101120000_trailing ").is_none());
    }

    #[test]
    fn names_keep_their_letters() {
        assert_eq!(to_snake_case("ünïcode_name"), "unicode_name");
        assert_eq!(to_snake_case("Größe anpassen"), "grosse_anpassen");
        assert_eq!(to_snake_case("AddUsers"), "add_users");
    }

    #[test]
    fn suggestion_keeps_a_good_version() {
        assert_eq!(
            suggest_name("20240101120000-Add-Users"),
            "rename the folder to `20240101120000_add_users`"
        );
    }
    /// A long history read by two threads: the order, the problems and the
    /// refusals are the same as one thread's.
    #[test]
    fn a_long_history_reads_in_order_with_every_problem() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("migrations");
        for i in 0..300u32 {
            let m = dir.join(format!("20240101{:06}_m{i}", i));
            std::fs::create_dir_all(&m).unwrap();
            std::fs::write(m.join("up.sql"), format!("SELECT {i};\n")).unwrap();
        }
        let bounds = Bounds::new(tmp.path(), false).unwrap();
        let all = load_dir_on(&dir, &bounds, 2).unwrap();
        assert_eq!(all.len(), 300);
        assert!(all.windows(2).all(|w| w[0].version < w[1].version));
        assert_eq!(all[299].up, "SELECT 299;\n");
        // A problem in each half, and a symlink out of the project in the
        // second: all three named, in folder order.
        std::fs::write(dir.join("20240101000010_m10/up.sql"), [0xff, 0xfe]).unwrap();
        std::fs::remove_file(dir.join("20240101000250_m250/up.sql")).unwrap();
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.join("20240101000280_m280/down.sql"))
            .unwrap();
        let problems = load_dir_on(&dir, &bounds, 2).unwrap_err().problems;
        let named: Vec<String> = problems
            .iter()
            .map(|p| {
                format!(
                    "{}: {}",
                    p.path.strip_prefix(&dir).unwrap().display(),
                    p.message
                )
            })
            .collect();
        assert_eq!(named.len(), 3, "{named:#?}");
        assert!(
            named[0].starts_with("20240101000010_m10/up.sql: not valid UTF-8"),
            "{named:#?}"
        );
        assert!(
            named[1].starts_with("20240101000250_m250/up.sql: missing"),
            "{named:#?}"
        );
        assert!(
            named[2].starts_with("20240101000280_m280/down.sql: is a symlink"),
            "{named:#?}"
        );
        assert!(
            named[2].contains("outside the project folder"),
            "{named:#?}"
        );
    }
}
