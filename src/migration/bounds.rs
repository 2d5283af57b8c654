//! Where migration files may come from. Migration files are untrusted input
//! (a pull request can add a symlink as easily as a file): a migration
//! folder, up.sql, down.sql or migration.toml that resolves, after its
//! symlinks, outside the project folder is refused unless keel.toml says
//! `allow_outside_project = true`; `up.sql → /proc/self/environ` would
//! otherwise put the CI's secrets into `keel up --dry-run`'s output. Files
//! of the system's pseudo file systems and anything that is not a regular
//! file (a FIFO would hang keel) are refused always. A symlink that cannot
//! be followed (a loop, a missing target) is an error naming it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The folders migration files may resolve into.
#[derive(Debug, Clone)]
pub(crate) struct Bounds {
    /// Canonical folders; a file must resolve inside one of them.
    roots: Vec<PathBuf>,
    /// keel.toml's `allow_outside_project`: any folder will do.
    anywhere: bool,
    /// The folders resolved last, as (path as asked, canonical path).
    /// Resolving a path from scratch asks the kernel about each of its
    /// components (14 system calls for a file in a 1,000-migration project,
    /// most of `keel status`'s time); a file that is not a symlink, in a
    /// folder just resolved, resolves by its name alone.
    recent: Arc<Mutex<Vec<(PathBuf, PathBuf)>>>,
}

/// How many resolved folders are remembered: the migrations folder and the
/// migration being read, with room to spare.
const RECENT: usize = 8;

/// What the entry is expected to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Folder,
}

/// Why keel will not read an entry, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) message: String,
    pub(crate) fix: String,
}

/// Linux pseudo file systems: their "regular files" are the kernel's state
/// (a process's environment, memory), never SQL someone wrote.
const SYSTEM: [&str; 3] = ["/proc", "/sys", "/dev"];

impl Bounds {
    /// Files may resolve inside `project` (the folder holding keel.toml,
    /// else the current folder), or anywhere with `anywhere`.
    pub(crate) fn new(project: &Path, anywhere: bool) -> std::io::Result<Bounds> {
        Ok(Bounds {
            roots: vec![project.canonicalize()?],
            anywhere,
            recent: Arc::default(),
        })
    }

    /// Also inside `folder` (a folder the user named on the command line).
    pub(crate) fn with_root(mut self, folder: &Path) -> Bounds {
        if let Ok(folder) = folder.canonicalize() {
            self.roots.push(folder);
        }
        self
    }

    /// The resolved path of `path` when keel may read it as `kind`;
    /// `Ok(None)` when nothing is there (not even a broken symlink).
    pub(crate) fn check(&self, path: &Path, kind: Kind) -> Result<Option<PathBuf>, Refusal> {
        let own = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Refusal {
                    message: format!("cannot read: {e}"),
                    fix: "check the permissions of the file and the folders above it".into(),
                });
            }
        };
        let link = own.file_type().is_symlink();
        let target = || {
            std::fs::read_link(path)
                .map(|t| t.display().to_string())
                .unwrap_or_else(|_| "?".into())
        };
        let resolved = match self.resolve(path, link) {
            Ok(r) => r,
            Err(e) if link => {
                let why = if e.raw_os_error() == Some(ELOOP) {
                    "a symlink loop".to_string()
                } else if e.kind() == std::io::ErrorKind::NotFound {
                    "a symlink to something that does not exist".to_string()
                } else {
                    format!("a symlink keel cannot follow ({e})")
                };
                return Err(Refusal {
                    message: format!("is {why} (it points to {})", target()),
                    fix: "replace the symlink with the real file or folder, or delete it".into(),
                });
            }
            Err(e) => {
                return Err(Refusal {
                    message: format!("cannot read: {e}"),
                    fix: "check the permissions of the file and the folders above it".into(),
                });
            }
        };
        // Only said when refusing: formatting it for every file costs.
        let points = || {
            if link {
                format!(
                    "is a symlink to {}, which resolves to {}",
                    target(),
                    resolved.display()
                )
            } else {
                format!("resolves to {}", resolved.display())
            }
        };
        if SYSTEM.iter().any(|s| resolved.starts_with(s)) {
            return Err(Refusal {
                message: format!(
                    "{}: a file of the operating system, not a migration file",
                    points()
                ),
                fix: "replace it with a regular file holding the migration's text".into(),
            });
        }
        let meta = if link {
            std::fs::metadata(&resolved).map_err(|e| Refusal {
                message: format!("cannot read: {e}"),
                fix: "check the permissions of the file and the folders above it".into(),
            })?
        } else {
            own
        };
        let (ok, expected) = match kind {
            Kind::File => (meta.is_file(), "a regular file"),
            Kind::Folder => (meta.is_dir(), "a folder"),
        };
        if !ok {
            return Err(Refusal {
                message: format!(
                    "is not {expected} but {} (keel reads only regular files and folders)",
                    describe(&meta)
                ),
                fix: format!("replace it with {expected}"),
            });
        }
        if !self.anywhere && !self.roots.iter().any(|r| resolved.starts_with(r)) {
            return Err(Refusal {
                message: format!(
                    "{}, outside the project folder {}",
                    points(),
                    self.roots[0].display()
                ),
                fix: "copy it into the project; or, if files outside the project are meant, \
                      set allow_outside_project = true in keel.toml"
                    .into(),
            });
        }
        if kind == Kind::Folder {
            self.remember(path, &resolved);
        }
        Ok(Some(resolved))
    }

    /// `path.canonicalize()`, taking the parent's resolution from the
    /// folders resolved last when `path` itself is not a symlink.
    fn resolve(&self, path: &Path, link: bool) -> std::io::Result<PathBuf> {
        if !link
            && let (Some(parent), Some(name)) = (path.parent(), path.file_name())
            && !parent.as_os_str().is_empty()
        {
            let known = {
                let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
                // Used last, forgotten last: the migrations folder stays.
                let at = recent
                    .iter()
                    .position(|(asked, _)| asked.as_os_str() == parent.as_os_str());
                at.map(|i| {
                    let hit = recent.remove(i);
                    let resolved = hit.1.clone();
                    recent.push(hit);
                    resolved
                })
            };
            let parent = match known {
                Some(resolved) => resolved,
                None => {
                    let resolved = parent.canonicalize()?;
                    self.remember(parent, &resolved);
                    resolved
                }
            };
            return Ok(parent.join(name));
        }
        path.canonicalize()
    }

    /// Remembers a folder's resolution under its own name and the name it
    /// was asked by (callers go on with either).
    fn remember(&self, asked: &Path, resolved: &Path) {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        for key in [asked, resolved] {
            if recent.iter().any(|(a, _)| a.as_os_str() == key.as_os_str()) {
                continue;
            }
            if recent.len() == RECENT {
                recent.remove(0);
            }
            recent.push((key.to_path_buf(), resolved.to_path_buf()));
        }
    }
}

