//! How another tool runs a plain `.sql` file: in one transaction or not,
//! and which part of it is the up and which the down. Whether a file runs
//! in a transaction decides rules such as `validate-with-lock` (a
//! `VALIDATE` in the transaction that added the constraint holds its lock
//! for the whole scan) and `concurrently-in-transaction`; a goose or
//! dbmate file's down section is a down, not more of the up.
//!
//! The layout is read from the file (its name, its markers) unless
//! `keel lint --layout` names it. keel's own migration folders and
//! diesel's (the same shape) say it in migration.toml / metadata.toml;
//! a diesel folder is told from keel's by [`is_diesel_folder`].

use std::path::Path;

/// A migration tool's layout, for `keel lint --layout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Layout {
    /// `VERSION_name.sql`, `.up.sql`/`.down.sql`: one transaction each,
    /// unless the first line is `-- no-transaction`.
    Sqlx,
    /// `VERSION_title.up.sql`/`.down.sql`: the file is one multi-statement
    /// query, which PostgreSQL runs as one transaction.
    #[value(name = "golang-migrate")]
    GolangMigrate,
    /// `-- +goose Up`/`Down` sections; one transaction unless `-- +goose
    /// NO TRANSACTION`.
    Goose,
    /// `-- migrate:up`/`down` sections; one transaction unless
    /// `transaction:false` on the marker.
    Dbmate,
    /// `TIMESTAMP_name/migration.sql`: one transaction.
    Prisma,
    /// `V…__name.sql`: one transaction, unless its `.sql.conf` says
    /// `executeInTransaction=false` or a statement cannot run in one.
    Flyway,
    /// ory/pop `NAME.postgres.up.sql`: one transaction;
    /// `NAME.autocommit.up.sql`: none.
    Pop,
    /// diesel's `YYYY-MM-DD-HHMMSS_name/up.sql` and `down.sql`: one
    /// transaction each, unless its `metadata.toml` says
    /// `run_in_transaction = false`.
    Diesel,
    /// A file no tool runs for us: no transaction unless it opens one.
    Plain,
}

/// A plain file as its tool runs it. `up` and `down` keep the file's line
/// numbers: lines of the other section and marker lines are blank.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Runs {
    pub(crate) layout: Layout,
    pub(crate) transaction: bool,
    pub(crate) up: String,
    /// The down section of a one-file layout (goose, dbmate).
    pub(crate) down: Option<String>,
}

/// The fix for a statement that must run outside a transaction, or in a
/// transaction of its own (`rule`: `concurrently-in-transaction`,
/// `validate-with-lock`), said with `layout`'s own means rather than
/// keel's migration.toml. `None`: keep the rule's own. A statement inside
/// a DO block must leave the block whatever the tool, and its rule says so
/// without asking here.
pub(crate) fn own_fix(layout: Layout, rule: &str) -> Option<&'static str> {
    let outside = match layout {
        Layout::Sqlx => {
            "move it to a migration file of its own whose first line is `-- no-transaction` (sqlx then runs it outside a transaction)"
        }
        Layout::GolangMigrate => {
            "move it to a migration file of its own holding that one statement: a single statement is not wrapped in a transaction"
        }
        Layout::Goose => {
            "move it to a migration file of its own with `-- +goose NO TRANSACTION` at the top"
        }
        Layout::Dbmate => {
            "move it to a migration file of its own whose marker is `-- migrate:up transaction:false`"
        }
        Layout::Prisma => {
            "Prisma runs every migration in a transaction: move it to a migration of its own and run that one by hand (`prisma db execute`), then `prisma migrate resolve --applied NAME`"
        }
        Layout::Flyway => {
            "move it to a migration of its own (Flyway runs a file whose statements cannot run in a transaction outside one), or set `executeInTransaction=false` in its `.sql.conf`"
        }
        Layout::Pop => "move it to a migration file of its own named `NAME.autocommit.up.sql`",
        Layout::Diesel => {
            "move it to a migration of its own whose `metadata.toml` says `run_in_transaction = false`"
        }
        Layout::Plain => return None,
    };
    match rule {
        "concurrently-in-transaction" => Some(outside),
        "validate-with-lock" => Some(match layout {
            Layout::Prisma => {
                "validate in a later migration of its own: the VALIDATE then holds only SHARE UPDATE EXCLUSIVE on the table (and ROW SHARE on the referenced one for a foreign key), which let reads and writes go on"
            }
            _ => {
                "validate in a later migration file of its own: the VALIDATE then holds only SHARE UPDATE EXCLUSIVE on the table (and ROW SHARE on the referenced one for a foreign key), which let reads and writes go on"
            }
        }),
        _ => None,
    }
}

