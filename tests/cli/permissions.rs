//! Backups, snapshots, backfill failures and execution records hold a
//! database's data or its audit trail: owner-only folders and files, and
//! the data folders carry a `.gitignore` so that they never reach git.

use crate::common::{Db, Project, stderr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every file under `dir` is 0600 and every folder 0700.
fn owner_only(dir: &Path) -> usize {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    let mut files = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            files += owner_only(&e.path());
        } else {
            assert_eq!(mode(&e.path()), 0o600, "{}", e.path().display());
            files += 1;
        }
    }
    files
}

both!(data_keel_writes_is_owner_only, |p: Project| {
    p.sample();
    p.migration(
        "20260103090000_drop_bio",
        "ALTER TABLE profiles DROP COLUMN bio;\n",
        Some("ALTER TABLE profiles ADD COLUMN bio text;\n"),
        Some("reversibility = \"partial\"\n"),
    );
    p.keel()
        .args(["up", "--to", "20260102090000", "-q"])
        .assert()
        .success();
    p.keel()
        .args(["seed", "--users", "20", "-q"])
        .assert()
        .success();
    // A folder an older keel left world-readable is tightened.
    std::fs::create_dir_all(p.path().join("backups")).unwrap();
    std::fs::set_permissions(
        p.path().join("backups"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let out = p.keel().arg("up").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = p.keel().args(["snapshot", "take"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    for folder in ["backups", "snapshots"] {
        let dir = p.path().join(folder);
        assert!(
            owner_only(&dir) >= 2,
            "{folder} holds its data and .gitignore"
        );
        let ignore = std::fs::read_to_string(dir.join(".gitignore")).unwrap();
        assert!(ignore.lines().any(|l| l == "*"), "{folder}: {ignore}");
    }
    if p.db == Db::Postgres {
        // git itself agrees: nothing in them would be committed.
        let git = |args: &[&str]| {
            std::process::Command::new("git")
                .args(args)
                .current_dir(p.path())
                .output()
                .unwrap()
        };
        git(&["init", "-q"]);
        let status = git(&["status", "--porcelain", "--untracked-files=all"]);
        let listed = String::from_utf8_lossy(&status.stdout);
        assert!(
            !listed.contains("backups/") && !listed.contains("snapshots/"),
            "{listed}"
        );
    }
});
