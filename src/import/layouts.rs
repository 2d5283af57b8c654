//! Reading each tool's migration files, as that tool reads them: which
//! file is up and which down, and whether it runs in a transaction.

use super::{Foreign, ImportError, Tool, version_of};
use std::path::Path;

/// Every migration under `src` in `tool`'s layout, by version.
pub(crate) fn read(tool: Tool, src: &Path) -> Result<Vec<Foreign>, ImportError> {
    if tool == Tool::Flyway {
        return super::flyway::read(src);
    }
    let entries = entries(src)?;
    let mut out: Vec<Foreign> = Vec::new();
    for (name, is_dir) in &entries {
        let path = src.join(name);
        let shown = path.display().to_string();
        let found = match (tool, is_dir) {
            (Tool::Sqlx | Tool::GolangMigrate, false) => pair(tool, src, name, &entries)?,
            (Tool::Dbmate | Tool::Goose, false) => single(name, ".sql")
                .map(|(v, n)| one_file(tool, &read_file(&path)?, name).map(|f| (v, n, f)))
                .transpose()?,
            (Tool::Prisma, true) => folder(src, name, "migration.sql", None)?,
            (Tool::Diesel, true) => folder(src, name, "up.sql", Some("down.sql"))?,
            _ => None,
        };
        let Some((version, mig_name, f)) = found else {
            continue;
        };
        let version = version_of(version, &shown)?;
        if let Some(other) = out.iter().find(|o| o.version == version) {
            return Err(ImportError {
                path: shown,
                message: format!("version {version} is also {}", other.source),
                fix: "give one of them another version in the source".into(),
            });
        }
        check_name(mig_name, &shown)?;
        out.push(Foreign {
            version,
            name: mig_name.to_string(),
            ..f
        });
    }
    out.sort_by_key(|f| f.version);
    if out.is_empty() {
        return Err(ImportError {
            path: src.display().to_string(),
            message: format!("no {} migrations here", tool.name()),
            fix: format!(
                "give the folder that holds the {} migrations ({})",
                tool.name(),
                match tool {
                    Tool::Sqlx => "VERSION_name.sql, or VERSION_name.up.sql and .down.sql",
                    Tool::Dbmate | Tool::Goose => "VERSION_name.sql",
                    Tool::GolangMigrate => "VERSION_name.up.sql and .down.sql",
                    Tool::Prisma => "prisma/migrations, with TIMESTAMP_name/migration.sql",
                    Tool::Diesel => "migrations, with YYYY-MM-DD-HHMMSS_name/up.sql and down.sql",
                    Tool::Flyway => "V1__name.sql",
                }
            ),
        });
    }
    Ok(out)
}

type Found<'a> = Option<(&'a str, &'a str, Foreign)>;

/// The folder's entries (name, is a folder), sorted.
fn entries(src: &Path) -> Result<Vec<(String, bool)>, ImportError> {
    let read = std::fs::read_dir(src).map_err(|e| ImportError {
        path: src.display().to_string(),
        message: format!("cannot read the folder: {e}"),
        fix: "give the folder that holds the other tool's migrations".into(),
    })?;
    let mut out: Vec<(String, bool)> = read
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let is_dir = e.file_type().ok()?.is_dir();
            Some((name, is_dir))
        })
        .collect();
    out.sort();
    Ok(out)
}

fn read_file(path: &Path) -> Result<String, ImportError> {
    std::fs::read_to_string(path).map_err(|e| ImportError {
        path: path.display().to_string(),
        message: format!("cannot read it: {e}"),
        fix: "make it a readable UTF-8 file".into(),
    })
}

/// `VERSION_name<suffix>` → (version, name).
fn single<'a>(file: &'a str, suffix: &str) -> Option<(&'a str, &'a str)> {
    let stem = file.strip_suffix(suffix)?;
    let (version, name) = stem.split_once('_')?;
    version
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'-')
        .then_some((version, name))
}

/// sqlx and golang-migrate: `V_name.up.sql` with `V_name.down.sql`, and
/// (sqlx) a lone `V_name.sql`. A down file is read with its up file.
fn pair<'a>(
    tool: Tool,
    src: &Path,
    file: &'a str,
    entries: &[(String, bool)],
) -> Result<Found<'a>, ImportError> {
    if file.ends_with(".down.sql") {
        return Ok(None);
    }
    let (version, name, down) = if let Some((v, n)) = single(file, ".up.sql") {
        let down_file = format!("{v}_{n}.down.sql");
        let down = entries
            .iter()
            .any(|(e, _)| *e == down_file)
            .then(|| read_file(&src.join(&down_file)))
            .transpose()?;
        (v, n, down)
    } else if let (Tool::Sqlx, Some((v, n))) = (tool, single(file, ".sql")) {
        (v, n, None)
    } else {
        return Ok(None);
    };
    let up = read_file(&src.join(file))?;
    // sqlx: a first line `-- no-transaction` runs the file outside one.
    let transaction =
        !(tool == Tool::Sqlx && up.lines().next().map(str::trim) == Some("-- no-transaction"));
    Ok(Some((
        version,
        name,
        foreign(up, down, transaction, file.to_string()),
    )))
}