/// ELOOP on Linux and the BSDs' value differ; std has no ErrorKind for it.
#[cfg(target_os = "linux")]
const ELOOP: i32 = 40;
#[cfg(not(target_os = "linux"))]
const ELOOP: i32 = 62;

fn describe(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_inside_pass_and_links_out_are_refused() {
        let project = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let p = project.path();
        std::fs::write(p.join("real.sql"), "SELECT 1").unwrap();
        std::fs::write(outside.path().join("x.sql"), "SELECT 1").unwrap();
        symlink(p.join("real.sql"), p.join("in.sql")).unwrap();
        symlink(outside.path().join("x.sql"), p.join("out.sql")).unwrap();
        symlink("/proc/self/environ", p.join("env.sql")).unwrap();
        symlink(p.join("loop1"), p.join("loop2")).unwrap();
        symlink(p.join("loop2"), p.join("loop1")).unwrap();
        let b = Bounds::new(p, false).unwrap();
        assert!(b.check(&p.join("in.sql"), Kind::File).unwrap().is_some());
        assert_eq!(b.check(&p.join("none.sql"), Kind::File), Ok(None));
        let out = b.check(&p.join("out.sql"), Kind::File).unwrap_err();
        assert!(
            out.message.contains("outside the project folder"),
            "{out:?}"
        );
        let env = b.check(&p.join("env.sql"), Kind::File).unwrap_err();
        assert!(
            env.message.contains("a file of the operating system"),
            "{env:?}"
        );
        let lp = b.check(&p.join("loop1"), Kind::File).unwrap_err();
        assert!(lp.message.starts_with("is a symlink loop"), "{lp:?}");
        let anywhere = Bounds::new(p, true).unwrap();
        assert!(
            anywhere
                .check(&p.join("out.sql"), Kind::File)
                .unwrap()
                .is_some()
        );
        assert!(anywhere.check(&p.join("env.sql"), Kind::File).is_err());
        assert!(
            b.check(p, Kind::File)
                .unwrap_err()
                .message
                .contains("is not a regular file but a folder")
        );
    }

    #[test]
    fn files_in_a_remembered_folder_resolve_as_from_scratch() {
        let project = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let p = project.path();
        let real = p.canonicalize().unwrap().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("up.sql"), "SELECT 1").unwrap();
        std::fs::write(outside.path().join("x.sql"), "SELECT 1").unwrap();
        symlink(&real, p.join("link")).unwrap();
        symlink(outside.path().join("x.sql"), real.join("out.sql")).unwrap();
        let b = Bounds::new(p, false).unwrap();
        // As load_dir asks: the folder, then its files by the same path.
        let folder = b.check(&p.join("link"), Kind::Folder).unwrap().unwrap();
        assert_eq!(folder, real);
        for asked in [p.join("link/up.sql"), folder.join("up.sql")] {
            assert_eq!(
                b.check(&asked, Kind::File).unwrap().unwrap(),
                real.join("up.sql"),
                "{asked:?}"
            );
        }
        // A link out of the project in a remembered folder is still refused.
        let out = b.check(&p.join("link/out.sql"), Kind::File).unwrap_err();
        assert!(
            out.message.contains("outside the project folder"),
            "{out:?}"
        );
        assert_eq!(b.check(&p.join("link/none.sql"), Kind::File), Ok(None));
    }
}
