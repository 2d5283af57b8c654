//! `keel backup verify`, `keel restore`: the data a migration destroys is
//! exported to a zip of CSVs with a manifest, checked, and put back exactly.

use crate::common::{Db, Project, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Values CSV gets wrong when done carelessly: NULL next to the empty
/// string, quotes, commas, line breaks, backslashes, COPY's end marker.
const BIOS: &[Option<&str>] = &[
    Some("hello, \"world\"\nsecond line"),
    None,
    Some(""),
    Some("ünïcødé ✓"),
    Some("back\\slash \\N"),
    Some("\\."),
    Some("  padded  "),
    Some("tab\there,\r\ncrlf"),
];

fn sql_text(v: Option<&str>) -> String {
    match v {
        None => "NULL".into(),
        Some(s) => format!("'{}'", s.replace('\'', "''")),
    }
}

/// The sample schema, applied, with one user and profile per entry of BIOS,
/// and a migration that drops `profiles.bio`.
fn profiles_with_bios(p: &Project) {
    p.sample();
    p.migration(
        "20260103090000_drop_bio",
        "ALTER TABLE profiles DROP COLUMN bio;\n",
        Some("ALTER TABLE profiles ADD COLUMN bio text;\n"),
        None,
    );
    p.keel()
        .args(["up", "--to", "20260102090000"])
        .assert()
        .success();
    for (i, bio) in BIOS.iter().enumerate() {
        let id = i + 1;
        p.exec(&format!(
            "INSERT INTO users (id, email, name) VALUES ({id}, 'u{id}@example.com', 'User {id}');
             INSERT INTO profiles (id, user_id, bio) VALUES ({id}, {id}, {});",
            sql_text(*bio)
        ));
    }
}

fn bios(p: &Project) -> Vec<Vec<Option<String>>> {
    p.rows("SELECT CAST(id AS TEXT), bio FROM profiles ORDER BY id")
}

/// Runs the hidden `keel backup create` and returns the archive's path.
fn backup(p: &Project, args: &[&str]) -> PathBuf {
    let out = p
        .keel()
        .args(["backup", "create", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    p.path().join(json["path"].as_str().unwrap())
}

both!(a_dropped_column_comes_back_exactly, |p: Project| {
    profiles_with_bios(&p);
    let before = bios(&p);
    assert_eq!(before.len(), BIOS.len());
    let archive = backup(
        &p,
        &["20260103090000", "--table", "profiles", "--columns", "bio"],
    );
    assert!(
        archive.starts_with(p.path().join("backups/20260103090000_drop_bio")),
        "{}",
        archive.display()
    );

    p.keel().arg("up").assert().success();
    p.keel().arg("down").assert().success();
    // `down` restored the newest backup on its own; empty the column to
    // show that the archive alone brings it back.
    p.exec("UPDATE profiles SET bio = NULL");
    assert!(bios(&p).iter().all(|r| r[1].is_none()));

    let out = p.keel().arg("restore").arg(&archive).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "restored: updated 8 rows of profiles (bio)\n");
    assert_eq!(bios(&p), before);
});

both!(verify_reports_every_file, |p: Project| {
    profiles_with_bios(&p);
    let archive = backup(
        &p,
        &["20260103090000", "--table", "profiles", "--columns", "bio"],
    );
    let rel = archive
        .strip_prefix(p.path())
        .unwrap()
        .display()
        .to_string();
    let out = p.keel().args(["backup", "verify", &rel]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!(
            "ok {rel} (migration 20260103090000_drop_bio, 1 file(s))\n  profiles.csv         profiles (id, bio): 8 rows, sha256 "
        )),
        "{text}"
    );
});

both!(a_whole_table_is_inserted_back, |p: Project| {
    p.migration(
        "20260101000000_notes",
        "CREATE TABLE notes (id bigint PRIMARY KEY, body text, stars integer, at timestamp);\n",
        Some("DROP TABLE notes;\n"),
        None,
    );
    p.keel().arg("up").assert().success();
    p.exec(
        "INSERT INTO notes VALUES (1, 'a,b', 5, '2026-01-02 03:04:05'), (2, NULL, NULL, NULL), (3, '', 0, '1999-12-31 23:59:59');",
    );
    let before = p.rows("SELECT CAST(id AS TEXT), body, CAST(stars AS TEXT), CAST(at AS TEXT) FROM notes ORDER BY id");
    let archive = backup(&p, &["20260101000000", "--table", "notes"]);
    p.exec("DELETE FROM notes");
    let out = p.keel().arg("restore").arg(&archive).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "restored: inserted 3 rows into notes\n");
    assert_eq!(
        p.rows("SELECT CAST(id AS TEXT), body, CAST(stars AS TEXT), CAST(at AS TEXT) FROM notes ORDER BY id"),
        before
    );
});