/// dbmate (`-- migrate:up` / `-- migrate:down`, `transaction:false` after
/// either) and goose (`-- +goose Up` / `Down`, `-- +goose NO TRANSACTION`;
/// `StatementBegin`/`End` only guide goose's own statement splitter, and
/// keel's parser reads `$$` bodies): the sections of one file, read with
/// the markers `keel lint` reads too.
fn one_file(tool: Tool, text: &str, file: &str) -> Result<Foreign, ImportError> {
    use crate::analysis::layout::{dbmate_marker, goose_marker};
    match tool {
        Tool::Dbmate => sections(text, file, "-- migrate:up", "dbmate", dbmate_marker),
        _ => sections(text, file, "-- +goose Up", "goose", goose_marker),
    }
}

/// The up and down sections of a one-file layout. `marker` reads a line:
/// `None` for SQL; else the section it opens (`Some(true)`: up), if any,
/// and whether it says to run outside a transaction.
fn sections(
    text: &str,
    file: &str,
    up_marker: &str,
    tool: &str,
    marker: impl Fn(&str) -> Option<(Option<bool>, bool)>,
) -> Result<Foreign, ImportError> {
    let (mut up, mut down, mut transaction) = (String::new(), None::<String>, true);
    let mut section = None;
    for line in text.lines() {
        if let Some((opens, outside)) = marker(line.trim()) {
            transaction &= !outside;
            if let Some(is_up) = opens {
                section = Some(is_up);
                if !is_up {
                    down.get_or_insert_with(String::new);
                }
            }
            continue;
        }
        match section {
            Some(true) => push_line(&mut up, line),
            Some(false) => push_line(down.get_or_insert_with(String::new), line),
            None => {}
        }
    }
    if section.is_none() {
        return Err(ImportError {
            path: file.to_string(),
            message: format!("no `{up_marker}` line: {tool} would not run it either"),
            fix: format!("add `{up_marker}` above its SQL"),
        });
    }
    Ok(foreign(up, down, transaction, file.to_string()))
}

/// A migration read from a file, before its version and name are set.
fn foreign(up: String, down: Option<String>, transaction: bool, source: String) -> Foreign {
    Foreign {
        version: crate::migration::Version(0),
        name: String::new(),
        up,
        down: down.filter(|d| !d.trim().is_empty()),
        transaction,
        source,
    }
}

/// Prisma (`V_name/migration.sql`, no down) and diesel (`V_name/up.sql`,
/// `down.sql`; `metadata.toml` may say `run_in_transaction = false`).
fn folder<'a>(
    src: &Path,
    dir: &'a str,
    up: &str,
    down: Option<&str>,
) -> Result<Found<'a>, ImportError> {
    let Some((v, n)) = dir.split_once('_') else {
        return Ok(None);
    };
    if !v.bytes().all(|b| b.is_ascii_digit() || b == b'-') || !src.join(dir).join(up).is_file() {
        return Ok(None);
    }
    let up_text = read_file(&src.join(dir).join(up))?;
    let down_text = match down {
        Some(d) if src.join(dir).join(d).is_file() => Some(read_file(&src.join(dir).join(d))?),
        _ => None,
    };
    let metadata = src.join(dir).join("metadata.toml");
    let transaction = !(metadata.is_file()
        && crate::analysis::layout::diesel_outside_transaction(&read_file(&metadata)?));
    Ok(Some((
        v,
        n,
        foreign(up_text, down_text, transaction, format!("{dir}/{up}")),
    )))
}

fn push_line(text: &mut String, line: &str) {
    text.push_str(line);
    text.push('\n');
}

/// A name keel keeps as the tool wrote it, as long as it can be a
/// migration folder's name ([`crate::migration::is_migration_name`]).
fn check_name(name: &str, path: &str) -> Result<(), ImportError> {
    if crate::migration::is_migration_name(name) {
        return Ok(());
    }
    Err(ImportError {
        path: path.to_string(),
        message: format!("the name `{name}` cannot be a migration folder's name"),
        fix: "rename it in ASCII, starting with a letter or digit, without slashes".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dbmate_sections_and_options() {
        let f = one_file(
            Tool::Dbmate,
            "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (a);\n\n-- migrate:down\nDROP INDEX i;\n",
            "1_x.sql",
        )
        .unwrap();
        assert_eq!(f.up, "CREATE INDEX CONCURRENTLY i ON t (a);\n\n");
        assert_eq!(f.down.as_deref(), Some("DROP INDEX i;\n"));
        assert!(!f.transaction);
    }

    #[test]
    fn goose_sections_and_no_transaction() {
        let f = one_file(
            Tool::Goose,
            "-- +goose NO TRANSACTION\n-- +goose Up\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n-- +goose StatementEnd\n-- +goose Down\nDROP FUNCTION f();\n",
            "1_x.sql",
        )
        .unwrap();
        assert_eq!(
            f.up,
            "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n"
        );
        assert_eq!(f.down.as_deref(), Some("DROP FUNCTION f();\n"));
        assert!(!f.transaction);
    }

    #[test]
    fn versions_keep_their_digits_and_names_their_spelling() {
        assert_eq!(version_of("000001", "f").unwrap().0, 1);
        assert_eq!(
            version_of("2024-01-02-030405", "f").unwrap().0,
            20240102030405
        );
        assert_eq!(
            version_of("2025-11-19-091444-0000", "f").unwrap().0,
            20251119091444
        );
        assert!(version_of("2025-11-19-091444-0001", "f").is_err());
        assert!(version_of("1.1", "f").is_err());
        assert!(version_of("123456789012345", "f").is_err());
        assert!(check_name("add-users.v2", "f").is_ok());
        assert!(check_name("Add email to owners", "f").is_ok());
        assert!(check_name(".hidden", "f").is_err());
        assert!(check_name("a/b", "f").is_err());
    }
}
