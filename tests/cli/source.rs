//! The migrations folder is untrusted input: a pull request can add a
//! symlink as easily as a file. What keel reads as a migration must be a
//! regular file or folder inside the project (unless keel.toml allows
//! more), never a system file; an entry it cannot follow is an error that
//! names it, and a file PostgreSQL cannot take (a NUL byte) is refused with
//! its line and column before anything runs.

use crate::common::{Db, Project, stderr, stdout};
use std::os::unix::fs::symlink;
use std::time::Duration;

fn outside_migration() -> tempfile::TempDir {
    let outside = tempfile::Builder::new()
        .prefix("keel-outside-")
        .tempdir()
        .unwrap();
    std::fs::write(
        outside.path().join("up.sql"),
        "CREATE TABLE planted (id bigint);\n",
    )
    .unwrap();
    std::fs::write(outside.path().join("down.sql"), "DROP TABLE planted;\n").unwrap();
    outside
}

both!(
    a_migration_folder_linked_out_of_the_project_is_refused,
    |p: Project| {
        let outside = outside_migration();
        std::fs::create_dir_all(p.path().join("migrations")).unwrap();
        let link = p.path().join("migrations/20250101000001_planted");
        symlink(outside.path(), &link).unwrap();
        let out = p.keel().arg("up").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let target = outside.path().display();
        let resolved = outside.path().canonicalize().unwrap();
        let project = p.path().canonicalize().unwrap();
        assert_eq!(
            stderr(&out),
            format!(
                "error: 1 problem in the migration files:\n  \
             migrations/20250101000001_planted: is a symlink to {target}, which resolves to {}, \
             outside the project folder {}\n    \
             fix: copy it into the project; or, if files outside the project are meant, \
             set allow_outside_project = true in keel.toml\n",
                resolved.display(),
                project.display()
            )
        );
        assert!(!p.table_exists("planted"));

        // A file of the folder linked out is refused the same way.
        std::fs::remove_file(&link).unwrap();
        p.migration(
            "20250101000001_planted",
            "SELECT 1;\n",
            Some("SELECT 1;\n"),
            None,
        );
        std::fs::remove_file(link.join("up.sql")).unwrap();
        symlink(outside.path().join("up.sql"), link.join("up.sql")).unwrap();
        let out = p.keel().args(["up", "--dry-run"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("migrations/20250101000001_planted/up.sql: is a symlink to ")
                && stderr(&out).contains("outside the project folder"),
            "{}",
            stderr(&out)
        );
        assert!(!stdout(&out).contains("planted (id"), "{}", stdout(&out));

        // Allowed in keel.toml: applied.
        std::fs::write(p.path().join("keel.toml"), "allow_outside_project = true\n").unwrap();
        p.keel().args(["up", "-q"]).assert().success();
        assert!(p.table_exists("planted"));
    }
);

both!(
    up_sql_linked_to_the_environment_is_never_read,
    |p: Project| {
        let dir = p.migration(
            "20250101000001_env",
            "SELECT 1;\n",
            Some("SELECT 1;\n"),
            None,
        );
        std::fs::remove_file(dir.join("up.sql")).unwrap();
        symlink("/proc/self/environ", dir.join("up.sql")).unwrap();
        for toml in ["", "allow_outside_project = true\n"] {
            std::fs::write(p.path().join("keel.toml"), toml).unwrap();
            for args in [
                vec!["up", "--dry-run"],
                vec!["lint"],
                vec!["plan", "20250101000001"],
            ] {
                let out = p
                    .keel()
                    .args(&args)
                    .env("CI_SECRET_TOKEN", "canary-7f3a9")
                    .output()
                    .unwrap();
                let all = format!("{}{}", stdout(&out), stderr(&out));
                assert!(
                    !all.contains("canary-7f3a9"),
                    "{args:?} printed the environment:\n{all}"
                );
                assert!(
                all.contains("up.sql: is a symlink to /proc/self/environ, which resolves to /proc/")
                    || all.contains("up.sql:1:1: error[syntax-error] not read: is a symlink to /proc/self/environ"),
                "{args:?}: {all}"
            );
                assert!(
                    all.contains("a file of the operating system, not a migration file"),
                    "{all}"
                );
                let code = if args[0] == "lint" { 3 } else { 2 };
                assert_eq!(out.status.code(), Some(code), "{args:?}: {all}");
            }
        }
    }
);

both!(
    a_symlink_loop_a_dangling_link_and_a_fifo_are_errors_that_name_them,
    |p: Project| {
        let m = p.path().join("migrations");
        std::fs::create_dir_all(&m).unwrap();
        symlink(m.join("20250101000002_b"), m.join("20250101000001_a")).unwrap();
        symlink(m.join("20250101000001_a"), m.join("20250101000002_b")).unwrap();
        let dir = p.migration("20250101000003_c", "SELECT 1;\n", None, None);
        std::fs::remove_file(dir.join("up.sql")).unwrap();
        symlink("gone.sql", dir.join("up.sql")).unwrap();
        let fifo = p.migration("20250101000004_d", "SELECT 1;\n", None, None);
        std::fs::remove_file(fifo.join("up.sql")).unwrap();
        assert!(
            std::process::Command::new("mkfifo")
                .arg(fifo.join("up.sql"))
                .status()
                .unwrap()
                .success()
        );
        // A FIFO would block a reader forever: keel must not open it.
        let out = p
            .keel()
            .arg("status")
            .timeout(Duration::from_secs(30))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        for needle in [
            "error: 4 problems in the migration files:\n",
            "  migrations/20250101000001_a: is a symlink loop (it points to ",
            "  migrations/20250101000002_b: is a symlink loop (it points to ",
            "    fix: replace the symlink with the real file or folder, or delete it\n",
            "  migrations/20250101000003_c/up.sql: is a symlink to something that does not exist (it points to gone.sql)\n",
            "  migrations/20250101000004_d/up.sql: is not a regular file but a FIFO (named pipe) (keel reads only regular files and folders)\n",
        ] {
            assert!(err.contains(needle), "{needle}\n{err}");
        }
    }
);

both!(
    a_nul_byte_is_refused_with_its_line_and_column,
    |p: Project| {
        p.migration(
            "20250101000001_nul",
            "CREATE TABLE a (x int);\nINSERT INTO a VALUES (1); SELECT 'a\0b';\n",
            Some("DROP TABLE a;\n"),
            None,
        );
        let out = p.keel().arg("up").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert_eq!(
            stderr(&out),
            "error: 1 problem in the migration files:\n  \
         migrations/20250101000001_nul/up.sql:2:36: holds a NUL byte (\\0), which no SQL text or TOML may contain\n    \
         fix: delete it; a file full of NUL bytes was usually saved as UTF-16, so save it as UTF-8\n"
        );
        assert!(!p.table_exists("a"));
        if p.db == Db::Postgres {
            assert!(!stderr(&out).contains("08P01"));
        }
    }
);

#[test]
fn a_folder_name_suggestion_keeps_its_letters() {
    let p = Project::sqlite();
    p.migration("20250101000001_ünïcode_name", "SELECT 1;\n", None, None);
    let out = p.keel().arg("status").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("    fix: rename the folder to `20250101000001_unicode_name`\n"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_dir_all(p.path().join("migrations")).unwrap();
    let out = p.keel().args(["new", "Größe_ändern"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("  fix: keel new grosse_andern"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn lint_reads_named_paths_but_does_not_follow_links_out_of_a_folder() {
    let p = Project::sqlite();
    let outside = outside_migration();
    p.migration(
        "20250101000001_ok",
        "SELECT 1;\n",
        Some("SELECT 1;\n"),
        None,
    );
    symlink(
        outside.path(),
        p.path().join("migrations/20250101000002_planted"),
    )
    .unwrap();
    let out = p.keel().args(["lint", "migrations"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(
            "migrations/20250101000002_planted:1:1: error[syntax-error] not read: is a symlink to "
        ) && stdout(&out).contains("outside the project folder"),
        "{}",
        stdout(&out)
    );
    // Named on the command line, the same folder is linted (its name is
    // not a migration's, which lint says, but its files are read).
    let out = p.keel().arg("lint").arg(outside.path()).output().unwrap();
    assert!(!stdout(&out).contains("not read"), "{}", stdout(&out));
    assert!(stdout(&out).contains("in 2 files"), "{}", stdout(&out));

    // The migrations folder itself linked out: held to the project when
    // lint finds it on its own, as keel up does.
    std::fs::remove_dir_all(p.path().join("migrations")).unwrap();
    symlink(outside.path(), p.path().join("migrations")).unwrap();
    for args in [vec!["lint"], vec!["status"]] {
        let out = p.keel().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("migrations: is a symlink to ")
                && stderr(&out).contains("outside the project folder"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}