/// The CSV inside the archive loads with the real `psql \copy`, NULLs and
/// empty strings intact.
#[test]
fn psql_copy_reads_the_csv() {
    let p = Project::postgres();
    profiles_with_bios(&p);
    let archive = backup(
        &p,
        &["20260103090000", "--table", "profiles", "--columns", "bio"],
    );
    let csv = p.path().join("profiles.csv");
    let out = Command::new("unzip")
        .arg("-p")
        .arg(&archive)
        .arg("profiles.csv")
        .output()
        .expect("unzip is installed");
    assert!(out.status.success());
    std::fs::write(&csv, &out.stdout).unwrap();
    p.exec("CREATE TABLE loaded (id bigint, bio text)");
    let out = Command::new("psql")
        .arg(&p.url)
        .args(["-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!(
            "\\copy loaded FROM '{}' WITH (FORMAT csv, HEADER)",
            csv.display()
        ))
        .output()
        .expect("psql is installed");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        p.rows("SELECT CAST(id AS TEXT), bio FROM loaded ORDER BY id"),
        bios(&p)
    );
}

fn verify(p: &Project, archive: &Path) -> std::process::Output {
    p.keel()
        .args(["backup", "verify"])
        .arg(archive)
        .output()
        .unwrap()
}

#[test]
fn a_truncated_archive_is_refused_and_restores_nothing() {
    let p = Project::sqlite();
    profiles_with_bios(&p);
    let archive = backup(
        &p,
        &["20260103090000", "--table", "profiles", "--columns", "bio"],
    );
    let bytes = std::fs::read(&archive).unwrap();
    std::fs::write(&archive, &bytes[..bytes.len() / 2]).unwrap();
    let out = verify(&p, &archive);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "backup archive {} is unreadable",
            archive.display()
        )),
        "{err}"
    );
    assert!(err.contains("truncated or corrupted"), "{err}");

    p.exec("UPDATE profiles SET bio = 'changed'");
    let out = p.keel().arg("restore").arg(&archive).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        p.scalar("SELECT count(*) FROM profiles WHERE bio = 'changed'")
            .as_deref(),
        Some("8")
    );
}

#[test]
fn a_flipped_byte_is_caught() {
    let p = Project::sqlite();
    profiles_with_bios(&p);
    let archive = backup(
        &p,
        &["20260103090000", "--table", "profiles", "--columns", "bio"],
    );
    let mut bytes = std::fs::read(&archive).unwrap();
    // Inside the first member's compressed data (after its local header).
    let at = 80;
    bytes[at] ^= 0x55;
    std::fs::write(&archive, &bytes).unwrap();
    let out = verify(&p, &archive);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains(&archive.display().to_string()));
}

/// Rebuilds an archive with the real zip tool after `edit` changed its
/// unpacked files.
fn repack(archive: &Path, edit: impl FnOnce(&Path)) {
    let dir = archive.with_extension("unpacked");
    let ok = Command::new("unzip")
        .args(["-q", "-o"])
        .arg(archive)
        .arg("-d")
        .arg(&dir)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    edit(&dir);
    std::fs::remove_file(archive).unwrap();
    let ok = Command::new("zip")
        .args(["-q", "-X", "-r"])
        .arg(archive)
        .arg(".")
        .current_dir(&dir)
        .status()
        .expect("zip is installed")
        .success();
    assert!(ok);
}

#[test]
fn a_manifest_that_does_not_match_is_refused() {
    let p = Project::sqlite();
    profiles_with_bios(&p);
    let archive = backup(
        &p,
        &["20260103090000", "--table", "profiles", "--columns", "bio"],
    );
    repack(&archive, |dir| {
        let csv = dir.join("profiles.csv");
        let text = std::fs::read_to_string(&csv).unwrap();
        std::fs::write(&csv, text.replace("ünïcødé", "unicode")).unwrap();
    });
    let out = verify(&p, &archive);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(
        err.contains("does not match its manifest: profiles.csv has SHA-256"),
        "{err}"
    );
    assert!(err.contains("do not restore from it"), "{err}");

    // A file the manifest does not list.
    repack(&archive, |dir| {
        std::fs::write(dir.join("extra.csv"), "id\n1\n").unwrap();
    });
    let err = stderr(&verify(&p, &archive));
    assert!(
        err.contains(
            "the archive holds [extra.csv, profiles.csv] but manifest.json lists [profiles.csv]"
        ),
        "{err}"
    );
}