/// How `layout`'s tool runs one file outside a transaction, said short.
fn outside_means(layout: Layout) -> Option<&'static str> {
    Some(match layout {
        Layout::Sqlx => "a migration file of its own whose first line is `-- no-transaction`",
        Layout::GolangMigrate => "a migration file of its own holding that one statement",
        Layout::Goose => "a migration file of its own with `-- +goose NO TRANSACTION` at the top",
        Layout::Dbmate => "a migration file of its own marked `-- migrate:up transaction:false`",
        Layout::Prisma => {
            "a migration of its own run by hand (`prisma db execute`, then `prisma migrate resolve --applied NAME`)"
        }
        Layout::Flyway => {
            "a migration of its own with `executeInTransaction=false` in its `.sql.conf`"
        }
        Layout::Pop => "a migration file of its own named `NAME.autocommit.up.sql`",
        Layout::Diesel => {
            "a migration of its own whose `metadata.toml` says `run_in_transaction = false`"
        }
        Layout::Plain => return None,
    })
}

/// A rule's fix said in `layout`'s terms: the steps only keel has (a
/// `[backfill]` section, `transaction = false` in migration.toml, `keel
/// new --template`, keel's backups) become what a project on that tool
/// does instead. A keel migration's fix, and a plain file's, are left as
/// they are.
pub(crate) fn in_own_terms(layout: Layout, fix: String) -> String {
    let Some(outside) = outside_means(layout) else {
        return fix;
    };
    let batched = "a batched update run after the migration (a script or job: by key, a few \
                   thousand rows per transaction)";
    let mut fix = fix
        // keel's own words for what its [backfill] does go with it.
        .replace(
            "a [backfill] section in migration.toml: batched by key, resumable, each batch its \
             own short transaction, outside the DDL",
            batched,
        )
        .replace(
            "a [backfill] section in migration.toml (batched by key, each batch its own transaction)",
            batched,
        )
        .replace("a [backfill] section in migration.toml", batched)
        .replace("a batched [backfill]", batched)
        .replace("(a [backfill] section)", "(a script or job run after the migration)")
        .replace("with a [backfill]-style job", "in a job of its own")
        .replace(
            "in its own migration with `transaction = false` in migration.toml",
            &format!("in {outside}"),
        )
        // The same step said shorter (drop-index, reindex, detach, enum
        // value, add-unique, validate).
        .replace(
            "in its own migration with `transaction = false`",
            &format!("in {outside}"),
        )
        .replace(
            "in a migration with `transaction = false`",
            &format!("in {outside}"),
        )
        .replace(
            "in a `transaction = false` migration",
            &format!("in {outside}"),
        )
        .replace(
            "(keel backs the data up)",
            "(after a backup of the table: `pg_dump --table`)",
        )
        .replace(
            "keel backs it up;",
            "back it up (`pg_dump --table`);",
        )
        .replace(
            "keel drops the INVALID index a failed build leaves",
            "a failed build leaves an INVALID index: drop it (DROP INDEX CONCURRENTLY and its name) before running the file again",
        )
        .replace(
            "make sure keel's backup covers the table",
            "take a backup of the table (`pg_dump --table`)",
        )
        // No other tool declares a migration irreversible.
        .replace(
            ", or declare `reversibility = \"irreversible\"` in migration.toml",
            "",
        );
    if let Some(at) = fix.find(": `keel new --template rename-column") {
        fix.truncate(at);
        fix.push_str(": three migrations (add with the trigger; backfill; drop once the code reads the new column)");
    }
    fix
}

/// Whether a migration folder without a migration.toml is diesel's: it
/// has diesel's `metadata.toml`, diesel's name (`YYYY-MM-DD-HHMMSS_name`),
/// or diesel's first migration (`00000000000000_diesel_initial_setup`) or
/// its `diesel.toml` beside the migrations folder.
pub(crate) fn is_diesel_folder(dir: &Path) -> bool {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let root = dir.parent();
    dir.join("metadata.toml").is_file()
        || is_diesel_name(name)
        || root.is_some_and(|r| r.join("00000000000000_diesel_initial_setup").is_dir())
        || root
            .and_then(Path::parent)
            .is_some_and(|p| p.join("diesel.toml").is_file())
}

/// diesel's `metadata.toml` holds `run_in_transaction = false`: diesel
/// runs that migration's up.sql and down.sql outside a transaction.
pub(crate) fn diesel_outside_transaction(metadata: &str) -> bool {
    metadata.lines().any(|l| {
        let l = l.split('#').next().unwrap_or_default();
        l.split_once('=')
            .is_some_and(|(k, v)| k.trim() == "run_in_transaction" && v.trim() == "false")
    })
}

