//! Files that hold a database's data or its audit trail (backups,
//! snapshots, backfill failures, execution records): owner-only folders and
//! files, written under a temporary name and renamed into place once
//! complete, so that no other user of the machine can read them and no
//! reader ever sees half a file.
//!
//! The folders of data that must never reach version control (backups,
//! snapshots, backfill failures) get a `.gitignore` the first time keel
//! writes into them.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Mode of folders keel creates for data: the owner only.
#[cfg(unix)]
const DIR_MODE: u32 = 0o700;
/// Mode of files keel writes with data: the owner may read and write.
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents; `dir` itself and every folder
/// created on the way are owner-only. An existing `dir` that others may
/// read (an older keel made it 0755) is tightened.
pub(crate) fn private_dir(dir: &Path) -> io::Result<()> {
    let mut missing: Vec<PathBuf> = Vec::new();
    let mut at = Some(dir);
    while let Some(p) = at {
        if p.as_os_str().is_empty() || p.exists() {
            break;
        }
        missing.push(p.to_path_buf());
        at = p.parent();
    }
    std::fs::create_dir_all(dir)?;
    for p in missing.iter().chain(std::iter::once(&dir.to_path_buf())) {
        restrict(p, true)?;
    }
    Ok(())
}

/// A data folder that must stay out of version control: owner-only, with a
/// `.gitignore` that ignores everything in it (written once; a user's own
/// `.gitignore` there is left alone).
pub(crate) fn private_ignored_dir(dir: &Path) -> io::Result<()> {
    private_dir(dir)?;
    let ignore = dir.join(".gitignore");
    if !ignore.exists() {
        write_private(
            &ignore,
            b"# keel: data exported from a database; never commit it\n*\n",
        )?;
    }
    Ok(())
}

/// Creates a new owner-only file at `path` (an existing one is truncated and
/// made owner-only).
pub(crate) fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    let file = options.open(path)?;
    // `mode` only applies when the file is created.
    restrict(path, false)?;
    Ok(file)
}

/// Writes `bytes` to `path` owner-only: into `path.partial`, flushed to
/// disk, then renamed, so `path` is either absent or complete.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let partial = crate::stamp::partial(path);
    let result = (|| {
        let mut f = create_private(&partial)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, path)
}

/// Makes an existing file or folder owner-only.
pub(crate) fn restrict(path: &Path, dir: bool) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if dir { DIR_MODE } else { FILE_MODE };
        let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if current & 0o077 != 0 || current & mode != mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, dir);
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn folders_and_files_are_owner_only() {
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path().join("backups");
        let leaf = top.join("20260101000000_x");
        private_ignored_dir(&top).unwrap();
        private_dir(&leaf).unwrap();
        assert_eq!(mode(&top), 0o700);
        assert_eq!(mode(&leaf), 0o700);
        let f = leaf.join("a.zip");
        write_private(&f, b"data").unwrap();
        assert_eq!(mode(&f), 0o600);
        assert_eq!(std::fs::read(&f).unwrap(), b"data");
        assert!(!crate::stamp::partial(&f).exists());
        assert!(
            std::fs::read_to_string(top.join(".gitignore"))
                .unwrap()
                .contains('*')
        );
    }

    #[test]
    fn an_existing_open_folder_is_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("records");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }
}