#[test]
fn rows_that_no_longer_exist_roll_the_whole_restore_back() {
    let p = Project::postgres();
    profiles_with_bios(&p);
    let archive = backup(
        &p,
        &["20260103090000", "--table", "profiles", "--columns", "bio"],
    );
    p.exec("UPDATE profiles SET bio = 'changed'; DELETE FROM profiles WHERE id = 8");
    let out = p.keel().arg("restore").arg(&archive).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(
        err.contains("put back 7 of 8 rows of profiles; nothing was changed"),
        "{err}"
    );
    assert_eq!(
        p.scalar("SELECT count(*) FROM profiles WHERE bio = 'changed'")
            .as_deref(),
        Some("7")
    );
}

#[test]
fn a_missing_archive_says_where_backups_live() {
    let p = Project::sqlite();
    let out = p
        .keel()
        .args(["backup", "verify", "backups/nope.zip"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stderr(&out),
        "error: backup archive backups/nope.zip does not exist\n  fix: check the path (backups are in backups/<version>_<name>/), or take a new backup before migrating\n"
    );
}

#[test]
fn the_same_data_gives_the_same_members() {
    let p = Project::sqlite();
    profiles_with_bios(&p);
    let a = backup(
        &p,
        &["20260103090000", "--table", "profiles", "--columns", "bio"],
    );
    let b = backup(
        &p,
        &["20260103090000", "--table", "profiles", "--columns", "bio"],
    );
    assert_ne!(a, b);
    let listing = |f: &Path| {
        let out = Command::new("unzip").arg("-v").arg(f).output().unwrap();
        // Member lines: sizes, method, fixed date, CRC and name.
        stdout(&out)
            .lines()
            .filter(|l| l.ends_with("profiles.csv"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(listing(&a), listing(&b));
    assert!(
        listing(&a)[0].contains("1980-01-01 00:00"),
        "{:?}",
        listing(&a)
    );
}

// Without --table, the backup is what the analysis says the migration
// destroys: here `profiles.bio`, keyed by the primary key.
both!(the_analysis_decides_what_is_backed_up, |p: Project| {
    profiles_with_bios(&p);
    let before = bios(&p);
    let archive = backup(&p, &["20260103090000"]);
    let manifest = Command::new("unzip")
        .arg("-p")
        .arg(&archive)
        .arg("manifest.json")
        .output()
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest.stdout).unwrap();
    assert_eq!(manifest["migration"], "20260103090000_drop_bio");
    assert_eq!(
        manifest["files"][0]["columns"],
        serde_json::json!(["id", "bio"])
    );
    assert_eq!(manifest["files"][0]["kind"], "columns");
    assert_eq!(manifest["files"][0]["rows"], 8);
    p.keel().arg("up").assert().success();
    p.keel().arg("down").assert().success();
    p.keel().arg("restore").arg(&archive).assert().success();
    assert_eq!(bios(&p), before);

    // A migration that destroys nothing needs no backup.
    let out = p
        .keel()
        .args(["backup", "create", "20260101090000"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("destroys no existing data"),
        "{}",
        stderr(&out)
    );
});

both!(plain_up_backs_up_and_down_restores, |p: Project| {
    profiles_with_bios(&p);
    let before = bios(&p);
    // A half-written archive a killed run left behind holds user data: it
    // goes when the next archive is written.
    let folder = p.path().join("backups/20260103090000_drop_bio");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("20260101T000000Z.zip.partial"), "PK half").unwrap();
    let out = p.keel().arg("up").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("backed up backups/20260103090000_drop_bio/")
            && stderr(&out).contains(
                "(profiles.bio: 8 rows) before 20260103090000_drop_bio; archive verified"
            ),
        "{}",
        stderr(&out)
    );
    let archives: Vec<_> = std::fs::read_dir(p.path().join("backups/20260103090000_drop_bio"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(archives.len(), 1);
    assert!(!p.rows("SELECT * FROM profiles LIMIT 1").is_empty());
    assert_eq!(
        p.scalar("SELECT count(*) FROM keel_migrations WHERE version = '20260103090000'")
            .as_deref(),
        Some("1")
    );

    let out = p.keel().arg("down").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("restored backups/20260103090000_drop_bio/")
            && stderr(&out).contains("(profiles: 8 rows)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        bios(&p),
        before,
        "the dropped column comes back with exactly its data"
    );
    assert_eq!(
        p.scalar("SELECT count(*) FROM keel_migrations WHERE version = '20260103090000'")
            .as_deref(),
        Some("0")
    );

    // Up again, with different data: down restores the newest archive.
    p.keel().arg("up").assert().success();
    p.keel().arg("down").assert().success();
    assert_eq!(bios(&p), before);
});

/// `keel backup prune --older-than AGE [extra…]`.
fn prune(p: &Project, args: &[&str]) -> std::process::Output {
    p.keel()
        .args(["backup", "prune", "--older-than"])
        .args(args)
        .output()
        .unwrap()
}

both!(
    prune_keeps_what_down_restores_and_other_databases_archives,
    |p: Project| {
        profiles_with_bios(&p);
        p.keel().arg("up").assert().success();
        let zips = |p: &Project| -> Vec<String> {
            let dir = p.path().join("backups/20260103090000_drop_bio");
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| n.ends_with(".zip"))
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            names
        };
        let bound = zips(&p);
        assert_eq!(bound.len(), 1);
        // Another database's archive in the same folder (another environment).
        let other = Project::new(p.db);
        profiles_with_bios(&other);
        other.keel().arg("up").assert().success();
        let foreign = zips(&other).pop().unwrap();
        let foreign_name = format!("19990101T000000Z-{foreign}");
        std::fs::copy(
            other
                .path()
                .join("backups/20260103090000_drop_bio")
                .join(&foreign),
            p.path()
                .join("backups/20260103090000_drop_bio")
                .join(&foreign_name),
        )
        .unwrap();

        // Applied: its down restores the archive, so it stays however old.
        let out = prune(&p, &["0s"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "kept backups/20260103090000_drop_bio/{}",
                bound[0]
            )) && err.contains("`keel down` of 20260103090000 restores it")
                && err.contains("1 archive(s) of other databases left alone"),
            "{err}"
        );
        assert_eq!(zips(&p).len(), 2, "nothing deleted");

        // Reverted: the archive served its down; a dry run lists it and keeps it.
        p.keel().arg("down").assert().success();
        let out = prune(&p, &["0s", "--dry-run"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            stdout(&out).trim(),
            format!("would delete backups/20260103090000_drop_bio/{}", bound[0])
        );
        assert_eq!(zips(&p).len(), 2);
        // Younger than the cutoff: kept.
        let out = prune(&p, &["1h"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(zips(&p).len(), 2);
        let out = prune(&p, &["0s"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            zips(&p),
            [foreign_name],
            "only the other database's archive is left"
        );
    }
);

both!(
    a_restore_that_fails_keeps_the_migration_applied,
    |p: Project| {
        profiles_with_bios(&p);
        p.keel().arg("up").assert().success();
        // A row the backup holds is gone: the restore cannot put every value
        // back, so the down rolls back as a whole.
        p.exec("DELETE FROM profiles WHERE id = 1");
        let out = p.keel().arg("down").output().unwrap();
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(
                "migration 20260103090000_drop_bio: restoring backups/20260103090000_drop_bio/"
            ),
            "{err}"
        );
        assert!(
            err.contains("the down was rolled back: 20260103090000_drop_bio is still applied"),
            "{err}"
        );
        assert_eq!(
            p.scalar("SELECT count(*) FROM keel_migrations WHERE version = '20260103090000'")
                .as_deref(),
            Some("1")
        );
        let columns = p.rows("SELECT * FROM profiles LIMIT 1");
        assert!(
            columns.is_empty() || columns[0].len() == 7,
            "bio is still dropped"
        );
    }
);

both!(
    nothing_to_back_up_where_a_table_does_not_exist,
    |p: Project| {
        p.migration(
            "20260101000000_drop_legacy",
            "DROP TABLE IF EXISTS legacy_sessions;\n",
            Some("CREATE TABLE legacy_sessions (id bigint PRIMARY KEY);\n"),
            None,
        );
        let out = p.keel().arg("up").output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(!stderr(&out).contains("backed up"), "{}", stderr(&out));
        assert!(!p.path().join("backups/20260101000000_drop_legacy").exists());
        // The down is kept, and says that it made a table the database did
        // not have before up (exit 3: a check failed).
        let out = p.keel().arg("down").output().unwrap();
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("its tracking row records no backup"),
            "{}",
            stderr(&out)
        );
        assert!(
            stderr(&out)
                .lines()
                .any(|l| l.starts_with("+ table") && l.contains("legacy_sessions")),
            "{}",
            stderr(&out)
        );
        assert!(p.table_exists("legacy_sessions"));
    }
);