/// diesel's `YYYY-MM-DD-HHMMSS_name` (diesel 2.2 adds `-0000`), and its
/// `00000000000000_diesel_initial_setup`.
pub(crate) fn is_diesel_name(name: &str) -> bool {
    let Some((version, rest)) = name.split_once('_') else {
        return false;
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = version.split('-').collect();
    let dated = match parts.as_slice() {
        [y, m, d, t] => digits(y, 4) && digits(m, 2) && digits(d, 2) && digits(t, 6),
        [y, m, d, t, x] => {
            digits(y, 4) && digits(m, 2) && digits(d, 2) && digits(t, 6) && digits(x, 4)
        }
        _ => false,
    };
    !rest.is_empty() && (dated || name == "00000000000000_diesel_initial_setup")
}

/// The layout a file is in, from its markers and its name.
pub(crate) fn detect(path: &Path, text: &str) -> Layout {
    let marker = |m: &str| text.lines().any(|l| l.trim_start().starts_with(m));
    if marker("-- +goose ") {
        return Layout::Goose;
    }
    if marker("-- migrate:up") || marker("-- migrate:down") {
        return Layout::Dbmate;
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let lower = name.to_ascii_lowercase();
    if name == "migration.sql" {
        Layout::Prisma
    } else if is_flyway(name) {
        Layout::Flyway
    } else if lower.contains(".autocommit.") || lower.contains(".postgres.") {
        Layout::Pop
    } else if lower.ends_with(".up.sql") || lower.ends_with(".down.sql") || is_versioned(name) {
        Layout::Sqlx
    } else {
        Layout::Plain
    }
}

/// How `layout` runs the file at `path`; `no_transaction_statement`
/// says whether a statement of `text` cannot run in a transaction
/// (Flyway detects those and runs the file outside one).
pub(crate) fn runs(
    layout: Layout,
    path: &Path,
    text: &str,
    no_transaction_statement: impl Fn(&str) -> bool,
) -> Runs {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let whole = |transaction: bool| Runs {
        layout,
        transaction,
        up: text.to_string(),
        down: None,
    };
    match layout {
        Layout::Goose => sections(layout, text, goose_marker),
        Layout::Dbmate => sections(layout, text, dbmate_marker),
        Layout::Sqlx => {
            let first = text.lines().next().map(str::trim);
            whole(first != Some("-- no-transaction"))
        }
        Layout::GolangMigrate | Layout::Prisma | Layout::Diesel => whole(true),
        Layout::Pop => whole(!name.contains(".autocommit.")),
        Layout::Flyway => {
            let conf = path.with_file_name(format!(
                "{}.conf",
                path.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
            ));
            let off = std::fs::read_to_string(conf).is_ok_and(|c| {
                c.lines().any(|l| {
                    l.replace(' ', "")
                        .eq_ignore_ascii_case("executeInTransaction=false")
                })
            });
            whole(!off && !no_transaction_statement(text))
        }
        Layout::Plain => whole(false),
    }
}

/// A goose marker line (trimmed): the section it opens (`Some(true)`:
/// up), if any, and whether it runs the file outside a transaction;
/// `None` for a line of SQL. `StatementBegin`/`End` only guide goose's
/// own statement splitter.
pub(crate) fn goose_marker(line: &str) -> Option<(Option<bool>, bool)> {
    let word = line.strip_prefix("-- +goose")?.trim().to_ascii_lowercase();
    Some(match word.as_str() {
        "up" => (Some(true), false),
        "down" => (Some(false), false),
        "no transaction" => (None, true),
        _ => (None, false),
    })
}

/// A dbmate marker line (trimmed), as [`goose_marker`] reads goose's:
/// `-- migrate:up` / `-- migrate:down`, `transaction:false` after either.
pub(crate) fn dbmate_marker(line: &str) -> Option<(Option<bool>, bool)> {
    let (up, options) = match (
        line.strip_prefix("-- migrate:up"),
        line.strip_prefix("-- migrate:down"),
    ) {
        (Some(o), _) => (true, o),
        (_, Some(o)) => (false, o),
        _ => return None,
    };
    Some((Some(up), options.contains("transaction:false")))
}

/// The up and down sections of a one-file layout, each with the other's
/// lines blank. `marker` reads a trimmed line: `None` for SQL; else the
/// section it opens (`Some(true)`: up), if any, and whether it says to run
/// outside a transaction. Lines before the first marker belong to neither.
fn sections(
    layout: Layout,
    text: &str,
    marker: impl Fn(&str) -> Option<(Option<bool>, bool)>,
) -> Runs {
    let (mut up, mut down) = (String::new(), String::new());
    let (mut section, mut transaction, mut has_down) = (None, true, false);
    for line in text.split_inclusive('\n') {
        let end = if line.ends_with('\n') { "\n" } else { "" };
        if let Some((opens, outside)) = marker(line.trim()) {
            transaction &= !outside;
            if let Some(is_up) = opens {
                section = Some(is_up);
                has_down |= !is_up;
            }
            up.push_str(end);
            down.push_str(end);
            continue;
        }
        let (mine, other) = match section {
            Some(true) => (&mut up, &mut down),
            Some(false) => (&mut down, &mut up),
            None => {
                up.push_str(end);
                down.push_str(end);
                continue;
            }
        };
        mine.push_str(line);
        other.push_str(end);
    }
    Runs {
        layout,
        transaction,
        up,
        down: has_down.then_some(down),
    }
}

/// `V1__x.sql`, `V1_1__x.sql`, `U2__x.sql`, `R__x.sql`.
fn is_flyway(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".sql") else {
        return false;
    };
    let mut chars = stem.chars();
    let kind = chars.next();
    let rest = chars.as_str();
    match (kind, rest.split_once("__")) {
        (Some('V' | 'U'), Some((v, d))) => {
            !v.is_empty()
                && !d.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_digit() || b == b'.' || b == b'_')
        }
        (Some('R'), Some(("", d))) => !d.is_empty(),
        _ => false,
    }
}

/// `20240101120000_name.sql`: sqlx's single-file layout.
fn is_versioned(name: &str) -> bool {
    name.strip_suffix(".sql")
        .and_then(|s| s.split_once('_'))
        .is_some_and(|(v, n)| {
            !v.is_empty() && !n.is_empty() && v.bytes().all(|b| b.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no(_: &str) -> bool {
        false
    }

    #[test]
    fn detected_from_markers_and_names() {
        let d = |name: &str, text: &str| detect(Path::new(name), text);
        assert_eq!(d("1_a.sql", "-- +goose Up\nSELECT 1;"), Layout::Goose);
        assert_eq!(d("1_a.sql", "-- migrate:up\nSELECT 1;"), Layout::Dbmate);
        assert_eq!(d("migration.sql", ""), Layout::Prisma);
        assert_eq!(d("V1_2__add.sql", ""), Layout::Flyway);
        assert_eq!(d("R__views.sql", ""), Layout::Flyway);
        assert_eq!(d("2020_x.autocommit.up.sql", ""), Layout::Pop);
        assert_eq!(d("2020_x.postgres.up.sql", ""), Layout::Pop);
        assert_eq!(d("000001_x.up.sql", ""), Layout::Sqlx);
        assert_eq!(d("20240101_x.sql", ""), Layout::Sqlx);
        assert_eq!(d("schema.sql", ""), Layout::Plain);
        assert_eq!(d("Very_important.sql", ""), Layout::Plain);
    }

    #[test]
    fn sections_keep_their_lines_and_markers_their_say() {
        let text = "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON t (a);\n-- +goose Down\nDROP INDEX i;\n";
        let r = runs(Layout::Goose, Path::new("1_x.sql"), text, no);
        assert!(!r.transaction);
        assert_eq!(r.up, "\n\nCREATE INDEX CONCURRENTLY i ON t (a);\n\n\n");
        assert_eq!(r.down.as_deref(), Some("\n\n\n\nDROP INDEX i;\n"));
        let d = runs(
            Layout::Dbmate,
            Path::new("1_x.sql"),
            "-- migrate:up\nSELECT 1;\n",
            no,
        );
        assert!(d.transaction);
        assert_eq!(d.down, None);
    }

    #[test]
    fn transactions_by_layout() {
        let t = |layout: Layout, name: &str, text: &str| {
            runs(layout, Path::new(name), text, no).transaction
        };
        assert!(t(Layout::Sqlx, "1_x.up.sql", "SELECT 1;"));
        assert!(!t(
            Layout::Sqlx,
            "1_x.up.sql",
            "-- no-transaction\nSELECT 1;"
        ));
        assert!(t(
            Layout::GolangMigrate,
            "1_x.up.sql",
            "-- no-transaction\nSELECT 1;"
        ));
        assert!(t(Layout::Prisma, "migration.sql", ""));
        assert!(!t(Layout::Pop, "1_x.autocommit.up.sql", ""));
        assert!(t(Layout::Pop, "1_x.postgres.up.sql", ""));
        assert!(!t(Layout::Plain, "x.sql", ""));
        assert!(t(Layout::Flyway, "V1__x.sql", ""));
        assert!(!runs(Layout::Flyway, Path::new("V1__x.sql"), "", |_| true).transaction);
    }
}
